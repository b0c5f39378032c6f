//! Network routes (moby `api/server/router/network`): list, inspect, create, remove,
//! prune, connect and disconnect (user networks, `--alias` for the embedded DNS).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use berth_api::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkPruneResponse, NetworkResource,
};
use http::StatusCode;

use super::extract::{JsonBody, Query};
use crate::error::{ApiError, ApiResult};
use crate::network::NetworkSpec;
use crate::state::Daemon;

pub fn routes() -> Router<Daemon> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect))
        .route("/networks/{id}", delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

fn names(d: &Daemon) -> impl Fn(&str) -> Option<String> + '_ {
    |id: &str| {
        d.containers
            .get(id)
            .ok()
            .map(|r| r.name.trim_start_matches('/').to_string())
    }
}

/// Whether network `n` passes `GET /networks` filters: `name` (substring), `id` (prefix),
/// `driver`, `label` (`k` or `k=v`), `type` (`builtin`/`custom`); values of one key OR-ed.
fn network_matches(n: &NetworkResource, f: &crate::containers::filters::Filters) -> bool {
    let any = |key: &str, pred: &dyn Fn(&str) -> bool| {
        f.get(key).is_none_or(|vals| vals.iter().any(|v| pred(v)))
    };
    // user networks cannot take the predefined names
    let builtin = ["bridge", "host", "none"].contains(&n.name.as_str());
    any("name", &|v| n.name.contains(v))
        && any("id", &|v| n.id.starts_with(v))
        && any("driver", &|v| n.driver == v)
        && any("type", &|v| (v == "builtin") == builtin)
        && any("label", &|v| match v.split_once('=') {
            Some((k, val)) => n.labels.get(k).map(String::as_str) == Some(val),
            None => n.labels.contains_key(v),
        })
}

async fn list(State(d): State<Daemon>, q: Query) -> ApiResult<Response> {
    let f = q.filters()?;
    for k in f.keys() {
        if !matches!(
            k.as_str(),
            "name" | "id" | "driver" | "label" | "type" | "scope" | "dangling"
        ) {
            return Err(ApiError::invalid(format!("invalid filter '{k}'")));
        }
    }
    let all = d.networks.list_networks(&names(&d));
    Ok(Json(
        all.into_iter()
            .filter(|n| network_matches(n, &f))
            .collect::<Vec<_>>(),
    )
    .into_response())
}

async fn inspect(State(d): State<Daemon>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(d.networks.inspect_network(&id, &names(&d))?).into_response())
}

async fn create(
    State(d): State<Daemon>,
    JsonBody(body): JsonBody<NetworkCreateRequest>,
) -> ApiResult<Response> {
    if !body.driver.is_empty() && body.driver != "bridge" {
        return Err(ApiError::not_found(format!(
            "plugin \"{}\" not found",
            body.driver
        )));
    }
    let ipam = body.ipam.unwrap_or_default();
    if !ipam.driver.is_empty() && ipam.driver != "default" {
        return Err(ApiError::not_found(format!(
            "plugin \"{}\" not found",
            ipam.driver
        )));
    }
    // one IPv4 and one IPv6 pool at most, as Docker's bridge driver
    let (v6, v4): (Vec<_>, Vec<_>) = ipam
        .config
        .into_iter()
        .partition(|c| c.subnet.contains(':'));
    if v4.len() > 1 || v6.len() > 1 {
        return Err(ApiError::invalid(
            "bridge driver doesn't support multiple subnets",
        ));
    }
    let first = v4.into_iter().next().unwrap_or_default();
    let six = v6.into_iter().next();
    let given = |s: String| (!s.is_empty()).then_some(s);
    let spec = NetworkSpec {
        name: body.name,
        subnet: given(first.subnet),
        gateway: given(first.gateway),
        ip_range: given(first.ip_range),
        aux_addresses: first.auxiliary_addresses,
        internal: body.internal,
        attachable: body.attachable,
        labels: body.labels,
        options: body.options,
        ipam_options: ipam.options,
        enable_ipv6: body.enable_ipv6,
        subnet6: six.as_ref().and_then(|c| given(c.subnet.clone())),
        gateway6: six.as_ref().and_then(|c| given(c.gateway.clone())),
        ip_range6: six.as_ref().and_then(|c| given(c.ip_range.clone())),
        check_duplicate: body.check_duplicate.unwrap_or(false),
    };
    let net = d.networks.clone();
    let (id, warning) = tokio::task::block_in_place(|| net.create_network(spec))?;
    let created = NetworkCreateResponse { id, warning };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn remove(State(d): State<Daemon>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    d.networks.remove_network(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(State(d): State<Daemon>, q: Query) -> ApiResult<Response> {
    let filter = crate::prune_filter::PruneFilter::parse(&q.filters()?)?;
    let deleted = d.networks.prune_networks(&filter);
    let pruned = NetworkPruneResponse {
        networks_deleted: (!deleted.is_empty()).then_some(deleted),
    };
    Ok(Json(pruned).into_response())
}

async fn connect(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NetworkConnectRequest>,
) -> ApiResult<StatusCode> {
    let rec = d.containers.get(&body.container)?;
    let settings = body.endpoint_config.unwrap_or_default();
    let net = d.networks.clone();
    tokio::task::block_in_place(|| net.connect(&rec, &id, &settings))?;
    Ok(StatusCode::OK)
}

async fn disconnect(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NetworkDisconnectRequest>,
) -> ApiResult<StatusCode> {
    let rec = d.containers.get(&body.container)?;
    let net = d.networks.clone();
    tokio::task::block_in_place(|| net.disconnect(&rec, &id))?;
    Ok(StatusCode::OK)
}
