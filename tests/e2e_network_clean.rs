//! Nothing of Berth's networking piles up (issue 14, point 7): after 300 runs with
//! published ports, half on the default bridge and half on a user network, in parallel
//! batches, no veth, nftables rule, namespace file or mount, port holder or conntrack entry
//! of a container's address is left, and
//! the daemon's fd count and RSS are back near where they started.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

const RUNS: usize = 300;
const THREADS: usize = 6;

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|r| r.count())
        .unwrap_or(0)
}

/// The daemon's sockets (a port holder is one).
fn socket_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|r| {
            r.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .map(|l| l.to_string_lossy().starts_with("socket:"))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn links_on(bridge: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
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

/// Conntrack entries with a container's address of `subnets` (not their gateways) on
/// either side.
fn conntrack_entries(subnets: &[(u32, u32)]) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/nf_conntrack").unwrap_or_default();
    table
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .filter_map(|w| w.strip_prefix("src=").or_else(|| w.strip_prefix("dst=")))
                .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
                .map(u32::from)
                .any(|a| {
                    subnets
                        .iter()
                        .any(|(net, mask)| a & mask == *net && a != net + 1)
                })
        })
        .map(String::from)
        .collect()
}

fn parse_subnet(s: &str) -> (u32, u32) {
    let (a, p) = s.split_once('/').unwrap();
    let p: u32 = p.parse().unwrap();
    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    (
        u32::from(a.parse::<std::net::Ipv4Addr>().unwrap()) & mask,
        mask,
    )
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

/// The CLI against one daemon, usable from several threads (`TestDaemon` is not `Sync`).
#[derive(Clone)]
struct Cli {
    host: String,
    config: std::path::PathBuf,
}

impl Cli {
    fn berth_ok(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(BERTH);
        cmd.arg("-H").arg(&self.host).args(args);
        cmd.env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", &self.config);
        let what = format!("berth {}", args.join(" "));
        let out = run_with_timeout(cmd, None, CMD_TIMEOUT, &what);
        assert_success(&out, &what);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One cycle: a web container with published ports, answered once in ten, then removed.
fn cycle(d: &Cli, net: &str, i: usize) {
    if i.is_multiple_of(10) {
        let id = d.berth_ok(&[
            "run",
            "-d",
            "--network",
            net,
            "-p",
            "127.0.0.1::80",
            "-p",
            "80",
            "busybox",
            "sh",
            "-c",
            "echo up > /tmp/index.html && exec httpd -f -p 80 -h /tmp",
        ]);
        let id = id.trim();
        let port: u16 = d
            .berth_ok(&["port", id, "80"])
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.trim().parse().ok())
            .unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || http_get(port).as_deref()
                == Some("up\n")),
            "run {i} on {net}: port {port} does not answer"
        );
        d.berth_ok(&["rm", "-f", id]);
    } else {
        d.berth_ok(&[
            "run",
            "--rm",
            "--network",
            net,
            "-p",
            "127.0.0.1::80",
            "-p",
            "81/udp",
            "busybox",
            "true",
        ]);
    }
}

#[test]
fn three_hundred_runs_with_published_ports_leave_nothing() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.berth_ok(&["network", "create", "cleannet"]);
    // the user network's bridge is `<daemon bridge>-<id prefix>`
    let user_bridge = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&format!("{}-", d.bridge)))
        .expect("the user network's bridge");
    // warm-up: a few runs on each network, so lazily made things (image, caches) exist
    let cli = Cli {
        host: d.host(),
        config: d.dir.join("docker-config"),
    };
    for net in ["bridge", "cleannet"] {
        for i in 0..3 {
            cycle(&cli, net, i);
        }
    }
    let user_subnet = d.berth_ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Subnet}}",
        "cleannet",
    ]);
    let subnets = [parse_subnet(&d.bip), parse_subnet(user_subnet.trim())];
    // a flow through a published port is tracked while the container runs, and forgotten
    // with it
    let id = cli.berth_ok(&[
        "run",
        "-d",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        "echo up > /tmp/index.html && exec httpd -f -p 80 -h /tmp",
    ]);
    let port: u16 = cli
        .berth_ok(&["port", id.trim(), "80"])
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || http_get(port)
        .as_deref()
        == Some("up\n")));
    assert!(!conntrack_entries(&subnets).is_empty(), "no flow tracked");
    cli.berth_ok(&["rm", "-f", id.trim()]);
    // forgotten in the background, at once
    let gone = wait_until(Duration::from_secs(5), || {
        conntrack_entries(&subnets).is_empty()
    });
    assert!(
        gone,
        "conntrack entries left after rm: {:#?}",
        conntrack_entries(&subnets)
    );
    let pid = d.daemon_pid().unwrap();
    let (fds0, socks0, rss0) = (fd_count(pid), socket_count(pid), rss_kib(pid));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let d = cli.clone();
            s.spawn(move || {
                let net = if t % 2 == 0 { "bridge" } else { "cleannet" };
                for i in 0..RUNS / THREADS {
                    cycle(&d, net, i + t);
                }
            });
        }
    });
    assert!(links_on(&d.bridge).is_empty(), "{:?}", links_on(&d.bridge));
    assert!(
        links_on(&user_bridge).is_empty(),
        "{:?}",
        links_on(&user_bridge)
    );
    let t = table(&d);
    // published ports are map elements: none is left
    assert!(!t.contains("elements"), "{t}");
    let left: Vec<_> = std::fs::read_dir(d.exec_root.join("netns"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(d.exec_root.join("netns").to_str().unwrap()),
        "namespace mounts left"
    );
    let gone = wait_until(Duration::from_secs(5), || {
        conntrack_entries(&subnets).is_empty()
    });
    assert!(
        gone,
        "conntrack entries left: {:#?}",
        conntrack_entries(&subnets)
    );
    // RSS: allocator caches may keep some pages, a leak per run would be far more. Idle
    // blocking-pool threads (create and rm run there) and their malloc arenas go after
    // 10 s, so the bound is given that long to hold.
    let rss_bound = rss0 + rss0 / 2 + 8 * 1024;
    wait_until(Duration::from_secs(20), || rss_kib(pid) <= rss_bound);
    let (fds1, socks1, rss1) = (fd_count(pid), socket_count(pid), rss_kib(pid));
    assert!(
        socks1 <= socks0,
        "sockets {socks0} -> {socks1}: port holders left"
    );
    assert!(fds1 <= fds0 + 3, "fds {fds0} -> {fds1}");
    assert!(rss1 <= rss_bound, "RSS {rss0} KiB -> {rss1} KiB");
    eprintln!("fds {fds0} -> {fds1}, sockets {socks0} -> {socks1}, RSS {rss0} -> {rss1} KiB");
}
