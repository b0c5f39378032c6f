//! The CRI streaming server end to end: Exec, Attach and PortForward through the CRI
//! socket, then the returned URL spoken to over websocket (tokio-tungstenite,
//! `v5.channel.k8s.io`) and SPDY/3.1 (a small client on Berth's own frame codec; critest
//! and crictl check it against client-go, scripts/critest).
//!
//! The containers are plain Berth containers (the streaming server serves any running
//! container of the store), so these tests need no pod machinery.

mod common;
#[path = "common/cri.rs"]
mod cri;

use std::time::Duration;

use berth_daemon::cri::streaming::spdy::frame::{self, Frame, HeaderCodec, FLAG_FIN};
use bytes::{Bytes, BytesMut};
use common::*;
use cri::cri_daemon_with_busybox;
use cri::v1::{AttachRequest, ExecRequest, PortForwardRequest};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn run_detached(d: &TestDaemon, args: &[&str]) -> String {
    let mut all = vec!["run", "-d"];
    all.extend_from_slice(args);
    d.berth_ok(&all).trim().to_string()
}

/// Runs a websocket session on `url`: sends `stdin` (then closes it), returns what came on
/// each channel (1 stdout, 2 stderr, 3 status).
async fn ws_session(url: &str, stdin: &[u8]) -> (Vec<u8>, Vec<u8>, String) {
    let mut req = url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v5.channel.k8s.io".parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket handshake");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("v5.channel.k8s.io")
    );
    if !stdin.is_empty() {
        let mut m = vec![0u8];
        m.extend_from_slice(stdin);
        ws.send(Message::Binary(m.into())).await.unwrap();
        ws.send(Message::Binary(vec![255u8, 0].into()))
            .await
            .unwrap();
    }
    let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), String::new());
    let read = async {
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Binary(b) = msg else { continue };
            match b.first() {
                Some(1) => out.extend_from_slice(&b[1..]),
                Some(2) => err.extend_from_slice(&b[1..]),
                Some(3) => status.push_str(&String::from_utf8_lossy(&b[1..])),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the session ended");
    (out, err, status)
}

/// A SPDY/3.1 client connection (upgraded from HTTP).
struct Spdy {
    io: tokio::net::TcpStream,
    codec: HeaderCodec,
    protocol: String,
}

impl Spdy {
    async fn connect(url: &str, protocols: &[&str]) -> Spdy {
        let rest = url.strip_prefix("http://").unwrap();
        let (addr, path) = rest.split_at(rest.find('/').unwrap());
        let mut io = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n"
        );
        for p in protocols {
            req.push_str(&format!("X-Stream-Protocol-Version: {p}\r\n"));
        }
        req.push_str("\r\n");
        io.write_all(req.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            io.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let protocol = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("x-stream-protocol-version: ")
                    .map(str::to_string)
            })
            .unwrap_or_default();
        Spdy {
            io,
            codec: HeaderCodec::default(),
            protocol,
        }
    }

    async fn send(&mut self, f: Frame) {
        let mut b = BytesMut::new();
        frame::encode(&f, &mut self.codec, &mut b).unwrap();
        self.io.write_all(&b).await.unwrap();
    }

    /// Opens stream `id` with `headers` and waits for its reply.
    async fn open(&mut self, id: u32, headers: &[(&str, &str)]) {
        self.send(Frame::SynStream {
            stream_id: id,
            associated: 0,
            priority: 0,
            flags: 0,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .await;
        // Frames of streams opened before may come first.
        loop {
            match self.recv().await {
                Some(Frame::SynReply { stream_id, .. }) if stream_id == id => return,
                Some(_) => {}
                None => panic!("no reply to stream {id}"),
            }
        }
    }

    async fn data(&mut self, id: u32, data: &[u8], fin: bool) {
        self.send(Frame::Data {
            stream_id: id,
            flags: if fin { FLAG_FIN } else { 0 },
            data: Bytes::copy_from_slice(data),
        })
        .await;
    }

    async fn recv(&mut self) -> Option<Frame> {
        let mut head = [0u8; 8];
        self.io.read_exact(&mut head).await.ok()?;
        let mut p = vec![0u8; frame::payload_len(&head)];
        self.io.read_exact(&mut p).await.ok()?;
        frame::decode(&head, p.into(), &mut self.codec).ok()
    }

    /// Data per stream until `done_id` has ended (FIN or reset) or the connection closes.
    async fn collect_until(&mut self, done_id: u32) -> std::collections::HashMap<u32, Vec<u8>> {
        let mut got: std::collections::HashMap<u32, Vec<u8>> = Default::default();
        let read = async {
            while let Some(f) = self.recv().await {
                match f {
                    Frame::Data {
                        stream_id,
                        flags,
                        data,
                    } => {
                        got.entry(stream_id).or_default().extend_from_slice(&data);
                        if stream_id == done_id && flags & FLAG_FIN != 0 {
                            break;
                        }
                    }
                    Frame::RstStream { stream_id, .. } if stream_id == done_id => break,
                    Frame::GoAway { .. } => break,
                    _ => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .expect("the session ended");
        got
    }
}

#[test]
fn exec_over_websocket_and_spdy() {
    let (d, cri) = cri_daemon_with_busybox();
    let mut rt = cri.rt();
    cri.run(async {
        let id = run_detached(&d, &["busybox", "sleep", "300"]);
        let script = "echo out; echo err >&2; read x; echo got:$x; exit 3";
        let exec = |stdin: bool| ExecRequest {
            container_id: id.clone(),
            cmd: vec!["sh".into(), "-c".into(), script.into()],
            tty: false,
            stdin,
            stdout: true,
            stderr: true,
        };

        // websocket
        let url = rt.exec(exec(true)).await.unwrap().into_inner().url;
        let (out, err, status) = ws_session(&url, b"hello\n").await;
        assert_eq!(String::from_utf8_lossy(&out), "out\ngot:hello\n");
        assert_eq!(String::from_utf8_lossy(&err), "err\n");
        let status: serde_json::Value = serde_json::from_str(&status).expect(&status);
        assert_eq!(status["reason"], "NonZeroExitCode", "{status}");
        assert_eq!(status["details"]["causes"][0]["message"], "3", "{status}");
        // A token is used once.
        let again = reqwest_like_get(&url).await;
        assert!(again.starts_with("HTTP/1.1 404"), "{again}");

        // SPDY, as client-go opens the streams: error, stdin, stdout, stderr.
        let url = rt.exec(exec(true)).await.unwrap().into_inner().url;
        let mut s = Spdy::connect(&url, &["v4.channel.k8s.io", "v3.channel.k8s.io"]).await;
        assert_eq!(s.protocol, "v4.channel.k8s.io");
        s.open(1, &[("streamType", "error")]).await;
        s.open(3, &[("streamType", "stdin")]).await;
        s.open(5, &[("streamType", "stdout")]).await;
        s.open(7, &[("streamType", "stderr")]).await;
        s.data(3, b"spdy\n", true).await;
        let got = s.collect_until(1).await;
        assert_eq!(String::from_utf8_lossy(&got[&5]), "out\ngot:spdy\n");
        assert_eq!(String::from_utf8_lossy(&got[&7]), "err\n");
        let status: serde_json::Value = serde_json::from_slice(&got[&1]).unwrap();
        assert_eq!(status["details"]["causes"][0]["message"], "3", "{status}");

        // Success is a Success status; a protocol the server lacks is refused.
        let url = rt
            .exec(ExecRequest {
                container_id: id.clone(),
                cmd: vec!["true".into()],
                stdout: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .url;
        let (_, _, status) = ws_session(&url, b"").await;
        assert_eq!(status, r#"{"metadata":{},"status":"Success"}"#);
    });
}

/// A bare `GET url` over TCP; the status line and headers.
async fn reqwest_like_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let mut io = tokio::net::TcpStream::connect(addr).await.unwrap();
    io.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), io.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn exec_with_tty_and_resize_over_spdy() {
    let (d, cri) = cri_daemon_with_busybox();
    let mut rt = cri.rt();
    cri.run(async {
        let id = run_detached(&d, &["busybox", "sleep", "300"]);
        let url = rt
            .exec(ExecRequest {
                container_id: id.clone(),
                cmd: vec!["sh".into(), "-c".into(), "sleep 1; stty size".into()],
                tty: true,
                stdin: false,
                stdout: true,
                stderr: false,
            })
            .await
            .unwrap()
            .into_inner()
            .url;
        let mut s = Spdy::connect(&url, &["v4.channel.k8s.io"]).await;
        s.open(1, &[("streamType", "error")]).await;
        s.open(3, &[("streamType", "stdout")]).await;
        s.open(5, &[("streamType", "resize")]).await;
        s.data(5, br#"{"Width":91,"Height":17}"#, false).await;
        let got = s.collect_until(1).await;
        assert_eq!(String::from_utf8_lossy(&got[&3]).trim(), "17 91");
        assert!(String::from_utf8_lossy(&got[&1]).contains("Success"));
    });
}

#[test]
fn attach_to_a_running_container_over_websocket() {
    let (d, cri) = cri_daemon_with_busybox();
    let mut rt = cri.rt();
    cri.run(async {
        let id = run_detached(
            &d,
            &[
                "-i",
                "busybox",
                "sh",
                "-c",
                "read x; echo attached:$x; echo e >&2",
            ],
        );
        let url = rt
            .attach(AttachRequest {
                container_id: id.clone(),
                stdin: true,
                tty: false,
                stdout: true,
                stderr: true,
            })
            .await
            .unwrap()
            .into_inner()
            .url;
        let (out, err, status) = ws_session(&url, b"yes\n").await;
        assert_eq!(String::from_utf8_lossy(&out), "attached:yes\n");
        assert_eq!(String::from_utf8_lossy(&err), "e\n");
        assert!(status.contains("Success"), "{status}");
    });
}

#[test]
fn port_forward_reaches_the_pods_loopback() {
    let (d, cri) = cri_daemon_with_busybox();
    let mut rt = cri.rt();
    cri.run(async {
        // Listens on the container's loopback only: reachable from inside its netns alone.
        let id = run_detached(
            &d,
            &[
                "busybox",
                "sh",
                "-c",
                "echo pf-ok > /tmp/i.html; httpd -f -p 127.0.0.1:8080 -h /tmp",
            ],
        );
        std::thread::sleep(Duration::from_millis(500));
        let url = rt
            .port_forward(PortForwardRequest {
                pod_sandbox_id: id.clone(),
                port: vec![8080],
            })
            .await
            .unwrap()
            .into_inner()
            .url;
        let mut s = Spdy::connect(&url, &["portforward.k8s.io"]).await;
        let hdr = |t: &'static str, port: &'static str| {
            [("streamType", t), ("port", port), ("requestID", "0")]
        };
        s.open(1, &hdr("error", "8080")).await;
        s.open(3, &hdr("data", "8080")).await;
        s.data(3, b"GET /i.html HTTP/1.0\r\n\r\n", true).await;
        let got = s.collect_until(3).await;
        let body = String::from_utf8_lossy(got.get(&3).map(|v| &v[..]).unwrap_or(b""));
        assert!(
            body.starts_with("HTTP/1.") && body.contains("pf-ok"),
            "{body}"
        );
        // A port nothing listens on: the error stream says so.
        s.open(
            5,
            &[
                ("streamType", "error"),
                ("port", "8081"),
                ("requestID", "1"),
            ],
        )
        .await;
        s.open(
            7,
            &[("streamType", "data"), ("port", "8081"), ("requestID", "1")],
        )
        .await;
        let got = s.collect_until(5).await;
        let err = String::from_utf8_lossy(got.get(&5).map(|v| &v[..]).unwrap_or(b""));
        assert!(err.contains("error forwarding port 8081"), "{err}");
    });
}

fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> tonic::Code {
    match r {
        Ok(_) => panic!("accepted"),
        Err(s) => s.code(),
    }
}

#[test]
fn bad_streaming_requests_get_grpc_codes() {
    let (d, cri) = cri_daemon_with_busybox();
    let mut rt = cri.rt();
    cri.run(async {
        let id = run_detached(&d, &["busybox", "sleep", "300"]);
        let base = ExecRequest {
            container_id: id.clone(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        };
        let e = rt
            .exec(ExecRequest {
                container_id: "nosuch".into(),
                ..base.clone()
            })
            .await;
        assert_eq!(code(e), tonic::Code::NotFound);
        let e = rt
            .exec(ExecRequest {
                tty: true,
                stderr: true,
                ..base.clone()
            })
            .await;
        assert_eq!(code(e), tonic::Code::InvalidArgument);
        let e = rt
            .exec(ExecRequest {
                stdout: false,
                ..base.clone()
            })
            .await;
        assert_eq!(code(e), tonic::Code::InvalidArgument);
        let e = rt
            .port_forward(PortForwardRequest {
                pod_sandbox_id: String::new(),
                port: vec![],
            })
            .await;
        assert_eq!(code(e), tonic::Code::InvalidArgument);
        d.berth_ok(&["stop", "-t", "0", &id]);
        let e = rt.exec(base).await;
        assert_eq!(code(e), tonic::Code::FailedPrecondition);
    });
}
