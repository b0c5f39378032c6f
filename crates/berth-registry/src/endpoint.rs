//! Where a registry domain is reached: Docker Hub's real host and mirrors, and whether a
//! host may be spoken to without TLS verification / over plain HTTP.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::hosts::Purpose;
use crate::RegistryError;

/// Docker Hub's domain in references.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// Where Docker Hub's registry API lives.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";

/// Daemon settings for registries (daemon.json `registry-mirrors`, `insecure-registries`).
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// Docker Hub mirrors, URLs like `http://127.0.0.1:5000`.
    pub mirrors: Vec<String>,
    /// `host[:port]` or CIDR, as dockerd's `--insecure-registry`.
    pub insecure_registries: Vec<String>,
    /// Like `/etc/docker/certs.d`: `<host[:port]>/*.crt` are extra CAs for that host.
    pub certs_dir: Option<PathBuf>,
    /// Where `docker.io` names go when no mirror serves them; `None` is Docker Hub itself
    /// (`https://registry-1.docker.io`). Air-gapped hosts and tests point it elsewhere.
    pub docker_hub: Option<String>,
    /// containerd's `hosts.toml` directory (`<dir>/<host>/hosts.toml`): mirrors and the
    /// upstream for any registry host, read at every pull ([`crate::hosts`]).
    pub hosts_dir: Option<PathBuf>,
}

/// How a host is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Security {
    /// HTTPS with certificate verification only.
    Secure,
    /// HTTPS without verification first, then plain HTTP (dockerd's insecure registries).
    Insecure,
}

/// One place to send requests for a repository's domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` as in URLs.
    pub host: String,
    /// A scheme fixed by configuration (a mirror URL's), else probed.
    pub scheme: Option<String>,
    /// A path prefix of a mirror URL (usually empty), without trailing `/`.
    pub prefix: String,
    pub security: Security,
    pub mirror: bool,
}

/// A CIDR block of `--insecure-registry`.
#[derive(Debug, Clone, Copy)]
struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (a, b) = s.split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        let bits: u8 = b.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Cidr { addr, bits })
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.bits)
                };
                u32::from(net) & mask == u32::from(*ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.bits)
                };
                u128::from(net) & mask == u128::from(*ip) & mask
            }
            _ => false,
        }
    }
}

/// The parsed registry settings.
#[derive(Debug, Clone)]
pub struct Endpoints {
    mirrors: Vec<Endpoint>,
    /// Docker Hub's registry, or what `RegistryConfig::docker_hub` puts in its place.
    hub: Endpoint,
    insecure_hosts: Vec<String>,
    insecure_cidrs: Vec<Cidr>,
    hosts_dir: Option<PathBuf>,
}

/// Splits `host[:port]` into host (brackets removed) and port.
pub(crate) fn split_host_port(hostport: &str) -> (&str, Option<&str>) {
    if let Some(rest) = hostport.strip_prefix('[') {
        if let Some((h, after)) = rest.split_once(']') {
            return (h, after.strip_prefix(':'));
        }
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (hostport, None),
    }
}

impl Endpoints {
    /// Validates the settings as dockerd does at start-up.
    pub fn new(config: &RegistryConfig) -> Result<Endpoints, RegistryError> {
        let mut insecure_hosts = Vec::new();
        let mut insecure_cidrs = Vec::new();
        for entry in &config.insecure_registries {
            let e = entry.trim();
            let e = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"))
                .unwrap_or(e);
            let e = e.trim_end_matches('/');
            if e.contains('/') {
                let cidr = Cidr::parse(e).ok_or_else(|| {
                    RegistryError::InvalidArgument(format!(
                        "insecure registry {entry} is not valid: invalid CIDR"
                    ))
                })?;
                insecure_cidrs.push(cidr);
            } else if !e.is_empty() {
                insecure_hosts.push(e.to_lowercase());
            }
        }
        let mirrors = config
            .mirrors
            .iter()
            .map(|m| endpoint_from_url(m, "mirror", true))
            .collect::<Result<Vec<_>, _>>()?;
        let hub = match &config.docker_hub {
            Some(url) => endpoint_from_url(url, "Docker Hub URL", false)?,
            None => Endpoint {
                host: DOCKER_HUB_REGISTRY.to_string(),
                scheme: None,
                prefix: String::new(),
                security: Security::Secure,
                mirror: false,
            },
        };
        let mut me = Endpoints {
            mirrors,
            hub,
            insecure_hosts,
            insecure_cidrs,
            hosts_dir: config.hosts_dir.clone(),
        };
        let secs: Vec<Security> = me.mirrors.iter().map(|m| me.security_of(&m.host)).collect();
        for (m, s) in me.mirrors.iter_mut().zip(secs) {
            m.security = s;
        }
        me.hub.security = me.security_of(&me.hub.host);
        Ok(me)
    }

