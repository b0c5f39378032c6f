//! How long each CRI call took, at debug level under `berth::timing`
//! (`BERTH_LOG=berth::timing=debug`), as the start and stop paths log their steps: where
//! a `crictl runp` / `create` / `start` spends its time can be read from the daemon's log.
//! Costs nothing when that level is off.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// A tower layer that logs each call's gRPC path and duration.
#[derive(Clone, Copy, Default)]
pub struct TimingLayer;

impl<S> tower::Layer<S> for TimingLayer {
    type Service = Timed<S>;

    fn layer(&self, inner: S) -> Timed<S> {
        Timed(inner)
    }
}

#[derive(Clone)]
pub struct Timed<S>(S);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Timed<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let on = tracing::enabled!(target: "berth::timing", tracing::Level::DEBUG);
        let call = on.then(|| req.uri().path().to_string());
        let started = Instant::now();
        let fut = self.0.call(req);
        Box::pin(async move {
            let out = fut.await;
            if let Some(call) = call {
                tracing::debug!(
                    target: "berth::timing",
                    step = "cri.call",
                    call,
                    micros = started.elapsed().as_micros() as u64
                );
            }
            out
        })
    }
}
