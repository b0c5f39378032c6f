//! Containers: records, lifecycle, shims, logs, attach and exec.
//!
//! ## Persistent state
//! - `meta.db`, table `containers`: container ID (64 hex) → [`record::ContainerRecord`]
//!   as JSON (versions and migrations: [`crate::schema`]). One write transaction per
//!   change. Names are not a separate table: they are unique across records and rebuilt
//!   in memory at start-up. Exec instances are not stored (as in Docker they do not
//!   survive the daemon).
//! - `<root>/containers/<id>/`: `upper/` and `work/` (the overlayfs writable layer) and
//!   `<id>-json.log` with its rotated `<id>-json.log.N[.gz]`, or `local-logs/container.log*`
//!   with the local driver (written and rotated by the shim, see [`log_config`]; absent
//!   with the `none` driver).
//! - `<exec-root>/containers/<id>/`: the shim's state dir (`spec.json`, `shim.sock`,
//!   `shim.pid`, `init.pid`, `exit.json`, `shim.log`), present only while a shim runs or
//!   until the daemon has processed its exit.
//!
//! ## Crash consistency
//! A start is recorded as in progress (`start_pending`) before anything is set up for it;
//! at daemon start, [`reconcile`] adopts or kills what such a start left, kills shims of
//! containers that are not running or have no record, and removes container dirs and
//! endpoints of no record, before live restore reconnects to the running ones.
//!
//! ## Concurrency
//! Records are cached in memory behind one mutex that is never held across an await.
//! Each container has a `watch` channel of [`Events`] (exit count, running, removed) that
//! `wait`, `stop` and `logs --follow` subscribe to. Each running container has one
//! monitor task holding a `watch` connection to its shim (exits and restarts by the
//! restart policy, see [`restart`]); after a daemon restart,
//! [`ContainerService::recover`] reconnects those monitors (live restore).

pub mod archive;
pub mod attach;
pub mod changes;
pub mod cp_root;
mod create;
mod cri_support;
pub mod daemon_defaults;
mod delete;
pub mod exec;
mod exec_attach;
pub mod filters;
pub mod health;
mod health_monitor;
mod init_process;
mod inspect;
mod lifecycle;
pub mod log_config;
pub mod logs;
pub mod merge;
mod mount_setup;
pub mod mounts;
pub mod names;
mod propagation;
mod pty_io;
mod reconcile;
pub mod record;
mod resource_options;
mod restart;
mod run_options;
mod security_opts;
pub mod shim;
mod start;
pub mod store;
pub mod top;
pub mod update;
mod userns;

pub use self::create::familiar_reference;
pub use self::start::{start_error_message, start_exit_code};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_image::ImageStore;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use self::attach::PendingAttach;
use self::record::{ContainerRecord, Status};
use self::store::RecordStore;
use crate::error::{ApiError, ApiResult};
use crate::network::NetworkService;
use crate::state::{ContainerCounts, DaemonConfig};
use crate::volumes::VolumeService;

/// What waiters see of a container.
#[derive(Debug, Clone, Default)]
pub struct Events {
    /// Number of exits observed since the daemon loaded the container.
    pub exits: u64,
    /// A process runs, or the restart policy is about to run one again (Docker's
    /// `Running`, true while `Restarting`).
    pub running: bool,
    pub removed: bool,
    pub exit_code: i64,
    pub error: String,
}

struct Entry {
    rec: ContainerRecord,
    /// Attach clients registered before start.
    pending: Vec<PendingAttach>,
    events: watch::Sender<Events>,
    /// A start is in progress.
    starting: bool,
}

impl Entry {
    fn new(rec: ContainerRecord) -> Self {
        let (events, _) = watch::channel(Events {
            running: rec.state.status.is_running(),
            exit_code: rec.state.exit_code,
            error: rec.state.error.clone(),
            ..Default::default()
        });
        Entry {
            rec,
            pending: Vec::new(),
            events,
            starting: false,
        }
    }
}

