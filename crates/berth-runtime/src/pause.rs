//! The pause process of a CRI pod sandbox: PID 1 of the pod, holding its namespaces.
//! It does nothing but sleep, reap every zombie re-parented to it, and exit 0 on SIGTERM
//! or SIGINT (as Kubernetes' `pause` does). Berth needs no pause image: a sandbox's init
//! runs this in place of a command ([`crate::ContainerSpec::pause`]), and `berth pod-pause`
//! (a hidden subcommand) runs it as a plain process.

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The hidden subcommand that runs it: `berth pod-pause`.
pub const SUBCOMMAND: &str = "pod-pause";

/// The name the pause shows as (`comm`), as Kubernetes' pause binary.
pub const PAUSE_NAME: &str = "pause";

/// Runs until SIGTERM or SIGINT; returns the exit code (0), or 1 when signals could not
/// be blocked. Must be called single-threaded (the container init is).
pub fn main() -> i32 {
    let all = SigSet::all();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None) {
        eprintln!("[FATAL {PAUSE_NAME}] blocking signals: {e}");
        return 1;
    }
    let _ = nix::sys::prctl::set_name(c"pause");
    loop {
        match all.wait() {
            Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => return 0,
            Ok(Signal::SIGCHLD) => reap_all(),
            // Every other signal is waited for (blocked), so none can end the pause by
            // its default action; SIGKILL still does.
            Ok(_) | Err(_) => {}
        }
    }
}

/// Reaps every exited child (processes of the pod re-parented to PID 1).
fn reap_all() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
