//! Network details docker-py and compose files set (issue 14, point 3): `--ip-range`,
//! `--aux-address`, driver options applied (`enable_icc`, `enable_ip_masquerade`, `mtu`,
//! `bridge.name`) or kept for inspect, and what is not applied refused with nothing left.
//! Addresses and texts as dockerd 20.10 gives them for the same commands.

mod common;

use common::*;
use std::process::Command;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// A /24 of its own for the test daemon's user network `k`: `10.a.b.0/24` → "10.a.b".
fn user_net24(d: &TestDaemon, k: u8) -> String {
    d.own_subnet24(31 + k as u16)
}

fn ip_on(d: &TestDaemon, name: &str, net: &str) -> String {
    d.inspect(name)["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn ip_range_and_aux_addresses_shape_allocation() {
    let d = daemon();
    let n = user_net24(&d, 1);
    d.berth_ok(&[
        "network",
        "create",
        "--subnet",
        &format!("{n}.0/24"),
        "--ip-range",
        &format!("{n}.64/30"),
        "--aux-address",
        &format!("router={n}.65"),
        "ranged",
    ]);
    let ipam = &d.api("GET", "/networks/ranged", None).1["IPAM"]["Config"][0];
    assert_eq!(ipam["IPRange"], format!("{n}.64/30"), "{ipam}");
    assert_eq!(
        ipam["AuxiliaryAddresses"]["router"],
        format!("{n}.65"),
        "{ipam}"
    );

    // .64 is the range's own network address, .65 is reserved: .66 and .67 are left
    d.run_detached(&[
        "--name",
        "r1",
        "--network",
        "ranged",
        "busybox",
        "sleep",
        "300",
    ]);
    d.run_detached(&[
        "--name",
        "r2",
        "--network",
        "ranged",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(ip_on(&d, "r1", "ranged"), format!("{n}.66"));
    assert_eq!(ip_on(&d, "r2", "ranged"), format!("{n}.67"));
    let full = d.berth(&["run", "--rm", "--network", "ranged", "busybox", "true"]);
    assert_ne!(code(&full), 0);
    assert!(
        stderr(&full)
            .contains("no available IPv4 addresses on this network's address pools: ranged"),
        "{}",
        stderr(&full)
    );
    // a requested address may lie outside the range; the aux address is never given
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "ranged",
        "--ip",
        &format!("{n}.9"),
        "busybox",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains(&format!("inet {n}.9/24")), "{out}");
    let taken = d.berth(&[
        "run",
        "--rm",
        "--network",
        "ranged",
        "--ip",
        &format!("{n}.65"),
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&taken).contains("Address already in use"),
        "{}",
        stderr(&taken)
    );
    d.berth_ok(&["rm", "-f", "r1", "r2"]);
    d.berth_ok(&["network", "rm", "ranged"]);
}

#[test]
fn bad_ranges_and_aux_addresses_are_refused_and_leave_nothing() {
    let d = daemon();
    let n = user_net24(&d, 2);
    let subnet = format!("{n}.0/24");
    let body =
        |ipam: serde_json::Value| serde_json::json!({"Name": "bad", "IPAM": {"Config": [ipam]}});
    let cases = [
        (
            serde_json::json!({"Subnet": subnet, "IPRange": "10.250.9.0/24"}),
            "no matching subnet for range 10.250.9.0/24",
        ),
        (
            serde_json::json!({"Subnet": subnet, "IPRange": format!("{n}.0/33")}),
            "invalid CIDR address",
        ),
        (
            serde_json::json!({"IPRange": format!("{n}.0/26")}),
            "every ip-range or gateway must have a corresponding subnet",
        ),
        (
            serde_json::json!({"Subnet": subnet, "AuxiliaryAddresses": {"a": "10.250.0.1"}}),
            "no matching subnet for aux-address 10.250.0.1",
        ),
        (
            serde_json::json!({"Subnet": subnet, "Gateway": format!("{n}.1"), "AuxiliaryAddresses": {"a": format!("{n}.1")}}),
            "failed to allocate secondary ip address (a:",
        ),
    ];
    for (ipam, want) in cases {
        let (status, v) = d.api("POST", "/networks/create", Some(body(ipam.clone())));
        assert_eq!(status, 400, "{ipam}: {v}");
        assert!(
            v["message"].as_str().unwrap_or_default().contains(want),
            "{ipam}: {v}"
        );
    }
    // nothing was made: no network, no bridge
    let (_, list) = d.api("GET", "/networks", None);
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&format!("{}-", d.bridge)));
}

