//! Kubernetes remote command over SPDY (`v2`–`v5.channel.k8s.io`), as the kubelet's
//! streaming server serves exec and attach: the client opens one stream per stdio part,
//! named by the `streamType` header (`error`, `stdin`, `stdout`, `stderr`, `resize`);
//! the session starts once every expected stream is there; the outcome goes to the
//! `error` stream (v4+: a JSON `metav1.Status`; v2/v3: the error text), then the
//! connection closes.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::session::{Io, Outcome};
use super::spdy::conn::{self, Stream};

/// The remote command protocols served, newest first.
pub const PROTOCOLS: [&str; 4] = [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
];
/// How long the client has to open its streams (the kubelet's default).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the client has to close the connection after the session's end.
const CLIENT_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first protocol the client asks for (in its order) that the server speaks.
pub fn negotiate<'a>(client: &[String], server: &[&'a str]) -> Option<&'a str> {
    client
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .find_map(|c| server.iter().copied().find(|s| *s == c))
}

/// Which stdio parts the session has.
#[derive(Debug, Clone, Copy)]
pub struct Want {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// The streams of one session.
#[derive(Default)]
struct Streams {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

/// Serves one exec or attach on an upgraded connection speaking `protocol`.
pub async fn serve<IO, F, Fut>(io: IO, protocol: &str, want: Want, run: F)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    F: FnOnce(Io) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let v4 = matches!(protocol, "v4.channel.k8s.io" | "v5.channel.k8s.io");
    let with_resize = want.tty && protocol != "v2.channel.k8s.io";
    let (out, mut incoming) = conn::serve(io);
    let mut s = Streams::default();
    let complete = |s: &Streams| {
        s.error.is_some()
            && (!want.stdin || s.stdin.is_some())
            && (!want.stdout || s.stdout.is_some())
            && (!want.stderr || want.tty || s.stderr.is_some())
            && (!with_resize || s.resize.is_some())
    };
    let collect = async {
        while !complete(&s) {
            let Some(stream) = incoming.recv().await else {
                return false;
            };
            let slot = match stream.header("streamtype").unwrap_or("") {
                "error" => &mut s.error,
                "stdin" => &mut s.stdin,
                "stdout" => &mut s.stdout,
                "stderr" => &mut s.stderr,
                "resize" => &mut s.resize,
                other => {
                    tracing::debug!("remote command: unexpected stream type {other:?}");
                    stream.out.reset(stream.id);
                    continue;
                }
            };
            *slot = Some(stream);
        }
        true
    };
    match tokio::time::timeout(STREAM_CREATION_TIMEOUT, collect).await {
        Ok(true) => {}
        _ => {
            tracing::debug!("remote command: the client did not open its streams");
            out.go_away();
            return;
        }
    }
    let (tx, mut rx) = mpsc::channel::<(u8, Bytes)>(16);
    let ids = (
        s.stdout.as_ref().map(|s| s.id),
        s.stderr.as_ref().map(|s| s.id),
    );
    let writer = {
        let out = out.clone();
        tokio::spawn(async move {
            while let Some((stream, data)) = rx.recv().await {
                let id = if stream == 2 && ids.1.is_some() {
                    ids.1
                } else {
                    ids.0
                };
                if let Some(id) = id {
                    if !out.data(id, &data) {
                        return;
                    }
                }
            }
        })
    };
    let io = Io {
        stdin: s.stdin.take().map(|s| s.input),
        output: tx,
        resize: s.resize.take().map(|r| resize_events(r.input)),
    };
    let outcome = run(io).await;
    let _ = writer.await;
    for id in [ids.0, ids.1].into_iter().flatten() {
        out.fin(id);
    }
    if let Some(e) = s.error.take() {
        let report = if v4 {
            Some(status_json(&outcome))
        } else {
            plain_error(&outcome)
        };
        if let Some(report) = report {
            out.data(e.id, report.as_bytes());
        }
        out.fin(e.id);
    }
    // The client processes frames per stream, not in wire order: closing now could cut
    // off output or the status it has not read yet. It closes the connection once it has
    // read the error stream (then the incoming side ends); close it ourselves only if it
    // does not.
    let _ = tokio::time::timeout(CLIENT_CLOSE_TIMEOUT, async {
        while incoming.recv().await.is_some() {}
    })
    .await;
    out.go_away();
}

/// Terminal sizes from a `resize` stream: a sequence of `{"Width":W,"Height":H}`.
pub fn resize_events(mut input: mpsc::Receiver<Bytes>) -> mpsc::Receiver<(u16, u16)> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut buf = Vec::new();
        while let Some(chunk) = input.recv().await {
            buf.extend_from_slice(&chunk);
            let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<TermSize>();
            let mut used = 0;
            while let Some(Ok(size)) = it.next() {
                used = it.byte_offset();
                if tx.send((size.width, size.height)).await.is_err() {
                    return;
                }
            }
            buf.drain(..used);
        }
    });
    rx
}

#[derive(serde::Deserialize)]
pub struct TermSize {
    #[serde(rename = "Width", alias = "width")]
    pub width: u16,
    #[serde(rename = "Height", alias = "height")]
    pub height: u16,
}

/// The `metav1.Status` the v4+ protocols end with.
pub fn status_json(outcome: &Outcome) -> String {
    let v = match outcome {
        Outcome::Exited(0) => serde_json::json!({"metadata": {}, "status": "Success"}),
        Outcome::Exited(code) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Outcome::Failed(msg) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": msg,
        }),
    };
    v.to_string()
}

/// What v2/v3 write on the error stream: nothing on success.
fn plain_error(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Exited(0) => None,
        Outcome::Exited(code) => Some(format!(
            "command terminated with non-zero exit code: exit status {code}"
        )),
        Outcome::Failed(msg) => Some(msg.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_the_clients_order() {
        let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            negotiate(&c(&["v4.channel.k8s.io", "v5.channel.k8s.io"]), &PROTOCOLS),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(
            negotiate(&c(&["v1.channel.k8s.io, v3.channel.k8s.io"]), &PROTOCOLS),
            Some("v3.channel.k8s.io")
        );
        assert_eq!(negotiate(&c(&["channel.k8s.io"]), &PROTOCOLS), None);
    }

    #[test]
    fn status_says_the_exit_code_as_client_go_reads_it() {
        let v: serde_json::Value = serde_json::from_str(&status_json(&Outcome::Exited(3))).unwrap();
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
        assert_eq!(
            status_json(&Outcome::Exited(0)),
            r#"{"metadata":{},"status":"Success"}"#
        );
    }

    #[tokio::test]
    async fn resize_stream_yields_sizes_across_chunks() {
        let (tx, rx) = mpsc::channel(4);
        let mut sizes = resize_events(rx);
        tx.send(Bytes::from_static(b"{\"Width\":80,\"Hei"))
            .await
            .unwrap();
        tx.send(Bytes::from_static(
            b"ght\":24}{\"Width\":100,\"Height\":50}",
        ))
        .await
        .unwrap();
        assert_eq!(sizes.recv().await, Some((80, 24)));
        assert_eq!(sizes.recv().await, Some((100, 50)));
    }
}
