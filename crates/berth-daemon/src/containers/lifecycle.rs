//! A started container's life: the exit monitor, live restore, signals (stop, kill,
//! restart), pause, resize and wait.

use std::sync::Arc;
use std::time::Duration;

use berth_api::ErrorKind;
use berth_runtime::protocol::ExitStatus;
use chrono::Utc;

use super::record::{ContainerRecord, Status};
use super::{clean_state_dir, merge, parse_time, shim, ContainerService, WaitCondition};
use crate::error::{ApiError, ApiResult};

/// How long a container may take to exit after a SIGKILL its shim took before the
/// daemon kills the shim and the cgroup itself (the shim drains output and removes
/// cgroups first; slow on a loaded machine, so generous).
const KILL_GRACE: Duration = Duration::from_secs(10);
/// The same when the shim did not answer (stopped, wedged): it will not report the exit.
const UNANSWERED_GRACE: Duration = Duration::from_secs(1);

impl ContainerService {
    /// Follows a running container's shim (its `watch` stream: restarts by the policy)
    /// until the container exits for good.
    pub(super) fn spawn_monitor(self: &Arc<Self>, id: String, conn: Option<shim::Watch>) {
        let svc = self.clone();
        crate::lifecycle_pool::spawn(async move {
            let mut status = None;
            if let Some(mut w) = conn {
                while let Some(ev) = shim::next_event(&mut w).await {
                    if ev.kind.is_empty() {
                        // A shim from before `watch` (live restore after an upgrade).
                        if let Ok(c) = shim::open_wait(&svc.state_dir(&id)).await {
                            status = shim::wait_exit(c).await;
                        }
                        break;
                    }
                    if ev.kind == "exit" && !ev.restarting {
                        status = ev.exit;
                        break;
                    }
                    svc.on_shim_event(&id, &ev);
                    svc.health_sync(&id);
                }
            }
            if svc.on_exit(&id, status).await {
                svc.restart_after_shim_death(&id).await;
            }
        });
    }

    /// Records the final exit and cleans up; true when the shim died without saying
    /// how the container ended.
    async fn on_exit(self: &Arc<Self>, id: &str, status: Option<ExitStatus>) -> bool {
        self.health_on_exit(id);
        let state = self.state_dir(id);
        let mut shim_died = false;
        let status = match status {
            Some(s) => s,
            None => {
                // The connection closed without an answer: the shim died, or wrote
                // exit.json just before going.
                shim::wait_shim_gone(&state, Duration::from_millis(500)).await;
                shim::read_exit_file(&state).unwrap_or_else(|| {
                    shim_died = true;
                    ExitStatus {
                        exit_code: 255,
                        finished_at: String::new(),
                        oom_killed: false,
                        error: "shim died: the container's shim process exited unexpectedly".into(),
                        ..Default::default()
                    }
                })
            }
        };
        // Clean up before announcing the exit: whoever waits for it (stop, restart, rm)
        // finds no process, cgroup or state dir left, and a new start gets a fresh dir.
        let rec = self.record(id).ok();
        if let Some(rec) = &rec {
            // The memory limit killed it: Docker's `oom` comes before `die`.
            if status.oom_killed {
                self.emit_container_event(rec, "oom", &[]);
            }
            self.emit_container_event(rec, "die", &[("exitCode", &status.exit_code.to_string())]);
        }
        let t = berth_net::timing::Step::new("exit.clean_state_dir");
        clean_state_dir(state).await;
        drop(t);
        if let Some(rec) = &rec {
            self.net.emit_endpoint_events(rec, "disconnect");
        }
        let t = berth_net::timing::Step::new("exit.net_detach");
        self.net.detach(id);
        drop(t);
        if let Some(rec) = &rec {
            self.emit_volume_events(rec, "unmount");
        }
        self.release_volumes(id);
        let auto_remove = {
            let mut entries = self.lock();
            let Some(entry) = entries.get_mut(id) else {
                return false;
            };
            let st = &mut entry.rec.state;
            st.status = Status::Exited;
            st.pid = 0;
            st.exit_code = status.exit_code;
            st.oom_killed = status.oom_killed;
            st.error = status.error.clone();
            st.finished_at = Some(parse_time(&status.finished_at).unwrap_or_else(Utc::now));
            if let Some(t) = parse_time(&status.started_at) {
                st.started_at = Some(t);
            }
            entry.rec.restart_count = entry.rec.restart_count.max(status.restart_count);
            // Committed after the lock: an exit is reconciled by recover().
            self.store.put_soon(&entry.rec);
            entry.events.send_modify(|ev| {
                ev.exits += 1;
                ev.running = false;
                ev.exit_code = status.exit_code;
                ev.error = status.error.clone();
            });
            entry.rec.host_config.auto_remove
        };
        self.execs.container_exited(id);
        if auto_remove {
            let _t = berth_net::timing::Step::new("exit.auto_remove");
            self.remove_container(id);
        }
        shim_died
    }

