//! The CRI streaming server: Exec, Attach and PortForward answer with a URL on it, where
//! the kubelet (or crictl) then streams over SPDY or websocket.
//!
//! Not served yet: the three calls answer UNIMPLEMENTED. This module's interface —
//! `StreamingServer::start` and the three calls — is what `cri/runtime.rs` uses.

use std::sync::Arc;

use berth_cri_api::v1::{
    AttachRequest, AttachResponse, ExecRequest, ExecResponse, PortForwardRequest,
    PortForwardResponse,
};
use tonic::Status;

use crate::state::Daemon;

/// The streaming server of one daemon.
pub struct StreamingServer {
    _daemon: Daemon,
}

impl StreamingServer {
    /// Starts the server (binds its address) for `daemon`'s containers.
    pub async fn start(daemon: Daemon) -> anyhow::Result<Arc<StreamingServer>> {
        Ok(Arc::new(StreamingServer { _daemon: daemon }))
    }

    pub async fn exec(&self, _req: ExecRequest) -> Result<ExecResponse, Status> {
        Err(Status::unimplemented(
            "Exec: the streaming server is not served yet",
        ))
    }

    pub async fn attach(&self, _req: AttachRequest) -> Result<AttachResponse, Status> {
        Err(Status::unimplemented(
            "Attach: the streaming server is not served yet",
        ))
    }

    pub async fn port_forward(
        &self,
        _req: PortForwardRequest,
    ) -> Result<PortForwardResponse, Status> {
        Err(Status::unimplemented(
            "PortForward: the streaming server is not served yet",
        ))
    }
}
