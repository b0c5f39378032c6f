//! A published port is one element of a map in Berth's nftables table, added by its
//! container's start and deleted by its stop, without replacing the table (issue 14,
//! point 6): traffic through one container's published ports keeps flowing, without a
//! single lost request, while other containers with published ports start and go at
//! once on the default bridge and on a user network; concurrent starts keep each other's
//! elements; after `rm` none is left.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const THREADS: usize = 3;
const CYCLES: usize = 4;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The CLI on a test daemon, shareable between threads.
struct Cli {
    host: String,
    config: std::path::PathBuf,
    bridge: String,
}

impl Cli {
    fn of(d: &TestDaemon) -> Cli {
        Cli {
            host: d.host(),
            config: d.dir.join("docker-config"),
            bridge: d.bridge.clone(),
        }
    }

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

    fn run_detached(&self, extra: &[&str]) {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(extra);
        self.berth_ok(&args);
    }

    /// Berth's nftables table.
    fn table(&self) -> String {
        let out = Command::new("nft")
            .args(["list", "table", "ip", &format!("berth_{}", self.bridge)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn table(d: &TestDaemon) -> String {
    Cli::of(d).table()
}

/// Whether the table has an element for host port `port` (`[address . ]port : …`).
fn has_port(table: &str, port: u16) -> bool {
    table.contains(&format!(" {port} : "))
}

/// The body of `GET /` at `addr`, or what went wrong.
fn http_get(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("read: {e}"))?;
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .ok_or_else(|| format!("not HTTP: {out:?}"))
}

/// Sends requests to every address in a loop until `stop`; returns (answered, failures).
fn hammer(addrs: Vec<SocketAddr>, stop: Arc<AtomicBool>) -> (usize, Vec<String>) {
    let (mut ok, mut failed) = (0, Vec::new());
    while !stop.load(Ordering::Relaxed) {
        for a in &addrs {
            match http_get(*a) {
                Ok(b) if b == "first\n" => ok += 1,
                Ok(b) => failed.push(format!("{a}: answered {b:?}")),
                Err(e) => failed.push(format!("{a}: {e}")),
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (ok, failed)
}

fn httpd(text: &str) -> String {
    format!("echo {text} > /tmp/index.html && exec httpd -f -p 80 -h /tmp")
}

#[test]
fn other_containers_ports_come_and_go_without_disturbing_a_flowing_one() {
    let d = TestDaemon::start();
    d.import_busybox();
    let subnet = d.own_subnet24(1);
    d.berth_ok(&[
        "network",
        "create",
        "--subnet",
        &format!("{subnet}.0/24"),
        "elnet",
    ]);
    let (lo, all) = (free_port(), free_port());
    let (lo_spec, all_spec) = (format!("127.0.0.1:{lo}:80"), format!("{all}:80"));
    d.run_detached(&[
        "--name",
        "first",
        "-p",
        &lo_spec,
        "-p",
        &all_spec,
        "busybox",
        "sh",
        "-c",
        &httpd("first"),
    ]);
    let gw: Ipv4Addr = d.inspect("first")["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let addrs = vec![
        SocketAddr::from((Ipv4Addr::LOCALHOST, lo)),
        SocketAddr::from((gw, all)),
    ];
    for a in &addrs {
        let a = *a;
        assert!(
            wait_until(Duration::from_secs(10), || http_get(a).as_deref()
                == Ok("first\n")),
            "{a} does not answer: {:?}",
            http_get(a)
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (addrs, stop) = (addrs.clone(), stop.clone());
        std::thread::spawn(move || hammer(addrs, stop))
    };
    // Other containers publish ports and go, several at once, on both networks; each
    // answers through its own port while it runs.
    let cli = &Cli::of(&d);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                for i in 0..CYCLES {
                    let name = format!("other-{t}-{i}");
                    let port = free_port();
                    let spec = format!("127.0.0.1:{port}:80");
                    let net = if (t + i) % 2 == 0 { "bridge" } else { "elnet" };
                    cli.run_detached(&[
                        "--name",
                        &name,
                        "--network",
                        net,
                        "-p",
                        &spec,
                        "busybox",
                        "sh",
                        "-c",
                        &httpd(&name),
                    ]);
                    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                    let want = format!("{name}\n");
                    assert!(
                        wait_until(Duration::from_secs(10), || http_get(addr).as_deref()
                            == Ok(want.as_str())),
                        "{name} does not answer on {port}: {:?}",
                        http_get(addr)
                    );
                    assert!(has_port(&cli.table(), port), "{}", cli.table());
                    cli.berth_ok(&["rm", "-f", &name]);
                    let t = cli.table();
                    assert!(!has_port(&t, port), "{name}'s port {port} left:\n{t}");
                    assert!(
                        http_get(addr).is_err(),
                        "{name}'s port {port} still answers"
                    );
                }
            });
        }
    });
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = worker.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} lost of {}: {failed:?}",
        failed.len(),
        ok + failed.len()
    );
    assert!(ok >= 10, "only {ok} requests went through");
    let t = table(&d);
    assert!(has_port(&t, lo) && has_port(&t, all), "{t}");
    d.berth_ok(&["rm", "-f", "first"]);
    let t = table(&d);
    assert!(
        !t.contains("elements"),
        "published ports left after rm:\n{t}"
    );
    d.berth_ok(&["network", "rm", "elnet"]);
}

