//! What `inspect` and `ps` show of a container's networking.

use std::collections::BTreeMap;

use berth_api::{EndpointSettings, NetworkSettings};
use berth_net::ports::{self};

use super::{uses_bridge, NetworkService};
use crate::containers::record::ContainerRecord;

/// An endpoint's `IPAMConfig` as Docker shows it: what the client asked for, `null` when
/// it asked for nothing.
fn ipam_config(
    ip: Option<std::net::Ipv4Addr>,
    ip6: Option<std::net::Ipv6Addr>,
    link_local: &[std::net::IpAddr],
) -> Option<berth_api::EndpointIpamConfig> {
    (ip.is_some() || ip6.is_some() || !link_local.is_empty()).then(|| {
        berth_api::EndpointIpamConfig {
            ipv4_address: ip.map(|ip| ip.to_string()).unwrap_or_default(),
            ipv6_address: ip6.map(|ip| ip.to_string()).unwrap_or_default(),
            link_local_ips: link_local.iter().map(|ip| ip.to_string()).collect(),
        }
    })
}

impl NetworkService {
    /// Docker's `NetworkSettings` for `inspect`.
    pub fn settings(&self, rec: &ContainerRecord) -> NetworkSettings {
        let st = self.lock();
        let ep = st
            .endpoints
            .primary(&rec.id)
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
                // Docker fills it at the first start.
                Self::find_network(&st, mode)
                    .filter(|_| st.endpoints.primary(&rec.id).is_some())
                    .map(|n| n.id.clone())
                    .unwrap_or_default(),
            ),
        };
        // the IPv6 address, prefix and gateway on a dual-stack network
        let (ip6, prefix6, gw6) = match (
            ep.and_then(|e| e.ip6),
            target.as_ref().and_then(|t| t.v6.as_ref()),
        ) {
            (Some(ip), Some(s)) => (
                ip.to_string(),
                s.subnet.prefix as i64,
                if target.as_ref().is_some_and(|t| t.internal) {
                    String::new()
                } else {
                    s.gateway.to_string()
                },
            ),
            _ => Default::default(),
        };
        let mut networks = BTreeMap::new();
        let cfg = st.endpoints.config(&rec.id);
        if !net_name.starts_with("container:") && !cfg.disconnected {
            networks.insert(
                net_name,
                EndpointSettings {
                    aliases: (!cfg.aliases.is_empty()).then(|| cfg.aliases.clone()),
                    ipam_config: ipam_config(
                        cfg.requested_ip,
                        cfg.requested_ip6,
                        &cfg.link_local_ips,
                    ),
                    mac_address: cfg.requested_mac.clone().unwrap_or_else(|| mac.clone()),
                    driver_opts: (!cfg.driver_opts.is_empty()).then(|| cfg.driver_opts.clone()),
                    links: (!cfg.links.is_empty()).then(|| cfg.links.clone()),
                    network_id: net_id,
                    endpoint_id: eid.clone(),
                    gateway: gw.clone(),
                    ip_address: ip.clone(),
                    ip_prefix_len: prefix,
                    ipv6_gateway: gw6.clone(),
                    global_ipv6_address: ip6.clone(),
                    global_ipv6_prefix_len: prefix6,
                    ..EndpointSettings::default()
                },
            );
        }
        let running = ep.is_some();
        for x in st.endpoints.extras_of(&rec.id) {
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
            let space6 = n.space6().filter(|_| running);
            let ip6 = x.ip6.filter(|_| space6.is_some());
            networks.insert(
                n.name.clone(),
                EndpointSettings {
                    aliases: Some(x.aliases.clone()),
                    ipam_config: Some(
                        ipam_config(x.requested_ip, x.requested_ip6, &x.link_local_ips)
                            .unwrap_or_default(),
                    ),
                    mac_address: x.requested_mac.clone().unwrap_or_else(|| v(x.mac.clone())),
                    driver_opts: (!x.driver_opts.is_empty()).then(|| x.driver_opts.clone()),
                    links: (!x.links.is_empty()).then(|| x.links.clone()),
                    network_id: n.id.clone(),
                    endpoint_id: v(x.endpoint_id.clone()),
                    gateway: v(n.gateway.clone()),
                    ip_address: v(x.ip.to_string()),
                    ip_prefix_len: if running { prefix } else { 0 },
                    global_ipv6_address: ip6.map(|ip| ip.to_string()).unwrap_or_default(),
                    global_ipv6_prefix_len: match (ip6, &space6) {
                        (Some(_), Some(s)) => s.subnet.prefix as i64,
                        _ => 0,
                    },
                    ipv6_gateway: match (ip6, &space6) {
                        (Some(_), Some(s)) if !n.internal => s.gateway.to_string(),
                        _ => String::new(),
                    },
                    ..EndpointSettings::default()
                },
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
            st.endpoints.netns_path(&rec.id).display().to_string()
        } else {
            String::new()
        };
        NetworkSettings {
            sandbox_id: if ep.is_some() {
                rec.id.clone()
            } else {
                String::new()
            },
            sandbox_key,
            ports,
            endpoint_id: top(&eid),
            gateway: top(&gw),
            ip_address: top(&ip),
            global_ipv6_address: top(&ip6),
            global_ipv6_prefix_len: if target.as_ref().is_some_and(|t| t.id.is_empty()) {
                prefix6
            } else {
                0
            },
            ipv6_gateway: top(&gw6),
            ip_prefix_len: if target.as_ref().is_some_and(|t| t.id.is_empty()) {
                prefix
            } else {
                0
            },
            mac_address: top(&mac),
            networks,
            ..NetworkSettings::default()
        }
    }

    /// `GET /containers/json`'s `NetworkSettings.Networks`: inspect's, without aliases
    /// and links (as Docker lists them).
    pub fn summary_networks(&self, rec: &ContainerRecord) -> BTreeMap<String, EndpointSettings> {
        let mut networks = self.settings(rec).networks;
        for e in networks.values_mut() {
            e.aliases = None;
            e.links = None;
        }
        networks
    }

    /// `ps`'s `Ports`: the published ports, then the exposed ones not published.
    pub fn summary_ports(&self, rec: &ContainerRecord) -> Vec<berth_api::container::Port> {
        use berth_api::container::Port;
        let st = self.lock();
        let mappings = st
            .endpoints
            .primary(&rec.id)
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
