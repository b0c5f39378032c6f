//! Berth's container runtime.
//!
//! Runs only in small single-threaded processes (`berth shim`, `berth exec-helper`),
//! never inside the daemon's async threads: it forks and changes namespaces.
//!
//! - [`spec`]: what to run, written by the daemon.
//! - [`protocol`]: how the daemon talks to a running shim.

pub mod protocol;
pub mod spec;

pub use spec::*;
pub mod exec;
pub mod shim;
