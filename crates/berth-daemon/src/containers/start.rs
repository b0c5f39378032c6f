//! `POST /containers/{id}/start`: the runtime spec from the record, volumes and network
//! attached, the shim spawned; on failure nothing is left running.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_api::ErrorKind;
use berth_runtime::protocol::Request;
use berth_runtime::ContainerSpec;
use chrono::Utc;

use super::attach::{self, PendingAttach};
use super::record::{ContainerRecord, StateRecord, Status};
use super::{
    clean_state_dir, entry_mut, health_monitor, merge, remove_dir_all_quiet, shim, ContainerService,
};
use crate::error::{ApiError, ApiResult};

pub(super) fn start_error_kind(exit_code: i64) -> ErrorKind {
    if exit_code == 126 || exit_code == 127 {
        ErrorKind::InvalidArgument
    } else {
        ErrorKind::Internal
    }
}

/// Docker's wording around a runtime start failure.
pub fn start_error_message(runtime_error: &str) -> String {
    format!(
        "failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: {runtime_error}: unknown"
    )
}

/// Docker's exit code for a start failure message (127 not found, 126 not executable).
pub fn start_exit_code(message: &str) -> i64 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        127
    } else if message.contains("permission denied") {
        126
    } else {
        128
    }
}

impl ContainerService {
    /// The container's `--ulimit`s with the daemon's `default-ulimits` (its init and its
    /// execs get them).
    pub(super) fn rlimits(&self, hc: &berth_api::HostConfig) -> Vec<berth_runtime::Rlimit> {
        self.config
            .defaults
            .ulimits(hc)
            .iter()
            .map(|u| berth_runtime::Rlimit {
                name: u.name.clone(),
                soft: u.soft,
                hard: u.hard,
            })
            .collect()
    }

    fn build_spec(&self, rec: &ContainerRecord) -> ApiResult<ContainerSpec> {
        super::propagation::check_binds(&rec.mount_points)?;
        // A pod sandbox has no image: its rootfs is its empty writable layer.
        let lower_dirs = if rec.internal.pause {
            Vec::new()
        } else {
            self.images.layer_dirs(&rec.image_id)?
        };
        let dir = self.container_dir(&rec.id);
        let state = self.state_dir(&rec.id);
        let hc = &rec.host_config;
        let cgroup_parent = if hc.cgroup_parent.is_empty() {
            self.config.cgroup_parent.clone()
        } else {
            hc.cgroup_parent.clone()
        };
        let devices = super::resource_options::devices(hc)?;
        Ok(ContainerSpec {
            id: rec.id.clone(),
            lower_dirs,
            upper_dir: dir.join("upper"),
            work_dir: dir.join("work"),
            rootfs: state.join("rootfs"),
            readonly_rootfs: hc.readonly_rootfs,
            process: berth_runtime::ProcessSpec {
                additional_groups: hc.group_add.clone(),
                ..merge::process_spec(&rec.config, &rec.path, &rec.args)
            },
            hostname: rec.config.hostname.clone(),
            domainname: rec.config.domainname.clone(),
            mounts: super::init_process::with_init_mount(
                self.runtime_mounts(rec)?,
                self.config.defaults.init(hc),
            ),
            privileged: hc.privileged,
            cap_add: hc.cap_add.clone(),
            cap_drop: hc.cap_drop.clone(),
            resources: berth_runtime::Resources {
                device_rules: super::resource_options::device_rules(hc, &devices),
                ..merge::resources(hc)
            },
            cgroup_parent,
            network: merge::network_mode(hc),
            shm_size: hc.shm_size.max(0) as u64,
            sysctls: hc
                .sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            // The pause reaps the pod's processes itself.
            init: self.config.defaults.init(hc) && !rec.internal.pause,
            pause: rec.internal.pause,
            namespaces: super::run_options::namespaces(hc, &rec.internal, &|name| self.get(name))?,
            rlimits: self.rlimits(hc),
            log_path: rec.log_path.clone(),
            restart: merge::restart_policy(&hc.restart_policy),
            restart_count: rec.restart_count,
            log: super::log_config::spec(hc, &rec.config)?,
            oom_score_adj: (hc.oom_score_adj != 0).then_some(hc.oom_score_adj as i32),
            masked_paths: hc.masked_paths.clone().filter(|p| !p.is_empty()),
            readonly_paths: hc.readonly_paths.clone().filter(|p| !p.is_empty()),
            devices,
            security: super::security_opts::spec(hc, &self.config.security)?,
            userns: self.userns_of(&rec.id),
            userns_join: self.userns_join(rec, self.userns_of(&rec.id).as_ref())?,
        })
    }

    /// `POST /containers/{id}/start`. Runs to its end in its own task on the lifecycle
    /// runtime: a client that goes away (its request future dropped) must not leave a
    /// start half-done, and reads never queue behind it.
    pub async fn start(self: &Arc<Self>, name_or_id: &str) -> ApiResult<()> {
        let svc = self.clone();
        let name_or_id = name_or_id.to_string();
        crate::lifecycle_pool::run(async move { svc.start_counted(&name_or_id, false).await }).await
    }

