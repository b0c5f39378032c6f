//! A CRI v1 client for the end-to-end tests: tonic clients of Berth's own CRI types on a
//! test daemon's `cri.sock` ([`super::TestDaemon::start_cri`]), driven from sync tests.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::time::Duration;

pub use berth_cri_api::v1;
use berth_cri_api::v1::image_service_client::ImageServiceClient;
use berth_cri_api::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

/// A test daemon serving CRI on its own `cri.sock`, and a client of it. (Every test crate
/// that includes this module also has the harness as `mod common`.)
pub fn cri_daemon() -> (crate::common::TestDaemon, Cri) {
    let d = crate::common::TestDaemon::start_cri();
    let c = Cri::connect(d.cri_sock.as_deref().expect("the CRI socket"));
    (d, c)
}

/// [`cri_daemon`] with the busybox test image imported.
pub fn cri_daemon_with_busybox() -> (crate::common::TestDaemon, Cri) {
    let (d, c) = cri_daemon();
    d.import_busybox();
    (d, c)
}

/// The two CRI clients on one connection, with the runtime that drives them.
pub struct Cri {
    rt: tokio::runtime::Runtime,
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
}

impl Cri {
    /// Connects to the CRI socket at `sock`.
    pub fn connect(sock: &Path) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let path = sock.to_path_buf();
        let channel = rt
            .block_on(
                // The URI is not used: every connection goes to the socket.
                Endpoint::from_static("http://[::1]:50051")
                    .timeout(Duration::from_secs(120))
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let s = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                        }
                    })),
            )
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", sock.display()));
        Cri {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        }
    }

    /// Runs one call to completion.
    pub fn run<T>(&self, fut: impl Future<Output = T>) -> T {
        self.rt.block_on(fut)
    }

    /// The runtime client (a cheap clone, for one call).
    pub fn rt(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone()
    }

    /// The image client (a cheap clone, for one call).
    pub fn img(&self) -> ImageServiceClient<Channel> {
        self.images.clone()
    }
}
