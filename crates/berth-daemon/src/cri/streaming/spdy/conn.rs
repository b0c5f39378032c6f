//! A SPDY/3.1 server connection over an upgraded HTTP connection: the client opens
//! streams (SYN_STREAM), each is answered (SYN_REPLY) at once and handed to the session
//! as a [`Stream`]; data frames go to their stream, FIN or RST_STREAM end its input.
//! Pings are answered. One writer task owns the outgoing header compression, so frames
//! leave in the order they were queued. Flow control (WINDOW_UPDATE) is not enforced:
//! moby/spdystream, the peer here, sends none either.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::frame::{self, Frame, HeaderCodec, Headers, FLAG_FIN, MAX_FRAME, RST_CANCEL};

/// The largest data frame this side writes.
const DATA_CHUNK: usize = 32 * 1024;

/// Queues frames for the connection's writer.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::UnboundedSender<Frame>,
}

impl Sender {
    /// Sends `data` on `stream_id` (in chunks); false once the connection is gone.
    pub fn data(&self, stream_id: u32, data: &[u8]) -> bool {
        data.chunks(DATA_CHUNK).all(|c| {
            self.tx
                .send(Frame::Data {
                    stream_id,
                    flags: 0,
                    data: Bytes::copy_from_slice(c),
                })
                .is_ok()
        })
    }

    /// Half-closes `stream_id` (an empty data frame with FIN).
    pub fn fin(&self, stream_id: u32) {
        let _ = self.tx.send(Frame::Data {
            stream_id,
            flags: FLAG_FIN,
            data: Bytes::new(),
        });
    }

    /// Resets `stream_id`.
    pub fn reset(&self, stream_id: u32) {
        let _ = self.tx.send(Frame::RstStream {
            stream_id,
            status: RST_CANCEL,
        });
    }

    /// Ends the session: GOAWAY; the writer then closes the connection.
    pub fn go_away(&self) {
        let _ = self.tx.send(Frame::GoAway {
            last_good: 0,
            status: 0,
        });
    }
}

/// A stream the client opened.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    /// The client's data; closed on FIN, reset or the connection's end.
    pub input: mpsc::Receiver<Bytes>,
    pub out: Sender,
}

impl Stream {
    pub fn header(&self, name: &str) -> Option<&str> {
        frame::header(&self.headers, name)
    }
}

type Inputs = Arc<Mutex<HashMap<u32, mpsc::Sender<Bytes>>>>;

/// Serves SPDY on `io`: returns the writer handle and the streams the client opens
/// (closed when the connection ends).
pub fn serve<IO>(io: IO) -> (Sender, mpsc::Receiver<Stream>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(io);
    let (tx, rx) = mpsc::unbounded_channel();
    let out = Sender { tx };
    let (streams_tx, streams_rx) = mpsc::channel(16);
    tokio::spawn(write_loop(write, rx));
    tokio::spawn(read_loop(read, out.clone(), streams_tx));
    (out, streams_rx)
}