#[test]
fn driver_options_are_applied_or_kept_or_refused() {
    let d = daemon();
    let n = user_net24(&d, 3);
    let bridge: String = format!("{}-own", d.bridge).chars().take(15).collect();
    d.berth_ok(&[
        "network",
        "create",
        "--subnet",
        &format!("{n}.0/24"),
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "-o",
        "com.docker.network.bridge.enable_ip_masquerade=false",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "-o",
        &format!("com.docker.network.bridge.name={bridge}"),
        "-o",
        "org.example.note=kept",
        "--attachable",
        "opts",
    ]);
    let v = d.api("GET", "/networks/opts", None).1;
    assert_eq!(v["Options"]["org.example.note"], "kept", "{v}");
    assert_eq!(
        v["Options"]["com.docker.network.bridge.enable_icc"], "false",
        "{v}"
    );
    assert_eq!(v["Attachable"], true, "{v}");
    assert!(
        std::path::Path::new("/sys/class/net")
            .join(&bridge)
            .exists(),
        "bridge {bridge} missing"
    );
    assert_eq!(
        std::fs::read_to_string(format!("/sys/class/net/{bridge}/mtu"))
            .unwrap()
            .trim(),
        "1400"
    );

    d.run_detached(&[
        "--name",
        "o1",
        "--network",
        "opts",
        "busybox",
        "sleep",
        "300",
    ]);
    d.run_detached(&[
        "--name",
        "o2",
        "--network",
        "opts",
        "busybox",
        "sleep",
        "300",
    ]);
    let mtu = d.berth_ok(&["exec", "o1", "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(mtu.trim(), "1400");
    // icc off: the other container is out of reach, the gateway is not
    let peer = ip_on(&d, "o2", "opts");
    let to_peer = d.berth(&["exec", "o1", "ping", "-c", "1", "-W", "1", &peer]);
    assert_ne!(
        code(&to_peer),
        0,
        "ping {peer} went through with enable_icc=false"
    );
    d.berth_ok(&[
        "exec",
        "o1",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        &format!("{n}.1"),
    ]);
    // no masquerade for this subnet
    let table = Command::new("nft")
        .args(["list", "table", "ip", &format!("berth_{}", d.bridge)])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(!table.contains(&format!("ip saddr {n}.0/24")), "{table}");
    d.berth_ok(&["rm", "-f", "o1", "o2"]);
    d.berth_ok(&["network", "rm", "opts"]);
    assert!(!std::path::Path::new("/sys/class/net")
        .join(&bridge)
        .exists());
}

#[test]
fn what_is_not_applied_is_refused() {
    let d = daemon();
    for (args, want) in [
        (
            // no IPv6 pool given: Docker has no default ones
            vec!["--ipv6", "v6"],
            "could not find an available, non-overlapping IPv6 address pool among the defaults",
        ),
        (
            vec![
                "-o",
                "com.docker.network.bridge.host_binding_ipv4=127.0.0.1",
                "hb",
            ],
            "not supported by Berth yet",
        ),
        (
            vec!["-o", "com.docker.network.bridge.enable_icc=maybe", "icc"],
            "invalid boolean value",
        ),
        (
            vec!["--ipam-driver", "dhcp", "dh"],
            "plugin \"dhcp\" not found",
        ),
    ] {
        let mut full = vec!["network", "create"];
        full.extend(args.iter());
        let out = d.berth(&full);
        assert_eq!(code(&out), 1, "{args:?}");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    let ls = d.berth_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls.lines().count(), 3, "{ls}");
}

#[test]
fn the_docker_cli_creates_ranged_networks() {
    if !docker_cli_available() {
        eprintln!("skipped: no Docker CLI");
        return;
    }
    let d = daemon();
    let n = user_net24(&d, 4);
    d.docker_ok(&[
        "network",
        "create",
        "--subnet",
        &format!("{n}.0/24"),
        "--ip-range",
        &format!("{n}.128/25"),
        "--aux-address",
        &format!("a={n}.129"),
        "-o",
        "x=y",
        "dockerranged",
    ]);
    let out = d.docker_ok(&[
        "network",
        "inspect",
        "dockerranged",
        "--format",
        "{{json .IPAM.Config}} {{json .Options}}",
    ]);
    assert!(
        out.contains(&format!("\"IPRange\":\"{n}.128/25\"")),
        "{out}"
    );
    assert!(
        out.contains(&format!("\"AuxiliaryAddresses\":{{\"a\":\"{n}.129\"}}")),
        "{out}"
    );
    assert!(out.contains("{\"x\":\"y\"}"), "{out}");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "dockerranged",
        "busybox",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains(&format!("inet {n}.130/24")), "{out}");
    d.docker_ok(&["network", "rm", "dockerranged"]);
}

#[test]
fn mac_addresses_and_endpoint_driver_options() {
    let d = daemon();
    // --mac-address on the default bridge (sent in the endpoint config, as Docker's CLI does)
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--mac-address",
        "92:D0:C6:0A:29:33",
        "busybox",
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_eq!(out.trim(), "92:d0:c6:0a:29:33");
    // Config.MacAddress, as API clients before 1.44 send it
    let (status, v) = d.api(
        "POST",
        "/containers/create?name=legacymac",
        Some(
            serde_json::json!({"Image": "busybox", "Cmd": ["sleep", "300"], "MacAddress": "02:42:ac:11:00:99",
            "NetworkingConfig": {"EndpointsConfig": {"bridge": {"DriverOpts": {"org.example.opt": "on"}}}}}),
        ),
    );
    assert_eq!(status, 201, "{v}");
    d.berth_ok(&["start", "legacymac"]);
    let ep = d.inspect("legacymac")["NetworkSettings"]["Networks"]["bridge"].clone();
    assert_eq!(ep["MacAddress"], "02:42:ac:11:00:99", "{ep}");
    assert_eq!(ep["DriverOpts"]["org.example.opt"], "on", "{ep}");
    let inside = d.berth_ok(&["exec", "legacymac", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(inside.trim(), "02:42:ac:11:00:99");

    // on a user network, and on a second network through connect
    let n = user_net24(&d, 5);
    d.berth_ok(&[
        "network",
        "create",
        "--subnet",
        &format!("{n}.0/24"),
        "macnet",
    ]);
    let (status, v) = d.api(
        "POST",
        "/networks/macnet/connect",
        Some(
            serde_json::json!({"Container": "legacymac", "EndpointConfig": {"MacAddress": "02:00:00:00:00:42", "DriverOpts": {"k": "v"}}}),
        ),
    );
    assert_eq!(status, 200, "{v}");
    let eth1 = d.berth_ok(&["exec", "legacymac", "cat", "/sys/class/net/eth1/address"]);
    assert_eq!(eth1.trim(), "02:00:00:00:00:42");
    let ep = d.inspect("legacymac")["NetworkSettings"]["Networks"]["macnet"].clone();
    assert_eq!(ep["MacAddress"], "02:00:00:00:00:42", "{ep}");
    assert_eq!(ep["DriverOpts"]["k"], "v", "{ep}");

    // bad input: Docker's words, nothing created
    for (body, want) in [
        (
            serde_json::json!({"Image": "busybox", "MacAddress": "zz:11"}),
            "invalid MAC address zz:11",
        ),
        (
            serde_json::json!({"Image": "busybox", "HostConfig": {"NetworkMode": "host"}, "MacAddress": "02:42:ac:11:00:98"}),
            "conflicting options: mac-address and the network mode",
        ),
        (
            serde_json::json!({"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"bridge": {"DriverOpts": {"com.docker.network.endpoint.macaddress": "x"}}}}}),
            "not supported by Berth yet",
        ),
    ] {
        let (status, v) = d.api("POST", "/containers/create", Some(body.clone()));
        assert_eq!(status, 400, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap_or_default().contains(want),
            "{body}: {v}"
        );
    }
    let all = d.berth_ok(&["ps", "-aq"]);
    assert_eq!(all.lines().count(), 1, "{all}");
    d.berth_ok(&["rm", "-f", "legacymac"]);
    d.berth_ok(&["network", "rm", "macnet"]);
}
