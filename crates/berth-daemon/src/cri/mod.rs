//! The Kubernetes CRI v1 service: `RuntimeService` and `ImageService` over gRPC on a
//! second unix socket (`--cri-socket`, daemon.json `cri-socket`, default
//! `/run/berth/cri.sock`; an empty value turns it off).
//!
//! A peer of the other services: pods and CRI containers are Berth containers
//! underneath (labelled `io.kubernetes.*`), images are the one image store, so
//! `docker images` and `crictl images` show the same images, and live restore,
//! reconcile and `rm` work for them as for any container.
//!
//! Layout: `runtime.rs` is the RuntimeService dispatch, `image.rs` the ImageService,
//! `info.rs` Version/Status/RuntimeConfig, `pods/` the pod sandboxes, `containers/` the
//! containers in them (their logs in the CRI format at the kubelet's path, written by
//! the shim), `streaming/` the Exec/Attach/PortForward server (the URLs those calls
//! return).

mod containers;
mod error;
mod image;
mod info;
pub mod pods;
mod runtime;
pub mod streaming;
mod timing;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use berth_cri_api::v1::image_service_server::ImageServiceServer;
use berth_cri_api::v1::runtime_service_server::RuntimeServiceServer;

use crate::state::Daemon;

/// Where `berth daemon` serves CRI unless told otherwise.
pub const DEFAULT_CRI_SOCKET: &str = "/run/berth/cri.sock";

/// The CRI service: the daemon's other services, and the streaming server.
#[derive(Clone)]
pub struct CriService {
    daemon: Daemon,
    streaming: Arc<streaming::StreamingServer>,
}

impl CriService {
    /// The service on `daemon`'s stores; starts the streaming server.
    pub async fn start(daemon: Daemon) -> anyhow::Result<CriService> {
        let streaming = streaming::StreamingServer::start(daemon.clone())
            .await
            .context("starting the CRI streaming server")?;
        Ok(CriService { daemon, streaming })
    }
}

/// Binds `socket` (mode 0660, root's group) and starts the streaming server; the
/// returned future serves CRI until `shutdown`, then removes the socket. Binding errors
/// stop the daemon's start.
pub async fn serve(
    daemon: Daemon,
    socket: &Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static> {
    let cri = CriService::start(daemon).await?;
    let listener = crate::socket::bind(socket, None)?;
    tracing::info!(socket = %socket.display(), "CRI listening");
    let socket = socket.to_path_buf();
    Ok(async move {
        let incoming = futures_util::stream::unfold(listener, |listener| async move {
            let conn = listener.accept().await.map(|(stream, _)| stream);
            Some((conn, listener))
        });
        let result = tonic::transport::Server::builder()
            .layer(timing::TimingLayer)
            .add_service(RuntimeServiceServer::new(cri.clone()))
            .add_service(ImageServiceServer::new(cri))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
        let _ = std::fs::remove_file(&socket);
        result.context("serving CRI")
    })
}
