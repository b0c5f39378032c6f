//! Networking (issue 5): the default bridge, published ports in every `-p` form, `-P`,
//! `port`, inspect's NetworkSettings, the generated /etc files, and that nothing of a
//! container's network (veth, namespace, nftables rule) outlives it. Traffic goes only to
//! 127.0.0.1 and to addresses on the test daemon's own bridge.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// A host port that is free now (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of `GET /` on 127.0.0.1:port, or None.
fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn wait_http(port: u16, body: &str) {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(10), || {
        last = http_get(port);
        last.as_deref() == Some(body)
    });
    assert!(ok, "127.0.0.1:{port} answered {last:?}, not {body:?}");
}

/// A detached busybox httpd serving `body` on port 80, with `flags`.
fn web(d: &TestDaemon, name: &str, body: &str, flags: &[&str]) -> String {
    let script = format!("echo {body} > /tmp/index.html && exec httpd -f -p 80 -h /tmp");
    let mut args = vec!["--name", name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    d.run_detached(&args)
}

fn links_of(d: &TestDaemon) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", &d.bridge])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn table(d: &TestDaemon) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", &format!("berth_{}", d.bridge)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn published_ports_every_form_and_port_command() {
    let d = daemon();
    let (p1, p2, lo_range) = (free_port(), free_port(), free_port());
    let a = format!("127.0.0.1:{p1}:80");
    let b = format!("{p2}:80");
    let c = format!("127.0.0.1::{}", 80);
    web(
        &d,
        "web",
        "hello",
        &[
            "-p",
            &a,
            "-p",
            &b,
            "-p",
            &c,
            "-p",
            "81",
            "-p",
            "5353:53/udp",
        ],
    );
    wait_http(p1, "hello\n");
    wait_http(p2, "hello\n");
    let v = d.inspect("web");
    let ports = &v["NetworkSettings"]["Ports"];
    let list = ports["80/tcp"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{ports}");
    assert_eq!(
        list[0],
        serde_json::json!({"HostIp": "127.0.0.1", "HostPort": p1.to_string()})
    );
    assert_eq!(
        list[1],
        serde_json::json!({"HostIp": "0.0.0.0", "HostPort": p2.to_string()})
    );
    assert_eq!(list[2]["HostIp"], "127.0.0.1");
    let random: u16 = list[2]["HostPort"].as_str().unwrap().parse().unwrap();
    assert!(random > 0 && random != p1 && random != p2);
    wait_http(random, "hello\n");
    assert_eq!(ports["81/tcp"][0]["HostIp"], "0.0.0.0");
    assert_eq!(ports["53/udp"][0]["HostPort"], "5353");
    // `port`, as Docker prints it.
    assert_eq!(
        d.berth_ok(&["port", "web", "80"]),
        format!("127.0.0.1:{p1}\n0.0.0.0:{p2}\n127.0.0.1:{random}\n")
    );
    let all = d.berth_ok(&["port", "web"]);
    assert!(all.contains(&format!("80/tcp -> 0.0.0.0:{p2}\n")), "{all}");
    assert!(all.contains("53/udp -> 0.0.0.0:5353\n"), "{all}");
    let out = d.berth(&["port", "web", "90"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No public port '90/tcp' published for web")
    );
    // a host-port range for one container port takes its first free port
    let range = format!("127.0.0.1:{lo_range}-{}:80", lo_range + 2);
    web(&d, "ranged", "ranged", &["-p", &range]);
    let got: u16 = d.inspect("ranged")["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((lo_range..=lo_range + 2).contains(&got));
    wait_http(got, "ranged\n");
    // DNAT for the host's non-loopback addresses is in Berth's own table (an element of
    // its bridge's map of ports published on every address: `port : address . port`)
    assert!(table(&d).contains(&format!(" {p2} : ")), "{}", table(&d));
    // and it carries traffic: another container reaches the published port on the host's
    // address on Berth's bridge (the gateway), not on 127.0.0.1.
    let gw = d.inspect("web")["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let url = format!("http://{gw}:{p2}/");
    let mut got = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        got = String::from_utf8_lossy(
            &d.berth(&["run", "--rm", "busybox", "wget", "-qO-", &url])
                .stdout,
        )
        .into_owned();
        got == "hello\n"
    });
    assert!(ok, "wget {url} from another container: {got:?}");
}

#[test]
fn a_taken_host_port_is_refused_with_dockers_error_and_nothing_is_left() {
    let d = daemon();
    let p = free_port();
    let spec = format!("{p}:80");
    web(&d, "first", "one", &["-p", &spec]);
    wait_http(p, "one\n");
    let before = links_of(&d);
    let out = d.berth(&[
        "run", "-d", "--name", "second", "-p", &spec, "busybox", "sleep", "100",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "Bind for 0.0.0.0:{p} failed: port is already allocated"
        )),
        "{err}"
    );
    assert!(
        err.contains("driver failed programming external connectivity on endpoint second"),
        "{err}"
    );
    assert_eq!(links_of(&d), before, "the failed start left a link");
    // the first container still answers; once it is removed the port is free again
    wait_http(p, "one\n");
    d.berth_ok(&["rm", "-f", "first"]);
    d.berth_ok(&["start", "second"]);
    assert_eq!(
        d.inspect("second")["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        p.to_string()
    );
}

#[test]
fn publish_all_and_expose() {
    let d = daemon();
    web(
        &d,
        "pall",
        "all",
        &["-P", "--expose", "80", "--expose", "7000/udp"],
    );
    let v = d.inspect("pall");
    let ports = &v["NetworkSettings"]["Ports"];
    let hp: u16 = ports["80/tcp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(hp > 0);
    assert_eq!(ports["80/tcp"][0]["HostIp"], "0.0.0.0");
    assert!(
        ports["7000/udp"][0]["HostPort"]
            .as_str()
            .unwrap()
            .parse::<u16>()
            .unwrap()
            > 0
    );
    wait_http(hp, "all\n");
    // exposed but not published: a null entry, as Docker shows it
    web(&d, "exp", "x", &["--expose", "90"]);
    assert_eq!(
        d.inspect("exp")["NetworkSettings"]["Ports"]["90/tcp"],
        serde_json::Value::Null
    );
    let ps = d.berth_ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(ps.contains(&format!("0.0.0.0:{hp}->80/tcp")), "{ps}");
}

#[test]
fn bridge_address_inspect_files_and_container_to_container() {
    let d = daemon();
    let id = web(&d, "srv", "direct", &[]);
    let v = d.inspect("srv");
    let ns = &v["NetworkSettings"];
    let ip = ns["IPAddress"].as_str().unwrap().to_string();
    let subnet_prefix = d.bip.trim_end_matches("0/24");
    assert!(ip.starts_with(subnet_prefix), "{ip} not in {}", d.bip);
    assert_eq!(ns["Gateway"], format!("{subnet_prefix}1"));
    assert_eq!(ns["IPPrefixLen"], 24);
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
    let mac = format!(
        "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
        octets[0], octets[1], octets[2], octets[3]
    );
    assert_eq!(ns["MacAddress"], mac);
    let bridge = &ns["Networks"]["bridge"];
    assert_eq!(bridge["IPAddress"], ip.as_str());
    assert_eq!(bridge["MacAddress"], mac.as_str());
    assert_eq!(bridge["NetworkID"].as_str().unwrap().len(), 64);
    assert_eq!(bridge["EndpointID"].as_str().unwrap().len(), 64);
    assert!(std::path::Path::new(v["HostsPath"].as_str().unwrap()).exists());
    // inside: eth0 with the address, default route via the gateway, the files
    let script = "ip -o -4 addr show eth0; ip route; cat /etc/hosts /etc/hostname /etc/resolv.conf";
    let out = d.berth_ok(&[
        "run", "--rm", "--name", "cli", "busybox", "sh", "-c", script,
    ]);
    assert!(
        out.contains(&format!("default via {subnet_prefix}1 dev eth0")),
        "{out}"
    );
    assert!(out.contains("127.0.0.1\tlocalhost\n"), "{out}");
    assert!(out.contains("nameserver "), "{out}");
    let out = d.berth_ok(&["exec", "srv", "cat", "/etc/hosts", "/etc/hostname"]);
    assert!(out.contains(&format!("{ip}\t{}\n", &id[..12])), "{out}");
    // another container reaches it by address over the bridge
    let url = format!("http://{ip}/");
    let mut got = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        got = String::from_utf8_lossy(
            &d.berth(&["run", "--rm", "busybox", "wget", "-qO-", &url])
                .stdout,
        )
        .into_owned();
        got == "direct\n"
    });
    assert!(ok, "wget {url}: {got:?}");
    // the address is the container's until rm: a restart keeps it
    d.berth_ok(&["restart", "-t", "1", "srv"]);
    assert_eq!(
        d.inspect("srv")["NetworkSettings"]["IPAddress"],
        ip.as_str()
    );
    // --network none and host have no bridge address
    let none = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ip -o link | cut -d: -f2",
    ]);
    assert_eq!(none.split_whitespace().collect::<Vec<_>>(), ["lo"]);
}

