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
pub fn port_lines(
    ports: &Json,
    container: &str,
    wanted: Option<&str>,
) -> Result<Vec<String>, String> {
    let map = ports.as_object();
    match wanted {
        Some(p) => {
            let key = if p.contains('/') {
                p.to_string()
            } else {
                format!("{p}/tcp")
            };
            let lines: Vec<String> = map
                .and_then(|m| m.get(&key))
                .and_then(Json::as_array)
                .map(|l| l.iter().map(host_port).collect())
                .unwrap_or_default();
            if lines.is_empty() {
                return Err(format!(
                    "Error: No public port '{key}' published for {container}"
                ));
            }
            Ok(lines)
        }
        None => {
            let mut out: Vec<String> = map
                .into_iter()
                .flatten()
                .flat_map(|(k, v)| {
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .map(move |b| format!("{k} -> {}", host_port(b)))
                })
                .collect();
            out.sort();
            Ok(out)
        }
    }
}

pub async fn port(c: &Client, a: &PortArgs) -> Result<i32, Failure> {
    let j = c
        .get(&format!("/containers/{}/json", seg(&a.container)))
        .await?;
    let ports = j
        .pointer("/NetworkSettings/Ports")
        .cloned()
        .unwrap_or(Json::Null);
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
            [
                "53/udp -> 0.0.0.0:5353",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> 127.0.0.1:9090"
            ]
        );
        assert_eq!(
            port_lines(&ports, "web", Some("80")).unwrap(),
            ["0.0.0.0:8080", "127.0.0.1:9090"]
        );
        assert_eq!(
            port_lines(&ports, "web", Some("53/udp")).unwrap(),
            ["0.0.0.0:5353"]
        );
        assert_eq!(
            port_lines(&ports, "web", Some("443")).unwrap_err(),
            "Error: No public port '443/tcp' published for web"
        );
    }
}

// ---------------------------------------------------------------- network commands

use crate::args::NetworkCmd;
use http::Method;

/// `network ls`'s default table.
const NETWORK_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

/// A `network ls` row as the format template sees it.
pub fn network_row(n: &Json, no_trunc: bool) -> Json {
    let id = n.get("Id").and_then(Json::as_str).unwrap_or("");
    let id = if no_trunc {
        id.to_string()
    } else {
        id.chars().take(12).collect()
    };
    let labels = n
        .get("Labels")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    serde_json::json!({
        "ID": id,
        "Name": n.get("Name").cloned().unwrap_or(Json::Null),
        "Driver": n.get("Driver").cloned().unwrap_or(Json::Null),
        "Scope": n.get("Scope").cloned().unwrap_or(Json::Null),
        "Internal": n.get("Internal").and_then(Json::as_bool).unwrap_or(false).to_string(),
        "IPv6": "false",
        "Labels": labels,
        "CreatedAt": n.get("Created").cloned().unwrap_or(Json::Null),
    })
}

pub async fn network(c: &Client, cmd: &NetworkCmd) -> Result<i32, Failure> {
    match cmd {
        NetworkCmd::Create(a) => {
            let mut labels = serde_json::Map::new();
            for l in &a.label {
                let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
                labels.insert(k.to_string(), Json::String(v.to_string()));
            }
            let config: Vec<Json> = a
                .subnet
                .iter()
                .enumerate()
                .map(|(i, s)| serde_json::json!({"Subnet": s, "Gateway": a.gateway.get(i).cloned().unwrap_or_default()}))
                .collect();
            if a.subnet.is_empty() && !a.gateway.is_empty() {
                return Err(Failure::Msg(
                    "every ip-range or gateway must have a corresponding subnet".into(),
                ));
            }
            let body = serde_json::json!({
                "Name": a.name, "CheckDuplicate": true, "Driver": a.driver, "Internal": a.internal,
                "IPAM": {"Driver": "default", "Config": config, "Options": {}}, "Labels": labels,
                "Options": {}, "EnableIPv6": false, "Attachable": false, "Ingress": false
            });
            let j = c
                .json(Method::POST, "/networks/create", Some(&body))
                .await?;
            println!("{}", j.get("Id").and_then(Json::as_str).unwrap_or(""));
            Ok(0)
        }
        NetworkCmd::Ls(a) => {
            let list = c.get("/networks").await?;
            let rows: Vec<Json> = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| network_row(n, a.no_trunc || a.quiet))
                .collect();
            let format = if a.quiet {
                "{{.ID}}".to_string()
            } else {
                a.format.clone().unwrap_or_else(|| NETWORK_TABLE.into())
            };
            let format = if format == "table" {
                NETWORK_TABLE.to_string()
            } else {
                format
            };
            let tmpl = crate::template::Format::parse_rows(&format)
                .map_err(|e| Failure::Msg(e.to_string()))?;
            let headers = serde_json::json!({"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                "Internal": "INTERNAL", "IPv6": "IPV6", "Labels": "LABELS", "CreatedAt": "CREATED AT"});
            let out = tmpl
                .render(&rows, &headers)
                .map_err(|e| Failure::Msg(e.to_string()))?;
            print!("{out}");
            Ok(0)
        }
        NetworkCmd::Inspect(a) => {
            let a2 = crate::args::InspectArgs {
                format: a.format.clone(),
                kind: Some("network".into()),
                size: false,
                names: a.names.clone(),
            };
            crate::system::inspect(c, &a2).await
        }
        NetworkCmd::Rm(a) => {
            let mut errors = Vec::new();
            for n in &a.names {
                match c
                    .call(Method::DELETE, &format!("/networks/{}", seg(n)), None)
                    .await
                {
                    Ok(_) => println!("{n}"),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            if errors.is_empty() {
                Ok(0)
            } else {
                Err(Failure::Msg(errors.join("\n")))
            }
        }
        NetworkCmd::Prune(a) => {
            if !a.force {
                return Err(Failure::Msg(
                    "WARNING! This will remove all custom networks not used by at least one container.\nUse --force to skip the confirmation prompt".into(),
                ));
            }
            let j = c.json(Method::POST, "/networks/prune", None).await?;
            let names: Vec<&str> = j
                .get("NetworksDeleted")
                .and_then(Json::as_array)
                .map(|l| l.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            if !names.is_empty() {
                println!("Deleted Networks:");
                for n in names {
                    println!("{n}");
                }
            }
            Ok(0)
        }
        NetworkCmd::Connect(a) | NetworkCmd::Disconnect(a) => {
            let verb = if matches!(cmd, NetworkCmd::Connect(_)) {
                "connect"
            } else {
                "disconnect"
            };
            let body = serde_json::json!({"Container": a.container, "EndpointConfig": {"Aliases": a.alias}, "Force": a.force});
            c.call(
                Method::POST,
                &format!("/networks/{}/{verb}", seg(&a.network)),
                Some(&body),
            )
            .await?;
            Ok(0)
        }
    }
}

#[cfg(test)]
mod network_tests {
    use super::*;

    #[test]
    fn ls_rows_truncate_ids() {
        let n = serde_json::json!({"Id": "0123456789abcdef0123", "Name": "mynet", "Driver": "bridge", "Scope": "local",
            "Labels": {"a": "b"}, "Internal": true});
        let r = network_row(&n, false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Labels"], "a=b");
        assert_eq!(r["Internal"], "true");
        assert_eq!(network_row(&n, true)["ID"], "0123456789abcdef0123");
    }
}
