//! The shim's control socket: the contract between the daemon and a running shim.
//!
//! The shim of container `<id>` listens on `<state-dir>/shim.sock` (state dir =
//! `<exec-root>/containers/<id>/`). Each connection starts with one request: a JSON
//! object on one line (`\n`-terminated). What follows depends on the request:
//!
//! - `{"op":"start"}` releases the container's process (it was created by `berth shim`
//!   and waits, fully set up, just before `execve`). Answer: one JSON line,
//!   [`StartReply`]. The shim also gives up and kills the container if no `start` comes
//!   within [`START_TIMEOUT_SECS`].
//! - `{"op":"attach","stdin":b,"stdout":b,"stderr":b}`: no answer line. The shim then
//!   sends the container's output as frames: an 8-byte header `[stream, 0, 0, 0,
//!   len as u32 big-endian]` and `len` bytes (stream 1 = stdout, 2 = stderr; with a
//!   TTY everything is stream 1). Bytes the client sends are raw stdin for the container
//!   (when `stdin` is true); the client's write half-close closes the container's stdin
//!   if the container has `stdin_once`. When the container exits, the shim flushes
//!   what is left and closes the connection.
//! - `{"op":"wait"}`: the shim answers one JSON line, [`ExitStatus`], when the container
//!   exits, then closes. A connection that closes with no answer means the shim died.
//! - `{"op":"watch"}`: the shim answers at once with one JSON line, [`ShimEvent`] of
//!   kind `state` (the current state), then one line per change: `exit` (with
//!   `restarting` when the restart policy restarts the container) and `start` (a
//!   restart by the policy). After the final `exit` (no restart) it closes.
//! - `{"op":"signal","signal":15}`: sends the signal to the container's init process;
//!   answer `{"ok":true}` or `{"error":"..."}`. With `"manual":true` the container
//!   counts as stopped by the user (`unless-stopped` does not restart it); with
//!   `"cancel_restart":true` no restart policy applies until the next start (Docker's
//!   `stop` and `kill`). While the shim waits to restart the container there is no
//!   process: a cancelling signal then ends the shim at once (final `exit`).
//! - `{"op":"update","restart":{...}}`: a new restart policy (`update --restart`).
//! - `{"op":"resize","height":40,"width":100}`: resizes the TTY; same answer.
//!
//! Files the shim keeps in its state dir:
//! - `shim.pid`: the shim's own pid; `init.pid`: the container's init pid (host view),
//!   written before the shim reports ready.
//! - `exit.json`: [`ExitStatus`], written (temp + rename) before the shim exits, so the
//!   daemon learns how a container ended even if it was down at the time.
//!
//! Restarts: with a restart policy ([`crate::restart`]) the shim itself restarts the
//! container after an exit (Docker's backoff), with the same state dir, socket, log and
//! network namespace, whether or not the daemon is up. Only the shim restarts a
//! container whose shim is alive; the daemon starts one only when no shim runs (at its
//! own start-up), so the two never both restart it.
//! - `cgroups.json`: the container's cgroup directories
//!   ([`crate::cgroup::CgroupPaths`]), read by [`crate::cgroup::set_frozen`],
//!   [`crate::cgroup::pids`] and [`crate::cgroup::destroy`].
//! - `shim.log`: the shim's own diagnostics after it detached.
//!
//! Deadlines: the daemon connects without blocking ([`connect_nonblocking`]) and bounds
//! every short request (signal, resize, update: 2 s; start: 30 s). A shim that does not
//! answer a signal in time is treated as wedged: the daemon signals the init directly,
//! and past the stop timeout kills the shim and the container's whole cgroup
//! ([`crate::cgroup_kill`]) after writing a SIGKILL `exit.json` if there is none.
//!
//! Start-up: `berth shim <state-dir>` prints one line on its stdout and closes it: `ok
//! <init-pid>` once the container is set up and waiting for `start`, or `error <message>`
//! (then nothing is left behind: no cgroup, no process, no socket). It detaches into its
//! own session, so the daemon may exit or be killed while the container runs.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Runs `f` with a path to `<state-dir>/shim.sock` that fits in a `sockaddr_un` (107
/// bytes): the path itself when short enough, else `/proc/self/fd/<dir-fd>/shim.sock`
/// through an `O_PATH` descriptor of the state dir (deep exec-roots in tests).
pub fn with_socket_path<T>(
    state_dir: &Path,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let full = state_dir.join(SOCKET_FILE);
    if full.as_os_str().len() < 100 {
        return f(&full);
    }
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(state_dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}/{SOCKET_FILE}", dir.as_raw_fd()));
    let r = f(&short);
    drop(dir);
    r
}

/// Connects to the shim of the container whose state dir is given (blocking; a unix
/// socket connect never waits). Works for state dirs of any length. For tokio, use
/// `set_nonblocking(true)` and `tokio::net::UnixStream::from_std`.
pub fn connect(state_dir: &Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    with_socket_path(state_dir, |p| std::os::unix::net::UnixStream::connect(p))
}

