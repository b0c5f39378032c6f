//! Container networking as the daemon sees it: one default bridge per daemon
//! (`--bridge-name`, `--bip`), an endpoint per container (address, MAC, published ports),
//! set up before the container starts and torn down when it stops.
//!
//! ## Persistence (`meta.db`)
//! Table `net_endpoints`: container ID → JSON [`EndpointRecord`]. The address is allocated
//! at the first start and kept until `rm` (IPAM: the used addresses are those of the
//! records); `ports` holds the host ports while the container runs. At daemon start the
//! nftables table and the port proxies of running containers are rebuilt from it.
//!
//! Per container: `<exec-root>/netns/<id>` (the bind-mounted namespace, joined by the
//! runtime), host veth `vb<first 11 hex of id>`, and `hosts`, `hostname`, `resolv.conf`
//! under `<root>/containers/<id>/`, bind-mounted over `/etc/…`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

mod endpoints;
mod networks;
mod views;

use berth_net::ipam::{self, AddressPool, Subnet};
use berth_net::ports::PortMapping;
use berth_net::proxy::Proxy;
use berth_net::{link, nft, NetError};
use berth_runtime::{MountSpec, NetworkMode};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::containers::record::ContainerRecord;
use crate::error::{ApiError, ApiResult};

/// `net_endpoints`: container ID → [`EndpointRecord`] as JSON.
pub const NET_ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("net_endpoints");

/// A container's place on the default bridge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub ip: Ipv4Addr,
    pub mac: String,
    pub endpoint_id: String,
    /// Published ports while the container runs (empty when stopped).
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// The user network's ID; empty for the default bridge.
    #[serde(default)]
    pub network: String,
    /// The container's name (no `/`) at its last start, for the embedded DNS.
    #[serde(default)]
    pub name: String,
}

/// An extra network a container was connected to (`network connect`), key
/// `<container ID>/<network ID>` in `net_endpoints`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraEndpoint {
    pub network: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    pub endpoint_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `eth1`, `eth2`, … inside the container.
    pub ifname: String,
}

/// `networks`: network ID → JSON [`UserNetwork`].
pub const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");

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
    /// `<daemon bridge>-<id prefix>`, at most 15 characters.
    pub bridge: String,
}

/// Where an endpoint lives: the default bridge or a user network.
#[derive(Debug, Clone)]
struct Target {
    id: String,
    name: String,
    bridge: String,
    subnet: Subnet,
    gateway: Ipv4Addr,
    internal: bool,
}

/// What the runtime spec needs from the network set-up.
pub struct Attached {
    pub network: NetworkMode,
    pub mounts: Vec<MountSpec>,
    /// Environment added to the container's (`--link` variables).
    pub env: Vec<String>,
}

pub struct NetworkService {
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
    db: Arc<redb::Database>,
    root: PathBuf,
    exec_root: PathBuf,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    endpoints: HashMap<String, EndpointRecord>,
    networks: HashMap<String, UserNetwork>,
    /// Extra networks per container (`network connect`).
    extras: HashMap<String, Vec<ExtraEndpoint>>,
    /// The embedded DNS server of each user network, by network ID.
    dns: HashMap<String, berth_net::dns::DnsServer>,
    proxies: HashMap<String, Vec<Proxy>>,
}

fn net_err(e: NetError) -> ApiError {
    ApiError::new(e.kind(), e.to_string())
}

