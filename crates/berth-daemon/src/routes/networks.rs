//! Network routes (moby `api/server/router/network`): list, inspect, create, remove,
//! prune. `connect`/`disconnect` answer 501 until multi-network endpoints exist.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::state::Daemon;

pub fn routes() -> Router<Daemon> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect))
        .route("/networks/{id}", delete(remove))
        .route("/networks/{id}/connect", post(not_yet))
        .route("/networks/{id}/disconnect", post(not_yet))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: String,
    gateway: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Ipam {
    config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    internal: bool,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    labels: Option<BTreeMap<String, String>>,
}

fn names(d: &Daemon) -> impl Fn(&str) -> Option<String> + '_ {
    |id: &str| d.containers.get(id).ok().map(|r| r.name.trim_start_matches('/').to_string())
}

async fn list(State(d): State<Daemon>) -> ApiResult<Response> {
    Ok(Json(d.containers.net.list_networks(&names(&d))).into_response())
}

async fn inspect(State(d): State<Daemon>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(d.containers.net.inspect_network(&id, &names(&d))?).into_response())
}

async fn create(State(d): State<Daemon>, body: Bytes) -> ApiResult<Response> {
    let body: CreateBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    if !body.driver.is_empty() && body.driver != "bridge" {
        return Err(ApiError::not_found(format!("plugin \"{}\" not found", body.driver)));
    }
    let config = body.ipam.and_then(|i| i.config).unwrap_or_default();
    if config.len() > 1 {
        return Err(ApiError::not_implemented("Berth supports one IPAM config per network"));
    }
    let first = config.into_iter().next().unwrap_or_default();
    let subnet = (!first.subnet.is_empty()).then_some(first.subnet.as_str());
    let gateway = (!first.gateway.is_empty()).then_some(first.gateway.as_str());
    let net = d.containers.net.clone();
    let id = tokio::task::block_in_place(|| {
        net.create_network(&body.name, subnet, gateway, body.internal, body.labels.unwrap_or_default())
    })?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"Id": id, "Warning": ""}))).into_response())
}

async fn remove(State(d): State<Daemon>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    d.containers.net.remove_network(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(State(d): State<Daemon>) -> ApiResult<Response> {
    let deleted = d.containers.net.prune_networks();
    Ok(Json(serde_json::json!({"NetworksDeleted": if deleted.is_empty() { None } else { Some(deleted) }})).into_response())
}

async fn not_yet() -> ApiError {
    ApiError::not_implemented("network connect/disconnect is not supported by Berth yet")
}
