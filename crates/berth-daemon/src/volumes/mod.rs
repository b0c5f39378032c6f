//! Volumes: named and anonymous data directories that outlive containers (Docker's
//! `local` driver).
//!
//! ## Persistent state
//! - `meta.db`, table `volumes`: volume name → [`VolumeRecord`] as JSON (see
//!   [`crate::schema`]). One write transaction per change.
//! - `<root>/volumes/<name>/_data`: the volume's data, created with the record and
//!   removed with it.
//!
//! Which containers use a volume is not stored here: the container records' mount points
//! say it (see `containers::mounts`), so a volume can never be removed while any
//! container, running or not, refers to it.
//!
//! ## Driver options
//! Docker's `local` driver options are kept: `type`, `device`, `o`. A volume with `type`
//! set is mounted on its `_data` (on the host) when the first container using it starts
//! (`type=tmpfs` → a tmpfs with `o`'s options; `o=bind,device=/path` → a bind of
//! `device`; another type → `mount -t type device` with `o`) and unmounted when the last
//! one stops, as Docker's local driver does; containers then bind `_data` like any
//! volume, so running containers share it. Which running containers use which volume is
//! kept in memory ([`VolumeService::acquire`], [`VolumeService::release`]) and rebuilt
//! at start-up from the containers recorded as running.

pub mod copyup;

use crate::fsutil::dir_size;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use berth_api::{Volume, VolumeUsageData};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::schema::{VOLUMES, VOLUMES_PART};

/// Docker's label for anonymous volumes (API ≥ 1.42 prunes only these by default).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// One volume, as stored in the `volumes` table.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct VolumeRecord {
    pub name: String,
    /// Always `local`.
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// Driver options (`type`, `device`, `o`).
    pub options: BTreeMap<String, String>,
    pub created: DateTime<Utc>,
    /// Created for `-v /path`, `--mount type=volume` without a source or an image's
    /// VOLUME: removed by `rm -v` and `--rm`, and by `volume prune` without `-a`.
    pub anonymous: bool,
}

impl VolumeRecord {
    /// `Mountpoint` as Docker shows it.
    pub fn mountpoint(&self, volumes_dir: &Path) -> PathBuf {
        volumes_dir.join(&self.name).join("_data")
    }

    /// The API's `Volume` object (moby swagger `Volume`); `usage` is (size, ref count)
    /// for `system df`.
    pub fn to_api(&self, volumes_dir: &Path, usage: Option<(i64, i64)>) -> Volume {
        let no_options = self.options.is_empty() && self.anonymous;
        Volume {
            created_at: self.created.to_rfc3339_opts(SecondsFormat::Secs, true),
            driver: self.driver.clone(),
            labels: Some(self.labels.clone()),
            mountpoint: self.mountpoint(volumes_dir).display().to_string(),
            name: self.name.clone(),
            options: (!no_options).then(|| self.options.clone()),
            scope: "local".into(),
            status: None,
            usage_data: usage.map(|(size, ref_count)| VolumeUsageData { size, ref_count }),
        }
    }

    /// How the volume is mounted into a container: `None` for a plain directory, else
    /// `(fstype, source, options)` from the `local` driver's options.
    pub fn driver_mount(&self) -> Option<(String, String, Vec<String>)> {
        let kind = self.options.get("type").filter(|t| !t.is_empty())?;
        let device = self.options.get("device").cloned().unwrap_or_default();
        let opts: Vec<String> = self
            .options
            .get("o")
            .map(|o| {
                o.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if opts.iter().any(|o| o == "bind" || o == "rbind") {
            return Some(("bind".into(), device, opts));
        }
        Some((kind.clone(), device, opts))
    }
}

/// Checks a volume name as Docker's local driver does.
pub fn validate_name(name: &str) -> ApiResult<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok {
        return Ok(());
    }
    let hint = if name.contains('/') {
        ". If you intended to pass a host directory, use absolute path"
    } else {
        ""
    };
    Err(ApiError::invalid(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed{hint}"
    )))
}

