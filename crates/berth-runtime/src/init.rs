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
use crate::defaults::{DEFAULT_PATH, NETNS_SYSCTLS};
use crate::error::{Result, RuntimeError};
use crate::mounts::{self, Kernel, Syscall};
use crate::spec::{ContainerSpec, NetworkMode, ProcessSpec};
use crate::sysctl;
use crate::user::{self, ExecUser};
use caps::CapsHashSet;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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
    let mut flags =
        libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if spec.network == NetworkMode::Loopback {
        flags |= libc::CLONE_NEWNET;
    }
    // A raw clone without CLONE_VM behaves like fork: the child runs on a copy of our
    // stack. The shim is single-threaded, so that is safe.
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
        unsafe { libc::close(*fd) };
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
    unsafe { libc::_exit(code) }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

pub(crate) fn write_all_fd(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
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
        let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        return (n == 1).then_some(b[0]);
    }
}

pub(crate) enum InitFailure {
    Setup(RuntimeError),
    /// Exit code (126/127) and Docker's message.
    Exec(i32, String),
    /// The shim went away before `start`.
    Abandoned,
}

impl From<RuntimeError> for InitFailure {
    fn from(e: RuntimeError) -> Self {
        InitFailure::Setup(e)
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
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if read_byte(go_read) != Some(b'c') {
        return Err(InitFailure::Abandoned);
    }
    // Before joining any network namespace: which of ours are private decides which
    // sysctls may be written at all (the daemon checked at create; a joined namespace
    // may turn out to be the host's only now).
    let own_ns = sysctl::Namespaces {
        net: sysctl::private_netns(&spec.network)?,
        ipc: true,
        uts: true,
    };
    sysctl::validate_all(spec.sysctls.iter().map(|(k, _)| k.as_str()), own_ns)?;
    // Our own cgroup namespace, rooted at the container's cgroups (the shim moved us).
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        .map_err(sys("unshare of the cgroup namespace"))?;
    match &spec.network {
        NetworkMode::Loopback => loopback_up()?,
        NetworkMode::Host => {}
        NetworkMode::Join(path) => {
            let f = std::fs::File::open(path)
                .map_err(|e| RuntimeError::io("opening network namespace", path, e))?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                RuntimeError::sys(format!("joining network namespace {}", path.display()), e)
            })?;
        }
    }
    let k = Kernel;
    k.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    mounts::mount_rootfs(&k, spec)?;
    mounts::execute(&k, &spec.rootfs, &mounts::plan(spec, cgroups))?;
    pivot_into(&spec.rootfs)?;

    if !spec.hostname.is_empty() {
        nix::unistd::sethostname(&spec.hostname).map_err(sys("sethostname"))?;
    }
    if !spec.domainname.is_empty() {
        let r =
            unsafe { libc::setdomainname(spec.domainname.as_ptr().cast(), spec.domainname.len()) };
        Errno::result(r).map_err(sys("setdomainname"))?;
    }
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
    if !spec.privileged {
        mounts::mask_and_protect(&k, &mounts::masked_paths(), mounts::readonly_paths())?;
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
    let user = resolve_user(&process.user)?;
    let mut env = process.env.clone();
    user::add_home(&mut env, &user);

    setup_stdio(stdio, &k)?;
    reset_signals();
    let capset = capabilities::compute(spec.privileged, &spec.cap_add, &spec.cap_drop)?;
    become_user(&user, &capset)?;
    enter_cwd(cwd)?;
    close_fds_on_exec();

    // If the shim dies, the container dies with it (set after the uid change, which
    // clears it) instead of running on unsupervised.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    write_all_fd(status_write, b"ready\n");
    if read_byte(go_read) != Some(b's') {
        return Err(InitFailure::Abandoned);
    }
    let err = exec_process(&process.args, &env);
    Err(err)
}

