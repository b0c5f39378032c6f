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
    "--dns",
    "1.1.1.1",
    "--dns",
    "9.9.9.9",
    "--dns-search",
    "a.example",
    "--dns-option",
    "ndots:2",
    "--add-host",
    "foo:1.2.3.4",
    "--add-host",
    "gw:host-gateway",
    "--add-host",
    "foo6:::1",
    "-h",
    "box",
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
    assert_eq!(
        tail[..3],
        ["1.2.3.4\tfoo", &format!("{gateway}\tgw"), "::1\tfoo6"],
        "{hosts}"
    );
    assert!(tail[3].ends_with("\tbox"), "{hosts}");
}

const NAMES_SCRIPT: &str =
    "cat /etc/resolv.conf; echo --; cat /etc/hosts; echo ==; ip route | grep default";

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
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--dns-search",
        "x.example",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(out.starts_with("search x.example\nnameserver "), "{out}");
    skip_unless_docker!();
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(DNS_FLAGS);
    args.extend_from_slice(&["busybox", "sh", "-c", NAMES_SCRIPT]);
    check_names(&d.docker_ok(&args));
}

const LIMITS_SCRIPT: &str =
    "id -G; grep ^postgres: /etc/group | cut -d: -f3; ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1";

fn check_limits(out: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    let groups: Vec<&str> = lines[0].split_whitespace().collect();
    assert!(
        groups.contains(&lines[1]),
        "postgres gid {} not in {groups:?}",
        lines[1]
    );
    assert!(groups.contains(&"1234"), "{groups:?}");
    assert_eq!(lines[2], "256");
    assert_eq!(lines[3], "512");
    // 64 MiB of /dev/shm by default
    assert_eq!(lines[4].split_whitespace().nth(1), Some("65536"), "{out}");
}

#[test]
fn ulimit_group_add_and_shm_size() {
    let d = daemon();
    let flags = [
        "--group-add",
        "postgres",
        "--group-add",
        "1234",
        "--ulimit",
        "nofile=256:512",
    ];
    let mut args = vec!["run", "--name", "l1"];
    args.extend_from_slice(&flags);
    args.extend_from_slice(&["busybox", "sh", "-c", LIMITS_SCRIPT]);
    check_limits(&d.berth_ok(&args));
    let hc = &d.inspect("l1")["HostConfig"];
    assert_eq!(hc["ShmSize"], 67_108_864);
    assert_eq!(hc["GroupAdd"], serde_json::json!(["postgres", "1234"]));
    assert_eq!(
        hc["Ulimits"],
        serde_json::json!([{"Name": "nofile", "Soft": 256, "Hard": 512}])
    );
    // exec gets the groups too
    d.berth_ok(&["rm", "l1"]);
    // an unknown group fails at start with Docker's words
    let out = d.berth(&[
        "run",
        "--rm",
        "--group-add",
        "nosuchgroup",
        "busybox",
        "true",
    ]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out)
            .contains("Unable to find group nosuchgroup: no matching entries in group file"),
        "{}",
        stderr(&out)
    );
    skip_unless_docker!();
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(&flags);
    args.extend_from_slice(&["busybox", "sh", "-c", LIMITS_SCRIPT]);
    check_limits(&d.docker_ok(&args));
}

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .expect("own namespace link")
        .display()
        .to_string()
}

const NS_SCRIPT: &str =
    "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; hostname; grep -c ' /dev/shm ' /proc/mounts || true";

#[test]
fn pid_ipc_uts_host_and_ipc_none() {
    let d = daemon();
    let host_name = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let check_host = |out: &str| {
        let l: Vec<&str> = out.lines().collect();
        assert_eq!(l[0], host_ns("pid"), "{out}");
        assert_eq!(l[1], host_ns("ipc"), "{out}");
        assert_eq!(l[2], host_name, "{out}");
        assert_eq!(l[3], "1", "{out}");
    };
    let flags = ["--pid", "host", "--ipc", "host", "--uts", "host"];
    let mut args = vec!["run", "--name", "ns1"];
    args.extend_from_slice(&flags);
    args.extend_from_slice(&["busybox", "sh", "-c", NS_SCRIPT]);
    check_host(&d.berth_ok(&args));
    let hc = &d.inspect("ns1")["HostConfig"];
    assert_eq!(
        (
            hc["PidMode"].as_str(),
            hc["IpcMode"].as_str(),
            hc["UTSMode"].as_str()
        ),
        (Some("host"), Some("host"), Some("host"))
    );
    d.berth_ok(&["rm", "ns1"]);
    // the defaults: own namespaces, IpcMode "private" in inspect
    let out = d.berth_ok(&["run", "--name", "ns2", "busybox", "sh", "-c", NS_SCRIPT]);
    let l: Vec<&str> = out.lines().collect();
    assert_ne!(l[0], host_ns("pid"));
    assert_ne!(l[1], host_ns("ipc"));
    assert_ne!(l[2], host_name);
    assert_eq!(d.inspect("ns2")["HostConfig"]["IpcMode"], "private");
    d.berth_ok(&["rm", "ns2"]);
    // --ipc none: no /dev/shm
    let out = d.berth_ok(&[
        "run", "--rm", "--ipc", "none", "busybox", "sh", "-c", NS_SCRIPT,
    ]);
    assert_eq!(out.lines().nth(3), Some("0"), "{out}");
    // sharing another container's pid namespace is refused, not ignored
    let out = d.berth(&["create", "--pid", "container:x", "busybox"]);
    assert_ne!(code(&out), 0);
    skip_unless_docker!();
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(&flags);
    args.extend_from_slice(&["busybox", "sh", "-c", NS_SCRIPT]);
    check_host(&d.docker_ok(&args));
}

