//! Networking commands: `port`.

use serde_json::Value as Json;

use crate::args::PortArgs;
use crate::client::{query, seg, Client, NO_BODY};
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
    let info = crate::container::inspect_container(c, &a.container).await?;
    let ports = &info.network_settings.ports;
    match port_lines(ports, &a.container, a.port.as_deref()) {
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

use std::collections::BTreeMap;

use berth_api::{
    EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkCreateResponse, NetworkDisconnectRequest, NetworkPruneResponse, NetworkResource,
};
use http::Method;

use crate::args::{NetworkCmd, NetworkCreateArgs};

/// `network ls`'s default table.
const NETWORK_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

/// A `network ls` row as the format template sees it.
pub fn network_row(n: &NetworkResource, no_trunc: bool) -> Json {
    let id = if no_trunc {
        n.id.clone()
    } else {
        n.id.chars().take(12).collect()
    };
    let labels = n
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    serde_json::json!({
        "ID": id,
        "Name": n.name,
        "Driver": n.driver,
        "Scope": n.scope,
        "Internal": n.internal.to_string(),
        "IPv4": "false",
        "IPv6": n.enable_ipv6.to_string(),
        "Labels": labels,
        "CreatedAt": go_time_string(&n.created),
    })
}

/// An RFC 3339 time as Go's `time.Time.String()` prints it in UTC
/// (`2026-12-03 13:57:03.465980309 +0000 UTC`, trailing zeros of the fraction dropped).
fn go_time_string(t: &str) -> String {
    let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) else {
        return t.to_string();
    };
    let d = d.with_timezone(&chrono::Utc);
    let nanos = d.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    format!("{}{frac} +0000 UTC", d.format("%Y-%m-%d %H:%M:%S"))
}

/// `key=value` options (`-o`, `--ipam-opt`, `--aux-address`).
fn key_values(flag: &str, given: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    given
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None if flag != "aux-address" => Ok((kv.clone(), String::new())),
            None => Err(Failure::Msg(format!(
                "invalid argument \"{kv}\" for \"--{flag}\" flag: bad format for {flag}: {kv}"
            ))),
        })
        .collect()
}

/// Whether CIDR or address `inner` lies in subnet `cidr` (IPv4; anything else: a
/// textual prefix match is not attempted and the daemon decides).
fn subnet_contains(cidr: &str, inner: &str) -> bool {
    let parse = |s: &str| -> Option<(u32, u32)> {
        let (a, p) = s.split_once('/').unwrap_or((s, "32"));
        let a: std::net::Ipv4Addr = a.parse().ok()?;
        let p: u32 = p.parse().ok().filter(|p| *p <= 32)?;
        Some((u32::from(a), p))
    };
    match (parse(cidr), parse(inner)) {
        (Some((net, p)), Some((ip, q))) if q >= p => {
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            net & mask == ip & mask
        }
        _ => false,
    }
}

