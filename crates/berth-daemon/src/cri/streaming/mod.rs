//! The CRI streaming server: Exec, Attach and PortForward answer with a URL on it, where
//! the kubelet (or crictl, critest) then streams over SPDY/3.1 or websocket — the
//! kubelet's `pkg/kubelet/cri/streaming` design.
//!
//! - [`server`]: the HTTP side on 127.0.0.1 (a free port), one route per call.
//! - [`tokens`]: the validated requests behind the URLs (single use, one minute).
//! - [`spdy`]: SPDY/3.1 frames, header compression, the server connection.
//! - [`remotecommand`]: exec/attach over SPDY (`v2`–`v5.channel.k8s.io`).
//! - [`websocket`]: exec/attach over websocket (`v4`/`v5.channel.k8s.io`).
//! - [`portforward`]: `portforward.k8s.io` over SPDY, into the pod's network namespace.
//! - [`session`]: the container end, on the daemon's exec and attach machinery.
//! - [`service`]: [`StreamingServer`], the three CRI calls.

mod portforward;
mod remotecommand;
mod server;
mod service;
pub(crate) mod session;
pub mod spdy;
mod tokens;
mod websocket;

pub use service::StreamingServer;
