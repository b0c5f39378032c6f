//! `GET /images/search?term=&limit=&filters=`: the registry's v1 search API through
//! [`berth_registry::RegistryClient::search`], with dockerd's filters (`stars`,
//! `is-official`, `is-automated`) and limit (default 25, at most 100).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use berth_registry::SearchResult;

use super::extract::Query;
use crate::error::{ApiError, ApiResult};
use crate::state::Daemon;

pub fn routes() -> Router<Daemon> {
    Router::new().route("/images/search", get(search_images))
}

fn bool_filter(values: &[String], key: &str) -> ApiResult<Option<bool>> {
    match values.last().map(String::as_str) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(v) => Err(ApiError::invalid(format!("invalid filter '{key}={v}'"))),
    }
}

async fn search_images(
    State(d): State<Daemon>,
    q: Query,
    headers: http::HeaderMap,
) -> ApiResult<Json<Vec<SearchResult>>> {
    let term = q.str("term");
    let limit = q.int("limit")?.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit {limit} is outside the range of [1, 100]"
        )));
    }
    let filters = q.filters()?;
    let mut min_stars = 0i64;
    let mut official = None;
    let mut automated = None;
    for (k, v) in &filters {
        match k.as_str() {
            "stars" => {
                for s in v {
                    min_stars = s
                        .parse()
                        .map_err(|_| ApiError::invalid(format!("invalid filter 'stars={s}'")))?;
                }
            }
            "is-official" => official = bool_filter(v, k)?,
            "is-automated" => automated = bool_filter(v, k)?,
            other => return Err(ApiError::invalid(format!("invalid filter '{other}'"))),
        }
    }
    let auth = super::images::registry_auth(&headers)?;
    let results = d
        .registry
        .search(&term, limit as u32, auth.as_ref())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(
        results
            .into_iter()
            .filter(|r| r.star_count >= min_stars)
            .filter(|r| official.is_none_or(|o| r.is_official == o))
            .filter(|r| automated.is_none_or(|a| r.is_automated == a))
            .take(limit as usize)
            .collect(),
    ))
}
