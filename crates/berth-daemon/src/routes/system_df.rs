//! Handlers of `GET /system/df` (Docker's disk usage) and `GET /system/check` (Berth's own: the image
//! store's consistency check, used by `berth system check`).
//!
//! The df answer has Docker's shape: `LayersSize` (every stored layer once, however many
//! images share it), `Images` (all of them, with `SharedSize` and `Containers`),
//! `Containers` (with `SizeRw`: the writable layer's bytes), `Volumes` and `BuildCache`.
//! The `type` query parameter (API 1.42: `container`, `image`, `volume`, `build-cache`,
//! repeatable) limits the answer to those parts; the others are null.

use crate::fsutil::dir_size;
use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::extract::Query;
use crate::error::{ApiError, ApiResult};
use crate::state::Daemon;

const TYPES: &[&str] = &["container", "image", "volume", "build-cache"];

/// The `type=` values asked for; all of them when none is given.
fn wanted_types(q: &Query) -> ApiResult<Vec<String>> {
    let mut out = q.all("type");
    if let Some(bad) = out.iter().find(|v| !TYPES.contains(&v.as_str())) {
        return Err(ApiError::invalid(format!("invalid type: {bad}")));
    }
    if out.is_empty() {
        out = TYPES.iter().map(|s| s.to_string()).collect();
    }
    Ok(out)
}

/// Local volumes for `system df`: one `Volume` object per volume with
/// `UsageData: {Size, RefCount}`.
fn volumes_usage(d: &Daemon) -> Vec<berth_api::Volume> {
    d.containers.volumes_disk_usage()
}

/// Build cache records for `system df` ([`crate::builds::gc`]): the cache mounts and
/// the step cache, in use while a build runs.
fn build_cache_usage(d: &Daemon) -> Vec<Value> {
    let busy = d.builds.gc.lock.try_write().is_err();
    d.builds
        .gc
        .records(busy, &crate::builds::step_cache::DaemonSteps(d))
        .iter()
        .map(|r| r.to_api())
        .collect()
}

fn compute(d: &Daemon, types: &[String]) -> ApiResult<Value> {
    let want = |t: &str| types.iter().any(|x| x == t);
    let opts = crate::containers::ListOptions {
        all: true,
        limit: 0,
        size: false,
        filters: Default::default(),
    };
    let mut containers = if want("container") || want("image") {
        d.containers.list(&opts)?
    } else {
        Vec::new()
    };
    let mut out = json!({"LayersSize": null, "Images": null, "Containers": null, "Volumes": null, "BuildCache": null});
    if want("image") {
        let bare = |s: &str| s.strip_prefix("sha256:").unwrap_or(s).to_string();
        let mut users: HashMap<String, i64> = HashMap::new();
        for c in &containers {
            *users.entry(bare(&c.image_id)).or_default() += 1;
        }
        let mut usage = d.images.disk_usage()?;
        for img in &mut usage.images {
            img.containers = users.get(&bare(&img.id)).copied().unwrap_or(0);
        }
        out["LayersSize"] = json!(usage.layers_size);
        out["Images"] = serde_json::to_value(&usage.images)?;
    }
    if want("container") {
        for c in &mut containers {
            c.size_rw = Some(dir_size(&d.containers.container_dir(&c.id).join("upper")));
            c.size_root_fs = Some(0);
        }
        out["Containers"] = serde_json::to_value(&containers)?;
    }
    if want("volume") {
        out["Volumes"] = serde_json::to_value(volumes_usage(d))?;
    }
    if want("build-cache") {
        let cache = build_cache_usage(d);
        // dockerd 20.10's BuilderSize: every record's size (the CLI's `Build cache usage`).
        let total: i64 = cache.iter().filter_map(|r| r["Size"].as_i64()).sum();
        out["BuilderSize"] = json!(total);
        out["BuildCache"] = Value::Array(cache);
    }
    Ok(out)
}

/// `GET /system/df?type=…`.
pub(super) async fn disk_usage(State(d): State<Daemon>, q: Query) -> ApiResult<Json<Value>> {
    let types = wanted_types(&q)?;
    let v = tokio::task::spawn_blocking(move || compute(&d, &types))
        .await
        .map_err(|e| ApiError::internal(format!("disk usage task failed: {e}")))??;
    Ok(Json(v))
}

/// `GET /system/check` → `{"Problems": ["…", …]}` (empty when the store is consistent).
pub(super) async fn check(State(d): State<Daemon>) -> ApiResult<Json<Value>> {
    let problems = tokio::task::spawn_blocking(move || d.images.check())
        .await
        .map_err(|e| ApiError::internal(format!("check task failed: {e}")))??;
    Ok(Json(json!({ "Problems": problems })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_default_to_all_and_refuse_unknown() {
        assert_eq!(wanted_types(&Query::parse(None)).unwrap().len(), 4);
        assert_eq!(
            wanted_types(&Query::parse(Some("type=image&type=volume"))).unwrap(),
            vec!["image", "volume"]
        );
        assert!(wanted_types(&Query::parse(Some("type=bogus"))).is_err());
    }

    #[test]
    fn dir_size_counts_files_below() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("g"), [0u8; 20]).unwrap();
        assert_eq!(dir_size(dir.path()), 120);
    }
}
