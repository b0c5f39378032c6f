//! The container end of a streaming session, whatever the wire (SPDY or websocket): an
//! exec through the daemon's exec machinery (the exec helper, with a pty for a TTY) or an
//! attach to the container's shim, fed by channels.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::state::Daemon;

/// What an exec runs (a validated CRI `ExecRequest`).
#[derive(Debug, Clone)]
pub struct ExecTarget {
    pub container_id: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// What an attach connects to (a validated CRI `AttachRequest`).
#[derive(Debug, Clone)]
pub struct AttachTarget {
    pub container_id: String,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// The client side of a session, as channels.
pub struct Io {
    /// The client's stdin; its end closes the process's stdin.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    /// Output for the client: (1 stdout | 2 stderr, bytes).
    pub output: mpsc::Sender<(u8, Bytes)>,
    /// Terminal sizes (width, height).
    pub resize: Option<mpsc::Receiver<(u16, u16)>>,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i64),
    Failed(String),
}

/// Runs `t` in its container with `io` as its stdio; returns once its output has ended.
pub async fn exec(d: &Daemon, t: &ExecTarget, io: Io) -> Outcome {
    let body = berth_api::ExecCreateBody {
        attach_stdin: t.stdin,
        attach_stdout: t.stdout,
        attach_stderr: t.stderr,
        tty: t.tty,
        cmd: t.cmd.clone(),
        ..Default::default()
    };
    let svc = d.containers.clone();
    let entry = match svc
        .exec_create(&t.container_id, body)
        .and_then(|id| svc.exec_prepare(&id))
    {
        Ok(e) => e,
        Err(e) => return Outcome::Failed(e.message),
    };
    let id = entry.id.clone();
    let (client, server) = tokio::io::duplex(64 * 1024);
    let run = {
        let svc = svc.clone();
        let tty = t.tty;
        tokio::spawn(async move { svc.exec_run_attached(entry, server, tty).await })
    };
    let (client_read, mut client_write) = tokio::io::split(client);
    let stdin = tokio::spawn(async move {
        if let Some(mut rx) = io.stdin {
            while let Some(b) = rx.recv().await {
                if client_write.write_all(&b).await.is_err() {
                    return;
                }
            }
            let _ = client_write.shutdown().await;
        }
        // Without stdin the write half stays open until the session ends.
        std::future::pending::<()>().await;
    });
    let resize = io.resize.map(|mut rx| {
        let (svc, id) = (svc.clone(), id.clone());
        tokio::spawn(async move {
            while let Some((w, h)) = rx.recv().await {
                let _ = svc.exec_resize(&id, h, w).await;
            }
        })
    });
    if t.tty {
        raw_output(client_read, &io.output).await;
    } else {
        demux(client_read, &io.output).await;
    }
    let _ = run.await;
    stdin.abort();
    if let Some(r) = resize {
        r.abort();
    }
    match svc.exec_inspect(&id) {
        Ok(i) => Outcome::Exited(i.exit_code.unwrap_or(-1)),
        Err(e) => Outcome::Failed(e.message),
    }
}

/// Attaches `io` to the running container's stdio until its output ends (the container
/// exits) or the client goes away.
pub async fn attach(d: &Daemon, t: &AttachTarget, io: Io) -> Outcome {
    let svc = d.containers.clone();
    let conn = match svc
        .attach_shim(&t.container_id, t.stdin, t.stdout, t.stderr)
        .await
    {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.message),
    };
    let (shim_read, mut shim_write) = conn.into_split();
    let stdin = tokio::spawn(async move {
        if let Some(mut rx) = io.stdin {
            while let Some(b) = rx.recv().await {
                if shim_write.write_all(&b).await.is_err() {
                    return;
                }
            }
            let _ = shim_write.shutdown().await;
        }
        std::future::pending::<()>().await;
    });
    let resize = io.resize.map(|mut rx| {
        let (svc, id) = (svc.clone(), t.container_id.clone());
        tokio::spawn(async move {
            while let Some((w, h)) = rx.recv().await {
                let _ = svc.resize(&id, h, w).await;
            }
        })
    });
    let output = io.output;
    tokio::select! {
        _ = demux(shim_read, &output) => {}
        _ = output.closed() => {}
    }
    stdin.abort();
    if let Some(r) = resize {
        r.abort();
    }
    Outcome::Exited(0)
}

/// Passes a raw (TTY) stream on as stdout.
async fn raw_output<R: AsyncRead + Unpin>(mut r: R, out: &mpsc::Sender<(u8, Bytes)>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if out
                    .send((1, Bytes::copy_from_slice(&buf[..n])))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Splits a Docker-framed stream (8-byte headers: stream, 0, 0, 0, length) into its
/// stdout and stderr parts.
pub async fn demux<R: AsyncRead + Unpin>(mut r: R, out: &mpsc::Sender<(u8, Bytes)>) {
    let mut head = [0u8; 8];
    loop {
        if r.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let mut data = vec![0u8; len];
        if r.read_exact(&mut data).await.is_err() {
            return;
        }
        let stream = if head[0] == 2 { 2 } else { 1 };
        if !data.is_empty() && out.send((stream, Bytes::from(data))).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn demux_splits_docker_frames() {
        let mut wire = Vec::new();
        for (s, d) in [(1u8, &b"out"[..]), (2, b"err"), (1, b"")] {
            wire.extend([s, 0, 0, 0]);
            wire.extend((d.len() as u32).to_be_bytes());
            wire.extend(d);
        }
        let (tx, mut rx) = mpsc::channel(8);
        demux(&wire[..], &tx).await;
        drop(tx);
        assert_eq!(rx.recv().await, Some((1, Bytes::from_static(b"out"))));
        assert_eq!(rx.recv().await, Some((2, Bytes::from_static(b"err"))));
        assert_eq!(rx.recv().await, None);
    }
}