/// The `network create` body. Ranges, gateways and aux addresses go with the subnet that
/// contains them, as the Docker CLI pairs them.
pub fn create_request(a: &NetworkCreateArgs) -> Result<NetworkCreateRequest, Failure> {
    if a.subnet.is_empty() && (!a.gateway.is_empty() || !a.ip_range.is_empty()) {
        return Err(Failure::Msg(
            "every ip-range or gateway must have a corresponding subnet".into(),
        ));
    }
    let mut config: Vec<IpamConfig> = a
        .subnet
        .iter()
        .map(|s| IpamConfig {
            subnet: s.clone(),
            ..IpamConfig::default()
        })
        .collect();
    let mut place = |what: &str, value: &str, set: &mut dyn FnMut(&mut IpamConfig) -> bool| {
        let slot = config
            .iter_mut()
            .find(|c| subnet_contains(&c.subnet, value))
            .ok_or_else(|| Failure::Msg(format!("no matching subnet for {what} {value}")))?;
        if set(slot) {
            Ok(())
        } else {
            Err(Failure::Msg(format!(
                "cannot configure multiple {what}s for the same subnet"
            )))
        }
    };
    for r in &a.ip_range {
        place("range", r, &mut |c| {
            std::mem::replace(&mut c.ip_range, r.clone()).is_empty()
        })?;
    }
    for g in &a.gateway {
        place("gateway", g, &mut |c| {
            std::mem::replace(&mut c.gateway, g.clone()).is_empty()
        })?;
    }
    for (name, ip) in key_values("aux-address", &a.aux_address)? {
        place("aux-address", &ip, &mut |c| {
            c.auxiliary_addresses.insert(name.clone(), ip.clone());
            true
        })?;
    }
    Ok(NetworkCreateRequest {
        name: a.name.clone(),
        check_duplicate: Some(true),
        driver: a.driver.clone(),
        internal: a.internal,
        attachable: a.attachable,
        enable_ipv6: a.ipv6,
        ipam: Some(Ipam {
            driver: a.ipam_driver.clone(),
            options: Some(key_values("ipam-opt", &a.ipam_opt)?),
            config,
        }),
        options: key_values("opt", &a.opt)?,
        labels: crate::opts::labels(&a.label),
        ..NetworkCreateRequest::default()
    })
}

