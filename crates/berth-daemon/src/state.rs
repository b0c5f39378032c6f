//! The daemon's shared state: configuration, the metadata database and the services.

use std::path::PathBuf;
use std::sync::Arc;

use berth_image::ImageStore;

use crate::containers::ContainerService;

/// Paths and settings fixed at start-up.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// `--root`: persistent state.
    pub root: PathBuf,
    /// `--exec-root`: runtime state (shim sockets, pids).
    pub exec_root: PathBuf,
    /// `--cgroup-parent` default for containers.
    pub cgroup_parent: String,
    pub debug: bool,
    /// `--bridge-name`: the default bridge.
    pub bridge_name: String,
    /// `--bip`: the default bridge's subnet ("" = pick one).
    pub bip: String,
    /// `--default-address-pool`: subnets for networks created without one.
    pub default_address_pools: Vec<berth_net::ipam::AddressPool>,
}

#[cfg(test)]
impl DaemonConfig {
    /// A configuration under `dir` for unit tests: no bridge (`bridge_name` "none"), so a
    /// test never creates network devices or nftables tables on the host.
    pub fn for_tests(dir: &std::path::Path) -> Self {
        DaemonConfig {
            root: dir.join("root"),
            exec_root: dir.join("run"),
            cgroup_parent: String::new(),
            debug: false,
            bridge_name: "none".into(),
            bip: String::new(),
            default_address_pools: Vec::new(),
        }
    }
}

/// Cheap to clone: every handler gets one.
#[derive(Clone)]
pub struct Daemon {
    pub config: Arc<DaemonConfig>,
    /// Stable per `--root`, shown as `ID` in `info`.
    pub daemon_id: String,
    pub db: Arc<redb::Database>,
    pub images: Arc<ImageStore>,
    pub containers: Arc<ContainerService>,
    /// The registry client shared by every pull, push and login.
    pub registry: berth_registry::RegistryClient,
    /// Dockerfile builds.
    pub builds: Arc<crate::builds::BuildService>,
}

pub struct ContainerCounts {
    pub total: i64,
    pub running: i64,
    pub paused: i64,
}

impl Daemon {
    pub fn container_counts(&self) -> ContainerCounts {
        self.containers.counts()
    }

    pub fn image_count(&self) -> i64 {
        self.images.count() as i64
    }
}
