//! Healthcheck monitors (moby `daemon/health.go`): one task per running, unpaused
//! container that has a probe. It runs the probe inside the container as an exec does,
//! kills it at the timeout, and feeds each result to the state machine of
//! [`super::health`]. The task stops when its handle leaves [`Monitors`] (stop, exit,
//! pause, removal); [`ContainerService::recover`] starts it again for containers still
//! running after a daemon restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_api::ExecCreateBody;
use chrono::Utc;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use super::exec::{exec_error_message, exit_code, spawn_helper};
use super::health::{self, LimitedBuffer, Policy, ProbeResult};
use super::record::{ContainerRecord, Status};
use super::ContainerService;

/// The running monitors: container ID → (generation, stop handle). Dropping the
/// sender stops the task; the generation tells a stopped task's late result apart.
#[derive(Default)]
pub struct Monitors {
    map: Mutex<HashMap<String, (u64, watch::Sender<()>)>>,
    next: AtomicU64,
}

impl Monitors {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (u64, watch::Sender<()>)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the monitor of `id`, if any; true when there was one.
    pub fn stop(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }
}

/// What a monitor needs to know of its container.
struct Plan {
    argv: Vec<String>,
    policy: Policy,
    started_at: chrono::DateTime<Utc>,
}

fn plan(rec: &ContainerRecord) -> Option<Plan> {
    let check = health::parse_config(rec.config.healthcheck.as_ref()).ok()??;
    let argv = health::probe_command(&check, rec.config.shell.as_deref())?;
    Some(Plan {
        argv,
        policy: Policy::of(&check),
        started_at: rec.state.started_at.unwrap_or_else(Utc::now),
    })
}

/// Whether `rec` has a probe to run (moby `getProbe`).
pub fn has_probe(rec: &ContainerRecord) -> bool {
    plan(rec).is_some()
}

/// A (re)started or restored container with a probe: `starting` again (moby
/// `initHealthMonitor`). Call with the container's new running state in `rec`.
pub fn reset_on_start(rec: &mut ContainerRecord) {
    if has_probe(rec) {
        rec.state.health = Some(health::begin(rec.state.health.take()));
    }
}

impl ContainerService {
    /// Starts the monitor of `id` when it runs unpaused with a probe (moby
    /// `updateHealthMonitor`). A monitor already there stays when `replace` is false
    /// (unpause), and gives way to a new one when it is true (a start, which also
    /// resets the schedule's start period).
    pub(super) fn health_monitor_start(self: &Arc<Self>, id: &str, replace: bool) {
        let Ok(rec) = self.get(id) else { return };
        if rec.state.status != Status::Running || rec.state.health.is_none() {
            return;
        }
        let Some(plan) = plan(&rec) else { return };
        let mut monitors = self.health.lock();
        if !replace && monitors.contains_key(&rec.id) {
            return;
        }
        let generation = self.health.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(());
        monitors.insert(rec.id.clone(), (generation, tx));
        drop(monitors);
        let svc = self.clone();
        tokio::spawn(svc.health_monitor(rec.id, generation, plan, rx));
    }

    /// Brings the monitor of `id` in line with the container's state after a change the
    /// daemon did not drive (the restore after a daemon restart; the shim's restarts by
    /// the policy): running without a monitor, its health starts over and a monitor
    /// runs; restarting, the monitor stops and the health reads `unhealthy`.
    pub(super) fn health_sync(self: &Arc<Self>, id: &str) {
        let Ok(rec) = self.get(id) else { return };
        match rec.state.status {
            Status::Running if !self.health.lock().contains_key(id) => self.health_restart(id),
            Status::Restarting => self.health_on_exit(id),
            _ => {}
        }
    }

    /// A start the daemon did not drive (the restore after a daemon restart, a restart
    /// by the shim's policy): a running container's health starts over (`starting`, as
    /// Docker's restore and restart do) and its monitor runs again.
    pub(super) fn health_restart(self: &Arc<Self>, id: &str) {
        if let Some(entry) = self.lock().get_mut(id) {
            if entry.rec.state.status != Status::Running || !has_probe(&entry.rec) {
                return;
            }
            reset_on_start(&mut entry.rec);
            if let Err(e) = self.store.put(&entry.rec) {
                tracing::warn!(id, error = %e, "persisting the health status");
            }
        }
        self.health_monitor_start(id, true);
    }

    /// Stops the monitor of `id`; a container whose monitor stops reads `unhealthy` (moby
    /// `CloseMonitorChannel`). The caller persists the record.
    pub(super) fn health_monitor_stop(&self, id: &str) {
        if self.health.stop(id) {
            if let Some(entry) = self.lock().get_mut(id) {
                if let Some(h) = entry.rec.state.health.as_mut() {
                    health::monitor_stopped(h);
                }
            }
        }
    }