const INIT_SCRIPT: &str =
    "cat /proc/1/comm; test -f /sbin/docker-init && echo present; sh -c 'sleep 0.2 & exit 0'; sleep 1; ps -o stat | grep -c '^Z' || true";

#[test]
fn init_runs_as_pid_1_reaps_and_forwards_signals() {
    let d = daemon();
    let check = |out: &str| {
        let l: Vec<&str> = out.lines().collect();
        assert_eq!(l[0], "docker-init", "{out}");
        assert_eq!(l[1], "present", "{out}");
        assert_eq!(l[2], "0", "a zombie was left: {out}");
    };
    check(&d.berth_ok(&["run", "--rm", "--init", "busybox", "sh", "-c", INIT_SCRIPT]));
    // `stop` sends SIGTERM, which the init forwards: sleep ends by it (143), not by the
    // SIGKILL after the timeout (137).
    d.berth_ok(&[
        "run", "-d", "--init", "--name", "i1", "busybox", "sleep", "100",
    ]);
    d.berth_ok(&["stop", "-t", "30", "i1"]);
    let st = &d.inspect("i1")["State"];
    assert_eq!(st["ExitCode"], 143, "{st}");
    assert_eq!(d.inspect("i1")["HostConfig"]["Init"], true);
    d.berth_ok(&["rm", "i1"]);
    let (status, _, info) = d.request("GET", "/v1.41/info", None);
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["InitBinary"], "docker-init");
    skip_unless_docker!();
    check(&d.docker_ok(&["run", "--rm", "--init", "busybox", "sh", "-c", INIT_SCRIPT]));
    d.docker_ok(&[
        "run", "-d", "--init", "--name", "i2", "busybox", "sleep", "100",
    ]);
    d.docker_ok(&["stop", "i2"]);
    assert_eq!(d.inspect("i2")["State"]["ExitCode"], 143);
    d.docker_ok(&["rm", "i2"]);
}

#[test]
fn bad_input_gets_dockers_words_and_leaves_nothing() {
    let d = daemon();
    let cases: &[(&[&str], &str)] = &[
        (&["--add-host", "nocolon"], "invalid argument \"nocolon\" for \"--add-host\" flag: bad format for add-host: \"nocolon\""),
        (&["--add-host", "a:x"], "invalid argument \"a:x\" for \"--add-host\" flag: invalid IP address in add-host: \"x\""),
        (&["--ulimit", "nofile=x"], "invalid argument \"nofile=x\" for \"--ulimit\" flag: strconv.ParseInt: parsing \"x\": invalid syntax"),
        (&["--ulimit", "foo=1"], "invalid argument \"foo=1\" for \"--ulimit\" flag: invalid ulimit type: foo"),
        (&["--ulimit", "nofile=10:5"], "invalid argument \"nofile=10:5\" for \"--ulimit\" flag: ulimit soft limit must be less than or equal to hard limit: 10 > 5"),
        (&["--dns", "x"], "invalid argument \"x\" for \"--dns\" flag: IP address is not correctly formatted: x"),
        (&["--pid", "bogus"], "--pid: invalid PID mode"),
    ];
    for (flags, text) in cases {
        let mut args = vec!["create"];
        args.extend_from_slice(flags);
        args.push("busybox");
        let out = d.berth(&args);
        assert_eq!(code(&out), 125, "{flags:?}");
        assert!(stderr(&out).contains(text), "{flags:?}: {}", stderr(&out));
    }
    // The daemon checks again (clients that skip the CLI's checks).
    let bodies = [
        (
            serde_json::json!({"ExtraHosts": ["nocolon"]}),
            "bad format for add-host: \"nocolon\"",
        ),
        (
            serde_json::json!({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}),
            "invalid ulimit type: bogus",
        ),
        (
            serde_json::json!({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]}),
            "ulimit soft limit must be less than or equal to hard limit: 10 > 5",
        ),
        (
            serde_json::json!({"IpcMode": "bogus"}),
            "Invalid IPC mode: bogus",
        ),
        (
            serde_json::json!({"PidMode": "container:x"}),
            "No such container: x",
        ),
        (
            serde_json::json!({"UTSMode": "host"}),
            "Conflicting options: hostname and the UTS mode",
        ),
    ];
    for (hc, text) in bodies {
        let mut body = serde_json::json!({"Image": "busybox", "HostConfig": hc});
        if hc.get("UTSMode").is_some() {
            body["Hostname"] = "box".into();
        }
        let (status, _, resp) = d.request(
            "POST",
            "/v1.41/containers/create",
            Some(body.to_string().as_bytes()),
        );
        let resp = String::from_utf8_lossy(&resp);
        assert_eq!(status, 400, "{hc}: {resp}");
        assert!(resp.contains(&text.replace('"', "\\\"")), "{hc}: {resp}");
    }
    assert_eq!(
        d.berth_ok(&["ps", "-aq"]).trim(),
        "",
        "a refused create left a container"
    );
    skip_unless_docker!();
    let out = d.docker(&["create", "--add-host", "nocolon", "busybox"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("bad format for add-host: \"nocolon\""),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--group-add",
        "nosuchgroup",
        "busybox",
        "true",
    ]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("Unable to find group nosuchgroup"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        d.berth_ok(&["ps", "-aq"]).trim(),
        "",
        "a failed run --rm left a container"
    );
}

