//! The narrow methods the CRI service needs beyond the Docker API's: every record at
//! once, and the reopening of a container's CRI log.

use super::record::ContainerRecord;
use super::{shim, ContainerService};
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
