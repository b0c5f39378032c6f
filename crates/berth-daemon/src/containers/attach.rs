//! Attach: relaying between a hijacked client connection and a shim `attach` connection.
//!
//! The shim sends Docker-framed output; with a TTY the headers are stripped (raw
//! stream). Client bytes are stdin; the client's half-close is passed on as a half-close
//! toward the shim, while output keeps flowing until the container exits and the shim
//! closes the connection.

use std::time::Duration;

use berth_runtime::protocol::Request;
use hyper::upgrade::OnUpgrade;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use super::record::{ContainerRecord, Status};
use super::{entry_mut, logs, shim, ContainerService};
use crate::error::{ApiError, ApiResult};

/// What the client asked to attach.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    /// The detach sequence (`detachKeys`, default ctrl-p ctrl-q); empty disables it.
    pub detach_keys: Vec<u8>,
}

/// Docker's default detach sequence, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Parses `detachKeys` (`ctrl-p,ctrl-q`, `a,ctrl-@`) like Docker's `term.ToBytes`.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, crate::error::ApiError> {
    let invalid =
        || crate::error::ApiError::invalid(format!("Invalid detach keys ({keys}) provided"));
    let mut out = Vec::new();
    for key in keys.split(',').map(str::trim) {
        if let Some(c) = key.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [c @ b'a'..=b'z'] => c - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(invalid()),
            };
            out.push(b);
        } else if key.len() == 1 {
            out.push(key.as_bytes()[0]);
        } else {
            return Err(invalid());
        }
    }
    Ok(out)
}

/// Watches stdin for the detach sequence: bytes that may start it are held back until
/// the sequence completes (detach) or breaks (they are passed on).
#[derive(Debug, Default)]
pub struct EscapeProxy {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeProxy {
    pub fn new(keys: Vec<u8>) -> Self {
        EscapeProxy { keys, matched: 0 }
    }

