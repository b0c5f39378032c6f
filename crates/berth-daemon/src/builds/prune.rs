//! `POST /build/prune?all=&filters=&keep-storage=` as dockerd 20.10 answers it.
//!
//! This frees the build cache ([`super::gc`]: the cache mounts and the step cache's
//! images; all that are not in use or shared, those the filters pick, or the least
//! recently used ones over `keep-storage`) and what interrupted builds left in the
//! build directory. The
//! parameters are checked as moby checks them (`api/server/router/build` and
//! `builder/builder-next.toBuildkitPruneInfo`), errors with its words and statuses.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::state::Daemon;

/// The filters buildkit's prune knows (moby `cacheFields`), and `until` with its
/// deprecated synonym `unused-for`.
const FILTERS: &[&str] = &[
    "until",
    "unused-for",
    "id",
    "parent",
    "type",
    "description",
    "inuse",
    "shared",
    "private",
];

fn failed(e: ApiError) -> ApiError {
    ApiError::new(
        e.kind,
        format!("failed to prune build cache: {}", e.message),
    )
}

/// Go's `time.ParseDuration` error for `s` (None: `s` is a duration).
fn duration_error(s: &str) -> Option<String> {
    if berth_api::units::parse_go_duration(s).is_some() {
        return None;
    }
    let q = berth_api::units::go_quote(s);
    let mut rest = s.strip_prefix(['-', '+']).unwrap_or(s);
    if rest.is_empty() {
        return Some(format!("time: invalid duration {q}"));
    }
    while !rest.is_empty() {
        let num = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num == 0 || rest[..num] == *"." {
            return Some(format!("time: invalid duration {q}"));
        }
        rest = &rest[num..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        if unit == 0 {
            return Some(format!("time: missing unit in duration {q}"));
        }
        let u = &rest[..unit];
        if !["ns", "us", "µs", "μs", "ms", "s", "m", "h"].contains(&u) {
            return Some(format!(
                "time: unknown unit {} in duration {q}",
                berth_api::units::go_quote(u)
            ));
        }
        rest = &rest[unit..];
    }
    Some(format!("time: invalid duration {q}"))
}

/// The filters as moby's `filters.FromJSON` reads them: `{"k":{"v":true}}` or the older
/// `{"k":["v"]}`.
fn parse_filters(raw: &str) -> ApiResult<BTreeMap<String, Vec<String>>> {
    let mut out = BTreeMap::new();
    if raw.is_empty() {
        return Ok(out);
    }
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::internal(format!("could not parse filters: {e}")))?;
    let Value::Object(m) = v else {
        return Err(ApiError::internal(
            "could not parse filters: json: cannot unmarshal into map[string]map[string]bool",
        ));
    };
    for (k, v) in m {
        let values = match v {
            Value::Object(set) => set
                .into_iter()
                .filter(|(_, on)| on.as_bool() != Some(false))
                .map(|(s, _)| s)
                .collect(),
            Value::Array(list) => list
                .into_iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            _ => return Err(ApiError::internal(
                "could not parse filters: json: cannot unmarshal into map[string]map[string]bool",
            )),
        };
        out.insert(k, values);
    }
    Ok(out)
}

/// What a checked request asks for.
#[derive(Debug, Default)]
struct PruneRequest {
    all: bool,
    keep_storage: u64,
    /// Entries unused for at least this many nanoseconds (`until`/`unused-for`).
    unused_for: Option<i64>,
    id: Option<String>,
    kind: Option<String>,
}

/// Checks the request as dockerd does; Ok: nothing wrong with it.
fn check(raw: Option<&str>) -> ApiResult<PruneRequest> {
    let q: Vec<(String, String)> = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| {
        q.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let filters = parse_filters(get("filters"))?;
    let ks = get("keep-storage");
    if !ks.is_empty() && ks.parse::<i64>().is_err() {
        return Err(ApiError::internal(format!(
            "keep-storage is in bytes and expects an integer, got {ks}: strconv.Atoi: parsing {}: invalid syntax",
            berth_api::units::go_quote(ks)
        )));
    }
    if let Some(k) = filters.keys().find(|k| !FILTERS.contains(&k.as_str())) {
        return Err(failed(ApiError::invalid(format!("Invalid filter '{k}'"))));
    }
    let until = filters.get("until").filter(|v| !v.is_empty());
    let unused_for = filters.get("unused-for").filter(|v| !v.is_empty());
    if until.is_some() && unused_for.is_some() {
        return Err(failed(ApiError::invalid(
            "conflicting filters: \"until\" and \"unused-for\"",
        )));
    }
    let (key, values) = match (until, unused_for) {
        (Some(v), _) => ("until", v.clone()),
        (_, Some(v)) => ("unused-for", v.clone()),
        _ => ("until", Vec::new()),
    };
    match values.as_slice() {
        [] => {}
        [one] => {
            if let Some(e) = duration_error(one) {
                return Err(failed(ApiError::internal(format!(
                    "\"{key}\" filter expects a duration (e.g., '24h'): {e}"
                ))));
            }
        }
        _ => return Err(failed(ApiError::invalid("filters expect only one value"))),
    }
    for (k, v) in &filters {
        if k != "until" && k != "unused-for" && v.len() > 1 {
            return Err(failed(ApiError::invalid("filters expect only one value")));
        }
    }
    // Filters Berth's records cannot answer are refused, not ignored.
    for k in ["parent", "description", "inuse", "shared", "private"] {
        if filters.get(k).is_some_and(|v| !v.is_empty()) {
            return Err(failed(ApiError::invalid(format!(
                "Berth does not support the build cache filter '{k}'"
            ))));
        }
    }
    let one = |k: &str| filters.get(k).and_then(|v| v.first()).cloned();
    let all = get("all");
    Ok(PruneRequest {
        all: all == "1" || all.eq_ignore_ascii_case("true"),
        keep_storage: ks.parse::<i64>().unwrap_or(0).max(0) as u64,
        unused_for: values.first().and_then(|v| {
            berth_api::units::parse_go_duration(v).map(|ns| ns.clamp(0, i64::MAX as i128) as i64)
        }),
        id: one("id"),
        kind: one("type"),
    })
}

/// The records `req` lets go: not in use, matching its filters; with `keep-storage`,
/// only the least recently used ones over it.
fn pick(records: &[super::gc::CacheRecord], req: &PruneRequest, now: i64) -> Vec<usize> {
    let matches = |r: &super::gc::CacheRecord| {
        !r.in_use
            && !r.shared
            && req
                .unused_for
                .is_none_or(|s| r.last_used <= now.saturating_sub(s))
            && req
                .id
                .as_ref()
                .is_none_or(|id| r.id.starts_with(id.as_str()))
            && req.kind.as_ref().is_none_or(|k| r.kind == k)
    };
    if req.keep_storage > 0 {
        // The budget counts everything; only matching entries may go.
        let view: Vec<super::gc::CacheRecord> = records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.in_use = !matches(&r);
                r
            })
            .collect();
        return super::gc::plan(&view, req.keep_storage);
    }
    (0..records.len())
        .filter(|&i| matches(&records[i]))
        .collect()
}

