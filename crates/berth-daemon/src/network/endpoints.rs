//! Endpoints: a container's place on its networks, set up before it starts (address,
//! veth into its namespace, published ports, `/etc` files), torn down when it stops, and
//! the extra networks of `network connect`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use berth_net::endpoint::PlugRequest;
use berth_net::files;
use berth_net::ports;
use berth_runtime::{MountSpec, NetworkMode};

use berth_api::EndpointSettings;

use super::endpoint_settings::{endpoint_request, EndpointAsk};
use super::{net_err, uses_bridge, Attached, NetworkService, PrimaryConfig};
use crate::containers::record::ContainerRecord;
use crate::error::{ApiError, ApiResult};
use crate::schema::NET_PRIMARY_CONFIGS;

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
        // `host-gateway` is `--host-gateway-ip`, else the default bridge's gateway, as Docker's.
        let gateway = match self.defaults.host_gateway_ip {
            Some(ip) => ip.to_string(),
            None => self.subnet.gateway().to_string(),
        };
        let mut extra: Vec<(String, String)> = rec
            .host_config
            .extra_hosts
            .iter()
            .filter_map(|h| h.split_once(':'))
            .map(|(name, ip)| {
                let ip = if ip == "host-gateway" {
                    gateway.as_str()
                } else {
                    ip
                };
                (ip.to_string(), name.to_string())
            })
            .collect();
        let hc = &rec.host_config;
        let settings = self.defaults.dns_settings(hc);
        extra.extend_from_slice(extra_hosts);
        let contents = [
            ("hosts", "/etc/hosts", files::hosts(fqdn, ip, &extra)),
            ("hostname", "/etc/hostname", files::hostname(fqdn)),
            (
                "resolv.conf",
                "/etc/resolv.conf",
                match dns {
                    Some(server) => files::resolv_conf_with_custom(&host_resolv, server, &settings),
                    None => files::resolv_conf_custom(&host_resolv, &settings),
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
                ..Default::default()
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
            let ns = self.lock().endpoints.netns_path(&other.id);
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
                ..Default::default()
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
                // A CRI pod on the node's network still has its own DNS config, hosts and
                // hostname files, which its containers share (as containerd gives them).
                let mounts = if rec.internal.pause {
                    self.write_files(rec, None, None, &[])?
                } else {
                    Vec::new()
                };
                return Ok(Attached {
                    network: NetworkMode::Host,
                    mounts,
                    env: Vec::new(),
                });
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
                .primary(&target.id)
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
        let t = berth_net::timing::Step::new("net.lock_wait");
        let mut guard = self.lock();
        drop(t);
        let _held = berth_net::timing::Step::new("net.lock_held");
        let st = &mut *guard;
        let mut own_dns = false;
        let target = if uses_bridge(rec) {
            self.default_target()
        } else {
            match Self::find_network(st, mode) {
                Some(n) => {
                    own_dns = n.labels.contains_key(super::OWN_DNS_LABEL);
                    Self::user_target(n)?
                }
                None => return Err(ApiError::not_found(format!("network {mode} not found"))),
            }
        };
        let mut cfg = st.endpoints.config(id);
        if !target.id.is_empty()
            && !cfg.disconnected
            && !cfg.aliases.iter().any(|a| a == rec.short_id())
        {
            // Docker adds the short ID to the aliases on a user network.
            cfg.aliases.push(rec.short_id().to_string());
            self.persist_config(st, id, cfg.clone())?;
        }
        let request = PlugRequest {
            container_id: id,
            name: rec.name.trim_start_matches('/'),
            target: &target,
            ports: &requests,
            ip: cfg.requested_ip,
            mac: cfg.requested_mac.as_deref(),
            connected: !cfg.disconnected,
            ip6: cfg.requested_ip6,
            link_local: &cfg.link_local_ips,
        };
        let t = berth_net::timing::Step::new("net.plug");
        let plugged = st.endpoints.plug(&request).map_err(net_err)?;
        drop(t);
        let connected = !cfg.disconnected;
        // on a user network, the embedded resolver is the only nameserver, as Docker's
        // (but not on a network of CRI pods, whose resolv.conf is the kubelet's DNS config)
        let dns = (!target.id.is_empty() && connected && !own_dns)
            .then_some(berth_net::resolver::RESOLVER_IP);
        let written = self.write_files(
            rec,
            connected.then_some(plugged.record.ip),
            dns,
            &link_hosts,
        );
        let mounts = match written {
            Ok(mounts) => mounts,
            Err(e) => {
                st.endpoints.unplug_links(id);
                return Err(e);
            }
        };
        let record = plugged.record.clone();
        let networks = &st.networks;
        let target_of = |nid: &str| networks.get(nid).and_then(|n| Self::user_target(n).ok());
        st.endpoints.commit(id, plugged, &target_of);
        if dns.is_some() {
            self.start_resolver(st, id);
        }
        let ns = st.endpoints.netns_path(id);
        // Its published ports' elements, under the state lock (which orders every change
        // of the table, so concurrent starts and stops never lose each other's): one
        // small transaction (see `port_rules`).
        let ported = self.add_ports(st, &record.network, record.ip, &record.ports);
        drop(_held);
        drop(guard);
        // Recorded off the state lock: other starts and stops go on during this commit's
        // fsync. The start fails (and is undone) unless both are done.
        let t = berth_net::timing::Step::new("net.persist");
        let done = ported.and_then(|()| self.persist(id, Some(&record)));
        drop(t);
        if let Err(e) = done {
            self.detach(id);
            return Err(e);
        }
        Ok(Attached {
            network: NetworkMode::Join(ns),
            mounts,
            env: link_env,
        })
    }

    /// Tears down what [`Self::attach`] made (the address stays allocated). Idempotent:
    /// returns once its published ports' elements are gone, also when another detach of
    /// it (its exit's, for an `rm -f`) queued their deletes.
    pub fn detach(&self, id: &str) {
        let mut st = self.lock();
        st.resolvers.remove(id);
        let unplugged = st.endpoints.unplug(id);
        if let Some((ep, ports)) = &unplugged {
            self.queue_port_deletes(&st, &ep.network, ep.ip, ports);
        }
        drop(st);
        // off the state lock, as in attach; concurrent stops share one transaction
        self.flush_port_deletes();
        if let Some((ep, _)) = unplugged {
            if let Err(e) = self.persist(id, Some(&ep)) {
                tracing::warn!(id, error = %e, "persisting detached endpoint");
            }
        }
    }

    /// Detaches and frees the container's addresses (`rm`).
    pub fn release(&self, id: &str) {
        self.detach(id);
        let mut st = self.lock();
        let had_config = st.endpoints.config(id) != PrimaryConfig::default();
        let (primary, extras) = st.endpoints.forget(id);
        if had_config {
            if let Err(e) = NET_PRIMARY_CONFIGS.delete(&self.db, id) {
                tracing::warn!(id, error = %e, "deleting endpoint config");
            }
        }
        if primary {
            if let Err(e) = self.persist(id, None) {
                tracing::warn!(id, error = %e, "deleting endpoint");
            }
        }
        for x in extras {
            if let Err(e) = self.persist_extra(id, &x.network, None) {
                tracing::warn!(id, error = %e, "deleting endpoint");
            }
        }
    }

    /// `POST /networks/{id}/connect`: adds a user network to a container (now, when it
    /// runs, else at its next start), or puts it back on the one it was created on.
    pub fn connect(
        &self,
        rec: &ContainerRecord,
        network: &str,
        settings: &EndpointSettings,
    ) -> ApiResult<()> {
        let EndpointAsk {
            mut aliases,
            links,
            ip,
            mac,
            driver_opts,
            ip6,
            link_local_ips,
        } = endpoint_request(settings)?;
        let mut guard = self.lock();
        let st = &mut *guard;
        Self::check_unambiguous(st, network, false)?;
        let n = match Self::find_network(st, network) {
            Some(n) => n.clone(),
            None if matches!(network, "bridge" | "host" | "none") => {
                return Err(ApiError::not_implemented(format!(
                    "connecting to the {network} network is not supported by Berth yet"
                )))
            }
            None => return Err(ApiError::not_found(format!("network {network} not found"))),
        };
        if !aliases.iter().any(|a| a == rec.short_id()) {
            aliases.push(rec.short_id().to_string());
        }
        let cname = rec.name.trim_start_matches('/');
        let primary = Self::find_network(st, &rec.host_config.network_mode).map(|p| p.id.clone());
        let on_primary = primary.as_deref() == Some(n.id.as_str());
        let cfg = st.endpoints.config(&rec.id);
        let connected = st
            .endpoints
            .extras_of(&rec.id)
            .iter()
            .any(|x| x.network == n.id);
        if (on_primary && !cfg.disconnected) || connected {
            return Err(ApiError::new(
                berth_api::ErrorKind::Forbidden,
                format!(
                    "endpoint with name {cname} already exists in network {}",
                    n.name
                ),
            ));
        }
        if ip6.is_some() {
            Self::check_ip6_allowed(&n)?;
        }
        let t = Self::user_target(&n)?;
        if on_primary {
            let cfg = PrimaryConfig {
                aliases,
                requested_ip: ip,
                disconnected: false,
                requested_mac: mac.clone(),
                links,
                driver_opts,
                requested_ip6: ip6,
                link_local_ips: link_local_ips.clone(),
            };
            let up = st.endpoints.is_up(&rec.id);
            if up {
                let ep = st
                    .endpoints
                    .replug_primary(&rec.id, &t, ip, mac.as_deref(), ip6, &link_local_ips)
                    .map_err(net_err)?;
                self.persist(&rec.id, Some(&ep))?;
            }
            self.persist_config(st, &rec.id, cfg)?;
            if up {
                self.emit_network_event("connect", &n.id, &n.name, "bridge", Some(&rec.id));
            }
            return Ok(());
        }
        let mut x = st
            .endpoints
            .new_extra(&rec.id, &t, aliases, ip, ip6)
            .map_err(net_err)?;
        x.link_local_ips = link_local_ips;
        if let Some(mac) = mac {
            x.mac = mac.clone();
            x.requested_mac = Some(mac);
        }
        x.driver_opts = driver_opts;
        x.links = links;
        if st.endpoints.is_up(&rec.id) {
            st.endpoints.plug_extra(&rec.id, &x, &t).map_err(net_err)?;
        }
        if let Err(e) = self.persist_extra(&rec.id, &n.id, Some(&x)) {
            st.endpoints.drop_extra_link(&rec.id, &x);
            return Err(e);
        }
        st.endpoints.add_extra(&rec.id, x);
        if st.endpoints.is_up(&rec.id) {
            self.emit_network_event("connect", &n.id, &n.name, "bridge", Some(&rec.id));
        }
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`, from an extra network or the one the container
    /// was created on.
    pub fn disconnect(&self, rec: &ContainerRecord, network: &str) -> ApiResult<()> {
        let mut guard = self.lock();
        let st = &mut *guard;
        Self::check_unambiguous(st, network, false)?;
        let Some(n) = Self::find_network(st, network).cloned() else {
            return Err(ApiError::not_found(format!("network {network} not found")));
        };
        let primary = Self::find_network(st, &rec.host_config.network_mode).map(|p| p.id.clone());
        let mut cfg = st.endpoints.config(&rec.id);
        if primary.as_deref() == Some(n.id.as_str()) && !cfg.disconnected {
            if st.endpoints.is_up(&rec.id) {
                if let Some(ep) = st.endpoints.unplug_primary(&rec.id) {
                    self.persist(&rec.id, Some(&ep))?;
                }
            }
            cfg.disconnected = true;
            cfg.aliases.clear();
            cfg.requested_ip = None;
            cfg.requested_mac = None;
            cfg.links.clear();
            cfg.driver_opts.clear();
            cfg.requested_ip6 = None;
            cfg.link_local_ips.clear();
            self.persist_config(st, &rec.id, cfg)?;
            self.sync_rules(st)?;
            self.emit_network_event("disconnect", &n.id, &n.name, "bridge", Some(&rec.id));
            return Ok(());
        }
        if st.endpoints.remove_extra(&rec.id, &n.id).is_none() {
            return Err(ApiError::new(
                berth_api::ErrorKind::Forbidden,
                format!(
                    "container {} is not connected to the network {}",
                    rec.id, n.name
                ),
            ));
        }
        self.persist_extra(&rec.id, &n.id, None)?;
        self.emit_network_event("disconnect", &n.id, &n.name, "bridge", Some(&rec.id));
        Ok(())
    }

    /// At daemon start: re-opens the port proxies of running containers, tears down what
    /// stopped ones left, and rebuilds the nftables table from the metadata.
    /// At start-up: tears down and forgets the network of every container that has no
    /// record (a daemon killed during create or `rm` left its endpoint, or its namespace).
    pub fn forget_unknown(&self, known: &std::collections::HashSet<String>) {
        let ids = self.lock().endpoints.container_ids();
        for id in ids.into_iter().filter(|id| !known.contains(id)) {
            tracing::warn!(
                id,
                "removing the network endpoint of a container with no record"
            );
            self.release(&id);
        }
    }

    pub fn restore(&self, running: &[String], stopped: &[String]) {
        for id in stopped {
            self.detach(id);
        }
        let mut st = self.lock();
        for id in running {
            st.endpoints.reopen(id);
            // the resolver inside a running container on a user network comes back
            let on_user_net = st
                .endpoints
                .primary(id)
                .is_some_and(|e| !e.network.is_empty());
            if self.enabled && on_user_net && !st.endpoints.config(id).disconnected {
                self.start_resolver(&mut st, id);
            }
        }
        if let Err(e) = self.sync_rules(&st) {
            tracing::error!(error = %e, "rebuilding nftables rules");
        }
    }
}
