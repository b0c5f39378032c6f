//! The embedded resolver at 127.0.0.11 on user networks and link removal (issue 14,
//! point 3). As Docker's: the container's `resolv.conf` names only `127.0.0.11`, the
//! resolver listens inside the container's own namespace (UDP and TCP), answers the names
//! of its networks, forwards the rest, and comes back for running containers when the
//! daemon restarts; nothing listens on the network's gateway. `DELETE
//! /containers/{parent}/{alias}?link=1` removes a legacy link, with dockerd 20.10's texts.

mod common;

use common::*;
use std::time::Duration;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

fn user_subnet(d: &TestDaemon) -> String {
    format!("{}.0/24", d.own_subnet24(91))
}

/// `nslookup NAME 127.0.0.11` in container `c` (busybox's nslookup asks over UDP).
fn lookup(d: &TestDaemon, c: &str, name: &str) -> String {
    let out = d.berth(&["exec", c, "nslookup", "-type=a", name]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_resolver_is_at_127_0_0_11_inside_the_container_and_survives_a_daemon_restart() {
    let mut d = daemon();
    let subnet = user_subnet(&d);
    let gw = subnet.replace("0/24", "1");
    d.berth_ok(&["network", "create", "--subnet", &subnet, "dnsnet"]);
    d.run_detached(&[
        "--name",
        "srv",
        "--network",
        "dnsnet",
        "--network-alias",
        "web",
        "busybox",
        "sleep",
        "300",
    ]);
    d.run_detached(&[
        "--name",
        "cli",
        "--network",
        "dnsnet",
        "busybox",
        "sleep",
        "300",
    ]);
    let resolv = d.berth_ok(&["exec", "cli", "cat", "/etc/resolv.conf"]);
    assert!(resolv.starts_with("nameserver 127.0.0.11\n"), "{resolv}");
    assert_eq!(resolv.matches("nameserver").count(), 1, "{resolv}");
    let srv_ip = d.inspect("srv")["NetworkSettings"]["Networks"]["dnsnet"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    for name in ["srv", "web"] {
        let out = lookup(&d, "cli", name);
        assert!(out.contains(&srv_ip), "{name}: {out}");
    }
    // the listening sockets are the container's own: its namespace has 127.0.0.11:53 on
    // UDP and TCP, and the gateway (the host side) has no DNS server any more
    let udp = d.berth_ok(&["exec", "cli", "cat", "/proc/net/udp"]);
    assert!(udp.contains("0B00007F:0035"), "{udp}");
    let tcp = d.berth_ok(&["exec", "cli", "cat", "/proc/net/tcp"]);
    assert!(tcp.contains("0B00007F:0035"), "{tcp}");
    let on_gw = std::net::UdpSocket::bind((gw.as_str(), 53));
    assert!(on_gw.is_ok(), "something still holds {gw}:53");
    drop(on_gw);

    // a daemon restart (live restore): the running containers' resolvers come back
    d.stop_daemon(Duration::from_secs(10));
    d.start_daemon();
    let ok = wait_until(Duration::from_secs(10), || {
        lookup(&d, "cli", "srv").contains(&srv_ip)
    });
    assert!(ok, "{}", lookup(&d, "cli", "srv"));
    // and it goes with the container: a stopped one leaves no socket in the daemon
    d.berth_ok(&["stop", "-t", "0", "cli"]);
    d.berth_ok(&["start", "cli"]);
    assert!(lookup(&d, "cli", "web").contains(&srv_ip));
}

#[test]
fn a_legacy_link_is_removed_by_its_name() {
    let d = daemon();
    d.run_detached(&["--name", "child", "busybox", "sleep", "300"]);
    d.run_detached(&[
        "--name",
        "parent",
        "--link",
        "child:mylink",
        "busybox",
        "sleep",
        "300",
    ]);
    let (status, _, body) = d.request("DELETE", "/containers/parent/mylink?link=1", None);
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    let links = &d.inspect("parent")["HostConfig"]["Links"];
    assert!(
        links.is_null() || links.as_array().is_some_and(|l| l.is_empty()),
        "{links}"
    );
    // both containers are still there
    let ps = d.berth_ok(&["ps", "-q"]);
    assert_eq!(ps.lines().count(), 2, "{ps}");
    // dockerd 20.10's answers for a link that is not there and for a container's own name
    let (status, _, body) = d.request("DELETE", "/containers/parent/mylink?link=1", None);
    assert_eq!(status, 404);
    assert!(
        String::from_utf8_lossy(&body).contains("No such container: parent/mylink"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, body) = d.request("DELETE", "/containers/parent?link=1", None);
    assert_eq!(status, 500);
    assert!(
        String::from_utf8_lossy(&body)
            .contains("Conflict, cannot remove the default link name of the container"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // the next start of the parent has no link any more
    d.berth_ok(&["restart", "-t", "0", "parent"]);
    let hosts = d.berth_ok(&["exec", "parent", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("mylink"), "{hosts}");
}
