//! The container's init: cloned by the shim into new namespaces, it builds the
//! container's filesystem and identity, waits for `start`, then execs the process.
//! Also the steps it shares with `exec-helper` (user, capabilities, fds, exec).
//!
//! Sync with the shim over two pipes (both CLOEXEC):
//! - go pipe (shim → init): byte `c` once the init sits in its cgroups, byte `s` for
//!   `start`; EOF means "give up".
//! - status pipe (init → shim), text lines: `ready`, `error <message>` (set-up failed),
//!   `exec <code> <message>` (exec failed). A successful exec closes it (EOF).

use crate::capabilities;
use crate::cgroup::CgroupPaths;
use crate::defaults::NETNS_SYSCTLS;
use crate::error::{Result, RuntimeError};
use crate::mounts;
pub(crate) use crate::process::*;
use crate::security::Confinement;
use crate::spec::{ContainerSpec, IpcMode, NetworkMode};
use crate::syscall::{Kernel, Syscall};
use crate::sysctl;
use crate::user;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::convert::Infallible;
use std::os::fd::{AsFd, RawFd};
use std::path::Path;

/// The init's stdio, as fds open in the shim (inherited over clone).
#[derive(Debug, Clone, Copy)]
pub enum InitStdio {
    Pipes {
        stdin: RawFd,
        stdout: RawFd,
        stderr: RawFd,
    },
    /// A TTY: the init opens a pty in the container's own devpts (so `tty` and
    /// `ttyname` work inside), sends the master over this unix socket (SCM_RIGHTS),
    /// bind-mounts the slave on `/dev/console` and makes it its controlling terminal.
    Tty {
        console_socket: RawFd,
        size: Option<(u16, u16)>,
    },
}

/// Clones the init. Returns its host pid; the child never returns.
/// `close_in_child` are the shim's own fds (its ends of the sync pipes), closed first
/// thing in the child so that the shim's death reads as EOF there.
pub fn spawn(
    spec: &ContainerSpec,
    cgroups: &CgroupPaths,
    stdio: InitStdio,
    go_read: RawFd,
    status_write: RawFd,
    close_in_child: &[RawFd],
) -> Result<i32> {
    let ns = &spec.namespaces;
    let mut flags = libc::CLONE_NEWNS;
    if let Some(path) = &ns.pid_join {
        // setns(CLONE_NEWPID) moves the children we clone next, not us
        join_namespace(&Kernel, path, CloneFlags::CLONE_NEWPID, "pid")?;
    } else if !ns.pid_host {
        flags |= libc::CLONE_NEWPID;
    }
    if !ns.uts_host {
        flags |= libc::CLONE_NEWUTS;
    }
    if matches!(ns.ipc, IpcMode::Private | IpcMode::None) {
        flags |= libc::CLONE_NEWIPC;
    }
    if spec.network == NetworkMode::Loopback {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: a raw clone without CLONE_VM behaves like fork: the child runs on a copy
    // of our stack and memory. The shim is single-threaded, so no lock is held by a
    // thread that does not exist in the child; no pointers are passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        return Err(RuntimeError::sys(
            "clone of the container init (pid, mount, uts, ipc, net namespaces)",
            Errno::last(),
        ));
    }
    if ret > 0 {
        return Ok(ret as i32);
    }
    // Child.
    for fd in close_in_child {
        let _ = nix::unistd::close(*fd);
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        container_init(spec, cgroups, stdio, go_read, status_write)
    }));
    let msg = match &outcome {
        Ok(Err(InitFailure::Setup(e))) => format!("error {}\n", one_line(&e.to_string())),
        Ok(Err(InitFailure::Exec(code, m))) => format!("exec {code} {}\n", one_line(m)),
        Ok(Err(InitFailure::Abandoned)) => String::new(),
        Ok(Ok(never)) => match *never {},
        Err(_) => "error container init panicked\n".to_string(),
    };
    let code = match &outcome {
        Ok(Err(InitFailure::Exec(code, _))) => *code,
        _ => 1,
    };
    write_all_fd(status_write, msg.as_bytes());
    // SAFETY: _exit ends the process without running the parent's atexit handlers or
    // flushing its copied stdio buffers, which is what a forked child must do.
    unsafe { libc::_exit(code) }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

pub(crate) fn write_all_fd(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: the pointer and length describe `data`, valid for the call.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        data = &data[n as usize..];
    }
}

/// Reads one byte; None on EOF or error.
fn read_byte(fd: RawFd) -> Option<u8> {
    let mut b = [0u8; 1];
    loop {
        // SAFETY: reads at most one byte into `b`, which is one byte long.
        let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        return (n == 1).then_some(b[0]);
    }
}