/// Checks `local` driver options (moby `volume/local`): only `type`, `device`, `o`.
pub fn validate_options(opts: &BTreeMap<String, String>) -> ApiResult<()> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o") {
            return Err(ApiError::invalid(format!("invalid option key: {k:?}")));
        }
    }
    let kind = opts.get("type").map(String::as_str).unwrap_or("");
    let device = opts.get("device").map(String::as_str).unwrap_or("");
    if kind.is_empty() && !device.is_empty() {
        return Err(ApiError::invalid("missing required option: \"type\""));
    }
    if !kind.is_empty() && kind != "tmpfs" && device.is_empty() {
        return Err(ApiError::invalid("missing required option: \"device\""));
    }
    let is_bind = opts
        .get("o")
        .is_some_and(|o| o.split(',').any(|x| x == "bind" || x == "rbind"));
    if is_bind && !Path::new(device).exists() {
        return Err(ApiError::invalid(format!(
            "failed to mount local volume: mount {device}: no such file or directory"
        )));
    }
    Ok(())
}

fn remove_volume_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %dir.display(), error = %e, "removing volume data");
        }
    }
}

/// The volume store: records in `meta.db`, data under `<root>/volumes`.
pub struct VolumeService {
    /// The daemon's event bus.
    pub events: std::sync::Arc<crate::events::EventBus>,
    dir: PathBuf,
    db: std::sync::Arc<berth_image::MetaDb>,
    records: Mutex<BTreeMap<String, VolumeRecord>>,
    /// Volumes with driver options that are mounted now → IDs of the running
    /// containers that use them.
    mounted: Mutex<BTreeMap<String, std::collections::BTreeSet<String>>>,
}

/// What `POST /volumes/create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub anonymous: bool,
}

