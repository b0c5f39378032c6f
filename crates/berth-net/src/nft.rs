//! nftables rules in Berth's own table (`table ip <name>`, one per daemon, named after its
//! bridge). The whole table is rendered from the daemon's state and replaced in one
//! transaction (libnftables in-process, see [`crate::nft_lib`]), so rules appear and disappear atomically and a restarted daemon
//! rebuilds exactly what its metadata says. No other table is ever touched.
//!
//! Published ports are kernel NAT on every host address, 127.0.0.1 included: the rules
//! live in the kernel, so traffic keeps flowing while the daemon is stopped, killed or
//! restarting. Loopback works as dockerd's `--userland-proxy=false` does it: DNAT in the
//! `output` hook, `route_localnet` on Berth's own bridge (see
//! [`crate::link::ensure_bridge`]; never a host-wide setting) so a 127.0.0.1 source may be
//! routed there, and a masquerade of loopback sources leaving through the bridge.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::ipam::Subnet;
use crate::nft_lib;
use crate::ports::PortMapping;
use crate::{NetError, Result};

/// One bridge's state the rules are rendered from.
#[derive(Debug, Clone)]
pub struct BridgeRules {
    pub bridge: String,
    pub subnet: Subnet,
    /// `--internal`: no masquerade, no forwarding out of the bridge.
    pub internal: bool,
    /// False with `com.docker.network.bridge.enable_ip_masquerade=false`.
    pub masquerade: bool,
    /// (container address, published port).
    pub published: Vec<(Ipv4Addr, PortMapping)>,
}

/// The nftables table name for a daemon whose default bridge is `bridge`.
pub fn table_name(bridge: &str) -> String {
    format!(
        "berth_{}",
        bridge.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )
}

/// The `nft -f` script that replaces `table ip <table>` with the rules for `bridges`.
pub fn render(table: &str, bridges: &[BridgeRules]) -> String {
    let mut post = String::new();
    let mut publish = String::new();
    let mut forward = String::new();
    for b in bridges {
        let br = &b.bridge;
        if b.internal {
            forward.push_str(&format!("\t\tiifname \"{br}\" oifname != \"{br}\" drop\n"));
            forward.push_str(&format!("\t\toifname \"{br}\" iifname != \"{br}\" drop\n"));
            continue;
        }
        if b.masquerade {
            post.push_str(&format!(
                "\t\tip saddr {} oifname != \"{br}\" masquerade\n",
                b.subnet
            ));
        }
        // connections from 127.0.0.1 DNATed to a container: the container answers the
        // bridge's address, never a loopback one
        post.push_str(&format!(
            "\t\tip saddr 127.0.0.0/8 oifname \"{br}\" masquerade\n"
        ));
        forward.push_str(&format!(
            "\t\toifname \"{br}\" ct state established,related accept\n"
        ));
        forward.push_str(&format!("\t\tiifname \"{br}\" accept\n"));
        for (ip, m) in &b.published {
            let daddr = if m.host_ip.is_unspecified() {
                String::new()
            } else {
                format!("ip daddr {} ", m.host_ip)
            };
            let proto = m.proto.as_str();
            publish.push_str(&format!(
                "\t\t{daddr}iifname != \"{br}\" {proto} dport {} dnat to {ip}:{}\n",
                m.host_port, m.container_port
            ));
            forward.push_str(&format!(
                "\t\toifname \"{br}\" ip daddr {ip} {proto} dport {} accept\n",
                m.container_port
            ));
        }
    }
    format!(
        "table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n\
         \tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n{post}\t}}\n\
         \tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         \t\tfib daddr type local jump publish\n\t}}\n\
         \tchain output {{\n\t\ttype nat hook output priority -100; policy accept;\n\
         \t\tfib daddr type local jump publish\n\t}}\n\
         \tchain publish {{\n{publish}\t}}\n\
         \tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n{forward}\t}}\n\
         }}\n"
    )
}

/// Applies `script` as one transaction: in-process through libnftables (one netlink batch,
/// no process; see [`crate::nft_lib`]), or by `nft -f -` where the library is missing.
pub fn apply(script: &str) -> Result<()> {
    if nft_lib::run(script)?.is_some() {
        return Ok(());
    }
    apply_with_tool(script)
}