fn db_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("network metadata: {e}"))
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
    pub fn open(
        db: Arc<redb::Database>,
        root: &Path,
        exec_root: &Path,
        bridge: &str,
        bip: Option<&str>,
        pools: &[AddressPool],
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
        let mut endpoints = HashMap::new();
        let mut networks = HashMap::new();
        let mut extras: HashMap<String, Vec<ExtraEndpoint>> = HashMap::new();
        {
            let tx = db.begin_write()?;
            tx.open_table(NET_ENDPOINTS)?;
            tx.open_table(NETWORKS)?;
            tx.commit()?;
            let tx = db.begin_read()?;
            let t = tx.open_table(NET_ENDPOINTS)?;
            for e in t.iter()? {
                let (k, v) = e?;
                if let Some((cid, _)) = k.value().split_once('/') {
                    match serde_json::from_slice::<ExtraEndpoint>(v.value()) {
                        Ok(x) => extras
                            .entry(cid.to_string())
                            .or_insert_with(Vec::new)
                            .push(x),
                        Err(e) => {
                            tracing::warn!(id = k.value(), error = %e, "skipping unreadable endpoint")
                        }
                    }
                    continue;
                }
                match serde_json::from_slice::<EndpointRecord>(v.value()) {
                    Ok(r) => {
                        endpoints.insert(k.value().to_string(), r);
                    }
                    Err(e) => {
                        tracing::warn!(id = k.value(), error = %e, "skipping unreadable endpoint")
                    }
                }
            }
            let t = tx.open_table(NETWORKS)?;
            for e in t.iter()? {
                let (k, v) = e?;
                match serde_json::from_slice::<UserNetwork>(v.value()) {
                    Ok(n) => {
                        networks.insert(k.value().to_string(), n);
                    }
                    Err(e) => {
                        tracing::warn!(id = k.value(), error = %e, "skipping unreadable network")
                    }
                }
            }
        }
        if enabled {
            for n in networks.values() {
                let sub: Subnet = n.subnet.parse()?;
                link::ensure_bridge(&n.bridge, &sub, mtu)?;
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
        Ok(Arc::new(NetworkService {
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
            exec_root: exec_root.to_path_buf(),
            state: Arc::new(Mutex::new(State {
                endpoints,
                networks,
                extras,
                ..Default::default()
            })),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn netns_path(&self, id: &str) -> PathBuf {
        self.exec_root.join("netns").join(id)
    }

    fn host_veth(id: &str) -> String {
        format!("vb{}", &id[..id.len().min(11)])
    }

    fn persist(&self, id: &str, rec: Option<&EndpointRecord>) -> ApiResult<()> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(NET_ENDPOINTS).map_err(db_err)?;
            match rec {
                Some(r) => {
                    let bytes = serde_json::to_vec(r).map_err(db_err)?;
                    t.insert(id, bytes.as_slice()).map_err(db_err)?;
                }
                None => {
                    t.remove(id).map_err(db_err)?;
                }
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Replaces this daemon's nftables table with the rules for the current endpoints.
    fn sync_rules(&self, st: &State) -> ApiResult<()> {
        if !self.enabled {
            return Ok(());
        }
        let published_on = |net: &str| -> Vec<(Ipv4Addr, PortMapping)> {
            st.endpoints
                .values()
                .filter(|e| e.network == net)
                .flat_map(|e| e.ports.iter().map(move |p| (e.ip, p.clone())))
                .collect()
        };
        let mut rules = vec![nft::BridgeRules {
            bridge: self.bridge.clone(),
            subnet: self.subnet,
            internal: false,
            published: published_on(""),
        }];
        let mut nets: Vec<&UserNetwork> = st.networks.values().collect();
        nets.sort_by(|a, b| a.bridge.cmp(&b.bridge));
        for n in nets {
            let Ok(subnet) = n.subnet.parse() else {
                continue;
            };
            rules.push(nft::BridgeRules {
                bridge: n.bridge.clone(),
                subnet,
                internal: n.internal,
                published: published_on(&n.id),
            });
        }
        nft::apply(&nft::render(&self.table, &rules)).map_err(net_err)
    }

    fn default_target(&self) -> Target {
        Target {
            id: String::new(),
            name: "bridge".into(),
            bridge: self.bridge.clone(),
            subnet: self.subnet,
            gateway: self.subnet.gateway(),
            internal: false,
        }
    }

    fn user_target(n: &UserNetwork) -> ApiResult<Target> {
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
        })
    }

    /// A user network by full ID, name, or unique ID prefix.
    fn find_network<'a>(st: &'a State, name_or_id: &str) -> Option<&'a UserNetwork> {
        if let Some(n) = st.networks.get(name_or_id) {
            return Some(n);
        }
        if let Some(n) = st.networks.values().find(|n| n.name == name_or_id) {
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
