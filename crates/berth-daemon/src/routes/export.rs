//! A container's filesystem out of it (routed in the containers table):
//! `GET /containers/{id}/export`, the flattened filesystem as a tar stream, and
//! `POST /commit`, the writable layer as a new image.
//!
//! No mount is made: the tar is a walk over the overlay's directories (the container's
//! writable `upper/` on top of its image's layers, whiteouts and opaque directories
//! applied), see [`berth_image::pack::export_merged`]. A running container may be caught
//! mid-write, as with Docker.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;

use super::extract::{OptionalJsonBody, Query};
use super::images::{repo_tag, tar_stream_response};
use crate::error::{blocking, ApiError, ApiResult};
use crate::state::Daemon;

pub(super) async fn export(State(d): State<Daemon>, Path(id): Path<String>) -> ApiResult<Response> {
    let rec = d.containers.get(&id)?;
    let upper = d.containers.container_dir(&rec.id).join("upper");
    let images = d.images.clone();
    let image_id = rec.image_id.clone();
    let lowers = tokio::task::spawn_blocking(move || images.layer_dirs(&image_id))
        .await
        .map_err(|e| ApiError::internal(format!("export task failed: {e}")))??;
    let mut layers = vec![upper];
    layers.extend(lowers);
    let unmap = d.containers.layer_unmap(&rec.id);
    d.containers.emit_container_event(&rec, "export", &[]);
    Ok(tar_stream_response("container export", move |w| {
        berth_image::pack::export_merged_unmapped(&layers, w, unmap)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }))
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=` with an optional
/// `Config` body → 201 `{"Id": "sha256:…"}`. The container is not paused (Berth has no
/// pause in the commit path yet): a busy container may be caught mid-write.
pub(super) async fn commit(
    State(d): State<Daemon>,
    q: Query,
    OptionalJsonBody(config): OptionalJsonBody<berth_api::ContainerConfig>,
) -> ApiResult<Response> {
    let rec = d.containers.get(&q.str("container"))?;
    let opts = berth_image::CommitOptions {
        parent: rec.image_id.clone(),
        upper: d.containers.container_dir(&rec.id).join("upper"),
        container_id: rec.id.clone(),
        container_config: rec.config.clone(),
        config,
        changes: q.all("changes"),
        author: q.str("author"),
        comment: q.str("comment"),
        reference: repo_tag(&q.str("repo"), &q.str("tag"))?,
        unmap: d.containers.layer_unmap(&rec.id),
    };
    let image_ref = opts
        .reference
        .as_deref()
        .and_then(|r| berth_image::Reference::parse_normalized(r).ok())
        .map(|r| r.familiar_string())
        .unwrap_or_default();
    let images = d.images.clone();
    let id = blocking(move || Ok(images.commit(&opts)?)).await?;
    if !image_ref.is_empty() {
        d.emit_image_event("tag", &id, &image_ref);
    }
    d.containers.emit_container_event(
        &rec,
        "commit",
        &[
            ("comment", &q.str("comment")),
            ("imageID", &id),
            ("imageRef", &image_ref),
        ],
    );
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}
