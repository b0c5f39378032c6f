//! Berth's command line: Docker's commands, flags and output, as a plain Engine API client.

use std::ffi::OsString;

/// Runs the CLI with the full argv (`args[0]` is the program name); returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    eprintln!("berth: CLI not built yet ({args:?})");
    1
}
