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
use crate::proxy::Proxy;
use crate::{NetError, Result};

mod plug;

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
