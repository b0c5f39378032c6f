//! `berth exec-helper <ExecSpec JSON>`: runs a process inside a running container.

use std::ffi::OsString;

/// Entry point for `berth exec-helper`; returns the process exit code.
pub fn main(args: &[OsString]) -> i32 {
    eprintln!("berth exec-helper: not built yet ({args:?})");
    1
}
