//! `GET /containers/{id}/stats`, `berth stats` and the real `docker stats` (issue 15,
//! point 4): Docker's JSON on this machine's cgroups, streaming, one-shot, stopped
//! containers, and the CLI tables.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

fn stats_json(d: &TestDaemon, name: &str, query: &str) -> Value {
    let (status, _, body) = d.request("GET", &format!("/containers/{name}/stats?{query}"), None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)))
}

/// The first `n` objects of a streamed answer (the connection is dropped after).
fn streamed(d: &TestDaemon, path: &str, n: usize) -> Vec<Value> {
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: berth\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut out = Vec::new();
    while out.len() < n {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "the stream ended after {} objects",
            out.len()
        );
        if !line.trim().is_empty() {
            out.push(serde_json::from_str(line.trim()).unwrap());
        }
    }
    out
}

#[test]
fn a_running_containers_stats_are_dockers_json() {
    let d = daemon();
    let id = d.run_detached(&[
        "--name",
        "busy",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sh",
        "-c",
        "while true; do :; done",
    ]);
    let s = stats_json(&d, "busy", "stream=false");
    assert_eq!(
        (s["name"].as_str(), s["id"].as_str()),
        (Some("/busy"), Some(id.as_str()))
    );
    for key in ["read", "preread"] {
        assert_ne!(s[key], "0001-01-01T00:00:00Z", "{key} is set: {s}");
    }
    let cpu = &s["cpu_stats"];
    assert!(cpu["online_cpus"].as_u64().unwrap() >= 1, "{cpu}");
    assert!(cpu["system_cpu_usage"].as_u64().unwrap() > 0, "{cpu}");
    assert!(cpu["throttling_data"]["periods"].is_u64());
    let pre = &s["precpu_stats"];
    assert!(
        pre["system_cpu_usage"].as_u64().unwrap() < cpu["system_cpu_usage"].as_u64().unwrap(),
        "precpu is an earlier sample: {s}"
    );
    assert!(
        cpu["cpu_usage"]["total_usage"].as_u64().unwrap()
            > pre["cpu_usage"]["total_usage"].as_u64().unwrap(),
        "the busy loop used CPU between the samples: {s}"
    );
    let mem = &s["memory_stats"];
    assert_eq!(mem["limit"], 64 * 1024 * 1024);
    assert!(mem["usage"].as_u64().unwrap() > 0);
    let stats = mem["stats"].as_object().unwrap();
    assert!(
        stats.contains_key("inactive_file") || stats.contains_key("total_inactive_file"),
        "{mem}"
    );
    assert_eq!(s["pids_stats"]["limit"], 50);
    assert!(s["pids_stats"]["current"].as_u64().unwrap() >= 1);
    assert!(
        s["blkio_stats"]["io_service_bytes_recursive"].is_array(),
        "{}",
        s["blkio_stats"]
    );
    let eth0 = &s["networks"]["eth0"];
    for k in [
        "rx_bytes",
        "rx_packets",
        "rx_errors",
        "rx_dropped",
        "tx_bytes",
        "tx_packets",
        "tx_errors",
        "tx_dropped",
    ] {
        assert!(eth0[k].is_u64(), "networks.eth0.{k}: {}", s["networks"]);
    }
    assert!(s["networks"].get("lo").is_none());
    assert_eq!(s["storage_stats"], serde_json::json!({}));
    assert_eq!(s["num_procs"], 0);
}

