//! Named crash points for crash-consistency tests.
//!
//! With `BERTH_TEST_CRASH_AT=<point>[,<point>…]` in its environment, the daemon SIGKILLs
//! itself the first time it reaches one of the named points, exactly as a `kill -9` at
//! that instant would. Without the variable (always, outside tests) a crash point is one
//! cached lookup and does nothing.
//!
//! Points: `create-before-record` (container dir made, record not written yet),
//! `create-after-record` (record durable, create not answered yet),
//! `start-after-mark` (start recorded as in progress), `start-after-attach` (network
//! attached, no shim yet), `start-after-spawn` (shim and container set up, not released),
//! `start-after-go` (container released, Running not recorded yet), `rm-after-record`
//! (record deleted, its directories and network not yet), `exec-after-spawn` (exec process
//! started).
//!
//! `BERTH_TEST_STALL_AT=<point>[,<point>…]` blocks the request at those points for an
//! hour (or `BERTH_TEST_STALL_SECS`) instead (a start that hangs half-way, with another request coming in); only
//! `start-after-spawn` is a stall point.

use std::sync::OnceLock;

/// The environment variable naming the crash points.
pub const CRASH_AT_ENV: &str = "BERTH_TEST_CRASH_AT";
/// The environment variable naming the stall points.
pub const STALL_AT_ENV: &str = "BERTH_TEST_STALL_AT";
/// How long a stall lasts, in seconds (default an hour).
pub const STALL_SECS_ENV: &str = "BERTH_TEST_STALL_SECS";

fn parse(var: &str) -> Vec<String> {
    std::env::var(var)
        .map(|v| {
            v.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn points() -> &'static [String] {
    static POINTS: OnceLock<Vec<String>> = OnceLock::new();
    POINTS.get_or_init(|| parse(CRASH_AT_ENV))
}

fn stalls() -> &'static [String] {
    static STALLS: OnceLock<Vec<String>> = OnceLock::new();
    STALLS.get_or_init(|| parse(STALL_AT_ENV))
}

/// Waits an hour when `name` is one of the configured stall points.
pub async fn stall_point(name: &str) {
    if stalls().iter().any(|p| p == name) {
        tracing::warn!(point = name, "{STALL_AT_ENV}: stalling");
        let secs = std::env::var(STALL_SECS_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3600);
        tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    }
}

/// Kills the daemon with SIGKILL when `name` is one of the configured crash points.
pub fn crash_point(name: &str) {
    if points().iter().any(|p| p == name) {
        tracing::warn!(point = name, "{CRASH_AT_ENV}: killing the daemon");
        // SAFETY: kill takes two integers; SIGKILL to ourselves ends the process here.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
