//! Published ports: Docker's `PortBindings` (and `-P` over `ExposedPorts`) turned into
//! concrete requests, and the mappings the daemon reports in `NetworkSettings.Ports`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_api::container::PortBinding;
use serde::{Deserialize, Serialize};

use crate::{NetError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One port to publish, before a host port is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: Proto,
    pub container_port: u16,
    /// Host address to bind (`0.0.0.0` for all).
    pub host_ip: Ipv4Addr,
    /// Candidate host ports, first free wins; `None` = any free port.
    pub host_ports: Option<(u16, u16)>,
}

/// A published port as set up: what `NetworkSettings.Ports` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub proto: Proto,
    pub container_port: u16,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}

fn parse_range(s: &str, what: &str) -> Result<(u16, u16)> {
    let bad = || NetError::Invalid(format!("invalid {what}: {s}"));
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 && what == "containerPort" || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// `80/tcp`, `53/udp`, `8000-8002` → (proto, first, last).
pub fn parse_port_key(key: &str) -> Result<(Proto, u16, u16)> {
    let (ports, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return Err(NetError::Invalid(format!("invalid proto: {proto}"))),
    };
    let (a, b) = parse_range(ports, "containerPort")?;
    Ok((proto, a, b))
}

/// The requests for `HostConfig.PortBindings`, plus every port of `exposed` not bound
/// already when `publish_all` (`-P`): those get any free host port.
pub fn requests(
    bindings: &BTreeMap<String, Option<Vec<PortBinding>>>,
    exposed: Option<&BTreeMap<String, serde_json::Value>>,
    publish_all: bool,
) -> Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    for (key, list) in bindings {
        let (proto, first, last) = parse_port_key(key)?;
        for b in list.iter().flatten() {
            let host_ip = if b.host_ip.is_empty() {
                Ipv4Addr::UNSPECIFIED
            } else {
                b.host_ip
                    .parse()
                    .map_err(|_| NetError::Invalid(format!("invalid IP address: {}", b.host_ip)))?
            };
            let host = if b.host_port.is_empty() {
                None
            } else {
                Some(parse_range(&b.host_port, "hostPort")?)
            };
            let count = last - first;
            for (i, port) in (first..=last).enumerate() {
                let host_ports = match host {
                    None => None,
                    // equal-length ranges pair up; a single container port takes the first
                    // free port of a host range
                    Some((h0, h1)) if h1 - h0 == count && count > 0 => {
                        Some((h0 + i as u16, h0 + i as u16))
                    }
                    Some((h0, h1)) if count == 0 => Some((h0, h1)),
                    Some(_) => {
                        return Err(NetError::Invalid(format!(
                            "invalid ranges specified for container and host Ports: {key} and {}",
                            b.host_port
                        )))
                    }
                };
                out.push(PortRequest {
                    proto,
                    container_port: port,
                    host_ip,
                    host_ports,
                });
            }
        }
    }
    if publish_all {
        for key in exposed.into_iter().flat_map(|e| e.keys()) {
            let (proto, first, last) = parse_port_key(key)?;
            for port in first..=last {
                if !out
                    .iter()
                    .any(|r| r.proto == proto && r.container_port == port)
                {
                    out.push(PortRequest {
                        proto,
                        container_port: port,
                        host_ip: Ipv4Addr::UNSPECIFIED,
                        host_ports: None,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Docker's `NetworkSettings.Ports`: every exposed port as a key, with its host bindings
/// or `null`.
pub fn ports_json(
    exposed: Option<&BTreeMap<String, serde_json::Value>>,
    mappings: &[PortMapping],
) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for key in exposed.into_iter().flat_map(|e| e.keys()) {
        if let Ok((proto, first, last)) = parse_port_key(key) {
            for p in first..=last {
                map.insert(format!("{p}/{}", proto.as_str()), serde_json::Value::Null);
            }
        }
    }
    for m in mappings {
        let key = format!("{}/{}", m.container_port, m.proto.as_str());
        let entry = map.entry(key).or_insert(serde_json::Value::Null);
        if entry.is_null() {
            *entry = serde_json::Value::Array(Vec::new());
        }
        if let Some(list) = entry.as_array_mut() {
            list.push(serde_json::json!({"HostIp": m.host_ip.to_string(), "HostPort": m.host_port.to_string()}));
        }
    }
    serde_json::Value::Object(map)
}

/// Docker's error for a host port already in use.
pub fn port_taken(host_ip: Ipv4Addr, port: u16) -> NetError {
    NetError::Conflict(format!(
        "Bind for {host_ip}:{port} failed: port is already allocated"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    #[test]
    fn every_publish_form() {
        let mut m = BTreeMap::new();
        m.insert(
            "80/tcp".to_string(),
            Some(vec![
                b("", "8080"),
                b("127.0.0.1", "9090"),
                b("127.0.0.1", ""),
            ]),
        );
        m.insert("53/udp".to_string(), Some(vec![b("", "")]));
        m.insert("7000-7001/tcp".to_string(), Some(vec![b("", "8000-8001")]));
        m.insert("81".to_string(), Some(vec![b("", "9000-9005")]));
        let r = requests(&m, None, false).unwrap();
        let l = |ip: [u8; 4]| Ipv4Addr::from(ip);
        assert_eq!(
            r,
            vec![
                PortRequest {
                    proto: Proto::Udp,
                    container_port: 53,
                    host_ip: l([0; 4]),
                    host_ports: None
                },
                PortRequest {
                    proto: Proto::Tcp,
                    container_port: 7000,
                    host_ip: l([0; 4]),
                    host_ports: Some((8000, 8000))
                },
                PortRequest {
                    proto: Proto::Tcp,
                    container_port: 7001,
                    host_ip: l([0; 4]),
                    host_ports: Some((8001, 8001))
                },
                PortRequest {
                    proto: Proto::Tcp,
                    container_port: 80,
                    host_ip: l([0; 4]),
                    host_ports: Some((8080, 8080))
                },
                PortRequest {
                    proto: Proto::Tcp,
                    container_port: 80,
                    host_ip: l([127, 0, 0, 1]),
                    host_ports: Some((9090, 9090))
                },
                PortRequest {
                    proto: Proto::Tcp,
                    container_port: 80,
                    host_ip: l([127, 0, 0, 1]),
                    host_ports: None
                },
                PortRequest {
                    proto: Proto::Tcp,
                    container_port: 81,
                    host_ip: l([0; 4]),
                    host_ports: Some((9000, 9005))
                },
            ]
        );
    }

    #[test]
    fn bad_specs_are_refused() {
        let mut m = BTreeMap::new();
        m.insert("80/sctpx".to_string(), Some(vec![b("", "1")]));
        assert!(requests(&m, None, false).is_err());
        let mut m = BTreeMap::new();
        m.insert("80-82/tcp".to_string(), Some(vec![b("", "1-2")]));
        assert!(requests(&m, None, false).is_err());
        let mut m = BTreeMap::new();
        m.insert("80/tcp".to_string(), Some(vec![b("nope", "1")]));
        assert!(requests(&m, None, false).is_err());
    }

    #[test]
    fn publish_all_adds_unbound_exposed() {
        let mut m = BTreeMap::new();
        m.insert("80/tcp".to_string(), Some(vec![b("", "8080")]));
        let mut e = BTreeMap::new();
        e.insert("80/tcp".to_string(), serde_json::json!({}));
        e.insert("443/tcp".to_string(), serde_json::json!({}));
        let r = requests(&m, Some(&e), true).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].container_port, 443);
        assert_eq!(r[1].host_ports, None);
        assert_eq!(requests(&m, Some(&e), false).unwrap().len(), 1);
    }

    #[test]
    fn ports_json_like_docker() {
        let mut e = BTreeMap::new();
        e.insert("80/tcp".to_string(), serde_json::json!({}));
        e.insert("443/tcp".to_string(), serde_json::json!({}));
        let m = vec![PortMapping {
            proto: Proto::Tcp,
            container_port: 80,
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 8080,
        }];
        assert_eq!(
            ports_json(Some(&e), &m),
            serde_json::json!({"443/tcp": null, "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]})
        );
    }
}