async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::UnboundedReceiver<Frame>) {
    let mut codec = HeaderCodec::default();
    let mut buf = BytesMut::new();
    while let Some(f) = rx.recv().await {
        let last = matches!(f, Frame::GoAway { .. });
        buf.clear();
        if let Err(e) = frame::encode(&f, &mut codec, &mut buf) {
            tracing::debug!("SPDY: {e}");
            continue;
        }
        // Write whatever else is queued in the same syscall.
        while let Ok(more) = rx.try_recv() {
            if matches!(more, Frame::GoAway { .. }) {
                let _ = frame::encode(&more, &mut codec, &mut buf);
                let _ = w.write_all(&buf).await;
                let _ = w.shutdown().await;
                return;
            }
            if frame::encode(&more, &mut codec, &mut buf).is_err() {
                continue;
            }
        }
        if w.write_all(&buf).await.is_err() {
            return;
        }
        if last {
            let _ = w.shutdown().await;
            return;
        }
    }
    let _ = w.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(mut r: R, out: Sender, streams: mpsc::Sender<Stream>) {
    let inputs: Inputs = Arc::default();
    let mut codec = HeaderCodec::default();
    let mut head = [0u8; 8];
    loop {
        if r.read_exact(&mut head).await.is_err() {
            break;
        }
        let n = frame::payload_len(&head);
        if n >= MAX_FRAME {
            break;
        }
        let mut payload = vec![0u8; n];
        if r.read_exact(&mut payload).await.is_err() {
            break;
        }
        let f = match frame::decode(&head, Bytes::from(payload), &mut codec) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!("{e}");
                break;
            }
        };
        match f {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
                ..
            } => {
                let (in_tx, in_rx) = mpsc::channel(64);
                if flags & FLAG_FIN == 0 {
                    lock(&inputs).insert(stream_id, in_tx);
                }
                let _ = out.tx.send(Frame::SynReply {
                    stream_id,
                    flags: 0,
                    headers: Vec::new(),
                });
                let s = Stream {
                    id: stream_id,
                    headers,
                    input: in_rx,
                    out: out.clone(),
                };
                if streams.send(s).await.is_err() {
                    out.reset(stream_id);
                }
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                let tx = lock(&inputs).get(&stream_id).cloned();
                if let Some(tx) = tx {
                    if !data.is_empty() {
                        // A session that stopped reading a stream must not stall the rest.
                        let _ = tx.send(data).await;
                    }
                }
                if flags & FLAG_FIN != 0 {
                    lock(&inputs).remove(&stream_id);
                }
            }
            Frame::RstStream { stream_id, .. } => {
                lock(&inputs).remove(&stream_id);
            }
            Frame::Ping { id } => {
                let _ = out.tx.send(Frame::Ping { id });
            }
            Frame::GoAway { .. } => break,
            _ => {}
        }
    }
    lock(&inputs).clear();
}

fn lock(m: &Inputs) -> std::sync::MutexGuard<'_, HashMap<u32, mpsc::Sender<Bytes>>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client end speaking raw frames.
    struct Client {
        io: tokio::io::DuplexStream,
        codec: HeaderCodec,
    }

    impl Client {
        async fn send(&mut self, f: Frame) {
            let mut b = BytesMut::new();
            frame::encode(&f, &mut self.codec, &mut b).unwrap();
            self.io.write_all(&b).await.unwrap();
        }
        async fn recv(&mut self) -> Frame {
            let mut head = [0u8; 8];
            self.io.read_exact(&mut head).await.unwrap();
            let mut p = vec![0; frame::payload_len(&head)];
            self.io.read_exact(&mut p).await.unwrap();
            frame::decode(&head, p.into(), &mut self.codec).unwrap()
        }
    }

    #[tokio::test]
    async fn streams_are_replied_and_carry_data() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (_out, mut streams) = serve(b);
        let mut c = Client {
            io: a,
            codec: HeaderCodec::default(),
        };
        c.send(Frame::SynStream {
            stream_id: 1,
            associated: 0,
            priority: 0,
            flags: 0,
            headers: vec![("streamType".into(), "stdin".into())],
        })
        .await;
        assert_eq!(
            c.recv().await,
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: vec![]
            }
        );
        let mut s = streams.recv().await.unwrap();
        assert_eq!(s.header("streamtype"), Some("stdin"));
        c.send(Frame::Data {
            stream_id: 1,
            flags: FLAG_FIN,
            data: Bytes::from_static(b"abc"),
        })
        .await;
        assert_eq!(s.input.recv().await.unwrap(), Bytes::from_static(b"abc"));
        assert!(s.input.recv().await.is_none(), "FIN ends the input");
        s.out.data(1, b"out");
        s.out.fin(1);
        assert_eq!(
            c.recv().await,
            Frame::Data {
                stream_id: 1,
                flags: 0,
                data: Bytes::from_static(b"out")
            }
        );
        assert!(matches!(
            c.recv().await,
            Frame::Data {
                flags: FLAG_FIN,
                ..
            }
        ));
        c.send(Frame::Ping { id: 9 }).await;
        assert_eq!(c.recv().await, Frame::Ping { id: 9 });
        s.out.go_away();
        assert!(matches!(c.recv().await, Frame::GoAway { .. }));
    }
}