pub async fn network(c: &Client, cmd: &NetworkCmd) -> Result<i32, Failure> {
    match cmd {
        NetworkCmd::Create(a) => {
            let created: NetworkCreateResponse = c
                .typed(Method::POST, "/networks/create", Some(&create_request(a)?))
                .await?;
            println!("{}", created.id);
            Ok(0)
        }
        NetworkCmd::Ls(a) => {
            let q = match crate::opts::filters_json(&a.filter)? {
                Some(f) => query(&[("filters", f)]),
                None => String::new(),
            };
            let mut list: Vec<NetworkResource> = c.get_as(&format!("/networks{q}")).await?;
            // docker/cli lists networks by name.
            list.sort_by(|x, y| x.name.cmp(&y.name));
            let rows: Vec<Json> = list.iter().map(|n| network_row(n, a.no_trunc)).collect();
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
                    .call(Method::DELETE, &format!("/networks/{}", seg(n)), NO_BODY)
                    .await
                {
                    Ok(_) => println!("{n}"),
                    // -f: a network that is not there is not an error.
                    Err(e) if a.force && e.status() == 404 => {}
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
            if !a.force
                && !crate::confirm(
                    "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?",
                )
            {
                return Ok(0);
            }
            let q = match crate::opts::filters_json(&a.filter)? {
                Some(f) => query(&[("filters", f)]),
                None => String::new(),
            };
            let r: NetworkPruneResponse = c
                .typed(Method::POST, &format!("/networks/prune{q}"), NO_BODY)
                .await?;
            let names = r.networks_deleted.unwrap_or_default();
            if !names.is_empty() {
                println!("Deleted Networks:");
                for n in names {
                    println!("{n}");
                }
            }
            Ok(0)
        }
        NetworkCmd::Connect(a) => {
            let body = NetworkConnectRequest {
                container: a.container.clone(),
                endpoint_config: Some(EndpointSettings {
                    aliases: (!a.alias.is_empty()).then(|| a.alias.clone()),
                    links: (!a.link.is_empty()).then(|| a.link.clone()),
                    driver_opts: (!a.driver_opt.is_empty())
                        .then(|| key_values("driver-opt", &a.driver_opt))
                        .transpose()?,
                    ipam_config: Some(berth_api::EndpointIpamConfig {
                        ipv4_address: a.ip.clone().unwrap_or_default(),
                        ipv6_address: a.ip6.clone().unwrap_or_default(),
                        link_local_ips: a.link_local_ip.clone(),
                    }),
                    ..EndpointSettings::default()
                }),
            };
            let path = format!("/networks/{}/connect", seg(&a.network));
            c.call(Method::POST, &path, Some(&body)).await?;
            Ok(0)
        }
        NetworkCmd::Disconnect(a) => {
            let body = NetworkDisconnectRequest {
                container: a.container.clone(),
                force: a.force,
            };
            let path = format!("/networks/{}/disconnect", seg(&a.network));
            c.call(Method::POST, &path, Some(&body)).await?;
            Ok(0)
        }
    }
}

#[cfg(test)]
mod network_tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn create_request_is_the_docker_clis() {
        let cli = crate::args::Cli::try_parse_from([
            "berth",
            "network",
            "create",
            "--subnet",
            "10.198.0.0/24",
            "--gateway",
            "10.198.0.1",
            "--label",
            "q=r",
            "typedref2",
        ])
        .unwrap();
        let Some(crate::args::Cmd::Network(NetworkCmd::Create(a))) = cli.cmd else {
            panic!("not network create")
        };
        let docker: NetworkCreateRequest = serde_json::from_str(include_str!(
            "../../berth-api/testdata/docker-cli-network-create.json"
        ))
        .unwrap();
        assert_eq!(create_request(&a).unwrap(), docker);
    }

    fn create_args(args: &[&str]) -> NetworkCreateArgs {
        let cli = crate::args::Cli::try_parse_from(
            ["berth", "network", "create"]
                .iter()
                .chain(args)
                .chain(&["n"]),
        )
        .unwrap();
        let Some(crate::args::Cmd::Network(NetworkCmd::Create(a))) = cli.cmd else {
            panic!("not network create")
        };
        a
    }

    #[test]
    fn ranges_gateways_and_aux_addresses_pair_with_their_subnet() {
        let a = create_args(&[
            "--subnet",
            "10.1.0.0/16",
            "--subnet",
            "10.2.0.0/16",
            "--ip-range",
            "10.2.5.0/24",
            "--gateway",
            "10.1.0.254",
            "--aux-address",
            "a=10.2.0.9",
            "--aux-address",
            "b=10.1.0.9",
            "-o",
            "com.docker.network.bridge.enable_icc=false",
            "--ipam-opt",
            "x=y",
            "--attachable",
        ]);
        let r = create_request(&a).unwrap();
        let ipam = r.ipam.unwrap();
        assert_eq!(ipam.config[0].gateway, "10.1.0.254");
        assert_eq!(ipam.config[0].auxiliary_addresses["b"], "10.1.0.9");
        assert_eq!(ipam.config[1].ip_range, "10.2.5.0/24");
        assert_eq!(ipam.config[1].auxiliary_addresses["a"], "10.2.0.9");
        assert_eq!(ipam.options.unwrap()["x"], "y");
        assert_eq!(r.options["com.docker.network.bridge.enable_icc"], "false");
        assert!(r.attachable);
        // the Docker CLI's own errors (docker 28 against dockerd 20.10)
        let err = |args: &[&str]| match create_request(&create_args(args)) {
            Err(Failure::Msg(m)) => m,
            other => panic!("{args:?}: {other:?}"),
        };
        assert_eq!(
            err(&["--subnet", "10.55.0.0/16", "--ip-range", "10.56.0.0/24"]),
            "no matching subnet for range 10.56.0.0/24"
        );
        assert_eq!(
            err(&["--subnet", "10.57.0.0/16", "--aux-address", "a=10.58.0.1"]),
            "no matching subnet for aux-address 10.58.0.1"
        );
        assert_eq!(
            err(&["--ip-range", "10.56.0.0/24"]),
            "every ip-range or gateway must have a corresponding subnet"
        );
    }

    #[test]
    fn ls_rows_truncate_ids() {
        let n: NetworkResource = serde_json::from_value(serde_json::json!({"Id": "0123456789abcdef0123", "Name": "mynet", "Driver": "bridge", "Scope": "local",
            "Labels": {"a": "b"}, "Internal": true})).unwrap();
        let r = network_row(&n, false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Labels"], "a=b");
        assert_eq!(r["Internal"], "true");
        assert_eq!(network_row(&n, true)["ID"], "0123456789abcdef0123");
    }
}
