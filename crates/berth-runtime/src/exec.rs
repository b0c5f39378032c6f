//! `berth exec-helper <ExecSpec JSON>`: runs a process inside a running container
//! (contract on [`crate::spec::ExecSpec`]).
//!
//! The helper opens the namespaces of the container's init, joins its cgroups, enters
//! the namespaces (mount last), forks, and the child becomes the process: user, env,
//! cwd, capabilities, exec. The helper reports on fd 3 and exits with the process's
//! exit code.
//!
//! With `process.tty`, fd 4 is a unix socket: after joining the container the helper
//! opens a pty in the container's devpts, the child makes the slave its controlling
//! terminal and stdio, and the master goes back over fd 4 (SCM_RIGHTS) before the
//! status line; whoever receives it relays the terminal and resizes it.

use crate::capabilities;
use crate::cgroup_enter;
use crate::error::{Result, RuntimeError};
use crate::init::{self, InitFailure};
use crate::pty;
use crate::security::Confinement;
use crate::spec::ExecSpec;
use crate::syscall::{Kernel, Syscall};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// Namespaces an exec joins, in order (mount last: after it, host paths are gone; then a
/// remapped container's user namespace, once host root has entered every other one).
const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("user", CloneFlags::CLONE_NEWUSER),
];

/// Exit code when the process could not be set up (Docker's "cannot invoke").
const SETUP_FAILED: i32 = 126;

/// Entry point for `berth exec-helper`; returns the process exit code.
pub fn main(args: &[OsString]) -> i32 {
    // Nothing in the container may open our /proc/<pid>/exe (CVE-2019-5736).
    let _ = nix::sys::prctl::set_dumpable(false);
    let mut status = status_pipe();
    let spec: ExecSpec = match args
        .first()
        .and_then(|a| a.to_str())
        .map(serde_json::from_str)
    {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            return report_error(
                &mut status,
                &format!("invalid exec spec: {e}"),
                SETUP_FAILED,
            )
        }
        None => {
            return report_error(
                &mut status,
                "usage: berth exec-helper '<ExecSpec JSON>'",
                SETUP_FAILED,
            )
        }
    };
    let console_socket = if spec.process.tty {
        match console_socket() {
            Some(s) => Some(s),
            None => {
                return report_error(
                    &mut status,
                    "exec with a TTY needs a console socket on fd 4",
                    SETUP_FAILED,
                )
            }
        }
    } else {
        None
    };
    let v2_cgroup = match enter_container(spec.init_pid) {
        Ok(v2) => v2,
        Err(e) => return report_error(&mut status, &e.to_string(), SETUP_FAILED),
    };
    // After joining the mount namespace: the pty comes from the container's devpts.
    let pty = match console_socket
        .as_ref()
        .map(|_| pty::open(spec.process.console_size))
    {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => return report_error(&mut status, &e.to_string(), SETUP_FAILED),
    };
    run(&spec, &mut status, pty, console_socket, v2_cgroup)
}

/// fd 4, the unix socket the pty master goes back on (TTY execs only).
fn console_socket() -> Option<OwnedFd> {
    // SAFETY: F_GETFD on a number only reads its flags (or fails with EBADF).
    let valid = unsafe { libc::fcntl(4, libc::F_GETFD) } >= 0;
    valid.then(|| {
        // SAFETY: fd 4 is open (checked above) and was handed to us by the daemon for
        // this helper alone; nothing else in the process owns it.
        unsafe {
            libc::fcntl(4, libc::F_SETFD, libc::FD_CLOEXEC);
            OwnedFd::from_raw_fd(4)
        }
    })
}

/// fd 3, when the daemon gave us one.
fn status_pipe() -> Option<File> {
    // SAFETY: F_GETFD on a number only reads its flags (or fails with EBADF).
    let valid = unsafe { libc::fcntl(3, libc::F_GETFD) } >= 0;
    valid.then(|| {
        // SAFETY: fd 3 is open (checked above) and was handed to us by the daemon for
        // this helper alone; nothing else in the process owns it.
        unsafe {
            libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC);
            File::from_raw_fd(3)
        }
    })
}

