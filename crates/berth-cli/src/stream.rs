//! Docker's multiplexed stream (8-byte frames: stream id, 3 zero bytes, big-endian length)
//! and the pumps that move a hijacked connection's bytes to the terminal and back.

use std::io::Write;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One demultiplexed piece of output.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// Stream 3: an error the daemon reports in-band.
    SystemErr(Vec<u8>),
}

/// Incremental parser of Docker's stdcopy frames; tolerant of frames split across reads.
#[derive(Default)]
pub struct Demuxer {
    buf: Vec<u8>,
}

impl Demuxer {
    /// Feeds bytes and returns every frame completed by them.
    pub fn push(&mut self, data: &[u8]) -> Vec<Chunk> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 8 {
                break;
            }
            let len =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + len {
                break;
            }
            let payload = self.buf[8..8 + len].to_vec();
            let kind = self.buf[0];
            self.buf.drain(..8 + len);
            out.push(match kind {
                2 => Chunk::Stderr(payload),
                3 => Chunk::SystemErr(payload),
                _ => Chunk::Stdout(payload),
            });
        }
        out
    }
}

/// Writes to the local stdout; a closed pipe ends the process quietly (exit 141), as a Go
/// CLI killed by SIGPIPE does.
pub fn write_stdout(b: &[u8]) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(b).and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
    }
}

/// Writes one chunk to the local stdout or stderr; returns the in-band error, if any.
pub fn emit(chunk: Chunk) -> Option<String> {
    match chunk {
        Chunk::Stdout(b) => {
            write_stdout(&b);
            None
        }
        Chunk::Stderr(b) => {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(&b);
            let _ = e.flush();
            None
        }
        Chunk::SystemErr(b) => Some(String::from_utf8_lossy(&b).into_owned()),
    }
}

/// Copies output from `reader` to the terminal until the server closes it: raw when the
/// container has a TTY, demultiplexed otherwise. Returns an in-band error, if one came.
pub async fn copy_output<R: AsyncRead + Unpin>(
    mut reader: R,
    tty: bool,
) -> std::io::Result<Option<String>> {
    let mut demux = Demuxer::default();
    let mut buf = vec![0u8; 32 * 1024];
    let mut error = None;
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        };
        if tty {
            write_stdout(&buf[..n]);
        } else {
            for c in demux.push(&buf[..n]) {
                if let Some(e) = emit(c) {
                    error = Some(e);
                }
            }
        }
    }
    Ok(error)
}

/// Copies the local stdin to `writer`, then half-closes the write side. With `escape`
/// (a TTY session), the detach keys end the copy and return true.
pub async fn copy_stdin<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut escape: Option<crate::detach::Escape>,
) -> bool {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let data = match escape.as_mut() {
                    Some(e) => match e.push(&buf[..n]) {
                        Some(d) => d,
                        None => return true,
                    },
                    None => buf[..n].to_vec(),
                };
                if writer.write_all(&data).await.is_err() {
                    return false;
                }
                let _ = writer.flush().await;
            }
        }
    }
    let _ = writer.shutdown().await;
    false
}

/// Runs a hijacked session: output to the terminal, and stdin to the server when asked.
/// In a TTY session the detach keys end it ([`crate::detach::detached`] then says so).
pub async fn session<S: AsyncRead + AsyncWrite + Send + 'static>(
    io: S,
    tty: bool,
    stdin: bool,
) -> std::io::Result<Option<String>> {
    let (reader, writer) = tokio::io::split(io);
    let escape = tty.then(crate::detach::Escape::new);
    let mut input = if stdin {
        Some(tokio::spawn(copy_stdin(writer, escape)))
    } else {
        None
    };
    let output = copy_output(reader, tty);
    tokio::pin!(output);
    let out = match input.as_mut() {
        Some(h) => tokio::select! {
            out = &mut output => out,
            detached = h => {
                if matches!(detached, Ok(true)) {
                    crate::detach::mark_detached();
                    return Ok(None);
                }
                output.await
            }
        },
        None => output.await,
    };
    if let Some(h) = input {
        h.abort();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, 0, 0, 0];
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn demuxes_frames_split_anywhere() {
        let mut all = frame(1, b"hello\n");
        all.extend(frame(2, b"oops\n"));
        all.extend(frame(3, b"bad"));
        all.extend(frame(1, b""));
        let mut d = Demuxer::default();
        let mut got = Vec::new();
        for b in all.chunks(3) {
            got.extend(d.push(b));
        }
        assert_eq!(
            got,
            vec![
                Chunk::Stdout(b"hello\n".to_vec()),
                Chunk::Stderr(b"oops\n".to_vec()),
                Chunk::SystemErr(b"bad".to_vec()),
                Chunk::Stdout(Vec::new()),
            ]
        );
    }

    #[test]
    fn incomplete_frame_waits_for_more() {
        let mut d = Demuxer::default();
        let f = frame(1, b"abcdef");
        assert!(d.push(&f[..10]).is_empty());
        assert_eq!(d.push(&f[10..]), vec![Chunk::Stdout(b"abcdef".to_vec())]);
    }
}
