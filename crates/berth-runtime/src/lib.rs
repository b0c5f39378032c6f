//! Berth's container runtime.
//!
//! Runs only in small single-threaded processes (`berth shim`, `berth exec-helper`),
//! never inside the daemon's async threads: it forks and changes namespaces. The daemon
//! itself only calls the plain-file functions of [`cgroup`] ([`cgroup::set_frozen`],
//! [`cgroup::pids`]).
//!
//! - [`spec`]: what to run, written by the daemon.
//! - [`protocol`]: how the daemon talks to a running shim.
//! - [`security`], [`seccomp`], [`sysctl`], [`capabilities`]: the checks the daemon makes
//!   at create (pure functions) and what the init applies.
//! - [`syscall`]: every kernel call of the container's set-up behind one trait, so the
//!   init sequence is unit-tested against a recording fake.

pub mod capabilities;
pub mod cgroup;
pub mod defaults;
pub mod error;
pub mod exec;
mod fsutil;
mod init;
pub mod jsonlog;
pub mod mounts;
mod process;
pub mod protocol;
pub mod pty;
pub mod rlimits;
pub mod sealed;
pub mod seccomp;
pub mod securejoin;
pub mod security;
pub mod shim;
pub mod spec;
pub mod syscall;
pub mod sysctl;
pub mod tiny_init;
pub mod user;

pub use error::RuntimeError;
pub use spec::*;
