//! Networks as the daemon sees them: one default bridge per daemon (`--bridge-name`,
//! `--bip`), user networks (`network create`, a bridge and an embedded DNS server each),
//! and every container's endpoints, set up before it starts and torn down when it stops.
//!
//! - `networks`: the user networks and the predefined `bridge`, `host` and `none`;
//! - `endpoints`: attach, detach, connect, disconnect, restore; the bookkeeping itself
//!   (addresses, namespaces, veths, proxies, undo) is [`berth_net::endpoint`];
//! - `views`: what `inspect` and `ps` show.
//!
//! ## Persistence (`meta.db`, see [`crate::schema`])
//! Tables `networks` (network ID → [`UserNetwork`]), `net_endpoints` (container ID →
//! [`EndpointRecord`]), `net_extra_endpoints` (`<container ID>/<network ID>` →
//! [`ExtraEndpoint`]) and `net_primary_configs` (container ID → [`PrimaryConfig`]: create's
//! `EndpointsConfig` aliases and `--ip` on the network it was created on, or that it was
//! disconnected from it; compose disconnects and reconnects every container before start). An address is allocated at the first start and kept until `rm`
//! (IPAM: the used addresses are those of the records); `ports` holds the host ports
//! while the container runs. At daemon start the nftables table and the port proxies of
//! running containers are rebuilt from them.
//!
//! Per container: `<exec-root>/netns/<id>` (the bind-mounted namespace, joined by the
//! runtime), and `hosts`, `hostname`, `resolv.conf` under `<root>/containers/<id>/`,
//! bind-mounted over `/etc/…`.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

pub mod bridge_options;
mod endpoint_settings;
mod endpoints;
mod events;
mod networks;
mod port_rules;
mod views;

pub use berth_net::endpoint::{EndpointRecord, ExtraEndpoint, PrimaryConfig};
use berth_net::endpoint::{EndpointTable, Target};
use berth_net::ipam::{self, AddressPool, Subnet};
use berth_net::{link, nft, NetError};
use berth_runtime::{MountSpec, NetworkMode};
use serde::{Deserialize, Serialize};

use crate::containers::record::ContainerRecord;
use crate::error::{ApiError, ApiResult};
use crate::schema::{
    NETWORKS, NETWORKS_PART, NET_ENDPOINTS, NET_EXTRA_ENDPOINTS, NET_PRIMARY_CONFIGS,
};
use bridge_options::BridgeOptions;

/// A network made with `network create` (driver bridge): its own Linux bridge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserNetwork {
    pub id: String,
    pub name: String,
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    pub created: String,
    /// `<daemon bridge>-<id prefix>` (at most 15 characters), or the
    /// `com.docker.network.bridge.name` option.
    pub bridge: String,
    /// `--ip-range` ("" = the whole subnet).
    #[serde(default)]
    pub ip_range: String,
    /// `--aux-address name=ip`: never handed out.
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, String>,
    /// Driver options (`-o`) as given; [`bridge_options`] reads them.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// `--ipam-opt`, kept for `inspect` (`null` there when the client sent none).
    #[serde(default)]
    pub ipam_options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub attachable: bool,
    /// `--ipv6` (`EnableIPv6`): endpoints get an address of `subnet6` too.
    #[serde(default)]
    pub enable_ipv6: bool,
    /// The IPv6 pool as given ("" = none); kept without `--ipv6` too, as Docker does.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet6: String,
    /// The IPv6 gateway as given ("": the subnet's first address, not shown in inspect).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway6: String,
    /// The IPv6 `--ip-range` as given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip_range6: String,
}

impl UserNetwork {
    /// The IPv6 side of the network when it has `EnableIPv6` and an IPv6 pool.
    fn space6(&self) -> Option<berth_net::ipam6::Space6> {
        if !self.enable_ipv6 {
            return None;
        }
        let subnet: berth_net::ipam6::Subnet6 = self.subnet6.parse().ok()?;
        Some(berth_net::ipam6::Space6 {
            subnet,
            gateway: self.gateway6.parse().unwrap_or_else(|_| subnet.gateway()),
            range: self.ip_range6.parse().ok(),
        })
    }
}