    /// A start; `by_policy` for a restart by the restart policy, which counts it instead
    /// of resetting the count and the user's stop as a user's start does.
    pub(super) async fn start_counted(
        self: &Arc<Self>,
        name_or_id: &str,
        by_policy: bool,
    ) -> ApiResult<()> {
        let (rec, pending, staged) = {
            let mut entries = self.lock();
            let (_, entry) = entry_mut(&mut entries, name_or_id)?;
            match entry.rec.state.status {
                Status::Running | Status::Restarting => {
                    return Err(ApiError::new(
                        ErrorKind::NotModified,
                        "Container already started",
                    ))
                }
                Status::Paused => {
                    return Err(ApiError::conflict(
                        "cannot start a paused container, try unpause instead",
                    ))
                }
                Status::Removing | Status::Dead => {
                    return Err(ApiError::conflict(
                        "container is marked for removal and cannot be started",
                    ))
                }
                _ => {}
            }
            if entry.starting {
                return Err(ApiError::new(
                    ErrorKind::NotModified,
                    "Container already started",
                ));
            }
            entry.starting = true;
            // A start resets the restart policy's count and the user's stop (moby's
            // `ResetRestartManager`, `HasBeenManuallyStopped`).
            if by_policy {
                entry.rec.restart_count += 1;
            } else {
                entry.rec.restart_count = 0;
                entry.rec.has_been_manually_stopped = false;
            }
            // Recorded before anything is set up: a daemon killed during the start finds
            // the shim again at its next start and adopts or removes it.
            // Staged under the lock, made durable after it (lists and inspects never wait
            // for its fsync), and before anything is set up.
            entry.rec.start_pending = true;
            let staged = match self.store.stage_put(&entry.rec) {
                Ok(s) => s,
                Err(e) => {
                    entry.starting = false;
                    entry.rec.start_pending = false;
                    return Err(ApiError::from(e));
                }
            };
            (
                entry.rec.clone(),
                std::mem::take(&mut entry.pending),
                staged,
            )
        };
        let id = rec.id.clone();
        let t = berth_net::timing::Step::new("start.mark_durable");
        let marked = crate::error::in_place(|| self.store.wait(staged));
        drop(t);
        if let Err(e) = marked {
            if let Some(entry) = self.lock().get_mut(&id) {
                entry.starting = false;
                entry.rec.start_pending = false;
                entry.pending = pending;
            }
            return Err(ApiError::from(e));
        }
        crate::crash_point::crash_point("start-after-mark");
        match self.launch(&rec, pending).await {
            Ok((pid, wait_conn)) => {
                {
                    let mut entries = self.lock();
                    if let Some(entry) = entries.get_mut(&id) {
                        entry.starting = false;
                        entry.rec.start_pending = false;
                        entry.rec.state = StateRecord {
                            status: Status::Running,
                            pid,
                            started_at: Some(Utc::now()),
                            health: entry.rec.state.health.take(),
                            ..Default::default()
                        };
                        health_monitor::reset_on_start(&mut entry.rec);
                        // Committed after the lock: a start is reconciled by recover().
                        self.store.put_soon(&entry.rec);
                        entry.events.send_modify(|ev| {
                            ev.running = true;
                            ev.exit_code = 0;
                            ev.error.clear();
                        });
                    }
                }
                self.emit_container_event(&rec, "start", &[]);
                self.spawn_monitor(id.clone(), Some(wait_conn));
                self.health_monitor_start(&id, true);
                Ok(())
            }
            Err((err, exit_code)) => {
                self.release_volumes(&id);
                let auto_remove = {
                    let mut entries = self.lock();
                    let mut auto_remove = false;
                    if let Some(entry) = entries.get_mut(&id) {
                        entry.starting = false;
                        entry.rec.start_pending = false;
                        entry.rec.state.exit_code = exit_code;
                        entry.rec.state.error = err.message.clone();
                        entry.rec.state.pid = 0;
                        if let Err(e) = self.store.put(&entry.rec) {
                            tracing::error!(id, error = %e, "persisting failed start");
                        }
                        entry.events.send_modify(|ev| {
                            ev.exits += 1;
                            ev.running = false;
                            ev.exit_code = exit_code;
                            ev.error = err.message.clone();
                        });
                        auto_remove = entry.rec.host_config.auto_remove;
                    }
                    auto_remove
                };
                if auto_remove {
                    self.remove_container(&id);
                }
                Err(err)
            }
        }
    }