    /// dockerd's `isSecureIndex`: localhost, loopback and configured hosts/CIDRs are
    /// insecure (HTTP allowed); everything else is verified HTTPS.
    pub fn security_of(&self, hostport: &str) -> Security {
        let hostport_lc = hostport.to_lowercase();
        if self.insecure_hosts.contains(&hostport_lc) {
            return Security::Insecure;
        }
        let (host, _) = split_host_port(&hostport_lc);
        if host == "localhost" || host.ends_with(".localhost") {
            return Security::Insecure;
        }
        if self.insecure_hosts.iter().any(|h| h == host) {
            return Security::Insecure;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) if self.ips_allow_insecure(&[ip]) => Security::Insecure,
            _ => Security::Secure,
        }
    }

    /// True when one of a host's addresses is loopback or in an insecure CIDR (dockerd
    /// resolves registry host names for this check; the caller does the lookup).
    pub fn ips_allow_insecure(&self, ips: &[IpAddr]) -> bool {
        ips.iter()
            .any(|ip| ip.is_loopback() || self.insecure_cidrs.iter().any(|c| c.contains(ip)))
    }

    /// Endpoints to pull `domain`'s repositories from, in order: Docker Hub's mirrors
    /// (pulls only), then the registry itself.
    pub fn for_domain(&self, domain: &str, with_mirrors: bool) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if domain == DOCKER_HUB_DOMAIN && with_mirrors {
            out.extend(self.mirrors.iter().cloned());
        }
        if domain == DOCKER_HUB_DOMAIN {
            out.push(self.hub.clone());
        } else {
            out.push(Endpoint {
                host: domain.to_string(),
                scheme: None,
                prefix: String::new(),
                security: self.security_of(domain),
                mirror: false,
            });
        }
        out
    }
}

impl Endpoints {
    /// Endpoints for `domain`'s repositories for `purpose`, in order: the mirrors of its
    /// `hosts.toml` that serve the purpose, then its upstream (the file's `server`, else
    /// what [`Self::for_domain`] gives: Docker Hub's mirrors and Hub for `docker.io`).
    /// Without a `hosts.toml` this is [`Self::for_domain`].
    pub fn endpoints_for(
        &self,
        domain: &str,
        purpose: Purpose,
    ) -> Result<Vec<Endpoint>, RegistryError> {
        let with_mirrors = purpose != Purpose::Push;
        let file = match &self.hosts_dir {
            Some(dir) => crate::hosts::load(dir, domain)?,
            None => None,
        };
        let Some(file) = file else {
            return Ok(self.for_domain(domain, with_mirrors));
        };
        let mut out = Vec::new();
        for host in file.hosts.iter().filter(|h| h.serves(purpose)) {
            // A push host gets the pusher's credentials; pull mirrors get none.
            let mut ep = endpoint_from_url(&host.url, "host", purpose != Purpose::Push)?;
            ep.prefix = crate::hosts::api_prefix(&ep.prefix);
            ep.security = if host.skip_verify {
                Security::Insecure
            } else {
                self.security_of(&ep.host)
            };
            out.push(ep);
        }
        match &file.server {
            Some(server) => {
                let mut ep = endpoint_from_url(server, "server", false)?;
                ep.prefix = crate::hosts::api_prefix(&ep.prefix);
                ep.security = self.security_of(&ep.host);
                out.push(ep);
            }
            None => out.extend(self.for_domain(domain, with_mirrors)),
        }
        Ok(out)
    }
}

