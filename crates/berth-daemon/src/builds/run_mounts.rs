//! What `RUN --mount` and `RUN --network` add to a build step's container: binds (the
//! context or a stage read-only; `rw` binds a throw-away copy), cache directories
//! ([`super::cache_mounts`]), tmpfs, secrets ([`super::secrets`]) and here-document
//! scripts, all in the container's own mount namespace (nothing is mounted on the
//! host, so nothing is left mounted whatever happens).
//!
//! Mount points the image did not have are "stubs" the runtime creates in the step's
//! upper layer; like BuildKit's stub cleaner, they are removed before the commit when
//! still empty, so a mount never leaves a trace in the image.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_api::HostConfig;
use berth_build::run_step::{ExtraMount, RunExtras};
use berth_build::BuildError;
use berth_runtime::userns::UserNamespace;

use super::cache_mounts::{copy_tree, CacheInit, CacheLease};
use crate::state::Daemon;

/// What a step's container holds until it ends.
#[derive(Default)]
pub struct Applied {
    pub leases: Vec<CacheLease>,
    /// Mount points (relative to `/`) the image did not have, deepest last.
    pub stubs: Vec<String>,
    /// `KEY=value` for the step's process only (secrets as environment variables):
    /// never in the container's config.
    pub env: Vec<String>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> BuildError {
    BuildError::failed(format!("{what}: {e}"))
}

/// The target and its parents (relative, `a`, `a/b`, …) that no layer has.
fn missing_paths(lowers: &[PathBuf], target: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for comp in target.split('/').filter(|c| !c.is_empty()) {
        if !cur.is_empty() {
            cur.push('/');
        }
        cur.push_str(comp);
        let present = lowers
            .iter()
            .any(|l| std::fs::symlink_metadata(l.join(&cur)).is_ok());
        if !present {
            out.push(cur.clone());
        }
    }
    out
}

/// Removes the stubs left empty in a step's upper directory (deepest first).
pub fn remove_stubs(upper: &Path, stubs: &[String]) {
    let mut stubs: Vec<&String> = stubs.iter().collect();
    stubs.sort_by_key(|s| std::cmp::Reverse(s.matches('/').count()));
    stubs.dedup();
    for s in stubs {
        let p = upper.join(s);
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.is_dir() {
            let _ = std::fs::remove_dir(&p);
        } else if md.is_file() && md.len() == 0 {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// A file of the build's directory holding generated content.
fn write_file(path: &Path, data: &[u8], mode: u32, owner: (u32, u32)) -> Result<(), BuildError> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| failed("preparing a RUN mount", e))?;
    }
    std::fs::write(path, data).map_err(|e| failed("preparing a RUN mount", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| failed("preparing a RUN mount", e))?;
    std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1))
        .map_err(|e| failed("preparing a RUN mount", e))?;
    Ok(())
}

/// The host ids of container ids `(uid, gid)` for a step in `ns` (a remapped daemon's
/// user namespace; None: the host's).
fn host_ids(ns: Option<&UserNamespace>, uid: u32, gid: u32) -> Result<(u32, u32), BuildError> {
    let Some(ns) = ns else {
        return Ok((uid, gid));
    };
    match (ns.host_uid(uid), ns.host_gid(gid)) {
        (Some(u), Some(g)) => Ok((u, g)),
        _ => Err(BuildError::failed(format!(
            "uid {uid} or gid {gid} has no host id in the remapped user namespace"
        ))),
    }
}