/// `ioctl(SIOCSIFFLAGS)`: brings `lo` up in the new network namespace.
fn loopback_up() -> Result<()> {
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(RuntimeError::sys(
                "socket for bringing up lo",
                Errno::last(),
            ));
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        let r = if libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut ifr) < 0 {
            Err(RuntimeError::sys("SIOCGIFFLAGS on lo", Errno::last()))
        } else {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &ifr) < 0 {
                Err(RuntimeError::sys(
                    "bringing up lo (SIOCSIFFLAGS)",
                    Errno::last(),
                ))
            } else {
                Ok(())
            }
        };
        libc::close(fd);
        r
    }
}

/// `pivot_root(".", ".")` and detaching the old root (runc's way, no put_old dir).
fn pivot_into(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs)
        .map_err(|e| RuntimeError::sys(format!("chdir to rootfs {}", rootfs.display()), e))?;
    nix::unistd::pivot_root(".", ".")
        .map_err(|e| RuntimeError::sys(format!("pivot_root to {}", rootfs.display()), e))?;
    // The old root is now stacked on top of the new one: keep it from propagating, then
    // detach it.
    nix::mount::mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("making the old root a slave before unmounting it"))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH)
        .map_err(sys("detaching the old root after pivot_root"))?;
    nix::unistd::chdir("/").map_err(sys("chdir to / after pivot_root"))?;
    Ok(())
}

/// Resolves `-u` from the (current root's) `/etc/passwd` and `/etc/group`.
pub(crate) fn resolve_user(spec: &str) -> Result<ExecUser> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    user::resolve(spec, &passwd, &group)
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
            Errno::result(unsafe { libc::dup2(fd, target) })
                .map_err(sys("dup2 of the container's stdio"))?;
        }
    }
    Ok(())
}

/// Default dispositions and an empty signal mask for the container process (the shim
/// ignores SIGPIPE and SIGHUP, and ignored signals survive exec).
pub(crate) fn reset_signals() {
    unsafe {
        for sig in 1..libc::SIGRTMIN() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
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

/// Stdio terminals handed to the user ([`crate::pty::own_stdio_terminals`]), then
/// bounding set, groups, gid, uid (keeping capabilities), then permitted and
/// effective; inheritable and ambient cleared.
pub(crate) fn become_user(user: &ExecUser, capset: &CapsHashSet) -> Result<()> {
    crate::pty::own_stdio_terminals(user.uid);
    capabilities::limit_bounding(capset)?;
    unsafe {
        Errno::result(libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0))
            .map_err(sys("prctl(PR_SET_KEEPCAPS)"))?;
        let groups: Vec<libc::gid_t> = user.additional_gids();
        Errno::result(libc::syscall(
            libc::SYS_setgroups,
            groups.len(),
            groups.as_ptr(),
        ))
        .map_err(|e| RuntimeError::sys(format!("setgroups {:?}", groups), e))?;
        Errno::result(libc::syscall(
            libc::SYS_setresgid,
            user.gid,
            user.gid,
            user.gid,
        ))
        .map_err(|e| RuntimeError::sys(format!("setgid {}", user.gid), e))?;
        Errno::result(libc::syscall(
            libc::SYS_setresuid,
            user.uid,
            user.uid,
            user.uid,
        ))
        .map_err(|e| RuntimeError::sys(format!("setuid {}", user.uid), e))?;
        libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
    }
    capabilities::apply(capset)?;
    // setuid resets dumpable; keep it off until exec.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    Ok(())
}

/// chdir, then make sure the cwd is inside our root (CVE-2024-21626: a leaked fd or
/// `/proc/self/fd/N` as cwd would leave it on the host).
pub(crate) fn enter_cwd(cwd: &str) -> Result<()> {
    nix::unistd::chdir(cwd).map_err(|e| {
        RuntimeError::sys(
            format!("chdir to cwd (\"{cwd}\") set in config.json failed"),
            e,
        )
    })?;
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        Ok(p) => Err(RuntimeError::Internal(format!(
            "current working directory {} is outside of the container mount namespace root",
            p.display()
        ))),
        Err(e) => Err(RuntimeError::sys(
            "current working directory is outside of the container mount namespace root",
            e,
        )),
    }
}