fn sys(what: &str) -> impl FnOnce(Errno) -> RuntimeError + '_ {
    move |e| RuntimeError::sys(what, e)
}

fn container_init(
    spec: &ContainerSpec,
    cgroups: &CgroupPaths,
    stdio: InitStdio,
    go_read: RawFd,
    status_write: RawFd,
) -> std::result::Result<Infallible, InitFailure> {
    // Nothing may open /proc/<pid>/exe of a process that is entering the container.
    nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE)"))?;
    if read_byte(go_read) != Some(b'c') {
        return Err(InitFailure::Abandoned);
    }
    // Before joining any network namespace: which of ours are private decides which
    // sysctls may be written at all (the daemon checked at create; a joined namespace
    // may turn out to be the host's only now).
    let own_ns = sysctl::Namespaces {
        net: sysctl::private_netns(&spec.network)?,
        ipc: matches!(spec.namespaces.ipc, IpcMode::Private | IpcMode::None),
        uts: !spec.namespaces.uts_host,
    };
    sysctl::validate_all(spec.sysctls.iter().map(|(k, _)| k.as_str()), own_ns)?;
    let k = Kernel;
    enter_root(&k, spec, cgroups)?;
    let mut sysctls: Vec<(String, String)> = Vec::new();
    if own_ns.net {
        for (k, v) in NETNS_SYSCTLS {
            if !spec.sysctls.iter().any(|(sk, _)| sk == k) {
                sysctls.push((k.to_string(), v.to_string()));
            }
        }
    }
    sysctls.extend(spec.sysctls.iter().cloned());
    // Through the container's own /proc (mounted by the plan, we are past pivot_root),
    // before /proc/sys turns read-only.
    for (key, value) in &sysctls {
        sysctl::write(Path::new("/proc"), key, value)?;
    }
    if let Some(adj) = spec.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
            RuntimeError::io("writing --oom-score-adj to", "/proc/self/oom_score_adj", e)
        })?;
    }
    if !spec.privileged {
        let masked = spec
            .masked_paths
            .clone()
            .unwrap_or_else(mounts::masked_paths);
        let readonly: Vec<String> = spec.readonly_paths.clone().unwrap_or_else(|| {
            mounts::readonly_paths()
                .iter()
                .map(|p| p.to_string())
                .collect()
        });
        let readonly: Vec<&str> = readonly.iter().map(String::as_str).collect();
        mounts::mask_and_protect(&k, &masked, &readonly)?;
    }
    let process = &spec.process;
    let cwd = if process.cwd.is_empty() {
        "/"
    } else {
        process.cwd.as_str()
    };
    let cwd_path = crate::securejoin::resolve_in_root(Path::new("/"), cwd)?;
    if !cwd_path.exists() {
        std::fs::create_dir_all(&cwd_path)
            .map_err(|e| RuntimeError::io("creating working directory", &cwd_path, e))?;
    }
    if spec.readonly_rootfs {
        k.mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    let mut user = resolve_user(&process.user)?;
    if !process.additional_groups.is_empty() {
        let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
        user::add_groups(&mut user, &process.additional_groups, &group)?;
    }
    crate::rlimits::apply(&spec.rlimits)?;
    let mut env = process.env.clone();
    user::add_home(&mut env, &user);

    setup_stdio(stdio, &k)?;
    reset_signals();
    let capset = capabilities::compute(spec.privileged, &spec.cap_add, &spec.cap_drop)?;
    let confinement = Confinement::prepare(&spec.security, &capset)?;
    crate::pty::own_stdio_terminals(user.uid);
    become_user(&k, &user, &capset)?;
    enter_cwd(cwd)?;
    close_fds_on_exec();

    // If the shim dies, the container dies with it (set after the uid change, which
    // clears it) instead of running on unsupervised.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(sys("prctl(PR_SET_PDEATHSIG)"))?;
    confinement.finish()?;
    write_all_fd(status_write, b"ready\n");
    if read_byte(go_read) != Some(b's') {
        return Err(InitFailure::Abandoned);
    }
    if spec.init {
        become_tiny_init(go_read, status_write)?;
    }
    let err = exec_process(&process.args, &env);
    Err(err)
}

