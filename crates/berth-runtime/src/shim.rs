//! `berth shim <state-dir>`: the per-container process (see [`crate::protocol`]).
//!
//! Single-threaded, no async runtime: it creates the cgroups and stdio, clones the
//! container init, reports `ok <pid>` or `error <message>`, detaches, and then serves
//! the control socket from a `poll` loop until the container exits.

use crate::cgroup::{self, CgroupPaths};
use crate::error::{Result, RuntimeError};
use crate::fsutil::write_atomic;
use crate::jsonlog::{self, Stream};
use crate::logwriter::LogWriter;
use crate::protocol::{ExitStatus, Reply, Request, ShimEvent, StartReply, START_TIMEOUT_SECS};
use crate::restart::RestartManager;
use crate::shim_run::{read_fd, read_status_line, spawn_run, write_fd};
use crate::spec::ContainerSpec;

#[path = "shim_clients.rs"]
mod clients;
#[path = "shim_requests.rs"]
mod requests;
#[path = "shim_restart.rs"]
mod restart_loop;
use nix::errno::Errno;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const SPEC_FILE: &str = "spec.json";
pub use crate::protocol::SOCKET_FILE;
pub const SHIM_PID_FILE: &str = "shim.pid";
pub const INIT_PID_FILE: &str = "init.pid";
pub const EXIT_FILE: &str = "exit.json";
pub const LOG_FILE: &str = "shim.log";
/// The nice value the container must run at (the daemon's own), handed over by the
/// daemon. The daemon forks the shim from a lifecycle thread, below the daemon's
/// priority, and the shim sets the container up at that priority: a start's work never
/// takes the CPU from the daemon's API threads. The container's init gets this value
/// before its exec, the shim itself right after it ([`Shim::start`]).
pub const NICE_ENV: &str = "BERTH_SHIM_NICE";

/// Entry point for `berth shim`; returns the process exit code.
pub fn main(args: &[OsString]) -> i32 {
    let Some(dir) = args.first() else {
        eprintln!("usage: berth shim <state-dir>");
        return 2;
    };
    let state_dir = std::path::absolute(dir).unwrap_or_else(|_| PathBuf::from(dir));
    // SAFETY: SIG_IGN installs no handler of ours; nothing runs in a signal context.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    // Our own process group, in the daemon's session (as containerd's shims): neither a
    // signal to the daemon's process group nor its terminal's reaches us, and the daemon
    // dying leaves us running. (The daemon already made us a group leader.)
    let _ = nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0));
    let nice = std::env::var(NICE_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok());
    let mut shim = match Shim::create(&state_dir, nice) {
        Ok(s) => s,
        Err(e) => {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "error {}", e.to_string().replace('\n', " "));
            let _ = out.flush();
            return 1;
        }
    };
    {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "ok {}", shim.init_pid);
        let _ = out.flush();
    }
    detach(&state_dir);
    shim.run();
    0
}

/// The container's `spec.json` in its state dir.
fn read_spec(state_dir: &Path) -> Result<ContainerSpec> {
    let spec_path = state_dir.join(SPEC_FILE);
    let data = std::fs::read(&spec_path).map_err(|e| RuntimeError::io("read", &spec_path, e))?;
    serde_json::from_slice(&data)
        .map_err(|e| RuntimeError::InvalidArgument(format!("{}: {e}", spec_path.display())))
}

/// `update` of a running container: the limits its shim uses for the next restart by
/// the restart policy.
pub fn update_spec_resources(state_dir: &Path, res: &crate::spec::Resources) -> Result<()> {
    let mut spec = read_spec(state_dir)?;
    spec.resources = res.clone();
    let data = serde_json::to_vec_pretty(&spec)
        .map_err(|e| RuntimeError::Internal(format!("encoding the spec: {e}")))?;
    write_atomic(&state_dir.join(SPEC_FILE), &data)
}

/// stdin and stdout to /dev/null (closing the start-up pipe), stderr to `shim.log`.
fn detach(state_dir: &Path) {
    // SAFETY: open takes a NUL-terminated literal; dup2 and close only change this
    // process's fd table, on the fd just opened and the standard ones.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::close(null);
        }
    }
    if let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join(LOG_FILE))
    {
        // SAFETY: `f` is open for the call; dup2 only changes this process's fd table.
        unsafe { libc::dup2(f.as_raw_fd(), 2) };
    }
}