/// Marks every fd ≥ 3 close-on-exec.
pub(crate) fn close_fds_on_exec() {
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        // Kernels before 5.11: mark them one by one.
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = rd
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            for fd in fds.into_iter().filter(|fd| *fd >= 3) {
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
}

/// Finds `arg0` the way Go's `exec.LookPath` does (runc), with Docker's wording.
pub(crate) fn lookup(arg0: &str, env: &[String]) -> std::result::Result<PathBuf, (i32, String)> {
    if arg0.is_empty() {
        return Err((127, "exec: \"\": executable file not found in $PATH".into()));
    }
    if arg0.contains('/') {
        let p = Path::new(arg0);
        return match std::fs::metadata(p) {
            Err(e) => Err((
                127,
                format!("exec: \"{arg0}\": stat {arg0}: {}", io_words(&e)),
            )),
            Ok(md) if md.is_dir() || md.permissions().mode() & 0o111 == 0 => {
                Err((126, format!("exec: \"{arg0}\": permission denied")))
            }
            Ok(_) => Ok(p.to_path_buf()),
        };
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if let Ok(md) = std::fs::metadata(&candidate) {
            if !md.is_dir() && md.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err((
        127,
        format!("exec: \"{arg0}\": executable file not found in $PATH"),
    ))
}

/// Go's wording for an errno (lower case, as `syscall.Errno.Error()`).
fn io_words(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => Errno::from_raw(code).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// Looks up and execs; only returns on failure.
pub(crate) fn exec_process(args: &[String], env: &[String]) -> InitFailure {
    let Some(arg0) = args.first() else {
        return InitFailure::Exec(127, "exec: no command given".into());
    };
    let path = match lookup(arg0, env) {
        Ok(p) => p,
        Err((code, msg)) => return InitFailure::Exec(code, msg),
    };
    let to_c = |v: &[String]| -> Option<Vec<CString>> {
        v.iter().map(|s| CString::new(s.as_bytes()).ok()).collect()
    };
    let (Some(cargs), Some(cenv), Ok(cpath)) = (
        to_c(args),
        to_c(env),
        CString::new(path.as_os_str().as_encoded_bytes()),
    ) else {
        return InitFailure::Exec(
            127,
            format!("exec: \"{arg0}\": invalid argument (NUL byte)"),
        );
    };
    let e = nix::unistd::execve(&cpath, &cargs, &cenv).unwrap_err();
    let code = if e == Errno::ENOENT { 127 } else { 126 };
    let words = match e {
        Errno::EACCES => "permission denied".to_string(),
        Errno::ENOEXEC => "exec format error".to_string(),
        other => other.desc().to_lowercase(),
    };
    InitFailure::Exec(code, format!("exec: \"{arg0}\": {words}"))
}

/// Environment for an exec'd process: the spec's, with `PATH` defaulted and `HOME` from
/// the user when missing.
pub(crate) fn process_env(process: &ProcessSpec, user: &ExecUser) -> Vec<String> {
    let mut env = process.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    user::add_home(&mut env, user);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_uses_path_and_docker_words() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(lookup("sh", &env).unwrap().ends_with("sh"));
        assert_eq!(
            lookup("nosuch", &env).unwrap_err(),
            (
                127,
                "exec: \"nosuch\": executable file not found in $PATH".into()
            )
        );
        assert_eq!(
            lookup("/etc", &env).unwrap_err(),
            (126, "exec: \"/etc\": permission denied".into())
        );
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("plain");
        std::fs::write(&plain, "x").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(lookup(plain.to_str().unwrap(), &env).unwrap_err().0, 126);
        assert_eq!(
            lookup("/nosuch", &env).unwrap_err(),
            (
                127,
                "exec: \"/nosuch\": stat /nosuch: no such file or directory".into()
            )
        );
    }

    #[test]
    fn exec_env_defaults() {
        let u = ExecUser {
            uid: 0,
            gid: 0,
            sgids: vec![],
            home: "/root".into(),
        };
        let p = ProcessSpec {
            env: vec!["A=1".into()],
            ..Default::default()
        };
        let env = process_env(&p, &u);
        assert_eq!(
            env,
            vec![
                format!("PATH={DEFAULT_PATH}"),
                "A=1".into(),
                "HOME=/root".into()
            ]
        );
    }
}