fn report(status: &mut Option<File>, value: serde_json::Value) {
    match status {
        Some(f) => {
            let _ = writeln!(f, "{value}");
        }
        None => eprintln!("{value}"),
    }
}

fn report_error(status: &mut Option<File>, msg: &str, code: i32) -> i32 {
    report(status, serde_json::json!({"error": msg, "exit_code": code}));
    code
}

/// Joins the cgroups and namespaces of `pid`; returns its v2 cgroup, open, when the
/// process is to be cloned into it ([`cgroup_enter::join_cgroups_of`]).
fn enter_container(pid: i32) -> Result<Option<OwnedFd>> {
    if pid <= 0 {
        return Err(RuntimeError::InvalidArgument(format!(
            "invalid init pid {pid}"
        )));
    }
    let mut fds: Vec<(&str, CloneFlags, File)> = Vec::new();
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{pid}/ns/{name}");
        let theirs = std::fs::metadata(&path).map_err(|e| RuntimeError::io("stat", &path, e))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}")).ok();
        use std::os::unix::fs::MetadataExt;
        if ours.is_some_and(|o| o.ino() == theirs.ino() && o.dev() == theirs.dev()) {
            continue; // shared with the host (e.g. --network host)
        }
        let f = File::open(&path).map_err(|e| RuntimeError::io("open", &path, e))?;
        fds.push((name, *flag, f));
    }
    let remapped = fds.iter().any(|(_, f, _)| *f == CloneFlags::CLONE_NEWUSER);
    let v2 = cgroup_enter::join_cgroups_of(pid, remapped)?;
    for (name, flag, f) in &fds {
        Kernel.setns(f.as_fd(), *flag).map_err(|e| match e {
            RuntimeError::Sys { errno, .. } => {
                RuntimeError::sys(format!("joining the container's {name} namespace"), errno)
            }
            other => other,
        })?;
        if *flag == CloneFlags::CLONE_NEWUSER {
            // still host root, which the namespace does not map
            crate::userns::become_root()?;
        }
    }
    Ok(v2)
}

