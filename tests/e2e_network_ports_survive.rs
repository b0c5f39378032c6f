//! Published ports survive the daemon (issue 14, point 4): traffic to a port published on
//! 127.0.0.1 and to one published on every address (reached on the host's address on the
//! test daemon's own bridge) keeps flowing, without a single lost request, while the
//! daemon is SIGKILLed, down, restarted, stopped with SIGTERM and started again.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
                Ok(b) if b == "alive\n" => ok += 1,
                Ok(b) => failed.push(format!("{a}: answered {b:?}")),
                Err(e) => failed.push(format!("{a}: {e}")),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (ok, failed)
}

#[test]
fn published_ports_keep_answering_through_daemon_kill_and_restart() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    let (lo, all) = (free_port(), free_port());
    let lo_spec = format!("127.0.0.1:{lo}:80");
    let all_spec = format!("{all}:80");
    d.run_detached(&[
        "--name",
        "web",
        "-p",
        &lo_spec,
        "-p",
        &all_spec,
        "busybox",
        "sh",
        "-c",
        "echo alive > /tmp/index.html && exec httpd -f -p 80 -h /tmp",
    ]);
    let gw: Ipv4Addr = d.inspect("web")["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let addrs = vec![
        SocketAddr::from((Ipv4Addr::LOCALHOST, lo)),
        SocketAddr::from((Ipv4Addr::LOCALHOST, all)),
        SocketAddr::from((gw, all)),
    ];
    for a in &addrs {
        let a = *a;
        assert!(
            wait_until(Duration::from_secs(10), || http_get(a).as_deref()
                == Ok("alive\n")),
            "{a} does not answer: {:?}",
            http_get(a)
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (addrs, stop) = (addrs.clone(), stop.clone());
        std::thread::spawn(move || hammer(addrs, stop))
    };
    std::thread::sleep(Duration::from_millis(300));
    d.kill_daemon();
    // down for a while: the kernel alone carries the traffic
    std::thread::sleep(Duration::from_millis(1500));
    d.start_daemon();
    std::thread::sleep(Duration::from_millis(700));
    d.stop_daemon(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1000));
    d.start_daemon();
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = worker.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} lost of {}: {failed:?}",
        failed.len(),
        ok + failed.len()
    );
    assert!(ok >= 30, "only {ok} requests went through");
    // the restarted daemon still owns the ports: a second container cannot take one
    let out = d.berth(&["run", "-d", "-p", &lo_spec, "busybox", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("port is already allocated"),
        "{}",
        stderr(&out)
    );
    d.berth_ok(&["rm", "-f", "web"]);
    for a in &addrs {
        assert!(http_get(*a).is_err(), "{a} still answers after rm");
    }
}
