//! A request body as a blocking `Read`, for store and archive work on blocking threads
//! (import, load, `PUT …/archive`).
//!
//! An async task pulls the body into a bounded channel of chunks, so the upload is never
//! held whole, and a small body is taken off the connection at once even when the handler
//! answers before reading it (an unread body makes the client's write fail with a reset).
//! A broken upload reads as an I/O error, so the consumer fails and cleans up.

use std::io::Read;

use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// Chunks buffered ahead of the reader.
const CHUNKS_AHEAD: usize = 16;

pub struct BlockingBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    current: Bytes,
}

/// Call from async code (it spawns the feeding task); read from a blocking thread only.
pub fn blocking_reader(body: Body) -> BlockingBody {
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let item = chunk.map_err(std::io::Error::other);
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    });
    BlockingBody {
        rx,
        current: Bytes::new(),
    }
}

impl BlockingBody {
    /// Reads and drops the rest of the body (blocking thread only), all of it: after a
    /// failed untar dockerd reads the archive to its end too, so the client finishes its
    /// upload and reads the error (a refused 2 MiB header would otherwise leave it a
    /// broken pipe). The bytes are only read, never decompressed or kept.
    pub fn drain_rest(&mut self) {
        let _ = std::io::copy(self, &mut std::io::sink());
    }
}

impl Read for BlockingBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// How much of an unread body is taken off the connection before an error answer
/// (Go's net/http drains 256 KiB the same way).
const DRAIN_LIMIT: usize = 256 << 10;

/// Reads and drops what a client is still sending (up to [`DRAIN_LIMIT`], for at most a
/// second) before an early error answer, so the client can finish its write and read the
/// error instead of a reset connection.
pub async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
}
