//! The daemon's defaults for containers (dockerd `--dns`, `--dns-search`, `--dns-opt`,
//! `--host-gateway-ip`, `--init`, `--default-ulimit`, or the daemon.json keys `dns`,
//! `dns-search`, `dns-opts`, `host-gateway-ip`, `init`, `default-ulimits`).
//!
//! As in dockerd they apply when the container is started and never show in its
//! `HostConfig`: each DNS setting when the container has none of its own, `init` when
//! the container's `Init` is null, a default ulimit when the container sets no limit of
//! that name.

use std::net::IpAddr;

use berth_api::{HostConfig, Ulimit};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerDefaults {
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// What `--add-host NAME:host-gateway` resolves to (default: the bridge's gateway).
    pub host_gateway_ip: Option<IpAddr>,
    pub init: bool,
    pub ulimits: Vec<Ulimit>,
}

impl ContainerDefaults {
    /// The DNS servers, search domains and options for `resolv.conf`.
    pub fn dns_settings(&self, hc: &HostConfig) -> berth_net::files::DnsSettings {
        let pick = |mine: &[String], daemon: &[String]| {
            if mine.is_empty() {
                daemon.to_vec()
            } else {
                mine.to_vec()
            }
        };
        berth_net::files::DnsSettings {
            servers: pick(&hc.dns, &self.dns),
            search: pick(&hc.dns_search, &self.dns_search),
            options: pick(&hc.dns_options, &self.dns_options),
        }
    }

    /// Whether the container runs under the init (`--init`, or the daemon's `init`).
    pub fn init(&self, hc: &HostConfig) -> bool {
        hc.init.unwrap_or(self.init)
    }

    /// The container's ulimits plus the daemon's for names it does not set.
    pub fn ulimits(&self, hc: &HostConfig) -> Vec<Ulimit> {
        let mut out = hc.ulimits.clone();
        for d in &self.ulimits {
            if !out.iter().any(|u| u.name == d.name) {
                out.push(d.clone());
            }
        }
        out
    }

    /// dockerd's checks at start.
    pub fn validate(&self) -> Result<(), String> {
        for d in &self.dns {
            if d.parse::<IpAddr>().is_err() {
                return Err(format!("{d} is not an ip address"));
            }
        }
        for word in self.dns_search.iter().chain(&self.dns_options) {
            if word.is_empty() || word.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("{word:?} is not a valid domain"));
            }
        }
        for u in &self.ulimits {
            check_ulimit(u)?;
        }
        Ok(())
    }
}

fn check_ulimit(u: &Ulimit) -> Result<(), String> {
    if berth_runtime::rlimits::resource(&u.name).is_none() {
        return Err(format!("invalid ulimit type: {}", u.name));
    }
    if u.hard != -1 && (u.soft > u.hard || u.soft == -1) {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {} > {}",
            u.soft, u.hard
        ));
    }
    Ok(())
}

/// go-units `ParseUlimit`: `name=soft[:hard]` (one value sets both).
pub fn parse_ulimit(s: &str) -> Result<Ulimit, String> {
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = match limits.split_once(':') {
        Some((soft, hard)) => (soft, hard),
        None => (limits, limits),
    };
    let num = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| format!("invalid ulimit argument: {s}"))
    };
    let u = Ulimit {
        name: name.to_string(),
        soft: num(soft)?,
        hard: num(hard)?,
    };
    check_ulimit(&u)?;
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_settings_win_per_field() {
        let d = ContainerDefaults {
            dns: vec!["10.0.0.2".into()],
            dns_search: vec!["corp.example".into()],
            init: true,
            ulimits: vec![
                parse_ulimit("nofile=100:200").unwrap(),
                parse_ulimit("nproc=50").unwrap(),
            ],
            ..Default::default()
        };
        let mut hc = HostConfig {
            dns: vec!["1.1.1.1".into()],
            ..Default::default()
        };
        let s = d.dns_settings(&hc);
        assert_eq!(s.servers, ["1.1.1.1"]);
        assert_eq!(s.search, ["corp.example"]);
        assert!(s.options.is_empty());
        assert!(d.init(&hc));
        hc.init = Some(false);
        assert!(!d.init(&hc));
        hc.ulimits = vec![parse_ulimit("nofile=5").unwrap()];
        let u = d.ulimits(&hc);
        assert_eq!(u.len(), 2);
        assert_eq!((u[0].name.as_str(), u[0].soft), ("nofile", 5));
        assert_eq!((u[1].name.as_str(), u[1].hard), ("nproc", 50));
    }

    #[test]
    fn ulimits_parse_as_go_units() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(
            parse_ulimit("nofile").unwrap_err(),
            "invalid ulimit argument: nofile"
        );
        assert_eq!(
            parse_ulimit("nofile=x").unwrap_err(),
            "invalid ulimit argument: nofile=x"
        );
        assert_eq!(
            parse_ulimit("bogus=1").unwrap_err(),
            "invalid ulimit type: bogus"
        );
        assert_eq!(
            parse_ulimit("nofile=20:10").unwrap_err(),
            "ulimit soft limit must be less than or equal to hard limit: 20 > 10"
        );
        let bad = ContainerDefaults {
            dns: vec!["nope".into()],
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err(), "nope is not an ip address");
    }
}
