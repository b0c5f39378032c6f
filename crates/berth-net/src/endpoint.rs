//! Endpoint bookkeeping: every container's place on its networks, the addresses taken
//! on each network, the namespace and veth pairs that plug a container in, its port
//! proxies, and the undo when a step fails.
//!
//! The daemon asks through narrow requests ([`PlugRequest`], [`Target`]) and keeps what
//! is its own: persisting the records, the nftables sync, the `/etc` files and the
//! networks themselves. Per container: the namespace `<netns dir>/<id>`, host veth
//! `vb<first 11 hex of id>` for `eth0` and `vx<first 9 hex><n>` for `eth<n>`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ipam::{self, Subnet};
use crate::ipam6::Space6;
use crate::ports::{PortMapping, PortRequest};
use crate::proxy::{self, Proxy};
use crate::{link, NetError, Result};

/// A container's primary endpoint (`eth0`) on the default bridge or a user network.
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
    /// Its IPv6 address on a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
}

/// An extra network a container was connected to (`network connect`).
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
    /// The address the client asked for (`--ip`), if any.
    #[serde(default)]
    pub requested_ip: Option<Ipv4Addr>,
    /// The MAC address the client asked for, if any (then `mac`).
    #[serde(default)]
    pub requested_mac: Option<String>,
    /// `--link target:alias` on this network: `alias` resolves to `target` for this
    /// container's queries only (Docker's links on user networks).
    #[serde(default)]
    pub links: Vec<String>,
    /// Endpoint driver options (`--driver-opt`), kept for inspect.
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    /// Its IPv6 address on a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    /// The IPv6 address the client asked for (`--ip6`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_ip6: Option<Ipv6Addr>,
    /// `--link-local-ip`: further addresses on its interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<IpAddr>,
}

/// A container's settings on the network it was created on (create's
/// `EndpointsConfig`, or a later `network connect` back to it), kept from create to `rm`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PrimaryConfig {
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The address the client asked for (`--ip`), if any.
    #[serde(default)]
    pub requested_ip: Option<Ipv4Addr>,
    /// Disconnected from it (`network disconnect`): no `eth0`, no DNS name there.
    #[serde(default)]
    pub disconnected: bool,
    /// The MAC address the client asked for (`--mac-address`), if any.
    #[serde(default)]
    pub requested_mac: Option<String>,
    /// `--link target:alias` on this network (see [`ExtraEndpoint::links`]).
    #[serde(default)]
    pub links: Vec<String>,
    /// Endpoint driver options (`--driver-opt`), kept for inspect.
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    /// The IPv6 address the client asked for (`--ip6`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_ip6: Option<Ipv6Addr>,
    /// `--link-local-ip`: further addresses on `eth0`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<IpAddr>,
}

/// Where an endpoint lives: the default bridge (empty `id`) or a user network.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub name: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    /// `--ip-range`: where addresses are picked.
    pub range: Option<Subnet>,
    /// `--aux-address`: addresses never handed out.
    pub aux_addresses: Vec<Ipv4Addr>,
    /// `com.docker.network.driver.mtu` of the network, else the daemon's.
    pub mtu: Option<u32>,
    /// `com.docker.network.bridge.enable_icc=false`: the bridge ports cannot reach each other.
    pub isolated_ports: bool,
    /// The IPv6 side of a network with `EnableIPv6`.
    pub v6: Option<Space6>,
}

impl Target {
    fn space(&self) -> ipam::AddressSpace {
        let mut reserved = self.aux_addresses.clone();
        reserved.push(self.gateway);
        ipam::AddressSpace {
            subnet: self.subnet,
            range: self.range,
            reserved,
        }
    }

    /// The IPv6 address for an endpoint: none without IPv6, else the requested one
    /// checked or the first free one.
    fn address6(&self, requested: Option<Ipv6Addr>, used: &[Ipv6Addr]) -> Result<Option<Ipv6Addr>> {
        let Some(space) = &self.v6 else {
            return Ok(None);
        };
        match requested {
            Some(ip) => space.check_requested(ip, used).map(Some),
            None => space.allocate(used).map(Some),
        }
    }

