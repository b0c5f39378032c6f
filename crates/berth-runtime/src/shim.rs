//! `berth shim <state-dir>`: the per-container process (see [`crate::protocol`]).
//!
//! Single-threaded, no async runtime: it creates the cgroups and stdio, clones the
//! container init, reports `ok <pid>` or `error <message>`, detaches, and then serves
//! the control socket from a `poll` loop until the container exits.

use crate::cgroup::{self, CgroupPaths};
use crate::error::{Result, RuntimeError};
use crate::fsutil::write_atomic;
use crate::init::{self, InitStdio};
use crate::jsonlog::{self, Stream};
use crate::logwriter::LogWriter;
use crate::protocol::{ExitStatus, Reply, Request, StartReply, START_TIMEOUT_SECS};
use crate::spec::ContainerSpec;
use nix::errno::Errno;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const SPEC_FILE: &str = "spec.json";
pub use crate::protocol::SOCKET_FILE;
pub const SHIM_PID_FILE: &str = "shim.pid";
pub const INIT_PID_FILE: &str = "init.pid";
pub const EXIT_FILE: &str = "exit.json";
pub const LOG_FILE: &str = "shim.log";

/// A client's buffered output is dropped beyond this (a client that stopped reading).
const MAX_CLIENT_BUFFER: usize = 16 << 20;

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
    // Our own session, so the daemon's death (or its terminal's) never reaches us.
    let _ = nix::unistd::setsid();
    let mut shim = match Shim::create(&state_dir) {
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

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RuntimeError::sys("pipe2", e))
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: F_GETFL/F_SETFL take and return plain flags; no memory is passed.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

fn set_cloexec(fd: RawFd) {
    // SAFETY: F_SETFD takes a plain flag; no memory is passed.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

/// Reads up to `buf.len()` bytes; Ok(0) is EOF, Err(EAGAIN) means nothing yet.
fn read_fd(fd: RawFd, buf: &mut [u8]) -> std::result::Result<usize, Errno> {
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        match Errno::last() {
            Errno::EINTR => continue,
            // A pty master reads EIO once every slave fd is closed: that is EOF.
            Errno::EIO => return Ok(0),
            e => return Err(e),
        }
    }
}

fn write_fd(fd: RawFd, buf: &[u8]) -> std::result::Result<usize, Errno> {
    loop {
        // SAFETY: the pointer and length describe `buf`, valid for the call.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// Reads the init's status pipe until a complete line or EOF (blocking).
fn read_status_line(fd: RawFd) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match read_fd(fd, &mut b) {
            Ok(1) if b[0] == b'\n' => return Some(String::from_utf8_lossy(&line).into_owned()),
            Ok(1) => line.push(b[0]),
            _ => return (!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()),
        }
    }
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
    log: Option<LogWriter>,
    clients: Vec<Client>,
}