/// Forks the process (on `pty`'s slave as its controlling terminal when given, the
/// master then goes out on `console_socket`), reports, waits, returns its exit code.
fn run(
    spec: &ExecSpec,
    status: &mut Option<File>,
    pty: Option<pty::Pty>,
    console_socket: Option<OwnedFd>,
    v2_cgroup: Option<OwnedFd>,
) -> i32 {
    let (err_r, err_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return report_error(status, &format!("pipe2: {e}"), SETUP_FAILED),
    };
    // SAFETY: the helper is single-threaded, so the child cannot inherit a lock held by
    // another thread; the child only sets itself up and execs or _exits.
    let pid = match unsafe { cgroup_enter::clone_process(v2_cgroup.as_ref()) } {
        Ok(pid) => pid,
        Err(e) => return report_error(status, &e.to_string(), SETUP_FAILED),
    };
    drop(v2_cgroup);
    if pid == 0 {
        drop(err_r);
        drop(console_socket);
        let on_tty = || -> Result<()> {
            if let Some(p) = &pty {
                nix::unistd::setsid().map_err(|e| RuntimeError::sys("setsid", e))?;
                pty::make_controlling(p.slave.as_raw_fd())?;
            }
            Ok(())
        };
        if let Err(e) = on_tty() {
            init::write_all_fd(err_w.as_raw_fd(), format!("{SETUP_FAILED} {e}").as_bytes());
            // SAFETY: a forked child leaves with _exit, running none of the parent's
            // atexit handlers.
            unsafe { libc::_exit(SETUP_FAILED) };
        }
        drop(pty);
        let failure =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| become_process(spec))) {
                Ok(f) => f,
                Err(_) => InitFailure::Setup(RuntimeError::Internal("exec set-up panicked".into())),
            };
        let (code, msg) = match failure {
            InitFailure::Exec(code, msg) => (code, msg),
            InitFailure::Setup(e) => (SETUP_FAILED, e.to_string()),
            InitFailure::Abandoned => (SETUP_FAILED, "abandoned".to_string()),
        };
        init::write_all_fd(err_w.as_raw_fd(), format!("{code} {msg}").as_bytes());
        // SAFETY: as above, _exit from the forked child.
        unsafe { libc::_exit(code) };
    }
    drop(err_w);
    // The process holds the slave now; the master goes to the daemon. Ours close here,
    // so the master reads EOF (EIO) once the process and its children are gone.
    if let (Some(p), Some(sock)) = (pty, console_socket) {
        if let Err(e) = pty::send_master(sock.as_raw_fd(), p.master.as_raw_fd()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            return report_error(status, &e.to_string(), SETUP_FAILED);
        }
    }
    // Our stdio belongs to the process now: EOF on them must follow its lifetime.
    // SAFETY: open takes a NUL-terminated literal; dup2 and close only change this
    // process's fd table.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            libc::close(null);
        }
    }
    let mut msg = Vec::new();
    read_to_end(&err_r, &mut msg);
    // EOF without a message: the exec succeeded and the process runs.
    if msg.is_empty() {
        report(status, serde_json::json!({"pid": pid}));
        *status = None;
    }
    let mut wstatus = 0;
    loop {
        // SAFETY: `wstatus` is a valid int for the kernel to write.
        let r = unsafe { libc::waitpid(pid, &mut wstatus, 0) };
        if r == pid || r < 0 && Errno::last() != Errno::EINTR {
            break;
        }
    }
    if !msg.is_empty() {
        let text = String::from_utf8_lossy(&msg);
        let (code, m) = text.split_once(' ').unwrap_or(("126", &text));
        let code: i32 = code.parse().unwrap_or(SETUP_FAILED);
        return report_error(status, m, code);
    }
    if libc::WIFEXITED(wstatus) {
        libc::WEXITSTATUS(wstatus)
    } else if libc::WIFSIGNALED(wstatus) {
        128 + libc::WTERMSIG(wstatus)
    } else {
        255
    }
}

fn read_to_end(fd: &OwnedFd, out: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
}

/// In the forked child, inside the container: only returns on failure.
fn become_process(spec: &ExecSpec) -> InitFailure {
    let setup = || -> Result<Vec<String>> {
        init::reset_signals();
        let mut user = init::resolve_user(&spec.process.user)?;
        if !spec.process.additional_groups.is_empty() {
            let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
            crate::user::add_groups(&mut user, &spec.process.additional_groups, &group)?;
        }
        let env = init::process_env(&spec.process, &user);
        crate::rlimits::apply(&spec.rlimits)?;
        if let Some(adj) = spec.oom_score_adj {
            std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
                crate::error::RuntimeError::io(
                    "writing --oom-score-adj to",
                    "/proc/self/oom_score_adj",
                    e,
                )
            })?;
        }
        let capset = capabilities::compute(spec.privileged, &spec.cap_add, &spec.cap_drop)?;
        // The container's profile, from the container's capabilities (`docker exec
        // --privileged` gets every capability, not a wider filter).
        let container_caps = capabilities::compute(false, &spec.cap_add, &spec.cap_drop)?;
        let confinement = Confinement::prepare(&spec.security, &container_caps)?;
        crate::pty::own_stdio_terminals(user.uid);
        init::become_user(&Kernel, &user, &capset)?;
        let cwd = if spec.process.cwd.is_empty() {
            "/"
        } else {
            spec.process.cwd.as_str()
        };
        init::enter_cwd(cwd)?;
        init::close_fds_on_exec();
        confinement.finish()?;
        Ok(env)
    };
    match setup() {
        Ok(env) => init::exec_process(&spec.process.args, &env),
        Err(e) => InitFailure::Setup(e),
    }
}