impl VolumeService {
    /// Opens (creating) the tables and loads every record.
    pub fn open(
        root: &Path,
        db: std::sync::Arc<berth_image::MetaDb>,
        events: std::sync::Arc<crate::events::EventBus>,
    ) -> anyhow::Result<Self> {
        let dir = root.join("volumes");
        std::fs::create_dir_all(&dir)?;
        VOLUMES_PART.open(&db)?;
        let records = VOLUMES
            .load(&db)?
            .into_iter()
            .map(|(_, r)| (r.name.clone(), r))
            .collect();
        Ok(VolumeService {
            events,
            dir,
            db,
            records: Mutex::new(records),
            mounted: Mutex::new(BTreeMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, VolumeRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `<root>/volumes`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<root>/volumes/<name>/_data`.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    fn put(&self, rec: &VolumeRecord) -> ApiResult<()> {
        Ok(VOLUMES.put(&self.db, &rec.name, rec)?)
    }

    fn delete_record(&self, name: &str) -> ApiResult<()> {
        Ok(VOLUMES.delete(&self.db, name)?)
    }

    /// Creates a volume, or returns the existing one of that name (as Docker does).
    /// An empty name makes an anonymous volume with a random 64-hex name.
    pub fn create(&self, mut opts: CreateOptions) -> ApiResult<VolumeRecord> {
        if opts.driver.is_empty() {
            opts.driver = "local".into();
        }
        if opts.driver != "local" {
            return Err(ApiError::not_found(format!(
                "error looking up volume plugin {}: plugin \"{}\" not found",
                opts.driver, opts.driver
            )));
        }
        if opts.name.is_empty() {
            opts.name = hex::encode(rand::random::<[u8; 32]>());
            opts.anonymous = true;
        }
        validate_name(&opts.name)?;
        validate_options(&opts.options)?;
        if opts.anonymous {
            opts.labels.entry(ANONYMOUS_LABEL.into()).or_default();
        }
        let mut records = self.lock();
        if let Some(existing) = records.get(&opts.name) {
            self.emit_volume_event("create", existing);
            return Ok(existing.clone());
        }
        let rec = VolumeRecord {
            name: opts.name.clone(),
            driver: opts.driver,
            labels: opts.labels,
            options: opts.options,
            created: Utc::now(),
            anonymous: opts.anonymous,
        };
        let data = self.data_dir(&rec.name);
        std::fs::create_dir_all(&data).map_err(|e| {
            ApiError::io(
                format!(
                    "error while creating volume path '{}': mkdir {}",
                    data.display(),
                    data.display()
                ),
                &e,
            )
        })?;
        if let Err(e) = self.put(&rec) {
            let _ = std::fs::remove_dir_all(self.dir.join(&rec.name));
            return Err(e);
        }
        records.insert(rec.name.clone(), rec.clone());
        self.emit_volume_event("create", &rec);
        Ok(rec)
    }

    /// `create` or `destroy`, with the `driver` attribute.
    fn emit_volume_event(&self, action: &str, rec: &VolumeRecord) {
        let attrs = BTreeMap::from([("driver".to_string(), rec.driver.clone())]);
        self.events
            .emit(crate::events::EventType::Volume, action, &rec.name, attrs);
    }

    /// The record of `name`, or Docker's 404.
    pub fn get(&self, name: &str) -> ApiResult<VolumeRecord> {
        self.lock()
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("get {name}: no such volume")))
    }

    pub fn list(&self) -> Vec<VolumeRecord> {
        self.lock().values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Removes a volume's record and data. The caller has checked it is unused.
    pub fn remove(&self, name: &str) -> ApiResult<()> {
        let mut records = self.lock();
        if !records.contains_key(name) {
            return Err(ApiError::not_found(format!("get {name}: no such volume")));
        }
        let dir = self.dir.join(name);
        if let Err(e) = VOLUMES.delete(&self.db, name) {
            if !berth_image::meta_db::is_storage_failure(&e) {
                return Err(e.into());
            }
            // A full disk: free the data first, as moby's local driver removes it before
            // the record, so removing volumes is the way out; then try again.
            remove_volume_dir(&dir);
            self.delete_record(name)?;
        }
        let gone = records.remove(name);
        drop(records);
        if let Some(rec) = &gone {
            self.emit_volume_event("destroy", rec);
        }
        remove_volume_dir(&dir);
        Ok(())
    }

    fn mounted(&self) -> MutexGuard<'_, BTreeMap<String, std::collections::BTreeSet<String>>> {
        self.mounted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that running container `id` uses volume `name`; the first user of a volume
    /// with driver options mounts it on `_data`.
    pub fn acquire(&self, name: &str, id: &str) -> ApiResult<()> {
        let rec = self.get(name)?;
        let Some((kind, device, opts)) = rec.driver_mount() else {
            return Ok(());
        };
        let mut mounted = self.mounted();
        let users = mounted.entry(name.to_string()).or_default();
        if users.is_empty() && !is_mount_point(&self.data_dir(name)) {
            let target = self.data_dir(name);
            std::fs::create_dir_all(&target)?;
            let o = berth_runtime::mounts::parse_options(&opts);
            let data = o.data.join(",");
            let data = (!data.is_empty()).then_some(data.as_str());
            let result = if kind == "bind" {
                let flags = nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC;
                nix::mount::mount(
                    Some(device.as_str()),
                    &target,
                    None::<&str>,
                    flags,
                    None::<&str>,
                )
                .and_then(|_| {
                    let extra =
                        o.flags - (nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC);
                    if extra.is_empty() {
                        Ok(())
                    } else {
                        let f =
                            nix::mount::MsFlags::MS_REMOUNT | nix::mount::MsFlags::MS_BIND | extra;
                        nix::mount::mount(None::<&str>, &target, None::<&str>, f, None::<&str>)
                    }
                })
            } else {
                let source = if device.is_empty() {
                    kind.clone()
                } else {
                    device.clone()
                };
                nix::mount::mount(
                    Some(source.as_str()),
                    &target,
                    Some(kind.as_str()),
                    o.flags,
                    data,
                )
            };
            if let Err(e) = result {
                if users.is_empty() {
                    mounted.remove(name);
                }
                return Err(ApiError::internal(format!(
                    "error while mounting volume '{}': failed to mount local volume: mount {device}:{}, flags: {:#x}, data: {}: {}",
                    target.display(),
                    target.display(),
                    o.flags.bits(),
                    data.unwrap_or(""),
                    e.desc().to_lowercase()
                )));
            }
        }
        users.insert(id.to_string());
        Ok(())
    }

    /// Records a user of an already mounted volume (live restore after a daemon restart).
    pub fn note_user(&self, name: &str, id: &str) {
        if self.get(name).is_ok_and(|r| r.driver_mount().is_some()) {
            self.mounted()
                .entry(name.to_string())
                .or_default()
                .insert(id.to_string());
        }
    }

    /// Container `id` stopped using volume `name`; the last user unmounts it.
    pub fn release(&self, name: &str, id: &str) {
        let mut mounted = self.mounted();
        let Some(users) = mounted.get_mut(name) else {
            return;
        };
        users.remove(id);
        if users.is_empty() {
            mounted.remove(name);
            let target = self.data_dir(name);
            if let Err(e) = nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH) {
                tracing::warn!(volume = name, error = %e, "unmounting volume");
            }
        }
    }

    /// Unmounts driver-option volumes that are mounted but have no running user (after a
    /// crash); call once at start-up after every running container was noted.
    pub fn unmount_unused(&self) {
        let mounted = self.mounted();
        for rec in self.list() {
            if rec.driver_mount().is_some() && !mounted.contains_key(&rec.name) {
                let target = self.data_dir(&rec.name);
                if is_mount_point(&target) {
                    let _ = nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
    }

    /// Bytes used by a volume's data (`du`, not following symlinks).
    pub fn size(&self, name: &str) -> i64 {
        dir_size(&self.data_dir(name))
    }
}

/// Whether `path` is a mount point (listed in /proc/self/mountinfo).
pub fn is_mount_point(path: &Path) -> bool {
    let want = path.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// `filters` of `GET /volumes` and `POST /volumes/prune` that need no container lookup.
pub fn matches_label(rec: &VolumeRecord, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => rec.labels.get(k).is_some_and(|x| x == v),
        None => rec.labels.contains_key(filter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_docker() {
        assert!(validate_name("data").is_ok());
        assert!(validate_name("a.b_c-1").is_ok());
        assert!(validate_name("_x").is_err());
        let e = validate_name("a/b").unwrap_err();
        assert_eq!(
            e.message,
            "create a/b: \"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
    }

    #[test]
    fn options_are_checked() {
        let o = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(validate_options(&o(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m")
        ]))
        .is_ok());
        assert_eq!(
            validate_options(&o(&[("foo", "x")])).unwrap_err().message,
            "invalid option key: \"foo\""
        );
        assert!(validate_options(&o(&[
            ("type", "none"),
            ("o", "bind"),
            ("device", "/nonexistent/x")
        ]))
        .is_err());
    }

    #[test]
    fn volumes_persist_and_anonymous_get_hex_names() {
        let dir = tempfile::tempdir().unwrap();
        let db =
            std::sync::Arc::new(berth_image::MetaDb::open(&dir.path().join("meta.db")).unwrap());
        let svc = VolumeService::open(dir.path(), db.clone(), crate::events::EventBus::in_memory())
            .unwrap();
        let v = svc
            .create(CreateOptions {
                name: "data".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(v.driver, "local");
        assert!(svc.data_dir("data").is_dir());
        let anon = svc.create(CreateOptions::default()).unwrap();
        assert_eq!(anon.name.len(), 64);
        assert!(anon.anonymous);
        assert!(anon.labels.contains_key(ANONYMOUS_LABEL));
        // Same name again: the existing volume.
        let again = svc
            .create(CreateOptions {
                name: "data".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(again.created, v.created);
        drop(svc);
        let svc =
            VolumeService::open(dir.path(), db, crate::events::EventBus::in_memory()).unwrap();
        assert_eq!(svc.count(), 2);
        svc.remove("data").unwrap();
        assert!(!dir.path().join("volumes/data").exists());
        assert_eq!(
            svc.remove("data").unwrap_err().message,
            "get data: no such volume"
        );
    }
}
