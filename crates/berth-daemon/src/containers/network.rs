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

use berth_net::ipam::{self, AddressPool, Subnet};
use berth_net::ports::{self, PortMapping};
use berth_net::proxy::Proxy;
use berth_net::{files, link, nft, NetError};
use berth_runtime::{MountSpec, NetworkMode};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::record::ContainerRecord;
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

    /// Whether `mode` names a network this daemon has (for `create`'s early error).
    pub fn check_mode(&self, mode: &str) -> ApiResult<()> {
        match mode {
            "" | "default" | "bridge" | "host" | "none" => Ok(()),
            m if m.starts_with("container:") => Ok(()),
            m => {
                if Self::find_network(&self.lock(), m).is_some() {
                    Ok(())
                } else {
                    Err(ApiError::not_found(format!("network {m} not found")))
                }
            }
        }
    }

    /// `dns`: the embedded DNS server (user networks), the container's only nameserver.
    fn write_files(
        &self,
        rec: &ContainerRecord,
        ip: Option<Ipv4Addr>,
        dns: Option<Ipv4Addr>,
        extra_hosts: &[(String, String)],
    ) -> ApiResult<Vec<MountSpec>> {
        let dir = self.root.join("containers").join(&rec.id);
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let fqdn = &rec.config.hostname;
        let contents = [
            ("hosts", "/etc/hosts", files::hosts(fqdn, ip, extra_hosts)),
            ("hostname", "/etc/hostname", files::hostname(fqdn)),
            (
                "resolv.conf",
                "/etc/resolv.conf",
                match dns {
                    Some(server) => files::resolv_conf_with(&host_resolv, server),
                    None => files::resolv_conf(&host_resolv),
                },
            ),
        ];
        let mut mounts = Vec::new();
        for (file, dest, text) in contents {
            let path = dir.join(file);
            std::fs::write(&path, text)
                .map_err(|e| ApiError::internal(format!("writing {}: {e}", path.display())))?;
            mounts.push(MountSpec {
                destination: dest.into(),
                kind: "bind".into(),
                source: path,
                options: vec!["rbind".into(), "rprivate".into()],
            });
        }
        Ok(mounts)
    }

    /// Sets up the container's network before it starts. On error nothing is left behind.
    /// `lookup` finds another container's record (for `container:NAME`).
    pub fn attach(
        &self,
        rec: &ContainerRecord,
        lookup: impl Fn(&str) -> ApiResult<ContainerRecord>,
    ) -> ApiResult<Attached> {
        let mode = rec.host_config.network_mode.as_str();
        if let Some(other) = mode.strip_prefix("container:") {
            let other = lookup(other)?;
            if !other.state.status.is_running() || other.state.pid <= 0 {
                return Err(ApiError::conflict(format!(
                    "cannot join network namespace of a non running container: {}",
                    other.id
                )));
            }
            let ns = self.netns_path(&other.id);
            let path = if ns.exists() {
                ns
            } else {
                PathBuf::from(format!("/proc/{}/ns/net", other.state.pid))
            };
            // the other container's /etc files, as Docker shares them
            let dir = self.root.join("containers").join(&other.id);
            let mounts = [
                ("hosts", "/etc/hosts"),
                ("hostname", "/etc/hostname"),
                ("resolv.conf", "/etc/resolv.conf"),
            ]
            .into_iter()
            .filter(|(f, _)| dir.join(f).exists())
            .map(|(f, dest)| MountSpec {
                destination: dest.into(),
                kind: "bind".into(),
                source: dir.join(f),
                options: vec!["rbind".into(), "rprivate".into()],
            })
            .collect();
            return Ok(Attached {
                network: NetworkMode::Join(path),
                mounts,
                env: Vec::new(),
            });
        }
        match mode {
            "host" => {
                return Ok(Attached {
                    network: NetworkMode::Host,
                    mounts: Vec::new(),
                    env: Vec::new(),
                })
            }
            "none" => {
                let mounts = self.write_files(rec, None, None, &[])?;
                return Ok(Attached {
                    network: NetworkMode::Loopback,
                    mounts,
                    env: Vec::new(),
                });
            }
            _ if !self.enabled => {
                let mounts = self.write_files(rec, None, None, &[])?;
                return Ok(Attached {
                    network: NetworkMode::Loopback,
                    mounts,
                    env: Vec::new(),
                });
            }
            _ => {}
        }
        // --link: the linked containers must run; their address goes to /etc/hosts
        let mut link_hosts = Vec::new();
        let mut link_env = Vec::new();
        for spec in &rec.host_config.links {
            let (name, alias) = berth_net::links::parse_link(spec);
            let target = lookup(&name)
                .map_err(|_| ApiError::not_found(format!("could not get container for {name}")))?;
            let ip = self
                .lock()
                .endpoints
                .get(&target.id)
                .filter(|_| target.state.status.is_running())
                .map(|e| e.ip);
            let Some(ip) = ip else {
                return Err(ApiError::invalid(format!(
                    "Cannot link to a non running container: {} AS {}/{alias}",
                    target.name, rec.name
                )));
            };
            let tname = target.name.trim_start_matches('/');
            let names = if alias == tname {
                format!("{alias} {}", &target.id[..12])
            } else {
                format!("{alias} {} {tname}", &target.id[..12])
            };
            link_hosts.push((ip.to_string(), names));
            let exposed: Vec<String> = target
                .config
                .exposed_ports
                .iter()
                .flat_map(|e| e.keys().cloned())
                .collect();
            link_env.extend(berth_net::links::link_env(
                &alias,
                &rec.name,
                ip,
                &exposed,
                &target.config.env,
            ));
        }
        let requests = ports::requests(
            &rec.host_config.port_bindings,
            rec.config.exposed_ports.as_ref(),
            rec.host_config.publish_all_ports,
        )
        .map_err(net_err)?;
        let id = &rec.id;
        let mut st = self.lock();
        let target = if uses_bridge(rec) {
            self.default_target()
        } else {
            match Self::find_network(&st, mode) {
                Some(n) => Self::user_target(n)?,
                None => return Err(ApiError::not_found(format!("network {mode} not found"))),
            }
        };
        let mut ep = match st.endpoints.get(id).filter(|e| e.network == target.id) {
            Some(e) => e.clone(),
            None => {
                let used: Vec<Ipv4Addr> = st
                    .endpoints
                    .iter()
                    .filter(|(cid, e)| e.network == target.id && *cid != id)
                    .map(|(_, e)| e.ip)
                    .chain(
                        st.extras
                            .values()
                            .flatten()
                            .filter(|x| x.network == target.id)
                            .map(|x| x.ip),
                    )
                    .chain(std::iter::once(target.gateway))
                    .collect();
                let ip = target.subnet.allocate(&used).map_err(net_err)?;
                let endpoint_id: String = (0..4)
                    .map(|_| format!("{:016x}", rand::random::<u64>()))
                    .collect();
                EndpointRecord {
                    ip,
                    mac: ipam::mac_for(ip),
                    endpoint_id,
                    ports: Vec::new(),
                    network: target.id.clone(),
                    name: String::new(),
                }
            }
        };
        // Host ports first: a taken port fails before anything is created.
        let mut proxies = Vec::new();
        for r in &requests {
            match berth_net::proxy::start(r, ep.ip) {
                Ok(p) => proxies.push(p),
                Err(e) => {
                    return Err(ApiError::internal(format!(
                        "driver failed programming external connectivity on endpoint {} ({}): {e}",
                        rec.name.trim_start_matches('/'),
                        ep.endpoint_id
                    )))
                }
            }
        }
        ep.ports = proxies.iter().map(|p| p.mapping.clone()).collect();
        ep.name = rec.name.trim_start_matches('/').to_string();
        let dns = (!target.id.is_empty()).then_some(target.gateway);
        let mounts = self.write_files(rec, Some(ep.ip), dns, &link_hosts)?;
        let ns = self.netns_path(id);
        self.cleanup_links(id, st.extras.get(id).map(Vec::as_slice).unwrap_or(&[]));
        link::create_netns(&ns).map_err(net_err)?;
        let veth = Self::host_veth(id);
        let endpoint = link::Endpoint {
            bridge: &target.bridge,
            host_veth: &veth,
            ifname: "eth0",
            ip: ep.ip,
            prefix: target.subnet.prefix,
            gateway: (!target.internal).then_some(target.gateway),
            mac: &ep.mac,
            mtu: self.mtu,
        };
        if let Err(e) = link::attach(&ns, &endpoint) {
            link::remove_netns(&ns);
            return Err(net_err(e));
        }
        if let Err(e) = self.persist(id, Some(&ep)) {
            self.cleanup_links(id, st.extras.get(id).map(Vec::as_slice).unwrap_or(&[]));
            return Err(e);
        }
        st.endpoints.insert(id.clone(), ep);
        st.proxies.insert(id.clone(), proxies);
        for x in st.extras.get(id).cloned().unwrap_or_default() {
            if let Err(e) = self.plug_extra(&st, id, &x) {
                tracing::warn!(id, network = x.network, error = %e, "connecting an extra network");
            }
        }
        if let Err(e) = self.sync_rules(&st) {
            drop(st);
            self.detach(id);
            return Err(e);
        }
        Ok(Attached {
            network: NetworkMode::Join(ns),
            mounts,
            env: link_env,
        })
    }

    fn extra_veth(id: &str, ifname: &str) -> String {
        format!(
            "vx{}{}",
            &id[..id.len().min(9)],
            ifname.trim_start_matches("eth")
        )
    }

    /// Plugs the extra endpoint `x` into the running container `id`'s namespace.
    fn plug_extra(&self, st: &State, id: &str, x: &ExtraEndpoint) -> ApiResult<()> {
        let n = st
            .networks
            .get(&x.network)
            .ok_or_else(|| ApiError::not_found(format!("network {} not found", x.network)))?;
        let t = Self::user_target(n)?;
        let veth = Self::extra_veth(id, &x.ifname);
        let _ = link::delete_link(&veth);
        let ep = link::Endpoint {
            bridge: &t.bridge,
            host_veth: &veth,
            ifname: &x.ifname,
            ip: x.ip,
            prefix: t.subnet.prefix,
            gateway: None,
            mac: &x.mac,
            mtu: self.mtu,
        };
        link::attach(&self.netns_path(id), &ep).map_err(net_err)
    }

    /// Deletes the container's host veths and namespace. `extras`: its extra endpoints
    /// (passed in: callers may hold the state lock).
    fn cleanup_links(&self, id: &str, extras: &[ExtraEndpoint]) {
        for x in extras {
            let _ = link::delete_link(&Self::extra_veth(id, &x.ifname));
        }
        let _ = link::delete_link(&Self::host_veth(id));
        let ns = self.netns_path(id);
        if ns.exists() {
            link::remove_netns(&ns);
        }
    }

    /// Tears down what [`Self::attach`] made (the address stays allocated). Idempotent.
    pub fn detach(&self, id: &str) {
        let mut st = self.lock();
        st.proxies.remove(id);
        if let Some(ep) = st.endpoints.get_mut(id) {
            if !ep.ports.is_empty() {
                ep.ports.clear();
                let ep = ep.clone();
                if let Err(e) = self.persist(id, Some(&ep)) {
                    tracing::warn!(id, error = %e, "persisting detached endpoint");
                }
                if let Err(e) = self.sync_rules(&st) {
                    tracing::warn!(id, error = %e, "updating nftables rules");
                }
            }
        }
        let extras = st.extras.get(id).cloned().unwrap_or_default();
        drop(st);
        self.cleanup_links(id, &extras);
    }

    /// Detaches and frees the container's address (`rm`).
    pub fn release(&self, id: &str) {
        self.detach(id);
        let mut st = self.lock();
        if st.endpoints.remove(id).is_some() {
            if let Err(e) = self.persist(id, None) {
                tracing::warn!(id, error = %e, "deleting endpoint");
            }
        }
        for x in st.extras.remove(id).unwrap_or_default() {
            if let Err(e) = self.persist_raw(&format!("{id}/{}", x.network), None) {
                tracing::warn!(id, error = %e, "deleting endpoint");
            }
        }
    }

    fn persist_raw(&self, key: &str, bytes: Option<&[u8]>) -> ApiResult<()> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(NET_ENDPOINTS).map_err(db_err)?;
            match bytes {
                Some(b) => {
                    t.insert(key, b).map_err(db_err)?;
                }
                None => {
                    t.remove(key).map_err(db_err)?;
                }
            }
        }
        tx.commit().map_err(db_err)
    }

    /// `POST /networks/{id}/connect`: adds a user network to a container (now, when it
    /// runs, else at its next start).
    pub fn connect(
        &self,
        rec: &ContainerRecord,
        network: &str,
        aliases: Vec<String>,
    ) -> ApiResult<()> {
        let mut st = self.lock();
        let n = match Self::find_network(&st, network) {
            Some(n) => n.clone(),
            None if matches!(network, "bridge" | "host" | "none") => {
                return Err(ApiError::not_implemented(format!(
                    "connecting to the {network} network is not supported by Berth yet"
                )))
            }
            None => return Err(ApiError::not_found(format!("network {network} not found"))),
        };
        let cname = rec.name.trim_start_matches('/');
        let primary = Self::find_network(&st, &rec.host_config.network_mode).map(|p| p.id.clone());
        let extras = st.extras.get(&rec.id).cloned().unwrap_or_default();
        if primary.as_deref() == Some(n.id.as_str()) || extras.iter().any(|x| x.network == n.id) {
            return Err(ApiError::new(
                berth_api::ErrorKind::Forbidden,
                format!(
                    "endpoint with name {cname} already exists in network {}",
                    n.name
                ),
            ));
        }
        let t = Self::user_target(&n)?;
        let used: Vec<Ipv4Addr> = st
            .endpoints
            .values()
            .filter(|e| e.network == n.id)
            .map(|e| e.ip)
            .chain(
                st.extras
                    .values()
                    .flatten()
                    .filter(|x| x.network == n.id)
                    .map(|x| x.ip),
            )
            .chain(std::iter::once(t.gateway))
            .collect();
        let ip = t.subnet.allocate(&used).map_err(net_err)?;
        let ifname = (1..)
            .map(|i| format!("eth{i}"))
            .find(|f| !extras.iter().any(|x| &x.ifname == f))
            .unwrap_or_default();
        let x = ExtraEndpoint {
            network: n.id.clone(),
            ip,
            mac: ipam::mac_for(ip),
            endpoint_id: (0..4)
                .map(|_| format!("{:016x}", rand::random::<u64>()))
                .collect(),
            aliases,
            ifname,
        };
        if st.proxies.contains_key(&rec.id) {
            self.plug_extra(&st, &rec.id, &x)?;
        }
        let bytes = serde_json::to_vec(&x).map_err(db_err)?;
        if let Err(e) = self.persist_raw(&format!("{}/{}", rec.id, n.id), Some(&bytes)) {
            let _ = link::delete_link(&Self::extra_veth(&rec.id, &x.ifname));
            return Err(e);
        }
        st.extras.entry(rec.id.clone()).or_default().push(x);
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub fn disconnect(&self, rec: &ContainerRecord, network: &str) -> ApiResult<()> {
        let mut st = self.lock();
        let Some(n) = Self::find_network(&st, network).cloned() else {
            return Err(ApiError::not_found(format!("network {network} not found")));
        };
        let list = st.extras.entry(rec.id.clone()).or_default();
        let Some(pos) = list.iter().position(|x| x.network == n.id) else {
            return Err(ApiError::new(
                berth_api::ErrorKind::Forbidden,
                format!(
                    "container {} is not connected to network {}",
                    rec.id, n.name
                ),
            ));
        };
        let x = list.remove(pos);
        let _ = link::delete_link(&Self::extra_veth(&rec.id, &x.ifname));
        self.persist_raw(&format!("{}/{}", rec.id, n.id), None)
    }

    /// At daemon start: re-opens the port proxies of running containers, tears down what
    /// stopped ones left, and rebuilds the nftables table from the metadata.
    pub fn restore(&self, running: &[ContainerRecord], stopped: &[String]) {
        for id in stopped {
            self.detach(id);
        }
        let mut st = self.lock();
        for rec in running {
            let Some(ep) = st.endpoints.get(&rec.id).cloned() else {
                continue;
            };
            let mut proxies = Vec::new();
            for m in &ep.ports {
                let req = ports::PortRequest {
                    proto: m.proto,
                    container_port: m.container_port,
                    host_ip: m.host_ip,
                    host_ports: Some((m.host_port, m.host_port)),
                };
                match berth_net::proxy::start(&req, ep.ip) {
                    Ok(p) => proxies.push(p),
                    Err(e) => {
                        tracing::warn!(id = rec.id, error = %e, "re-opening a published port")
                    }
                }
            }
            st.proxies.insert(rec.id.clone(), proxies);
        }
        if self.enabled {
            let nets: Vec<UserNetwork> = st.networks.values().cloned().collect();
            for n in &nets {
                self.start_dns(&mut st, n);
            }
        }
        if let Err(e) = self.sync_rules(&st) {
            tracing::error!(error = %e, "rebuilding nftables rules");
        }
    }

    /// Docker's `NetworkSettings` for `inspect`.
    pub fn settings(&self, rec: &ContainerRecord) -> serde_json::Value {
        let st = self.lock();
        let ep = st
            .endpoints
            .get(&rec.id)
            .filter(|_| rec.state.status.is_running());
        let target = match ep {
            Some(e) if !e.network.is_empty() => st
                .networks
                .get(&e.network)
                .and_then(|n| Self::user_target(n).ok()),
            Some(_) => Some(self.default_target()),
            None => None,
        };
        let mappings = ep.map(|e| e.ports.as_slice()).unwrap_or(&[]);
        let ports = ports::ports_json(rec.config.exposed_ports.as_ref(), mappings);
        let (ip, gw, mac, prefix, eid) = match (ep, &target) {
            (Some(e), Some(t)) => (
                e.ip.to_string(),
                if t.internal {
                    String::new()
                } else {
                    t.gateway.to_string()
                },
                e.mac.clone(),
                t.subnet.prefix as i64,
                e.endpoint_id.clone(),
            ),
            _ => Default::default(),
        };
        let mode = rec.host_config.network_mode.as_str();
        let (net_name, net_id) = match &target {
            Some(t) if t.id.is_empty() => ("bridge".to_string(), self.network_id.clone()),
            Some(t) => (t.name.clone(), t.id.clone()),
            None if uses_bridge(rec) => ("bridge".to_string(), self.network_id.clone()),
            None => (
                Self::find_network(&st, mode)
                    .map(|n| n.name.clone())
                    .unwrap_or_else(|| mode.to_string()),
                Self::find_network(&st, mode)
                    .map(|n| n.id.clone())
                    .unwrap_or_default(),
            ),
        };
        let mut networks = serde_json::Map::new();
        if !net_name.starts_with("container:") {
            networks.insert(
                net_name,
                serde_json::json!({
                    "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": mac,
                    "DriverOpts": null, "NetworkID": net_id,
                    "EndpointID": eid, "Gateway": gw, "IPAddress": ip, "IPPrefixLen": prefix,
                    "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null
                }),
            );
        }
        let running = ep.is_some();
        for x in st.extras.get(&rec.id).into_iter().flatten() {
            let Some(n) = st.networks.get(&x.network) else {
                continue;
            };
            let prefix = n
                .subnet
                .split('/')
                .nth(1)
                .and_then(|p| p.parse::<i64>().ok())
                .unwrap_or(0);
            let v = |s: String| if running { s } else { String::new() };
            networks.insert(
                n.name.clone(),
                serde_json::json!({
                    "IPAMConfig": null, "Links": null, "Aliases": x.aliases, "MacAddress": v(x.mac.clone()),
                    "DriverOpts": null, "NetworkID": n.id, "EndpointID": v(x.endpoint_id.clone()),
                    "Gateway": v(n.gateway.clone()), "IPAddress": v(x.ip.to_string()),
                    "IPPrefixLen": if running { prefix } else { 0 },
                    "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null
                }),
            );
        }
        // Docker fills the top-level fields for the default bridge only.
        let top = |v: &str| {
            if target.as_ref().is_some_and(|t| t.id.is_empty()) {
                v.to_string()
            } else {
                String::new()
            }
        };
        let sandbox_key = if ep.is_some() {
            self.netns_path(&rec.id).display().to_string()
        } else {
            String::new()
        };
        serde_json::json!({
            "Bridge": "", "SandboxID": if ep.is_some() { rec.id.clone() } else { String::new() },
            "SandboxKey": sandbox_key, "Ports": ports,
            "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null, "EndpointID": top(&eid),
            "Gateway": top(&gw), "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": top(&ip),
            "IPPrefixLen": if target.as_ref().is_some_and(|t| t.id.is_empty()) { prefix } else { 0 },
            "IPv6Gateway": "", "MacAddress": top(&mac), "Networks": networks
        })
    }

    // ------------------------------------------------------------ user networks

    fn persist_network(&self, n: &UserNetwork, delete: bool) -> ApiResult<()> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(NETWORKS).map_err(db_err)?;
            if delete {
                t.remove(n.id.as_str()).map_err(db_err)?;
            } else {
                let bytes = serde_json::to_vec(n).map_err(db_err)?;
                t.insert(n.id.as_str(), bytes.as_slice()).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    fn predefined_id(&self, name: &str) -> String {
        let id = &self.network_id;
        match name {
            "host" => format!("{}{}", &id[32..], &id[..32]),
            "none" => format!("{}{}", &id[16..], &id[..16]),
            _ => id.clone(),
        }
    }

    /// `POST /networks/create`; returns the new ID.
    pub fn create_network(
        &self,
        name: &str,
        subnet: Option<&str>,
        gateway: Option<&str>,
        internal: bool,
        labels: std::collections::BTreeMap<String, String>,
    ) -> ApiResult<String> {
        if !self.enabled {
            return Err(ApiError::invalid(
                "bridge networking is disabled (--bridge-name none)",
            ));
        }
        if name.is_empty() {
            return Err(ApiError::invalid("network name must not be empty"));
        }
        let mut st = self.lock();
        if matches!(name, "bridge" | "host" | "none")
            || st.networks.values().any(|n| n.name == name)
        {
            return Err(ApiError::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let mut taken = link::routed_subnets("");
        taken.push(self.subnet);
        taken.extend(
            st.networks
                .values()
                .filter_map(|n| n.subnet.parse::<Subnet>().ok()),
        );
        let subnet = match subnet {
            Some(s) => {
                let sub: Subnet = s
                    .parse()
                    .map_err(|e: NetError| ApiError::invalid(e.to_string()))?;
                if let Some(t) = taken.iter().find(|t| t.overlaps(&sub)) {
                    return Err(ApiError::conflict(format!(
                        "invalid pool request: Pool overlaps with other one on this address space ({t})"
                    )));
                }
                sub
            }
            None => ipam::pick_subnet(&self.pools, &taken).map_err(net_err)?,
        };
        let gateway: Ipv4Addr = match gateway {
            Some(g) => {
                let ip: Ipv4Addr = g
                    .parse()
                    .map_err(|_| ApiError::invalid(format!("invalid gateway address: {g}")))?;
                if !subnet.contains(ip) {
                    return Err(ApiError::invalid(format!(
                        "no matching subnet for gateway {g}"
                    )));
                }
                ip
            }
            None => subnet.gateway(),
        };
        let id: String = (0..4)
            .map(|_| format!("{:016x}", rand::random::<u64>()))
            .collect();
        let room = 15usize.saturating_sub(self.bridge.len() + 1);
        let bridge = if room >= 4 {
            format!("{}-{}", self.bridge, &id[..room.min(12)])
        } else {
            format!("br-{}", &id[..12])
        };
        let net = UserNetwork {
            id: id.clone(),
            name: name.to_string(),
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            internal,
            labels,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            bridge: bridge.clone(),
        };
        // the bridge carries the gateway address
        if let Err(e) = link::ensure_bridge(&bridge, &subnet, self.mtu) {
            let _ = link::delete_link(&bridge);
            return Err(net_err(e));
        }
        if gateway != subnet.gateway() {
            let _ = std::process::Command::new("ip")
                .args([
                    "addr",
                    "del",
                    &format!("{}/{}", subnet.gateway(), subnet.prefix),
                    "dev",
                    &bridge,
                ])
                .status();
            let _ = std::process::Command::new("ip")
                .args([
                    "addr",
                    "add",
                    &format!("{gateway}/{}", subnet.prefix),
                    "dev",
                    &bridge,
                ])
                .status();
        }
        if let Err(e) = self.persist_network(&net, false) {
            let _ = link::delete_link(&bridge);
            return Err(e);
        }
        self.start_dns(&mut st, &net);
        st.networks.insert(id.clone(), net);
        if let Err(e) = self.sync_rules(&st) {
            let net = st.networks.remove(&id);
            if let Some(n) = net {
                let _ = self.persist_network(&n, true);
            }
            let _ = link::delete_link(&bridge);
            return Err(e);
        }
        Ok(id)
    }

    /// Starts the embedded DNS server of `n` on its gateway (a failure is logged: the
    /// network works, by address only).
    fn start_dns(&self, st: &mut State, n: &UserNetwork) {
        let Ok(gw) = n.gateway.parse::<Ipv4Addr>() else {
            return;
        };
        let state = Arc::downgrade(&self.state);
        let net_id = n.id.clone();
        let lookup: berth_net::dns::Lookup = Arc::new(move |name: &str| {
            let state = state.upgrade()?;
            let st = state.lock().unwrap_or_else(|p| p.into_inner());
            let found: Vec<Ipv4Addr> = st
                .endpoints
                .iter()
                .filter(|(cid, e)| e.network == net_id && st.proxies.contains_key(*cid))
                .filter(|(cid, e)| {
                    e.name.eq_ignore_ascii_case(name) || (name.len() == 12 && cid.starts_with(name))
                })
                .map(|(_, e)| e.ip)
                .chain(
                    st.extras
                        .iter()
                        .filter(|(cid, _)| st.proxies.contains_key(*cid))
                        .flat_map(|(cid, xs)| xs.iter().map(move |x| (cid, x)))
                        .filter(|(cid, x)| {
                            x.network == net_id
                                && (x.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
                                    || st
                                        .endpoints
                                        .get(*cid)
                                        .is_some_and(|e| e.name.eq_ignore_ascii_case(name))
                                    || (name.len() == 12 && cid.starts_with(name)))
                        })
                        .map(|(_, x)| x.ip),
                )
                .collect();
            (!found.is_empty()).then_some(found)
        });
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        match berth_net::dns::serve(gw, lookup, berth_net::dns::upstreams(&host)) {
            Ok(server) => {
                st.dns.insert(n.id.clone(), server);
            }
            Err(e) => {
                tracing::warn!(network = n.name, error = %e, "starting the embedded DNS server")
            }
        }
    }

    /// Docker's network JSON; `containers` are (ID, name) of the containers on it.
    fn network_json(
        &self,
        st: &State,
        n: Option<&UserNetwork>,
        name: &str,
        names: &dyn Fn(&str) -> Option<String>,
    ) -> serde_json::Value {
        let (id, driver, subnet, gateway, internal, labels, created) = match n {
            Some(n) => (
                n.id.clone(),
                "bridge",
                Some(n.subnet.clone()),
                n.gateway.clone(),
                n.internal,
                serde_json::to_value(&n.labels).unwrap_or_default(),
                n.created.clone(),
            ),
            None => (
                self.predefined_id(name),
                match name {
                    "bridge" => "bridge",
                    "host" => "host",
                    _ => "null",
                },
                (name == "bridge").then(|| self.subnet.to_string()),
                if name == "bridge" {
                    self.subnet.gateway().to_string()
                } else {
                    String::new()
                },
                false,
                serde_json::json!({}),
                self.started.clone(),
            ),
        };
        let net_key = if n.is_some() {
            id.clone()
        } else if name == "bridge" {
            String::new()
        } else {
            "-".into()
        };
        let mut containers = serde_json::Map::new();
        for (cid, e) in &st.endpoints {
            if e.network != net_key || !st.proxies.contains_key(cid) {
                continue;
            }
            let prefix = subnet
                .as_deref()
                .and_then(|s| s.split('/').nth(1))
                .unwrap_or("16");
            containers.insert(
                cid.clone(),
                serde_json::json!({
                    "Name": names(cid).unwrap_or_default(), "EndpointID": e.endpoint_id,
                    "MacAddress": e.mac, "IPv4Address": format!("{}/{prefix}", e.ip), "IPv6Address": ""
                }),
            );
        }
        for (cid, xs) in &st.extras {
            if !st.proxies.contains_key(cid) {
                continue;
            }
            for x in xs.iter().filter(|x| x.network == net_key) {
                let prefix = subnet
                    .as_deref()
                    .and_then(|s| s.split('/').nth(1))
                    .unwrap_or("16");
                containers.insert(
                    cid.clone(),
                    serde_json::json!({
                        "Name": names(cid).unwrap_or_default(), "EndpointID": x.endpoint_id,
                        "MacAddress": x.mac, "IPv4Address": format!("{}/{prefix}", x.ip), "IPv6Address": ""
                    }),
                );
            }
        }
        let config = match &subnet {
            Some(s) => serde_json::json!([{"Subnet": s, "Gateway": gateway}]),
            None => serde_json::json!([]),
        };
        serde_json::json!({
            "Name": name, "Id": id, "Created": created, "Scope": "local", "Driver": driver,
            "EnableIPv6": false, "IPAM": {"Driver": "default", "Options": null, "Config": config},
            "Internal": internal, "Attachable": false, "Ingress": false,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": false, "Containers": containers,
            "Options": if name == "bridge" && n.is_none() {
                serde_json::json!({"com.docker.network.bridge.name": self.bridge})
            } else {
                serde_json::json!({})
            },
            "Labels": labels
        })
    }

    /// `GET /networks`: the predefined networks and the user networks.
    pub fn list_networks(&self, names: &dyn Fn(&str) -> Option<String>) -> Vec<serde_json::Value> {
        let st = self.lock();
        let mut out: Vec<serde_json::Value> = Vec::new();
        if self.enabled {
            out.push(self.network_json(&st, None, "bridge", names));
        }
        out.push(self.network_json(&st, None, "host", names));
        out.push(self.network_json(&st, None, "none", names));
        let mut user: Vec<&UserNetwork> = st.networks.values().collect();
        user.sort_by(|a, b| a.created.cmp(&b.created));
        for n in user {
            out.push(self.network_json(&st, Some(n), &n.name, names));
        }
        out
    }

    /// `GET /networks/{id}`.
    pub fn inspect_network(
        &self,
        name_or_id: &str,
        names: &dyn Fn(&str) -> Option<String>,
    ) -> ApiResult<serde_json::Value> {
        let st = self.lock();
        for pre in ["bridge", "host", "none"] {
            if name_or_id == pre || name_or_id == self.predefined_id(pre) {
                return Ok(self.network_json(&st, None, pre, names));
            }
        }
        match Self::find_network(&st, name_or_id) {
            Some(n) => Ok(self.network_json(&st, Some(n), &n.name, names)),
            None => Err(ApiError::not_found(format!(
                "network {name_or_id} not found"
            ))),
        }
    }

    /// `DELETE /networks/{id}`.
    pub fn remove_network(&self, name_or_id: &str) -> ApiResult<()> {
        let mut st = self.lock();
        for pre in ["bridge", "host", "none"] {
            if name_or_id == pre || name_or_id == self.predefined_id(pre) {
                return Err(ApiError::new(
                    berth_api::ErrorKind::Forbidden,
                    format!("{pre} is a pre-defined network and cannot be removed"),
                ));
            }
        }
        let Some(n) = Self::find_network(&st, name_or_id).cloned() else {
            return Err(ApiError::not_found(format!(
                "network {name_or_id} not found"
            )));
        };
        if st.endpoints.values().any(|e| e.network == n.id)
            || st.extras.values().flatten().any(|x| x.network == n.id)
        {
            return Err(ApiError::new(
                berth_api::ErrorKind::Forbidden,
                format!(
                    "error while removing network: network {} id {} has active endpoints",
                    n.name, n.id
                ),
            ));
        }
        self.persist_network(&n, true)?;
        st.networks.remove(&n.id);
        st.dns.remove(&n.id);
        let _ = self.sync_rules(&st);
        link::delete_link(&n.bridge).map_err(net_err)?;
        Ok(())
    }

    /// `POST /networks/prune`: removes user networks no container uses; their names.
    pub fn prune_networks(&self) -> Vec<String> {
        let unused: Vec<String> = {
            let st = self.lock();
            st.networks
                .values()
                .filter(|n| !st.endpoints.values().any(|e| e.network == n.id))
                .map(|n| n.name.clone())
                .collect()
        };
        unused
            .into_iter()
            .filter(|n| self.remove_network(n).is_ok())
            .collect()
    }

    /// `ps`'s `Ports`: the published ports, then the exposed ones not published.
    pub fn summary_ports(&self, rec: &ContainerRecord) -> Vec<berth_api::container::Port> {
        use berth_api::container::Port;
        let st = self.lock();
        let mappings = st
            .endpoints
            .get(&rec.id)
            .filter(|_| rec.state.status.is_running())
            .map(|e| e.ports.clone())
            .unwrap_or_default();
        let mut out: Vec<Port> = mappings
            .iter()
            .map(|m| Port {
                ip: Some(m.host_ip.to_string()),
                private_port: m.container_port,
                public_port: Some(m.host_port),
                kind: m.proto.as_str().into(),
            })
            .collect();
        for key in rec.config.exposed_ports.iter().flat_map(|e| e.keys()) {
            if let Ok((proto, first, last)) = ports::parse_port_key(key) {
                for p in first..=last {
                    if !mappings
                        .iter()
                        .any(|m| m.proto == proto && m.container_port == p)
                    {
                        out.push(Port {
                            ip: None,
                            private_port: p,
                            public_port: None,
                            kind: proto.as_str().into(),
                        });
                    }
                }
            }
        }
        out
    }

    /// The files' paths shown by `inspect` (empty when the mode has none).
    pub fn file_paths(&self, rec: &ContainerRecord) -> (String, String, String) {
        if rec.host_config.network_mode == "host" {
            return Default::default();
        }
        let dir = self.root.join("containers").join(&rec.id);
        let p = |f: &str| dir.join(f).display().to_string();
        (p("resolv.conf"), p("hostname"), p("hosts"))
    }
}
