//! `--init`: Berth's own binary run as `/sbin/docker-init -- CMD…`, PID 1 of the
//! container, playing tini's part: it starts the command, forwards every signal it gets
//! to it, reaps every zombie re-parented to it, and exits with the command's status
//! (128 + signal when a signal ended it).

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, fork, ForkResult, Pid};

/// The name the daemon mounts the binary under; `main.rs` dispatches on it.
pub const INIT_NAME: &str = "docker-init";

/// Runs the init; `args` are what follows argv[0] (`--` first, optional).
pub fn main(args: &[OsString]) -> i32 {
    let args = match args.first() {
        Some(a) if a == "--" => &args[1..],
        _ => args,
    };
    let argv: Vec<CString> = match args
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
    {
        Ok(v) => v,
        Err(_) => {
            eprintln!("[FATAL {INIT_NAME}] an argument contains a NUL byte");
            return 1;
        }
    };
    if argv.is_empty() {
        eprintln!("[FATAL {INIT_NAME}] no command given: {INIT_NAME} -- COMMAND [ARGS…]");
        return 1;
    }
    let all = SigSet::all();
    let mut old = SigSet::empty();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut old)) {
        eprintln!("[FATAL {INIT_NAME}] blocking signals: {e}");
        return 1;
    }
    // SAFETY: the init is single-threaded (nothing has started a thread before this),
    // so the child's copy holds no lock another thread owned; it only resets its mask
    // and execs.
    let child = match unsafe { fork() } {
        Err(e) => {
            eprintln!("[FATAL {INIT_NAME}] fork: {e}");
            return 1;
        }
        Ok(ForkResult::Child) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            let err = execvp(&argv[0], &argv).unwrap_err();
            eprintln!(
                "[FATAL {INIT_NAME}] exec {} failed: {}",
                argv[0].to_string_lossy(),
                err.desc()
            );
            // SAFETY: _exit leaves the forked child without running the parent's
            // atexit handlers or flushing its copied buffers.
            unsafe { libc::_exit(if err == Errno::ENOENT { 127 } else { 126 }) }
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    supervise(child, &all)
}

/// Waits for signals: SIGCHLD reaps, any other is forwarded to the command.
pub fn supervise(child: Pid, set: &SigSet) -> i32 {
    loop {
        let sig = match set.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        if let Some(code) = reap(child) {
            return code;
        }
    }
}

/// Reaps every exited process; the command's exit code once it has exited.
fn reap(child: Pid) -> Option<i32> {
    let mut status = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => status = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                status = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return status,
            Ok(_) => {}
        }
    }
}
