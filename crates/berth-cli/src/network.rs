//! Networking commands: `port`.

use serde_json::Value as Json;

use crate::args::PortArgs;
use crate::client::{seg, Client};
use crate::Failure;

fn host_port(b: &Json) -> String {
    let ip = b.get("HostIp").and_then(Json::as_str).unwrap_or("");
    let port = b.get("HostPort").and_then(Json::as_str).unwrap_or("");
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`'s lines from `NetworkSettings.Ports`, computed
/// client-side as Docker's CLI does; `Err` is Docker's message for an unpublished port.
pub fn port_lines(ports: &Json, container: &str, wanted: Option<&str>) -> Result<Vec<String>, String> {
    let map = ports.as_object();
    match wanted {
        Some(p) => {
            let key = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
            let lines: Vec<String> = map
                .and_then(|m| m.get(&key))
                .and_then(Json::as_array)
                .map(|l| l.iter().map(host_port).collect())
                .unwrap_or_default();
            if lines.is_empty() {
                return Err(format!("Error: No public port '{key}' published for {container}"));
            }
            Ok(lines)
        }
        None => {
            let mut out: Vec<String> = map
                .into_iter()
                .flatten()
                .flat_map(|(k, v)| {
                    v.as_array().into_iter().flatten().map(move |b| format!("{k} -> {}", host_port(b)))
                })
                .collect();
            out.sort();
            Ok(out)
        }
    }
}

pub async fn port(c: &Client, a: &PortArgs) -> Result<i32, Failure> {
    let j = c.get(&format!("/containers/{}/json", seg(&a.container))).await?;
    let ports = j.pointer("/NetworkSettings/Ports").cloned().unwrap_or(Json::Null);
    match port_lines(&ports, &a.container, a.port.as_deref()) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            Ok(0)
        }
        Err(msg) => Err(Failure::Msg(msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn port_output_like_docker() {
        let ports = json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "9090"}],
            "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
            "443/tcp": null
        });
        assert_eq!(
            port_lines(&ports, "web", None).unwrap(),
            ["53/udp -> 0.0.0.0:5353", "80/tcp -> 0.0.0.0:8080", "80/tcp -> 127.0.0.1:9090"]
        );
        assert_eq!(port_lines(&ports, "web", Some("80")).unwrap(), ["0.0.0.0:8080", "127.0.0.1:9090"]);
        assert_eq!(port_lines(&ports, "web", Some("53/udp")).unwrap(), ["0.0.0.0:5353"]);
        assert_eq!(port_lines(&ports, "web", Some("443")).unwrap_err(), "Error: No public port '443/tcp' published for web");
    }
}
