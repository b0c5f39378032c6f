//! `RuntimeService`: each call goes to the module that does it. Calls Berth does not
//! serve answer UNIMPLEMENTED (the generated default), never a fake success.

use berth_cri_api::v1::runtime_service_server::RuntimeService;
use berth_cri_api::v1::*;
use tonic::{Request, Response, Status};

use super::{info, CriService};

#[tonic::async_trait]
impl RuntimeService for CriService {
    async fn version(
        &self,
        _req: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(info::version()))
    }

    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(info::status(self.pod_network_ready())))
    }

    async fn runtime_config(
        &self,
        _req: Request<RuntimeConfigRequest>,
    ) -> Result<Response<RuntimeConfigResponse>, Status> {
        Ok(Response::new(info::runtime_config()))
    }

    async fn exec(&self, req: Request<ExecRequest>) -> Result<Response<ExecResponse>, Status> {
        self.streaming
            .exec(req.into_inner())
            .await
            .map(Response::new)
    }

    async fn attach(
        &self,
        req: Request<AttachRequest>,
    ) -> Result<Response<AttachResponse>, Status> {
        self.streaming
            .attach(req.into_inner())
            .await
            .map(Response::new)
    }

    async fn port_forward(
        &self,
        req: Request<PortForwardRequest>,
    ) -> Result<Response<PortForwardResponse>, Status> {
        self.streaming
            .port_forward(req.into_inner())
            .await
            .map(Response::new)
    }
}

impl CriService {
    /// Whether pods can get a network: `Err((reason, message))` when not.
    fn pod_network_ready(&self) -> Result<(), (String, String)> {
        Err((
            "NetworkPluginNotReady".into(),
            "Berth does not serve pod networks yet".into(),
        ))
    }
}
