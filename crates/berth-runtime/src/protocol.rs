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
//! - `{"op":"signal","signal":15}`: sends the signal to the container's init process;
//!   answer `{"ok":true}` or `{"error":"..."}`.
//! - `{"op":"resize","height":40,"width":100}`: resizes the TTY; same answer.
//!
//! Files the shim keeps in its state dir:
//! - `shim.pid`: the shim's own pid; `init.pid`: the container's init pid (host view),
//!   written before the shim reports ready.
//! - `exit.json`: [`ExitStatus`], written (temp + rename) before the shim exits, so the
//!   daemon learns how a container ended even if it was down at the time.
//!
//! Start-up: `berth shim <state-dir>` prints one line on its stdout and closes it: `ok
//! <init-pid>` once the container is set up and waiting for `start`, or `error <message>`
//! (then nothing is left behind: no cgroup, no process, no socket). It detaches into its
//! own session, so the daemon may exit or be killed while the container runs.

use serde::{Deserialize, Serialize};

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
    Signal { signal: i32 },
    Resize { height: u16, width: u16 },
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
}

/// Generic answer to `signal` and `resize`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Reply {
    pub ok: bool,
    pub error: String,
}

/// The file name of the shim's control socket inside its state dir.
pub const SOCKET_FILE: &str = "shim.sock";

/// Longest socket path `bind`/`connect` take (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A path by which the shim's socket in `state_dir` can be bound or reached, whatever the
/// length of `state_dir`. Short paths are used as they are; a longer one goes through an
/// `O_PATH` handle of the directory (`/proc/self/fd/N/shim.sock`), which must stay open
/// while the path is used: keep this value alive across the `bind` or `connect`.
pub struct SocketPath {
    path: std::path::PathBuf,
    _dir: Option<std::os::fd::OwnedFd>,
}

impl SocketPath {
    pub fn new(state_dir: &std::path::Path) -> std::io::Result<Self> {
        let direct = state_dir.join(SOCKET_FILE);
        if direct.as_os_str().len() <= MAX_SOCKET_PATH {
            return Ok(SocketPath { path: direct, _dir: None });
        }
        let dir: std::os::fd::OwnedFd = nix::fcntl::open(
            state_dir,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(std::io::Error::from)?;
        use std::os::fd::AsRawFd;
        let path = format!("/proc/self/fd/{}/{SOCKET_FILE}", dir.as_raw_fd()).into();
        Ok(SocketPath { path, _dir: Some(dir) })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_state_dirs_get_a_short_socket_path_that_binds_and_connects() {
        let tmp = tempfile::tempdir().unwrap();
        let long = tmp.path().join("d".repeat(70)).join("e".repeat(70));
        std::fs::create_dir_all(&long).unwrap();
        let sock = SocketPath::new(&long).unwrap();
        assert!(sock.path().as_os_str().len() <= MAX_SOCKET_PATH);
        let _listener = std::os::unix::net::UnixListener::bind(sock.path()).unwrap();
        assert!(long.join(SOCKET_FILE).exists());
        let client = SocketPath::new(&long).unwrap();
        std::os::unix::net::UnixStream::connect(client.path()).unwrap();
    }

    #[test]
    fn short_state_dirs_are_used_as_they_are() {
        let sock = SocketPath::new(std::path::Path::new("/run/berth/containers/abc")).unwrap();
        assert_eq!(sock.path(), std::path::Path::new("/run/berth/containers/abc/shim.sock"));
    }
}
