//! Port forwarding over SPDY (`portforward.k8s.io`), as the kubelet serves it: per
//! forwarded connection the client opens an `error` and a `data` stream sharing a
//! `requestID` and naming the `port`; the data stream is joined to a TCP connection to
//! that port on the pod's loopback, made inside the pod's network namespace.

use std::collections::HashMap;
use std::os::fd::AsFd;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::spdy::conn::{self, Sender, Stream};

pub const PROTOCOL: &str = "portforward.k8s.io";

/// Serves port forwarding into the network namespace of process `pid` (the pod's holder)
/// until the client closes the connection.
pub async fn serve<IO>(io: IO, pod: String, pid: i32)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (out, mut incoming) = conn::serve(io);
    // requestID → the error stream's id, until its data stream comes.
    let mut errors: HashMap<String, u32> = HashMap::new();
    while let Some(stream) = incoming.recv().await {
        let request = stream.header("requestid").unwrap_or("").to_string();
        match stream.header("streamtype") {
            Some("error") => {
                errors.insert(request, stream.id);
            }
            Some("data") => {
                let error_id = errors.remove(&request);
                tokio::spawn(forward(stream, error_id, out.clone(), pod.clone(), pid));
            }
            _ => stream.out.reset(stream.id),
        }
    }
}

async fn forward(mut data: Stream, error_id: Option<u32>, out: Sender, pod: String, pid: i32) {
    let report = |msg: String| {
        if let Some(e) = error_id {
            out.data(e, msg.as_bytes());
            out.fin(e);
        }
    };
    let port: u16 = match data.header("port").and_then(|p| p.parse().ok()) {
        Some(p) if p > 0 => p,
        _ => {
            report(format!(
                "invalid port header {:?}",
                data.header("port").unwrap_or("")
            ));
            out.reset(data.id);
            return;
        }
    };
    let tcp = match connect_in_netns(pid, port).await {
        Ok(t) => t,
        Err(e) => {
            report(format!(
                "error forwarding port {port} to pod {pod}, uid : failed to connect to localhost:{port} inside namespace {pod}: {e}"
            ));
            out.reset(data.id);
            return;
        }
    };
    let (mut r, mut w) = tcp.into_split();
    let to_pod = async {
        while let Some(b) = data.input.recv().await {
            if w.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    };
    let from_pod = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !out.data(data.id, &buf[..n]) {
                        break;
                    }
                }
            }
        }
        out.fin(data.id);
    };
    tokio::join!(to_pod, from_pod);
    if let Some(e) = error_id {
        out.fin(e);
    }
}

/// Connects to 127.0.0.1:`port` in the network namespace of `pid`, on a thread of its
/// own that enters the namespace and ends with the connection made (a socket keeps the
/// namespace it was made in), so no other task ever runs in the pod's namespace.
async fn connect_in_netns(pid: i32, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-portfwd".into())
        .spawn(move || {
            let made = nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)
                .and_then(|()| {
                    std::net::TcpStream::connect_timeout(
                        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                        std::time::Duration::from_secs(10),
                    )
                });
            let _ = tx.send(made);
            // The thread ends here, in the pod's namespace: nothing else runs on it.
        })?;
    let std_stream = rx
        .await
        .map_err(|_| std::io::Error::other("port-forward thread died"))??;
    std_stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(std_stream)
}
