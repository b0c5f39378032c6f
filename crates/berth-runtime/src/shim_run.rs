//! One run of a container inside the shim: its cgroups, stdio and init process, set up
//! and waiting for `go` (see [`crate::shim`]). The shim makes one at start-up and one
//! for each restart by the restart policy.

use crate::cgroup::{self, CgroupPaths};
use crate::cgroup_enter::Entry;
use crate::error::{Result, RuntimeError};
use crate::init::{self, InitStdio};
use crate::spec::ContainerSpec;
use nix::errno::Errno;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// A container process set up and waiting for `go`.
pub(crate) struct Run {
    pub cgroups: CgroupPaths,
    pub init_pid: i32,
    pub pidfd: Option<OwnedFd>,
    /// stdout pipe, or the pty master with a TTY.
    pub out: Option<OwnedFd>,
    pub err: Option<OwnedFd>,
    /// Where attach clients' bytes go (stdin pipe or pty master).
    pub stdin: Option<OwnedFd>,
    pub go: OwnedFd,
    pub status: OwnedFd,
}

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RuntimeError::sys("pipe2", e))
}

pub(crate) fn set_nonblocking(fd: RawFd) {
    // SAFETY: F_GETFL/F_SETFL take and return plain flags; no memory is passed.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// Reads up to `buf.len()` bytes; Ok(0) is EOF, Err(EAGAIN) means nothing yet.
pub(crate) fn read_fd(fd: RawFd, buf: &mut [u8]) -> std::result::Result<usize, Errno> {
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

pub(crate) fn write_fd(fd: RawFd, buf: &[u8]) -> std::result::Result<usize, Errno> {
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
pub(crate) fn read_status_line(fd: RawFd) -> Option<String> {
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

/// Creates the cgroups, the stdio and the init (set up, waiting for `go`). On error
/// nothing is left behind. The returned guard undoes the run until disarmed.
pub(crate) fn spawn_run(
    spec: &ContainerSpec,
    state_dir: &std::path::Path,
) -> Result<(Run, Cleanup)> {
    // `<exec-root>/containers/<id>` → `<exec-root>/cgroup-parents.json`.
    let registry = state_dir
        .parent()
        .and_then(|p| p.parent())
        .map(|root| root.join(crate::cgroup_parent::REGISTRY_FILE));
    let cgroups = cgroup::create_noting_parents(
        &spec.id,
        &spec.cgroup_parent,
        &spec.resources,
        spec.privileged,
        registry.as_deref(),
    )?;
    let mut cleanup = Cleanup {
        cgroups: Some(cgroups.clone()),
        pid: None,
        files: vec![],
    };
    cgroups.save(state_dir)?;
    cleanup.files.push(state_dir.join(cgroup::CGROUPS_FILE));

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
            let null =
                File::open("/dev/null").map_err(|e| RuntimeError::io("open", "/dev/null", e))?;
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
    let mut entry = Entry::plan(
        &cgroups,
        spec.userns.is_some() || spec.userns_join.is_some(),
    );
    let pid = init::spawn(
        spec,
        &mut entry,
        stdio,
        go_r.as_raw_fd(),
        status_w.as_raw_fd(),
        &shim_fds,
    )?;
    cleanup.pid = Some(pid);
    drop(child_fds);
    drop(go_r);
    drop(status_w);

    cgroup::add_process(&entry.by_shim, pid)?;
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
    // SAFETY: pidfd_open takes a pid and flags, no memory; nix has no wrapper.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let pidfd = (pidfd >= 0).then(|| {
        // SAFETY: a non-negative result is a new fd that nothing else owns.
        unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) }
    });
    for fd in [&out, &err, &stdin].into_iter().flatten() {
        set_nonblocking(fd.as_raw_fd());
    }
    Ok((
        Run {
            cgroups,
            init_pid: pid,
            pidfd,
            out,
            err,
            stdin,
            go: go_w,
            status: status_r,
        },
        cleanup,
    ))
}

/// Undoes a half-done start-up unless disarmed.
pub(crate) struct Cleanup {
    pub cgroups: Option<CgroupPaths>,
    pub pid: Option<i32>,
    pub files: Vec<PathBuf>,
}

impl Cleanup {
    pub fn disarm(&mut self) {
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