/// An endpoint from a configured URL (`http://127.0.0.1:5000`; no scheme means https).
fn endpoint_from_url(raw: &str, what: &str, mirror: bool) -> Result<Endpoint, RegistryError> {
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| RegistryError::InvalidArgument(format!("invalid {what}: {raw}: {e}")))?;
    let Some(host) = url
        .host_str()
        .filter(|_| matches!(url.scheme(), "http" | "https"))
    else {
        return Err(RegistryError::InvalidArgument(format!(
            "invalid {what}: unsupported scheme \"{}\" in \"{raw}\"",
            url.scheme()
        )));
    };
    let host = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    Ok(Endpoint {
        security: Security::Secure, // decided once all insecure hosts are known
        host,
        scheme: Some(url.scheme().to_string()),
        prefix: url.path().trim_end_matches('/').to_string(),
        mirror,
    })
}

/// The registry host a `docker login` server address names: empty, `docker.io`,
/// `index.docker.io` and `https://index.docker.io/v1/` are Docker Hub.
pub fn login_domain(server_address: &str) -> String {
    let s = server_address.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_lowercase();
    match host.as_str() {
        ""
        | "docker.io"
        | "index.docker.io"
        | "registry-1.docker.io"
        | "registry.hub.docker.com" => DOCKER_HUB_DOMAIN.to_string(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(insecure: &[&str], mirrors: &[&str]) -> Endpoints {
        Endpoints::new(&RegistryConfig {
            mirrors: mirrors.iter().map(|s| s.to_string()).collect(),
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn insecure_rules() {
        let e = eps(&["myreg:5000", "10.1.0.0/16", "plain.example"], &[]);
        assert_eq!(e.security_of("localhost:5000"), Security::Insecure);
        assert_eq!(e.security_of("127.0.0.1:5000"), Security::Insecure);
        assert_eq!(e.security_of("127.3.2.1"), Security::Insecure);
        assert_eq!(e.security_of("[::1]:5000"), Security::Insecure);
        assert_eq!(e.security_of("myreg:5000"), Security::Insecure);
        assert_eq!(e.security_of("myreg:5001"), Security::Secure);
        assert_eq!(e.security_of("plain.example:443"), Security::Insecure);
        assert_eq!(e.security_of("10.1.200.3:5000"), Security::Insecure);
        assert_eq!(e.security_of("10.2.0.1:5000"), Security::Secure);
        assert_eq!(e.security_of("registry-1.docker.io"), Security::Secure);
        assert!(Endpoints::new(&RegistryConfig {
            insecure_registries: vec!["10.0.0.0/99".into()],
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn docker_hub_can_be_replaced() {
        let e = Endpoints::new(&RegistryConfig {
            docker_hub: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        })
        .unwrap();
        let hub = e.for_domain("docker.io", true);
        assert_eq!(hub.len(), 1);
        assert_eq!(
            (hub[0].host.as_str(), hub[0].scheme.as_deref()),
            ("127.0.0.1:9", Some("http"))
        );
        assert_eq!(e.for_domain("quay.io", true)[0].host, "quay.io");
        assert!(Endpoints::new(&RegistryConfig {
            docker_hub: Some("ftp://x".into()),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn docker_hub_and_mirrors() {
        let e = eps(&[], &["http://127.0.0.1:5000", "https://mirror.example/"]);
        let hub = e.for_domain("docker.io", true);
        assert_eq!(hub.len(), 3);
        assert_eq!(hub[0].host, "127.0.0.1:5000");
        assert_eq!(hub[0].scheme.as_deref(), Some("http"));
        assert!(hub[0].mirror);
        assert_eq!(hub[1].host, "mirror.example");
        assert_eq!(hub[1].security, Security::Secure);
        assert_eq!(hub[2].host, "registry-1.docker.io");
        assert!(!hub[2].mirror);
        assert_eq!(e.for_domain("docker.io", false).len(), 1);
        let other = e.for_domain("localhost:5000", true);
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].security, Security::Insecure);
        assert!(Endpoints::new(&RegistryConfig {
            mirrors: vec!["ftp://x".into()],
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn login_addresses() {
        assert_eq!(login_domain(""), "docker.io");
        assert_eq!(login_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_domain("docker.io"), "docker.io");
        assert_eq!(login_domain("localhost:5000"), "localhost:5000");
        assert_eq!(login_domain("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
    }
}
