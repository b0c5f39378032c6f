//! Endpoints: a container's place on its networks, set up before it starts (address,
//! veth into its namespace, published ports, `/etc` files), torn down when it stops, and
//! the extra networks of `network connect`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use berth_net::ipam::{self};
use berth_net::ports::{self};
use berth_net::{files, link};
use berth_runtime::{MountSpec, NetworkMode};

use super::{
    db_err, net_err, uses_bridge, Attached, EndpointRecord, ExtraEndpoint, NetworkService, State,
    UserNetwork, NET_ENDPOINTS,
};
use crate::containers::record::ContainerRecord;
use crate::error::{ApiError, ApiResult};

impl NetworkService {
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
        // `--add-host name:ip` first, then the links' names.
        let mut extra: Vec<(String, String)> = rec
            .host_config
            .extra_hosts
            .iter()
            .filter_map(|h| h.split_once(':'))
            .map(|(name, ip)| (ip.to_string(), name.to_string()))
            .collect();
        extra.extend_from_slice(extra_hosts);
        let contents = [
            ("hosts", "/etc/hosts", files::hosts(fqdn, ip, &extra)),
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
}