fn log(msg: &str) {
    eprintln!(
        "{} berth-shim: {msg}",
        jsonlog::format_time(chrono::Utc::now())
    );
}

/// setpriority(2) of one thread (`pid` 0: the calling one; the shim and a container's
/// init before its exec are single-threaded).
fn set_nice(pid: i32, nice: i32) -> std::io::Result<()> {
    // SAFETY: setpriority takes plain integers.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, pid as libc::id_t, nice) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn set_cloexec(fd: RawFd) {
    // SAFETY: F_SETFD takes a plain flag; no memory is passed.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

fn wait_status_to_code(status: i32) -> i64 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as i64
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status) as i64
    } else {
        255
    }
}

#[derive(Debug)]
enum ClientState {
    /// Waiting for the request line.
    Request,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
        stdin_done: bool,
    },
    Wait,
    /// Gets a [`ShimEvent`] line on each change until the final exit.
    Watch,
    /// Answered; close once the output buffer is flushed.
    Closing,
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    state: ClientState,
    dead: bool,
}

/// The running shim.
struct Shim {
    spec: ContainerSpec,
    state_dir: PathBuf,
    cgroups: CgroupPaths,
    init_pid: i32,
    pidfd: Option<OwnedFd>,
    listener: UnixListener,
    /// stdout pipe, or the pty master with a TTY.
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    /// Where attach clients' bytes go (stdin pipe or pty master).
    stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    go: Option<OwnedFd>,
    status: Option<OwnedFd>,
    started: bool,
    created: Instant,
    start_error: String,
    /// Docker's exit code for a start that failed (127, 126), else 0.
    start_exit_code: i64,
    log: Option<LogWriter>,
    clients: Vec<Client>,
    /// The restart policy, the restarts so far and the backoff.
    restart: RestartManager,
    /// Stopped by the user (`stop`, `kill`): `unless-stopped` does not restart.
    manual: bool,
    /// When the current (or last) run started, RFC 3339.
    started_at: String,
    run_started: Instant,
    last_exit: Option<ExitStatus>,
    /// The nice value to restore at start ([`NICE_ENV`]); None once done.
    nice: Option<i32>,
}

impl Shim {
    /// Everything up to `ok <pid>`; on error nothing is left behind.
    fn create(state_dir: &Path, nice: Option<i32>) -> Result<Shim> {
        let spec = read_spec(state_dir)?;
        if spec.process.args.is_empty() {
            return Err(RuntimeError::InvalidArgument("no command specified".into()));
        }
        for f in [EXIT_FILE, SOCKET_FILE, SHIM_PID_FILE, INIT_PID_FILE] {
            let _ = std::fs::remove_file(state_dir.join(f));
        }
        // Bad input is refused before anything is created.
        crate::capabilities::compute(spec.privileged, &spec.cap_add, &spec.cap_drop)?;
        let log = if spec.log_path.as_os_str().is_empty() {
            None
        } else {
            Some(
                LogWriter::open(&spec.log_path, spec.log.clone())
                    .map_err(|e| RuntimeError::io("opening log file", &spec.log_path, e))?,
            )
        };

        let (run, mut cleanup) = spawn_run(&spec, state_dir)?;
        let pid = run.init_pid;
        let sock_path = state_dir.join(SOCKET_FILE);
        let listener = crate::protocol::with_socket_path(state_dir, |p| UnixListener::bind(p))
            .map_err(|e| RuntimeError::io("bind", &sock_path, e))?;
        cleanup.files.push(sock_path);
        listener
            .set_nonblocking(true)
            .map_err(|e| RuntimeError::io("set_nonblocking", state_dir, e))?;
        set_cloexec(listener.as_raw_fd());
        write_atomic(
            &state_dir.join(SHIM_PID_FILE),
            std::process::id().to_string().as_bytes(),
        )?;
        cleanup.files.push(state_dir.join(SHIM_PID_FILE));
        write_atomic(&state_dir.join(INIT_PID_FILE), pid.to_string().as_bytes())?;
        cleanup.files.push(state_dir.join(INIT_PID_FILE));
        cleanup.disarm();
        let restart = RestartManager::new(spec.restart.clone(), spec.restart_count);
        Ok(Shim {
            spec,
            state_dir: state_dir.to_path_buf(),
            cgroups: run.cgroups,
            init_pid: pid,
            pidfd: run.pidfd,
            listener,
            out: run.out,
            err: run.err,
            stdin: run.stdin,
            stdin_buf: Vec::new(),
            go: Some(run.go),
            status: Some(run.status),
            started: false,
            created: Instant::now(),
            start_error: String::new(),
            start_exit_code: 0,
            log,
            clients: Vec::new(),
            restart,
            manual: false,
            started_at: String::new(),
            run_started: Instant::now(),
            last_exit: None,
            nice,
        })
    }

