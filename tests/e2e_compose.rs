//! docker-compose 1.29 runs a project against Berth (issue 14, point 8): two services on
//! the project's default network (one with a published port and a service alias), a
//! second network, names resolved between services, then `down` removes it all.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;

#[path = "common/compose.rs"]
mod compose;

const COMPOSE_FILE: &str = r#"version: "3.8"
services:
  web:
    image: busybox
    command: sh -c "echo hello-compose > /tmp/index.html && exec httpd -f -p 80 -h /tmp"
    ports:
      - "127.0.0.1::80"
    networks:
      default:
        aliases:
          - api
      back: {}
  client:
    image: busybox
    command: sleep 300
  worker:
    image: busybox
    command: sleep 300
    networks:
      - back
networks:
  back: {}
"#;

fn compose(d: &TestDaemon, dir: &Path, args: &[&str]) -> Output {
    compose::compose_in(d, "berthc", dir, args)
}

fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// `wget http://{host}/` inside container `from`, retried while the server comes up.
fn fetch_from(d: &TestDaemon, from: &str, host: &str) -> String {
    let url = format!("http://{host}/");
    let mut got = String::new();
    wait_until(Duration::from_secs(15), || {
        got = stdout(&d.berth(&["exec", from, "wget", "-qO-", &url]));
        got == "hello-compose\n"
    });
    got
}

#[test]
fn compose_up_talks_by_name_and_down_cleans_up() {
    if !compose::compose_available() {
        return;
    }
    let d = TestDaemon::start();
    d.import_busybox();
    let proj = d.dir.join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(proj.join("docker-compose.yml"), COMPOSE_FILE).unwrap();

    let out = compose(&d, &proj, &["up", "-d"]);
    assert_success(&out, "docker-compose up -d");
    let ps = stdout(&compose(&d, &proj, &["ps"]));
    for svc in ["berthc_web_1", "berthc_client_1", "berthc_worker_1"] {
        assert!(
            ps.lines().any(|l| l.starts_with(svc) && l.contains("Up")),
            "{ps}"
        );
    }
    // the published port, as compose reports it
    let port = stdout(&compose(&d, &proj, &["port", "web", "80"]));
    let port: u16 = port
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("port: {port:?}"));
    let mut got = None;
    assert!(
        wait_until(Duration::from_secs(15), || {
            got = http_get(port);
            got.as_deref() == Some("hello-compose\n")
        }),
        "127.0.0.1:{port}: {got:?}"
    );
    // by service name and by alias on the default network, by name on the second one
    assert_eq!(fetch_from(&d, "berthc_client_1", "web"), "hello-compose\n");
    assert_eq!(fetch_from(&d, "berthc_client_1", "api"), "hello-compose\n");
    assert_eq!(fetch_from(&d, "berthc_worker_1", "web"), "hello-compose\n");
    // the alias is on the default network only
    let out = d.berth(&["exec", "berthc_worker_1", "nslookup", "api"]);
    assert!(
        !out.status.success(),
        "api resolved on back: {}",
        stdout(&out)
    );
    let v = d.inspect("berthc_web_1");
    let nets = &v["NetworkSettings"]["Networks"];
    let aliases = nets["berthc_default"]["Aliases"].to_string();
    assert!(
        aliases.contains("\"api\"") && aliases.contains("\"web\""),
        "{nets}"
    );
    assert!(
        nets["berthc_back"]["IPAddress"]
            .as_str()
            .is_some_and(|ip| !ip.is_empty()),
        "{nets}"
    );

    let out = compose(&d, &proj, &["down", "-t", "1"]);
    assert_success(&out, "docker-compose down");
    assert_eq!(d.berth_ok(&["ps", "-aq"]), "");
    let nets = d.berth_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("berthc_"), "{nets}");
}