#[test]
fn nothing_outlives_the_container_and_rules_survive_a_daemon_restart() {
    let mut d = daemon();
    let p = free_port();
    let spec = format!("{p}:80");
    let id = web(&d, "gone", "bye", &["-p", &spec]);
    wait_http(p, "bye\n");
    let veth = format!("vb{}", &id[..11]);
    assert!(
        links_of(&d).iter().any(|l| l.contains(&veth)),
        "{:?}",
        links_of(&d)
    );
    assert!(d.exec_root.join("netns").join(&id).exists());
    // the daemon dies and comes back: rules and proxy are rebuilt from its metadata
    d.kill_daemon();
    d.start_daemon();
    wait_http(p, "bye\n");
    assert!(table(&d).contains(&format!(" {p} : ")), "{}", table(&d));
    // stop: veth, namespace, rules and host port go; the address is kept
    d.berth_ok(&["stop", "-t", "1", "gone"]);
    assert!(links_of(&d).is_empty(), "{:?}", links_of(&d));
    assert!(!d.exec_root.join("netns").join(&id).exists());
    assert!(!table(&d).contains("elements"), "{}", table(&d));
    assert!(http_get(p).is_none());
    d.berth_ok(&["rm", "gone"]);
    // a failed start leaves nothing
    let out = d.berth(&[
        "run",
        "-p",
        "80",
        "--name",
        "broken",
        "busybox",
        "/no/such/binary",
    ]);
    assert!(!out.status.success());
    assert!(links_of(&d).is_empty(), "{:?}", links_of(&d));
    assert!(!table(&d).contains("elements"), "{}", table(&d));
    let left: Vec<_> = std::fs::read_dir(d.exec_root.join("netns"))
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // a --rm container leaves nothing either
    d.berth_ok(&["run", "--rm", "-p", "80", "busybox", "true"]);
    assert!(links_of(&d).is_empty(), "{:?}", links_of(&d));
    assert!(!table(&d).contains("elements"), "{}", table(&d));
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(d.exec_root.join("netns").to_str().unwrap()),
        "{mounts}"
    );
}

