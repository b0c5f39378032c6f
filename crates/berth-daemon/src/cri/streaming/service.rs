//! `StreamingServer`: the three CRI calls (Exec, Attach, PortForward) check their request
//! as the kubelet's streaming server and containerd do, store it under a token and answer
//! with the URL; [`super::server`] serves that URL.

use std::sync::Arc;

use berth_cri_api::v1::{
    AttachRequest, AttachResponse, ExecRequest, ExecResponse, PortForwardRequest,
    PortForwardResponse,
};
use tonic::Status;

use super::server;
use super::session::{AttachTarget, ExecTarget};
use super::tokens::{Pending, Tokens};
use crate::containers::record::ContainerRecord;
use crate::state::Daemon;

/// The streaming server of one daemon.
pub struct StreamingServer {
    daemon: Daemon,
    tokens: Arc<Tokens>,
    /// `http://127.0.0.1:PORT`
    base_url: String,
}

impl StreamingServer {
    /// Starts the server (binds 127.0.0.1 on a free port) for `daemon`'s containers.
    pub async fn start(daemon: Daemon) -> anyhow::Result<Arc<StreamingServer>> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let tokens = Arc::new(Tokens::default());
        let app = server::router(server::Shared {
            daemon: daemon.clone(),
            tokens: tokens.clone(),
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("CRI streaming server: {e}");
            }
        });
        tracing::info!(url = %base_url, "CRI streaming server listening");
        Ok(Arc::new(StreamingServer {
            daemon,
            tokens,
            base_url,
        }))
    }

    fn url(&self, kind: &str, p: Pending) -> String {
        format!("{}/{kind}/{}", self.base_url, self.tokens.insert(p))
    }

    /// The running container `id`, or the status containerd gives.
    fn running(&self, id: &str) -> Result<ContainerRecord, Status> {
        if id.is_empty() {
            return Err(Status::invalid_argument("missing required container_id"));
        }
        let rec = self.daemon.containers.get(id).map_err(|_| {
            Status::not_found(format!(
                "an error occurred when try to find container {id:?}: not found"
            ))
        })?;
        if !rec.state.status.is_running() {
            return Err(Status::failed_precondition(format!(
                "container {} is not running",
                rec.id
            )));
        }
        Ok(rec)
    }

    pub async fn exec(&self, req: ExecRequest) -> Result<ExecResponse, Status> {
        check_streams(req.stdin, req.stdout, req.stderr, req.tty)?;
        if req.cmd.is_empty() {
            return Err(Status::invalid_argument("missing required cmd"));
        }
        let rec = self.running(&req.container_id)?;
        let url = self.url(
            "exec",
            Pending::Exec(ExecTarget {
                container_id: rec.id,
                cmd: req.cmd,
                tty: req.tty,
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
            }),
        );
        Ok(ExecResponse { url })
    }

    pub async fn attach(&self, req: AttachRequest) -> Result<AttachResponse, Status> {
        check_streams(req.stdin, req.stdout, req.stderr, req.tty)?;
        let rec = self.running(&req.container_id)?;
        let url = self.url(
            "attach",
            Pending::Attach(AttachTarget {
                container_id: rec.id,
                tty: req.tty,
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
            }),
        );
        Ok(AttachResponse { url })
    }

    pub async fn port_forward(
        &self,
        req: PortForwardRequest,
    ) -> Result<PortForwardResponse, Status> {
        if req.pod_sandbox_id.is_empty() {
            return Err(Status::invalid_argument("missing required pod_sandbox_id"));
        }
        let rec = self
            .daemon
            .containers
            .get(&req.pod_sandbox_id)
            .map_err(|_| {
                Status::not_found(format!(
                    "failed to find sandbox {:?}: not found",
                    req.pod_sandbox_id
                ))
            })?;
        if !rec.state.status.is_running() {
            return Err(Status::failed_precondition(format!(
                "sandbox {} is not running",
                rec.id
            )));
        }
        let url = self.url("portforward", Pending::PortForward { sandbox_id: rec.id });
        Ok(PortForwardResponse { url })
    }
}

/// The kubelet streaming server's request checks.
fn check_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<(), Status> {
    if tty && stderr {
        return Err(Status::invalid_argument(
            "tty and stderr cannot both be true",
        ));
    }
    if !stdin && !stdout && !stderr {
        return Err(Status::invalid_argument(
            "one of stdin, stdout, or stderr must be set",
        ));
    }
    Ok(())
}