/// `--init`: forks; the parent stays PID 1 as `docker-init` (forwarding signals, reaping
/// zombies, exiting with the command's status) and never returns; the child returns to
/// exec the command. Signals are blocked before the fork so no SIGCHLD is lost.
fn become_tiny_init(go_read: RawFd, status_write: RawFd) -> std::result::Result<(), InitFailure> {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
    let all = SigSet::all();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None).map_err(sys("sigprocmask"))?;
    // SAFETY: the container init is single-threaded, so the child's copy of memory holds
    // no lock owned by another thread; the child only unblocks signals and execs.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(RuntimeError::sys("fork of the --init command", e).into()),
        Ok(nix::unistd::ForkResult::Child) => {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                .map_err(sys("sigprocmask"))?;
            Ok(())
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            // The shim sees EOF on the status pipe once the child has exec'd.
            let _ = nix::unistd::close(status_write);
            let _ = nix::unistd::close(go_read);
            let _ = nix::sys::prctl::set_name(c"docker-init");
            let code = crate::tiny_init::supervise(child, &all);
            // SAFETY: _exit ends PID 1 without running atexit handlers of the shim's
            // copied state.
            unsafe { libc::_exit(code) }
        }
    }
}

/// `setns` into the namespace at `path` (`what`: its kind, for the error).
fn join_namespace(k: &dyn Syscall, path: &Path, flag: CloneFlags, what: &str) -> Result<()> {
    let f = std::fs::File::open(path)
        .map_err(|e| RuntimeError::io("opening a namespace to join", path, e))?;
    k.setns(f.as_fd(), flag).map_err(|e| match e {
        RuntimeError::Sys { errno, .. } => RuntimeError::sys(
            format!("joining {what} namespace {}", path.display()),
            errno,
        ),
        other => other,
    })
}

/// The namespaces and the root of the container, in order: our own cgroup namespace
/// (rooted at the container's cgroups, where the shim moved us), the network, the
/// mounts of the plan under the new rootfs, `pivot_root`, then host and domain names.
fn enter_root(k: &dyn Syscall, spec: &ContainerSpec, cgroups: &CgroupPaths) -> Result<()> {
    if !spec.namespaces.cgroup_host {
        k.unshare(CloneFlags::CLONE_NEWCGROUP)?;
    }
    match &spec.network {
        NetworkMode::Loopback => k.loopback_up()?,
        NetworkMode::Host => {}
        NetworkMode::Join(path) => join_namespace(k, path, CloneFlags::CLONE_NEWNET, "network")?,
    }
    if let IpcMode::Join { ns, .. } = &spec.namespaces.ipc {
        join_namespace(k, ns, CloneFlags::CLONE_NEWIPC, "IPC")?;
    }
    k.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    mounts::mount_rootfs(k, spec)?;
    mounts::execute(k, &spec.rootfs, &mounts::plan(spec, cgroups))?;
    pivot_into(k, &spec.rootfs)?;
    if !spec.hostname.is_empty() && !spec.namespaces.uts_host {
        k.sethostname(&spec.hostname)?;
    }
    if !spec.domainname.is_empty() && !spec.namespaces.uts_host {
        k.setdomainname(&spec.domainname)?;
    }
    Ok(())
}

/// `pivot_root(".", ".")` and detaching the old root (runc's way, no put_old dir).
fn pivot_into(k: &dyn Syscall, rootfs: &Path) -> Result<()> {
    k.chdir(rootfs)?;
    k.pivot_root(Path::new("."), Path::new("."))?;
    // The old root is now stacked on top of the new one: keep it from propagating, then
    // detach it.
    k.mount(
        None,
        Path::new("."),
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
    )?;
    k.umount2(Path::new("."), MntFlags::MNT_DETACH)?;
    k.chdir(Path::new("/"))
}

fn setup_stdio(stdio: InitStdio, k: &dyn Syscall) -> Result<()> {
    nix::unistd::setsid().map_err(sys("setsid"))?;
    let (stdin, stdout, stderr) = match stdio {
        InitStdio::Pipes {
            stdin,
            stdout,
            stderr,
        } => (stdin, stdout, stderr),
        InitStdio::Tty {
            console_socket,
            size,
        } => {
            let slave = open_console(console_socket, size, k)?;
            crate::pty::make_controlling(slave)?;
            return Ok(());
        }
    };
    for (fd, target) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
        if fd != target {
            // SAFETY: dup2 only changes this process's fd table; `fd` is an open fd
            // the shim handed down, `target` one of 0..=2.
            Errno::result(unsafe { libc::dup2(fd, target) })
                .map_err(sys("dup2 of the container's stdio"))?;
        }
    }
    Ok(())
}

