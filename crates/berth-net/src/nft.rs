//! nftables rules in Berth's own table (`table ip <name>`, one per daemon, named after its
//! bridge). No other table is ever touched.
//!
//! The table's chains and maps are rendered from the daemon's state and replaced whole in
//! one transaction (libnftables in-process, see [`crate::nft_lib`]) when the daemon starts
//! and when a network comes or goes, so a restarted daemon rebuilds exactly what its
//! metadata says. A published port is one element of a map of its bridge (keyed on the
//! host address and port, or the port alone for all addresses, valued with the
//! container's address and port): a start adds its elements and a stop deletes them in one
//! small batch ([`port_elements`]), without re-rendering the table or touching its chains
//! (whose hooks would be re-registered on every replace).
//!
//! Published ports are kernel NAT on every host address, 127.0.0.1 included: the rules
//! live in the kernel, so traffic keeps flowing while the daemon is stopped, killed or
//! restarting. Loopback works as dockerd's `--userland-proxy=false` does it: DNAT in the
//! `output` hook, `route_localnet` on Berth's own bridge (see
//! [`crate::link::ensure_bridge`]; never a host-wide setting) so a 127.0.0.1 source may be
//! routed there, and a masquerade of loopback sources leaving through the bridge.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::ipam::Subnet;
use crate::nft_lib;
use crate::ports::{PortMapping, Proto};
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

