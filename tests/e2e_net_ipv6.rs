//! IPv6, link-local IPs and `CheckDuplicate` (issue 14, point 3): dual-stack user networks
//! (`--ipv6 --subnet fd…::/64`) give each container an IPv6 address on its interface with a
//! default route, `--ip6` on run and connect, inspect's `GlobalIPv6Address`/`IPv6Gateway`;
//! `--link-local-ip` addresses on the interface; a second network of one name without
//! `CheckDuplicate`. Texts and shapes as dockerd 20.10 gives them for the same commands.

mod common;

use common::*;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// An IPv6 /64 and an IPv4 /24 of this test daemon's own: `fdXX:YY::/64`, `10.a.b.0/24`.
fn subnets(d: &TestDaemon, k: u8) -> (String, String) {
    let own: Vec<u16> = d
        .own_subnet24(0)
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    let v4 = format!("{}.0/24", d.own_subnet24(61 + k as u16));
    (v4, format!("fd{:02x}:{:x}:{k}::/64", own[1], own[2]))
}

#[test]
fn dual_stack_networks_give_containers_ipv6_addresses() {
    let d = daemon();
    let (v4, v6) = subnets(&d, 1);
    let prefix6 = v6.trim_end_matches("/64");
    d.berth_ok(&[
        "network", "create", "--ipv6", "--subnet", &v4, "--subnet", &v6, "six",
    ]);
    let net = d.api("GET", "/networks/six", None).1;
    assert_eq!(net["EnableIPv6"], true, "{net}");
    let config = net["IPAM"]["Config"].as_array().unwrap();
    assert_eq!(config.len(), 2, "{net}");
    assert_eq!(config[1]["Subnet"], v6.as_str(), "{net}");
    // no gateway given: dockerd 20.10 shows none for the IPv6 pool
    assert!(config[1].get("Gateway").is_none(), "{net}");

    d.run_detached(&[
        "--name",
        "ca",
        "--network",
        "six",
        "busybox",
        "sleep",
        "300",
    ]);
    let want = format!("{prefix6}f00d");
    d.run_detached(&[
        "--name",
        "cb",
        "--network",
        "six",
        "--ip6",
        &want,
        "busybox",
        "sleep",
        "300",
    ]);
    let a = &d.inspect("ca")["NetworkSettings"]["Networks"]["six"];
    assert_eq!(a["GlobalIPv6Address"], format!("{prefix6}2"), "{a}");
    assert_eq!(a["GlobalIPv6PrefixLen"], 64, "{a}");
    assert_eq!(a["IPv6Gateway"], format!("{prefix6}1"), "{a}");
    assert!(a["IPAMConfig"].is_null(), "{a}");
    let b = &d.inspect("cb")["NetworkSettings"]["Networks"]["six"];
    assert_eq!(b["GlobalIPv6Address"], want.as_str(), "{b}");
    assert_eq!(b["IPAMConfig"]["IPv6Address"], want.as_str(), "{b}");

    // the address is on eth0 at once (no duplicate address detection to wait for), the
    // default route goes through the bridge's gateway, and the gateway and the other
    // container answer over IPv6
    let addrs = d.berth_ok(&["exec", "ca", "ip", "-6", "addr", "show", "eth0"]);
    assert!(addrs.contains(&format!("{prefix6}2/64")), "{addrs}");
    let routes = d.berth_ok(&["exec", "ca", "ip", "-6", "route"]);
    assert!(
        routes.contains(&format!("default via {prefix6}1 dev eth0")),
        "{routes}"
    );
    for target in [format!("{prefix6}1"), want.clone()] {
        let out = d.berth(&["exec", "ca", "ping", "-6", "-c1", "-W3", &target]);
        assert_success(&out, &format!("ping -6 {target}"));
    }
    // the embedded resolver answers AAAA with the IPv6 address, A with the IPv4 one
    let aaaa = d.berth_ok(&["exec", "ca", "nslookup", "-type=aaaa", "cb"]);
    assert!(aaaa.contains(&want), "{aaaa}");
    let net = d.api("GET", "/networks/six", None).1;
    let rows: Vec<String> = net["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["IPv6Address"].as_str().unwrap().to_string())
        .collect();
    assert!(rows.contains(&format!("{want}/64")), "{net}");

    // connect to a second dual-stack network with --ip6: eth1 gets it
    let (v4b, v6b) = subnets(&d, 2);
    let prefix6b = v6b.trim_end_matches("/64");
    d.berth_ok(&[
        "network", "create", "--ipv6", "--subnet", &v4b, "--subnet", &v6b, "six2",
    ]);
    let want2 = format!("{prefix6b}beef");
    d.berth_ok(&["network", "connect", "--ip6", &want2, "six2", "ca"]);
    let addrs = d.berth_ok(&["exec", "ca", "ip", "-6", "addr", "show", "eth1"]);
    assert!(addrs.contains(&format!("{want2}/64")), "{addrs}");
    let a = &d.inspect("ca")["NetworkSettings"]["Networks"]["six2"];
    assert_eq!(a["GlobalIPv6Address"], want2.as_str(), "{a}");
    assert_eq!(a["IPAMConfig"]["IPv6Address"], want2.as_str(), "{a}");

    // the address survives a restart of the container
    d.berth_ok(&["restart", "-t", "0", "cb"]);
    let addrs = d.berth_ok(&["exec", "cb", "ip", "-6", "addr", "show", "eth0"]);
    assert!(addrs.contains(&format!("{want}/64")), "{addrs}");
}

#[test]
fn ipv6_requests_are_checked_in_dockers_words() {
    let d = daemon();
    let out = d.berth(&["network", "create", "--ipv6", "nopool"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains(
            "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network"
        ),
        "{}",
        stderr(&out)
    );
    let (v4, v6) = subnets(&d, 3);
    let prefix6 = v6.trim_end_matches("/64");
    d.berth_ok(&["network", "create", "--ipv6", "--subnet", &v6, "six"]);
    d.berth_ok(&["network", "create", "--subnet", &v4, "four"]);
    let cases: [(&[&str], &str); 3] = [
        (
            &["--network", "six", "--ip6", "zz"],
            "invalid IPv6 address: zz",
        ),
        (
            &["--network", "six", "--ip6", "fd00:ffff::5"],
            "Invalid address fd00:ffff::5: It does not belong to any of this network's subnets",
        ),
        (
            &["--network", "four", "--ip6", &format!("{prefix6}5")],
            "user specified IP address is supported only when connecting to networks with user configured subnets",
        ),
    ];
    for (flags, text) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend(["busybox", "true"]);
        let out = d.berth(&args);
        assert_ne!(code(&out), 0, "{flags:?}");
        assert!(stderr(&out).contains(text), "{flags:?}: {}", stderr(&out));
    }
    // an IPv6 pool without --ipv6: kept and shown, the request echoed, no address given
    // (dockerd 20.10 does the same)
    let (_, v6b) = subnets(&d, 4);
    let prefix6b = v6b.trim_end_matches("/64");
    d.berth_ok(&["network", "create", "--subnet", &v6b, "pool-only"]);
    let net = d.api("GET", "/networks/pool-only", None).1;
    assert_eq!(net["EnableIPv6"], false, "{net}");
    assert_eq!(net["IPAM"]["Config"][1]["Subnet"], v6b.as_str(), "{net}");
    let want = format!("{prefix6b}f00d");
    d.run_detached(&[
        "--name",
        "cp",
        "--network",
        "pool-only",
        "--ip6",
        &want,
        "busybox",
        "sleep",
        "300",
    ]);
    let p = &d.inspect("cp")["NetworkSettings"]["Networks"]["pool-only"];
    assert_eq!(p["IPAMConfig"]["IPv6Address"], want.as_str(), "{p}");
    assert_eq!(p["GlobalIPv6Address"], "", "{p}");
    // two pools of one family
    let out = d.berth(&[
        "network",
        "create",
        "--subnet",
        "10.254.1.0/24",
        "--subnet",
        "10.254.2.0/24",
        "two",
    ]);
    assert!(
        stderr(&out).contains("bridge driver doesn't support multiple subnets"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn link_local_ips_are_on_the_interface_and_in_inspect() {
    let d = daemon();
    // as docker-py's test_create_with_linklocal_ips: the default bridge, through the API
    let body = serde_json::json!({
        "Image": "busybox", "Cmd": ["sleep", "300"],
        "HostConfig": {"NetworkMode": "bridge"},
        "NetworkingConfig": {"EndpointsConfig": {"bridge": {
            "IPAMConfig": {"IPv4Address": null, "IPv6Address": null, "LinkLocalIPs": ["169.254.8.8"]}
        }}}
    });
    let (status, created) = d.api("POST", "/containers/create?name=ll", Some(body));
    assert_eq!(status, 201, "{created}");
    d.berth_ok(&["start", "ll"]);
    let ep = &d.inspect("ll")["NetworkSettings"]["Networks"]["bridge"];
    assert_eq!(ep["IPAMConfig"]["LinkLocalIPs"][0], "169.254.8.8", "{ep}");
    let addrs = d.berth_ok(&["exec", "ll", "ip", "-4", "addr", "show", "eth0"]);
    assert!(addrs.contains("inet 169.254.8.8/16"), "{addrs}");

    // the CLI's flag on a user network, kept across a restart
    let (v4, _) = subnets(&d, 5);
    d.berth_ok(&["network", "create", "--subnet", &v4, "lln"]);
    d.run_detached(&[
        "--name",
        "ll2",
        "--network",
        "lln",
        "--link-local-ip",
        "169.254.9.9",
        "busybox",
        "sleep",
        "300",
    ]);
    d.berth_ok(&["restart", "-t", "0", "ll2"]);
    let addrs = d.berth_ok(&["exec", "ll2", "ip", "-4", "addr", "show", "eth0"]);
    assert!(addrs.contains("inet 169.254.9.9/16"), "{addrs}");

    let out = d.berth(&["run", "--rm", "--link-local-ip", "zz", "busybox", "true"]);
    assert!(
        stderr(&out).contains("Invalid link-local IP address: [zz]"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_duplicate_false_makes_a_second_network_of_one_name() {
    let d = daemon();
    d.berth_ok(&["network", "create", "twin"]);
    // the CLI asks CheckDuplicate=true: refused in Docker's words
    let out = d.berth(&["network", "create", "twin"]);
    assert!(
        stderr(&out).contains("network with name twin already exists"),
        "{}",
        stderr(&out)
    );
    let (status, first) = d.api("GET", "/networks/twin", None);
    assert_eq!(status, 200);
    let (status, created) = d.api(
        "POST",
        "/networks/create",
        Some(serde_json::json!({"Name": "twin", "CheckDuplicate": false})),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["Warning"],
        format!(
            "Network with name twin (id : {}) already exists",
            first["Id"].as_str().unwrap()
        ),
        "{created}"
    );
    let ls = d.berth_ok(&["network", "ls", "--filter", "name=twin", "-q"]);
    assert_eq!(ls.lines().count(), 2, "{ls}");
    // by name it is ambiguous now; by ID each one is found and removed
    let (status, err) = d.api("GET", "/networks/twin", None);
    assert_eq!(status, 400, "{err}");
    assert_eq!(
        err["message"],
        "2 matches found based on name: network twin is ambiguous"
    );
    let out = d.berth(&["network", "rm", "twin"]);
    assert!(
        stderr(&out).contains("network twin is ambiguous (2 matches found based on name)"),
        "{}",
        stderr(&out)
    );
    for id in [
        created["Id"].as_str().unwrap(),
        first["Id"].as_str().unwrap(),
    ] {
        d.berth_ok(&["network", "rm", id]);
    }
}
