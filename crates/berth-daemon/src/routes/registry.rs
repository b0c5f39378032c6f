//! Registry routes: `POST /auth` (`docker login`) and `GET /distribution/{name}/json`
//! (what a reference points at in its registry, without pulling it).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_api::{AuthConfig, AuthResponse};
use berth_image::Reference;
use serde_json::{json, Value};

use super::extract::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::routes::images::registry_auth;
use crate::state::Daemon;

pub fn routes() -> Router<Daemon> {
    Router::new()
        .route("/auth", post(login))
        .route("/distribution/{name}/json", get(inspect_distribution))
}

/// `POST /auth`: the registry accepts the credentials, or the error says why not.
async fn login(
    State(d): State<Daemon>,
    JsonBody(auth): JsonBody<AuthConfig>,
) -> ApiResult<Json<AuthResponse>> {
    d.registry.login(&auth).await?;
    Ok(Json(AuthResponse {
        status: "Login Succeeded".into(),
        identity_token: String::new(),
    }))
}

/// `GET /distribution/{name}/json`: the descriptor the reference resolves to and the
/// platforms it offers.
async fn inspect_distribution(
    State(d): State<Daemon>,
    Path(name): Path<String>,
    headers: http::HeaderMap,
) -> ApiResult<Json<Value>> {
    let reference = Reference::parse_normalized(&name)
        .map_err(|e| ApiError::invalid(e.0))?
        .with_default_tag();
    let auth = registry_auth(&headers)?;
    let resolved = d
        .registry
        .resolve(&reference, &berth_registry::Platform::host(), auth.as_ref())
        .await?;
    let (top, media_type) = match &resolved.index_bytes {
        Some(index) => (index.clone(), media_type_of(index)),
        None => (
            resolved.manifest_bytes.clone(),
            resolved.manifest_media_type.clone(),
        ),
    };
    let platforms: Vec<Value> = match &resolved.index_bytes {
        Some(index) => serde_json::from_slice::<Value>(index)
            .ok()
            .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m.get("platform").cloned())
            .collect(),
        None => {
            let config = d
                .registry
                .fetch_blob(&resolved.repository, &resolved.config)
                .await?;
            let c: Value = serde_json::from_slice(&config).unwrap_or_default();
            vec![json!({"architecture": c["architecture"], "os": c["os"]})]
        }
    };
    Ok(Json(json!({
        "Descriptor": {"mediaType": media_type, "digest": resolved.digest, "size": top.len()},
        "Platforms": platforms,
    })))
}

fn media_type_of(index: &[u8]) -> String {
    serde_json::from_slice::<Value>(index)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "application/vnd.oci.image.index.v1+json".into())
}
