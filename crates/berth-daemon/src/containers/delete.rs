//! `DELETE /containers/{id}` and `POST /containers/prune`.

use std::time::Duration;

use super::record::Status;
use super::{filters, reconcile, remove_dir_all_quiet, ContainerService};
use crate::error::{ApiError, ApiResult};
use crate::fsutil::dir_size;
use crate::prune_filter::PruneFilter;

impl ContainerService {
    /// `DELETE /containers/{id}`.
    pub async fn remove(&self, name_or_id: &str, force: bool) -> ApiResult<()> {
        let id = self.resolve(name_or_id)?;
        self.take_start_env(&id);
        // A start in progress decides whether there is a process to stop: let it finish.
        for _ in 0..600 {
            let starting = self.lock().get(&id).is_some_and(|e| e.starting);
            if !starting {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let rec = self.record(&id)?;
        if rec.state.status.is_running() {
            if !force {
                // dockerd 20.10's words (docker-py checks them).
                let procedure = if rec.state.status == Status::Paused {
                    "Unpause and then stop the container before attempting removal or force remove"
                } else {
                    "Stop the container before attempting removal or force remove"
                };
                return Err(ApiError::conflict(format!(
                    "You cannot remove a {} container {}. {procedure}",
                    rec.state.status.as_str(),
                    rec.id
                )));
            }
            let paused = rec.state.status == Status::Paused;
            if !self.kill_and_wait(&id, paused).await {
                return Err(ApiError::internal(format!(
                    "cannot remove container \"{}\": could not kill: did not receive an exit event",
                    rec.name
                )));
            }
        }
        // A shim of a container that is not running (a start cut short): nothing of it
        // may outlive the record.
        let state = self.state_dir(&id);
        if self
            .lock()
            .get(&id)
            .is_some_and(|e| !e.rec.state.status.is_running())
            && state.exists()
        {
            reconcile::kill_and_clean(state).await;
            self.net.detach(&id);
        }
        // An AutoRemove container may already be gone by now. A meta.db commit and a
        // directory tree to remove: off the runtime's threads.
        crate::error::in_place(|| self.try_remove_container(&id))
    }

    /// Drops a stopped container (see [`Self::try_remove_container`]); a failure is logged.
    pub(super) fn remove_container(&self, id: &str) {
        if let Err(e) = crate::error::in_place(|| self.try_remove_container(id)) {
            tracing::error!(id, error = %e, "removing container");
        }
    }

    /// Drops a stopped container: record, name, directories, execs; wakes `removed`
    /// waiters. The record is deleted first, under the lock: when that fails (a full
    /// disk) the container stays as it was, so a success is never undone by a restart.
    pub(super) fn try_remove_container(&self, id: &str) -> ApiResult<()> {
        // Staged under the lock (which orders it), made durable after it: lists and
        // inspects never wait for this commit's fsync.
        let (entry, staged) = {
            let mut entries = self.lock();
            let Some(entry) = entries.remove(id) else {
                // An AutoRemove container may already be gone.
                return Ok(());
            };
            super::shrink_after_burst(&mut entries);
            (entry, self.store.stage_delete(id))
        };
        let t = berth_net::timing::Step::new("rm.record_durable");
        let waited = self.store.wait(staged);
        drop(t);
        if let Err(e) = waited {
            let retried = if berth_image::meta_db::is_storage_failure(&e) {
                // A full disk: free the container's files first (its writable layer and
                // logs), so removing containers is the way out; then try again.
                remove_dir_all_quiet(&self.container_dir(id));
                self.store.delete(id)
            } else {
                Err(e)
            };
            if let Err(e) = retried {
                // Still there after a restart: so it stays here too.
                self.lock().entry(id.to_string()).or_insert(entry);
                return Err(e.into());
            }
        }
        crate::crash_point::crash_point("rm-after-record");
        let t = berth_net::timing::Step::new("rm.net_release");
        remove_dir_all_quiet(&self.state_dir(id));
        self.net.release(id);
        drop(t);
        let t = berth_net::timing::Step::new("rm.container_dir");
        remove_dir_all_quiet(&self.container_dir(id));
        drop(t);
        self.execs.container_removed(id);
        if entry.rec.host_config.auto_remove {
            self.drop_anonymous_volumes(&entry.rec.mount_points);
        }
        self.emit_container_event(&entry.rec, "destroy", &[]);
        entry.events.send_modify(|ev| {
            ev.removed = true;
            ev.running = false;
        });
        Ok(())
    }

    /// `POST /containers/prune`: removes stopped containers; returns IDs and bytes.
    pub fn prune(&self, f: &filters::Filters) -> ApiResult<(Vec<String>, u64)> {
        let filter = PruneFilter::parse(f)?;
        let victims: Vec<String> = self
            .lock()
            .values()
            .filter(|e| {
                matches!(
                    e.rec.state.status,
                    Status::Exited | Status::Created | Status::Dead
                ) && !e.starting
            })
            .filter(|e| filter.selects(e.rec.created, &e.rec.config.labels))
            .map(|e| e.rec.id.clone())
            .collect();
        let mut reclaimed = 0u64;
        for id in &victims {
            let size = dir_size(&self.container_dir(id).join("upper")).max(0) as u64;
            self.try_remove_container(id)?;
            reclaimed += size;
        }
        Ok((victims, reclaimed))
    }
}
