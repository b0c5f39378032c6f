//! Crash consistency at daemon start: what a daemon killed at any instant left on the
//! host is matched with the records before live restore.
//!
//! - A start recorded as in progress ([`ContainerRecord::start_pending`]) whose shim
//!   released the container is adopted (it becomes Running and is watched as usual); a
//!   shim still waiting for `start` is killed, and the container stays as it was.
//! - A shim of a container that is not running (or of no container at all), and the
//!   processes and cgroups of such a container, are killed and removed with its state dir.
//! - Container directories and network endpoints of no record (a create or an `rm` cut
//!   short) are removed.
//!
//! [`ContainerRecord::start_pending`]: super::record::ContainerRecord::start_pending

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::record::Status;
use super::{parse_time, remove_dir_all_quiet, shim, ContainerService};

/// How a recorded start that was cut short ended.
enum PendingStart {
    /// The shim released the container: it runs (or ran) under the record.
    Started {
        pid: i64,
        started_at: Option<String>,
    },
    /// Nothing runs for it (any shim was killed).
    NotStarted,
}

impl ContainerService {
    /// Reconciles shims, state dirs, container dirs and endpoints with the records.
    /// Called by [`Self::recover`] before anything else; nothing else runs yet.
    pub(super) async fn reconcile_at_start(self: &Arc<Self>) {
        let pending: Vec<String> = self
            .lock()
            .values()
            .filter(|e| e.rec.start_pending)
            .map(|e| e.rec.id.clone())
            .collect();
        for id in pending {
            let outcome = self.settle_pending_start(&id).await;
            let mut entries = self.lock();
            let Some(entry) = entries.get_mut(&id) else {
                continue;
            };
            entry.rec.start_pending = false;
            if let PendingStart::Started { pid, started_at } = outcome {
                tracing::info!(id, "adopting a container started before the daemon died");
                let st = &mut entry.rec.state;
                st.status = Status::Running;
                st.pid = pid;
                st.exit_code = 0;
                st.error.clear();
                st.started_at = started_at
                    .as_deref()
                    .and_then(parse_time)
                    .or(Some(Utc::now()));
                entry.events.send_modify(|ev| ev.running = true);
            } else {
                tracing::info!(id, "a start cut short by the daemon's death did not happen");
            }
            if let Err(e) = self.store.put(&entry.rec) {
                tracing::error!(id, error = %e, "persisting a reconciled start");
            }
        }

        let known: HashSet<String> = self.lock().keys().cloned().collect();
        let running: HashSet<String> = self
            .lock()
            .values()
            .filter(|e| e.rec.state.status.is_running())
            .map(|e| e.rec.id.clone())
            .collect();
        // Shims and state dirs of containers that are not running, or of no container.
        for id in dir_names(&self.config.exec_root.join("containers")) {
            if running.contains(&id) {
                continue;
            }
            let state = self.state_dir(&id);
            if !known.contains(&id) {
                tracing::warn!(
                    id,
                    "removing the shim and state of a container with no record"
                );
            } else if shim::shim_alive(&state) {
                tracing::warn!(id, "killing the shim of a container that is not running");
            }
            kill_and_clean(state).await;
            if known.contains(&id) {
                // Its network too (it is set up before the shim starts).
                self.net.detach(&id);
            }
        }
        // Cgroups that no state dir names any more (a shim killed before it saved their
        // paths): looked up where a shim would have made them.
        let orphans: Vec<(String, Vec<String>)> = {
            let entries = self.lock();
            let daemon_parent = self.config.cgroup_parent.clone();
            let mut v: Vec<(String, Vec<String>)> = entries
                .values()
                .filter(|e| !e.rec.state.status.is_running())
                .map(|e| {
                    let parents = vec![
                        String::new(),
                        daemon_parent.clone(),
                        e.rec.host_config.cgroup_parent.clone(),
                    ];
                    (e.rec.id.clone(), parents)
                })
                .collect();
            for id in dir_names(&self.config.root.join("containers")) {
                if !known.contains(&id) && is_container_id(&id) {
                    v.push((id, vec![String::new(), daemon_parent.clone()]));
                }
            }
            v
        };
        let _ = tokio::task::spawn_blocking(move || {
            for (id, parents) in orphans {
                remove_cgroups_of(&id, &parents);
            }
        })
        .await;
        // Storage of containers that have no record.
        for id in dir_names(&self.config.root.join("containers")) {
            if !known.contains(&id) && is_container_id(&id) {
                tracing::warn!(id, "removing the directory of a container with no record");
                remove_dir_all_quiet(&self.container_dir(&id));
            }
        }
        self.net.forget_unknown(&known);
    }

    /// Decides a start that was in progress when the daemon died (see [`PendingStart`]).
    async fn settle_pending_start(&self, id: &str) -> PendingStart {
        let state = self.state_dir(id);
        if shim::shim_alive(&state) {
            if let Some(ev) = first_state_event(&state).await {
                if ev.running || ev.restarting || !ev.started_at.is_empty() {
                    return PendingStart::Started {
                        pid: ev.pid,
                        started_at: Some(ev.started_at).filter(|s| !s.is_empty()),
                    };
                }
            }
        } else if let Some(exit) = shim::read_exit_file(&state) {
            if !exit.started_at.is_empty() {
                // It ran and ended while the daemon was down: live restore records the
                // exit from `exit.json` as for any running container whose shim is gone.
                return PendingStart::Started {
                    pid: 0,
                    started_at: Some(exit.started_at),
                };
            }
        }
        kill_and_clean(state).await;
        self.net.detach(id);
        PendingStart::NotStarted
    }
}

