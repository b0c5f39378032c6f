//! Exec routes: create, start (hijacked or detached), inspect, resize.

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

pub fn routes() -> Router<Daemon> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/json", get(inspect))
        .route("/exec/{id}/resize", post(resize))
}

async fn create(
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
    // Find out the TTY before answering: it decides the media type.
    let tty = d.containers.exec_inspect(&id)?.process_config.tty;
    let media = hijack::stream_media_type(tty, version.at_least("1.42"));
    let hijack = hijack::prepare(&mut req, media);
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::invalid(format!("reading the request body: {e}")))?;
    let body: ExecStartBody = if bytes.is_empty() {
        ExecStartBody::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?
    };
    let entry = d.containers.exec_prepare(&id)?;
    if body.detach {
        d.containers.exec_start_detached(entry).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let svc = d.containers.clone();
    match hijack {
        Hijack::Upgrade { response, upgrade } => {
            tokio::spawn(async move {
                match hijack::upgraded(upgrade).await {
                    Ok(client) => svc.exec_run_attached(entry, client).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "exec client went away before the hijack")
                    }
                }
            });
            Ok(response)
        }
        Hijack::Plain => {
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move { svc.exec_run_attached(entry, ours).await });
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
    Query(_q): Query<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    let exec = d.containers.exec_inspect(&id)?;
    if exec.process_config.tty {
        return Err(ApiError::not_implemented(
            "resizing an exec's terminal is not supported by Berth yet",
        ));
    }
    // Without a terminal there is nothing to resize (Docker accepts and ignores it too).
    Ok(StatusCode::OK)
}