#[test]
fn concurrent_starts_keep_each_others_ports() {
    let d = TestDaemon::start();
    d.import_busybox();
    const N: usize = 8;
    let ports: Vec<u16> = (0..N).map(|_| free_port()).collect();
    let cli = &Cli::of(&d);
    std::thread::scope(|s| {
        for (i, port) in ports.iter().enumerate() {
            s.spawn(move || {
                let spec = format!("{port}:80");
                cli.run_detached(&[
                    "--name",
                    &format!("c{i}"),
                    "-p",
                    &spec,
                    "busybox",
                    "sleep",
                    "1000",
                ]);
            });
        }
    });
    let t = table(&d);
    for p in &ports {
        assert!(has_port(&t, *p), "port {p} missing:\n{t}");
    }
    // half go at once: exactly theirs go
    std::thread::scope(|s| {
        for i in (0..N).step_by(2) {
            s.spawn(move || cli.berth_ok(&["rm", "-f", &format!("c{i}")]));
        }
    });
    let t = table(&d);
    for (i, p) in ports.iter().enumerate() {
        assert_eq!(has_port(&t, *p), i % 2 == 1, "port {p} of c{i}:\n{t}");
    }
    // the host port of a removed one is taken again at once: its element now leads to
    // the new container
    let spec = format!("{}:80", ports[0]);
    d.run_detached(&["--name", "again", "-p", &spec, "busybox", "sleep", "1000"]);
    let ip = d.inspect("again")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let t = table(&d);
    assert!(t.contains(&format!(" {} : {ip} . 80", ports[0])), "{t}");
    d.berth_ok(&["rm", "-f", "again"]);
    assert!(!has_port(&table(&d), ports[0]), "{}", table(&d));
    // a restarted daemon rebuilds the same elements from its metadata
    let mut d = d;
    d.kill_daemon();
    d.start_daemon();
    let t = table(&d);
    for (i, p) in ports.iter().enumerate() {
        assert_eq!(
            has_port(&t, *p),
            i % 2 == 1,
            "after restart, port {p} of c{i}:\n{t}"
        );
    }
    let rest: Vec<String> = (1..N).step_by(2).map(|i| format!("c{i}")).collect();
    let mut args = vec!["rm", "-f"];
    args.extend(rest.iter().map(String::as_str));
    d.berth_ok(&args);
    let t = table(&d);
    assert!(
        !t.contains("elements"),
        "published ports left after rm:\n{t}"
    );
}