#[test]
fn bad_publish_specs_are_refused() {
    let d = daemon();
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "80:80",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("conflicting options: port publishing and the container type network mode"));
    let out = d.berth(&["run", "--rm", "-p", "a:b", "busybox", "true"]);
    assert!(!out.status.success());
}

#[test]
fn docker_cli_publishes_and_prints_ports() {
    skip_unless_docker!();
    let d = daemon();
    let p = free_port();
    let spec = format!("127.0.0.1:{p}:80");
    let script = "echo docker > /tmp/index.html && exec httpd -f -p 80 -h /tmp";
    d.docker_ok(&[
        "run", "-d", "--name", "dweb", "-p", &spec, "busybox", "sh", "-c", script,
    ]);
    wait_http(p, "docker\n");
    assert_eq!(
        d.docker_ok(&["port", "dweb"]),
        format!("80/tcp -> 127.0.0.1:{p}\n")
    );
    assert_eq!(
        d.docker_ok(&["port", "dweb", "80/tcp"]),
        format!("127.0.0.1:{p}\n")
    );
    let ps = d.docker_ok(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps, format!("127.0.0.1:{p}->80/tcp\n"));
    let out = d.docker(&["run", "--rm", "-p", &spec, "busybox", "true"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "Bind for 127.0.0.1:{p} failed: port is already allocated"
        )),
        "{err}"
    );
}

