//! The container's init: cloned by the shim into new namespaces, it builds the
//! container's filesystem and identity, waits for `start`, then execs the process.
//! Also the steps it shares with `exec-helper` (user, capabilities, fds, exec).
//!
//! Sync with the shim over two pipes (both CLOEXEC):
//! - go pipe (shim → init): byte `c` once the init sits in its cgroups (it moves itself
//!   into some, the shim moves it into the others: [`Entry`]), byte `s` for `start`;
//!   EOF means "give up".
//! - status pipe (init → shim), text lines: `ready`, `error <message>` (set-up failed),
//!   `exec <code> <message>` (exec failed). A successful exec closes it (EOF).

use crate::capabilities;
use crate::cgroup::CgroupPaths;
use crate::cgroup_enter::Entry;
use crate::error::{Result, RuntimeError};
use crate::mounts;
pub(crate) use crate::process::*;
use crate::security::Confinement;
use crate::spec::{ContainerSpec, IpcMode, NetworkMode};
use crate::syscall::{Kernel, Syscall};
use crate::sysctl::{self, all_sysctls, validate_sysctls, write_joined_net_sysctls};
use crate::user;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
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
    entry: &mut Entry,
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
    if !ns.uts_host && ns.uts_join.is_none() {
        flags |= libc::CLONE_NEWUTS;
    }
    if matches!(ns.ipc, IpcMode::Private | IpcMode::None) {
        flags |= libc::CLONE_NEWIPC;
    }
    if spec.network == NetworkMode::Loopback {
        flags |= libc::CLONE_NEWNET;
    }
    // With a user namespace: the rootfs comes over this socket, and the namespaces the
    // container shares are joined by the shim around the clone (see [`crate::userns`]).
    let mut rootfs_socket: Option<(OwnedFd, OwnedFd)> = None;
    let mut joined = Vec::new();
    // Joining another container's user namespace: the namespaces are made by the init
    // once inside it (see [`crate::userns::join`]), the clone makes none.
    let mut unshare_later = nix::sched::CloneFlags::empty();
    if spec.userns_join.is_some() {
        if ns.pid_join.is_none() {
            return Err(RuntimeError::InvalidArgument(
                "joining a user namespace needs the PID namespace of its container".into(),
            ));
        }
        unshare_later = CloneFlags::from_bits_truncate(flags & !libc::CLONE_NEWPID);
        flags = 0;
    } else if spec.userns.is_some() {
        flags |= libc::CLONE_NEWUSER;
    }
    if spec.userns.is_some() {
        rootfs_socket = Some(
            nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::Stream,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| RuntimeError::sys("socketpair for the rootfs", e))?,
        );
        // Made by host root: the remapped root may not write the runtime directory.
        std::fs::create_dir_all(&spec.rootfs)
            .map_err(|e| RuntimeError::io("creating rootfs", &spec.rootfs, e))?;
        let net = match &spec.network {
            NetworkMode::Join(p) => Some(p.as_path()),
            _ => None,
        };
        let ipc = match &ns.ipc {
            IpcMode::Join { ns, .. } => Some(ns.as_path()),
            _ => None,
        };
        // (checked before joining: then ours is the one to compare with)
        let own_net = validate_sysctls(spec, false)?;
        joined = crate::userns::enter_joined(net, ipc, ns.uts_join.as_deref())?;
        if net.is_some() {
            // The network namespace is the host user namespace's: its sysctls are
            // written from here, the init could not.
            if let Err(e) = write_joined_net_sysctls(spec, own_net) {
                crate::userns::restore(&joined);
                return Err(e);
            }
        }
    }
    // SAFETY: a clone without CLONE_VM behaves like fork: the child runs on a copy of
    // our stack and memory. The shim is single-threaded, so no lock is held by a thread
    // that does not exist in the child.
    let ret = unsafe { entry.clone(flags) };
    if ret != 0 {
        crate::userns::restore(&joined);
    }
    if ret < 0 {
        return Err(RuntimeError::sys(
            "clone of the container init (pid, mount, uts, ipc, net, user namespaces)",
            Errno::last(),
        ));
    }
    if ret > 0 {
        let pid = ret as i32;
        if let (Some(u), Some((ours, _theirs))) = (&spec.userns, &rootfs_socket) {
            let joined_ns = spec.userns_join.is_some();
            if let Err(e) = prepare_userns_child(spec, u, pid, joined_ns, ours.as_raw_fd()) {
                // SAFETY: kill and waitpid take integers and a valid int to write.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    let mut st = 0;
                    libc::waitpid(pid, &mut st, 0);
                }
                return Err(e);
            }
        }
        return Ok(pid);
    }
    drop(joined);
    let rootfs_socket = rootfs_socket.map(|(ours, theirs)| {
        drop(ours);
        theirs
    });
    // Child.
    for fd in close_in_child {
        let _ = nix::unistd::close(*fd);
    }
    entry.close_in_child();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        container_init(
            spec,
            entry,
            stdio,
            go_read,
            status_write,
            rootfs_socket,
            unshare_later,
        )
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