    /// Live restore: reconciles what a killed daemon left with the records
    /// ([`Self::reconcile_at_start`]), reconnects to the shims of containers recorded as
    /// running and removes the auto-remove containers that are not running (moby's
    /// restore).
    pub async fn recover(self: &Arc<Self>) {
        self.reconcile_at_start().await;
        self.restore_volume_users();
        let candidates: Vec<(String, Status, bool)> = self
            .lock()
            .values()
            .map(|e| {
                (
                    e.rec.id.clone(),
                    e.rec.state.status,
                    e.rec.host_config.auto_remove,
                )
            })
            .collect();
        for (id, status, auto_remove) in candidates {
            let state = self.state_dir(&id);
            if status.is_running() {
                let mut conn = shim::open_watch(&state).await;
                // A live shim that does not answer yet (busy, or just restarted): retry
                // before declaring the container dead, which would kill it.
                for _ in 0..20 {
                    if conn.is_ok() || !shim::shim_alive(&state) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    conn = shim::open_watch(&state).await;
                }
                match conn {
                    Ok(conn) => {
                        tracing::info!(id, "reconnected to running container");
                        self.spawn_monitor(id.clone(), Some(conn));
                        self.health_sync(&id);
                    }
                    Err(_) => {
                        tracing::warn!(id, "container's shim is gone");
                        let exit = shim::read_exit_file(&state);
                        // A policy container is started below, with the others.
                        self.on_exit(&id, exit).await;
                    }
                }
            } else if auto_remove {
                // Never started, or exited while the daemon was down: `rm -v` (its
                // anonymous volumes go too).
                tracing::info!(id, "removing an auto-remove container that is not running");
                self.remove_container(&id);
            }
        }
        let (running, stopped): (Vec<String>, Vec<String>) = {
            let entries = self.lock();
            let (running, stopped): (Vec<_>, Vec<_>) = entries
                .values()
                .partition(|e| e.rec.state.status.is_running());
            let ids = |v: Vec<&super::Entry>| v.into_iter().map(|e| e.rec.id.clone()).collect();
            (ids(running), ids(stopped))
        };
        self.net.restore(&running, &stopped);
        self.start_by_policy_at_boot();
    }

    /// A signal from the user that ends the restart policy until the next start
    /// (`stop`, `kill -s KILL`, `rm -f`).
    #[allow(dead_code)] // the plain form for other callers (start/rm paths)
    pub(super) async fn signal_running(&self, id: &str, signal: i32) -> ApiResult<()> {
        self.signal_by_user(id, signal, true).await
    }

    /// A signal from the user (Docker's `killWithSignal`): the container counts as
    /// stopped by the user; with `cancel_restart` its restart policy stops too.
    #[allow(dead_code)] // the plain form for other callers (start/rm paths)
    pub(super) async fn signal_by_user(
        &self,
        id: &str,
        signal: i32,
        cancel_restart: bool,
    ) -> ApiResult<()> {
        self.signal_shim(id, signal, cancel_restart).await.0
    }

    /// [`Self::signal_by_user`], and whether the shim itself answered (false: it did not
    /// within its deadline and the signal went to the init directly, if at all).
    async fn signal_shim(
        &self,
        id: &str,
        signal: i32,
        cancel_restart: bool,
    ) -> (ApiResult<()>, bool) {
        {
            let mut entries = self.lock();
            if let Some(entry) = entries.get_mut(id) {
                if !entry.rec.has_been_manually_stopped {
                    entry.rec.has_been_manually_stopped = true;
                    if let Err(e) = self.store.put(&entry.rec) {
                        tracing::error!(id, error = %e, "persisting a stopped container");
                    }
                }
            }
        }
        let state = self.state_dir(id);
        let mut answered = true;
        let sent = match shim::signal_by_user(&state, signal, cancel_restart).await {
            Ok(()) => Ok(()),
            Err(shim::CallError::Refused(e)) => Err(e),
            // A stopped or wedged shim: the signal goes to the init directly (the caller
            // kills the shim and the cgroup if the container does not end).
            Err(shim::CallError::Unreachable(e)) => {
                tracing::warn!(id, error = %e, "the shim does not answer; signalling the init directly");
                answered = false;
                shim::signal_init_directly(&state, signal).map_err(|_| e)
            }
        };
        if let (Ok(()), Ok(rec)) = (&sent, self.record(id)) {
            self.emit_container_event(&rec, "kill", &[("signal", &signal.to_string())]);
        }
        let sent = sent.map_err(|e| {
            if shim::shim_alive(&state) {
                ApiError::internal(format!("Cannot kill container: {id}: {e}"))
            } else {
                // The shim is gone: the container exited and its monitor is catching up.
                ApiError::conflict(format!(
                    "Cannot kill container: {id}: Container {id} is not running"
                ))
            }
        });
        (sent, answered)
    }