#[test]
fn network_container_mode_shares_the_namespace() {
    let d = daemon();
    web(&d, "owner", "shared", &[]);
    let ip = d.inspect("owner")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let mut got = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        got = String::from_utf8_lossy(
            &d.berth(&[
                "run",
                "--rm",
                "--network",
                "container:owner",
                "busybox",
                "wget",
                "-qO-",
                "http://127.0.0.1/",
            ])
            .stdout,
        )
        .into_owned();
        got == "shared\n"
    });
    assert!(ok, "wget over the shared loopback: {got:?}");
    let addr = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(addr.contains(&format!("inet {ip}/")), "{addr}");
    d.berth_ok(&["stop", "-t", "1", "owner"]);
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot join network namespace of a non running container"));
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "-p",
        "80",
        "busybox",
        "true",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("conflicting options: port publishing and the container type network mode"));
}

/// A random `10.x.y.0/24` for a user network (x in 100..=249, as the harness's).
fn user_subnet(d: &TestDaemon, k: u8) -> String {
    format!("{}.0/24", d.own_subnet24(1 + k as u16))
}

#[test]
fn user_networks_create_ls_inspect_run_rm() {
    let d = daemon();
    let subnet = user_subnet(&d, 0);
    let gw = subnet.replace("0/24", "1");
    let id = d.berth_ok(&[
        "network", "create", "--subnet", &subnet, "--label", "team=net", "mynet",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    let ls = d.berth_ok(&["network", "ls"]);
    let mut lines = ls.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    );
    assert!(
        ls.contains(&format!("{}   mynet     bridge    local", &id[..12])),
        "{ls}"
    );
    for pre in ["bridge", "host", "none"] {
        assert!(
            ls.lines().any(|l| l.split_whitespace().nth(1) == Some(pre)),
            "{ls}"
        );
    }
    let out = d.berth(&["network", "create", "mynet"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("network with name mynet already exists"));
    // a container on it gets an address of its subnet; another reaches it there
    web(&d, "usrv", "usernet", &["--network", "mynet"]);
    let v = d.inspect("usrv");
    let ep = &v["NetworkSettings"]["Networks"]["mynet"];
    assert_eq!(ep["NetworkID"], id.as_str());
    assert_eq!(ep["Gateway"], gw.as_str());
    let ip = ep["IPAddress"].as_str().unwrap().to_string();
    assert!(ip.starts_with(subnet.trim_end_matches("0/24")), "{ip}");
    let url = format!("http://{ip}/");
    let mut got = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        got = String::from_utf8_lossy(
            &d.berth(&[
                "run",
                "--rm",
                "--network",
                "mynet",
                "busybox",
                "wget",
                "-qO-",
                &url,
            ])
            .stdout,
        )
        .into_owned();
        got == "usernet\n"
    });
    assert!(ok, "{url}: {got:?}");
    // by name, through the embedded DNS server at 127.0.0.11 inside the container
    let resolv = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "mynet",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(resolv.starts_with("nameserver 127.0.0.11\n"), "{resolv}");
    let by_name = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "mynet",
        "busybox",
        "wget",
        "-qO-",
        "http://usrv/",
    ]);
    assert_eq!(by_name, "usernet\n");
    // (names it does not know are forwarded to the host's resolvers: unit-tested in
    // berth-net's dns module against a loopback upstream, to keep test traffic local)
    let net =
        &serde_json::from_str::<serde_json::Value>(&d.berth_ok(&["network", "inspect", "mynet"]))
            .unwrap()[0];
    assert_eq!(net["Name"], "mynet");
    assert_eq!(net["Driver"], "bridge");
    assert_eq!(net["IPAM"]["Config"][0]["Subnet"], subnet.as_str());
    assert_eq!(net["Labels"]["team"], "net");
    assert_eq!(net["Containers"][d.full_id("usrv")]["Name"], "usrv");
    assert_eq!(
        d.berth_ok(&["network", "inspect", "-f", "{{.Id}}", &id[..12]]),
        format!("{id}\n")
    );
    // in use: refused; then removed with its bridge
    let out = d.berth(&["network", "rm", "mynet"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has active endpoints"),
        "{out:?}"
    );
    d.berth_ok(&["rm", "-f", "usrv"]);
    assert_eq!(d.berth_ok(&["network", "rm", "mynet"]), "mynet\n");
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap()
        .stdout;
    assert!(
        !String::from_utf8_lossy(&links).contains(&format!("{}-", d.bridge)),
        "a user bridge is left"
    );
    let out = d.berth(&["network", "rm", "bridge"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("bridge is a pre-defined network and cannot be removed"));
    let out = d.berth(&["run", "--rm", "--network", "nosuch", "busybox", "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("network nosuch not found"));
    // prune removes unused networks
    d.berth_ok(&[
        "network",
        "create",
        "--subnet",
        &user_subnet(&d, 1),
        "--internal",
        "spare",
    ]);
    assert_eq!(
        d.berth_ok(&["network", "prune", "-f"]),
        "Deleted Networks:\nspare\n"
    );
}

#[test]
fn default_address_pool_gives_networks_without_subnet_the_next_free_block() {
    let base = free_test_subnet(); // 10.x.y.0/24, cut into /26 blocks
    let pool = format!("base={base},size=26");
    let d = TestDaemon::start_with_args(&["--default-address-pool", &pool]);
    d.import_busybox();
    let prefix = base.trim_end_matches("0/24").to_string();
    let subnet_of = |name: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&d.berth_ok(&["network", "inspect", name])).unwrap();
        format!(
            "{}\n",
            v[0]["IPAM"]["Config"][0]["Subnet"]
                .as_str()
                .unwrap_or("none")
        )
    };
    d.berth_ok(&["network", "create", "pool1"]);
    assert_eq!(subnet_of("pool1"), format!("{prefix}0/26\n"));
    // a network given a --subnet in the pool takes that block: the next one skips it
    d.berth_ok(&[
        "network",
        "create",
        "--subnet",
        &format!("{prefix}64/26"),
        "pool2",
    ]);
    d.berth_ok(&["network", "create", "pool3"]);
    assert_eq!(subnet_of("pool3"), format!("{prefix}128/26\n"));
    // a container on it gets an address of the block
    let ip = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "pool3",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0",
    ]);
    assert!(ip.contains(&format!("inet {prefix}130/26")), "{ip}");
    // released on rm: the block is given again
    d.berth_ok(&["network", "rm", "pool1"]);
    d.berth_ok(&["network", "create", "pool4"]);
    assert_eq!(subnet_of("pool4"), format!("{prefix}0/26\n"));
    d.berth_ok(&["network", "create", "pool5"]);
    assert_eq!(subnet_of("pool5"), format!("{prefix}192/26\n"));
    // the pool is used up: Docker's error
    let out = d.berth(&["network", "create", "pool6"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("could not find an available, non-overlapping IPv4 address pool"),
        "{out:?}"
    );
    for n in ["pool2", "pool3", "pool4", "pool5"] {
        d.berth_ok(&["network", "rm", n]);
    }
}