impl Shim {
    /// Everything up to `ok <pid>`; on error nothing is left behind.
    fn create(state_dir: &Path) -> Result<Shim> {
        let spec_path = state_dir.join(SPEC_FILE);
        let data =
            std::fs::read(&spec_path).map_err(|e| RuntimeError::io("read", &spec_path, e))?;
        let spec: ContainerSpec = serde_json::from_slice(&data)
            .map_err(|e| RuntimeError::InvalidArgument(format!("{}: {e}", spec_path.display())))?;
        if spec.process.args.is_empty() {
            return Err(RuntimeError::InvalidArgument("no command specified".into()));
        }
        for f in [EXIT_FILE, SOCKET_FILE, SHIM_PID_FILE, INIT_PID_FILE] {
            let _ = std::fs::remove_file(state_dir.join(f));
        }
        // Bad input is refused before anything is created.
        crate::capabilities::compute(spec.privileged, &spec.cap_add, &spec.cap_drop)?;
        let cgroups = cgroup::create(
            &spec.id,
            &spec.cgroup_parent,
            &spec.resources,
            spec.privileged,
        )?;
        let mut cleanup = Cleanup {
            cgroups: Some(cgroups.clone()),
            pid: None,
            files: vec![],
        };
        cgroups.save(state_dir)?;
        cleanup.files.push(state_dir.join(cgroup::CGROUPS_FILE));

        let log = if spec.log_path.as_os_str().is_empty() {
            None
        } else {
            Some(
                LogWriter::open(&spec.log_path, spec.log.clone())
                    .map_err(|e| RuntimeError::io("opening log file", &spec.log_path, e))?,
            )
        };

        // Container stdio. `child` fds go to the init, the others stay here.
        let mut child_fds: Vec<OwnedFd> = Vec::new();
        let mut console_socket: Option<OwnedFd> = None;
        let (stdio, out, err, stdin) = if spec.process.tty {
            let (ours, theirs) = nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::Stream,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| RuntimeError::sys("socketpair for the console", e))?;
            let stdio = InitStdio::Tty {
                console_socket: theirs.as_raw_fd(),
                size: spec.process.console_size,
            };
            console_socket = Some(ours);
            child_fds.push(theirs);
            (stdio, None, None, None)
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let (in_child, in_shim) = if spec.process.open_stdin {
                let (r, w) = pipe()?;
                (r, Some(w))
            } else {
                let null = File::open("/dev/null")
                    .map_err(|e| RuntimeError::io("open", "/dev/null", e))?;
                (OwnedFd::from(null), None)
            };
            let stdio = InitStdio::Pipes {
                stdin: in_child.as_raw_fd(),
                stdout: out_w.as_raw_fd(),
                stderr: err_w.as_raw_fd(),
            };
            child_fds.extend([in_child, out_w, err_w]);
            (stdio, Some(out_r), Some(err_r), in_shim)
        };
        let (go_r, go_w) = pipe()?;
        let (status_r, status_w) = pipe()?;

        let mut shim_fds = vec![go_w.as_raw_fd(), status_r.as_raw_fd()];
        shim_fds.extend(
            [&out, &err, &stdin, &console_socket]
                .into_iter()
                .flatten()
                .map(|f| f.as_raw_fd()),
        );
        let pid = init::spawn(
            &spec,
            &cgroups,
            stdio,
            go_r.as_raw_fd(),
            status_w.as_raw_fd(),
            &shim_fds,
        )?;
        cleanup.pid = Some(pid);
        drop(child_fds);
        drop(go_r);
        drop(status_w);