    /// The interface's IPv6 address and default route.
    fn v6_of(&self, ip6: Option<Ipv6Addr>) -> (Option<(Ipv6Addr, u8)>, Option<Ipv6Addr>) {
        match (&self.v6, ip6) {
            (Some(s), Some(ip)) => (
                Some((ip, s.subnet.prefix)),
                (!self.internal).then_some(s.gateway),
            ),
            _ => (None, None),
        }
    }

    /// The first free address, or the requested one checked.
    fn address(&self, requested: Option<Ipv4Addr>, used: &[Ipv4Addr]) -> Result<Ipv4Addr> {
        let space = self.space();
        match requested {
            Some(ip) => space.check_requested(ip, used),
            None => space.allocate(used).map_err(|e| match e {
                NetError::Conflict(m) => {
                    NetError::Conflict(format!("{m}: {} ({})", self.name, self.id))
                }
                e => e,
            }),
        }
    }
}

/// What plugging a container's primary endpoint needs to know about the container.
#[derive(Debug, Clone, Copy)]
pub struct PlugRequest<'a> {
    pub container_id: &'a str,
    /// The container's name without `/` (errors, the embedded DNS).
    pub name: &'a str,
    pub target: &'a Target,
    pub ports: &'a [PortRequest],
    /// The address asked for (`--ip`); else the kept or first free one.
    pub ip: Option<Ipv4Addr>,
    /// The MAC address asked for (`--mac-address`); else Docker's for the address.
    pub mac: Option<&'a str>,
    /// False when disconnected from the network: the namespace has no `eth0`.
    pub connected: bool,
    /// The IPv6 address asked for (`--ip6`) on a dual-stack network.
    pub ip6: Option<Ipv6Addr>,
    /// `--link-local-ip`: further addresses on `eth0`.
    pub link_local: &'a [IpAddr],
}

/// A primary endpoint set up but not yet recorded: [`EndpointTable::commit`] records it;
/// dropping it stops its proxies (call [`EndpointTable::unplug_links`] for the links).
pub struct Plugged {
    pub record: EndpointRecord,
    proxies: Vec<Proxy>,
}

/// The endpoints of every container and the proxies of the running ones.
pub struct EndpointTable {
    netns_dir: PathBuf,
    mtu: u32,
    endpoints: HashMap<String, EndpointRecord>,
    extras: HashMap<String, Vec<ExtraEndpoint>>,
    /// Create-time settings on the primary network, by container.
    configs: HashMap<String, PrimaryConfig>,
    /// Present (maybe empty) exactly while the container's network is up.
    proxies: HashMap<String, Vec<Proxy>>,
}

fn new_endpoint_id() -> String {
    (0..4)
        .map(|_| format!("{:016x}", rand::random::<u64>()))
        .collect()
}

fn host_veth(id: &str) -> String {
    format!("vb{}", &id[..id.len().min(11)])
}

fn extra_veth(id: &str, ifname: &str) -> String {
    format!(
        "vx{}{}",
        &id[..id.len().min(9)],
        ifname.trim_start_matches("eth")
    )
}

