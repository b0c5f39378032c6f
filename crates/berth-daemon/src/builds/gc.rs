//! The build cache's size budget and its garbage collection.
//!
//! What it looks after, as one cache under one budget:
//! - the `RUN --mount=type=cache` directories kept across builds
//!   (`<root>/builds/cache-mounts/<hash>/`, with `data/` and the `meta.json` their store
//!   writes at each use: `{"ID": …, "LastUsed": <unix seconds>}`), listed as BuildKit's
//!   `exec.cachemount` records. Berth adds `gc.json` beside them (created time, builds
//!   that used it);
//! - the classic builder's step cache: the images build steps committed, with their
//!   last use (commit or cache hit) in the image store
//!   ([`berth_image::StepCacheEntry`], through a [`StepCache`]), listed as `regular`
//!   records. A tagged image and what it (or any image not made by a build step) was
//!   built on is `Shared`: listed, never collected and not counted against the budget,
//!   as BuildKit counts shared records; one a container uses is `InUse`.
//!
//! The budget is `--builder-gc-keep-storage` or daemon.json's `builder.gc
//! .defaultKeepStorage` (Docker's key), by default 10% of the root's filesystem or
//! 20 GB, whichever is smaller. When over it, the least recently used entries go, in
//! idle time only: after a build ends and every minute, when no build runs. A build
//! holds the collector's lock for reading from its start to its end, so an entry is
//! never removed while a build may use it; `POST /build/prune` does the same, and
//! counts every entry as in use while a build runs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// Docker's default cap (20 GB, BuildKit's `defaultKeepStorage` unit: 1e9 bytes).
pub const MAX_DEFAULT_KEEP: u64 = 20_000_000_000;

/// One record of `system df -v`'s `BuildCache` and of the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    pub id: String,
    pub kind: &'static str,
    pub description: String,
    pub in_use: bool,
    /// Kept by images (a tagged image was built on it): never collected, not counted.
    pub shared: bool,
    /// The record this one was built on (a step's parent step), or empty.
    pub parent: String,
    /// Records below it (a step is deeper than its parent): of two used at the same
    /// time the deeper goes first, so a parent never goes before its child.
    pub depth: u32,
    pub size: u64,
    /// Unix nanoseconds.
    pub created: i64,
    pub last_used: i64,
    pub usage_count: u64,
    /// A cache mount's directory (empty for a step).
    pub dir: PathBuf,
}

/// The kind of a step-cache record (BuildKit's name for a layer snapshot).
pub const STEP: &str = "regular";
/// The kind of a cache-mount record.
pub const MOUNT: &str = "exec.cachemount";

/// Where the step-cache records come from and go (the image store, through the
/// daemon: [`super::step_cache::DaemonSteps`]).
pub trait StepCache {
    /// The step records; `busy`: a build runs (all are in use).
    fn records(&self, busy: bool) -> Vec<CacheRecord>;
    /// Removes one if it may still go; the bytes freed, None if it stays.
    fn remove(&self, r: &CacheRecord) -> Option<u64>;
}

/// No step cache (the collector's tests).
pub struct NoSteps;

impl StepCache for NoSteps {
    fn records(&self, _busy: bool) -> Vec<CacheRecord> {
        Vec::new()
    }
    fn remove(&self, _r: &CacheRecord) -> Option<u64> {
        None
    }
}

impl CacheRecord {
    /// The Engine API's `BuildCache` object.
    pub fn to_api(&self) -> Value {
        let t = |ns: i64| {
            chrono::DateTime::from_timestamp_nanos(ns)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        };
        let parents = if self.parent.is_empty() {
            Value::Null
        } else {
            json!([self.parent])
        };
        json!({
            "ID": self.id,
            "Parent": self.parent,
            "Parents": parents,
            "Type": self.kind,
            "Description": self.description,
            "InUse": self.in_use,
            "Shared": self.shared,
            "Size": self.size,
            "CreatedAt": t(self.created),
            "LastUsedAt": t(self.last_used),
            "UsageCount": self.usage_count,
        })
    }
}