    /// Feeds `input`; returns the bytes to forward, and true once the sequence was read.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
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
pub async fn relay(
    upgrade: OnUpgrade,
    shim: UnixStream,
    opts: AttachOptions,
    replay: Vec<bytes::Bytes>,
) {
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
            let mut proxy = EscapeProxy::new(opts.detach_keys.clone());
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (forward, detach) = proxy.feed(&buf[..n]);
                if !forward.is_empty() && shim_write.write_all(&forward).await.is_err() {
                    break;
                }
                if detach {
                    // Detached: end this attach; the container keeps running.
                    return;
                }
            }
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

impl ContainerService {
    /// `POST /containers/{id}/attach` (hijacked). Created containers keep the attach
    /// pending until start; running ones are connected now.
    pub async fn attach(
        &self,
        name_or_id: &str,
        opts: AttachOptions,
        upgrade: hyper::upgrade::OnUpgrade,
        replay: Vec<bytes::Bytes>,
    ) -> ApiResult<()> {
        let id = {
            let mut entries = self.lock();
            let (id, entry) = entry_mut(&mut entries, name_or_id)?;
            match entry.rec.state.status {
                Status::Created | Status::Exited if !entry.starting => {
                    entry.pending.push(PendingAttach {
                        opts,
                        upgrade,
                        replay,
                    });
                    return Ok(());
                }
                Status::Paused => {
                    return Err(ApiError::conflict(format!(
                        "container {id} is paused, unpause the container before attach"
                    )))
                }
                Status::Running | Status::Created | Status::Exited => id,
                Status::Restarting => {
                    return Err(ApiError::conflict(
                        "You cannot attach to a restarting container, wait until it is running",
                    ))
                }
                _ => {
                    return Err(ApiError::conflict(
                        "You cannot attach to a stopped container, start it first",
                    ))
                }
            }
        };
        // A start in progress has taken the pending list already: wait for it.
        for _ in 0..600 {
            let (running, starting) = {
                let entries = self.lock();
                match entries.get(&id) {
                    Some(e) => (e.rec.state.status.is_running(), e.starting),
                    None => return Err(ApiError::not_found(format!("No such container: {id}"))),
                }
            };
            if running || !starting {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let req = Request::Attach {
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
        };
        let conn = shim::connect(&self.state_dir(&id), &req)
            .await
            .map_err(|_| {
                ApiError::conflict("You cannot attach to a stopped container, start it first")
            })?;
        tokio::spawn(relay(upgrade, conn, opts, replay));
        Ok(())
    }

    /// The recorded output of a container, encoded for an attach stream (`logs=1`).
    pub fn log_snapshot(
        &self,
        rec: &ContainerRecord,
        stdout: bool,
        stderr: bool,
    ) -> Vec<bytes::Bytes> {
        let format = super::log_config::format(&rec.host_config);
        let lines = if rec.log_path.as_os_str().is_empty() {
            Vec::new()
        } else {
            berth_runtime::logreader::Follower::open(&rec.log_path, format, None)
                .map(|(_, lines)| lines)
                .unwrap_or_default()
        };
        let opts = logs::LogOptions {
            stdout,
            stderr,
            ..Default::default()
        };
        logs::select(lines, &opts)
            .iter()
            .map(|l| logs::encode(l, &opts, rec.config.tty))
            .collect()
    }

    /// The shim's attach connection of a running container, for the CRI streaming server:
    /// Docker-framed output (8-byte headers, also with a TTY), the client's bytes as stdin.
    pub async fn attach_shim(
        &self,
        name_or_id: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> ApiResult<UnixStream> {
        let rec = self.get(name_or_id)?;
        if !rec.state.status.is_running() {
            return Err(ApiError::conflict(
                "You cannot attach to a stopped container, start it first",
            ));
        }
        let req = Request::Attach {
            stdin,
            stdout,
            stderr,
        };
        shim::connect(&self.state_dir(&rec.id), &req)
            .await
            .map_err(|e| ApiError::internal(format!("attaching: {e}")))
    }

    /// A plain (not hijacked) attach: output only, as a byte stream.
    pub async fn attach_output(
        &self,
        name_or_id: &str,
        opts: AttachOptions,
    ) -> ApiResult<tokio::io::DuplexStream> {
        let rec = self.get(name_or_id)?;
        if !rec.state.status.is_running() {
            return Err(ApiError::conflict(
                "You cannot attach to a stopped container, start it first",
            ));
        }
        let req = Request::Attach {
            stdin: false,
            stdout: opts.stdout,
            stderr: opts.stderr,
        };
        let conn = shim::connect(&self.state_dir(&rec.id), &req)
            .await
            .map_err(|e| ApiError::internal(format!("attaching: {e}")))?;
        let (mut w, r) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let _ = copy_output(conn, &mut w, opts.tty).await;
        });
        Ok(r)
    }
}

#[cfg(test)]
mod escape_tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            DEFAULT_DETACH_KEYS
        );
        assert_eq!(
            parse_detach_keys("a,ctrl-@,ctrl-[").unwrap(),
            vec![b'a', 0, 27]
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }

    #[test]
    fn escape_proxy_holds_prefixes_and_detaches() {
        let mut p = EscapeProxy::new(DEFAULT_DETACH_KEYS.to_vec());
        assert_eq!(p.feed(b"ab"), (b"ab".to_vec(), false));
        assert_eq!(p.feed(&[0x10]), (vec![], false));
        assert_eq!(p.feed(b"x"), (vec![0x10, b'x'], false));
        assert_eq!(p.feed(&[0x10, 0x10]), (vec![0x10], false));
        assert_eq!(p.feed(&[0x11, b'z']), (vec![], true));
        let mut none = EscapeProxy::new(Vec::new());
        assert_eq!(none.feed(&[0x10, 0x11]), (vec![0x10, 0x11], false));
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