/// The first `state` line of a live shim's `watch` stream (retried briefly: a shim
/// that is busy or just restarted may not answer at once).
async fn first_state_event(state: &Path) -> Option<berth_runtime::protocol::ShimEvent> {
    for _ in 0..20 {
        if let Ok(mut w) = shim::open_watch(state).await {
            let next = tokio::time::timeout(Duration::from_secs(5), shim::next_event(&mut w));
            if let Ok(Some(ev)) = next.await {
                return Some(ev);
            }
        }
        if !shim::shim_alive(state) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Kills the shim of a state dir (when it is one: its command line names the dir) and
/// every process in the container's cgroups, removes the cgroups and the state dir.
/// The shim goes first, so that no restart policy starts the container again.
pub(super) async fn kill_and_clean(state: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || kill_and_clean_blocking(&state)).await;
}

fn kill_and_clean_blocking(state: &Path) {
    if let Some(pid) = shim_pid(state) {
        // SAFETY: kill takes two integers and touches no memory.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(2);
        while process_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    if let Err(e) = berth_runtime::cgroup::destroy(state) {
        tracing::warn!(state = %state.display(), error = %e, "removing the container's cgroups");
    }
    remove_dir_all_quiet(state);
}

/// Kills what runs in `<parent>/berth/<id>` of every cgroup hierarchy (for each parent:
/// empty for the daemon's own cgroup, as a shim places it) and removes those cgroups.
fn remove_cgroups_of(id: &str, parents: &[String]) {
    use berth_runtime::cgroup::{parse_mountinfo, parse_proc_cgroup};
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own = parse_proc_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default());
    let mut dirs: Vec<PathBuf> = Vec::new();
    for h in parse_mountinfo(&mountinfo) {
        let key = if h.v2 {
            String::new()
        } else {
            h.controllers.join(",")
        };
        for parent in parents {
            let rel = if parent.is_empty() {
                own.get(&key).cloned().unwrap_or_else(|| "/".into())
            } else {
                parent.clone()
            };
            let dir = h
                .mountpoint
                .join(rel.trim_start_matches('/'))
                .join("berth")
                .join(id);
            if dir.is_dir() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    if dirs.is_empty() {
        return;
    }
    tracing::warn!(id, "removing cgroups of a container that is not running");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut any = false;
        for d in &dirs {
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                any = true;
                // SAFETY: kill takes two integers and touches no memory.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if !any || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for d in &dirs {
        if let Err(e) = std::fs::remove_dir(d) {
            tracing::warn!(dir = %d.display(), error = %e, "removing a cgroup");
        }
    }
}

/// The pid in `shim.pid` when that process is alive and is the shim of this state dir
/// (a recycled pid is never killed).
pub(super) fn shim_pid(state: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(state.join("shim.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if pid <= 0 || !process_alive(pid) {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let names_state = args.iter().any(|a| *a == state.as_os_str().as_bytes());
    (args.get(1) == Some(&&b"shim"[..]) && names_state).then_some(pid)
}

/// Alive and not a zombie.
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

fn dir_names(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// 64 lowercase hex: only such directories are containers' (nothing else is removed).
pub(super) fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_container_ids_are_removed() {
        assert!(is_container_id(&"ab".repeat(32)));
        assert!(!is_container_id("tmp"));
        assert!(!is_container_id(&"AB".repeat(32)));
        assert!(!is_container_id(&"a".repeat(63)));
    }

    #[test]
    fn a_recycled_pid_is_not_a_shim() {
        let dir = tempfile::tempdir().unwrap();
        // Our own pid is alive but its command line is not `berth shim <dir>`.
        std::fs::write(dir.path().join("shim.pid"), std::process::id().to_string()).unwrap();
        assert_eq!(shim_pid(dir.path()), None);
        std::fs::write(dir.path().join("shim.pid"), "garbage").unwrap();
        assert_eq!(shim_pid(dir.path()), None);
    }

    #[test]
    fn a_shim_is_recognised_by_its_command_line() {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        // `sh shim <dir>` runs the script `shim` with the argv of a real shim.
        std::fs::write(dir.path().join("shim"), "sleep 5\ntrue\n").unwrap();
        let mut child = std::process::Command::new("sh")
            .arg0("berth")
            .arg("shim")
            .arg(dir.path())
            .current_dir(dir.path())
            .spawn()
            .unwrap();
        std::fs::write(dir.path().join("shim.pid"), child.id().to_string()).unwrap();
        // spawn returns once exec has begun, a moment before the kernel shows the new
        // argv in /proc/PID/cmdline (empty until then).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut found = shim_pid(dir.path());
        while found.is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = shim_pid(dir.path());
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, Some(child.id() as i32));
    }
}
