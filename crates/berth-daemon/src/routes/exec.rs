//! Exec handlers: create (routed in the containers table), start (hijacked or
//! detached), inspect, resize.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_api::{ExecCreateBody, ExecStartBody, IdResponse};
use http::StatusCode;

use crate::error::{ApiError, ApiResult};
use crate::hijack::{self, Hijack};
use crate::state::Daemon;
use crate::version::ApiVersion;

/// The `/exec/{id}` routes; `POST /containers/{id}/exec` is in the containers table.
pub fn routes() -> Router<Daemon> {
    Router::new()
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/json", get(inspect))
        .route("/exec/{id}/resize", post(resize))
}

pub(super) async fn create(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: ExecCreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    let exec_id = d.containers.exec_create(&id, body)?;
    Ok((
        StatusCode::CREATED,
        Json(IdResponse {
            id: exec_id,
            warnings: Vec::new(),
        }),
    )
        .into_response())
}

async fn start(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    mut req: Request,
) -> ApiResult<Response> {
    let version = req
        .extensions()
        .get::<ApiVersion>()
        .copied()
        .unwrap_or(ApiVersion(1, 45));
    d.containers.exec_inspect(&id)?;
    let bytes = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|e| ApiError::invalid(format!("reading the request body: {e}")))?;
    let body: ExecStartBody = if bytes.is_empty() {
        ExecStartBody::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?
    };
    // As in moby, the start request's `Tty` (not the exec's) decides whether output is
    // multiplexed: a TTY exec started without it sends its terminal as stdout frames.
    let raw = body.tty;
    let media = hijack::stream_media_type(raw, version.at_least("1.42"));
    let hijack = hijack::prepare(&mut req, media);
    let mut entry = d.containers.exec_prepare(&id)?;
    // The start request's size wins (API 1.42+, only with its Tty), as in moby.
    if body.tty && version.at_least("1.42") {
        if let Some(size) = body.console_size.filter(|s| s.len() == 2) {
            entry.config.console_size = Some(size);
        }
    }
    if body.detach {
        d.containers.exec_start_detached(entry).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let svc = d.containers.clone();
    match hijack {
        Hijack::Upgrade { response, upgrade } => {
            tokio::spawn(async move {
                match hijack::upgraded(upgrade).await {
                    Ok(client) => svc.exec_run_attached(entry, client, raw).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "exec client went away before the hijack")
                    }
                }
            });
            Ok(response)
        }
        Hijack::Plain => {
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move { svc.exec_run_attached(entry, ours, raw).await });
            Ok(Response::builder()
                .header(http::header::CONTENT_TYPE, media)
                .body(Body::from_stream(tokio_util::io::ReaderStream::new(theirs)))
                .unwrap_or_default())
        }
    }
}

async fn inspect(State(d): State<Daemon>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(d.containers.exec_inspect(&id)?).into_response())
}

async fn resize(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    let (h, w) = resize_dims(&q)?;
    d.containers.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

/// `h` and `w` of a resize request; both required, as in moby's router (its
/// `strconv.Atoi` error text).
fn resize_dims(q: &HashMap<String, String>) -> ApiResult<(u16, u16)> {
    let dim = |k: &str| -> ApiResult<u16> {
        let v = q.get(k).map(String::as_str).unwrap_or("");
        let n: i64 = v.parse().map_err(|_| {
            ApiError::invalid(format!("strconv.Atoi: parsing {v:?}: invalid syntax"))
        })?;
        u16::try_from(n).map_err(|_| ApiError::invalid(format!("invalid value for {k}: {v}")))
    };
    Ok((dim("h")?, dim("w")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn resize_dimensions() {
        assert_eq!(
            resize_dims(&q(&[("h", "24"), ("w", "80")])).ok(),
            Some((24, 80))
        );
        let e = resize_dims(&q(&[("w", "80")])).err().map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some("strconv.Atoi: parsing \"\": invalid syntax")
        );
        assert!(resize_dims(&q(&[("h", "x"), ("w", "80")])).is_err());
        assert!(resize_dims(&q(&[("h", "-1"), ("w", "80")])).is_err());
    }
}