    /// The container exited: its monitor stops and its health reads `unhealthy`, also
    /// when it died while the daemon was down (no monitor ran yet).
    pub(super) fn health_on_exit(&self, id: &str) {
        self.health.stop(id);
        if let Some(entry) = self.lock().get_mut(id) {
            if let Some(h) = entry.rec.state.health.as_mut() {
                health::monitor_stopped(h);
            }
        }
    }

    async fn health_monitor(
        self: Arc<Self>,
        id: String,
        generation: u64,
        plan: Plan,
        stop: watch::Receiver<()>,
    ) {
        self.health_monitor_loop(&id, generation, &plan, stop).await;
        // Ended by itself (the container is gone or no longer runs): off the table.
        let mut monitors = self.health.lock();
        if monitors.get(&id).map(|(g, _)| *g) == Some(generation) {
            monitors.remove(&id);
        }
    }

    async fn health_monitor_loop(
        &self,
        id: &str,
        generation: u64,
        plan: &Plan,
        mut stop: watch::Receiver<()>,
    ) {
        loop {
            let status = match self.get(id) {
                Ok(rec) => rec.state.health.map(|h| h.status).unwrap_or_default(),
                Err(_) => return,
            };
            let elapsed = (Utc::now() - plan.started_at).to_std().unwrap_or_default();
            let delay = health::next_delay(elapsed, &plan.policy, status);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.changed() => return,
            }
            let Some(result) = self.run_probe(id, plan, &mut stop).await else {
                return;
            };
            self.health_result(id, generation, result, &plan.policy);
        }
    }

    /// Applies a probe result unless the monitor was stopped meanwhile; announces a
    /// change of status.
    fn health_result(&self, id: &str, generation: u64, result: ProbeResult, policy: &Policy) {
        let monitors = self.health.lock();
        if monitors.get(id).map(|(g, _)| *g) != Some(generation) {
            return;
        }
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(id) else {
            return;
        };
        let rec = &mut entry.rec;
        let (Some(h), Some(started_at)) = (rec.state.health.as_mut(), rec.state.started_at) else {
            return;
        };
        let Some(status) = health::record_result(h, result, started_at, policy) else {
            return;
        };
        // Results between changes stay in memory until the next write of the record,
        // as in Docker; a change of status is written at once.
        if let Err(e) = self.store.put(rec) {
            tracing::warn!(id, error = %e, "persisting the health status");
        }
        let rec = rec.clone();
        drop(entries);
        drop(monitors);
        tracing::debug!(id, status = status.as_str(), "health status changed");
        self.emit_container_event(&rec, &format!("health_status: {}", status.as_str()), &[]);
    }

    /// Runs one probe; `None` when the monitor was stopped meanwhile.
    async fn run_probe(
        &self,
        id: &str,
        plan: &Plan,
        stop: &mut watch::Receiver<()>,
    ) -> Option<ProbeResult> {
        let start = Utc::now();
        let failed = |output: String| ProbeResult {
            start,
            end: Utc::now(),
            exit_code: -1,
            output,
        };
        let rec = self.get(id).ok()?;
        if rec.state.status != Status::Running {
            return None;
        }
        let cfg = ExecCreateBody {
            cmd: plan.argv.clone(),
            user: rec.config.user.clone(),
            working_dir: rec.config.working_dir.clone(),
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        // Docker's events for the probe's exec: `exec_create: CMD ARGS`, `exec_start: …`,
        // then `exec_die` with its exit code once it ran.
        let exec_id = hex::encode(rand::random::<[u8; 32]>());
        let (first, rest) = plan
            .argv
            .split_first()
            .map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
        let what = format!("{first} {}", rest.join(" "));
        let attrs = [("execID", exec_id.as_str())];
        self.emit_container_event(&rec, &format!("exec_create: {what}"), &attrs);
        self.emit_container_event(&rec, &format!("exec_start: {what}"), &attrs);
        let spec = match self.exec_spec_for(&rec, &cfg) {
            Ok(s) => s,
            Err(e) => return Some(failed(e.message)),
        };
        let mut run = match spawn_helper(&spec, false).await {
            Ok(r) => r,
            Err(e) => return Some(failed(e.message)),
        };
        let pid = match run.status {
            Ok(pid) => pid,
            Err((msg, _)) => {
                let _ = run.child.wait().await;
                return Some(failed(exec_error_message(&msg)));
            }
        };
        let result = self.finish_probe(&mut run, pid, plan, stop, start).await;
        let code = result.as_ref().map_or(137, |(_, code)| *code).to_string();
        self.emit_container_event(
            &rec,
            "exec_die",
            &[("execID", &exec_id), ("exitCode", &code)],
        );
        result.map(|(r, _)| r)
    }

    /// Waits for a started probe (killing it at the timeout) and collects its output:
    /// the result and the process's own exit code; `None` when the monitor was stopped.
    async fn finish_probe(
        &self,
        run: &mut super::exec::Running,
        pid: i64,
        plan: &Plan,
        stop: &mut watch::Receiver<()>,
        start: chrono::DateTime<Utc>,
    ) -> Option<(ProbeResult, i64)> {
        let output = Arc::new(Mutex::new(LimitedBuffer::default()));
        let mut readers = Vec::new();
        if let Some(out) = run.child.stdout.take() {
            readers.push(tokio::spawn(collect(out, output.clone())));
        }
        if let Some(err) = run.child.stderr.take() {
            readers.push(tokio::spawn(collect(err, output.clone())));
        }
        let outcome = tokio::select! {
            status = run.child.wait() => Some(status.map(exit_code).unwrap_or(255)),
            _ = tokio::time::sleep(plan.policy.timeout) => None,
            _ = stop.changed() => {
                kill_probe(&mut run.child, pid).await;
                for r in readers {
                    r.abort();
                }
                return None;
            }
        };
        let (result, code) = match outcome {
            Some(code) => {
                // What the probe wrote is in the pipes; a process it left behind may
                // keep them open: a moment for the rest, not longer.
                let _ = tokio::time::timeout(Duration::from_millis(200), async {
                    for r in readers.iter_mut() {
                        let _ = r.await;
                    }
                })
                .await;
                let result = ProbeResult {
                    start,
                    end: Utc::now(),
                    exit_code: code,
                    output: lock_buf(&output).text(),
                };
                (result, code)
            }
            None => {
                tracing::debug!(pid, "health check taking too long");
                let code = kill_probe(&mut run.child, pid).await;
                let result = ProbeResult {
                    start,
                    end: Utc::now(),
                    exit_code: -1,
                    output: health::timeout_output(plan.policy.timeout),
                };
                (result, code)
            }
        };
        for r in readers {
            r.abort();
        }
        Some((result, code))
    }
}