/// The four maps of a bridge's published ports, as (name, key type, keyed on the host
/// address, protocol).
fn maps_of(bridge: &str) -> [(String, &'static str, bool, Proto); 4] {
    let b = bridge.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    [
        (
            format!("pa_tcp_{b}"),
            "ipv4_addr . inet_service",
            true,
            Proto::Tcp,
        ),
        (
            format!("pa_udp_{b}"),
            "ipv4_addr . inet_service",
            true,
            Proto::Udp,
        ),
        (format!("pw_tcp_{b}"), "inet_service", false, Proto::Tcp),
        (format!("pw_udp_{b}"), "inet_service", false, Proto::Udp),
    ]
}

/// The map of `bridge` that holds mapping `m`, and the element's key.
fn map_key(bridge: &str, m: &PortMapping) -> (String, String) {
    let wildcard = m.host_ip.is_unspecified();
    let name = maps_of(bridge)
        .into_iter()
        .find(|(_, _, by_addr, proto)| *by_addr != wildcard && *proto == m.proto)
        .map(|(name, ..)| name)
        .unwrap_or_default();
    let key = if wildcard {
        m.host_port.to_string()
    } else {
        format!("{} . {}", m.host_ip, m.host_port)
    };
    (name, key)
}

/// The element of published port `m` of the container at `ip`: `key : ip . port`.
fn element(key: &str, ip: Ipv4Addr, m: &PortMapping) -> String {
    format!("{key} : {ip} . {}", m.container_port)
}

/// The `nft -f` script that replaces `table ip <table>` with the rules for `bridges`.
pub fn render(table: &str, bridges: &[BridgeRules]) -> String {
    let mut maps = String::new();
    let mut post = String::new();
    let mut publish = String::new();
    let mut forward = String::new();
    for b in bridges {
        let br = &b.bridge;
        // every bridge has its maps (a start adds to them whatever its network), only
        // those of a bridge with a way out are looked up
        let mut elements: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut keys = BTreeSet::new();
        for (ip, m) in &b.published {
            let (name, key) = map_key(br, m);
            // one element per key (a map refuses two); the host port's bind makes
            // two impossible but for a broken record
            if keys.insert((name.clone(), key.clone())) {
                elements
                    .entry(name)
                    .or_default()
                    .push(element(&key, *ip, m));
            }
        }
        for (name, key_type, by_addr, proto) in maps_of(br) {
            let listed = elements
                .get(&name)
                .map(|e| format!("\t\telements = {{ {} }}\n", e.join(", ")))
                .unwrap_or_default();
            maps.push_str(&format!(
                "\tmap {name} {{\n\t\ttype {key_type} : ipv4_addr . inet_service\n{listed}\t}}\n"
            ));
            if !b.internal {
                let proto = proto.as_str();
                let daddr = if by_addr { "ip daddr . " } else { "" };
                publish.push_str(&format!(
                    "\t\tiifname != \"{br}\" meta l4proto {proto} dnat to {daddr}{proto} dport map @{name}\n"
                ));
            }
        }
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
    }
    format!(
        "table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n{maps}\
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

/// The elements of `published` on `bridge` as `map key`, one each: what tells whether two
/// changes touch the same element.
pub fn element_keys(bridge: &str, published: &[(Ipv4Addr, PortMapping)]) -> Vec<String> {
    published
        .iter()
        .map(|(_, m)| {
            let (name, key) = map_key(bridge, m);
            format!("{name} {key}")
        })
        .collect()
}

/// The `nft -f` script that adds (`add`) or deletes the map elements of `published`, the
/// published ports of containers on `bridge`: one small transaction, the table's chains
/// untouched. A delete first adds the element it deletes, so an element already gone is
/// no error.
pub fn port_elements(
    table: &str,
    bridge: &str,
    published: &[(Ipv4Addr, PortMapping)],
    add: bool,
) -> String {
    let mut script = String::new();
    for (ip, m) in published {
        let (name, key) = map_key(bridge, m);
        let el = element(&key, *ip, m);
        script.push_str(&format!("add element ip {table} {name} {{ {el} }}\n"));
        if !add {
            script.push_str(&format!("delete element ip {table} {name} {{ {key} }}\n"));
        }
    }
    script
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
        assert!(s.contains(
            "\tmap pw_tcp_bt01 {\n\t\ttype inet_service : ipv4_addr . inet_service\n\
             \t\telements = { 8080 : 172.30.0.2 . 80 }\n"
        ));
        assert!(s.contains(
            "\tmap pa_udp_bt01 {\n\t\ttype ipv4_addr . inet_service : ipv4_addr . inet_service\n\
             \t\telements = { 127.0.0.1 . 5353 : 172.30.0.3 . 53 }\n"
        ));
        assert!(s.contains("\tmap pa_tcp_bt01 {\n\t\ttype ipv4_addr . inet_service : ipv4_addr . inet_service\n\t}"));
        assert!(
            s.contains("iifname != \"bt01\" meta l4proto tcp dnat to tcp dport map @pw_tcp_bt01")
        );
        assert!(s.contains(
            "iifname != \"bt01\" meta l4proto udp dnat to ip daddr . udp dport map @pa_udp_bt01"
        ));
        assert!(s.contains("ip saddr 127.0.0.0/8 oifname \"bt01\" masquerade"));
        assert!(s.contains("type nat hook output priority -100; policy accept;\n\t\tfib daddr type local jump publish"));
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
        // its maps exist (a start may add to them) but nothing looks them up
        assert!(s.contains("map pw_tcp_bt02 {"));
        assert!(!s.contains("dnat"));
        assert!(s.contains("iifname \"bt02\" oifname != \"bt02\" drop"));
    }

    fn mapping(
        proto: Proto,
        host_ip: Ipv4Addr,
        host_port: u16,
        container_port: u16,
    ) -> PortMapping {
        PortMapping {
            proto,
            container_port,
            host_ip,
            host_port,
        }
    }

    #[test]
    fn one_element_per_key_and_elements_added_or_deleted_alone() {
        let ip = Ipv4Addr::new(10, 7, 0, 2);
        let m = mapping(Proto::Tcp, Ipv4Addr::LOCALHOST, 8080, 80);
        let rules = BridgeRules {
            bridge: "bt-4".into(),
            subnet: "10.7.0.0/24".parse().unwrap(),
            internal: false,
            masquerade: true,
            published: vec![(ip, m.clone()), (Ipv4Addr::new(10, 7, 0, 3), m.clone())],
        };
        let s = render("t", &[rules]);
        assert!(
            s.contains("elements = { 127.0.0.1 . 8080 : 10.7.0.2 . 80 }\n"),
            "{s}"
        );
        let add = port_elements("t", "bt-4", &[(ip, m.clone())], true);
        assert_eq!(
            add,
            "add element ip t pa_tcp_bt_4 { 127.0.0.1 . 8080 : 10.7.0.2 . 80 }\n"
        );
        let w = mapping(Proto::Udp, Ipv4Addr::UNSPECIFIED, 5353, 53);
        assert_eq!(
            element_keys("bt-4", &[(ip, m.clone()), (ip, w.clone())]),
            ["pa_tcp_bt_4 127.0.0.1 . 8080", "pw_udp_bt_4 5353"]
        );
        let del = port_elements("t", "bt-4", &[(ip, w)], false);
        assert_eq!(
            del,
            "add element ip t pw_udp_bt_4 { 5353 : 10.7.0.2 . 53 }\n\
             delete element ip t pw_udp_bt_4 { 5353 }\n"
        );
    }

    /// The scripts as the kernel takes them, on a table of this test's own in a network
    /// namespace of its own (its hooks never see the host's traffic).
    #[test]
    fn the_kernel_takes_the_table_and_its_elements() {
        if !nft_lib::available() {
            return; // no libnftables on this machine: nothing to check
        }
        std::thread::spawn(|| {
            // SAFETY: unshare only moves this thread, which exits at the test's end, into
            // a new network namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return; // no CAP_SYS_ADMIN here: nothing to check
            }
            kernel_takes_the_table_and_its_elements();
        })
        .join()
        .unwrap();
    }

    fn kernel_takes_the_table_and_its_elements() {
        let t = format!("berth_unit_el_{}", std::process::id());
        let br = "btunit0";
        let ip = Ipv4Addr::new(10, 8, 0, 2);
        let a = mapping(Proto::Tcp, Ipv4Addr::LOCALHOST, 18080, 80);
        let b = mapping(Proto::Udp, Ipv4Addr::UNSPECIFIED, 15353, 53);
        let rules = |published| BridgeRules {
            bridge: br.into(),
            subnet: "10.8.0.0/24".parse().unwrap(),
            internal: false,
            masquerade: true,
            published,
        };
        let list = || {
            nft_lib::run_with_output(&format!("list table ip {t}\n"))
                .unwrap()
                .unwrap()
        };
        apply(&render(&t, &[rules(vec![(ip, a.clone())])])).unwrap();
        assert!(
            list().contains("127.0.0.1 . 18080 : 10.8.0.2 . 80"),
            "{}",
            list()
        );
        apply(&port_elements(&t, br, &[(ip, b.clone())], true)).unwrap();
        assert!(list().contains("15353 : 10.8.0.2 . 53"), "{}", list());
        // deleting twice is no error; the other element stays
        for _ in 0..2 {
            apply(&port_elements(&t, br, &[(ip, a.clone())], false)).unwrap();
        }
        let listed = list();
        assert!(!listed.contains("18080"), "{listed}");
        assert!(listed.contains("15353 : 10.8.0.2 . 53"), "{listed}");
        apply(&port_elements(&t, br, &[(ip, b)], false)).unwrap();
        assert!(!list().contains("elements"), "{}", list());
        delete_table(&t).unwrap();
    }
}