/// `wait`'s `condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> ApiResult<Self> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(ApiError::invalid(format!("invalid condition: \"{other}\""))),
        }
    }
}

/// Options of `GET /containers/json`.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub limit: i64,
    pub size: bool,
    pub filters: filters::Filters,
}

pub struct ContainerService {
    config: Arc<DaemonConfig>,
    images: Arc<ImageStore>,
    store: RecordStore,
    entries: Mutex<HashMap<String, Entry>>,
    pub(crate) execs: exec::ExecTable,
    /// The networks a container is attached to when it starts (a peer service).
    net: Arc<NetworkService>,
    /// The volumes containers mount (a peer service; containers are their users).
    volumes: Arc<VolumeService>,
    /// Healthcheck monitors of running containers.
    health: health_monitor::Monitors,
    /// The daemon's event bus.
    pub events: Arc<crate::events::EventBus>,
    /// Environment for a container's next start only, never recorded in its config
    /// (a build step's `RUN --mount=type=secret,env=`).
    start_env: Mutex<HashMap<String, Vec<String>>>,
}

pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn remove_dir_all_quiet(path: &Path) {
    match std::fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "removing directory"),
    }
}

impl ContainerService {
    /// Loads every record from `meta.db`. Call [`Self::recover`] next, inside the runtime.
    pub fn open(
        config: Arc<DaemonConfig>,
        db: Arc<berth_image::MetaDb>,
        images: Arc<ImageStore>,
        net: Arc<NetworkService>,
        volumes: Arc<VolumeService>,
        events: Arc<crate::events::EventBus>,
    ) -> anyhow::Result<Arc<Self>> {
        let store = RecordStore::open(db)?;
        let mut entries = HashMap::new();
        for rec in store.load_all()? {
            entries.insert(rec.id.clone(), Entry::new(rec));
        }
        std::fs::create_dir_all(config.root.join("containers"))?;
        std::fs::create_dir_all(config.exec_root.join("containers"))?;
        let service = Arc::new(ContainerService {
            events,
            volumes,
            config,
            images,
            store,
            entries: Mutex::new(entries),
            execs: exec::ExecTable::default(),
            net,
            health: Default::default(),
            start_env: Default::default(),
        });
        // The embedded DNS servers forward a container's queries to its `--dns` servers.
        let weak = Arc::downgrade(&service);
        service.net.set_container_dns(Box::new(move |id: &str| {
            weak.upgrade()
                .and_then(|s| s.lock().get(id).map(|e| e.rec.host_config.dns.clone()))
                .unwrap_or_default()
                .iter()
                .filter_map(|d| d.parse().ok())
                .collect()
        }));
        Ok(service)
    }

