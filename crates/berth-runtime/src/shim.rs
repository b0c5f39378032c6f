//! `berth shim <state-dir>`: the per-container process (see [`crate::protocol`]).

use std::ffi::OsString;

/// Entry point for `berth shim`; returns the process exit code.
pub fn main(args: &[OsString]) -> i32 {
    eprintln!("berth shim: not built yet ({args:?})");
    1
}