/// The shim's side of a remapped init: its maps, its limits (which it could not raise
/// itself) and its rootfs, sent over `socket`.
fn prepare_userns_child(
    spec: &ContainerSpec,
    u: &crate::userns::UserNamespace,
    pid: i32,
    joined: bool,
    socket: RawFd,
) -> Result<()> {
    let ns_path = match (&spec.userns_join, joined) {
        (Some(p), true) => p.clone(),
        _ => {
            crate::userns::write_maps(pid, u)?;
            std::path::PathBuf::from(format!("/proc/{pid}/ns/user"))
        }
    };
    crate::rlimits::apply_to(pid, &spec.rlimits)?;
    let tree = crate::userns::detached_rootfs(
        &ns_path,
        &spec.lower_dirs,
        &spec.upper_dir,
        &spec.work_dir,
    )?;
    crate::pty::send_master(socket, tree.as_raw_fd())
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
    entry: &Entry,
    stdio: InitStdio,
    go_read: RawFd,
    status_write: RawFd,
    rootfs_socket: Option<OwnedFd>,
    unshare_later: CloneFlags,
) -> std::result::Result<Infallible, InitFailure> {
    // Nothing may open /proc/<pid>/exe of a process that is entering the container.
    nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE)"))?;
    // Into the v1 cgroups the shim leaves to us, then wait until it has moved us into
    // the rest.
    entry.enter_v1()?;
    if read_byte(go_read) != Some(b'c') {
        return Err(InitFailure::Abandoned);
    }
    // In a user namespace, the shim has written our maps by now and sent the rootfs.
    if let Some(path) = &spec.userns_join {
        crate::userns::join(path, unshare_later)?;
    }
    let rootfs_tree = match &rootfs_socket {
        Some(sock) => {
            if spec.userns_join.is_none() {
                crate::userns::become_root()?;
            }
            Some(crate::pty::recv_master(sock.as_raw_fd())?)
        }
        None => None,
    };
    drop(rootfs_socket);
    // Before joining any network namespace: which of ours are private decides which
    // sysctls may be written at all (the daemon checked at create; a joined namespace
    // may turn out to be the host's only now). With a user namespace the shim joined it
    // for us, checked the sysctls then and wrote the network ones.
    let shim_wrote_net = spec.userns.is_some() && matches!(spec.network, NetworkMode::Join(_));
    let own_net = validate_sysctls(spec, shim_wrote_net)?;
    let k = Kernel;
    enter_root(
        &k,
        spec,
        entry.paths,
        rootfs_tree.as_ref().map(|t| t.as_raw_fd()),
    )?;
    drop(rootfs_tree);
    // Through the container's own /proc (mounted by the plan, we are past pivot_root),
    // before /proc/sys turns read-only.
    for (key, value) in &all_sysctls(spec, own_net) {
        if shim_wrote_net && key.starts_with("net.") {
            continue;
        }
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
    if spec.userns.is_none() {
        // (with a user namespace the shim set them from outside)
        crate::rlimits::apply(&spec.rlimits)?;
    }
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
    if spec.pause {
        // The shim sees EOF on the status pipe as it would after an exec.
        let _ = nix::unistd::close(status_write);
        let _ = nix::unistd::close(go_read);
        let code = crate::pause::main();
        // SAFETY: _exit ends PID 1 without running atexit handlers of the shim's copied
        // state.
        unsafe { libc::_exit(code) }
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
/// With a user namespace the shim joined the shared namespaces for us before the clone,
/// and `rootfs_tree` is the rootfs it made (a detached mount).
fn enter_root(
    k: &dyn Syscall,
    spec: &ContainerSpec,
    cgroups: &CgroupPaths,
    rootfs_tree: Option<RawFd>,
) -> Result<()> {
    if !spec.namespaces.cgroup_host {
        k.unshare(CloneFlags::CLONE_NEWCGROUP)?;
    }
    let joined = spec.userns.is_some();
    match &spec.network {
        NetworkMode::Loopback => k.loopback_up()?,
        NetworkMode::Host => {}
        NetworkMode::Join(_) if joined => {}
        NetworkMode::Join(path) => join_namespace(k, path, CloneFlags::CLONE_NEWNET, "network")?,
    }
    if let IpcMode::Join { ns, .. } = &spec.namespaces.ipc {
        if !joined {
            join_namespace(k, ns, CloneFlags::CLONE_NEWIPC, "IPC")?;
        }
    }
    if let Some(uts) = &spec.namespaces.uts_join {
        if !joined {
            join_namespace(k, uts, CloneFlags::CLONE_NEWUTS, "UTS")?;
        }
    }
    if mounts::has_shared_bind(spec) {
        // An rshared bind (Docker's and containerd's `RootfsPropagation` shared): the
        // host's mounts stay as they are here, so the bind's source stays a peer of the
        // host's and a mount made under it in the container reaches the host; the mount
        // that holds the rootfs is made private (runc's rootfsParentMountPrivate) so that
        // the rootfs and everything mounted in it stay in this namespace.
        mounts::make_parent_private(k, &spec.rootfs)?;
    } else {
        // runc's default root propagation: a slave of the host's mounts, so that a bind
        // with rslave propagation receives what the host mounts under its source later
        // (a private root would cut it off); nothing propagates back to the host.
        k.mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None,
        )?;
    }
    mounts::mount_rootfs(k, spec, rootfs_tree)?;
    mounts::execute(k, &spec.rootfs, &mounts::plan(spec, cgroups))?;
    pivot_into(k, &spec.rootfs)?;
    let own_uts = !spec.namespaces.uts_host && spec.namespaces.uts_join.is_none();
    if !spec.hostname.is_empty() && own_uts {
        k.sethostname(&spec.hostname)?;
    }
    if !spec.domainname.is_empty() && own_uts {
        k.setdomainname(&spec.domainname)?;
    }
    Ok(())
}

/// `pivot_root(".", ".")` and detaching the old root (runc's way, no put_old dir).
fn pivot_into(k: &dyn Syscall, rootfs: &Path) -> Result<()> {
    use std::os::fd::AsFd;
    let old_root =
        std::fs::File::open("/").map_err(|e| RuntimeError::io("opening the old root", "/", e))?;
    k.chdir(rootfs)?;
    k.pivot_root(Path::new("."), Path::new("."))?;
    // The old root is now stacked on top of the new one. Into it through the fd (a path
    // "." would name the new root to mount(2), which follows no mount at the last
    // component), make it a slave so that detaching it unmounts nothing on the host, and
    // detach it (umount2 does take the mount on top).
    k.fchdir(old_root.as_fd())?;
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
    fn an_rshared_bind_keeps_the_hosts_propagation_and_a_private_rootfs_parent() {
        let d = tempfile::tempdir().unwrap();
        let bind = |prop: &str| crate::spec::MountSpec {
            destination: "/x".into(),
            kind: "bind".into(),
            source: d.path().to_path_buf(),
            options: vec!["rbind".into(), prop.into()],
            ..Default::default()
        };
        let spec = ContainerSpec {
            lower_dirs: vec![d.path().join("lower")],
            upper_dir: d.path().join("upper"),
            work_dir: d.path().join("work"),
            rootfs: d.path().join("rootfs"),
            network: NetworkMode::Host,
            mounts: vec![bind("rprivate"), bind("rshared")],
            ..Default::default()
        };
        let k = Recording::default();
        enter_root(&k, &spec, &CgroupPaths::default(), None).unwrap();
        let calls = k.calls();
        assert_eq!(
            calls[1],
            Call::Mount {
                source: None,
                target: spec.rootfs.clone(),
                fstype: None,
                flags: MsFlags::MS_PRIVATE,
                data: None
            }
        );
        assert!(!calls
            .iter()
            .any(|c| matches!(c, Call::Mount { target, flags, .. }
            if target == Path::new("/") && flags.contains(MsFlags::MS_SLAVE))));
        // rslave binds keep the slave root
        let slave = ContainerSpec {
            mounts: vec![bind("rslave")],
            ..spec.clone()
        };
        let k = Recording::default();
        enter_root(&k, &slave, &CgroupPaths::default(), None).unwrap();
        assert!(matches!(&k.calls()[1], Call::Mount { target, flags, .. }
            if target == Path::new("/") && *flags == MsFlags::MS_REC | MsFlags::MS_SLAVE));
    }

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
        enter_root(&k, &spec, &CgroupPaths::default(), None).unwrap();
        let calls = k.calls();
        assert_eq!(calls[0], Call::Unshare(CloneFlags::CLONE_NEWCGROUP));
        assert_eq!(calls[1], Call::LoopbackUp);
        assert!(
            matches!(&calls[2], Call::Mount { target, flags, .. }
                if target == Path::new("/") && *flags == MsFlags::MS_REC | MsFlags::MS_SLAVE),
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
                Call::Fchdir,
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
        enter_root(&k, &joined, &CgroupPaths::default(), None).unwrap();
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
        enter_root(&k, &host, &CgroupPaths::default(), None).unwrap();
        assert!(!k
            .calls()
            .iter()
            .any(|c| matches!(c, Call::LoopbackUp | Call::Setns(_))));
    }

    #[test]
    fn with_a_user_namespace_the_rootfs_is_attached_and_shared_namespaces_not_joined_again() {
        let d = tempfile::tempdir().unwrap();
        let spec = ContainerSpec {
            lower_dirs: vec![d.path().join("lower")],
            upper_dir: d.path().join("upper"),
            work_dir: d.path().join("work"),
            rootfs: d.path().join("rootfs"),
            network: NetworkMode::Join("/proc/self/ns/net".into()),
            namespaces: crate::spec::Namespaces {
                ipc: IpcMode::Join {
                    ns: "/proc/self/ns/ipc".into(),
                    mnt_ns: "/proc/self/ns/mnt".into(),
                },
                ..Default::default()
            },
            userns: Some(Default::default()),
            ..Default::default()
        };
        let k = Recording::default();
        // (the IPC donor's /dev/shm is refused by the daemon with a user namespace; the
        // plan's Foreign op is what would run)
        let _ = enter_root(&k, &spec, &CgroupPaths::default(), Some(7));
        let calls = k.calls();
        assert!(
            !calls.iter().any(|c| matches!(c, Call::Setns(_))),
            "{calls:?}"
        );
        assert_eq!(calls[2], Call::AttachDetached(spec.rootfs.clone()));
        assert!(!calls.iter().any(
            |c| matches!(c, Call::Mount { fstype, .. } if fstype.as_deref() == Some("overlay"))
        ));
        // sysfs belongs to the joined network namespace's owner: the host's /sys, bound
        let sys = calls
            .iter()
            .find_map(|c| match c {
                Call::Mount { source, target, .. } if target.ends_with("sys") => Some(source),
                _ => None,
            })
            .unwrap();
        assert_eq!(sys.as_deref(), Some(Path::new("/sys")));
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