/// Like [`connect`], but never waits: the socket is non-blocking from the start, so a
/// shim that stopped accepting (SIGSTOP, wedged) with a full backlog gives `WouldBlock`
/// at once instead of blocking the caller in `connect(2)`.
pub fn connect_nonblocking(state_dir: &Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    with_socket_path(state_dir, |p| {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(std::io::Error::from)?;
        let addr = UnixAddr::new(p).map_err(std::io::Error::from)?;
        match nix::sys::socket::connect(fd.as_raw_fd(), &addr) {
            Ok(()) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "the shim does not accept connections",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        Ok(std::os::unix::net::UnixStream::from(fd))
    })
}

/// File name of the control socket in the state dir.
pub const SOCKET_FILE: &str = "shim.sock";

/// Seconds a created container waits for `start` before the shim kills it.
pub const START_TIMEOUT_SECS: u64 = 60;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Start,
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
    },
    Wait,
    Watch,
    Signal {
        signal: i32,
        #[serde(default, skip_serializing_if = "is_false")]
        manual: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        cancel_restart: bool,
    },
    Update {
        restart: crate::restart::RestartPolicy,
    },
    Resize {
        height: u16,
        width: u16,
    },
    /// Close the log file and open the one now at its path (after the kubelet rotated a
    /// CRI log: CRI `ReopenContainerLog`).
    ReopenLog,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Answer to `start`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StartReply {
    /// Empty on success; otherwise Docker's wording, for example
    /// `exec: "nosuch": executable file not found in $PATH`.
    pub error: String,
    /// Docker's exit code for a failed start: 127 command not found, 126 not executable.
    pub exit_code: i64,
}

/// How the container ended; written to `exit.json` and sent to `wait` connections.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ExitStatus {
    /// Exit code, or 128 + signal number when killed by a signal.
    pub exit_code: i64,
    /// RFC 3339 with nanoseconds, UTC.
    pub finished_at: String,
    pub oom_killed: bool,
    /// Set when the container could not run or the shim failed.
    pub error: String,
    /// `RestartCount` at the end (restarts made by the shim included).
    pub restart_count: i64,
    /// When the last run started (RFC 3339, nanoseconds); empty if it never ran.
    pub started_at: String,
}

/// What a `watch` connection receives: the full state after each change.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ShimEvent {
    /// `state` (the first line), `exit` or `start`.
    pub kind: String,
    /// A process runs now (its host pid in `pid`).
    pub running: bool,
    /// Waiting to restart after `exit` (Docker's `Restarting`).
    pub restarting: bool,
    pub pid: i64,
    /// When the current (or last) run started (RFC 3339, nanoseconds).
    pub started_at: String,
    pub restart_count: i64,
    /// The last exit, if the container exited since the shim started.
    pub exit: Option<ExitStatus>,
}

/// Generic answer to `signal` and `resize`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Reply {
    pub ok: bool,
    pub error: String,
}

#[cfg(test)]
mod wire_tests {
    use super::*;

    #[test]
    fn older_and_newer_peers_understand_each_other() {
        // A plain signal is sent as before (a shim without restarts understands it).
        let line = serde_json::to_string(&Request::Signal {
            signal: 15,
            manual: false,
            cancel_restart: false,
        })
        .unwrap();
        assert_eq!(line, r#"{"op":"signal","signal":15}"#);
        let req: Request = serde_json::from_str(r#"{"op":"signal","signal":9}"#).unwrap();
        assert_eq!(
            req,
            Request::Signal {
                signal: 9,
                manual: false,
                cancel_restart: false
            }
        );
        // exit.json from a shim without restarts.
        let exit: ExitStatus =
            serde_json::from_str(r#"{"exit_code":3,"finished_at":"x","oom_killed":true}"#).unwrap();
        assert_eq!((exit.exit_code, exit.restart_count), (3, 0));
        // What an older shim answers to `watch`: no kind, which the daemon recognises.
        let ev: ShimEvent =
            serde_json::from_str(r#"{"ok":false,"error":"bad request: unknown variant"}"#).unwrap();
        assert!(ev.kind.is_empty());
        let req: Request = serde_json::from_str(
            r#"{"op":"update","restart":{"name":"on-failure","maximum_retry_count":2}}"#,
        )
        .unwrap();
        assert!(matches!(req, Request::Update { restart } if restart.maximum_retry_count == 2));
    }
}

#[cfg(test)]
mod socket_path_tests {
    use super::*;

    #[test]
    fn long_state_dirs_bind_and_connect_through_a_dir_handle() {
        let tmp = tempfile::tempdir().unwrap();
        let long = tmp.path().join("d".repeat(70)).join("e".repeat(70));
        std::fs::create_dir_all(&long).unwrap();
        let _listener =
            with_socket_path(&long, |p| std::os::unix::net::UnixListener::bind(p)).unwrap();
        assert!(long.join(SOCKET_FILE).exists());
        connect(&long).unwrap();
        connect_nonblocking(&long).unwrap();
    }

    #[test]
    fn a_full_backlog_never_blocks_a_connect() {
        let tmp = tempfile::tempdir().unwrap();
        let listener =
            with_socket_path(tmp.path(), |p| std::os::unix::net::UnixListener::bind(p)).unwrap();
        // Nobody accepts: the backlog fills, then connects must fail at once.
        let mut kept = Vec::new();
        let mut refused = false;
        for _ in 0..10_000 {
            match connect_nonblocking(tmp.path()) {
                Ok(s) => kept.push(s),
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
                    refused = true;
                    break;
                }
            }
        }
        assert!(refused, "{} connects never filled the backlog", kept.len());
        drop(listener);
    }
}