    /// Starts the shim and the container; on failure nothing is left running and the
    /// state dir is gone. Returns the init pid and an open `wait` connection.
    async fn launch(
        &self,
        rec: &ContainerRecord,
        pending: Vec<PendingAttach>,
    ) -> Result<(i64, shim::Watch), (ApiError, i64)> {
        let t = berth_net::timing::Step::new("start.spec");
        self.acquire_volumes(rec).map_err(|e| (e, 128))?;
        let mut spec = self.build_spec(rec).map_err(|e| (e, 128))?;
        drop(t);
        let t = berth_net::timing::Step::new("start.net_attach");
        let attached = self
            .net
            .attach(rec, |name| self.get(name))
            .map_err(|e| (e, 128))?;
        drop(t);
        crate::crash_point::crash_point("start-after-attach");
        self.net.emit_endpoint_events(rec, "connect");
        self.emit_volume_events(rec, "mount");
        spec.network = attached.network;
        // The generated /etc files give way to the user's mounts on them or on a parent
        // (a volume on /etc must not get mount points written into it).
        let covered = |dest: &str| {
            spec.mounts.iter().any(|m| {
                let d = m.destination.trim_end_matches('/');
                dest == d || dest.starts_with(&format!("{d}/"))
            })
        };
        let own: Vec<_> = attached
            .mounts
            .into_iter()
            .filter(|m| !covered(&m.destination))
            .collect();
        if let Err(e) = self.prepare_remapped_files(spec.userns.as_ref(), &own) {
            self.net.detach(&rec.id);
            return Err((e, 128));
        }
        spec.mounts.extend(own);
        spec.process.env.extend(attached.env);
        for kv in self.take_start_env(&rec.id) {
            let key = kv.split('=').next().unwrap_or_default().to_string();
            spec.process
                .env
                .retain(|e| e.split('=').next() != Some(key.as_str()));
            spec.process.env.push(kv);
        }
        let result = self.launch_with(rec, pending, spec).await;
        if result.is_err() {
            self.net.detach(&rec.id);
        }
        result
    }

    async fn launch_with(
        &self,
        rec: &ContainerRecord,
        pending: Vec<PendingAttach>,
        spec: ContainerSpec,
    ) -> Result<(i64, shim::Watch), (ApiError, i64)> {
        let state = self.state_dir(&rec.id);
        let t = berth_net::timing::Step::new("start.write_spec");
        remove_dir_all_quiet(&state);
        let write = std::fs::create_dir_all(&state).and_then(|_| {
            let json = serde_json::to_vec_pretty(&spec).map_err(std::io::Error::other)?;
            std::fs::write(state.join("spec.json"), json)?;
            if let Some(ns) = &spec.userns {
                // the remapped root reaches its rootfs mount point through here
                crate::userns_remap::share_dir(ns, &state)?;
            }
            Ok(())
        });
        if let Err(e) = write {
            remove_dir_all_quiet(&state);
            return Err((
                ApiError::internal(format!("writing the container spec: {e}")),
                128,
            ));
        }
        drop(t);
        let t = berth_net::timing::Step::new("start.shim_spawn");
        let pid = match shim::spawn(&state).await {
            Ok(pid) => pid,
            Err(msg) => {
                // A shim that died (or hung) half-way may leave its cgroups and init.
                super::reconcile::kill_and_clean(state.clone()).await;
                let code = start_exit_code(&msg);
                return Err((
                    ApiError::new(start_error_kind(code), start_error_message(&msg)),
                    code,
                ));
            }
        };
        drop(t);
        crate::crash_point::crash_point("start-after-spawn");
        crate::crash_point::stall_point("start-after-spawn").await;
        let fail = |state: PathBuf, msg: String, code: i64| async move {
            let _ = shim::signal(&state, libc::SIGKILL).await;
            shim::wait_shim_gone(&state, Duration::from_secs(5)).await;
            clean_state_dir(state).await;
            Err((ApiError::new(start_error_kind(code), msg), code))
        };
        let wait_conn = match shim::open_watch(&state).await {
            Ok(c) => c,
            Err(e) => return fail(state, format!("connecting to the shim: {e}"), 128).await,
        };
        for p in pending {
            let req = Request::Attach {
                stdin: p.opts.stdin,
                stdout: p.opts.stdout,
                stderr: p.opts.stderr,
            };
            match shim::connect(&state, &req).await {
                Ok(conn) => {
                    tokio::spawn(attach::relay(p.upgrade, conn, p.opts, p.replay));
                }
                Err(e) => tracing::warn!(id = rec.id, error = %e, "connecting a pending attach"),
            }
        }
        let t = berth_net::timing::Step::new("start.shim_start");
        let started = shim::start(&state).await;
        drop(t);
        match started {
            Ok(reply) if reply.error.is_empty() => {
                crate::crash_point::crash_point("start-after-go");
                Ok((pid, wait_conn))
            }
            Ok(reply) => {
                let code = if reply.exit_code > 0 {
                    reply.exit_code
                } else {
                    start_exit_code(&reply.error)
                };
                drop(wait_conn);
                fail(state, start_error_message(&reply.error), code).await
            }
            Err(e) => fail(state, format!("starting the container: {e}"), 128).await,
        }
    }
}