#[test]
fn links_write_hosts_entries_and_env() {
    let d = daemon();
    let id = web(&d, "db", "linked", &["--expose", "80", "-e", "SECRET=s3"]);
    let ip = d.inspect("db")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--name",
        "app",
        "--link",
        "db:dbalias",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts; env | sort",
    ]);
    assert!(
        out.contains(&format!("{ip}\tdbalias {} db\n", &id[..12])),
        "{out}"
    );
    for var in [
        format!("DBALIAS_PORT=tcp://{ip}:80"),
        format!("DBALIAS_PORT_80_TCP_ADDR={ip}"),
        "DBALIAS_PORT_80_TCP_PORT=80".to_string(),
        "DBALIAS_NAME=/app/dbalias".to_string(),
        "DBALIAS_ENV_SECRET=s3".to_string(),
    ] {
        assert!(out.lines().any(|l| l == var), "{var} missing:\n{out}");
    }
    let mut got = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        got = String::from_utf8_lossy(
            &d.berth(&[
                "run",
                "--rm",
                "--link",
                "db",
                "busybox",
                "wget",
                "-qO-",
                "http://db/",
            ])
            .stdout,
        )
        .into_owned();
        got == "linked\n"
    });
    assert!(ok, "wget http://db/ over the link: {got:?}");
    d.berth_ok(&["stop", "-t", "1", "db"]);
    let out = d.berth(&["run", "--rm", "--link", "db:x", "busybox", "true"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Cannot link to a non running container: /db AS"),
        "{out:?}"
    );
}

