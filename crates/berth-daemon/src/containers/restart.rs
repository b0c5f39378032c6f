//! Restart policies on the daemon's side. The shim restarts a container itself
//! ([`berth_runtime::restart`]); the daemon follows through the shim's `watch`
//! connection (`exit` with `restarting`, then `start`) and records `Restarting`,
//! `RestartCount`, the new pid and `StartedAt`. After a daemon restart the first `state`
//! line tells it what happened while it was away. The daemon itself starts a container
//! only when no shim runs: at its own start-up (`always`, `unless-stopped` not stopped
//! by the user, `on-failure` after a failure) and when a shim died and took its container
//! with it, so daemon and shim never both restart it.

use std::sync::Arc;

use berth_runtime::protocol::ShimEvent;
use chrono::Utc;

use super::record::Status;
use super::{merge, parse_time, ContainerService};

impl ContainerService {
    /// Applies one event of the shim's `watch` stream (not the final exit).
    pub(super) fn on_shim_event(&self, id: &str, ev: &ShimEvent) {
        match ev.kind.as_str() {
            "exit" if ev.restarting => self.on_restarting(id, ev),
            "start" => self.on_restarted(id, ev),
            "state" if ev.restarting => self.on_restarting(id, ev),
            "state" if ev.running => self.on_restarted(id, ev),
            _ => {}
        }
    }

    /// The container exited and its shim restarts it after the backoff.
    fn on_restarting(&self, id: &str, ev: &ShimEvent) {
        let Some(exit) = ev.exit.clone() else { return };
        let rec = {
            let mut entries = self.lock();
            let Some(entry) = entries.get_mut(id) else {
                return;
            };
            let st = &mut entry.rec.state;
            if st.status == Status::Restarting && entry.rec.restart_count == ev.restart_count {
                return; // already known (a `state` line after reconnecting)
            }
            st.status = Status::Restarting;
            st.pid = 0;
            st.exit_code = exit.exit_code;
            st.oom_killed = exit.oom_killed;
            st.error = exit.error.clone();
            st.finished_at = Some(parse_time(&exit.finished_at).unwrap_or_else(Utc::now));
            entry.rec.restart_count = ev.restart_count;
            if let Err(e) = self.store.put(&entry.rec) {
                tracing::error!(id, error = %e, "persisting a restarting container");
            }
            entry.events.send_modify(|w| {
                w.exits += 1;
                w.exit_code = exit.exit_code;
                w.error = exit.error.clone();
            });
            entry.rec.clone()
        };
        tracing::info!(
            id,
            restart_count = ev.restart_count,
            "container exited; its shim restarts it"
        );
        self.execs.container_exited(id);
        if exit.oom_killed {
            self.emit_container_event(&rec, "oom", &[]);
        }
        let code = exit.exit_code.to_string();
        self.emit_container_event(&rec, "die", &[("exitCode", &code)]);
    }

    /// The shim started the container again (or, after a reconnect, runs it).
    fn on_restarted(&self, id: &str, ev: &ShimEvent) {
        let rec = {
            let mut entries = self.lock();
            let Some(entry) = entries.get_mut(id) else {
                return;
            };
            let st = &mut entry.rec.state;
            if st.pid == ev.pid && st.status.is_running() && st.status != Status::Restarting {
                return; // nothing new
            }
            if st.status != Status::Paused {
                st.status = Status::Running;
            }
            st.pid = ev.pid;
            // moby's SetRunning: the last exit's code and error go, FinishedAt stays.
            st.exit_code = 0;
            st.error.clear();
            if let Some(t) = parse_time(&ev.started_at) {
                st.started_at = Some(t);
            }
            entry.rec.restart_count = ev.restart_count;
            if let Err(e) = self.store.put(&entry.rec) {
                tracing::error!(id, error = %e, "persisting a restarted container");
            }
            entry.events.send_modify(|w| {
                w.running = true;
                w.exit_code = 0;
                w.error.clear();
            });
            entry.rec.clone()
        };
        // Docker emits `die` then `start` for a restart by the policy (no `restart`).
        self.emit_container_event(&rec, "start", &[]);
    }

    /// The shim died (killed, crashed) and took the container with it: nobody else can
    /// restart it now, so the daemon applies the policy itself (as dockerd does when
    /// containerd reports the exit), after the first backoff delay.
    pub(super) async fn restart_after_shim_death(self: &Arc<Self>, id: &str) {
        let Ok(rec) = self.record(id) else { return };
        let mut manager = berth_runtime::restart::RestartManager::new(
            merge::restart_policy(&rec.host_config.restart_policy),
            rec.restart_count,
        );
        let Some(delay) = manager.should_restart(
            rec.state.exit_code,
            rec.has_been_manually_stopped,
            std::time::Duration::ZERO,
        ) else {
            return;
        };
        // A user's stop or kill ends the policy (moby's ExitOnNext) for `always` too.
        if rec.has_been_manually_stopped {
            return;
        }
        tracing::warn!(
            id,
            "the container's shim died; restarting it (restart policy)"
        );
        tokio::time::sleep(delay).await;
        if let Err(e) = self.start_counted(id, true).await {
            tracing::warn!(id, error = %e.message, "restarting after the shim died");
        }
    }

    /// At daemon start-up, after live restore: starts the containers whose restart
    /// policy says so and that no shim runs (moby's restore: `always`; `unless-stopped`
    /// unless the user stopped it; `on-failure` after a failure, under the limit).
    pub(super) fn start_by_policy_at_boot(self: &Arc<Self>) {
        let ids: Vec<String> = self
            .lock()
            .values()
            .filter(|e| {
                let r = &e.rec;
                !r.state.status.is_running()
                    && r.state.status != Status::Removing
                    && r.state.status != Status::Dead
                    && r.state.started_at.is_some()
                    && merge::restart_policy(&r.host_config.restart_policy).start_at_boot(
                        r.state.exit_code,
                        r.has_been_manually_stopped,
                        r.restart_count,
                    )
            })
            .map(|e| e.rec.id.clone())
            .collect();
        if ids.is_empty() {
            return;
        }
        // One after the other, and the failed ones once more at the end: a container
        // that joins another's network (`container:NAME`, links) may need it up first.
        let svc = self.clone();
        crate::lifecycle_pool::spawn(async move {
            let mut failed = Vec::new();
            for id in ids {
                tracing::info!(id, "starting the container (restart policy)");
                if svc.start(&id).await.is_err() {
                    failed.push(id);
                }
            }
            for id in failed {
                if let Err(e) = svc.start(&id).await {
                    tracing::warn!(id, error = %e.message, "starting the container at daemon start");
                }
            }
        });
    }
}