    /// Waits until the container is not running; false on timeout.
    pub(super) async fn wait_stopped(&self, id: &str, timeout: Option<Duration>) -> bool {
        let Ok(mut rx) = self.subscribe(id) else {
            return true;
        };
        let stopped = async {
            loop {
                if !rx.borrow_and_update().running {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, stopped).await.is_ok(),
            None => {
                stopped.await;
                true
            }
        }
    }

    /// `POST /containers/{id}/stop`.
    pub async fn stop(
        &self,
        name_or_id: &str,
        t: Option<i64>,
        signal: Option<&str>,
    ) -> ApiResult<()> {
        let id = self.resolve(name_or_id)?;
        let rec = self.record(&id)?;
        if !rec.state.status.is_running() {
            return Err(ApiError::new(
                ErrorKind::NotModified,
                "Container already stopped",
            ));
        }
        let sig = match signal
            .filter(|s| !s.is_empty())
            .or(rec.config.stop_signal.as_deref())
        {
            Some(s) => merge::parse_signal(s)?,
            None => libc::SIGTERM,
        };
        let secs = t.or(rec.config.stop_timeout).unwrap_or(10);
        self.stop_record(&rec, sig, secs).await?;
        self.emit_container_event(&rec, "stop", &[]);
        Ok(())
    }

    async fn stop_record(&self, rec: &ContainerRecord, sig: i32, secs: i64) -> ApiResult<()> {
        let id = &rec.id;
        let (_, answered) = self.signal_shim(id, sig, true).await;
        if rec.state.status == Status::Paused {
            let _ = self.set_frozen(id, false).await;
        }
        let timeout = (secs >= 0).then(|| Duration::from_secs(secs as u64));
        if self.wait_stopped(id, timeout).await {
            return Ok(());
        }
        if self.kill_and_wait_with(id, false, answered).await {
            Ok(())
        } else {
            Err(ApiError::internal(format!("Cannot stop container: {id}: tried to kill container, but did not receive an exit event")))
        }
    }

    /// SIGKILL through the shim; when the container is not gone within
    /// [`KILL_GRACE`], kills its shim and whole cgroup without the shim's help
    /// ([`shim::kill_hard`]). Bounded whatever state the shim is in; false when the exit
    /// was still not seen.
    pub(super) async fn kill_and_wait(&self, id: &str, paused: bool) -> bool {
        self.kill_and_wait_with(id, paused, true).await
    }

    /// [`Self::kill_and_wait`]; `ask_shim` false when the shim did not answer a moment
    /// ago: the SIGKILL then goes to the init directly, without waiting for the shim again.
    async fn kill_and_wait_with(&self, id: &str, paused: bool, ask_shim: bool) -> bool {
        let answered = if ask_shim {
            self.signal_shim(id, libc::SIGKILL, true).await.1
        } else {
            let _ = shim::signal_init_directly(&self.state_dir(id), libc::SIGKILL);
            false
        };
        self.finish_kill(id, paused, answered).await
    }

    /// After a SIGKILL was sent (or could not be): see [`Self::kill_and_wait`]. A shim
    /// that answered gets [`KILL_GRACE`] to report the exit, one that did not
    /// [`UNANSWERED_GRACE`].
    async fn finish_kill(&self, id: &str, paused: bool, answered: bool) -> bool {
        if paused {
            let _ = self.set_frozen(id, false).await;
        }
        let grace = if answered {
            KILL_GRACE
        } else {
            UNANSWERED_GRACE
        };
        if self.wait_stopped(id, Some(grace)).await {
            return true;
        }
        tracing::warn!(
            id,
            "the container did not exit after SIGKILL; killing its shim and cgroup"
        );
        shim::kill_hard(&self.state_dir(id)).await;
        self.wait_stopped(id, Some(Duration::from_secs(10))).await
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(&self, name_or_id: &str, signal: Option<&str>) -> ApiResult<()> {
        let id = self.resolve(name_or_id)?;
        let rec = self.record(&id)?;
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => merge::parse_signal(s)?,
            None => libc::SIGKILL,
        };
        if !rec.state.status.is_running() {
            return Err(ApiError::conflict(format!(
                "Cannot kill container: {id}: Container {id} is not running"
            )));
        }
        // moby: SIGKILL, or the container's stop signal (any signal when it has none),
        // ends the restart policy until the next start.
        let stop_signal = match rec.config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(merge::parse_signal(s)?),
            None => None,
        };
        let cancel = sig == libc::SIGKILL || stop_signal.is_none_or(|s| s == sig);
        let (sent, answered) = self.signal_shim(&id, sig, cancel).await;
        if sig == libc::SIGKILL && (sent.is_ok() || shim::shim_alive(&self.state_dir(&id))) {
            // Whatever the shim answered, a SIGKILL ends the container (bounded).
            self.finish_kill(&id, rec.state.status == Status::Paused, answered)
                .await;
            return Ok(());
        }
        sent
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        self: &Arc<Self>,
        name_or_id: &str,
        t: Option<i64>,
        signal: Option<&str>,
    ) -> ApiResult<()> {
        let id = self.resolve(name_or_id)?;
        match self.stop(&id, t, signal).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        self.start(&id).await?;
        if let Ok(rec) = self.record(&id) {
            self.emit_container_event(&rec, "restart", &[]);
        }
        Ok(())
    }