#[test]
fn docker_cli_networks_and_links() {
    skip_unless_docker!();
    let d = daemon();
    let subnet = user_subnet(&d, 2);
    let id = d
        .docker_ok(&["network", "create", "--subnet", &subnet, "dnet"])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let ls = d.docker_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(ls.lines().any(|l| l == "dnet bridge"), "{ls}");
    assert!(ls.lines().any(|l| l == "bridge bridge"), "{ls}");
    let v: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["network", "inspect", "dnet"])).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], subnet.as_str());
    let script = "echo dockercli > /tmp/index.html && exec httpd -f -p 80 -h /tmp";
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "dsrv",
        "--network",
        "dnet",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    let mut got = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        got = String::from_utf8_lossy(
            &d.docker(&[
                "run",
                "--rm",
                "--network",
                "dnet",
                "busybox",
                "wget",
                "-qO-",
                "http://dsrv/",
            ])
            .stdout,
        )
        .into_owned();
        got == "dockercli\n"
    });
    assert!(ok, "by name on dnet: {got:?}");
    d.docker_ok(&["rm", "-f", "dsrv"]);
    assert_eq!(d.docker_ok(&["network", "rm", "dnet"]), "dnet\n");
    // --link on the default bridge
    d.docker_ok(&["run", "-d", "--name", "lsrv", "busybox", "sh", "-c", script]);
    let ok = wait_until(Duration::from_secs(10), || {
        got = String::from_utf8_lossy(
            &d.docker(&[
                "run",
                "--rm",
                "--link",
                "lsrv:web",
                "busybox",
                "wget",
                "-qO-",
                "http://web/",
            ])
            .stdout,
        )
        .into_owned();
        got == "dockercli\n"
    });
    assert!(ok, "over --link: {got:?}");
}

