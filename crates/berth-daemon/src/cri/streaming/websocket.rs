//! Remote command over websocket (`v4.channel.k8s.io`, `v5.channel.k8s.io`): binary
//! messages whose first byte is the channel — 0 stdin, 1 stdout, 2 stderr, 3 error
//! (the JSON `metav1.Status` at the end), 4 resize (`{"Width":W,"Height":H}`); v5 adds
//! 255 + channel to close that channel (the client's stdin EOF). As the kubelet, the
//! server first sends an empty message on the lowest channel it writes, so the client
//! knows the session is up.

use std::future::Future;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::remotecommand::{status_json, TermSize, Want};
use super::session::{Io, Outcome};

/// The websocket subprotocols served, newest first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// Serves one exec or attach on an upgraded websocket.
pub async fn serve<F, Fut>(socket: WebSocket, want: Want, run: F)
where
    F: FnOnce(Io) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let (mut sink, mut source) = socket.split();
    let first = if want.stdout {
        STDOUT
    } else if want.stderr {
        STDERR
    } else {
        ERROR
    };
    if sink
        .send(Message::Binary(Bytes::copy_from_slice(&[first])))
        .await
        .is_err()
    {
        return;
    }
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let (resize_tx, resize_rx) = mpsc::channel::<(u16, u16)>(4);
    let reader = tokio::spawn(async move {
        let mut stdin_tx = Some(stdin_tx);
        while let Some(Ok(msg)) = source.next().await {
            let data = match msg {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            let Some((&ch, rest)) = data.split_first() else {
                continue;
            };
            match ch {
                STDIN => {
                    if let Some(tx) = &stdin_tx {
                        let _ = tx.send(Bytes::copy_from_slice(rest)).await;
                    }
                }
                RESIZE => {
                    if let Ok(s) = serde_json::from_slice::<TermSize>(rest) {
                        let _ = resize_tx.send((s.width, s.height)).await;
                    }
                }
                CLOSE if rest.first() == Some(&STDIN) => stdin_tx = None,
                _ => {}
            }
        }
    });
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(16);
    let io = Io {
        stdin: want.stdin.then_some(stdin_rx),
        output: out_tx,
        resize: want.tty.then_some(resize_rx),
    };
    let session = run(io);
    let forward = async {
        while let Some((ch, data)) = out_rx.recv().await {
            let mut msg = Vec::with_capacity(data.len() + 1);
            msg.push(ch);
            msg.extend_from_slice(&data);
            if sink.send(Message::Binary(msg.into())).await.is_err() {
                break;
            }
        }
        sink
    };
    let (outcome, mut sink) = tokio::join!(session, forward);
    let mut status = vec![ERROR];
    status.extend_from_slice(status_json(&outcome).as_bytes());
    let _ = sink.send(Message::Binary(status.into())).await;
    // A normal closure: client-go reads it as EOF on every channel (anything else is an
    // error there).
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: close_code::NORMAL,
            reason: "".into(),
        })))
        .await;
    reader.abort();
}