    pub(super) async fn set_frozen(&self, id: &str, frozen: bool) -> Result<(), String> {
        let state = self.state_dir(id);
        tokio::task::spawn_blocking(move || freezer::set_frozen(&state, frozen))
            .await
            .map_err(|e| e.to_string())?
    }

    /// `POST /containers/{id}/pause` and `unpause`.
    pub async fn pause(self: &Arc<Self>, name_or_id: &str, pause: bool) -> ApiResult<()> {
        let id = self.resolve(name_or_id)?;
        let rec = self.record(&id)?;
        match (rec.state.status, pause) {
            (Status::Running, true) | (Status::Paused, false) => {}
            (Status::Restarting, _) => return Err(super::record::restarting_error(&id)),
            (Status::Paused, true) => {
                return Err(ApiError::conflict(format!(
                    "Container {id} is already paused"
                )))
            }
            (Status::Running, false) => {
                return Err(ApiError::conflict(format!("Container {id} is not paused")))
            }
            _ => return Err(ApiError::conflict(format!("Container {id} is not running"))),
        }
        self.set_frozen(&id, pause).await.map_err(|e| {
            ApiError::internal(format!(
                "Cannot {} container {id}: {e}",
                if pause { "pause" } else { "unpause" }
            ))
        })?;
        if pause {
            self.health_monitor_stop(&id);
        }
        {
            let mut entries = self.lock();
            if let Some(entry) = entries.get_mut(&id) {
                if entry.rec.state.status.is_running() {
                    entry.rec.state.status = if pause {
                        Status::Paused
                    } else {
                        Status::Running
                    };
                    self.store.put(&entry.rec)?;
                    self.emit_container_event(
                        &entry.rec,
                        if pause { "pause" } else { "unpause" },
                        &[],
                    );
                }
            }
        }
        if !pause {
            self.health_monitor_start(&id, false);
        }
        Ok(())
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, name_or_id: &str, h: u16, w: u16) -> ApiResult<()> {
        let rec = self.get(name_or_id)?;
        if !rec.state.status.is_running() {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        shim::resize(&self.state_dir(&rec.id), h, w)
            .await
            .map_err(|e| ApiError::internal(format!("Cannot resize container {}: {e}", rec.id)))?;
        self.emit_container_event(
            &rec,
            "resize",
            &[("height", &h.to_string()), ("width", &w.to_string())],
        );
        Ok(())
    }

    /// `POST /containers/{id}/wait`: resolves the container now, waits in the future.
    pub fn wait(
        &self,
        name_or_id: &str,
        condition: WaitCondition,
    ) -> ApiResult<impl std::future::Future<Output = (i64, String)> + Send + 'static> {
        let id = self.resolve(name_or_id)?;
        let mut rx = self.subscribe(&id)?;
        let start = rx.borrow_and_update().clone();
        Ok(async move {
            loop {
                let ev = rx.borrow_and_update().clone();
                let done = match condition {
                    // An exit before a restart by the policy counts (Docker's waitStop).
                    WaitCondition::NotRunning => {
                        !ev.running || ev.exits > start.exits || ev.removed
                    }
                    WaitCondition::NextExit => ev.exits > start.exits || ev.removed,
                    WaitCondition::Removed => ev.removed,
                };
                if done {
                    // Docker reports the state's error to not-running/next-exit waiters;
                    // `removed` waiters only learn about a failed removal.
                    let error = if condition == WaitCondition::Removed {
                        String::new()
                    } else {
                        ev.error
                    };
                    return (ev.exit_code, error);
                }
                if rx.changed().await.is_err() {
                    let ev = rx.borrow().clone();
                    return (ev.exit_code, ev.error);
                }
            }
        })
    }

    // ---------------------------------------------------------------- attach
}

/// The cgroup freezer, through the runtime.
mod freezer {
    use std::path::Path;

    pub fn set_frozen(state_dir: &Path, frozen: bool) -> Result<(), String> {
        berth_runtime::cgroup::set_frozen(state_dir, frozen).map_err(|e| e.to_string())
    }
}