    /// Environment the container's next start adds to its process, kept out of its
    /// config (`inspect` never shows it), used once.
    pub fn set_start_env(&self, id: &str, env: Vec<String>) {
        self.start_env
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), env);
    }

    fn take_start_env(&self, id: &str) -> Vec<String> {
        self.start_env
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .unwrap_or_default()
    }

    /// The container table; on a lifecycle thread, held at the daemon's priority (lists
    /// and inspects wait for it: see [`crate::lifecycle_pool::Boost`]).
    fn lock(&self) -> crate::lifecycle_pool::Boosted<MutexGuard<'_, HashMap<String, Entry>>> {
        crate::lifecycle_pool::Boosted::lock(|| {
            self.entries.lock().unwrap_or_else(|p| p.into_inner())
        })
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.config.root.join("containers").join(id)
    }

    /// The shim's state dir, `<exec-root>/containers/<id>` (the runtime reaches its socket
    /// whatever the length of this path).
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("containers").join(id)
    }

    fn persist(&self, rec: &ContainerRecord) -> ApiResult<()> {
        self.store.put(rec).map_err(ApiError::from)
    }

    pub fn counts(&self) -> ContainerCounts {
        let entries = self.lock();
        let mut c = ContainerCounts {
            total: 0,
            running: 0,
            paused: 0,
        };
        for e in entries.values() {
            c.total += 1;
            match e.rec.state.status {
                Status::Running => c.running += 1,
                Status::Paused => c.paused += 1,
                _ => {}
            }
        }
        c
    }

    /// The ID of a container created from `image_id`, if any (for `rmi`'s conflict check).
    pub fn container_using_image(&self, image_id: &str) -> Option<String> {
        let bare = image_id.strip_prefix("sha256:").unwrap_or(image_id);
        self.lock()
            .values()
            .find(|e| {
                e.rec
                    .image_id
                    .strip_prefix("sha256:")
                    .unwrap_or(&e.rec.image_id)
                    == bare
            })
            .map(|e| e.rec.id.clone())
    }

    /// Like [`Self::container_using_image`], preferring a running container: `(id,
    /// running)`, for `rmi`'s two conflict texts (running containers block even `-f`).
    pub fn container_using_image_status(&self, image_id: &str) -> Option<(String, bool)> {
        let bare = image_id.strip_prefix("sha256:").unwrap_or(image_id);
        let entries = self.lock();
        let users = entries.values().filter(|e| {
            e.rec
                .image_id
                .strip_prefix("sha256:")
                .unwrap_or(&e.rec.image_id)
                == bare
        });
        let mut found: Option<(String, bool)> = None;
        for e in users {
            let running = e.rec.state.status.is_running();
            if running {
                return Some((e.rec.id.clone(), true));
            }
            found.get_or_insert((e.rec.id.clone(), false));
        }
        found
    }

    /// Full ID for a full ID, a name (with or without `/`) or a unique ID prefix.
    pub fn resolve(&self, name_or_id: &str) -> ApiResult<String> {
        resolve_in(&self.lock(), name_or_id)
    }

    fn record(&self, id: &str) -> ApiResult<ContainerRecord> {
        self.lock()
            .get(id)
            .map(|e| e.rec.clone())
            .ok_or_else(|| ApiError::not_found(format!("No such container: {id}")))
    }

    /// The record of `name_or_id`.
    pub fn get(&self, name_or_id: &str) -> ApiResult<ContainerRecord> {
        let entries = self.lock();
        let id = resolve_in(&entries, name_or_id)?;
        Ok(entries[&id].rec.clone())
    }

    fn subscribe(&self, id: &str) -> ApiResult<watch::Receiver<Events>> {
        self.lock()
            .get(id)
            .map(|e| e.events.subscribe())
            .ok_or_else(|| ApiError::not_found(format!("No such container: {id}")))
    }

    // ---------------------------------------------------------------- create

    pub(crate) fn add_exec_id(&self, id: &str, exec_id: &str) {
        if let Some(e) = self.lock().get_mut(id) {
            e.rec.exec_ids.push(exec_id.to_string());
        }
    }
}

/// The entry of `name_or_id` (resolved as [`resolve_in`] does) and its full ID.
fn entry_mut<'a>(
    entries: &'a mut HashMap<String, Entry>,
    name_or_id: &str,
) -> ApiResult<(String, &'a mut Entry)> {
    let id = resolve_in(entries, name_or_id)?;
    match entries.get_mut(&id) {
        Some(entry) => Ok((id, entry)),
        None => Err(ApiError::not_found(format!("No such container: {id}"))),
    }
}

/// Gives back the table grown by a burst of containers once most of them are gone (an
/// entry holds its whole record: a table sized for a few hundred containers is a few
/// hundred kilobytes).
fn shrink_after_burst<V>(entries: &mut HashMap<String, V>) {
    let len = entries.len();
    if entries.capacity() > 4 * len.max(16) {
        entries.shrink_to(2 * len);
    }
}

