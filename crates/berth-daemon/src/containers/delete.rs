//! `DELETE /containers/{id}` and `POST /containers/prune`.

use std::time::Duration;

use super::record::Status;
use super::{filters, remove_dir_all_quiet, ContainerService};
use crate::error::{ApiError, ApiResult};
use crate::fsutil::dir_size;
use crate::prune_filter::PruneFilter;

impl ContainerService {
    /// `DELETE /containers/{id}`.
    pub async fn remove(&self, name_or_id: &str, force: bool) -> ApiResult<()> {
        let id = self.resolve(name_or_id)?;
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
        // An AutoRemove container may already be gone by now.
        if self.lock().contains_key(&id) {
            self.remove_container(&id);
        }
        Ok(())
    }

    /// Drops a stopped container: record, name, directories, execs; wakes `removed` waiters.
    pub(super) fn remove_container(&self, id: &str) {
        let entry = self.lock().remove(id);
        let Some(entry) = entry else { return };
        if let Err(e) = self.store.delete(id) {
            tracing::error!(id, error = %e, "deleting container record");
        }
        remove_dir_all_quiet(&self.state_dir(id));
        self.net.release(id);
        remove_dir_all_quiet(&self.container_dir(id));
        self.execs.container_removed(id);
        if entry.rec.host_config.auto_remove {
            self.drop_anonymous_volumes(&entry.rec.mount_points);
        }
        self.emit_container_event(&entry.rec, "destroy", &[]);
        entry.events.send_modify(|ev| {
            ev.removed = true;
            ev.running = false;
        });
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
            reclaimed += dir_size(&self.container_dir(id).join("upper")).max(0) as u64;
            self.remove_container(id);
        }
        Ok((victims, reclaimed))
    }
}