/// The entries to remove so that what stays fits in `keep` bytes: the least recently
/// used first (of a step and its parent, the step first), never one in use or shared;
/// shared ones do not count. Indexes into `records`.
pub fn plan(records: &[CacheRecord], keep: u64) -> Vec<usize> {
    let mut total: u64 = records.iter().filter(|r| !r.shared).map(|r| r.size).sum();
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by_key(|&i| {
        (
            records[i].last_used,
            std::cmp::Reverse(records[i].depth),
            records[i].created,
            records[i].id.clone(),
        )
    });
    let mut out = Vec::new();
    for i in order {
        if total <= keep {
            break;
        }
        if records[i].in_use || records[i].shared {
            continue;
        }
        total -= records[i].size;
        out.push(i);
    }
    out
}

/// The collector's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcPolicy {
    pub enabled: bool,
    pub keep_storage: u64,
}

/// A size as the flag and daemon.json give it (`10GB`, `512MB`, bytes).
pub fn parse_keep_storage(s: &str) -> Result<u64, String> {
    berth_runtime::logspec::parse_size(s)
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| n as u64)
        .ok_or_else(|| format!("invalid builder GC keep storage size: {s}"))
}

/// 10% of the filesystem holding `root`, at most [`MAX_DEFAULT_KEEP`].
pub fn default_keep_storage(root: &Path) -> u64 {
    let total = nix::sys::statvfs::statvfs(root)
        .map(|s| s.blocks() * s.fragment_size())
        .unwrap_or(0);
    (total / 10).min(MAX_DEFAULT_KEEP)
}