#[test]
fn connect_and_disconnect_with_aliases() {
    let d = daemon();
    d.berth_ok(&[
        "network",
        "create",
        "--subnet",
        &user_subnet(&d, 3),
        "front",
    ]);
    d.berth_ok(&["network", "create", "--subnet", &user_subnet(&d, 4), "back"]);
    web(&d, "multi", "multi", &["--network", "front"]);
    d.berth_ok(&["network", "connect", "--alias", "api", "back", "multi"]);
    let v = d.inspect("multi");
    let back_ip = v["NetworkSettings"]["Networks"]["back"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        back_ip.starts_with(user_subnet(&d, 4).trim_end_matches("0/24")),
        "{back_ip}"
    );
    assert_eq!(
        v["NetworkSettings"]["Networks"]["back"]["Aliases"][0],
        "api"
    );
    assert!(
        v["NetworkSettings"]["Networks"]["front"]["IPAddress"]
            .as_str()
            .unwrap()
            .len()
            > 6
    );
    // from the back network: by alias and by name
    let mut got = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        got = String::from_utf8_lossy(
            &d.berth(&[
                "run",
                "--rm",
                "--network",
                "back",
                "busybox",
                "wget",
                "-qO-",
                "http://api/",
            ])
            .stdout,
        )
        .into_owned();
        got == "multi\n"
    });
    assert!(ok, "by alias on the connected network: {got:?}");
    assert_eq!(
        d.berth_ok(&[
            "run",
            "--rm",
            "--network",
            "back",
            "busybox",
            "wget",
            "-qO-",
            "http://multi/"
        ]),
        "multi\n"
    );
    let out = d.berth(&["network", "connect", "back", "multi"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("endpoint with name multi already exists in network back"));
    let out = d.berth(&["network", "rm", "back"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has active endpoints"));
    // a restart re-plugs it
    d.berth_ok(&["restart", "-t", "1", "multi"]);
    let ok = wait_until(Duration::from_secs(10), || {
        got = String::from_utf8_lossy(
            &d.berth(&[
                "run",
                "--rm",
                "--network",
                "back",
                "busybox",
                "wget",
                "-qO-",
                "http://api/",
            ])
            .stdout,
        )
        .into_owned();
        got == "multi\n"
    });
    assert!(ok, "after restart: {got:?}");
    d.berth_ok(&["network", "disconnect", "back", "multi"]);
    assert!(d.inspect("multi")["NetworkSettings"]["Networks"]
        .get("back")
        .is_none());
    let links = d.berth_ok(&["exec", "multi", "sh", "-c", "ip -o link | cut -d: -f2"]);
    assert_eq!(
        links
            .split_whitespace()
            .map(|l| l.split('@').next().unwrap())
            .collect::<Vec<_>>(),
        ["lo", "eth0"]
    );
    assert_eq!(d.berth_ok(&["network", "rm", "back"]), "back\n");
    d.berth_ok(&["rm", "-f", "multi"]);
    assert_eq!(d.berth_ok(&["network", "rm", "front"]), "front\n");
}

/// A UDP port published on 127.0.0.1 reaches a UDP server in the container. The busybox
/// test image has no UDP server, so the host's python3 runs in the container through
/// read-only binds of /usr, /lib and /lib64.
#[test]
fn published_udp_port_answers_on_loopback() {
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("skipped: no /usr/bin/python3 on the host to serve UDP");
        return;
    }
    let d = daemon();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:9999/udp");
    let server = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',9999))\nwhile True:\n d,a=s.recvfrom(512)\n s.sendto(b'echo:'+d,a)\n";
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        &publish,
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/lib:/lib:ro",
        "-v",
        "/lib64:/lib64:ro",
        "busybox",
        "/usr/bin/python3",
        "-c",
        server,
    ]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut answer = String::new();
    let ok = wait_until(Duration::from_secs(15), || {
        let _ = sock.send_to(b"ping", ("127.0.0.1", port));
        let mut buf = [0u8; 64];
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                answer = String::from_utf8_lossy(&buf[..n]).into_owned();
                true
            }
            Err(_) => false,
        }
    });
    assert!(
        ok,
        "no UDP answer on 127.0.0.1:{port}; logs: {}",
        d.berth_ok(&["logs", "udp"])
    );
    assert_eq!(answer, "echo:ping");
    d.berth_ok(&["rm", "-f", "udp"]);
}
