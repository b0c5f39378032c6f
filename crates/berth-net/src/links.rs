//! Legacy container links (`--link name[:alias]` on the default bridge): the hosts entry
//! and the environment variables Docker gives the linking container.

use std::net::Ipv4Addr;

use crate::ports::parse_port_key;

/// `name` or `name:alias` → (name, alias); the alias defaults to the name.
pub fn parse_link(spec: &str) -> (String, String) {
    let spec = spec.trim_start_matches('/');
    match spec.split_once(':') {
        Some((n, a)) => (n.to_string(), a.rsplit('/').next().unwrap_or(a).to_string()),
        None => (spec.to_string(), spec.to_string()),
    }
}

/// Docker's link variables for `alias` → the container `child_name` (with `/`) at `ip`,
/// exposing `ports` (keys like `80/tcp`), with environment `env`.
pub fn link_env(
    alias: &str,
    my_name: &str,
    ip: Ipv4Addr,
    ports: &[String],
    env: &[String],
) -> Vec<String> {
    let prefix = alias.to_ascii_uppercase().replace('-', "_");
    let mut parsed: Vec<(u16, &'static str)> = Vec::new();
    for key in ports {
        if let Ok((proto, first, last)) = parse_port_key(key) {
            for p in first..=last {
                parsed.push((p, proto.as_str()));
            }
        }
    }
    parsed.sort();
    let mut out = Vec::new();
    if let Some((p, proto)) = parsed.first() {
        out.push(format!("{prefix}_PORT={proto}://{ip}:{p}"));
    }
    for (p, proto) in &parsed {
        let base = format!("{prefix}_PORT_{p}_{}", proto.to_ascii_uppercase());
        out.push(format!("{base}={proto}://{ip}:{p}"));
        out.push(format!("{base}_ADDR={ip}"));
        out.push(format!("{base}_PORT={p}"));
        out.push(format!("{base}_PROTO={proto}"));
    }
    out.push(format!(
        "{prefix}_NAME=/{}/{alias}",
        my_name.trim_start_matches('/')
    ));
    for e in env {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        if matches!(k, "HOME" | "HOSTNAME" | "PATH") {
            continue;
        }
        out.push(format!("{prefix}_ENV_{k}={v}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_specs() {
        assert_eq!(parse_link("web"), ("web".into(), "web".into()));
        assert_eq!(parse_link("web:db"), ("web".into(), "db".into()));
        assert_eq!(parse_link("/web:/me/db"), ("web".into(), "db".into()));
    }

    #[test]
    fn env_like_docker() {
        let env = link_env(
            "my-db",
            "/app",
            Ipv4Addr::new(172, 17, 0, 2),
            &["80/tcp".into(), "53/udp".into()],
            &["PATH=/bin".into(), "FOO=bar".into()],
        );
        assert_eq!(
            env,
            [
                "MY_DB_PORT=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.2",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_PORT_80_TCP=tcp://172.17.0.2:80",
                "MY_DB_PORT_80_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_80_TCP_PORT=80",
                "MY_DB_PORT_80_TCP_PROTO=tcp",
                "MY_DB_NAME=/app/my-db",
                "MY_DB_ENV_FOO=bar",
            ]
        );
    }
}