        cgroup::add_process(&cgroups, pid)?;
        write_fd(go_w.as_raw_fd(), b"c")
            .map_err(|e| RuntimeError::sys("signalling the container init", e))?;
        let (mut out, mut stdin) = (out, stdin);
        if let Some(sock) = &console_socket {
            // On a set-up failure before the pty exists the socket just closes; the
            // status line below says why.
            if let Ok(master) = crate::pty::recv_master(sock.as_raw_fd()) {
                stdin = Some(
                    master
                        .try_clone()
                        .map_err(|e| RuntimeError::io("dup", "pty master", e))?,
                );
                out = Some(master);
            }
        }
        drop(console_socket);
        match read_status_line(status_r.as_raw_fd()) {
            Some(l) if l == "ready" => {}
            Some(l) => {
                let msg = l.strip_prefix("error ").unwrap_or(&l).to_string();
                return Err(RuntimeError::Internal(msg));
            }
            None => {
                return Err(RuntimeError::Internal(
                    "container init exited during set-up".into(),
                ))
            }
        }

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
        // SAFETY: pidfd_open takes a pid and flags, no memory; nix has no wrapper.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = (pidfd >= 0).then(|| {
            // SAFETY: a non-negative result is a new fd that nothing else owns.
            unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) }
        });

        for fd in [&out, &err, &stdin].into_iter().flatten() {
            set_nonblocking(fd.as_raw_fd());
        }
        cleanup.disarm();
        Ok(Shim {
            spec,
            state_dir: state_dir.to_path_buf(),
            cgroups,
            init_pid: pid,
            pidfd,
            listener,
            out,
            err,
            stdin,
            stdin_buf: Vec::new(),
            go: Some(go_w),
            status: Some(status_r),
            started: false,
            created: Instant::now(),
            start_error: String::new(),
            log,
            clients: Vec::new(),
        })
    }

    /// The event loop; returns when the container has exited and everything is told.
    fn run(&mut self) {
        log(&format!(
            "container {} init pid {}",
            self.spec.id, self.init_pid
        ));
        let status = loop {
            if let Some(s) = self.try_reap() {
                break s;
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
            let stdin_ev = if self.stdin_buf.is_empty() {
                0
            } else {
                libc::POLLOUT
            };
            fds.push(pfd(
                self.stdin.as_ref().map_or(-1, |f| f.as_raw_fd()),
                stdin_ev,
            ));
            for c in &self.clients {
                let mut ev = 0;
                let wants_in = match &c.state {
                    ClientState::Request => true,
                    ClientState::Attach { stdin_done, .. } => {
                        !stdin_done && self.stdin_buf.is_empty()
                    }
                    ClientState::Wait => true,
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
            let timeout = if self.started {
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
                    continue;
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
                    continue;
                }
                log(&format!("poll: {}", Errno::last()));
                std::thread::sleep(Duration::from_millis(50));
                continue;
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
            }
            for i in 0..self.clients.len() {
                let re = fds[5 + i].revents;
                if re & libc::POLLOUT != 0 {
                    self.flush_client(i);
                }
                if re & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                    self.read_client(i);
                }
            }
            self.clients.retain(|c| !c.dead);
            if ready(0) {
                self.accept();
            }
        };
        self.finish(status);
    }

    /// Non-blocking reap of the init: Some(wait status) once it exited.
    fn try_reap(&mut self) -> Option<i32> {
        let mut status = 0;
        // SAFETY: `status` is a valid int for the kernel to write.
        let r = unsafe { libc::waitpid(self.init_pid, &mut status, libc::WNOHANG) };
        (r == self.init_pid).then_some(status)
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(true);
                    set_cloexec(stream.as_raw_fd());
                    self.clients.push(Client {
                        stream,
                        inbuf: Vec::new(),
                        outbuf: Vec::new(),
                        state: ClientState::Request,
                        dead: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log(&format!("accept: {e}"));
                    return;
                }
            }
        }
    }

    /// Reads what the container wrote; logs it and sends it to attach clients.
    /// Returns false at EOF.
    fn pump_output(&mut self, stream: Stream) -> bool {
        let slot = match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        let Some(fd) = slot.as_ref().map(|f| f.as_raw_fd()) else {
            return false;
        };
        let mut buf = vec![0u8; 32 * 1024];
        match read_fd(fd, &mut buf) {
            Ok(0) => {
                *slot = None;
                self.end_log_stream(stream);
                false
            }
            Ok(n) => {
                self.emit(stream, &buf[..n]);
                true
            }
            Err(Errno::EAGAIN) => true,
            Err(e) => {
                log(&format!("reading container {}: {e}", stream.name()));
                *slot = None;
                self.end_log_stream(stream);
                false
            }
        }
    }

    fn emit(&mut self, stream: Stream, data: &[u8]) {
        if let Some(writer) = self.log.as_mut() {
            if let Err(e) = writer.write(stream, data) {
                log(&format!("writing {}: {e}", self.spec.log_path.display()));
            }
        }
        let frame = jsonlog::frame(stream, data);
        for c in &mut self.clients {
            if let ClientState::Attach { stdout, stderr, .. } = c.state {
                let wanted = match stream {
                    Stream::Stdout => stdout,
                    Stream::Stderr => stderr,
                };
                if wanted {
                    c.outbuf.extend_from_slice(&frame);
                    if c.outbuf.len() > MAX_CLIENT_BUFFER {
                        log("dropping an attach client that stopped reading");
                        c.dead = true;
                    }
                }
            }
        }
        for i in 0..self.clients.len() {
            self.flush_client(i);
        }
    }

    /// A stream ended: the log gets what is left of an unfinished line.
    fn end_log_stream(&mut self, stream: Stream) {
        if let Some(writer) = self.log.as_mut() {
            if let Err(e) = writer.close_stream(stream) {
                log(&format!("writing {}: {e}", self.spec.log_path.display()));
            }
        }
    }

    fn flush_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        while !c.outbuf.is_empty() && !c.dead {
            match c.stream.write(&c.outbuf) {
                Ok(0) => c.dead = true,
                Ok(n) => {
                    c.outbuf.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => c.dead = true,
            }
        }
        if c.outbuf.is_empty() && matches!(c.state, ClientState::Closing) {
            c.dead = true;
        }
    }

    fn flush_stdin(&mut self) {
        let Some(fd) = self.stdin.as_ref().map(|f| f.as_raw_fd()) else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match write_fd(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    self.stdin_buf.clear();
                    self.stdin = None;
                    return;
                }
            }
        }
    }

    fn close_stdin_if_once(&mut self) {
        if self.spec.process.stdin_once && !self.spec.process.tty {
            self.flush_stdin();
            // Remaining buffered bytes are given up: the client is gone.
            self.stdin_buf.clear();
            self.stdin = None;
        }
    }

    fn read_client(&mut self, i: usize) {
        let mut buf = vec![0u8; 32 * 1024];
        let r = self.clients[i].stream.read(&mut buf);
        match r {
            Ok(0) => {
                let c = &mut self.clients[i];
                match c.state {
                    ClientState::Attach {
                        stdin: true,
                        stdin_done: false,
                        ..
                    } => {
                        if let ClientState::Attach { stdin_done, .. } = &mut c.state {
                            *stdin_done = true;
                        }
                        self.close_stdin_if_once();
                    }
                    ClientState::Attach { .. } => {
                        if let ClientState::Attach { stdin_done, .. } = &mut c.state {
                            *stdin_done = true;
                        }
                    }
                    _ => c.dead = true,
                }
            }
            Ok(n) => self.client_data(i, &buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                let was_stdin = matches!(
                    self.clients[i].state,
                    ClientState::Attach {
                        stdin: true,
                        stdin_done: false,
                        ..
                    }
                );
                self.clients[i].dead = true;
                if was_stdin {
                    self.close_stdin_if_once();
                }
            }
        }
    }

    fn client_data(&mut self, i: usize, data: &[u8]) {
        match self.clients[i].state {
            ClientState::Attach { stdin, .. } => {
                if stdin && self.stdin.is_some() {
                    self.stdin_buf.extend_from_slice(data);
                    self.flush_stdin();
                }
            }
            ClientState::Request => {
                self.clients[i].inbuf.extend_from_slice(data);
                let Some(pos) = self.clients[i].inbuf.iter().position(|b| *b == b'\n') else {
                    if self.clients[i].inbuf.len() > 64 * 1024 {
                        self.clients[i].dead = true;
                    }
                    return;
                };
                let rest = self.clients[i].inbuf.split_off(pos + 1);
                let line = std::mem::take(&mut self.clients[i].inbuf);
                match serde_json::from_slice::<Request>(&line) {
                    Ok(req) => self.handle(i, req, rest),
                    Err(e) => self.answer(
                        i,
                        &Reply {
                            ok: false,
                            error: format!("bad request: {e}"),
                        },
                    ),
                }
            }
            // Anything else sent on a wait connection is ignored.
            ClientState::Wait | ClientState::Closing => {}
        }
    }

    fn answer<T: serde::Serialize>(&mut self, i: usize, reply: &T) {
        let c = &mut self.clients[i];
        if let Ok(mut line) = serde_json::to_vec(reply) {
            line.push(b'\n');
            c.outbuf.extend_from_slice(&line);
        }
        c.state = ClientState::Closing;
        self.flush_client(i);
    }

    fn handle(&mut self, i: usize, req: Request, rest: Vec<u8>) {
        match req {
            Request::Start => {
                let reply = self.start();
                self.answer(i, &reply);
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                let stdin = stdin && self.stdin.is_some();
                self.clients[i].state = ClientState::Attach {
                    stdin,
                    stdout,
                    stderr,
                    stdin_done: !stdin,
                };
                if !rest.is_empty() {
                    self.client_data(i, &rest);
                }
            }
            Request::Wait => self.clients[i].state = ClientState::Wait,
            Request::Signal { signal } => {
                // SAFETY: kill takes two integers; any signal number (real-time ones too,
                // which nix's Signal cannot name) is checked by the kernel.
                let r = unsafe { libc::kill(self.init_pid, signal) };
                let reply = if r == 0 {
                    Reply {
                        ok: true,
                        error: String::new(),
                    }
                } else {
                    Reply {
                        ok: false,
                        error: format!("cannot kill container: {}", Errno::last().desc()),
                    }
                };
                self.answer(i, &reply);
            }
            Request::Resize { height, width } => {
                let reply = self.resize(height, width);
                self.answer(i, &reply);
            }
        }
    }

    fn resize(&self, rows: u16, cols: u16) -> Reply {
        let (true, Some(master)) = (
            self.spec.process.tty,
            self.out.as_ref().or(self.stdin.as_ref()),
        ) else {
            return Reply {
                ok: false,
                error: "the container has no TTY".into(),
            };
        };
        if let Err(e) = crate::pty::set_size(master.as_raw_fd(), rows, cols) {
            return Reply {
                ok: false,
                error: e.to_string(),
            };
        }
        Reply {
            ok: true,
            error: String::new(),
        }
    }

    /// Releases the init; waits until its exec succeeded or failed.
    fn start(&mut self) -> StartReply {
        if self.started {
            return StartReply {
                error: "container already started".into(),
                exit_code: 0,
            };
        }
        self.started = true;
        let Some(go) = self.go.take() else {
            return StartReply {
                error: "container init is gone".into(),
                exit_code: 0,
            };
        };
        if write_fd(go.as_raw_fd(), b"s").is_err() {
            return StartReply {
                error: "container init exited before start".into(),
                exit_code: 0,
            };
        }
        drop(go);
        let Some(status) = self.status.take() else {
            return StartReply::default();
        };
        match read_status_line(status.as_raw_fd()) {
            None => StartReply::default(),
            Some(line) => {
                let mut parts = line.splitn(3, ' ');
                let (kind, code, msg) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
                let (exit_code, error) = match (kind, code.and_then(|c| c.parse::<i64>().ok())) {
                    (Some("exec"), Some(code)) => (code, msg.to_string()),
                    _ => (0, line.strip_prefix("error ").unwrap_or(&line).to_string()),
                };
                self.start_error = error.clone();
                StartReply { error, exit_code }
            }
        }
    }

    /// After the init exited: drain output, record the exit, tell everyone, clean up.
    fn finish(&mut self, wait_status: i32) {
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
        let exit = ExitStatus {
            exit_code: wait_status_to_code(wait_status),
            finished_at: jsonlog::format_time(chrono::Utc::now()),
            oom_killed: cgroup::oom_killed(&self.cgroups),
            error: self.start_error.clone(),
        };
        log(&format!("container exited: {exit:?}"));
        if let Err(e) = cgroup::remove(&self.cgroups) {
            log(&format!("removing cgroups: {e}"));
        }
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
        for c in &mut self.clients {
            if matches!(c.state, ClientState::Wait) {
                c.outbuf.extend_from_slice(&line);
            }
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(5)));
            let _ = c.stream.write_all(&c.outbuf);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        self.clients.clear();
    }
}

/// Undoes a half-done start-up unless disarmed.
struct Cleanup {
    cgroups: Option<CgroupPaths>,
    pid: Option<i32>,
    files: Vec<PathBuf>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.cgroups = None;
        self.pid = None;
        self.files.clear();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: kill takes integers; `st` is a valid int for waitpid to write.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                let mut st = 0;
                libc::waitpid(pid, &mut st, 0);
            }
        }
        if let Some(cg) = &self.cgroups {
            let _ = cgroup::remove(cg);
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
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