/// A network label: its containers get no embedded DNS server, their `resolv.conf`
/// lists their own DNS settings (`--dns*`), as on the default bridge. The CRI pod
/// network has it: a pod's DNS config is the kubelet's (the cluster DNS).
pub const OWN_DNS_LABEL: &str = "io.berth.cri.network";

/// What `network create` asks for, checked by [`NetworkService::create_network`].
#[derive(Debug, Clone, Default)]
pub struct NetworkSpec {
    pub name: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub aux_addresses: BTreeMap<String, String>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub ipam_options: Option<BTreeMap<String, String>>,
    pub enable_ipv6: bool,
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
    pub ip_range6: Option<String>,
    /// `CheckDuplicate`: a name already taken is refused (else a second network of that
    /// name is made, with a warning, as dockerd 20.10 does).
    pub check_duplicate: bool,
}

/// What the runtime spec needs from the network set-up.
pub struct Attached {
    pub network: NetworkMode,
    pub mounts: Vec<MountSpec>,
    /// Environment added to the container's (`--link` variables).
    pub env: Vec<String>,
}

pub struct NetworkService {
    /// The daemon's event bus.
    pub events: Arc<crate::events::EventBus>,
    /// False with `--bridge-name none`.
    pub enabled: bool,
    pub bridge: String,
    pub subnet: Subnet,
    pub table: String,
    /// A stable ID for the default `bridge` network.
    pub network_id: String,
    /// `Created` of the predefined networks: when this daemon started.
    started: String,
    mtu: u32,
    /// `--default-address-pool`s (empty: Docker's defaults).
    pools: Vec<AddressPool>,
    db: Arc<berth_image::MetaDb>,
    root: PathBuf,
    state: Arc<Mutex<State>>,
    /// The daemon's `--dns*` and `--host-gateway-ip` (see `containers::daemon_defaults`).
    defaults: crate::containers::daemon_defaults::ContainerDefaults,
    /// A container's `--dns` servers by its ID (the container service registers it), for
    /// the embedded DNS servers to forward its queries to.
    container_dns: Arc<OnceLock<ContainerDns>>,
    /// Deletes of published ports' nftables elements not yet applied.
    port_rules: port_rules::PortRules,
}

/// See [`NetworkService::container_dns`].
pub type ContainerDns = Box<dyn Fn(&str) -> Vec<std::net::IpAddr> + Send + Sync>;

struct State {
    networks: HashMap<String, UserNetwork>,
    /// Every container's endpoints, primary and extra (`network connect`), and proxies.
    endpoints: EndpointTable,
    /// The embedded resolver (`127.0.0.11`) of each running container on a user
    /// network, by container ID.
    resolvers: HashMap<String, berth_net::dns::DnsServer>,
}

fn net_err(e: NetError) -> ApiError {
    ApiError::new(e.kind(), e.to_string())
}

/// A failed write of the network tables (a full disk reads as Go's
/// `write <root>/meta.db: no space left on device`).
fn db_err(e: redb::Error) -> ApiError {
    match e {
        redb::Error::Io(_) => ApiError::from(e),
        other => ApiError::internal(format!("network metadata: {other}")),
    }
}

fn uses_bridge(rec: &ContainerRecord) -> bool {
    matches!(
        rec.host_config.network_mode.as_str(),
        "" | "default" | "bridge"
    )
}