impl EndpointTable {
    /// A table over the records loaded from the daemon's store.
    pub fn new(
        netns_dir: PathBuf,
        mtu: u32,
        endpoints: HashMap<String, EndpointRecord>,
        extras: HashMap<String, Vec<ExtraEndpoint>>,
    ) -> Self {
        EndpointTable {
            netns_dir,
            mtu,
            endpoints,
            extras,
            configs: HashMap::new(),
            proxies: HashMap::new(),
        }
    }

    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// The bind-mounted network namespace of container `id`.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    /// Every container with an endpoint, a create-time config or a namespace file.
    pub fn container_ids(&self) -> std::collections::BTreeSet<String> {
        let mut ids: std::collections::BTreeSet<String> = self
            .endpoints
            .keys()
            .chain(self.extras.keys())
            .chain(self.configs.keys())
            .cloned()
            .collect();
        if let Ok(rd) = std::fs::read_dir(&self.netns_dir) {
            ids.extend(
                rd.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit())),
            );
        }
        ids
    }

    /// Whether container `id`'s network is up (it runs).
    pub fn is_up(&self, id: &str) -> bool {
        self.proxies.contains_key(id)
    }

    pub fn primary(&self, id: &str) -> Option<&EndpointRecord> {
        self.endpoints.get(id)
    }

    /// Container `id`'s settings on its primary network (default when none were given).
    pub fn config(&self, id: &str) -> PrimaryConfig {
        self.configs.get(id).cloned().unwrap_or_default()
    }

    pub fn set_config(&mut self, id: &str, cfg: PrimaryConfig) {
        self.configs.insert(id.to_string(), cfg);
    }

    fn primary_connected(&self, id: &str) -> bool {
        !self.configs.get(id).is_some_and(|c| c.disconnected)
    }

    /// The primary endpoints, but those disconnected from their network.
    pub fn primaries(&self) -> impl Iterator<Item = (&String, &EndpointRecord)> {
        self.endpoints
            .iter()
            .filter(|(cid, _)| self.primary_connected(cid))
    }

    pub fn extras_of(&self, id: &str) -> &[ExtraEndpoint] {
        self.extras.get(id).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn all_extras(&self) -> impl Iterator<Item = (&String, &ExtraEndpoint)> {
        self.extras
            .iter()
            .flat_map(|(cid, xs)| xs.iter().map(move |x| (cid, x)))
    }

    /// Whether any endpoint, primary or extra, is on `network`.
    pub fn network_in_use(&self, network: &str) -> bool {
        self.primaries().any(|(_, e)| e.network == network)
            || self.extras.values().flatten().any(|x| x.network == network)
    }

    /// The published ports on `network` with the address they forward to.
    pub fn published_on(&self, network: &str) -> Vec<(Ipv4Addr, PortMapping)> {
        self.endpoints
            .values()
            .filter(|e| e.network == network)
            .flat_map(|e| e.ports.iter().map(move |p| (e.ip, p.clone())))
            .collect()
    }

    /// The addresses taken on `target` (the gateway included), not counting the
    /// primary endpoint of `except`.
    fn used(&self, target: &Target, except: Option<&str>) -> Vec<Ipv4Addr> {
        self.endpoints
            .iter()
            .filter(|(cid, e)| e.network == target.id && Some(cid.as_str()) != except)
            .map(|(_, e)| e.ip)
            .chain(
                self.extras
                    .values()
                    .flatten()
                    .filter(|x| x.network == target.id)
                    .map(|x| x.ip),
            )
            .chain(std::iter::once(target.gateway))
            .collect()
    }

    /// The IPv6 addresses taken on `target`, not counting the primary endpoint of `except`.
    fn used6(&self, target: &Target, except: Option<&str>) -> Vec<Ipv6Addr> {
        self.endpoints
            .iter()
            .filter(|(cid, e)| e.network == target.id && Some(cid.as_str()) != except)
            .filter_map(|(_, e)| e.ip6)
            .chain(
                self.extras
                    .values()
                    .flatten()
                    .filter(|x| x.network == target.id)
                    .filter_map(|x| x.ip6),
            )
            .collect()
    }

    /// The IPv6 address of the endpoint with IPv4 address `ip` (subnets of one daemon
    /// never overlap), on a dual-stack network: for AAAA answers.
    pub fn ipv6_for(&self, ip: Ipv4Addr) -> Option<Ipv6Addr> {
        self.endpoints
            .values()
            .filter(|e| e.ip == ip)
            .find_map(|e| e.ip6)
            .or_else(|| {
                self.all_extras()
                    .filter(|(_, x)| x.ip == ip)
                    .find_map(|(_, x)| x.ip6)
            })
    }

    /// The container whose endpoint on `net_id` has the address `ip`.
    pub fn container_at(&self, net_id: &str, ip: Ipv4Addr) -> Option<&str> {
        self.primaries()
            .find(|(_, e)| e.network == net_id && e.ip == ip)
            .map(|(cid, _)| cid.as_str())
            .or_else(|| {
                self.all_extras()
                    .find(|(_, x)| x.network == net_id && x.ip == ip)
                    .map(|(cid, _)| cid.as_str())
            })
    }

    /// What the embedded DNS of network `net_id` answers to a query for `name` from
    /// address `from`. As Docker's resolver, it answers for every network the asking
    /// container is on (this one first) and its link aliases (`--link target:alias` on a
    /// user network) before the names themselves.
    pub fn resolve_from(&self, net_id: &str, name: &str, from: Ipv4Addr) -> Vec<Ipv4Addr> {
        let Some(cid) = self.container_at(net_id, from) else {
            return self.resolve(net_id, name);
        };
        self.resolve_for(cid, name, net_id)
    }

    /// What the resolver of container `cid` answers for `name`: its links' aliases, then
    /// the names on each of its networks (`first` first).
    pub fn resolve_for(&self, cid: &str, name: &str, first: &str) -> Vec<Ipv4Addr> {
        let net_id = first;
        // (network, links there) of the asking container, the queried network first
        let mut nets: Vec<(&str, &[String])> = Vec::new();
        if let Some(e) = self
            .endpoints
            .get(cid)
            .filter(|_| self.primary_connected(cid))
        {
            let links = self
                .configs
                .get(cid)
                .map(|c| c.links.as_slice())
                .unwrap_or(&[]);
            nets.push((e.network.as_str(), links));
        }
        for x in self.extras_of(cid) {
            nets.push((x.network.as_str(), x.links.as_slice()));
        }
        nets.sort_by_key(|(n, _)| *n != net_id);
        for (net, links) in &nets {
            for link in links.iter() {
                let (target, alias) = link.split_once(':').unwrap_or((link, link));
                if alias.eq_ignore_ascii_case(name) {
                    let found = self.resolve(net, target);
                    if !found.is_empty() {
                        return found;
                    }
                }
            }
        }
        nets.iter()
            .filter(|(net, _)| !net.is_empty())
            .map(|(net, _)| self.resolve(net, name))
            .find(|found| !found.is_empty())
            .unwrap_or_default()
    }

    /// The running containers on network `net_id` answering to `name` (a container name,
    /// an alias on that network, or a 12-hex ID), for the embedded DNS.
    pub fn resolve(&self, net_id: &str, name: &str) -> Vec<Ipv4Addr> {
        let short_id = |cid: &str| name.len() == 12 && cid.starts_with(name);
        self.endpoints
            .iter()
            .filter(|(cid, e)| {
                e.network == net_id && self.is_up(cid) && self.primary_connected(cid)
            })
            .filter(|(cid, e)| {
                e.name.eq_ignore_ascii_case(name)
                    || short_id(cid)
                    || self
                        .configs
                        .get(*cid)
                        .is_some_and(|c| c.aliases.iter().any(|a| a.eq_ignore_ascii_case(name)))
            })
            .map(|(_, e)| e.ip)
            .chain(
                self.all_extras()
                    .filter(|(cid, _)| self.is_up(cid))
                    .filter(|(cid, x)| {
                        x.network == net_id
                            && (x.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
                                || self
                                    .endpoints
                                    .get(*cid)
                                    .is_some_and(|e| e.name.eq_ignore_ascii_case(name))
                                || short_id(cid))
                    })
                    .map(|(_, x)| x.ip),
            )
            .collect()
    }

    /// Sets up the primary endpoint: the address (kept from an earlier start on the same
    /// network, else the first free one), the host ports (first: a taken port fails before
    /// anything is created), the namespace and the `eth0` veth. On error nothing is left.
    pub fn plug(&self, req: &PlugRequest) -> Result<Plugged> {
        let id = req.container_id;
        let target = req.target;
        let kept = self
            .endpoints
            .get(id)
            .filter(|e| e.network == target.id && req.ip.is_none_or(|ip| ip == e.ip));
        let mut ep = match kept {
            Some(e) => e.clone(),
            None => {
                let used = self.used(target, Some(id));
                let ip = match req.ip {
                    Some(_) => target.address(req.ip, &used)?,
                    // An address whose last user's flows are still being forgotten
                    // (a dump of the whole conntrack table, off the stop path) would make
                    // this start wait for that ([`link::attach`]): another free address
                    // is taken first, that one only when no other is free.
                    None => {
                        let mut busy = used.clone();
                        busy.extend(crate::conntrack::pending());
                        target
                            .address(None, &busy)
                            .or_else(|_| target.address(None, &used))?
                    }
                };
                EndpointRecord {
                    ip,
                    mac: String::new(),
                    endpoint_id: new_endpoint_id(),
                    ports: Vec::new(),
                    network: target.id.clone(),
                    name: String::new(),
                    ip6: None,
                }
            }
        };
        let keep6 = ep.ip6.filter(|ip| {
            target.v6.as_ref().is_some_and(|s| s.subnet.contains(*ip))
                && req.ip6.is_none_or(|r| r == *ip)
        });
        ep.ip6 = match keep6 {
            Some(ip) => Some(ip),
            None => target.address6(req.ip6, &self.used6(target, Some(id)))?,
        };
        ep.mac = req.mac.map_or_else(|| ipam::mac_for(ep.ip), str::to_string);
        let mut proxies = Vec::new();
        let ports = if req.connected { req.ports } else { &[] };
        for r in ports {
            let p = proxy::start(r, ep.ip).map_err(|e| {
                NetError::System(format!(
                    "driver failed programming external connectivity on endpoint {} ({}): {e}",
                    req.name, ep.endpoint_id
                ))
            })?;
            proxies.push(p);
        }
        ep.ports = proxies.iter().map(|p| p.mapping.clone()).collect();
        ep.name = req.name.to_string();
        let ns = self.netns_path(id);
        self.unplug_links(id);
        let t = crate::timing::Step::new("net.netns");
        link::create_netns(&ns)?;
        drop(t);
        if !req.connected {
            return Ok(Plugged {
                record: ep,
                proxies,
            });
        }
        let veth = host_veth(id);
        let (ip6, gateway6) = target.v6_of(ep.ip6);
        let endpoint = link::Endpoint {
            bridge: &target.bridge,
            host_veth: &veth,
            ifname: "eth0",
            ip: ep.ip,
            prefix: target.subnet.prefix,
            gateway: (!target.internal).then_some(target.gateway),
            mac: &ep.mac,
            mtu: target.mtu.unwrap_or(self.mtu),
            isolated: target.isolated_ports,
            ip6,
            gateway6,
            link_local: req.link_local,
        };
        let t = crate::timing::Step::new("net.veth");
        if let Err(e) = link::attach(&ns, &endpoint) {
            link::remove_netns(&ns);
            return Err(e);
        }
        drop(t);
        Ok(Plugged {
            record: ep,
            proxies,
        })
    }

    /// Records a plugged endpoint and plugs the container's extra endpoints into its
    /// namespace (`target_of` finds each one's network; a failure is logged).
    pub fn commit(
        &mut self,
        id: &str,
        plugged: Plugged,
        target_of: &dyn Fn(&str) -> Option<Target>,
    ) {
        self.endpoints.insert(id.to_string(), plugged.record);
        self.proxies.insert(id.to_string(), plugged.proxies);
        for x in self.extras_of(id).to_vec() {
            let plugged = match target_of(&x.network) {
                Some(t) => self.plug_extra(id, &x, &t),
                None => Err(NetError::Invalid(format!(
                    "network {} not found",
                    x.network
                ))),
            };
            if let Err(e) = plugged {
                tracing::warn!(id, network = x.network, error = %e, "connecting an extra network");
            }
        }
    }

    /// Plugs the extra endpoint `x` on `target` into the running container `id`.
    pub fn plug_extra(&self, id: &str, x: &ExtraEndpoint, target: &Target) -> Result<()> {
        let veth = extra_veth(id, &x.ifname);
        let _ = link::delete_link(&veth);
        let (ip6, _) = target.v6_of(x.ip6);
        let ep = link::Endpoint {
            bridge: &target.bridge,
            host_veth: &veth,
            ifname: &x.ifname,
            ip: x.ip,
            prefix: target.subnet.prefix,
            gateway: None,
            mac: &x.mac,
            mtu: target.mtu.unwrap_or(self.mtu),
            isolated: target.isolated_ports,
            ip6,
            gateway6: None,
            link_local: &x.link_local_ips,
        };
        link::attach(&self.netns_path(id), &ep)
    }

    /// Takes the running container `id` off its primary network (`network disconnect`):
    /// its `eth0` and published ports go. Returns the record to persist.
    pub fn unplug_primary(&mut self, id: &str) -> Option<EndpointRecord> {
        if let Some(p) = self.proxies.get_mut(id) {
            p.clear();
        }
        let _ = link::delete_link(&host_veth(id));
        let ep = self.endpoints.get_mut(id)?;
        ep.ports.clear();
        Some(ep.clone())
    }

    /// Puts the running container `id` back on its primary network `target` (no
    /// published ports until its next start). Returns the record to persist.
    pub fn replug_primary(
        &mut self,
        id: &str,
        target: &Target,
        ip: Option<Ipv4Addr>,
        mac: Option<&str>,
        ip6: Option<Ipv6Addr>,
        link_local: &[IpAddr],
    ) -> Result<EndpointRecord> {
        let kept = self
            .endpoints
            .get(id)
            .filter(|e| e.network == target.id && ip.is_none_or(|ip| ip == e.ip))
            .cloned();
        let mut ep = match kept {
            Some(e) => e,
            None => {
                let used = self.used(target, Some(id));
                let ip = target.address(ip, &used)?;
                EndpointRecord {
                    ip,
                    mac: String::new(),
                    endpoint_id: new_endpoint_id(),
                    ports: Vec::new(),
                    network: target.id.clone(),
                    name: self
                        .endpoints
                        .get(id)
                        .map(|e| e.name.clone())
                        .unwrap_or_default(),
                    ip6: None,
                }
            }
        };
        ep.mac = mac.map_or_else(|| ipam::mac_for(ep.ip), str::to_string);
        ep.ip6 = target.address6(ip6, &self.used6(target, Some(id)))?;
        let veth = host_veth(id);
        let _ = link::delete_link(&veth);
        let (ip6, gateway6) = target.v6_of(ep.ip6);
        let endpoint = link::Endpoint {
            bridge: &target.bridge,
            host_veth: &veth,
            ifname: "eth0",
            ip: ep.ip,
            prefix: target.subnet.prefix,
            gateway: (!target.internal).then_some(target.gateway),
            mac: &ep.mac,
            mtu: target.mtu.unwrap_or(self.mtu),
            isolated: target.isolated_ports,
            ip6,
            gateway6,
            link_local,
        };
        link::attach(&self.netns_path(id), &endpoint)?;
        self.endpoints.insert(id.to_string(), ep.clone());
        Ok(ep)
    }

    /// Deletes container `id`'s host veths and namespace.
    pub fn unplug_links(&self, id: &str) {
        for x in self.extras_of(id) {
            let _ = link::delete_link(&extra_veth(id, &x.ifname));
        }
        let _ = link::delete_link(&host_veth(id));
        let ns = self.netns_path(id);
        if ns.exists() {
            link::remove_netns(&ns);
        }
    }

    /// [`Self::unplug_links`] for a stopping container: the namespace goes now, the veths
    /// in the background ([`link::delete_links_later`]).
    fn unplug_links_later(&self, id: &str) {
        let ns = self.netns_path(id);
        if ns.exists() {
            link::remove_netns(&ns);
        }
        let mut veths: Vec<String> = self
            .extras_of(id)
            .iter()
            .map(|x| extra_veth(id, &x.ifname))
            .collect();
        veths.push(host_veth(id));
        link::delete_links_later(&veths);
    }

    /// Takes container `id`'s network down (the address stays allocated). Returns the
    /// primary record when its published ports were cleared (to persist), with the ports
    /// it had (their nftables elements to delete). Idempotent.
    pub fn unplug(&mut self, id: &str) -> Option<(EndpointRecord, Vec<PortMapping>)> {
        // flows through its published ports (and its own) must not outlive it: forgotten
        // once its links are gone, so none can start again
        let had_ports = self
            .endpoints
            .get(id)
            .is_some_and(|ep| !ep.ports.is_empty());
        let addrs: Vec<Ipv4Addr> = if had_ports || self.is_up(id) {
            self.endpoints
                .get(id)
                .map(|ep| ep.ip)
                .into_iter()
                .chain(self.extras_of(id).iter().map(|x| x.ip))
                .collect()
        } else {
            Vec::new()
        };
        self.proxies.remove(id);
        let cleared = match self.endpoints.get_mut(id) {
            Some(ep) if !ep.ports.is_empty() => {
                let ports = std::mem::take(&mut ep.ports);
                Some((ep.clone(), ports))
            }
            _ => None,
        };
        self.unplug_links_later(id);
        crate::conntrack::forget_later(addrs);
        cleared
    }

    /// Forgets container `id`'s endpoints (after [`Self::unplug`]): whether it had a
    /// primary one, and its extra ones.
    pub fn forget(&mut self, id: &str) -> (bool, Vec<ExtraEndpoint>) {
        self.configs.remove(id);
        (
            self.endpoints.remove(id).is_some(),
            self.extras.remove(id).unwrap_or_default(),
        )
    }

    /// A new extra endpoint for container `id` on `target`: the first free address and
    /// interface name. Not recorded until [`Self::add_extra`].
    pub fn new_extra(
        &self,
        id: &str,
        target: &Target,
        aliases: Vec<String>,
        requested_ip: Option<Ipv4Addr>,
        requested_ip6: Option<Ipv6Addr>,
    ) -> Result<ExtraEndpoint> {
        let used = self.used(target, None);
        let ip = target.address(requested_ip, &used)?;
        let ip6 = target.address6(requested_ip6, &self.used6(target, None))?;
        let ifname = (1..)
            .map(|i| format!("eth{i}"))
            .find(|f| !self.extras_of(id).iter().any(|x| &x.ifname == f))
            .unwrap_or_default();
        Ok(ExtraEndpoint {
            network: target.id.clone(),
            ip,
            mac: ipam::mac_for(ip),
            endpoint_id: new_endpoint_id(),
            aliases,
            ifname,
            requested_ip,
            requested_mac: None,
            links: Vec::new(),
            driver_opts: BTreeMap::new(),
            ip6,
            requested_ip6,
            link_local_ips: Vec::new(),
        })
    }

    pub fn add_extra(&mut self, id: &str, x: ExtraEndpoint) {
        self.extras.entry(id.to_string()).or_default().push(x);
    }

    /// Removes container `id`'s extra endpoint on `network` and its veth.
    pub fn remove_extra(&mut self, id: &str, network: &str) -> Option<ExtraEndpoint> {
        let list = self.extras.entry(id.to_string()).or_default();
        let pos = list.iter().position(|x| x.network == network)?;
        let x = list.remove(pos);
        let _ = link::delete_link(&extra_veth(id, &x.ifname));
        Some(x)
    }

    /// Deletes the veth of an extra endpoint that could not be recorded.
    pub fn drop_extra_link(&self, id: &str, x: &ExtraEndpoint) {
        let _ = link::delete_link(&extra_veth(id, &x.ifname));
    }

    /// At daemon start: re-opens the proxies of running container `id` on the host ports
    /// it had (a port taken meanwhile is logged) and marks its network up.
    pub fn reopen(&mut self, id: &str) {
        let Some(ep) = self.endpoints.get(id).cloned() else {
            return;
        };
        let mut proxies = Vec::new();
        for m in &ep.ports {
            let req = PortRequest {
                proto: m.proto,
                container_port: m.container_port,
                host_ip: m.host_ip,
                host_ports: Some((m.host_port, m.host_port)),
            };
            match proxy::start(&req, ep.ip) {
                Ok(p) => proxies.push(p),
                Err(e) => tracing::warn!(id, error = %e, "re-opening a published port"),
            }
        }
        self.proxies.insert(id.to_string(), proxies);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: &str) -> Target {
        Target {
            id: id.into(),
            name: "n".into(),
            bridge: "br".into(),
            subnet: "10.9.0.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 9, 0, 1),
            internal: false,
            range: None,
            aux_addresses: Vec::new(),
            mtu: None,
            isolated_ports: false,
            v6: None,
        }
    }

    fn record(ip: [u8; 4], network: &str, name: &str) -> EndpointRecord {
        EndpointRecord {
            ip: ip.into(),
            mac: String::new(),
            endpoint_id: String::new(),
            ports: Vec::new(),
            network: network.into(),
            name: name.into(),
            ip6: None,
        }
    }

    #[test]
    fn addresses_skip_the_gateway_and_taken_ones_and_dns_sees_running_only() {
        let endpoints = HashMap::from([
            ("a".repeat(64), record([10, 9, 0, 2], "n1", "web")),
            ("b".repeat(64), record([10, 9, 0, 3], "n1", "db")),
        ]);
        let mut t = EndpointTable::new(
            PathBuf::from("/nonexistent"),
            1500,
            endpoints,
            HashMap::new(),
        );
        let x = t
            .new_extra(
                &"c".repeat(64),
                &target("n1"),
                vec!["alias".into()],
                None,
                None,
            )
            .unwrap();
        assert_eq!(
            (x.ip, x.ifname.as_str()),
            (Ipv4Addr::new(10, 9, 0, 4), "eth1")
        );
        assert!(t.network_in_use("n1") && !t.network_in_use("n2"));
        // Nothing runs yet: the DNS finds no one.
        assert!(t.resolve("n1", "web").is_empty());
        t.proxies.insert("a".repeat(64), Vec::new());
        t.proxies.insert("c".repeat(64), Vec::new());
        t.add_extra(&"c".repeat(64), x);
        assert_eq!(t.resolve("n1", "WEB"), vec![Ipv4Addr::new(10, 9, 0, 2)]);
        assert_eq!(t.resolve("n1", "alias"), vec![Ipv4Addr::new(10, 9, 0, 4)]);
        assert_eq!(
            t.resolve("n1", &"a".repeat(12)),
            vec![Ipv4Addr::new(10, 9, 0, 2)]
        );
        assert!(t.resolve("n1", "db").is_empty());
        assert_eq!(t.forget(&"c".repeat(64)).1.len(), 1);
    }

    #[tokio::test]
    async fn a_taken_host_port_fails_the_plug_before_anything_is_made() {
        let dir = tempfile_dir();
        let held = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken = held.local_addr().unwrap().port();
        let free = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let free_port = free.local_addr().unwrap().port();
        drop(free);
        let ports = [
            // The first proxy starts, the second cannot: the first must go too.
            PortRequest {
                proto: crate::ports::Proto::Tcp,
                container_port: 81,
                host_ip: Ipv4Addr::LOCALHOST,
                host_ports: Some((free_port, free_port)),
            },
            PortRequest {
                proto: crate::ports::Proto::Tcp,
                container_port: 80,
                host_ip: Ipv4Addr::LOCALHOST,
                host_ports: Some((taken, taken)),
            },
        ];
        let t = EndpointTable::new(dir.clone(), 1500, HashMap::new(), HashMap::new());
        let id = "f".repeat(64);
        let target = target("");
        let err = t
            .plug(&PlugRequest {
                container_id: &id,
                name: "web",
                target: &target,
                ports: &ports,
                ip: None,
                mac: None,
                connected: true,
                ip6: None,
                link_local: &[],
            })
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("driver failed programming external connectivity on endpoint web ("),
            "{err}"
        );
        assert!(!t.netns_path(&id).exists() && !t.is_up(&id) && t.primary(&id).is_none());
        // The port the first proxy held is free again (once the runtime has dropped its
        // aborted task).
        let mut rebound = false;
        for _ in 0..100 {
            tokio::task::yield_now().await;
            if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, free_port)).is_ok() {
                rebound = true;
                break;
            }
        }
        assert!(rebound, "port {free_port} still held");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-net-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