#[test]
fn one_shot_streaming_and_stopped_containers() {
    let d = daemon();
    d.run_detached(&["--name", "up", "busybox", "sleep", "1000"]);
    let one = stats_json(&d, "up", "stream=false&one-shot=true");
    assert_eq!(one["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(one["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    assert!(
        one["cpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .unwrap()
            > 0
    );
    let (status, _, body) = d.request(
        "GET",
        "/containers/up/stats?stream=true&one-shot=true",
        None,
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("cannot have stream=true and one-shot=true"));
    // Streaming: each object's precpu is the one before.
    let objs = streamed(&d, "/containers/up/stats", 2);
    assert_eq!(objs[1]["precpu_stats"], objs[0]["cpu_stats"]);
    assert_eq!(objs[1]["preread"], objs[0]["read"]);
    // A stopped container: Docker's zeroed answer.
    d.berth_ok(&["create", "--name", "idle", "busybox", "true"]);
    let z = stats_json(&d, "idle", "stream=false");
    assert_eq!(z["read"], "0001-01-01T00:00:00Z");
    assert_eq!(z["name"], "/idle");
    assert_eq!(z["memory_stats"], serde_json::json!({}));
    assert_eq!(z["pids_stats"], serde_json::json!({}));
    assert!(z["blkio_stats"]["io_service_bytes_recursive"].is_null());
    assert!(z.get("networks").is_none());
    let (status, _, _) = d.request("GET", "/containers/nosuch/stats?stream=false", None);
    assert_eq!(status, 404);
    // Host networking: no interfaces of its own.
    d.run_detached(&[
        "--name",
        "hostnet",
        "--network",
        "host",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert!(stats_json(&d, "hostnet", "stream=false")
        .get("networks")
        .is_none());
}

fn table_rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| {
            l.split("   ")
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect()
}

#[test]
fn berth_stats_prints_dockers_table() {
    let d = daemon();
    let id = d.run_detached(&["--name", "web", "-m", "32m", "busybox", "sleep", "1000"]);
    d.berth_ok(&["create", "--name", "off", "busybox", "true"]);
    let out = d.berth_ok(&["stats", "--no-stream"]);
    let rows = table_rows(&out);
    assert_eq!(
        rows[0],
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ],
        "{out}"
    );
    assert_eq!(rows.len(), 2, "running containers only: {out}");
    assert_eq!(&rows[1][0], &id[..12]);
    assert_eq!(rows[1][1], "web");
    assert!(rows[1][2].ends_with('%'), "{out}");
    assert!(rows[1][3].ends_with(" / 32MiB"), "{out}");
    assert_eq!(rows[1][7], "1");
    let all = d.berth_ok(&[
        "stats",
        "--no-stream",
        "-a",
        "--format",
        "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}",
    ]);
    let mut lines: Vec<&str> = all.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{all}");
    assert_eq!(lines[0], "off 0.00% 0B / 0B 0");
    assert!(lines[1].starts_with("web "), "{all}");
    let named = d.berth_ok(&[
        "container",
        "stats",
        "--no-stream",
        "--format",
        "{{.Container}} {{.ID}}",
        "web",
    ]);
    assert_eq!(named.trim(), format!("web {}", &id[..12]));
    let json = d.berth_ok(&[
        "stats",
        "--no-stream",
        "--no-trunc",
        "--format",
        "json",
        "web",
    ]);
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["ID"], id.as_str());
    let bad = d.berth(&["stats", "--no-stream", "nosuch"]);
    assert_eq!(code(&bad), 1);
    assert!(
        stderr(&bad).contains("No such container: nosuch"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn the_docker_cli_shows_berth_stats() {
    skip_unless_docker!();
    let d = daemon();
    let id = d.run_detached(&["--name", "dk", "-m", "48m", "busybox", "sleep", "1000"]);
    let out = d.docker_ok(&["stats", "--no-stream"]);
    let rows = table_rows(&out);
    assert_eq!(rows[0][..3], ["CONTAINER ID", "NAME", "CPU %"], "{out}");
    assert_eq!(
        (rows[1][0].as_str(), rows[1][1].as_str()),
        (&id[..12], "dk"),
        "{out}"
    );
    assert!(rows[1][3].ends_with(" / 48MiB"), "{out}");
    let f = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}",
        "dk",
    ]);
    let parts: Vec<&str> = f.trim().split('|').collect();
    assert_eq!((parts[0], parts[2]), ("dk", "1"), "{f}");
    assert!(parts[1].ends_with(" / 48MiB"), "{f}");
    // The same numbers through both CLIs (memory may move between the two calls; the
    // limit and pids may not).
    let berth = d.berth_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.PIDs}}",
        "dk",
    ]);
    assert_eq!(berth.trim(), "dk|1");
}