impl NetworkService {
    /// Creates (or adopts) the bridge and loads the endpoints. `bip` overrides the subnet.
    /// `bridge == "none"` (Docker's `--bridge=none`) disables the default bridge: such
    /// containers get only loopback, and nothing is created on the host.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        events: Arc<crate::events::EventBus>,
        db: Arc<berth_image::MetaDb>,
        root: &Path,
        exec_root: &Path,
        bridge: &str,
        bip: Option<&str>,
        pools: &[AddressPool],
        defaults: crate::containers::daemon_defaults::ContainerDefaults,
    ) -> anyhow::Result<Arc<Self>> {
        let enabled = bridge != "none";
        if bridge.is_empty() || bridge.len() > 15 {
            anyhow::bail!("invalid bridge name {bridge:?}: 1 to 15 characters");
        }
        let subnet = match bip {
            Some(b) if !b.is_empty() => b.parse::<Subnet>()?,
            _ if !enabled => Subnet::new(Ipv4Addr::new(172, 17, 0, 0), 16)?,
            _ => match link::bridge_subnet(bridge) {
                Some(s) => s,
                None => ipam::pick_subnet(pools, &link::routed_subnets(bridge))?,
            },
        };
        let mtu = link::default_mtu();
        if enabled {
            link::ensure_bridge(bridge, &subnet, mtu)?;
        }
        if enabled
            && std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .is_ok_and(|v| v.trim() == "0")
        {
            tracing::warn!(
                "IPv4 forwarding is disabled (net.ipv4.ip_forward=0): containers cannot reach other \
                 networks and published ports answer only through the userland proxy"
            );
        }
        if enabled && nft::forward_policy_drop() {
            tracing::warn!(
                "an `ip filter FORWARD` chain with policy drop exists (a dockerd with iptables?): \
                 traffic between containers on {bridge} and other networks may be dropped"
            );
        }
        NETWORKS_PART.open(&db)?;
        let endpoints: HashMap<String, EndpointRecord> =
            NET_ENDPOINTS.load(&db)?.into_iter().collect();
        let mut extras: HashMap<String, Vec<ExtraEndpoint>> = HashMap::new();
        for (key, x) in NET_EXTRA_ENDPOINTS.load(&db)? {
            let cid = key.split_once('/').map_or(key.as_str(), |(cid, _)| cid);
            extras.entry(cid.to_string()).or_default().push(x);
        }
        let networks: HashMap<String, UserNetwork> = NETWORKS.load(&db)?.into_iter().collect();
        let configs = NET_PRIMARY_CONFIGS.load(&db)?;
        if enabled {
            for n in networks.values() {
                let sub: Subnet = n.subnet.parse()?;
                link::ensure_bridge(&n.bridge, &sub, mtu)?;
                if let Some(s) = n.space6() {
                    link::add_bridge_ipv6(&n.bridge, s.gateway, s.subnet.prefix)?;
                }
            }
        }
        let network_id = {
            let path = root.join("bridge-network-id");
            match std::fs::read_to_string(&path) {
                Ok(s) if s.trim().len() == 64 => s.trim().to_string(),
                _ => {
                    let id: String = (0..4)
                        .map(|_| format!("{:016x}", rand::random::<u64>()))
                        .collect();
                    std::fs::write(&path, &id)?;
                    id
                }
            }
        };
        tracing::info!(bridge, %subnet, "default bridge ready");
        let mut endpoints = EndpointTable::new(exec_root.join("netns"), mtu, endpoints, extras);
        for (id, cfg) in configs {
            endpoints.set_config(&id, cfg);
        }
        Ok(Arc::new(NetworkService {
            events,
            enabled,
            bridge: bridge.to_string(),
            table: nft::table_name(bridge),
            subnet,
            network_id,
            started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            mtu,
            pools: pools.to_vec(),
            db,
            root: root.to_path_buf(),
            state: Arc::new(Mutex::new(State {
                networks,
                endpoints,
                resolvers: HashMap::new(),
            })),
            defaults,
            container_dns: Arc::default(),
            port_rules: Default::default(),
        }))
    }

    /// At the daemon's priority on lifecycle threads: reads wait for this lock too.
    fn lock(&self) -> crate::lifecycle_pool::Boosted<MutexGuard<'_, State>> {
        crate::lifecycle_pool::Boosted::lock(|| {
            self.state.lock().unwrap_or_else(|p| p.into_inner())
        })
    }

    /// Writes (or with `None` deletes) container `id`'s primary endpoint.
    fn persist(&self, id: &str, rec: Option<&EndpointRecord>) -> ApiResult<()> {
        match rec {
            Some(r) => NET_ENDPOINTS.put(&self.db, id, r),
            None => NET_ENDPOINTS.delete(&self.db, id),
        }
        .map_err(db_err)
    }

    /// Writes (or with `None` deletes) container `id`'s extra endpoint on `network`.
    fn persist_extra(&self, id: &str, network: &str, x: Option<&ExtraEndpoint>) -> ApiResult<()> {
        let key = format!("{id}/{network}");
        match x {
            Some(x) => NET_EXTRA_ENDPOINTS.put(&self.db, &key, x),
            None => NET_EXTRA_ENDPOINTS.delete(&self.db, &key),
        }
        .map_err(db_err)
    }

    /// Records container `id`'s settings on its primary network.
    fn persist_config(&self, st: &mut State, id: &str, cfg: PrimaryConfig) -> ApiResult<()> {
        if cfg == PrimaryConfig::default() {
            NET_PRIMARY_CONFIGS.delete(&self.db, id)
        } else {
            NET_PRIMARY_CONFIGS.put(&self.db, id, &cfg)
        }
        .map_err(db_err)?;
        st.endpoints.set_config(id, cfg);
        Ok(())
    }

    fn persist_network(&self, n: &UserNetwork, delete: bool) -> ApiResult<()> {
        if delete {
            NETWORKS.delete(&self.db, &n.id)
        } else {
            NETWORKS.put(&self.db, &n.id, n)
        }
        .map_err(db_err)
    }

    fn default_target(&self) -> Target {
        Target {
            id: String::new(),
            name: "bridge".into(),
            bridge: self.bridge.clone(),
            subnet: self.subnet,
            gateway: self.subnet.gateway(),
            internal: false,
            range: None,
            aux_addresses: Vec::new(),
            mtu: None,
            isolated_ports: false,
            v6: None,
        }
    }

    fn user_target(n: &UserNetwork) -> ApiResult<Target> {
        let opts = BridgeOptions::parse(&n.options)?;
        Ok(Target {
            id: n.id.clone(),
            name: n.name.clone(),
            bridge: n.bridge.clone(),
            subnet: n.subnet.parse().map_err(net_err)?,
            gateway: n
                .gateway
                .parse()
                .map_err(|_| ApiError::internal(format!("bad gateway {}", n.gateway)))?,
            internal: n.internal,
            range: (!n.ip_range.is_empty())
                .then(|| n.ip_range.parse())
                .transpose()
                .map_err(net_err)?,
            aux_addresses: n
                .aux_addresses
                .values()
                .filter_map(|a| a.parse().ok())
                .collect(),
            mtu: opts.mtu,
            isolated_ports: !opts.icc,
            v6: n.space6(),
        })
    }

    /// Docker's refusal of a name that several networks have (not a full ID); `inspect`
    /// words it its own way.
    fn check_unambiguous(st: &State, name_or_id: &str, inspect: bool) -> ApiResult<()> {
        if st.networks.contains_key(name_or_id) {
            return Ok(());
        }
        let n = st
            .networks
            .values()
            .filter(|n| n.name == name_or_id)
            .count();
        if n > 1 {
            return Err(ApiError::invalid(if inspect {
                format!("{n} matches found based on name: network {name_or_id} is ambiguous")
            } else {
                format!("network {name_or_id} is ambiguous ({n} matches found based on name)")
            }));
        }
        Ok(())
    }

    /// A user network by full ID, name, or unique ID prefix.
    fn find_network<'a>(st: &'a State, name_or_id: &str) -> Option<&'a UserNetwork> {
        if let Some(n) = st.networks.get(name_or_id) {
            return Some(n);
        }
        // several of one name (made with CheckDuplicate=false): the oldest; the API's
        // look-ups refuse the ambiguity first (`check_unambiguous`)
        if let Some(n) = st
            .networks
            .values()
            .filter(|n| n.name == name_or_id)
            .min_by(|a, b| a.created.cmp(&b.created))
        {
            return Some(n);
        }
        let mut by_prefix = st
            .networks
            .values()
            .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(n), None) => Some(n),
            _ => None,
        }
    }
}