pub(super) async fn prune(State(d): State<Daemon>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let req = check(raw.as_deref())?;
    // Every entry not shared is unused by images: `all` changes nothing more.
    let _ = req.all;
    let (deleted, reclaimed) = tokio::task::spawn_blocking(move || {
        let mut reclaimed = d.builds.prune_leftovers();
        let mut deleted = Vec::new();
        // While a build runs, its cache is in use: nothing of it goes.
        if let Ok(_guard) = d.builds.gc.lock.clone().try_write_owned() {
            let steps = super::step_cache::DaemonSteps(&d);
            let records = d.builds.gc.records(false, &steps);
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
            let picked = pick(&records, &req, now);
            let (ids, freed) = d.builds.gc.remove_all(&records, &picked, &steps);
            deleted = ids;
            reclaimed += freed;
        }
        (deleted, reclaimed)
    })
    .await
    .map_err(|e| ApiError::internal(format!("build prune task failed: {e}")))?;
    let deleted = if deleted.is_empty() {
        Value::Null
    } else {
        json!(deleted)
    };
    Ok(
        axum::Json(json!({ "CachesDeleted": deleted, "SpaceReclaimed": reclaimed }))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> (u16, String) {
        let e = check(Some(q)).unwrap_err();
        (e.kind.http_status(), e.message)
    }

    fn filters(json: &str) -> String {
        format!(
            "filters={}",
            url::form_urlencoded::byte_serialize(json.as_bytes()).collect::<String>()
        )
    }

    #[test]
    fn dockerds_checks_and_words() {
        assert!(check(None).is_ok());
        let r = check(Some("all=1&keep-storage=100")).unwrap();
        assert!(r.all);
        assert_eq!(r.keep_storage, 100);
        assert!(check(Some(&filters(r#"{"until":{"24h":true}}"#))).is_ok());
        assert!(check(Some(&filters(r#"{"unused-for":["1h30m"]}"#))).is_ok());
        assert!(check(Some("all=1&keep-storage=100")).is_ok());
        assert_eq!(
            err(&filters(r#"{"bogus":["x"]}"#)),
            (
                400,
                "failed to prune build cache: Invalid filter 'bogus'".into()
            )
        );
        assert_eq!(
            err(&filters(r#"{"until":["garbage"]}"#)),
            (500, "failed to prune build cache: \"until\" filter expects a duration (e.g., '24h'): time: invalid duration \"garbage\"".into())
        );
        assert_eq!(
            err(&filters(r#"{"until":["2024-01-01"]}"#)),
            (500, "failed to prune build cache: \"until\" filter expects a duration (e.g., '24h'): time: unknown unit \"-\" in duration \"2024-01-01\"".into())
        );
        assert_eq!(
            err(&filters(r#"{"until":["1h"],"unused-for":["2h"]}"#)),
            (
                400,
                "failed to prune build cache: conflicting filters: \"until\" and \"unused-for\""
                    .into()
            )
        );
        assert_eq!(
            err(&filters(r#"{"until":["1h","2h"]}"#)),
            (
                400,
                "failed to prune build cache: filters expect only one value".into()
            )
        );
        assert_eq!(
            err(&filters(r#"{"id":["a","b"]}"#)),
            (
                400,
                "failed to prune build cache: filters expect only one value".into()
            )
        );
        assert_eq!(
            err("keep-storage=abc"),
            (500, "keep-storage is in bytes and expects an integer, got abc: strconv.Atoi: parsing \"abc\": invalid syntax".into())
        );
        let (code, msg) = err("filters=notjson");
        assert_eq!(code, 500);
        assert!(msg.starts_with("could not parse filters: "), "{msg}");
    }

    #[test]
    fn go_duration_errors() {
        assert_eq!(duration_error("24h"), None);
        assert_eq!(
            duration_error("1"),
            Some("time: missing unit in duration \"1\"".into())
        );
        assert_eq!(
            duration_error(""),
            Some("time: invalid duration \"\"".into())
        );
        assert_eq!(
            duration_error("5x"),
            Some("time: unknown unit \"x\" in duration \"5x\"".into())
        );
    }
}
