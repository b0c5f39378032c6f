//! The daemon's defaults for containers (issue 16): daemon.json `dns`, `dns-search`,
//! `dns-opts`, `host-gateway-ip`, `init`, `default-ulimits` and the same dockerd flags,
//! applied as dockerd applies them (when the container sets none of its own, never
//! shown in its HostConfig). Checked from inside the container, with the real Docker CLI.

mod common;

use common::*;

const DAEMON_JSON: &str = r#"{
    "dns": ["10.1.2.3"],
    "dns-search": ["corp.example"],
    "dns-opts": ["ndots:2"],
    "host-gateway-ip": "10.9.9.9",
    "init": true,
    "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}}
}"#;

fn daemon_with_file() -> (TestDaemon, tempfile::NamedTempFile) {
    let conf = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(conf.path(), DAEMON_JSON).unwrap();
    let d = TestDaemon::start_with_args(&["--config-file", conf.path().to_str().unwrap()]);
    d.import_busybox();
    (d, conf)
}

#[test]
fn daemon_json_dns_and_host_gateway_ip_reach_the_containers_files() {
    skip_unless_docker!();
    let (d, _conf) = daemon_with_file();
    let resolv = d.docker_ok(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert_eq!(
        resolv,
        "search corp.example\nnameserver 10.1.2.3\noptions ndots:2\n"
    );
    // The container's own setting wins, field by field.
    let resolv = d.docker_ok(&[
        "run",
        "--rm",
        "--dns",
        "1.1.1.1",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert_eq!(
        resolv,
        "search corp.example\nnameserver 1.1.1.1\noptions ndots:2\n"
    );
    let hosts = d.docker_ok(&[
        "run",
        "--rm",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(hosts.lines().any(|l| l == "10.9.9.9\tgw"), "{hosts}");
    // Never shown in the container's HostConfig (as dockerd).
    let id = d.docker_ok(&["create", "busybox", "true"]);
    let hc = &d.inspect(id.trim())["HostConfig"];
    assert_eq!(hc["Dns"], serde_json::json!([]), "{hc}");
    assert!(hc["Init"].is_null(), "{hc}");
    assert!(
        hc["Ulimits"].is_null() || hc["Ulimits"] == serde_json::json!([]),
        "{hc}"
    );
}

#[test]
fn daemon_json_init_and_default_ulimits_apply_unless_the_container_says_otherwise() {
    skip_unless_docker!();
    let (d, _conf) = daemon_with_file();
    let limits = d.docker_ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(limits, "1024\n2048\n");
    let limits = d.docker_ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=100:200",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(limits, "100\n200\n");
    // Under the init, `stop` ends sleep by the SIGTERM the init forwards (143); without
    // it, sleep as PID 1 ignores SIGTERM and is killed (137).
    let id = d.docker_ok(&["run", "-d", "busybox", "sleep", "100"]);
    d.docker_ok(&["stop", "-t", "30", id.trim()]);
    assert_eq!(d.inspect(id.trim())["State"]["ExitCode"], 143);
    let id = d.docker_ok(&["run", "-d", "--init=false", "busybox", "sleep", "100"]);
    d.docker_ok(&["stop", "-t", "1", id.trim()]);
    assert_eq!(d.inspect(id.trim())["State"]["ExitCode"], 137);
}

#[test]
fn the_same_defaults_as_daemon_flags() {
    skip_unless_docker!();
    let d = TestDaemon::start_with_args(&[
        "--dns",
        "10.4.4.4",
        "--dns-search",
        "a.example",
        "--dns-opt",
        "ndots:3",
        "--default-ulimit",
        "nproc=300:400",
        "--host-gateway-ip",
        "10.8.8.8",
    ]);
    d.import_busybox();
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; ulimit -u; grep gw /etc/hosts",
    ]);
    assert_eq!(
        out,
        "search a.example\nnameserver 10.4.4.4\noptions ndots:3\n300\n10.8.8.8\tgw\n"
    );
}

/// A DNS server on `addr` answering every query with 9.9.9.9 while the test runs.
fn fake_upstream(addr: &str) -> std::net::UdpSocket {
    let sock = std::net::UdpSocket::bind(addr).expect("binding the fake upstream");
    let s = sock.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 512];
        while let Ok((n, from)) = s.recv_from(&mut b) {
            // The question ends at the name's zero byte plus type and class.
            let Some(end) = b[12..n].iter().position(|x| *x == 0).map(|i| 12 + i + 5) else {
                continue;
            };
            let mut r = b[..end].to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            r[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
            r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 9, 9, 9, 9]);
            let _ = s.send_to(&r, from);
        }
    });
    sock
}

#[test]
fn on_user_networks_the_embedded_dns_forwards_to_the_daemons_dns() {
    // An upstream on a loopback address of its own, port 53 (where `dns` servers listen).
    let _up = fake_upstream("127.0.0.77:53");
    let d = TestDaemon::start_with_args(&["--dns", "127.0.0.77"]);
    d.import_busybox();
    d.berth_ok(&[
        "network",
        "create",
        "--subnet",
        &free_test_subnet(),
        "dnsnet",
    ]);
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "dnsnet",
        "busybox",
        "nslookup",
        "-timeout=3",
        "anything.example",
    ]);
    let answer = out
        .split_once("Name:\tanything.example")
        .map_or("", |(_, a)| a);
    assert!(answer.contains("Address: 9.9.9.9"), "{out}");
    d.berth_ok(&["network", "rm", "dnsnet"]);
}
