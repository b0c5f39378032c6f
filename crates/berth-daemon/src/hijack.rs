//! Docker's connection hijack (`Connection: Upgrade`, `Upgrade: tcp`), used by attach and
//! exec start: the daemon answers `101 UPGRADED` and the socket becomes a raw stream both
//! ways. Clients that do not ask for the upgrade get a `200` with a streamed body instead
//! (handled by the caller through [`Hijack::Plain`]).

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// The raw, bidirectional stream of a hijacked connection.
pub type HijackedStream = TokioIo<hyper::upgrade::Upgraded>;

/// Media type of a stream without TTY (multiplexed, API ≥ 1.42) or with one (raw).
pub fn stream_media_type(tty: bool, multiplexed_supported: bool) -> &'static str {
    if !tty && multiplexed_supported {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    }
}

pub enum Hijack {
    /// The client asked for the upgrade: answer with `response`; the stream arrives
    /// through `upgrade` once the response is sent.
    Upgrade {
        response: Response,
        upgrade: OnUpgrade,
    },
    /// A plain request: the caller streams its output as the response body.
    Plain,
}

/// Prepares the hijack of `req` (call before reading the body).
pub fn prepare(req: &mut Request, media_type: &'static str) -> Hijack {
    let wants_upgrade = req
        .headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    let on_upgrade = req.extensions_mut().remove::<OnUpgrade>();
    match (wants_upgrade, on_upgrade) {
        (true, Some(upgrade)) => {
            let response = Response::builder()
                .status(http::StatusCode::SWITCHING_PROTOCOLS)
                .header(http::header::CONNECTION, "Upgrade")
                .header(http::header::UPGRADE, "tcp")
                .header(http::header::CONTENT_TYPE, media_type)
                .body(Body::empty())
                .unwrap_or_default();
            Hijack::Upgrade { response, upgrade }
        }
        _ => Hijack::Plain,
    }
}

/// Waits for the upgraded stream.
pub async fn upgraded(upgrade: OnUpgrade) -> std::io::Result<HijackedStream> {
    upgrade
        .await
        .map(TokioIo::new)
        .map_err(|e| std::io::Error::other(format!("hijack failed: {e}")))
}
