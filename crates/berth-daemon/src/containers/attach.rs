//! Attach: relaying between a hijacked client connection and a shim `attach` connection.
//!
//! The shim sends Docker-framed output; with a TTY the headers are stripped (raw
//! stream). Client bytes are stdin; the client's half-close is passed on as a half-close
//! toward the shim, while output keeps flowing until the container exits and the shim
//! closes the connection.

use hyper::upgrade::OnUpgrade;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

/// What the client asked to attach.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// An attach request whose hijack completes later (the client's 101 is sent after the
/// handler returns). Kept on a created container until start connects it.
pub struct PendingAttach {
    pub opts: AttachOptions,
    pub upgrade: OnUpgrade,
    /// Recorded output to send first (`logs=1`), already encoded.
    pub replay: Vec<bytes::Bytes>,
}

/// Copies shim frames to the client, stripping the 8-byte headers when `tty`.
pub async fn copy_output<R, W>(mut from: R, to: &mut W, tty: bool) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !tty {
        tokio::io::copy(&mut from, to).await?;
        return to.flush().await;
    }
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return to.flush().await,
            Err(e) => return Err(e),
        }
        let mut len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        while len > 0 {
            let n = len.min(buf.len());
            from.read_exact(&mut buf[..n]).await?;
            to.write_all(&buf[..n]).await?;
            len -= n;
        }
        to.flush().await?;
    }
}

/// Relays until the shim closes the output side. Runs as its own task.
pub async fn relay(upgrade: OnUpgrade, shim: UnixStream, opts: AttachOptions, replay: Vec<bytes::Bytes>) {
    let client = match crate::hijack::upgraded(upgrade).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "attach client went away before the hijack");
            return;
        }
    };
    let (client_read, mut client_write) = tokio::io::split(client);
    if !replay.is_empty() {
        // Let the 101 headers reach buffered clients (docker-py) before any data.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for chunk in replay {
        if client_write.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let (shim_read, mut shim_write) = shim.into_split();
    let stdin = async move {
        let mut client_read = client_read;
        if opts.stdin {
            let _ = tokio::io::copy(&mut client_read, &mut shim_write).await;
            let _ = shim_write.shutdown().await;
        } else {
            // Drain and drop whatever the client sends; keep the shim side open.
            let mut sink = tokio::io::sink();
            let _ = tokio::io::copy(&mut client_read, &mut sink).await;
        }
        std::future::pending::<()>().await;
    };
    let output = async {
        let _ = copy_output(shim_read, &mut client_write, opts.tty).await;
        let _ = client_write.shutdown().await;
    };
    tokio::select! {
        _ = output => {}
        _ = stdin => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tty_output_loses_headers() {
        let mut input = Vec::new();
        input.extend_from_slice(&crate::containers::logs::frame(1, b"hello "));
        input.extend_from_slice(&crate::containers::logs::frame(2, b"world"));
        let mut out = Vec::new();
        copy_output(&input[..], &mut out, true).await.unwrap();
        assert_eq!(out, b"hello world");
        let mut raw = Vec::new();
        copy_output(&input[..], &mut raw, false).await.unwrap();
        assert_eq!(raw, input);
    }
}
