//! Dockerfile builds (`POST /build`): the daemon's side of `berth-build`.
//!
//! - [`routes`]: `POST /build` (context in, Docker's JSON stream out) and `POST
//!   /build/prune` (in [`prune`]);
//! - [`context`]: the context tar received into the build's directory;
//! - [`backend`]: the [`berth_build::builder::Backend`] on top of the container service
//!   (RUN steps) and the image store (commits, the cache);
//! - [`workspace`]: where COPY, ADD and WORKDIR write without a container;
//! - [`run_mounts`]: what `RUN --mount`/`--network` add to a step's container, with
//!   [`cache_mounts`] (the cache directories kept across builds) and [`secrets`] (the
//!   build secrets a client sends);
//! - [`gc`]: the build cache's budget and collector, over the cache mounts and the
//!   step cache ([`step_cache`]).
//!
//! Each build works in its own directory under `<root>/builds/tmp/`, removed when the
//! build ends however it ends; what a killed daemon left there goes at the next start.

pub mod backend;
pub mod cache_mounts;
pub mod context;
pub mod gc;
mod prune;
pub mod routes;
pub mod run_mounts;
pub mod secrets;
pub mod step_cache;
pub mod workspace;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{ApiError, ApiResult};

pub struct BuildService {
    /// The build cache's budget and collector.
    pub gc: gc::GcState,
    /// `RUN --mount=type=cache` directories, kept across builds.
    pub cache_mounts: std::sync::Arc<cache_mounts::CacheMounts>,
    tmp: PathBuf,
    active: Mutex<HashSet<PathBuf>>,
}

fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

impl BuildService {
    /// Opens `<root>/builds`, removing what interrupted builds left.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        let tmp = root.join("builds").join("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        let cache_mounts = std::sync::Arc::new(cache_mounts::CacheMounts::open(
            root.join("builds").join("cache-mounts"),
        )?);
        Ok(BuildService {
            gc: gc::GcState::new(root),
            cache_mounts,
            tmp,
            active: Mutex::new(HashSet::new()),
        })
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new private directory for one build.
    pub fn new_build_dir(&self) -> ApiResult<PathBuf> {
        let dir = self.tmp.join(hex::encode(rand::random::<[u8; 8]>()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("creating the build directory: {e}")))?;
        self.active().insert(dir.clone());
        Ok(dir)
    }

    /// Removes a finished build's directory.
    pub fn finish_build(&self, dir: &Path) {
        let _ = std::fs::remove_dir_all(dir);
        self.active().remove(dir);
    }

    /// Removes build directories no running build owns; returns the bytes freed.
    pub fn prune_leftovers(&self) -> u64 {
        let active = self.active().clone();
        let mut freed = 0;
        if let Ok(rd) = std::fs::read_dir(&self.tmp) {
            for e in rd.flatten() {
                let p = e.path();
                if !active.contains(&p) {
                    freed += dir_size(&p);
                    let _ = std::fs::remove_dir_all(&p);
                }
            }
        }
        freed
    }
}
