//! The run options compose files use most (issue 16), checked from inside the container
//! with the Berth CLI and the real Docker CLI: names and hosts, limits and groups, shared
//! namespaces, `--init`, and bad input in Docker's words.

mod common;

use common::*;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

const DNS_FLAGS: &[&str] = &[
    "--dns", "1.1.1.1", "--dns", "9.9.9.9", "--dns-search", "a.example", "--dns-option", "ndots:2",
    "--add-host", "foo:1.2.3.4", "--add-host", "gw:host-gateway", "--add-host", "foo6:::1",
    "-h", "box",
];

fn check_names(out: &str) {
    let (resolv, rest) = out.split_once("--\n").expect("separator");
    assert_eq!(
        resolv,
        "search a.example\nnameserver 1.1.1.1\nnameserver 9.9.9.9\noptions ndots:2\n"
    );
    let (hosts, route) = rest.split_once("==\n").expect("separator");
    let gateway = route
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no default route: {route}"));
    assert!(
        hosts.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
        "{hosts}"
    );
    let tail: Vec<&str> = hosts.lines().skip(6).collect();
    assert_eq!(tail[..3], ["1.2.3.4\tfoo", &format!("{gateway}\tgw"), "::1\tfoo6"], "{hosts}");
    assert!(tail[3].ends_with("\tbox"), "{hosts}");
}

const NAMES_SCRIPT: &str = "cat /etc/resolv.conf; echo --; cat /etc/hosts; echo ==; ip route | grep default";

#[test]
fn add_host_and_dns_reach_the_containers_files() {
    let d = daemon();
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(DNS_FLAGS);
    args.extend_from_slice(&["busybox", "sh", "-c", NAMES_SCRIPT]);
    check_names(&d.berth_ok(&args));
    let mut args = vec!["run", "--name", "n1"];
    args.extend_from_slice(DNS_FLAGS);
    args.extend_from_slice(&["busybox", "true"]);
    d.berth_ok(&args);
    let hc = &d.inspect("n1")["HostConfig"];
    assert_eq!(hc["Dns"], serde_json::json!(["1.1.1.1", "9.9.9.9"]));
    assert_eq!(hc["DnsSearch"], serde_json::json!(["a.example"]));
    assert_eq!(hc["DnsOptions"], serde_json::json!(["ndots:2"]));
    assert_eq!(
        hc["ExtraHosts"],
        serde_json::json!(["foo:1.2.3.4", "gw:host-gateway", "foo6:::1"])
    );
    d.berth_ok(&["rm", "n1"]);
    // Only --dns-search: the host's servers stay.
    let out = d.berth_ok(&["run", "--rm", "--dns-search", "x.example", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(out.starts_with("search x.example\nnameserver "), "{out}");
    skip_unless_docker!();
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(DNS_FLAGS);
    args.extend_from_slice(&["busybox", "sh", "-c", NAMES_SCRIPT]);
    check_names(&d.docker_ok(&args));
}
