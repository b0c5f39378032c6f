//! User networks (`network create/ls/inspect/rm/prune`): a Linux bridge each, with an
//! embedded DNS server on the gateway; and the predefined `bridge`, `host` and `none`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use berth_api::{EndpointResource, Ipam, IpamConfig, NetworkResource};

use berth_net::ipam::{self, Subnet};
use berth_net::{link, NetError};

use super::bridge_options::BridgeOptions;
use super::{net_err, NetworkService, NetworkSpec, State, UserNetwork};
use crate::error::{ApiError, ApiResult};

impl NetworkService {
    pub(super) fn predefined_id(&self, name: &str) -> String {
        let id = &self.network_id;
        match name {
            "host" => format!("{}{}", &id[32..], &id[..32]),
            "none" => format!("{}{}", &id[16..], &id[..16]),
            _ => id.clone(),
        }
    }

    /// `POST /networks/create`; returns the new ID and Docker's warning (a second network
    /// of a name, without `CheckDuplicate`).
    pub fn create_network(&self, spec: NetworkSpec) -> ApiResult<(String, String)> {
        if !self.enabled {
            return Err(ApiError::invalid(
                "bridge networking is disabled (--bridge-name none)",
            ));
        }
        let name = spec.name.as_str();
        if name.is_empty() {
            return Err(ApiError::invalid("network name must not be empty"));
        }
        let opts = BridgeOptions::parse(&spec.options)?;
        if spec.subnet.is_none() && spec.ip_range.is_some() {
            return Err(ApiError::invalid(
                "every ip-range or gateway must have a corresponding subnet",
            ));
        }
        let mut st = self.lock();
        let same_name = st
            .networks
            .values()
            .filter(|n| n.name == name)
            .min_by(|a, b| a.created.cmp(&b.created));
        let mut warning = String::new();
        if matches!(name, "bridge" | "host" | "none")
            || (same_name.is_some() && spec.check_duplicate)
        {
            return Err(ApiError::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        if let Some(n) = same_name {
            warning = format!("Network with name {name} (id : {}) already exists", n.id);
        }
        self.check_ipv6(&st, &spec)?;
        if let Some(b) = &opts.name {
            if link::link_exists(b) || st.networks.values().any(|n| &n.bridge == b) {
                return Err(ApiError::conflict(format!(
                    "bridge name {b} is already in use by another network or interface"
                )));
            }
        }
        let mut taken = link::routed_subnets("");
        taken.push(self.subnet);
        taken.extend(
            st.networks
                .values()
                .filter_map(|n| n.subnet.parse::<Subnet>().ok()),
        );
        let subnet = match spec.subnet.as_deref() {
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
        let gateway: Ipv4Addr = match spec.gateway.as_deref() {
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
        let ip_range = match spec.ip_range.as_deref() {
            Some(r) => {
                let range: Subnet = r
                    .parse()
                    .map_err(|e: NetError| ApiError::invalid(e.to_string()))?;
                if !subnet.contains(range.network) || range.prefix < subnet.prefix {
                    return Err(ApiError::invalid(format!(
                        "no matching subnet for range {r}"
                    )));
                }
                range.to_string()
            }
            None => String::new(),
        };
        let mut reserved = vec![gateway];
        for (aux_name, addr) in &spec.aux_addresses {
            let ip: Ipv4Addr = addr
                .parse()
                .map_err(|_| ApiError::invalid(format!("invalid auxiliary address: {addr}")))?;
            if !subnet.contains(ip) {
                return Err(ApiError::invalid(format!(
                    "no matching subnet for aux-address {addr}"
                )));
            }
            if reserved.contains(&ip) || ip == subnet.network || ip == subnet.broadcast() {
                return Err(ApiError::invalid(format!(
                    "failed to allocate secondary ip address ({aux_name}:{addr}): Address already in use"
                )));
            }
            reserved.push(ip);
        }
        let id: String = (0..4)
            .map(|_| format!("{:016x}", rand::random::<u64>()))
            .collect();
        let room = 15usize.saturating_sub(self.bridge.len() + 1);
        let bridge = match opts.name {
            Some(b) => b,
            None if room >= 4 => format!("{}-{}", self.bridge, &id[..room.min(12)]),
            None => format!("br-{}", &id[..12]),
        };
        let net = UserNetwork {
            id: id.clone(),
            name: name.to_string(),
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            internal: spec.internal,
            labels: spec.labels,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            bridge: bridge.clone(),
            ip_range,
            aux_addresses: spec.aux_addresses,
            options: spec.options,
            ipam_options: spec.ipam_options,
            attachable: spec.attachable,
            enable_ipv6: spec.enable_ipv6,
            subnet6: spec.subnet6.clone().unwrap_or_default(),
            gateway6: spec.gateway6.clone().unwrap_or_default(),
            ip_range6: spec.ip_range6.clone().unwrap_or_default(),
        };
        // the bridge carries the gateway address
        if let Err(e) = link::ensure_bridge(&bridge, &subnet, opts.mtu.unwrap_or(self.mtu)) {
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
        if let Some(s) = net.space6() {
            if let Err(e) = link::add_bridge_ipv6(&bridge, s.gateway, s.subnet.prefix) {
                let _ = link::delete_link(&bridge);
                return Err(net_err(e));
            }
        }
        if let Err(e) = self.persist_network(&net, false) {
            let _ = link::delete_link(&bridge);
            return Err(e);
        }
        st.networks.insert(id.clone(), net);
        if let Err(e) = self.sync_rules(&st) {
            let net = st.networks.remove(&id);
            if let Some(n) = net {
                let _ = self.persist_network(&n, true);
            }
            let _ = link::delete_link(&bridge);
            return Err(e);
        }
        self.emit_network_event("create", &id, name, "bridge", None);
        Ok((id, warning))
    }

    /// The IPv6 pool of a new network checked as Docker checks it: `--ipv6` needs one
    /// (Docker has no default IPv6 pools), the gateway and range lie in it, and it
    /// overlaps no other network's.
    fn check_ipv6(&self, st: &State, spec: &NetworkSpec) -> ApiResult<()> {
        use berth_net::ipam6::Subnet6;
        let Some(s) = spec.subnet6.as_deref() else {
            if spec.enable_ipv6 {
                return Err(ApiError::invalid(
                    "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network",
                ));
            }
            if spec.gateway6.is_some() || spec.ip_range6.is_some() {
                return Err(ApiError::invalid(
                    "every ip-range or gateway must have a corresponding subnet",
                ));
            }
            return Ok(());
        };
        let sub: Subnet6 = s
            .parse()
            .map_err(|e: NetError| ApiError::invalid(e.to_string()))?;
        let taken = st
            .networks
            .values()
            .filter_map(|n| n.subnet6.parse::<Subnet6>().ok());
        for t in taken {
            if t.overlaps(&sub) {
                return Err(ApiError::conflict(format!(
                    "invalid pool request: Pool overlaps with other one on this address space ({t})"
                )));
            }
        }
        if let Some(g) = spec.gateway6.as_deref() {
            let ip: std::net::Ipv6Addr = g
                .parse()
                .map_err(|_| ApiError::invalid(format!("invalid gateway address: {g}")))?;
            if !sub.contains(ip) {
                return Err(ApiError::invalid(format!(
                    "no matching subnet for gateway {g}"
                )));
            }
        }
        if let Some(r) = spec.ip_range6.as_deref() {
            let range: Subnet6 = r
                .parse()
                .map_err(|e: NetError| ApiError::invalid(e.to_string()))?;
            if !sub.contains(range.network) || range.prefix < sub.prefix {
                return Err(ApiError::invalid(format!(
                    "no matching subnet for range {r}"
                )));
            }
        }
        Ok(())
    }

    /// Registers where a container's `--dns` servers are found (once, at daemon start).
    pub fn set_container_dns(&self, lookup: super::ContainerDns) {
        let _ = self.container_dns.set(lookup);
    }

    /// Starts container `cid`'s resolver at `127.0.0.11` inside its namespace (a failure
    /// is logged: the container works, by address only). It answers for the container's
    /// networks and links, and forwards the rest to its `--dns` servers, else the
    /// daemon's (as dockerd's embedded DNS), else the host's.
    pub(super) fn start_resolver(&self, st: &mut State, cid: &str) {
        let state = Arc::downgrade(&self.state);
        let id = cid.to_string();
        let lookup: berth_net::dns::Lookup = Arc::new(move |name: &str, _| {
            let state = state.upgrade()?;
            let st = state.lock().unwrap_or_else(|p| p.into_inner());
            let first = st
                .endpoints
                .primary(&id)
                .map(|e| e.network.clone())
                .unwrap_or_default();
            let found = st.endpoints.resolve_for(&id, name, &first);
            // A records, then the AAAA ones of those on dual-stack networks
            let v6: Vec<std::net::IpAddr> = found
                .iter()
                .filter_map(|ip| st.endpoints.ipv6_for(*ip))
                .map(Into::into)
                .collect();
            let all: Vec<std::net::IpAddr> = found.into_iter().map(Into::into).chain(v6).collect();
            (!all.is_empty()).then_some(all)
        });
        let network_upstreams = if self.defaults.dns.is_empty() {
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            berth_net::dns::upstreams(&host)
        } else {
            self.defaults
                .dns
                .iter()
                .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
                .map(|ip| std::net::SocketAddr::new(ip, 53))
                .collect()
        };
        // The container's `--dns` servers are read at query time, never here: this runs
        // under the network lock, and reading them takes the containers lock, which a
        // create holds while it takes the network lock.
        let container_dns = Arc::clone(&self.container_dns);
        let id = cid.to_string();
        let upstreams: berth_net::dns::Upstreams = Arc::new(move |_| {
            let servers = container_dns.get().map(|dns| dns(&id)).unwrap_or_default();
            if servers.is_empty() {
                network_upstreams.clone()
            } else {
                servers
                    .into_iter()
                    .map(|ip| std::net::SocketAddr::new(ip, 53))
                    .collect()
            }
        });
        let ns = st.endpoints.netns_path(cid);
        match berth_net::resolver::start(&ns, lookup, upstreams) {
            Ok(server) => {
                st.resolvers.insert(cid.to_string(), server);
            }
            Err(e) => tracing::warn!(id = cid, error = %e, "starting the embedded DNS server"),
        }
    }

    /// Docker's network resource; `names` gives the name of a container on it.
    fn network_resource(
        &self,
        st: &State,
        n: Option<&UserNetwork>,
        name: &str,
        names: &dyn Fn(&str) -> Option<String>,
    ) -> NetworkResource {
        let predefined = |driver: &str| NetworkResource {
            name: name.to_string(),
            id: self.predefined_id(name),
            created: self.started.clone(),
            driver: driver.into(),
            ..NetworkResource::default()
        };
        let (mut resource, config) = match n {
            Some(n) => {
                let config = IpamConfig {
                    subnet: n.subnet.clone(),
                    ip_range: n.ip_range.clone(),
                    gateway: n.gateway.clone(),
                    auxiliary_addresses: n.aux_addresses.clone(),
                };
                let resource = NetworkResource {
                    enable_ipv6: n.enable_ipv6,
                    name: name.to_string(),
                    id: n.id.clone(),
                    created: n.created.clone(),
                    driver: "bridge".into(),
                    internal: n.internal,
                    attachable: n.attachable,
                    options: n.options.clone(),
                    labels: n.labels.clone(),
                    ..NetworkResource::default()
                };
                (resource, Some(config))
            }
            None if name == "bridge" => {
                let mut r = predefined("bridge");
                r.options
                    .insert("com.docker.network.bridge.name".into(), self.bridge.clone());
                let config = IpamConfig {
                    subnet: self.subnet.to_string(),
                    gateway: self.subnet.gateway().to_string(),
                    ..IpamConfig::default()
                };
                (r, Some(config))
            }
            None => (
                predefined(if name == "host" { "host" } else { "null" }),
                None,
            ),
        };
        let id = resource.id.clone();
        let subnet = config.as_ref().map(|c| c.subnet.clone());
        let net_key = if n.is_some() {
            id.clone()
        } else if name == "bridge" {
            String::new()
        } else {
            "-".into()
        };
        let prefix = subnet
            .as_deref()
            .and_then(|s| s.split('/').nth(1))
            .unwrap_or("16");
        let space6 = n.and_then(|n| n.space6());
        let endpoint = |cid: &str,
                        endpoint_id: &str,
                        mac: &str,
                        ip: Ipv4Addr,
                        ip6: Option<std::net::Ipv6Addr>| EndpointResource {
            name: names(cid).unwrap_or_default(),
            endpoint_id: endpoint_id.to_string(),
            mac_address: mac.to_string(),
            ipv4_address: format!("{ip}/{prefix}"),
            ipv6_address: match (ip6, &space6) {
                (Some(ip6), Some(s)) => format!("{ip6}/{}", s.subnet.prefix),
                _ => String::new(),
            },
        };
        let mut containers = BTreeMap::new();
        for (cid, e) in st.endpoints.primaries() {
            if e.network != net_key || !st.endpoints.is_up(cid) {
                continue;
            }
            containers.insert(
                cid.clone(),
                endpoint(cid, &e.endpoint_id, &e.mac, e.ip, e.ip6),
            );
        }
        let extras = st
            .endpoints
            .all_extras()
            .filter(|(cid, x)| st.endpoints.is_up(cid) && x.network == net_key);
        for (cid, x) in extras {
            containers.insert(
                cid.clone(),
                endpoint(cid, &x.endpoint_id, &x.mac, x.ip, x.ip6),
            );
        }
        resource.scope = "local".into();
        // the IPv6 pool as given, its gateway only when given (as dockerd 20.10 shows it)
        let config6 = n.filter(|n| !n.subnet6.is_empty()).map(|n| IpamConfig {
            subnet: n.subnet6.clone(),
            ip_range: n.ip_range6.clone(),
            gateway: n.gateway6.clone(),
            ..IpamConfig::default()
        });
        resource.ipam = Ipam {
            driver: "default".into(),
            options: n.and_then(|n| n.ipam_options.clone()),
            config: config.into_iter().chain(config6).collect(),
        };
        resource.containers = containers;
        resource
    }

    /// `GET /networks`: the predefined networks and the user networks.
    pub fn list_networks(&self, names: &dyn Fn(&str) -> Option<String>) -> Vec<NetworkResource> {
        let st = self.lock();
        let mut out = Vec::new();
        if self.enabled {
            out.push(self.network_resource(&st, None, "bridge", names));
        }
        out.push(self.network_resource(&st, None, "host", names));
        out.push(self.network_resource(&st, None, "none", names));
        let mut user: Vec<&UserNetwork> = st.networks.values().collect();
        user.sort_by(|a, b| a.created.cmp(&b.created));
        for n in user {
            out.push(self.network_resource(&st, Some(n), &n.name, names));
        }
        out
    }

    /// `GET /networks/{id}`.
    pub fn inspect_network(
        &self,
        name_or_id: &str,
        names: &dyn Fn(&str) -> Option<String>,
    ) -> ApiResult<NetworkResource> {
        let st = self.lock();
        for pre in ["bridge", "host", "none"] {
            if name_or_id == pre || name_or_id == self.predefined_id(pre) {
                return Ok(self.network_resource(&st, None, pre, names));
            }
        }
        Self::check_unambiguous(&st, name_or_id, true)?;
        match Self::find_network(&st, name_or_id) {
            Some(n) => Ok(self.network_resource(&st, Some(n), &n.name, names)),
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
        Self::check_unambiguous(&st, name_or_id, false)?;
        let Some(n) = Self::find_network(&st, name_or_id).cloned() else {
            return Err(ApiError::not_found(format!(
                "network {name_or_id} not found"
            )));
        };
        if st.endpoints.network_in_use(&n.id) {
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
        let _ = self.sync_rules(&st);
        link::delete_link(&n.bridge).map_err(net_err)?;
        self.emit_network_event("destroy", &n.id, &n.name, "bridge", None);
        Ok(())
    }

    /// `POST /networks/prune`: removes the user networks no container uses that `filter`
    /// selects; their names.
    pub fn prune_networks(&self, filter: &crate::prune_filter::PruneFilter) -> Vec<String> {
        let unused: Vec<String> = {
            let st = self.lock();
            st.networks
                .values()
                .filter(|n| !st.endpoints.primaries().any(|(_, e)| e.network == n.id))
                .filter(|n| {
                    let created = chrono::DateTime::parse_from_rfc3339(&n.created)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .unwrap_or_default();
                    filter.selects(created, &n.labels)
                })
                .map(|n| n.name.clone())
                .collect()
        };
        unused
            .into_iter()
            .filter(|n| self.remove_network(n).is_ok())
            .collect()
    }
}