/// Adds `extras` to a step's host config; what the process alone gets (secret
/// environment variables) comes back in [`Applied::env`].
pub async fn apply(
    d: &Daemon,
    dir: &Path,
    secrets: &BTreeMap<String, Vec<u8>>,
    extras: RunExtras,
    parent: &str,
    hc: &mut HostConfig,
) -> Result<Applied, BuildError> {
    // A missing secret fails the step before anything is made for it.
    for m in &extras.mounts {
        if let ExtraMount::Secret {
            id, required: true, ..
        } = &m.mount
        {
            if !secrets.contains_key(id) {
                return Err(BuildError::failed(format!("secret {id}: not found")));
            }
        }
    }
    let mut applied = Applied::default();
    let lowers = {
        let images = d.images.clone();
        let p = parent.to_string();
        tokio::task::spawn_blocking(move || images.layer_dirs(&p))
            .await
            .map_err(|e| failed("build task", e))?
            .map_err(|e| BuildError::failed(e.to_string()))?
    };
    // The step's container is remapped (`--userns-remap`): what it gets is owned by
    // the host ids of the container ids asked for.
    let ns = d
        .config
        .userns_remap
        .as_ref()
        .filter(|_| hc.userns_mode != "host")
        .map(|r| r.ns.clone());
    let n = rand::random::<u32>();
    for (i, m) in extras.mounts.into_iter().enumerate() {
        let own = dir.join(format!("mount-{n:08x}-{i}"));
        let target = m.target.clone();
        match m.mount {
            ExtraMount::Bind { host, rw: false } => {
                hc.binds.push(format!("{}:{target}:ro", host.display()));
            }
            ExtraMount::Bind { host, rw: true } => {
                // Writes go to a copy the build throws away.
                std::fs::create_dir_all(&own).map_err(|e| failed("preparing a RUN mount", e))?;
                let src = host.clone();
                let dst = own.clone();
                tokio::task::spawn_blocking(move || copy_tree(&src, &dst))
                    .await
                    .map_err(|e| failed("build task", e))??;
                let bound = if host.is_dir() {
                    own
                } else {
                    own.join(host.file_name().unwrap_or_default())
                };
                hc.binds.push(format!("{}:{target}", bound.display()));
            }
            ExtraMount::Cache {
                id,
                sharing,
                read_only,
                mode,
                uid,
                gid,
                seed,
            } => {
                let (uid, gid) = host_ids(ns.as_ref(), uid, gid)?;
                let init = CacheInit {
                    mode,
                    uid,
                    gid,
                    seed,
                    userns: ns.clone(),
                };
                let lease = d
                    .builds
                    .cache_mounts
                    .acquire(&id, sharing, init, own)
                    .await?;
                let ro = if read_only { ":ro" } else { "" };
                hc.binds
                    .push(format!("{}:{target}{ro}", lease.dir.display()));
                applied.leases.push(lease);
            }
            ExtraMount::Tmpfs { size } => {
                let opts = if size > 0 {
                    format!("size={size}")
                } else {
                    String::new()
                };
                hc.tmpfs.insert(target.clone(), opts);
            }
            ExtraMount::Secret {
                id,
                required,
                env,
                mode,
                uid,
                gid,
            } => {
                let Some(value) = secrets.get(&id) else {
                    let _ = required; // checked above
                    continue;
                };
                if let Some(var) = env {
                    // For the process only: never in the container's config.
                    applied
                        .env
                        .push(format!("{var}={}", String::from_utf8_lossy(value)));
                }
                if !target.is_empty() {
                    let file = own.join("secret");
                    write_file(&file, value, mode, host_ids(ns.as_ref(), uid, gid)?)?;
                    hc.binds.push(format!("{}:{target}:ro", file.display()));
                }
            }
            ExtraMount::Files { files } => {
                for (name, data, mode) in files {
                    write_file(&own.join(&name), &data, mode, host_ids(ns.as_ref(), 0, 0)?)?;
                }
                hc.binds.push(format!("{}:{target}:ro", own.display()));
            }
        }
        if !target.is_empty() {
            applied.stubs.extend(missing_paths(&lowers, &target));
        }
    }
    match extras.network.as_deref() {
        Some("none") => hc.network_mode = "none".into(),
        Some("host") => hc.network_mode = "host".into(),
        _ => {}
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_the_image_lacked_are_removed_when_empty() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        std::fs::create_dir_all(lower.join("run")).unwrap();
        let miss = missing_paths(&[lower], "/run/secrets/tok");
        assert_eq!(miss, vec!["run/secrets", "run/secrets/tok"]);
        let upper = t.path().join("upper");
        std::fs::create_dir_all(upper.join("run/secrets")).unwrap();
        std::fs::write(upper.join("run/secrets/tok"), "").unwrap();
        std::fs::create_dir_all(upper.join("cache/sub")).unwrap();
        std::fs::write(upper.join("cache/kept"), "x").unwrap();
        remove_stubs(
            &upper,
            &[
                "run/secrets".into(),
                "run/secrets/tok".into(),
                "cache".into(),
                "cache/sub".into(),
            ],
        );
        assert!(!upper.join("run/secrets").exists());
        assert!(upper.join("run").exists(), "not a stub");
        assert!(!upper.join("cache/sub").exists());
        assert!(
            upper.join("cache/kept").exists(),
            "written by the step: kept"
        );
    }
}
