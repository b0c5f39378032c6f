//! The steps the container's init and `exec-helper` share once inside the container:
//! the user, the signals, the working directory, the fds, and the exec itself.

use crate::defaults::DEFAULT_PATH;
use crate::error::{Result, RuntimeError};
use crate::spec::ProcessSpec;
use crate::syscall::Syscall;
use crate::user::{self, ExecUser};
use caps::CapsHashSet;
use nix::errno::Errno;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Resolves `-u` from the (current root's) `/etc/passwd` and `/etc/group`.
pub(crate) fn resolve_user(spec: &str) -> Result<ExecUser> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    user::resolve(spec, &passwd, &group)
}

/// Default dispositions and an empty signal mask for the container process (the shim
/// ignores SIGPIPE and SIGHUP, and ignored signals survive exec).
pub(crate) fn reset_signals() {
    use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
    for sig in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: SIG_DFL installs no handler of ours, so no Rust code can run in a
        // signal context because of it.
        let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
    }
    let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Bounding set, then groups, gid, uid (keeping capabilities), then permitted and
/// effective; inheritable and ambient cleared. The caller hands the stdio terminals to
/// the user first ([`crate::pty::own_stdio_terminals`]).
pub(crate) fn become_user(k: &dyn Syscall, user: &ExecUser, capset: &CapsHashSet) -> Result<()> {
    k.limit_bounding(capset)?;
    k.set_ids(user.uid, user.gid, &user.additional_gids())?;
    k.set_capabilities(capset)
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
    // SAFETY: close_range only changes flags of this process's descriptors; no memory
    // is passed. nix has no wrapper for it.
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
                // SAFETY: F_SETFD on a number that may or may not be an open fd only
                // sets its close-on-exec flag (or fails with EBADF); no memory is passed.
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
