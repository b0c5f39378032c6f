//! Berth's container runtime.
//!
//! Runs only in small single-threaded processes (`berth shim`, `berth exec-helper`),
//! never inside the daemon's async threads: it forks and changes namespaces. What the
//! daemon calls directly never forks and never enters a namespace:
//! - [`cgroup`]: `set_frozen`, `update`, `destroy`, `blkio_weight_supported` (plain files);
//! - [`pty`]: `open`, `recv_master`, `set_size` (an exec's terminal);
//! - [`securejoin::resolve_in_root`], [`user::resolve`], [`mounts::parse_options`];
//! - [`security`], [`seccomp`], [`sysctl`], [`capabilities`]: checks and filters at create;
//! - [`sealed`]: the sealed copy of the binary that shims and exec helpers run from;
//! - [`protocol`]: the requests it sends a running shim.
//!
//! The `berth` binary dispatches `berth shim` to [`shim::main`] and `berth exec-helper`
//! to [`exec::main`].
//!
//! - [`spec`]: what to run, written by the daemon.
//! - [`protocol`]: how the daemon talks to a running shim.
//! - [`security`], [`seccomp`], [`sysctl`], [`capabilities`]: the checks the daemon makes
//!   at create (pure functions) and what the init applies.
//! - [`syscall`]: every kernel call of the container's set-up behind one trait, so the
//!   init sequence is unit-tested against a recording fake.

pub mod capabilities;
pub mod cgroup;
mod cgroup_enter;
pub mod cgroup_kill;
mod cgroup_knobs;
pub mod cgroup_limits;
pub mod cgroup_parent;
pub mod cgroup_stats;
pub mod defaults;
pub mod devices;
pub mod error;
pub mod exec;
mod fsutil;
mod image_volume;
mod init;
pub mod jsonlog;
pub mod logformat;
pub mod logreader;
pub mod logspec;
pub mod logwriter;
pub mod mounts;
pub mod pause;
mod process;
pub mod protocol;
pub mod pty;
pub mod restart;
pub mod rlimits;
pub mod sealed;
pub mod seccomp;
pub mod securejoin;
pub mod security;
pub mod shim;
mod shim_run;
pub mod spec;
pub mod syscall;
pub mod sysctl;
pub mod tiny_init;
pub mod user;
pub mod userns;

pub use error::RuntimeError;
pub use spec::*;