#[test]
fn dns_on_a_user_network() {
    let d = daemon();
    let subnet = format!("{}.0/24", d.own_subnet24(7));
    d.berth_ok(&["network", "create", "--subnet", &subnet, "optnet"]);
    // search and options reach the file; the embedded server stays the nameserver
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "optnet",
        "--dns-search",
        "a.example",
        "--dns-option",
        "ndots:3",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert_eq!(
        out,
        "search a.example\nnameserver 127.0.0.11\noptions ndots:3\n"
    );
    // --dns there: the embedded server forwards that container's other queries to them
    let upstream = FakeUpstream::start("127.0.0.77:53", [9, 9, 9, 9]);
    let ask = |dns: &str| {
        let out = d.berth(&[
            "run",
            "--rm",
            "--network",
            "optnet",
            "--dns",
            dns,
            "busybox",
            "nslookup",
            "-type=a",
            "somewhere.example",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = ask("127.0.0.77");
    assert!(out.contains("9.9.9.9"), "{out}");
    assert!(upstream.queries() > 0);
    // another container's --dns (nothing listens there) is not this one's
    let out = ask("127.0.0.78");
    assert!(!out.contains("9.9.9.9"), "{out}");
    d.berth_ok(&["network", "rm", "optnet"]);
}

#[test]
fn runtime_runc_is_the_built_in_runtime_and_others_are_refused() {
    let d = daemon();
    let out = d.berth_ok(&[
        "run",
        "--name",
        "viarunc",
        "--runtime",
        "runc",
        "busybox",
        "echo",
        "ran",
    ]);
    assert_eq!(out.trim(), "ran");
    assert_eq!(d.inspect("viarunc")["HostConfig"]["Runtime"], "runc");
    let out = d.berth(&["run", "--rm", "--runtime", "kata", "busybox", "true"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("unknown or invalid runtime name: kata"),
        "{}",
        stderr(&out)
    );
    d.berth_ok(&["rm", "viarunc"]);
}

/// A DNS server on `addr` (UDP) that answers every A query with `ip`, counting queries.
struct FakeUpstream {
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FakeUpstream {
    fn start(addr: &str, ip: [u8; 4]) -> FakeUpstream {
        use std::sync::atomic::Ordering;
        let sock = std::net::UdpSocket::bind(addr).expect("binding the fake upstream");
        sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, st) = (count.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                c.fetch_add(1, Ordering::Relaxed);
                // the question ends after the name's zero label, type and class
                let Some(zero) = buf[12..n].iter().position(|b| *b == 0) else {
                    continue;
                };
                let end = 12 + zero + 5;
                let qtype = u16::from_be_bytes([buf[end - 4], buf[end - 3]]);
                let mut r = buf[..end].to_vec();
                r[2] = 0x81; // QR, RD
                r[3] = 0x80; // RA, NOERROR
                r[6] = 0;
                r[7] = u8::from(qtype == 1); // ANCOUNT
                r[8..12].fill(0);
                if qtype == 1 {
                    r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                    r.extend_from_slice(&ip);
                }
                let _ = sock.send_to(&r, from);
            }
        });
        FakeUpstream { count, stop }
    }

    fn queries(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
