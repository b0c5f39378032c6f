//! The daemon's shared state: configuration, the metadata database and the services.

use std::path::PathBuf;
use std::sync::Arc;

use berth_image::ImageStore;

use anyhow::Context;

use crate::containers::ContainerService;
use crate::network::NetworkService;
use crate::volumes::VolumeService;

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
    /// `--no-new-privileges`, `--seccomp-profile`.
    pub security: berth_runtime::security::SecurityDefaults,
    /// `--log-driver`, `--log-opt`: the containers' default log driver and its options.
    pub log: crate::containers::log_config::LogDefaults,
    /// `--dns*`, `--host-gateway-ip`, `--init`, `--default-ulimit`.
    pub defaults: crate::containers::daemon_defaults::ContainerDefaults,
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
            security: Default::default(),
            log: Default::default(),
            defaults: Default::default(),
        }
    }
}

/// Cheap to clone: every handler gets one. The services are peers: routes reach each
/// directly; containers hold the networks and volumes they attach and mount.
#[derive(Clone)]
pub struct Daemon {
    pub config: Arc<DaemonConfig>,
    /// Stable per `--root`, shown as `ID` in `info`.
    pub daemon_id: String,
    pub db: Arc<berth_image::MetaDb>,
    /// Every service's events, for `GET /events`.
    pub events: Arc<crate::events::EventBus>,
    /// Container stats samples (`GET /containers/{id}/stats`).
    pub stats: Arc<crate::stats::StatsService>,
    pub images: Arc<ImageStore>,
    pub containers: Arc<ContainerService>,
    pub networks: Arc<NetworkService>,
    pub volumes: Arc<VolumeService>,
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
    /// Opens `meta.db` under `--root` and the services on it (networks first: opening
    /// them sets up the default bridge). Call `containers.recover()` next, in the runtime.
    pub fn open(
        config: Arc<DaemonConfig>,
        daemon_id: String,
        registry: berth_registry::RegistryClient,
    ) -> anyhow::Result<Daemon> {
        let db_path = config.root.join("meta.db");
        let db = Arc::new(
            berth_image::MetaDb::open(&db_path)
                .with_context(|| format!("opening {}", db_path.display()))?,
        );
        let events = crate::events::EventBus::open(db.clone())?;
        let images = Arc::new(ImageStore::open(&config.root, db.clone())?);
        let networks = NetworkService::open(
            events.clone(),
            db.clone(),
            &config.root,
            &config.exec_root,
            &config.bridge_name,
            Some(config.bip.as_str()),
            &config.default_address_pools,
            config.defaults.clone(),
        )?;
        let volumes = Arc::new(VolumeService::open(
            &config.root,
            db.clone(),
            events.clone(),
        )?);
        let containers = ContainerService::open(
            config.clone(),
            db.clone(),
            images.clone(),
            networks.clone(),
            volumes.clone(),
            events.clone(),
        )?;
        let builds = Arc::new(crate::builds::BuildService::open(&config.root)?);
        Ok(Daemon {
            builds,
            config,
            daemon_id,
            db,
            events,
            stats: Arc::default(),
            images,
            containers,
            networks,
            volumes,
            registry,
        })
    }

    /// A daemon on a fresh root under `dir` (no bridge: see [`DaemonConfig::for_tests`]).
    #[cfg(test)]
    pub fn for_tests(dir: &std::path::Path) -> Daemon {
        let config = Arc::new(DaemonConfig::for_tests(dir));
        std::fs::create_dir_all(&config.root).expect("creating the test root");
        let registry =
            berth_registry::RegistryClient::new(Default::default()).expect("a registry client");
        Daemon::open(config, "test".into(), registry).expect("opening a test daemon")
    }

    pub fn container_counts(&self) -> ContainerCounts {
        self.containers.counts()
    }

    pub fn image_count(&self) -> i64 {
        self.images.count() as i64
    }
}
