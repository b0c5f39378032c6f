//! Killing every process of a container without its shim's help: for the daemon, when a
//! shim is stopped, wedged or gone and `stop`/`kill`/`rm -f` must still end the
//! container.
//!
//! cgroup v2 `cgroup.kill` when the container has a v2 cgroup whose kernel has it (5.14+);
//! otherwise the v1 way: freeze the freezer cgroup (so nothing forks while we kill), SIGKILL
//! every pid in `cgroup.procs` of every one of the container's cgroups, thaw. Whatever was
//! used, frozen cgroups are thawed at the end (a frozen task dies only once thawed).

use crate::cgroup::CgroupPaths;
use crate::error::{Result, RuntimeError};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long [`kill_all`] waits for the killed processes to be gone.
const EMPTY_WAIT: Duration = Duration::from_secs(3);

fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn sigkill_all(paths: &CgroupPaths) -> bool {
    let mut any = false;
    for dir in paths.dirs() {
        for pid in procs(&dir) {
            any = true;
            // SAFETY: kill takes two integers; no memory is passed.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    any
}

fn thaw(paths: &CgroupPaths) {
    if let Some(dir) = paths.v1.get("freezer") {
        let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    }
    if let Some(dir) = &paths.unified {
        if dir.join("cgroup.freeze").exists() {
            let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
        }
    }
}

/// Kills every process in the cgroups listed in `<state-dir>/cgroups.json` and waits
/// (bounded) until they are gone. Ok when nothing is left (or there was nothing to kill).
pub fn kill_all(state_dir: &Path) -> Result<()> {
    let paths = match CgroupPaths::load(state_dir) {
        Ok(p) => p,
        Err(RuntimeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    kill_paths(&paths)
}

/// [`kill_all`] on known paths.
pub fn kill_paths(paths: &CgroupPaths) -> Result<()> {
    let v2_kill = paths
        .unified
        .as_ref()
        .map(|d| d.join("cgroup.kill"))
        .filter(|f| f.exists());
    let killed_by_v2 = v2_kill.is_some_and(|f| std::fs::write(f, "1").is_ok());
    if !killed_by_v2 {
        // Freeze first so no process forks a child we would miss; bounded, as a task in
        // uninterruptible sleep can keep the cgroup FREEZING.
        if let Some(dir) = paths.v1.get("freezer") {
            let _ = std::fs::write(dir.join("freezer.state"), "FROZEN");
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                let st = std::fs::read_to_string(dir.join("freezer.state")).unwrap_or_default();
                if st.trim() == "FROZEN" {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        sigkill_all(paths);
    }
    thaw(paths);
    let deadline = Instant::now() + EMPTY_WAIT;
    loop {
        // Again each round: a process that forked before the freeze took hold.
        if !sigkill_all(paths) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let left: Vec<i32> = paths.dirs().iter().flat_map(|d| procs(d)).collect();
            return Err(RuntimeError::Internal(format!(
                "processes {left:?} of the container survived SIGKILL"
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A v1 freezer cgroup of the test's own (skipped without one or without root).
    fn v1_freezer() -> Option<PathBuf> {
        let root = Path::new("/sys/fs/cgroup/freezer");
        if !root.join("freezer.state").exists() && !root.join("cgroup.procs").exists() {
            return None;
        }
        let dir = root.join(format!("berth-unit-kill-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        Some(dir)
    }

    #[test]
    fn the_v1_way_kills_a_stopped_forking_tree() {
        let Some(dir) = v1_freezer() else {
            eprintln!("skipped: no v1 freezer hierarchy (or not root)");
            return;
        };
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 0.3; sleep 100 & sleep 100 & wait"])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
        // Its children are forked inside; then the whole tree is SIGSTOPped.
        let deadline = Instant::now() + Duration::from_secs(10);
        while procs(&dir).len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill takes two integers; no memory is passed.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let before = procs(&dir);
        let mut paths = CgroupPaths::default();
        paths.v1.insert("freezer".into(), dir.clone());
        let r = kill_paths(&paths);
        let _ = child.wait();
        let left = procs(&dir);
        let _ = std::fs::remove_dir(&dir);
        r.unwrap();
        assert_eq!(before.len(), 3, "sh and its two sleeps: {before:?}");
        assert!(left.is_empty(), "{left:?}");
    }
}
