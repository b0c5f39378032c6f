//! Plugging a container into its networks and out again: the primary endpoint's address,
//! namespace, veth and port proxies, the extra endpoints of `network connect`, and the
//! undo of each.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    extra_veth, host_veth, new_endpoint_id, EndpointRecord, EndpointTable, ExtraEndpoint,
    PlugRequest, Plugged, Target,
};
use crate::ports::{PortMapping, PortRequest};
use crate::{ipam, link, proxy, NetError, Result};

impl EndpointTable {
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
        let endpoint = self.primary_link(target, &veth, &ep, req.link_local);
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

    /// The primary endpoint `ep`'s `eth0` on `target` behind host veth `veth`, with the
    /// network's default routes (what [`Self::plug`] and [`Self::replug_primary`] attach).
    fn primary_link<'a>(
        &self,
        target: &'a Target,
        veth: &'a str,
        ep: &'a EndpointRecord,
        link_local: &'a [IpAddr],
    ) -> link::Endpoint<'a> {
        let (ip6, gateway6) = target.v6_of(ep.ip6);
        link::Endpoint {
            bridge: &target.bridge,
            host_veth: veth,
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
        }
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
        let endpoint = self.primary_link(target, &veth, &ep, link_local);
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