/// The collector's state, one per daemon.
pub struct GcState {
    /// Builds hold it for reading; the collector for writing.
    pub lock: Arc<tokio::sync::RwLock<()>>,
    /// A build ended: time to look.
    pub wake: Arc<tokio::sync::Notify>,
    policy: Mutex<GcPolicy>,
    mounts: PathBuf,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

const NANOS: i64 = 1_000_000_000;

fn read_json(p: &Path) -> Value {
    std::fs::read(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

impl GcState {
    pub fn new(root: &Path) -> Self {
        GcState {
            lock: Arc::new(tokio::sync::RwLock::new(())),
            wake: Arc::new(tokio::sync::Notify::new()),
            policy: Mutex::new(GcPolicy {
                enabled: true,
                keep_storage: MAX_DEFAULT_KEEP,
            }),
            mounts: root.join("builds").join("cache-mounts"),
        }
    }

    pub fn policy(&self) -> GcPolicy {
        *self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_policy(&self, p: GcPolicy) {
        *self.policy.lock().unwrap_or_else(|p| p.into_inner()) = p;
    }

    /// Every record, cache mounts and steps; `busy`: a build runs (all are in use).
    pub fn records(&self, busy: bool, steps: &dyn StepCache) -> Vec<CacheRecord> {
        let mut out = self.mount_records(busy);
        out.extend(steps.records(busy));
        out
    }

    /// The cache-mount records on disk; `busy`: a build runs (all are in use).
    pub fn mount_records(&self, busy: bool) -> Vec<CacheRecord> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.mounts) else {
            return out;
        };
        for e in rd.flatten() {
            let dir = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if name.contains('.') || !dir.join("data").is_dir() {
                continue; // being made, or being removed
            }
            let meta = read_json(&dir.join("meta.json"));
            let gc = read_json(&dir.join("gc.json"));
            let mtime = std::fs::metadata(&dir)
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let created = gc["Created"].as_i64().unwrap_or(mtime);
            let last_used = meta["LastUsed"].as_i64().unwrap_or(created);
            let cache_id = meta["ID"].as_str().unwrap_or_default().to_string();
            out.push(CacheRecord {
                id: name,
                kind: MOUNT,
                description: format!("cached mount with id {cache_id}"),
                in_use: busy,
                shared: false,
                parent: String::new(),
                depth: 0,
                size: crate::fsutil::dir_size(&dir.join("data")).max(0) as u64,
                created: created.saturating_mul(NANOS),
                last_used: last_used.saturating_mul(NANOS),
                usage_count: gc["UsageCount"].as_u64().unwrap_or(0),
                dir,
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// A build that started at `started` (unix nanoseconds) ended: the cache mounts it
    /// used count one more use (a step counts its uses itself).
    pub fn note_build_end(&self, started: i64) {
        for r in self.mount_records(false) {
            if r.last_used >= started {
                let v = json!({ "Created": r.created / NANOS, "UsageCount": r.usage_count + 1 });
                let tmp = r.dir.join("gc.json.tmp");
                if std::fs::write(&tmp, v.to_string()).is_ok() {
                    let _ = std::fs::rename(&tmp, r.dir.join("gc.json"));
                }
            }
        }
    }

    /// Removes one entry, returning the bytes freed (None: it stays). A cache mount is
    /// renamed out of the way first, so a half-removed one is never listed or used (a
    /// leftover `*.tmp-gc*` goes at the next start of the store).
    pub fn remove(&self, r: &CacheRecord, steps: &dyn StepCache) -> Option<u64> {
        if r.kind == STEP {
            return steps.remove(r);
        }
        let gone = r
            .dir
            .with_extension(format!("tmp-gc{}", hex::encode(rand::random::<[u8; 4]>())));
        if std::fs::rename(&r.dir, &gone).is_err() {
            return None;
        }
        let _ = std::fs::remove_dir_all(&gone);
        Some(r.size)
    }

    /// Removes the entries `pick` chooses among `records`; returns their IDs and the
    /// bytes freed.
    pub fn remove_all(
        &self,
        records: &[CacheRecord],
        pick: &[usize],
        steps: &dyn StepCache,
    ) -> (Vec<String>, u64) {
        let mut ids = Vec::new();
        let mut freed = 0;
        for &i in pick {
            if let Some(n) = self.remove(&records[i], steps) {
                ids.push(records[i].id.clone());
                freed += n;
            }
        }
        (ids, freed)
    }

    /// One pass of the collector, only when no build runs; returns the bytes freed.
    pub fn collect_if_idle(&self, steps: &dyn StepCache) -> u64 {
        let policy = self.policy();
        if !policy.enabled {
            return 0;
        }
        let Ok(_guard) = self.lock.clone().try_write_owned() else {
            return 0; // a build runs: later
        };
        let records = self.records(false, steps);
        let pick = plan(&records, policy.keep_storage);
        let (ids, freed) = self.remove_all(&records, &pick, steps);
        if !ids.is_empty() {
            tracing::info!(
                removed = ids.len(),
                freed,
                keep = policy.keep_storage,
                "build cache collected"
            );
        }
        freed
    }
}

/// Starts the background collector: after every build and every minute.
pub fn spawn(d: crate::state::Daemon) {
    tokio::spawn(async move {
        loop {
            let wake = d.builds.gc.wake.clone();
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
            let d = d.clone();
            let _ = tokio::task::spawn_blocking(move || {
                d.builds
                    .gc
                    .collect_if_idle(&super::step_cache::DaemonSteps(&d))
            })
            .await;
        }
    });
}

/// A build's hold on the cache: taken when it starts, given back when it ends.
pub struct BuildHold {
    guard: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
    started: i64,
    state: Arc<super::BuildService>,
}

impl BuildHold {
    pub async fn take(state: Arc<super::BuildService>) -> Self {
        let guard = state.gc.lock.clone().read_owned().await;
        BuildHold {
            guard: Some(guard),
            started: now() - NANOS,
            state,
        }
    }
}

impl Drop for BuildHold {
    fn drop(&mut self) {
        self.state.gc.note_build_end(self.started);
        // Let go before waking the collector, or it finds the build still there.
        self.guard.take();
        self.state.gc.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, size: u64, last_used: i64, in_use: bool) -> CacheRecord {
        CacheRecord {
            id: id.into(),
            kind: "exec.cachemount",
            description: String::new(),
            in_use,
            shared: false,
            parent: String::new(),
            depth: 0,
            size,
            created: 0,
            last_used,
            usage_count: 1,
            dir: PathBuf::new(),
        }
    }

    #[test]
    fn least_recently_used_first_and_never_in_use() {
        let r = vec![
            rec("new", 100, 30, false),
            rec("old", 100, 10, false),
            rec("busy", 100, 5, true),
            rec("mid", 100, 20, false),
        ];
        // 400 bytes, keep 250: the two oldest unused go (busy is skipped).
        let ids: Vec<&str> = plan(&r, 250).iter().map(|&i| r[i].id.as_str()).collect();
        assert_eq!(ids, vec!["old", "mid"]);
        // Under budget: nothing.
        assert!(plan(&r, 400).is_empty());
        // keep 0: all but the one in use.
        let ids: Vec<&str> = plan(&r, 0).iter().map(|&i| r[i].id.as_str()).collect();
        assert_eq!(ids, vec!["old", "mid", "new"]);
    }

    #[test]
    fn shared_steps_stay_and_do_not_count_and_children_go_first() {
        let step = |id: &str, size, last_used, depth, shared| CacheRecord {
            kind: STEP,
            depth,
            shared,
            ..rec(id, size, last_used, false)
        };
        let r = vec![
            step("parent", 100, 10, 1, false),
            step("child", 100, 10, 2, false),
            step("tagged", 1000, 1, 1, true),
            rec("mount", 100, 20, false),
        ];
        // 300 bytes count (the shared 1000 do not); keep 150: the child before its
        // parent (same last use), the shared one never.
        let ids: Vec<&str> = plan(&r, 150).iter().map(|&i| r[i].id.as_str()).collect();
        assert_eq!(ids, vec!["child", "parent"]);
        assert!(plan(&r, 300).is_empty());
        let api = r[2].to_api();
        assert_eq!(api["Type"], "regular");
        assert_eq!(api["Shared"], true);
    }

    #[test]
    fn records_removal_and_the_lock() {
        let t = tempfile::tempdir().unwrap();
        let gc = GcState::new(t.path());
        for (name, id, used, bytes) in [("aa", "one", 100, 1000), ("bb", "two", 200, 3000)] {
            let d = t.path().join("builds/cache-mounts").join(name);
            std::fs::create_dir_all(d.join("data")).unwrap();
            std::fs::write(d.join("data/f"), vec![0u8; bytes]).unwrap();
            std::fs::write(
                d.join("meta.json"),
                json!({"ID": id, "LastUsed": used}).to_string(),
            )
            .unwrap();
        }
        let r = gc.mount_records(false);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].size, 1000);
        assert_eq!(r[0].description, "cached mount with id one");
        assert_eq!(r[0].to_api()["Type"], "exec.cachemount");
        assert!(gc.mount_records(true).iter().all(|r| r.in_use));
        gc.note_build_end(150 * NANOS);
        assert_eq!(
            gc.mount_records(false)[1].usage_count,
            1,
            "two was used by the build"
        );
        assert_eq!(gc.mount_records(false)[0].usage_count, 0);
        gc.set_policy(GcPolicy {
            enabled: true,
            keep_storage: 3500,
        });
        // A build holds the lock: nothing is collected.
        let hold = gc.lock.clone().try_read_owned().unwrap();
        assert_eq!(gc.collect_if_idle(&NoSteps), 0);
        drop(hold);
        assert_eq!(gc.collect_if_idle(&NoSteps), 1000);
        let left: Vec<String> = gc.mount_records(false).into_iter().map(|r| r.id).collect();
        assert_eq!(left, vec!["bb"]);
    }
}