fn resolve_in(entries: &HashMap<String, Entry>, name_or_id: &str) -> ApiResult<String> {
    if name_or_id.is_empty() {
        return Err(ApiError::not_found("No such container: "));
    }
    if entries.contains_key(name_or_id) {
        return Ok(name_or_id.to_string());
    }
    let as_name = if name_or_id.starts_with('/') {
        name_or_id.to_string()
    } else {
        format!("/{name_or_id}")
    };
    if let Some(e) = entries.values().find(|e| e.rec.name == as_name) {
        return Ok(e.rec.id.clone());
    }
    let mut hits = entries.keys().filter(|id| id.starts_with(name_or_id));
    match (hits.next(), hits.next()) {
        (Some(id), None) => Ok(id.clone()),
        (Some(_), Some(_)) => Err(ApiError::invalid(format!(
            "multiple IDs found with provided prefix: {name_or_id}"
        ))),
        _ => Err(ApiError::not_found(format!(
            "No such container: {name_or_id}"
        ))),
    }
}

/// Removes a shim's state dir once its shim is gone, killing whatever is left in the
/// container's cgroups and removing them first (a shim that died could not).
async fn clean_state_dir(state: PathBuf) {
    shim::wait_shim_gone(&state, Duration::from_secs(2)).await;
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = berth_runtime::cgroup::destroy(&state) {
            tracing::warn!(state = %state.display(), error = %e, "removing the container's cgroups");
        }
        remove_dir_all_quiet(&state);
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::start::start_error_kind;
    use super::*;
    use berth_api::ErrorKind;

    #[test]
    fn the_table_shrinks_once_a_burst_is_gone_and_not_before() {
        let mut m: HashMap<String, u8> = (0..300).map(|i| (i.to_string(), 0)).collect();
        let grown = m.capacity();
        for i in 0..250 {
            m.remove(&i.to_string());
            shrink_after_burst(&mut m);
        }
        assert_eq!(m.len(), 50);
        assert!(m.capacity() < grown, "{} of {grown}", m.capacity());
        assert!(m.capacity() >= 50);
        // A table in use keeps its room.
        // (what a removal leaves of the capacity depends on the hash seed: a removed
        // slot may stay a tombstone, so the capacity is read after it)
        let mut busy: HashMap<String, u8> = (0..40).map(|i| (i.to_string(), 0)).collect();
        busy.remove("1");
        let cap = busy.capacity();
        shrink_after_burst(&mut busy);
        assert_eq!(busy.capacity(), cap);
    }

    fn entries(ids: &[(&str, &str)]) -> HashMap<String, Entry> {
        ids.iter()
            .map(|(id, name)| {
                let rec = ContainerRecord {
                    id: id.to_string(),
                    name: format!("/{name}"),
                    ..Default::default()
                };
                (id.to_string(), Entry::new(rec))
            })
            .collect()
    }

    #[test]
    fn resolution_by_id_name_and_prefix() {
        let a = format!("{:a<64}", "abc1");
        let b = format!("{:b<64}", "abc2");
        let e = entries(&[(&a, "web"), (&b, "db")]);
        assert_eq!(resolve_in(&e, &a).unwrap(), a);
        assert_eq!(resolve_in(&e, "web").unwrap(), a);
        assert_eq!(resolve_in(&e, "/db").unwrap(), b);
        assert_eq!(resolve_in(&e, "abc1").unwrap(), a);
        let amb = resolve_in(&e, "abc").unwrap_err();
        assert_eq!(amb.message, "multiple IDs found with provided prefix: abc");
        let nf = resolve_in(&e, "nope").unwrap_err();
        assert_eq!(nf.message, "No such container: nope");
        assert_eq!(nf.kind, ErrorKind::NotFound);
    }

    #[test]
    fn name_beats_prefix() {
        let a = format!("{:a<64}", "");
        let b = format!("{:b<64}", "");
        // A container named like another's ID prefix resolves to the named one.
        let e = entries(&[(&a, "bbb"), (&b, "x")]);
        assert_eq!(resolve_in(&e, "bbb").unwrap(), a);
    }

    fn service(dir: &Path) -> Arc<ContainerService> {
        crate::state::Daemon::for_tests(dir).containers
    }

    fn add(svc: &ContainerService, id: &str, status: Status) {
        let mut rec = ContainerRecord {
            id: id.into(),
            name: format!("/n{id}"),
            ..Default::default()
        };
        rec.state.status = status;
        svc.lock().insert(id.into(), Entry::new(rec));
    }

    fn exit(svc: &ContainerService, id: &str, code: i64) {
        let entries = svc.lock();
        entries[id].events.send_modify(|ev| {
            ev.exits += 1;
            ev.running = false;
            ev.exit_code = code;
        });
    }

    #[tokio::test]
    async fn wait_conditions() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let id = "c".repeat(64);
        add(&svc, &id, Status::Created);
        // not-running: a created container answers at once.
        assert_eq!(svc.wait(&id, WaitCondition::NotRunning).unwrap().await.0, 0);
        // next-exit registered before the start sees the exit after it.
        let next = tokio::spawn(svc.wait(&id, WaitCondition::NextExit).unwrap());
        let removed = tokio::spawn(svc.wait(&id, WaitCondition::Removed).unwrap());
        tokio::task::yield_now().await;
        assert!(!next.is_finished());
        svc.lock()
            .get_mut(&id)
            .unwrap()
            .events
            .send_modify(|ev| ev.running = true);
        exit(&svc, &id, 5);
        assert_eq!(next.await.unwrap().0, 5);
        assert!(!removed.is_finished());
        svc.remove_container(&id);
        assert_eq!(removed.await.unwrap(), (5, String::new()));
        assert_eq!(
            svc.wait(&id, WaitCondition::Removed).err().unwrap().kind,
            ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn state_checks_use_dockers_words() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let id = "d".repeat(64);
        add(&svc, &id, Status::Exited);
        let e = svc.kill(&id, None).await.unwrap_err();
        assert_eq!(
            e.message,
            format!("Cannot kill container: {id}: Container {id} is not running")
        );
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert_eq!(
            svc.stop(&id, None, None).await.unwrap_err().kind,
            ErrorKind::NotModified
        );
        assert_eq!(
            svc.pause(&id, true).await.unwrap_err().message,
            format!("Container {id} is not running")
        );
        assert_eq!(
            svc.exec_create(&id, Default::default())
                .unwrap_err()
                .message,
            format!("Container {id} is not running")
        );
        assert!(svc
            .kill(&id, Some("NOPE"))
            .await
            .unwrap_err()
            .message
            .contains("Invalid signal: NOPE"));
        add(&svc, &"e".repeat(64), Status::Created);
        let e = svc
            .rename(&id, &format!("n{}", "e".repeat(64)))
            .unwrap_err();
        assert!(
            e.message.starts_with("Conflict. The container name"),
            "{}",
            e.message
        );
        svc.rename(&id, "fresh").unwrap();
        assert_eq!(svc.resolve("fresh").unwrap(), id);
        let (deleted, _) = svc.prune(&Default::default()).unwrap();
        assert_eq!(deleted.len(), 2);
        assert_eq!(svc.counts().total, 0);
    }

    #[test]
    fn familiar_references() {
        assert_eq!(familiar_reference("busybox"), "busybox:latest");
        assert_eq!(familiar_reference("busybox:1"), "busybox:1");
        assert_eq!(
            familiar_reference("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(familiar_reference("a@sha256:00"), "a@sha256:00");
    }

    #[test]
    fn start_errors_map_to_docker_codes() {
        assert_eq!(
            start_exit_code("exec: \"nosuch\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_exit_code("exec: \"/etc\": permission denied"), 126);
        assert_eq!(start_error_kind(127), ErrorKind::InvalidArgument);
        assert!(start_error_message("exec: \"x\": executable file not found in $PATH")
            .starts_with("failed to create task for container: failed to create shim task: OCI runtime create failed"));
    }
}
