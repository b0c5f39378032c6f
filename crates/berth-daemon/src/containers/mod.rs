//! Containers: records, lifecycle, shims, logs, attach and exec.

use crate::state::ContainerCounts;

pub struct ContainerService {}

impl ContainerService {
    pub fn counts(&self) -> ContainerCounts {
        ContainerCounts { total: 0, running: 0, paused: 0 }
    }
}
