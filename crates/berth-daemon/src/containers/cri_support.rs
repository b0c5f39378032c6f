//! The narrow methods the CRI service needs beyond the Docker API's: every record at
//! once, and a container's log in the CRI format at the kubelet's path.

use std::path::PathBuf;

use super::record::ContainerRecord;
use super::{log_config, shim, ContainerService};
use crate::error::{ApiError, ApiResult};

impl ContainerService {
    /// Copies of the records `pred` accepts (the CRI server's pods and containers).
    pub fn records_where(&self, pred: impl Fn(&ContainerRecord) -> bool) -> Vec<ContainerRecord> {
        self.lock()
            .values()
            .filter(|e| pred(&e.rec))
            .map(|e| e.rec.clone())
            .collect()
    }

    /// Makes the not yet started container `id` log in the CRI format to `path` (the
    /// shim creates it at start). Only before the first start: the shim of a running
    /// container keeps the driver it started with.
    pub fn set_cri_log(&self, id: &str, path: PathBuf) -> ApiResult<()> {
        let mut entries = self.lock();
        let entry = entries
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found(format!("No such container: {id}")))?;
        if entry.rec.state.started_at.is_some() || entry.starting {
            return Err(ApiError::conflict(format!(
                "container {id} has already started"
            )));
        }
        let mut rec = entry.rec.clone();
        rec.host_config.log_config = berth_api::LogConfig {
            kind: log_config::CRI_DRIVER.into(),
            config: Default::default(),
        };
        rec.log_path = path;
        self.persist(&rec)?;
        entry.rec = rec;
        Ok(())
    }

    /// CRI `ReopenContainerLog`: the running container's shim closes its log file and
    /// opens the one now at its path.
    pub async fn reopen_log(&self, id: &str) -> ApiResult<()> {
        let rec = self.get(id)?;
        if !rec.state.status.is_running() {
            return Err(ApiError::conflict(format!(
                "container {} is not running",
                rec.id
            )));
        }
        shim::reopen_log(&self.state_dir(&rec.id))
            .await
            .map_err(|e| ApiError::internal(format!("failed to reopen container log: {e}")))
    }
}