/// Runs `nft -f -` with `script`.
fn apply_with_tool(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::System(format!("running nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NetError::System(format!("writing to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::System(format!("running nft: {e}")))?;
    if !out.status.success() {
        return Err(NetError::System(format!(
            "nft failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Deletes `table ip <table>` if it exists.
pub fn delete_table(table: &str) -> Result<()> {
    apply(&format!("table ip {table}\ndelete table ip {table}\n"))
}

/// Whether a firewall that drops forwarded traffic is present (`ip filter FORWARD` with
/// policy drop, as dockerd with iptables sets up): our accept rules cannot override it.
pub fn forward_policy_drop() -> bool {
    let listed = match nft_lib::run_with_output("list chain ip filter FORWARD\n") {
        Ok(Some(out)) => out,
        Ok(None) => Command::new("nft")
            .args(["list", "chain", "ip", "filter", "FORWARD"])
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default(),
        Err(_) => String::new(), // no such chain
    };
    listed.contains("policy drop")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Proto;

    #[test]
    fn renders_own_table_only() {
        let rules = BridgeRules {
            bridge: "bt01".into(),
            subnet: "172.30.0.0/16".parse().unwrap(),
            internal: false,
            masquerade: true,
            published: vec![
                (
                    Ipv4Addr::new(172, 30, 0, 2),
                    PortMapping {
                        proto: Proto::Tcp,
                        container_port: 80,
                        host_ip: Ipv4Addr::UNSPECIFIED,
                        host_port: 8080,
                    },
                ),
                (
                    Ipv4Addr::new(172, 30, 0, 3),
                    PortMapping {
                        proto: Proto::Udp,
                        container_port: 53,
                        host_ip: Ipv4Addr::LOCALHOST,
                        host_port: 5353,
                    },
                ),
            ],
        };
        let s = render("berth_bt01", &[rules]);
        assert!(s.starts_with(
            "table ip berth_bt01\ndelete table ip berth_bt01\ntable ip berth_bt01 {\n"
        ));
        assert!(s.contains("ip saddr 172.30.0.0/16 oifname != \"bt01\" masquerade"));
        assert!(s.contains("iifname != \"bt01\" tcp dport 8080 dnat to 172.30.0.2:80"));
        assert!(s.contains(
            "ip daddr 127.0.0.1 iifname != \"bt01\" udp dport 5353 dnat to 172.30.0.3:53"
        ));
        assert!(s.contains("ip saddr 127.0.0.0/8 oifname \"bt01\" masquerade"));
        assert!(s.contains("type nat hook output priority -100; policy accept;\n\t\tfib daddr type local jump publish"));
        assert!(s.contains("oifname \"bt01\" ip daddr 172.30.0.2 tcp dport 80 accept"));
        for line in s.lines() {
            if line.starts_with("table") || line.starts_with("delete") {
                assert!(line.contains("ip berth_bt01"), "{line}");
            }
        }
        assert_eq!(table_name("berth0"), "berth_berth0");
        assert_eq!(table_name("bt-1"), "berth_bt_1");
    }

    #[test]
    fn masquerade_can_be_turned_off() {
        let rules = BridgeRules {
            bridge: "bt03".into(),
            subnet: "10.6.0.0/24".parse().unwrap(),
            internal: false,
            masquerade: false,
            published: vec![],
        };
        let s = render("berth_bt", &[rules]);
        assert!(!s.contains("ip saddr 10.6.0.0/24 oifname != \"bt03\" masquerade"));
        assert!(s.contains("iifname \"bt03\" accept"));
    }

    #[test]
    fn internal_bridge_has_no_masquerade() {
        let rules = BridgeRules {
            bridge: "bt02".into(),
            subnet: "10.5.0.0/24".parse().unwrap(),
            internal: true,
            masquerade: true,
            published: vec![],
        };
        let s = render("t", &[rules]);
        assert!(!s.contains("masquerade"));
        assert!(s.contains("iifname \"bt02\" oifname != \"bt02\" drop"));
    }
}
