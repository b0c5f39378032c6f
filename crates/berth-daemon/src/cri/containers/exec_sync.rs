//! ExecSync: a command in a running CRI container, its output collected (at most
//! [`MAX_OUTPUT`] per stream, as the CRI asks after CVE-2022-31030), with a timeout.

use std::time::Duration;

use berth_cri_api::v1::{ExecSyncRequest, ExecSyncResponse};
use bytes::Bytes;
use tokio::sync::mpsc;
use tonic::Status;

use super::find;
use crate::cri::streaming::session;
use crate::cri::CriService;

/// Output kept per stream; the rest is read and dropped.
pub const MAX_OUTPUT: usize = 16 << 20;

impl CriService {
    pub async fn exec_sync(&self, req: ExecSyncRequest) -> Result<ExecSyncResponse, Status> {
        let rec = find(&self.daemon, &req.container_id)?;
        if req.cmd.is_empty() {
            return Err(Status::invalid_argument("missing required cmd"));
        }
        if !rec.state.status.is_running() {
            return Err(Status::failed_precondition(format!(
                "container {} is not running",
                rec.id
            )));
        }
        let svc = self.daemon.containers.clone();
        let body = berth_api::ExecCreateBody {
            attach_stdout: true,
            attach_stderr: true,
            cmd: req.cmd.clone(),
            ..Default::default()
        };
        let entry = svc
            .exec_create(&rec.id, body)
            .and_then(|id| svc.exec_prepare(&id))
            .map_err(|e| Status::unknown(format!("failed to exec in container: {}", e.message)))?;
        let exec_id = entry.id.clone();
        let (client, server) = tokio::io::duplex(64 * 1024);
        let run = {
            let svc = svc.clone();
            tokio::spawn(async move { svc.exec_run_attached(entry, server, false).await })
        };
        let (tx, mut rx) = mpsc::channel::<(u8, Bytes)>(16);
        let (client_read, _client_write) = tokio::io::split(client);
        let pump = tokio::spawn(async move { session::demux(client_read, &tx).await });
        let collect = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            while let Some((stream, data)) = rx.recv().await {
                let buf = if stream == 2 { &mut err } else { &mut out };
                let room = MAX_OUTPUT.saturating_sub(buf.len());
                buf.extend_from_slice(&data[..data.len().min(room)]);
            }
            (out, err)
        };
        let collected = if req.timeout > 0 {
            tokio::time::timeout(Duration::from_secs(req.timeout as u64), collect).await
        } else {
            Ok(collect.await)
        };
        let Ok((stdout, stderr)) = collected else {
            // The process goes with its session (SIGHUP) and is killed outright.
            pump.abort();
            if let Ok(i) = svc.exec_inspect(&exec_id) {
                if i.pid > 0 {
                    // SAFETY: kill takes two integers; no memory is passed.
                    unsafe { libc::kill(i.pid as i32, libc::SIGKILL) };
                }
            }
            return Err(Status::deadline_exceeded(format!(
                "command {:?} timed out after {}s",
                req.cmd.join(" "),
                req.timeout
            )));
        };
        let _ = run.await;
        let exit_code = svc
            .exec_inspect(&exec_id)
            .ok()
            .and_then(|i| i.exit_code)
            .unwrap_or(-1);
        Ok(ExecSyncResponse {
            stdout,
            stderr,
            exit_code: exit_code as i32,
        })
    }
}
