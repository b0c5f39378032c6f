//! Exec handlers: create (routed in the containers table), start (hijacked or
//! detached), inspect, resize.

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_api::{ExecCreateBody, ExecStartBody, IdResponse};
use http::StatusCode;

use super::extract::{decode_json, JsonBody, Query};
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
    JsonBody(body): JsonBody<ExecCreateBody>,
) -> ApiResult<Response> {
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
    version: ApiVersion,
    mut req: Request,
) -> ApiResult<Response> {
    d.containers.exec_inspect(&id)?;
    let bytes = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|e| ApiError::invalid(format!("reading the request body: {e}")))?;
    let body: ExecStartBody = decode_json(&bytes)?.unwrap_or_default();
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
            let stream = tokio_util::io::ReaderStream::new(theirs);
            Ok(super::stream_response(media, stream))
        }
    }
}

async fn inspect(State(d): State<Daemon>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(d.containers.exec_inspect(&id)?).into_response())
}

async fn resize(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<StatusCode> {
    let (h, w) = resize_dims(&q)?;
    d.containers.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

/// `h` and `w` of a resize request; both required, as in moby's router (its
/// `strconv.Atoi` error text).
fn resize_dims(q: &Query) -> ApiResult<(u16, u16)> {
    let dim = |k: &str| -> ApiResult<u16> {
        let v = q.get(k).unwrap_or("");
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

    fn q(pairs: &[(&str, &str)]) -> Query {
        let raw: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Query::parse(Some(&raw.join("&")))
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
