//! Attach and wait as the Docker CLI uses them (issue 2, point 8), over the raw API:
//! the hijacked attach (`101 UPGRADED`, 8-byte multiplexing), and `wait` with its
//! conditions, registered before start.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

fn create(d: &TestDaemon, body: serde_json::Value) -> String {
    let (status, _, resp) = d.request(
        "POST",
        "/v1.45/containers/create",
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(status, 201, "create: {}", String::from_utf8_lossy(&resp));
    let v: serde_json::Value = serde_json::from_slice(&resp).expect("create answers JSON");
    let id = v["Id"].as_str().unwrap_or_default().to_string();
    assert!(is_full_id(&id), "create answered {v}");
    assert!(v["Warnings"].is_array(), "create answered {v}");
    id
}

fn start(d: &TestDaemon, id: &str) {
    let (status, _, body) = d.request("POST", &format!("/v1.45/containers/{id}/start"), None);
    assert_eq!(status, 204, "start: {}", String::from_utf8_lossy(&body));
}

/// Sends a request on its own connection in a thread; returns the thread's (status, body).
fn request_in_background(
    d: &TestDaemon,
    method: &'static str,
    path: String,
) -> std::thread::JoinHandle<(u16, Vec<u8>)> {
    let sock = d.sock.clone();
    let handle = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&sock).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        write!(s, "{method} {path} HTTP/1.0\r\nHost: berth\r\n\r\n").expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let status: u16 = String::from_utf8_lossy(&raw[..split])
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        (status, raw[split + 4..].to_vec())
    });
    // Give the request time to be registered before the caller goes on.
    std::thread::sleep(Duration::from_millis(300));
    handle
}

/// The body of a wait answer, which may be chunked (HTTP/1.0 answers are not).
fn wait_status(body: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(body);
    let json = text.trim();
    let v: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("wait body {json:?}: {e}"));
    v["StatusCode"]
        .as_i64()
        .unwrap_or_else(|| panic!("no StatusCode in {v}"))
}

#[test]
fn wait_next_exit_registered_before_start() {
    let d = daemon();
    let id = create(
        &d,
        serde_json::json!({"Image": "busybox", "Cmd": ["sh", "-c", "sleep 1; exit 5"]}),
    );
    let waiter = request_in_background(
        &d,
        "POST",
        format!("/v1.45/containers/{id}/wait?condition=next-exit"),
    );
    assert!(
        !waiter.is_finished(),
        "wait?condition=next-exit returned before start"
    );
    start(&d, &id);
    let (status, body) = waiter.join().expect("waiter thread");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(wait_status(&body), 5);
}

#[test]
fn wait_not_running_returns_at_once_for_a_created_container() {
    let d = daemon();
    let id = create(&d, serde_json::json!({"Image": "busybox", "Cmd": ["true"]}));
    let (status, _, body) = d.request(
        "POST",
        &format!("/v1.45/containers/{id}/wait?condition=not-running"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(wait_status(&body), 0);
}

#[test]
fn wait_removed_with_auto_remove() {
    let d = daemon();
    let id = create(
        &d,
        serde_json::json!({"Image": "busybox", "Cmd": ["sh", "-c", "exit 2"], "HostConfig": {"AutoRemove": true}}),
    );
    let waiter = request_in_background(
        &d,
        "POST",
        format!("/v1.45/containers/{id}/wait?condition=removed"),
    );
    start(&d, &id);
    let (status, body) = waiter.join().expect("waiter thread");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(wait_status(&body), 2);
    let (status, _, _) = d.request("GET", &format!("/v1.45/containers/{id}/json"), None);
    assert_eq!(
        status, 404,
        "the container still exists after wait?condition=removed"
    );
}

#[test]
fn wait_with_a_bad_condition_is_a_400() {
    let d = daemon();
    let id = create(&d, serde_json::json!({"Image": "busybox", "Cmd": ["true"]}));
    let (status, _, _) = d.request(
        "POST",
        &format!("/v1.45/containers/{id}/wait?condition=bogus"),
        None,
    );
    assert_eq!(status, 400);
}

#[test]
fn attach_is_hijacked_with_101_and_multiplexed_frames() {
    let d = daemon();
    let id = create(
        &d,
        serde_json::json!({"Image": "busybox", "Cmd": ["sh", "-c", "echo out1; echo err1 >&2; echo out2"], "AttachStdout": true, "AttachStderr": true}),
    );
    let mut s = UnixStream::connect(&d.sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    write!(
        s,
        "POST /v1.45/containers/{id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("write");
    let mut reader = BufReader::new(s.try_clone().expect("clone"));
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    assert!(
        status_line.starts_with("HTTP/1.1 101"),
        "attach answered {status_line:?}"
    );
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        headers.push(line.trim().to_ascii_lowercase());
    }
    assert!(
        headers.iter().any(|h| h == "upgrade: tcp"),
        "headers: {headers:?}"
    );
    assert!(
        headers.iter().any(|h| h == "connection: upgrade"),
        "headers: {headers:?}"
    );
    assert!(
        headers
            .iter()
            .any(|h| h.starts_with("content-type: application/vnd.docker.multiplexed-stream")),
        "API 1.45 without a TTY sends the multiplexed media type; headers: {headers:?}"
    );
    start(&d, &id);
    let mut rest = Vec::new();
    reader
        .read_to_end(&mut rest)
        .expect("stream until the process ends");
    let mut frames = Vec::new();
    let mut buf = rest.as_slice();
    while !buf.is_empty() {
        assert!(buf.len() >= 8, "truncated frame header: {buf:?}");
        assert!(
            buf[0] <= 2 && buf[1..4] == [0, 0, 0],
            "bad frame header {:?}",
            &buf[..8]
        );
        let size = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        frames.push((
            buf[0],
            String::from_utf8_lossy(&buf[8..8 + size]).into_owned(),
        ));
        buf = &buf[8 + size..];
    }
    let out: String = frames
        .iter()
        .filter(|(s, _)| *s == 1)
        .map(|(_, t)| t.as_str())
        .collect();
    let err: String = frames
        .iter()
        .filter(|(s, _)| *s == 2)
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(out, "out1\nout2\n");
    assert_eq!(err, "err1\n");
}

#[test]
fn logs_over_the_api_use_the_same_framing() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "framed",
        "busybox",
        "sh",
        "-c",
        "echo o; echo e >&2",
    ]);
    assert_eq!(d.berth_ok(&["wait", "framed"]).trim(), "0");
    let (status, headers, body) = d.request(
        "GET",
        "/v1.45/containers/framed/logs?stdout=1&stderr=1",
        None,
    );
    assert_eq!(status, 200);
    assert!(
        headers.iter().any(|(k, _)| k == "api-version"),
        "{headers:?}"
    );
    assert!(body.len() >= 8 + 2 + 8 + 2, "{body:?}");
    let mut seen = Vec::new();
    let mut buf = body.as_slice();
    while buf.len() >= 8 {
        let size = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        seen.push((
            buf[0],
            String::from_utf8_lossy(&buf[8..8 + size]).into_owned(),
        ));
        buf = &buf[8 + size..];
    }
    seen.sort();
    assert_eq!(seen, [(1, "o\n".to_string()), (2, "e\n".to_string())]);
}