fn lock_buf(b: &Mutex<LimitedBuffer>) -> MutexGuard<'_, LimitedBuffer> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

async fn collect<R: AsyncRead + Unpin>(mut r: R, out: Arc<Mutex<LimitedBuffer>>) {
    let mut buf = vec![0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => lock_buf(&out).write(&buf[..n]),
        }
    }
}

/// Kills the probe's process (`pid`, on the host) while its helper still waits for it,
/// then reaps the helper; returns the exit code it reported.
async fn kill_probe(helper: &mut tokio::process::Child, pid: i64) -> i64 {
    if let (Ok(None), Ok(pid)) = (helper.try_wait(), i32::try_from(pid)) {
        if pid > 1 {
            // SAFETY: plain kill(2); the helper has not reaped `pid` while it runs.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    helper.wait().await.map(exit_code).unwrap_or(137)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::health::HealthStatus;

    fn rec(healthcheck: serde_json::Value) -> ContainerRecord {
        let mut r = ContainerRecord::default();
        r.config.healthcheck = Some(healthcheck);
        r.state.status = Status::Running;
        r
    }

    #[test]
    fn a_start_resets_only_containers_with_a_probe() {
        let mut r = rec(serde_json::json!({"Test": ["CMD", "true"]}));
        r.state.health = Some(health::HealthState {
            status: HealthStatus::Unhealthy,
            failing_streak: 4,
            log: Vec::new(),
        });
        reset_on_start(&mut r);
        let h = r.state.health.clone().unwrap();
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        for off in [
            serde_json::json!({"Test": ["NONE"]}),
            serde_json::json!({}),
            serde_json::Value::Null,
        ] {
            let mut r = rec(off);
            reset_on_start(&mut r);
            assert!(r.state.health.is_none());
            assert!(!has_probe(&r));
        }
    }

    #[test]
    fn the_plan_uses_the_containers_shell() {
        let mut r = rec(serde_json::json!({"Test": ["CMD-SHELL", "exit 0"], "Retries": 2}));
        r.config.shell = Some(vec!["/bin/ash".into(), "-c".into()]);
        let p = plan(&r).unwrap();
        assert_eq!(p.argv, vec!["/bin/ash", "-c", "exit 0"]);
        assert_eq!(p.policy.retries, 2);
    }
}
