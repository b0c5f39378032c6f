//! A container's requested settings on a network (`EndpointsConfig` at create, the
//! body of `network connect`): aliases, links, static addresses and MAC, checked; what
//! Berth does not apply is refused.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use berth_api::EndpointSettings;

use super::{uses_bridge, NetworkService, PrimaryConfig, UserNetwork};
use crate::containers::record::ContainerRecord;
use crate::error::{ApiError, ApiResult};

impl NetworkService {
    /// Create's `NetworkingConfig.EndpointsConfig`: the settings on the network the
    /// container is created on (moby takes at most one, the one of `NetworkMode`).
    pub fn set_create_config(
        &self,
        rec: &ContainerRecord,
        configs: &std::collections::BTreeMap<String, EndpointSettings>,
    ) -> ApiResult<()> {
        // `Config.MacAddress` (before API 1.44) is the primary endpoint's MAC address
        let legacy_mac = rec
            .config
            .mac_address
            .as_deref()
            .filter(|m| !m.is_empty())
            .map(parse_mac)
            .transpose()?;
        if configs.len() > 1 {
            let names: Vec<&str> = configs.keys().map(String::as_str).collect();
            return Err(ApiError::invalid(format!(
                "Container cannot be connected to network endpoints: {}",
                names.join(", ")
            )));
        }
        let mode = rec.host_config.network_mode.as_str();
        let default_settings = EndpointSettings::default();
        let (name, settings) = match configs.iter().next() {
            Some((name, settings)) => (name.as_str(), settings),
            None if legacy_mac.is_some() => (mode, &default_settings),
            None => return Ok(()),
        };
        let EndpointAsk {
            aliases,
            links,
            ip,
            mac,
            driver_opts,
            ip6,
            link_local_ips,
        } = endpoint_request(settings)?;
        let mac = mac.or(legacy_mac);
        let default = matches!(name, "bridge" | "default" | "") && uses_bridge(rec);
        if name != mode && !default {
            return Err(ApiError::invalid(format!(
                "EndpointsConfig for network {name} does not match the network mode {mode}: not supported by Berth yet"
            )));
        }
        if default || matches!(mode, "host" | "none") || mode.starts_with("container:") {
            if !aliases.is_empty() {
                return Err(ApiError::invalid(
                    "network-scoped alias is supported only for containers in user defined networks",
                ));
            }
            if ip.is_some() || ip6.is_some() {
                return Err(ApiError::invalid(
                    "user specified IP address is supported on user defined networks only",
                ));
            }
            if !default && !link_local_ips.is_empty() {
                return Err(ApiError::invalid(format!(
                    "link-local addresses on network mode {mode} are not supported by Berth yet"
                )));
            }
            if !links.is_empty() {
                return Err(ApiError::invalid(
                    "links in an endpoint config are supported on user defined networks only; use HostConfig.Links on the default bridge",
                ));
            }
            if !default {
                if mac.is_some() {
                    return Err(ApiError::invalid(
                        "conflicting options: mac-address and the network mode",
                    ));
                }
                if !driver_opts.is_empty() {
                    return Err(ApiError::invalid(format!(
                        "endpoint driver options on network mode {mode} are not supported by Berth yet"
                    )));
                }
                return Ok(());
            }
        }
        let mut st = self.lock();
        if ip6.is_some() && !default {
            if let Some(n) = Self::find_network(&st, mode) {
                Self::check_ip6_allowed(n)?;
            }
        }
        let cfg = PrimaryConfig {
            aliases,
            requested_ip: ip,
            disconnected: false,
            requested_mac: mac,
            links,
            driver_opts,
            requested_ip6: ip6,
            link_local_ips,
        };
        self.persist_config(&mut st, &rec.id, cfg)
    }

    /// `--ip6` needs a network with an IPv6 pool (Docker's words); on one without
    /// `EnableIPv6` Docker keeps the request but gives no IPv6 address, and so does Berth.
    pub(super) fn check_ip6_allowed(n: &UserNetwork) -> ApiResult<()> {
        if n.subnet6.is_empty() {
            return Err(ApiError::invalid(
                "user specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        }
        Ok(())
    }
}

/// What an endpoint config asks for; what Berth does not apply is refused.
#[derive(Debug, Default)]
pub(super) struct EndpointAsk {
    pub(super) aliases: Vec<String>,
    /// `target:alias`.
    pub(super) links: Vec<String>,
    pub(super) ip: Option<Ipv4Addr>,
    pub(super) mac: Option<String>,
    pub(super) driver_opts: BTreeMap<String, String>,
    pub(super) ip6: Option<Ipv6Addr>,
    pub(super) link_local_ips: Vec<IpAddr>,
}

/// A MAC address as Go's `net.ParseMAC` takes the 48-bit forms Docker uses, lowercased.
fn parse_mac(mac: &str) -> ApiResult<String> {
    let octets: Vec<&str> = mac.split([':', '-']).collect();
    let valid = octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid {
        return Err(ApiError::invalid(format!("invalid MAC address {mac}")));
    }
    Ok(octets.join(":").to_ascii_lowercase())
}

pub(super) fn endpoint_request(s: &EndpointSettings) -> ApiResult<EndpointAsk> {
    let unsupported = |what: &str| {
        Err(ApiError::invalid(format!(
            "{what} is not supported by Berth yet"
        )))
    };
    let driver_opts = s.driver_opts.clone().unwrap_or_default();
    // the bridge driver reads its own keys from the endpoint options; the others it keeps
    if let Some(k) = driver_opts
        .keys()
        .find(|k| k.starts_with("com.docker.network."))
    {
        return unsupported(&format!("the endpoint driver option {k}"));
    }
    let (mut ip, mut ip6, mut link_local_ips) = (None, None, Vec::new());
    if let Some(ipam) = &s.ipam_config {
        if !ipam.ipv6_address.is_empty() {
            ip6 = Some(ipam.ipv6_address.parse::<Ipv6Addr>().map_err(|_| {
                ApiError::invalid(format!("invalid IPv6 address: {}", ipam.ipv6_address))
            })?);
        }
        link_local_ips = berth_net::ipam6::parse_link_local(&ipam.link_local_ips)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        if !ipam.ipv4_address.is_empty() {
            ip = Some(ipam.ipv4_address.parse::<Ipv4Addr>().map_err(|_| {
                ApiError::invalid(format!("invalid IPv4 address: {}", ipam.ipv4_address))
            })?);
        }
    }
    let mut links = Vec::new();
    for spec in s.links.iter().flatten() {
        let (target, alias) = berth_net::links::parse_link(spec);
        if target.is_empty() || alias.is_empty() {
            return Err(ApiError::invalid(format!("invalid link: {spec}")));
        }
        links.push(format!("{target}:{alias}"));
    }
    Ok(EndpointAsk {
        aliases: s.aliases.clone().unwrap_or_default(),
        links,
        ip,
        mac: (!s.mac_address.is_empty())
            .then(|| parse_mac(&s.mac_address))
            .transpose()?,
        driver_opts,
        ip6,
        link_local_ips,
    })
}
