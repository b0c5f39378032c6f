//! testcontainers-python against Berth (issue 14, point 8): a `DockerContainer` with a
//! busybox httpd and an exposed port; `get_container_host_ip()` and `get_exposed_port()`
//! give an address and port that answer.
//!
//! The one setting it needs here, and why: `TESTCONTAINERS_RYUK_DISABLED=true`. The Ryuk
//! reaper is the image `testcontainers/ryuk:0.8.1` from Docker Hub (a Go program that
//! talks to the daemon's socket), unreachable here; Berth removes the container itself at
//! the end of the `with`. No `TC_HOST`: for a unix-socket `DOCKER_HOST` testcontainers takes
//! `localhost`; this machine has `/.dockerenv`, so it believes it runs inside a container,
//! finds no network of the daemon holding that address and takes its "gateway" mode: the
//! host is `NetworkSettings.Networks.bridge.Gateway` from `GET /containers/json` (the
//! default bridge's gateway, a host address where the published port answers). The second
//! run asks for the plain host mode a machine without `/.dockerenv` gets by default:
//! `localhost` and the mapped port.

mod common;
#[path = "common/testcontainers.rs"]
mod testcontainers;

use common::*;
use std::process::Command;
use std::time::Duration;

const SCRIPT: &str = r#"
import sys, time, urllib.request
from testcontainers.core.container import DockerContainer

c = (DockerContainer("busybox")
     .with_exposed_ports(80)
     .with_command(["sh", "-c", "echo tc-ok > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]))
with c:
    host = c.get_container_host_ip()
    port = c.get_exposed_port(80)
    body, err = None, None
    for _ in range(50):
        try:
            body = urllib.request.urlopen(f"http://{host}:{port}/", timeout=3).read().decode()
            break
        except Exception as e:
            err = e
            time.sleep(0.2)
    print(f"host={host} port={port} body={body!r} err={err!r}")
    sys.exit(0 if body == "tc-ok\n" else 1)
"#;

fn run_script(d: &TestDaemon, python: &std::path::Path, mode: Option<&str>) -> String {
    let mut cmd = Command::new(python);
    cmd.arg("-c")
        .arg(SCRIPT)
        .env("DOCKER_HOST", d.host())
        .env("TESTCONTAINERS_RYUK_DISABLED", "true")
        .env_remove("TC_HOST")
        .env_remove("TESTCONTAINERS_HOST_OVERRIDE")
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .env_remove("TESTCONTAINERS_CONNECTION_MODE");
    if let Some(m) = mode {
        cmd.env("TESTCONTAINERS_CONNECTION_MODE", m);
    }
    let out = run_with_timeout(cmd, None, Duration::from_secs(120), "testcontainers");
    assert_success(&out, "testcontainers script");
    stdout(&out)
}

#[test]
fn testcontainers_finds_host_and_mapped_port() {
    let python = match testcontainers::testcontainers_python() {
        Ok(p) => p,
        Err(e) => panic!("installing testcontainers: {e}"),
    };
    let d = TestDaemon::start();
    d.import_busybox();
    let gateway = d.bip.trim_end_matches("0/24").to_string() + "1";
    let out = run_script(&d, &python, None);
    assert!(out.starts_with("host="), "{out}");
    let host = out
        .trim_start_matches("host=")
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let inside = std::path::Path::new("/.dockerenv").exists();
    if inside {
        assert_eq!(host, gateway, "{out}");
    } else {
        assert_eq!(host, "localhost", "{out}");
    }
    let out = run_script(&d, &python, Some("docker_host"));
    assert!(out.starts_with("host=localhost port="), "{out}");
    // the `with` removed its container
    let left = d.berth_ok(&["ps", "-aq"]);
    assert!(left.trim().is_empty(), "{left}");
}
