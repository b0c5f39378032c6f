//! An attached exec session (`POST /exec/{id}/start` without `Detach`): the client's
//! connection as the exec's stdio, through a pty or pipes, with detach keys and hang-up.

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::attach::{EscapeProxy, DEFAULT_DETACH_KEYS};
use super::exec::*;
use super::{logs, ContainerService};

impl ContainerService {
    /// `POST /exec/{id}/start`, attached: runs the exec with `client` as its stdio.
    /// Output is raw when `raw` (the start request's `Tty`), else multiplexed (stream
    /// 1/2 frames; a TTY exec's terminal is all stream 1). The exit code is recorded
    /// before the client connection is closed.
    ///
    /// With a TTY the client's bytes go to the pty. A terminal has no half-close: as in
    /// Docker, the client's EOF on stdin ends the session (its output stream closes),
    /// and, as on a terminal hang-up, the process's session gets SIGHUP, so that nothing
    /// outlives its client; the same when output can no longer be delivered. The detach
    /// keys (`DetachKeys`, default ctrl-p ctrl-q) end the session and leave the process
    /// running, as in Docker.
    pub async fn exec_run_attached<S>(self: &Arc<Self>, entry: ExecEntry, client: S, raw: bool)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let id = entry.id.clone();
        let tty = entry.config.tty;
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let write_chunk = |stream: u8, data: &[u8]| -> Bytes {
            if raw {
                Bytes::copy_from_slice(data)
            } else {
                logs::frame(stream, data)
            }
        };
        let started = match self.exec_spec(&entry) {
            Ok(spec) => spawn_helper(&spec, entry.config.attach_stdin).await,
            Err(e) => Err(e),
        };
        let mut run = match started {
            Ok(r) => r,
            Err(e) => {
                let _ = client_write
                    .write_all(&write_chunk(2, format!("{}\r\n", e.message).as_bytes()))
                    .await;
                let _ = client_write.shutdown().await;
                self.execs
                    .update(&id, |e| e.exit_code = Some(EXEC_START_FAILED));
                self.emit_exec_event(&id, "exec_die", Some(EXEC_START_FAILED));
                return;
            }
        };
        let pid = match &run.status {
            Ok(pid) => {
                let pid = *pid;
                let pty = run.master.clone();
                self.execs.update(&id, |e| {
                    e.running = true;
                    e.pid = pid;
                    e.pty = pty;
                });
                pid
            }
            Err((msg, code)) => {
                let code = *code;
                let text = format!("{}\r\n", exec_error_message(msg));
                // The error would follow the 101 headers at once: give buffered clients
                // (docker-py) time to read the headers first, or they lose its start.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let _ = client_write
                    .write_all(&write_chunk(2, text.as_bytes()))
                    .await;
                let _ = run.child.wait().await;
                self.execs.update(&id, |e| e.exit_code = Some(code));
                self.emit_exec_event(&id, "exec_die", Some(code));
                let _ = client_write.shutdown().await;
                return;
            }
        };
        let master = run.master.take();
        // stdin: client → helper; EOF (half-close) closes the process's stdin.
        let stdin_task = match (&master, run.child.stdin.take()) {
            (Some(m), _) if entry.config.attach_stdin => {
                let mut m = m.clone();
                let keys = exec_detach_keys(&entry.config.detach_keys)
                    .unwrap_or_else(|_| DEFAULT_DETACH_KEYS.to_vec());
                Some(tokio::spawn(async move {
                    copy_escapable(&mut client_read, &mut m, EscapeProxy::new(keys)).await
                }))
            }
            (_, Some(mut stdin)) => Some(tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut stdin).await;
                let _ = stdin.shutdown().await;
                false
            })),
            _ => None,
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(u8, Bytes)>(16);
        if let Some(out) = run.child.stdout.take() {
            tokio::spawn(pump(out, 1, tx.clone()));
        }
        if let Some(err) = run.child.stderr.take() {
            tokio::spawn(pump(err, 2, tx.clone()));
        }
        let pty_pump = master
            .as_ref()
            .map(|m| tokio::spawn(pump(m.clone(), 1, tx.clone())));
        drop(tx);
        // With a TTY everything is one stream (stdout).
        let (want_out, want_err) = if tty {
            let any = entry.config.attach_stdout || entry.config.attach_stderr;
            (any, any)
        } else {
            (entry.config.attach_stdout, entry.config.attach_stderr)
        };
        let mut client_ok = true;
        let mut code: Option<i64> = None;
        let mut stdin_task = stdin_task;
        let mut tty_stdin_open = tty && stdin_task.is_some();
        // Once the process is gone, what it wrote is in the pty already: a moment more
        // for it, not for background processes that keep the terminal open.
        let mut drain_deadline: Option<tokio::time::Instant> = None;
        loop {
            let deadline = drain_deadline;
            tokio::select! {
                msg = rx.recv() => {
                    let Some((stream, data)) = msg else { break };
                    let wanted = if stream == 1 { want_out } else { want_err };
                    if client_ok
                        && wanted
                        && client_write
                            .write_all(&write_chunk(stream, &data))
                            .await
                            .is_err()
                    {
                        client_ok = false;
                        if tty && code.is_none() {
                            hang_up(pid);
                        }
                    }
                }
                status = run.child.wait(), if tty && code.is_none() => {
                    code = Some(status.map(exit_code).unwrap_or(255));
                    drain_deadline = Some(
                        tokio::time::Instant::now() + std::time::Duration::from_millis(500),
                    );
                }
                detached = async {
                    match stdin_task.as_mut() {
                        Some(t) => t.await.unwrap_or(false),
                        None => std::future::pending().await,
                    }
                }, if tty_stdin_open => {
                    tty_stdin_open = false;
                    stdin_task = None;
                    if client_ok {
                        client_ok = false;
                        let _ = client_write.shutdown().await;
                    }
                    // Detached: the process runs on (its output is drained); a client
                    // that went away hangs the terminal up.
                    if !detached && code.is_none() {
                        hang_up(pid);
                    }
                }
                _ = async move {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => break,
            }
        }
        drop(rx);
        let code = match code {
            Some(c) => c,
            None => run.child.wait().await.map(exit_code).unwrap_or(255),
        };
        self.exec_finished(&id, code);
        drop(master);
        // A background process may hold the terminal open: its output has nowhere to go.
        if let Some(t) = pty_pump {
            t.abort();
        }
        if let Some(t) = stdin_task {
            t.abort();
        }
        let _ = client_write.shutdown().await;
    }
}

/// Copies the client's bytes to a TTY exec's terminal until EOF (`false`) or the detach
/// sequence (`true`).
async fn copy_escapable<R, W>(r: &mut R, w: &mut W, mut escape: EscapeProxy) -> bool
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let (data, detach) = escape.feed(&buf[..n]);
        if !data.is_empty() && w.write_all(&data).await.is_err() {
            return false;
        }
        if detach {
            return true;
        }
    }
}

/// A terminal hang-up for the exec's process `pid` (a session leader on its pty, so
/// also its process group): SIGHUP, then SIGCONT for stopped jobs.
fn hang_up(pid: i64) {
    let Ok(pid) = i32::try_from(pid) else { return };
    if pid <= 1 {
        return;
    }
    // SAFETY: plain kill(2); the helper has not reaped `pid` while it runs.
    unsafe {
        libc::kill(-pid, libc::SIGHUP);
        libc::kill(-pid, libc::SIGCONT);
    }
}
