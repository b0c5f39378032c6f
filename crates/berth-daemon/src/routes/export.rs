//! `GET /containers/{id}/export`: the container's flattened filesystem as a tar stream.
//!
//! No mount is made: the tar is a walk over the overlay's directories (the container's
//! writable `upper/` on top of its image's layers, whiteouts and opaque directories
//! applied), see [`berth_image::pack::export_merged`]. A running container may be caught
//! mid-write, as with Docker.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::error::{ApiError, ApiResult};
use crate::routes::images::tar_stream_response;
use crate::state::Daemon;

pub fn routes() -> Router<Daemon> {
    Router::new().route("/containers/{id}/export", get(export))
}

async fn export(State(d): State<Daemon>, Path(id): Path<String>) -> ApiResult<Response> {
    let rec = d.containers.get(&id)?;
    let upper = d.containers.container_dir(&rec.id).join("upper");
    let images = d.images.clone();
    let image_id = rec.image_id.clone();
    let lowers = tokio::task::spawn_blocking(move || images.layer_dirs(&image_id))
        .await
        .map_err(|e| ApiError::internal(format!("export task failed: {e}")))??;
    let mut layers = vec![upper];
    layers.extend(lowers);
    Ok(tar_stream_response("container export", move |w| {
        berth_image::pack::export_merged(&layers, w)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }))
}