/// Opens a pty pair in the container's devpts (after pivot_root), sends the master to
/// the shim and returns the slave. The slave is also bound over `/dev/console`.
fn open_console(socket: RawFd, size: Option<(u16, u16)>, k: &dyn Syscall) -> Result<RawFd> {
    use std::os::fd::{AsRawFd, IntoRawFd};
    let pty = crate::pty::open(size)?;
    let console = Path::new("/dev/console");
    if console.symlink_metadata().is_err() {
        std::fs::File::create(console).map_err(|e| RuntimeError::io("creating", console, e))?;
    }
    k.mount(
        Some(Path::new(&pty.slave_path)),
        console,
        None,
        MsFlags::MS_BIND,
        None,
    )?;
    crate::pty::send_master(socket, pty.master.as_raw_fd())?;
    Ok(pty.slave.into_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::fake::{Call, Recording};
    use crate::user::ExecUser;
    use std::path::PathBuf;

    #[test]
    fn the_init_enters_its_namespaces_and_root_in_order() {
        let d = tempfile::tempdir().unwrap();
        let spec = ContainerSpec {
            lower_dirs: vec![d.path().join("lower")],
            upper_dir: d.path().join("upper"),
            work_dir: d.path().join("work"),
            rootfs: d.path().join("rootfs"),
            hostname: "c0ffee".into(),
            domainname: "example.test".into(),
            network: NetworkMode::Loopback,
            ..Default::default()
        };
        let k = Recording::default();
        enter_root(&k, &spec, &CgroupPaths::default()).unwrap();
        let calls = k.calls();
        assert_eq!(calls[0], Call::Unshare(CloneFlags::CLONE_NEWCGROUP));
        assert_eq!(calls[1], Call::LoopbackUp);
        assert!(
            matches!(&calls[2], Call::Mount { target, flags, .. }
                if target == Path::new("/") && *flags == MsFlags::MS_REC | MsFlags::MS_PRIVATE),
            "{:?}",
            calls[2]
        );
        assert!(
            matches!(&calls[3], Call::Mount { target, fstype, .. }
                if *target == spec.rootfs && fstype.as_deref() == Some("overlay")),
            "{:?}",
            calls[3]
        );
        // Every mount of the plan lands under the new root, before the switch.
        let switch = calls
            .iter()
            .position(|c| matches!(c, Call::PivotRoot(..)))
            .unwrap();
        for c in &calls[3..switch - 1] {
            if let Call::Mount { target, .. } = c {
                assert!(target.starts_with(&spec.rootfs), "{c:?}");
            }
        }
        let dot = PathBuf::from(".");
        assert_eq!(
            calls[switch - 1..],
            [
                Call::Chdir(spec.rootfs.clone()),
                Call::PivotRoot(dot.clone(), dot.clone()),
                Call::Mount {
                    source: None,
                    target: dot.clone(),
                    fstype: None,
                    flags: MsFlags::MS_SLAVE | MsFlags::MS_REC,
                    data: None
                },
                Call::Umount2(dot, MntFlags::MNT_DETACH),
                Call::Chdir("/".into()),
                Call::Sethostname("c0ffee".into()),
                Call::Setdomainname("example.test".into()),
            ]
        );

        // A joined network namespace is entered instead of lo brought up; the host's
        // network is left alone.
        let k = Recording::default();
        let joined = ContainerSpec {
            network: NetworkMode::Join("/proc/self/ns/net".into()),
            domainname: String::new(),
            ..spec.clone()
        };
        enter_root(&k, &joined, &CgroupPaths::default()).unwrap();
        assert_eq!(k.calls()[1], Call::Setns(CloneFlags::CLONE_NEWNET));
        assert!(!k
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Setdomainname(_))));
        let k = Recording::default();
        let host = ContainerSpec {
            network: NetworkMode::Host,
            ..spec.clone()
        };
        enter_root(&k, &host, &CgroupPaths::default()).unwrap();
        assert!(!k
            .calls()
            .iter()
            .any(|c| matches!(c, Call::LoopbackUp | Call::Setns(_))));
    }

    #[test]
    fn becoming_the_user_drops_the_bounding_set_before_the_ids() {
        let caps = capabilities::compute(false, &[], &["NET_RAW".to_string()]).unwrap();
        let user = ExecUser {
            uid: 1000,
            gid: 1000,
            sgids: vec![20],
            home: "/home/u".into(),
        };
        let k = Recording::default();
        become_user(&k, &user, &caps).unwrap();
        let mask = capabilities::mask(&caps);
        assert_eq!(
            k.calls(),
            [
                Call::LimitBounding(mask),
                Call::SetIds {
                    uid: 1000,
                    gid: 1000,
                    groups: user.additional_gids()
                },
                Call::SetCapabilities(mask),
            ]
        );
    }
}
