//! The streaming server's HTTP side: `/exec/{token}`, `/attach/{token}` and
//! `/portforward/{token}` on 127.0.0.1, each upgraded to SPDY/3.1 (what kubectl, crictl
//! and critest use by default) or to a websocket (exec and attach).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use http::{HeaderMap, StatusCode};
use hyper::upgrade::OnUpgrade;

use super::remotecommand::{self, Want};
use super::tokens::{Pending, Tokens};
use super::{portforward, session, websocket};
use crate::state::Daemon;

const SPDY: &str = "SPDY/3.1";
const PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";

#[derive(Clone)]
pub struct Shared {
    pub daemon: Daemon,
    pub tokens: Arc<Tokens>,
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/exec/{token}", any(handle))
        .route("/attach/{token}", any(handle))
        .route("/portforward/{token}", any(handle))
        .with_state(shared)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, msg.into()).into_response()
}

fn is_websocket(h: &HeaderMap) -> bool {
    h.get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn is_spdy(h: &HeaderMap) -> bool {
    let has = |name: http::header::HeaderName, want: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.to_ascii_lowercase().contains(&want.to_ascii_lowercase()))
        })
    };
    has(http::header::CONNECTION, "upgrade") && has(http::header::UPGRADE, SPDY)
}

async fn handle(
    State(shared): State<Shared>,
    Path(token): Path<String>,
    mut req: Request,
) -> Response {
    let kind = req.uri().path().split('/').nth(1).unwrap_or("").to_string();
    let pending = match shared.tokens.take(&token) {
        Some(p) => p,
        None => return error(StatusCode::NOT_FOUND, "unknown or expired streaming token"),
    };
    let matches = matches!(
        (&pending, kind.as_str()),
        (Pending::Exec(_), "exec")
            | (Pending::Attach(_), "attach")
            | (Pending::PortForward { .. }, "portforward")
    );
    if !matches {
        return error(StatusCode::NOT_FOUND, "unknown or expired streaming token");
    }
    let d = shared.daemon.clone();
    if is_websocket(req.headers()) {
        let want = match &pending {
            Pending::Exec(t) => want_of(t.stdin, t.stdout, t.stderr, t.tty),
            Pending::Attach(t) => want_of(t.stdin, t.stdout, t.stderr, t.tty),
            Pending::PortForward { .. } => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "port forwarding over websocket is not supported: use SPDY/3.1",
                )
            }
        };
        let (mut parts, _) = req.into_parts();
        let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(ws) => ws,
            Err(e) => return e.into_response(),
        };
        return ws
            .protocols(websocket::PROTOCOLS)
            .on_upgrade(move |socket| async move {
                websocket::serve(socket, want, |io| run(d, pending, io)).await
            });
    }
    if !is_spdy(req.headers()) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "unable to upgrade: missing upgrade headers in request: {:?}",
                req.headers()
            ),
        );
    }
    let offered: Vec<String> = req
        .headers()
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let server: &[&str] = match pending {
        Pending::PortForward { .. } => &[portforward::PROTOCOL],
        _ => &remotecommand::PROTOCOLS,
    };
    let Some(protocol) = remotecommand::negotiate(&offered, server) else {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {server:?}"
            ),
        );
    };
    let Some(upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unable to upgrade: unable to hijack response",
        );
    };
    // For port forwarding: the pod's holder process, checked before the upgrade.
    let forward = match &pending {
        Pending::PortForward { sandbox_id } => match d.containers.get(sandbox_id) {
            Ok(rec) if rec.state.status.is_running() && rec.state.pid > 0 => {
                Some((rec.id.clone(), rec.state.pid as i32))
            }
            Ok(rec) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("pod sandbox {} is not running", rec.id),
                )
            }
            Err(e) => return error(StatusCode::NOT_FOUND, e.message),
        },
        _ => None,
    };
    tokio::spawn(async move {
        let io = match crate::hijack::upgraded(upgrade).await {
            Ok(io) => io,
            Err(e) => {
                tracing::debug!("streaming: {e}");
                return;
            }
        };
        match (forward, &pending) {
            (Some((pod, pid)), _) => portforward::serve(io, pod, pid).await,
            (None, Pending::Exec(t)) => {
                let want = want_of(t.stdin, t.stdout, t.stderr, t.tty);
                remotecommand::serve(io, protocol, want, |io| run(d, pending, io)).await
            }
            (None, Pending::Attach(t)) => {
                let want = want_of(t.stdin, t.stdout, t.stderr, t.tty);
                remotecommand::serve(io, protocol, want, |io| run(d, pending, io)).await
            }
            (None, Pending::PortForward { .. }) => {}
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, SPDY)
        .header(PROTOCOL_HEADER, protocol)
        .body(Body::empty())
        .unwrap_or_default()
}

fn want_of(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Want {
    Want {
        stdin,
        stdout,
        // A TTY has one output stream.
        stderr: stderr && !tty,
        tty,
    }
}

async fn run(d: Daemon, pending: Pending, io: session::Io) -> session::Outcome {
    match pending {
        Pending::Exec(t) => session::exec(&d, &t, io).await,
        Pending::Attach(t) => session::attach(&d, &t, io).await,
        Pending::PortForward { .. } => session::Outcome::Failed("not a remote command".into()),
    }
}