    /// One round of the poll loop. With a process: Some(wait status) once it exited.
    /// Without one (waiting to restart): returns at `until` or on a cancel.
    fn serve(&mut self, until: Option<Instant>) -> Option<i32> {
        {
            if let Some(s) = self.try_reap() {
                return Some(s);
            }
            let mut fds: Vec<libc::pollfd> = Vec::new();
            let pfd = |fd: RawFd, events: i16| libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            fds.push(pfd(self.listener.as_raw_fd(), libc::POLLIN));
            fds.push(pfd(
                self.pidfd.as_ref().map_or(-1, |f| f.as_raw_fd()),
                libc::POLLIN,
            ));
            fds.push(pfd(
                self.out.as_ref().map_or(-1, |f| f.as_raw_fd()),
                libc::POLLIN,
            ));
            fds.push(pfd(
                self.err.as_ref().map_or(-1, |f| f.as_raw_fd()),
                libc::POLLIN,
            ));
            // stdin is polled only while bytes wait for it: a pipe whose reader is gone
            // or a pty master whose slave hung up reports POLLERR/POLLHUP whatever the
            // events asked, and polling it with nothing to write would spin.
            let stdin_fd = match (&self.stdin, self.stdin_buf.is_empty()) {
                (Some(f), false) => f.as_raw_fd(),
                _ => -1,
            };
            fds.push(pfd(stdin_fd, libc::POLLOUT));
            for c in &self.clients {
                let mut ev = 0;
                let wants_in = match &c.state {
                    ClientState::Request => true,
                    ClientState::Attach { stdin_done, .. } => {
                        !stdin_done && self.stdin_buf.is_empty()
                    }
                    ClientState::Wait | ClientState::Watch => true,
                    ClientState::Closing => false,
                };
                if wants_in {
                    ev |= libc::POLLIN;
                }
                if !c.outbuf.is_empty() {
                    ev |= libc::POLLOUT;
                }
                fds.push(pfd(c.stream.as_raw_fd(), ev));
            }
            let timeout = if let Some(until) = until {
                until
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(1000) as i32
            } else if self.started {
                if self.pidfd.is_none() {
                    100
                } else {
                    -1
                }
            } else {
                let left =
                    Duration::from_secs(START_TIMEOUT_SECS).saturating_sub(self.created.elapsed());
                if left.is_zero() {
                    log("no start within the timeout; killing the container");
                    self.start_error = "the container was not started in time".into();
                    self.started = true;
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(self.init_pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    return None;
                }
                let ms = left.as_millis().min(i32::MAX as u128) as i32;
                if self.pidfd.is_none() {
                    ms.min(100)
                } else {
                    ms
                }
            };
            // SAFETY: the pointer and count describe `fds`, valid and writable for the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                if Errno::last() == Errno::EINTR {
                    return None;
                }
                log(&format!("poll: {}", Errno::last()));
                std::thread::sleep(Duration::from_millis(50));
                return None;
            }
            let ready = |i: usize| fds[i].revents != 0;
            if ready(2) {
                self.pump_output(Stream::Stdout);
            }
            if ready(3) {
                self.pump_output(Stream::Stderr);
            }
            if ready(4) {
                self.flush_stdin();
                if fds[4].revents & (libc::POLLHUP | libc::POLLERR) != 0
                    && !self.stdin_buf.is_empty()
                {
                    // Nobody reads the container's stdin any more: give the bytes up.
                    self.stdin_buf.clear();
                    self.stdin = None;
                }
            }
            for i in 0..self.clients.len() {
                let re = fds[5 + i].revents;
                if re & libc::POLLOUT != 0 {
                    self.flush_client(i);
                }
                if re & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                    self.read_client(i, re & (libc::POLLHUP | libc::POLLERR) != 0);
                }
            }
            self.clients.retain(|c| !c.dead);
            if ready(0) {
                self.accept();
            }
        }
        None
    }

    /// Non-blocking reap of the init: Some(wait status) once it exited.
    fn try_reap(&mut self) -> Option<i32> {
        if self.init_pid <= 0 {
            return None;
        }
        let mut status = 0;
        // SAFETY: `status` is a valid int for the kernel to write.
        let r = unsafe { libc::waitpid(self.init_pid, &mut status, libc::WNOHANG) };
        (r == self.init_pid).then_some(status)
    }

    /// After the init exited: drains its output, removes its cgroups and says how it
    /// ended.
    fn collect_exit(&mut self, wait_status: i32) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(2);
        while (self.out.is_some() || self.err.is_some()) && Instant::now() < deadline {
            let mut fds = [self.out.as_ref(), self.err.as_ref()].map(|f| libc::pollfd {
                fd: f.map_or(-1, |f| f.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            });
            // SAFETY: the pointer and count describe `fds` (two entries), valid for the call.
            unsafe { libc::poll(fds.as_mut_ptr(), 2, 100) };
            if fds[0].revents != 0 {
                self.pump_output(Stream::Stdout);
            }
            if fds[1].revents != 0 {
                self.pump_output(Stream::Stderr);
            }
        }
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.end_log_stream(stream);
        }
        let exit_code = if self.start_exit_code > 0 {
            self.start_exit_code
        } else {
            wait_status_to_code(wait_status)
        };
        let exit = ExitStatus {
            exit_code,
            finished_at: jsonlog::format_time(chrono::Utc::now()),
            oom_killed: cgroup::oom_killed(&self.cgroups),
            error: self.start_error.clone(),
            restart_count: self.restart.count,
            started_at: self.started_at.clone(),
        };
        log(&format!("container exited: {exit:?}"));
        if let Err(e) = cgroup::remove(&self.cgroups) {
            log(&format!("removing cgroups: {e}"));
        }
        // The run is over: no process, no stdio.
        self.init_pid = 0;
        self.pidfd = None;
        self.out = None;
        self.err = None;
        self.stdin = None;
        self.stdin_buf.clear();
        exit
    }

    /// The container exited for good: records the exit, tells everyone, closes.
    fn finish(&mut self, mut exit: ExitStatus) {
        exit.restart_count = self.restart.count;
        self.last_exit = Some(exit.clone());
        match serde_json::to_vec(&exit) {
            Ok(data) => {
                if let Err(e) = write_atomic(&self.state_dir.join(EXIT_FILE), &data) {
                    log(&format!("writing exit.json: {e}"));
                }
            }
            Err(e) => log(&format!("encoding exit status: {e}")),
        }
        let _ = std::fs::remove_file(self.state_dir.join(SOCKET_FILE));
        let mut line = serde_json::to_vec(&exit).unwrap_or_default();
        line.push(b'\n');
        let mut watch_line = serde_json::to_vec(&self.event("exit", false)).unwrap_or_default();
        watch_line.push(b'\n');
        for c in &mut self.clients {
            match c.state {
                ClientState::Wait => c.outbuf.extend_from_slice(&line),
                ClientState::Watch => c.outbuf.extend_from_slice(&watch_line),
                _ => {}
            }
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(5)));
            let _ = c.stream.write_all(&c.outbuf);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        self.clients.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        // W_EXITCODE(3, 0) and a SIGKILL termination.
        assert_eq!(wait_status_to_code(3 << 8), 3);
        assert_eq!(wait_status_to_code(9), 137);
    }
}
