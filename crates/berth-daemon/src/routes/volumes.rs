//! Volume routes (moby `api/server/router/volume`): `method, path → handler`; handlers
//! call [`crate::volumes::VolumeService`] and ask the containers who uses a volume.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_api::{Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse};
use http::StatusCode;

use super::extract::{OptionalJsonBody, Query};
use crate::error::{ApiError, ApiResult};
use crate::state::Daemon;
use crate::version::ApiVersion;
use crate::volumes::{matches_label, CreateOptions, VolumeRecord};

pub fn routes() -> Router<Daemon> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

type Q = Query;

async fn create(
    State(d): State<Daemon>,
    OptionalJsonBody(body): OptionalJsonBody<VolumeCreateRequest>,
) -> ApiResult<Response> {
    let body = body.unwrap_or_default();
    let rec = d.volumes.create(CreateOptions {
        name: body.name,
        driver: body.driver,
        labels: body.labels,
        options: body.driver_opts,
        anonymous: false,
    })?;
    Ok((StatusCode::CREATED, Json(rec.to_api(d.volumes.dir(), None))).into_response())
}

fn dangling(d: &Daemon, rec: &VolumeRecord) -> bool {
    d.containers.containers_using_volume(&rec.name).is_empty()
}

fn parse_bool_filter(key: &str, v: &str) -> ApiResult<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::invalid(format!("invalid filter '{key}={v}'"))),
    }
}

async fn list(State(d): State<Daemon>, q: Q) -> ApiResult<Json<VolumeListResponse>> {
    let f = q.filters()?;
    for k in f.keys() {
        if !matches!(
            k.as_str(),
            "dangling" | "name" | "label" | "label!" | "driver"
        ) {
            return Err(ApiError::invalid(format!("invalid filter '{k}'")));
        }
    }
    let dangling_want = match f.get("dangling").and_then(|v| v.first()) {
        Some(v) => Some(parse_bool_filter("dangling", v)?),
        None => None,
    };
    let volumes: Vec<Volume> = d
        .volumes
        .list()
        .into_iter()
        .filter(|r| dangling_want.is_none_or(|want| dangling(&d, r) == want))
        .filter(|r| {
            f.get("name")
                .is_none_or(|ns| ns.iter().any(|n| r.name.contains(n.as_str())))
        })
        .filter(|r| f.get("driver").is_none_or(|ds| ds.contains(&r.driver)))
        .filter(|r| {
            f.get("label")
                .is_none_or(|ls| ls.iter().all(|l| matches_label(r, l)))
        })
        .filter(|r| {
            f.get("label!")
                .is_none_or(|ls| !ls.iter().any(|l| matches_label(r, l)))
        })
        .map(|r| r.to_api(d.volumes.dir(), None))
        .collect();
    Ok(Json(VolumeListResponse {
        volumes,
        warnings: None,
    }))
}

async fn inspect(State(d): State<Daemon>, Path(name): Path<String>) -> ApiResult<Json<Volume>> {
    let rec = d.volumes.get(&name)?;
    Ok(Json(rec.to_api(d.volumes.dir(), None)))
}

async fn remove(State(d): State<Daemon>, Path(name): Path<String>, q: Q) -> ApiResult<StatusCode> {
    let force = q.bool("force");
    match d.volumes.get(&name) {
        Ok(_) => {}
        Err(_) if force => return Ok(StatusCode::NO_CONTENT),
        Err(e) => return Err(e),
    }
    let users = d.containers.containers_using_volume(&name);
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "remove {name}: volume is in use - [{}]",
            users.join(", ")
        )));
    }
    d.volumes.remove(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(
    State(d): State<Daemon>,
    version: ApiVersion,
    q: Q,
) -> ApiResult<Json<VolumePruneResponse>> {
    let f = q.filters()?;
    for k in f.keys() {
        if !matches!(k.as_str(), "label" | "label!" | "all") {
            return Err(ApiError::invalid(format!("invalid filter '{k}'")));
        }
    }
    let all = match f.get("all").and_then(|v| v.first()) {
        Some(v) => parse_bool_filter("all", v)?,
        None => !version.at_least("1.42"),
    };
    let mut deleted = Vec::new();
    let mut reclaimed: u64 = 0;
    for r in d.volumes.list() {
        if !all && !r.anonymous {
            continue;
        }
        let labels_match = f
            .get("label")
            .is_none_or(|ls| ls.iter().all(|l| matches_label(&r, l)))
            && f.get("label!")
                .is_none_or(|ls| !ls.iter().any(|l| matches_label(&r, l)));
        if !labels_match {
            continue;
        }
        if !dangling(&d, &r) {
            continue;
        }
        let size = d.volumes.size(&r.name);
        if d.volumes.remove(&r.name).is_ok() {
            reclaimed += u64::try_from(size).unwrap_or(0);
            deleted.push(r.name);
        }
    }
    Ok(Json(VolumePruneResponse {
        volumes_deleted: (!deleted.is_empty()).then_some(deleted),
        space_reclaimed: reclaimed,
    }))
}
