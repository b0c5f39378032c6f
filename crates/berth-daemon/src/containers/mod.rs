//! Containers: records, lifecycle, shims, logs, attach and exec.
//!
//! ## Persistent state
//! - `meta.db`, table `containers` (schema version 1, kept in table `containers_meta`
//!   under `"schema_version"`): container ID (64 hex) → [`record::ContainerRecord`] as
//!   JSON. One write transaction per change. Names are not a separate table: they are
//!   unique across records and rebuilt in memory at start-up. Exec instances are not
//!   stored (as in Docker they do not survive the daemon).
//!   A newer schema version than this build knows is refused at start-up.
//! - `<root>/containers/<id>/`: `upper/` and `work/` (the overlayfs writable layer) and
//!   `<id>-json.log` (written by the shim; absent with the `none` log driver).
//! - `<exec-root>/containers/<id>/`: the shim's state dir (`spec.json`, `shim.sock`,
//!   `shim.pid`, `init.pid`, `exit.json`, `shim.log`), present only while a shim runs or
//!   until the daemon has processed its exit.
//!
//! ## Concurrency
//! Records are cached in memory behind one mutex that is never held across an await.
//! Each container has a `watch` channel of [`Events`] (exit count, running, removed) that
//! `wait`, `stop` and `logs --follow` subscribe to. Each running container has one
//! monitor task holding a `wait` connection to its shim; after a daemon restart,
//! [`ContainerService::recover`] reconnects those monitors (live restore).

pub mod archive;
pub mod attach;
pub mod exec;
pub mod filters;
pub mod logs;
pub mod merge;
pub mod mounts;
pub mod names;
pub mod network;
mod pty_io;
pub mod record;
pub(crate) mod security_opts;
pub mod shim;
pub mod store;
pub mod top;
pub mod update;

use crate::fsutil::dir_size;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_api::{
    ContainerCreateBody, ContainerInspect, ContainerSummary, ErrorKind, GraphDriver, IdResponse,
    SummaryHostConfig,
};
use berth_image::ImageStore;
use berth_runtime::protocol::{ExitStatus, Request};
use berth_runtime::ContainerSpec;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use self::attach::{AttachOptions, PendingAttach};
use self::record::{ContainerRecord, StateRecord, Status};
use self::store::RecordStore;
use crate::error::{ApiError, ApiResult};
use crate::state::{ContainerCounts, DaemonConfig};

/// What waiters see of a container.
#[derive(Debug, Clone, Default)]
pub struct Events {
    /// Number of exits observed since the daemon loaded the container.
    pub exits: u64,
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
    /// The default bridge and the containers' endpoints on it.
    pub net: Arc<network::NetworkService>,
    /// The volume store (opened with the containers, which hold its users).
    pub volumes: Arc<crate::volumes::VolumeService>,
}

fn start_error_kind(exit_code: i64) -> ErrorKind {
    if exit_code == 126 || exit_code == 127 {
        ErrorKind::InvalidArgument
    } else {
        ErrorKind::Internal
    }
}

/// Docker's wording around a runtime start failure.
pub fn start_error_message(runtime_error: &str) -> String {
    format!(
        "failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: {runtime_error}: unknown"
    )
}

/// Docker's exit code for a start failure message (127 not found, 126 not executable).
pub fn start_exit_code(message: &str) -> i64 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        127
    } else if message.contains("permission denied") {
        126
    } else {
        128
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
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
        db: Arc<redb::Database>,
        images: Arc<ImageStore>,
    ) -> anyhow::Result<Arc<Self>> {
        let net = network::NetworkService::open(
            db.clone(),
            &config.root,
            &config.exec_root,
            &config.bridge_name,
            Some(config.bip.as_str()),
            &config.default_address_pools,
        )?;
        let store_db = db.clone();
        let store = RecordStore::open(db)?;
        let mut entries = HashMap::new();
        for rec in store.load_all()? {
            entries.insert(rec.id.clone(), Entry::new(rec));
        }
        std::fs::create_dir_all(config.root.join("containers"))?;
        std::fs::create_dir_all(config.exec_root.join("containers"))?;
        let volumes = Arc::new(crate::volumes::VolumeService::open(
            &config.root,
            store_db.clone(),
        )?);
        Ok(Arc::new(ContainerService {
            volumes,
            config,
            images,
            store,
            entries: Mutex::new(entries),
            execs: exec::ExecTable::default(),
            net,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
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

    /// `POST /containers/create`.
    pub fn create(&self, body: ContainerCreateBody, name: Option<&str>) -> ApiResult<IdResponse> {
        let mut config = body.config;
        let mut hc = body.host_config.unwrap_or_default();
        let requested = match name.filter(|n| !n.is_empty()) {
            Some(n) => Some(names::normalize(n)?),
            None => None,
        };
        if config.image.is_empty() {
            return Err(ApiError::invalid(
                "config cannot be empty in order to create a container",
            ));
        }
        let image = self.images.resolve(&config.image).map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                ApiError::not_found(format!(
                    "No such image: {}",
                    familiar_reference(&config.image)
                ))
            } else {
                ApiError::from(e)
            }
        })?;
        merge::validate_host_config(&hc, &config)?;
        security_opts::validate(&hc, &self.config.security)?;
        // A network named in `--network` may not exist yet: moby checks it at start, not
        // here, and a 404 from create would make the Docker CLI pull the image.
        merge::merge_image_config(&mut config, &image.config.config);
        if !config.env.iter().any(|e| e.starts_with("PATH=")) {
            config.env.insert(0, merge::DEFAULT_PATH.to_string());
        }
        let (path, args) = merge::entrypoint_and_args(&config)?;
        let mount_points = self.resolve_mounts(&hc, &config, &image.id)?;

        let id = hex::encode(rand::random::<[u8; 32]>());
        if config.hostname.is_empty() {
            // With the host's network, Docker shows the host's name (moby `daemon/create.go`).
            config.hostname = if hc.network_mode == "host" {
                nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
                    .unwrap_or_else(|| id[..12].to_string())
            } else {
                id[..12].to_string()
            };
        }
        if hc.network_mode.is_empty() || hc.network_mode == "default" {
            hc.network_mode = "bridge".into();
        }
        if hc.log_config.kind.is_empty() {
            hc.log_config.kind = "json-file".into();
        }
        if hc.runtime.is_empty() {
            hc.runtime = merge::DEFAULT_RUNTIME.into();
        }
        let dir = self.container_dir(&id);
        // The `none` driver: no log file (the shim writes none for an empty path).
        let log_path = if hc.log_config.kind == "none" {
            PathBuf::new()
        } else {
            dir.join(format!("{id}-json.log"))
        };
        let mut rec = ContainerRecord {
            id: id.clone(),
            name: String::new(),
            image: config.image.clone(),
            image_id: image.id.clone(),
            created: Utc::now(),
            path,
            args,
            config,
            host_config: hc,
            state: StateRecord::default(),
            restart_count: 0,
            log_path,
            exec_ids: Vec::new(),
            mount_points,
        };

        let made = std::fs::create_dir_all(dir.join("upper"))
            .and_then(|_| std::fs::create_dir_all(dir.join("work")));
        if let Err(e) = made {
            remove_dir_all_quiet(&dir);
            self.drop_anonymous_volumes(&rec.mount_points);
            return Err(ApiError::internal(format!(
                "creating container directory: {e}"
            )));
        }
        let mut entries = self.lock();
        let name = match requested {
            Some(n) => {
                if let Some(other) = entries.values().find(|e| e.rec.name == n) {
                    let other = other.rec.id.clone();
                    drop(entries);
                    remove_dir_all_quiet(&dir);
                    self.drop_anonymous_volumes(&rec.mount_points);
                    return Err(ApiError::conflict(format!(
                        "Conflict. The container name \"{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    )));
                }
                n
            }
            None => {
                let mut retry = 0;
                loop {
                    let n = format!("/{}", names::random_name(retry));
                    if !entries.values().any(|e| e.rec.name == n) {
                        break n;
                    }
                    retry += 1;
                }
            }
        };
        rec.name = name;
        if let Err(e) = self.persist(&rec) {
            drop(entries);
            remove_dir_all_quiet(&dir);
            self.drop_anonymous_volumes(&rec.mount_points);
            return Err(e);
        }
        entries.insert(id.clone(), Entry::new(rec));
        Ok(IdResponse {
            id,
            warnings: Vec::new(),
        })
    }

    // ---------------------------------------------------------------- start

    fn build_spec(&self, rec: &ContainerRecord) -> ApiResult<ContainerSpec> {
        let lower_dirs = self.images.layer_dirs(&rec.image_id)?;
        let dir = self.container_dir(&rec.id);
        let state = self.state_dir(&rec.id);
        let hc = &rec.host_config;
        let cgroup_parent = if hc.cgroup_parent.is_empty() {
            self.config.cgroup_parent.clone()
        } else {
            hc.cgroup_parent.clone()
        };
        Ok(ContainerSpec {
            id: rec.id.clone(),
            lower_dirs,
            upper_dir: dir.join("upper"),
            work_dir: dir.join("work"),
            rootfs: state.join("rootfs"),
            readonly_rootfs: hc.readonly_rootfs,
            process: merge::process_spec(&rec.config, &rec.path, &rec.args),
            hostname: rec.config.hostname.clone(),
            domainname: rec.config.domainname.clone(),
            mounts: self.runtime_mounts(rec)?,
            privileged: hc.privileged,
            cap_add: hc.cap_add.clone(),
            cap_drop: hc.cap_drop.clone(),
            resources: merge::resources(hc),
            cgroup_parent,
            network: merge::network_mode(hc),
            shm_size: hc.shm_size.max(0) as u64,
            sysctls: hc
                .sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            log_path: rec.log_path.clone(),
            security: security_opts::spec(hc, &self.config.security)?,
        })
    }

    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, name_or_id: &str) -> ApiResult<()> {
        let (rec, pending) = {
            let mut entries = self.lock();
            let id = resolve_in(&entries, name_or_id)?;
            let entry = entries
                .get_mut(&id)
                .ok_or_else(|| ApiError::not_found(format!("No such container: {id}")))?;
            match entry.rec.state.status {
                Status::Running => {
                    return Err(ApiError::new(
                        ErrorKind::NotModified,
                        "Container already started",
                    ))
                }
                Status::Paused => {
                    return Err(ApiError::conflict(
                        "cannot start a paused container, try unpause instead",
                    ))
                }
                Status::Removing | Status::Dead => {
                    return Err(ApiError::conflict(
                        "container is marked for removal and cannot be started",
                    ))
                }
                _ => {}
            }
            if entry.starting {
                return Err(ApiError::new(
                    ErrorKind::NotModified,
                    "Container already started",
                ));
            }
            entry.starting = true;
            (entry.rec.clone(), std::mem::take(&mut entry.pending))
        };
        let id = rec.id.clone();
        match self.launch(&rec, pending).await {
            Ok((pid, wait_conn)) => {
                {
                    let mut entries = self.lock();
                    if let Some(entry) = entries.get_mut(&id) {
                        entry.starting = false;
                        entry.rec.state = StateRecord {
                            status: Status::Running,
                            pid,
                            started_at: Some(Utc::now()),
                            ..Default::default()
                        };
                        if let Err(e) = self.store.put(&entry.rec) {
                            tracing::error!(id, error = %e, "persisting started container");
                        }
                        entry.events.send_modify(|ev| {
                            ev.running = true;
                            ev.exit_code = 0;
                            ev.error.clear();
                        });
                    }
                }
                self.spawn_monitor(id, Some(wait_conn));
                Ok(())
            }
            Err((err, exit_code)) => {
                self.release_volumes(&id);
                let auto_remove = {
                    let mut entries = self.lock();
                    let mut auto_remove = false;
                    if let Some(entry) = entries.get_mut(&id) {
                        entry.starting = false;
                        entry.rec.state.exit_code = exit_code;
                        entry.rec.state.error = err.message.clone();
                        entry.rec.state.pid = 0;
                        if let Err(e) = self.store.put(&entry.rec) {
                            tracing::error!(id, error = %e, "persisting failed start");
                        }
                        entry.events.send_modify(|ev| {
                            ev.exits += 1;
                            ev.running = false;
                            ev.exit_code = exit_code;
                            ev.error = err.message.clone();
                        });
                        auto_remove = entry.rec.host_config.auto_remove;
                    }
                    auto_remove
                };
                if auto_remove {
                    self.remove_container(&id);
                }
                Err(err)
            }
        }
    }

    /// Starts the shim and the container; on failure nothing is left running and the
    /// state dir is gone. Returns the init pid and an open `wait` connection.
    async fn launch(
        &self,
        rec: &ContainerRecord,
        pending: Vec<PendingAttach>,
    ) -> Result<(i64, tokio::net::UnixStream), (ApiError, i64)> {
        self.acquire_volumes(rec).map_err(|e| (e, 128))?;
        let mut spec = self.build_spec(rec).map_err(|e| (e, 128))?;
        let attached = self
            .net
            .attach(rec, |name| self.get(name))
            .map_err(|e| (e, 128))?;
        spec.network = attached.network;
        // The generated /etc files give way to the user's mounts on them or on a parent
        // (a volume on /etc must not get mount points written into it).
        let covered = |dest: &str| {
            spec.mounts.iter().any(|m| {
                let d = m.destination.trim_end_matches('/');
                dest == d || dest.starts_with(&format!("{d}/"))
            })
        };
        let own: Vec<_> = attached
            .mounts
            .into_iter()
            .filter(|m| !covered(&m.destination))
            .collect();
        spec.mounts.extend(own);
        spec.process.env.extend(attached.env);
        let result = self.launch_with(rec, pending, spec).await;
        if result.is_err() {
            self.net.detach(&rec.id);
        }
        result
    }

    async fn launch_with(
        &self,
        rec: &ContainerRecord,
        pending: Vec<PendingAttach>,
        spec: ContainerSpec,
    ) -> Result<(i64, tokio::net::UnixStream), (ApiError, i64)> {
        let state = self.state_dir(&rec.id);
        remove_dir_all_quiet(&state);
        let write = std::fs::create_dir_all(&state).and_then(|_| {
            let json = serde_json::to_vec_pretty(&spec).map_err(std::io::Error::other)?;
            std::fs::write(state.join("spec.json"), json)
        });
        if let Err(e) = write {
            remove_dir_all_quiet(&state);
            return Err((
                ApiError::internal(format!("writing the container spec: {e}")),
                128,
            ));
        }
        let pid = match shim::spawn(&state).await {
            Ok(pid) => pid,
            Err(msg) => {
                remove_dir_all_quiet(&state);
                let code = start_exit_code(&msg);
                return Err((
                    ApiError::new(start_error_kind(code), start_error_message(&msg)),
                    code,
                ));
            }
        };
        let fail = |state: PathBuf, msg: String, code: i64| async move {
            let _ = shim::signal(&state, libc::SIGKILL).await;
            shim::wait_shim_gone(&state, Duration::from_secs(5)).await;
            clean_state_dir(state).await;
            Err((ApiError::new(start_error_kind(code), msg), code))
        };
        let wait_conn = match shim::open_wait(&state).await {
            Ok(c) => c,
            Err(e) => return fail(state, format!("connecting to the shim: {e}"), 128).await,
        };
        for p in pending {
            let req = Request::Attach {
                stdin: p.opts.stdin,
                stdout: p.opts.stdout,
                stderr: p.opts.stderr,
            };
            match shim::connect(&state, &req).await {
                Ok(conn) => {
                    tokio::spawn(attach::relay(p.upgrade, conn, p.opts, p.replay));
                }
                Err(e) => tracing::warn!(id = rec.id, error = %e, "connecting a pending attach"),
            }
        }
        match shim::start(&state).await {
            Ok(reply) if reply.error.is_empty() => Ok((pid, wait_conn)),
            Ok(reply) => {
                let code = if reply.exit_code > 0 {
                    reply.exit_code
                } else {
                    start_exit_code(&reply.error)
                };
                drop(wait_conn);
                fail(state, start_error_message(&reply.error), code).await
            }
            Err(e) => fail(state, format!("starting the container: {e}"), 128).await,
        }
    }

    /// Watches a running container's shim until the container exits.
    fn spawn_monitor(self: &Arc<Self>, id: String, conn: Option<tokio::net::UnixStream>) {
        let svc = self.clone();
        tokio::spawn(async move {
            let status = match conn {
                Some(c) => shim::wait_exit(c).await,
                None => None,
            };
            svc.on_exit(&id, status).await;
        });
    }

    async fn on_exit(self: &Arc<Self>, id: &str, status: Option<ExitStatus>) {
        let state = self.state_dir(id);
        let status = match status {
            Some(s) => s,
            None => {
                // The connection closed without an answer: the shim died, or wrote
                // exit.json just before going.
                shim::wait_shim_gone(&state, Duration::from_millis(500)).await;
                shim::read_exit_file(&state).unwrap_or_else(|| ExitStatus {
                    exit_code: 255,
                    finished_at: String::new(),
                    oom_killed: false,
                    error: "shim died: the container's shim process exited unexpectedly".into(),
                })
            }
        };
        // Clean up before announcing the exit: whoever waits for it (stop, restart, rm)
        // finds no process, cgroup or state dir left, and a new start gets a fresh dir.
        clean_state_dir(state).await;
        self.net.detach(id);
        self.release_volumes(id);
        let auto_remove = {
            let mut entries = self.lock();
            let Some(entry) = entries.get_mut(id) else {
                return;
            };
            let st = &mut entry.rec.state;
            st.status = Status::Exited;
            st.pid = 0;
            st.exit_code = status.exit_code;
            st.oom_killed = status.oom_killed;
            st.error = status.error.clone();
            st.finished_at = Some(parse_time(&status.finished_at).unwrap_or_else(Utc::now));
            if let Err(e) = self.store.put(&entry.rec) {
                tracing::error!(id, error = %e, "persisting container exit");
            }
            entry.events.send_modify(|ev| {
                ev.exits += 1;
                ev.running = false;
                ev.exit_code = status.exit_code;
                ev.error = status.error.clone();
            });
            entry.rec.host_config.auto_remove
        };
        self.execs.container_exited(id);
        if auto_remove {
            self.remove_container(id);
        }
    }

    /// Live restore: reconnects to the shims of containers recorded as running.
    pub async fn recover(self: &Arc<Self>) {
        self.restore_volume_users();
        let candidates: Vec<(String, Status, bool)> = self
            .lock()
            .values()
            .map(|e| {
                (
                    e.rec.id.clone(),
                    e.rec.state.status,
                    e.rec.host_config.auto_remove,
                )
            })
            .collect();
        for (id, status, auto_remove) in candidates {
            let state = self.state_dir(&id);
            if status.is_running() {
                let mut conn = shim::open_wait(&state).await;
                // A live shim that does not answer yet (busy, or just restarted): retry
                // before declaring the container dead, which would kill it.
                for _ in 0..20 {
                    if conn.is_ok() || !shim::shim_alive(&state) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    conn = shim::open_wait(&state).await;
                }
                match conn {
                    Ok(conn) => {
                        tracing::info!(id, "reconnected to running container");
                        self.spawn_monitor(id, Some(conn));
                    }
                    Err(_) => {
                        tracing::warn!(id, "container's shim is gone");
                        let exit = shim::read_exit_file(&state);
                        self.on_exit(&id, exit).await;
                    }
                }
            } else {
                if state.exists() && !shim::shim_alive(&state) {
                    remove_dir_all_quiet(&state);
                }
                if auto_remove && status == Status::Exited {
                    self.remove_container(&id);
                }
            }
        }
        let (running, stopped): (Vec<ContainerRecord>, Vec<ContainerRecord>) = self
            .lock()
            .values()
            .map(|e| e.rec.clone())
            .partition(|r| r.state.status.is_running());
        let stopped: Vec<String> = stopped.into_iter().map(|r| r.id).collect();
        self.net.restore(&running, &stopped);
    }

    // ---------------------------------------------------------------- signals

    async fn signal_running(&self, id: &str, signal: i32) -> ApiResult<()> {
        let state = self.state_dir(id);
        shim::signal(&state, signal).await.map_err(|e| {
            if shim::shim_alive(&state) {
                ApiError::internal(format!("Cannot kill container: {id}: {e}"))
            } else {
                // The shim is gone: the container exited and its monitor is catching up.
                ApiError::conflict(format!(
                    "Cannot kill container: {id}: Container {id} is not running"
                ))
            }
        })
    }

    /// Waits until the container is not running; false on timeout.
    async fn wait_stopped(&self, id: &str, timeout: Option<Duration>) -> bool {
        let Ok(mut rx) = self.subscribe(id) else {
            return true;
        };
        let stopped = async {
            loop {
                if !rx.borrow_and_update().running {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, stopped).await.is_ok(),
            None => {
                stopped.await;
                true
            }
        }
    }

    /// `POST /containers/{id}/stop`.
    pub async fn stop(
        &self,
        name_or_id: &str,
        t: Option<i64>,
        signal: Option<&str>,
    ) -> ApiResult<()> {
        let id = self.resolve(name_or_id)?;
        let rec = self.record(&id)?;
        if !rec.state.status.is_running() {
            return Err(ApiError::new(
                ErrorKind::NotModified,
                "Container already stopped",
            ));
        }
        let sig = match signal
            .filter(|s| !s.is_empty())
            .or(rec.config.stop_signal.as_deref())
        {
            Some(s) => merge::parse_signal(s)?,
            None => libc::SIGTERM,
        };
        let secs = t.or(rec.config.stop_timeout).unwrap_or(10);
        self.stop_record(&rec, sig, secs).await
    }

    async fn stop_record(&self, rec: &ContainerRecord, sig: i32, secs: i64) -> ApiResult<()> {
        let id = &rec.id;
        let _ = self.signal_running(id, sig).await;
        if rec.state.status == Status::Paused {
            let _ = self.set_frozen(id, false).await;
        }
        let timeout = (secs >= 0).then(|| Duration::from_secs(secs as u64));
        if self.wait_stopped(id, timeout).await {
            return Ok(());
        }
        self.signal_running(id, libc::SIGKILL).await.ok();
        if self.wait_stopped(id, Some(Duration::from_secs(30))).await {
            Ok(())
        } else {
            Err(ApiError::internal(format!("Cannot stop container: {id}: tried to kill container, but did not receive an exit event")))
        }
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(&self, name_or_id: &str, signal: Option<&str>) -> ApiResult<()> {
        let id = self.resolve(name_or_id)?;
        let rec = self.record(&id)?;
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => merge::parse_signal(s)?,
            None => libc::SIGKILL,
        };
        if !rec.state.status.is_running() {
            return Err(ApiError::conflict(format!(
                "Cannot kill container: {id}: Container {id} is not running"
            )));
        }
        self.signal_running(&id, sig).await?;
        if sig == libc::SIGKILL {
            if rec.state.status == Status::Paused {
                let _ = self.set_frozen(&id, false).await;
            }
            self.wait_stopped(&id, Some(Duration::from_secs(10))).await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        self: &Arc<Self>,
        name_or_id: &str,
        t: Option<i64>,
        signal: Option<&str>,
    ) -> ApiResult<()> {
        let id = self.resolve(name_or_id)?;
        match self.stop(&id, t, signal).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        self.start(&id).await
    }

    // ---------------------------------------------------------------- remove

    /// `DELETE /containers/{id}`.
    pub async fn remove(&self, name_or_id: &str, force: bool) -> ApiResult<()> {
        let id = self.resolve(name_or_id)?;
        // A start in progress decides whether there is a process to stop: let it finish.
        for _ in 0..600 {
            let starting = self.lock().get(&id).is_some_and(|e| e.starting);
            if !starting {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let rec = self.record(&id)?;
        if rec.state.status.is_running() {
            if !force {
                let why = if rec.state.status == Status::Paused {
                    "container is paused and must be unpaused first".to_string()
                } else {
                    format!(
                        "container is {}: stop the container before removing or force remove",
                        rec.state.status.as_str()
                    )
                };
                return Err(ApiError::conflict(format!(
                    "cannot remove container \"{}\": {why}",
                    rec.name
                )));
            }
            self.signal_running(&id, libc::SIGKILL).await.ok();
            if rec.state.status == Status::Paused {
                let _ = self.set_frozen(&id, false).await;
            }
            if !self.wait_stopped(&id, Some(Duration::from_secs(30))).await {
                return Err(ApiError::internal(format!(
                    "cannot remove container \"{}\": could not kill: did not receive an exit event",
                    rec.name
                )));
            }
        }
        // An AutoRemove container may already be gone by now.
        if self.lock().contains_key(&id) {
            self.remove_container(&id);
        }
        Ok(())
    }

    /// Drops a stopped container: record, name, directories, execs; wakes `removed` waiters.
    fn remove_container(&self, id: &str) {
        let entry = self.lock().remove(id);
        let Some(entry) = entry else { return };
        if let Err(e) = self.store.delete(id) {
            tracing::error!(id, error = %e, "deleting container record");
        }
        remove_dir_all_quiet(&self.state_dir(id));
        self.net.release(id);
        remove_dir_all_quiet(&self.container_dir(id));
        self.execs.container_removed(id);
        if entry.rec.host_config.auto_remove {
            self.drop_anonymous_volumes(&entry.rec.mount_points);
        }
        entry.events.send_modify(|ev| {
            ev.removed = true;
            ev.running = false;
        });
    }

    /// `POST /containers/prune`: removes stopped containers; returns IDs and bytes.
    pub fn prune(&self, f: &filters::Filters) -> ApiResult<(Vec<String>, u64)> {
        for k in f.keys() {
            if k != "label" && k != "label!" && k != "until" {
                return Err(ApiError::invalid(format!("invalid filter '{k}'")));
            }
        }
        let until = match f.get("until").and_then(|v| v.first()) {
            Some(v) => Some(parse_until(v)?),
            None => None,
        };
        let victims: Vec<String> = self
            .lock()
            .values()
            .filter(|e| {
                matches!(
                    e.rec.state.status,
                    Status::Exited | Status::Created | Status::Dead
                ) && !e.starting
            })
            .filter(|e| until.is_none_or(|u| e.rec.created < u))
            .filter(|e| {
                f.get("label")
                    .is_none_or(|ls| ls.iter().all(|l| label_matches(&e.rec, l)))
                    && f.get("label!")
                        .is_none_or(|ls| !ls.iter().any(|l| label_matches(&e.rec, l)))
            })
            .map(|e| e.rec.id.clone())
            .collect();
        let mut reclaimed = 0u64;
        for id in &victims {
            reclaimed += dir_size(&self.container_dir(id).join("upper")).max(0) as u64;
            self.remove_container(id);
        }
        Ok((victims, reclaimed))
    }

    // ---------------------------------------------------------------- misc

    /// `POST /containers/{id}/rename?name=`.
    pub fn rename(&self, name_or_id: &str, new_name: &str) -> ApiResult<()> {
        if new_name.is_empty() {
            return Err(ApiError::invalid("Neither old nor new names may be empty"));
        }
        let new = names::normalize(new_name)?;
        let mut entries = self.lock();
        let id = resolve_in(&entries, name_or_id)?;
        if entries[&id].rec.name == new {
            return Err(ApiError::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        if let Some(other) = entries.values().find(|e| e.rec.name == new) {
            return Err(ApiError::conflict(format!(
                "Conflict. The container name \"{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.rec.id
            )));
        }
        let entry = entries
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found(format!("No such container: {id}")))?;
        let old = std::mem::replace(&mut entry.rec.name, new);
        if let Err(e) = self.store.put(&entry.rec) {
            entry.rec.name = old;
            return Err(e.into());
        }
        Ok(())
    }

    async fn set_frozen(&self, id: &str, frozen: bool) -> Result<(), String> {
        let state = self.state_dir(id);
        tokio::task::spawn_blocking(move || freezer::set_frozen(&state, frozen))
            .await
            .map_err(|e| e.to_string())?
    }

    /// `POST /containers/{id}/pause` and `unpause`.
    pub async fn pause(&self, name_or_id: &str, pause: bool) -> ApiResult<()> {
        let id = self.resolve(name_or_id)?;
        let rec = self.record(&id)?;
        match (rec.state.status, pause) {
            (Status::Running, true) | (Status::Paused, false) => {}
            (Status::Paused, true) => {
                return Err(ApiError::conflict(format!(
                    "Container {id} is already paused"
                )))
            }
            (Status::Running, false) => {
                return Err(ApiError::conflict(format!("Container {id} is not paused")))
            }
            _ => return Err(ApiError::conflict(format!("Container {id} is not running"))),
        }
        self.set_frozen(&id, pause).await.map_err(|e| {
            ApiError::internal(format!(
                "Cannot {} container {id}: {e}",
                if pause { "pause" } else { "unpause" }
            ))
        })?;
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(&id) {
            if entry.rec.state.status.is_running() {
                entry.rec.state.status = if pause {
                    Status::Paused
                } else {
                    Status::Running
                };
                self.store.put(&entry.rec)?;
            }
        }
        Ok(())
    }

    /// `GET /containers/{id}/top`.
    /// Without `ps_args`, Docker's default `ps -ef` columns from `/proc`; with them, the
    /// host's `ps` as moby runs it.
    pub fn top(&self, name_or_id: &str, ps_args: &str) -> ApiResult<berth_api::TopResponse> {
        let rec = self.get(name_or_id)?;
        if !rec.state.status.is_running() {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let pids = top::container_pids(rec.state.pid);
        let ps_args = ps_args.trim();
        if !ps_args.is_empty() && ps_args != "-ef" {
            let (titles, processes) = top::ps_rows(ps_args, &pids).map_err(ApiError::internal)?;
            return Ok(berth_api::TopResponse { titles, processes });
        }
        Ok(berth_api::TopResponse {
            titles: top::TITLES.iter().map(|s| s.to_string()).collect(),
            processes: top::rows(&pids),
        })
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, name_or_id: &str, h: u16, w: u16) -> ApiResult<()> {
        let rec = self.get(name_or_id)?;
        if !rec.state.status.is_running() {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        shim::resize(&self.state_dir(&rec.id), h, w)
            .await
            .map_err(|e| ApiError::internal(format!("Cannot resize container {}: {e}", rec.id)))
    }

    /// `POST /containers/{id}/wait`: resolves the container now, waits in the future.
    pub fn wait(
        &self,
        name_or_id: &str,
        condition: WaitCondition,
    ) -> ApiResult<impl std::future::Future<Output = (i64, String)> + Send + 'static> {
        let id = self.resolve(name_or_id)?;
        let mut rx = self.subscribe(&id)?;
        let start = rx.borrow_and_update().clone();
        Ok(async move {
            loop {
                let ev = rx.borrow_and_update().clone();
                let done = match condition {
                    WaitCondition::NotRunning => !ev.running || ev.removed,
                    WaitCondition::NextExit => ev.exits > start.exits || ev.removed,
                    WaitCondition::Removed => ev.removed,
                };
                if done {
                    // Docker reports the state's error to not-running/next-exit waiters;
                    // `removed` waiters only learn about a failed removal.
                    let error = if condition == WaitCondition::Removed {
                        String::new()
                    } else {
                        ev.error
                    };
                    return (ev.exit_code, error);
                }
                if rx.changed().await.is_err() {
                    let ev = rx.borrow().clone();
                    return (ev.exit_code, ev.error);
                }
            }
        })
    }

    // ---------------------------------------------------------------- attach

    /// `POST /containers/{id}/attach` (hijacked). Created containers keep the attach
    /// pending until start; running ones are connected now.
    pub async fn attach(
        &self,
        name_or_id: &str,
        opts: AttachOptions,
        upgrade: hyper::upgrade::OnUpgrade,
        replay: Vec<bytes::Bytes>,
    ) -> ApiResult<()> {
        let id = {
            let mut entries = self.lock();
            let id = resolve_in(&entries, name_or_id)?;
            let entry = entries
                .get_mut(&id)
                .ok_or_else(|| ApiError::not_found(format!("No such container: {id}")))?;
            match entry.rec.state.status {
                Status::Created | Status::Exited if !entry.starting => {
                    entry.pending.push(PendingAttach {
                        opts,
                        upgrade,
                        replay,
                    });
                    return Ok(());
                }
                Status::Paused => {
                    return Err(ApiError::conflict(format!(
                        "container {id} is paused, unpause the container before attach"
                    )))
                }
                Status::Running | Status::Created | Status::Exited => id,
                _ => {
                    return Err(ApiError::conflict(
                        "You cannot attach to a stopped container, start it first",
                    ))
                }
            }
        };
        // A start in progress has taken the pending list already: wait for it.
        for _ in 0..600 {
            let (running, starting) = {
                let entries = self.lock();
                match entries.get(&id) {
                    Some(e) => (e.rec.state.status.is_running(), e.starting),
                    None => return Err(ApiError::not_found(format!("No such container: {id}"))),
                }
            };
            if running || !starting {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let req = Request::Attach {
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
        };
        let conn = shim::connect(&self.state_dir(&id), &req)
            .await
            .map_err(|_| {
                ApiError::conflict("You cannot attach to a stopped container, start it first")
            })?;
        tokio::spawn(attach::relay(upgrade, conn, opts, replay));
        Ok(())
    }

    /// The recorded output of a container, encoded for an attach stream (`logs=1`).
    pub fn log_snapshot(
        &self,
        rec: &ContainerRecord,
        stdout: bool,
        stderr: bool,
    ) -> Vec<bytes::Bytes> {
        let text = std::fs::read_to_string(&rec.log_path).unwrap_or_default();
        let opts = logs::LogOptions {
            stdout,
            stderr,
            ..Default::default()
        };
        logs::select(logs::parse_lines(&text), &opts)
            .iter()
            .map(|l| logs::encode(l, false, rec.config.tty))
            .collect()
    }

    /// A plain (not hijacked) attach: output only, as a byte stream.
    pub async fn attach_output(
        &self,
        name_or_id: &str,
        opts: AttachOptions,
    ) -> ApiResult<tokio::io::DuplexStream> {
        let rec = self.get(name_or_id)?;
        if !rec.state.status.is_running() {
            return Err(ApiError::conflict(
                "You cannot attach to a stopped container, start it first",
            ));
        }
        let req = Request::Attach {
            stdin: false,
            stdout: opts.stdout,
            stderr: opts.stderr,
        };
        let conn = shim::connect(&self.state_dir(&rec.id), &req)
            .await
            .map_err(|e| ApiError::internal(format!("attaching: {e}")))?;
        let (mut w, r) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let _ = attach::copy_output(conn, &mut w, opts.tty).await;
        });
        Ok(r)
    }

    // ---------------------------------------------------------------- logs

    /// `GET /containers/{id}/logs`: a channel of encoded chunks.
    pub fn logs(
        &self,
        name_or_id: &str,
        opts: logs::LogOptions,
    ) -> ApiResult<(bool, tokio::sync::mpsc::Receiver<bytes::Bytes>)> {
        let rec = self.get(name_or_id)?;
        if !opts.stdout && !opts.stderr {
            return Err(ApiError::invalid(
                "Bad parameters: you must choose at least one stream",
            ));
        }
        if rec.log_path.as_os_str().is_empty() {
            return Err(ApiError::invalid(
                "configured logging driver does not support reading",
            ));
        }
        let tty = rec.config.tty;
        let mut rx_events = self.subscribe(&rec.id)?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let path = rec.log_path.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut pending: Vec<u8> = Vec::new();
            let mut file: Option<tokio::fs::File> = None;
            let mut first = true;
            loop {
                if file.is_none() {
                    file = tokio::fs::File::open(&path).await.ok();
                }
                let mut got = 0;
                if let Some(f) = file.as_mut() {
                    let mut buf = Vec::new();
                    got = f.read_to_end(&mut buf).await.unwrap_or(0);
                    pending.extend_from_slice(&buf);
                }
                let complete = pending
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map(|i| i + 1)
                    .unwrap_or(0);
                let text: Vec<u8> = pending.drain(..complete).collect();
                let lines = logs::parse_lines(&String::from_utf8_lossy(&text));
                let selected = if first {
                    logs::select(lines, &opts)
                } else {
                    lines.into_iter().filter(|l| opts.wants(l)).collect()
                };
                first = false;
                for line in selected {
                    if tx
                        .send(logs::encode(&line, opts.timestamps, tty))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if !opts.follow {
                    return;
                }
                if opts.until.is_some_and(|u| u <= Utc::now()) {
                    return;
                }
                if got == 0 {
                    let ev = rx_events.borrow_and_update().clone();
                    if !ev.running || ev.removed {
                        // One last read happened above after the exit: done.
                        return;
                    }
                    let _ =
                        tokio::time::timeout(Duration::from_millis(100), rx_events.changed()).await;
                    if tx.is_closed() {
                        return;
                    }
                }
            }
        });
        Ok((tty, rx))
    }

    // ---------------------------------------------------------------- views

    fn summary(&self, rec: &ContainerRecord, size: bool, now: DateTime<Utc>) -> ContainerSummary {
        let (size_rw, size_root_fs) = if size { self.sizes(rec) } else { (None, None) };
        ContainerSummary {
            id: rec.id.clone(),
            names: vec![rec.name.clone()],
            image: rec.image.clone(),
            image_id: rec.image_id.clone(),
            command: rec.command_line(),
            created: rec.created.timestamp(),
            ports: self.net.summary_ports(rec),
            size_rw,
            size_root_fs,
            labels: rec.config.labels.clone(),
            state: rec.state.status.as_str().to_string(),
            status: rec.status_string(now),
            host_config: SummaryHostConfig {
                network_mode: rec.host_config.network_mode.clone(),
            },
            network_settings: serde_json::json!({ "Networks": {} }),
            mounts: self.api_mounts(rec),
        }
    }

    fn sizes(&self, rec: &ContainerRecord) -> (Option<i64>, Option<i64>) {
        let rw = dir_size(&self.container_dir(&rec.id).join("upper"));
        let image: i64 = self
            .images
            .layer_dirs(&rec.image_id)
            .map(|dirs| dirs.iter().map(|d| dir_size(d)).sum())
            .unwrap_or(0);
        (Some(rw), Some(rw + image))
    }

    /// `GET /containers/json`.
    pub fn list(&self, opts: &ListOptions) -> ApiResult<Vec<ContainerSummary>> {
        filters::validate(&opts.filters)?;
        let records: Vec<ContainerRecord> = self.lock().values().map(|e| e.rec.clone()).collect();
        let created_of = |v: &str| -> ApiResult<DateTime<Utc>> {
            let entries = self.lock();
            let id = resolve_in(&entries, v)?;
            Ok(entries[&id].rec.created)
        };
        let first = |k: &str| opts.filters.get(k).and_then(|v| v.first()).cloned();
        let before = first("before").map(|v| created_of(&v)).transpose()?;
        let since = first("since").map(|v| created_of(&v)).transpose()?;
        let mut ancestors = Vec::new();
        for a in opts.filters.get("ancestor").into_iter().flatten() {
            ancestors.push(a.clone());
            if let Ok(img) = self.images.resolve(a) {
                ancestors.push(img.id);
            }
        }
        let ctx = filters::Context {
            before,
            since,
            ancestors,
        };
        let mut out: Vec<&ContainerRecord> = records
            .iter()
            .filter(|r| {
                opts.all
                    || opts.limit > 0
                    || opts.filters.contains_key("status")
                    || r.state.status.is_running()
            })
            .filter(|r| filters::matches(&opts.filters, &ctx, r))
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.created));
        if opts.limit > 0 {
            out.truncate(opts.limit as usize);
        }
        let now = Utc::now();
        Ok(out
            .into_iter()
            .map(|r| self.summary(r, opts.size, now))
            .collect())
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, name_or_id: &str, size: bool) -> ApiResult<ContainerInspect> {
        let rec = self.get(name_or_id)?;
        let (size_rw, size_root_fs) = if size { self.sizes(&rec) } else { (None, None) };
        let dir = self.container_dir(&rec.id);
        let lower = self
            .images
            .layer_dirs(&rec.image_id)
            .map(|d| {
                d.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .unwrap_or_default();
        let mut gd = GraphDriver {
            name: "overlay2".into(),
            ..Default::default()
        };
        gd.data.insert("LowerDir".into(), lower);
        gd.data.insert(
            "MergedDir".into(),
            self.state_dir(&rec.id).join("rootfs").display().to_string(),
        );
        gd.data
            .insert("UpperDir".into(), dir.join("upper").display().to_string());
        gd.data
            .insert("WorkDir".into(), dir.join("work").display().to_string());
        Ok(ContainerInspect {
            id: rec.id.clone(),
            created: record::rfc3339_nanos(&rec.created),
            path: rec.path.clone(),
            args: rec.args.clone(),
            state: rec.api_state(),
            image: rec.image_id.clone(),
            resolv_conf_path: self.net.file_paths(&rec).0,
            hostname_path: self.net.file_paths(&rec).1,
            hosts_path: self.net.file_paths(&rec).2,
            log_path: rec.log_path.display().to_string(),
            name: rec.name.clone(),
            restart_count: rec.restart_count,
            driver: "overlay2".into(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: if rec.exec_ids.is_empty() {
                None
            } else {
                Some(rec.exec_ids.clone())
            },
            host_config: rec.host_config.clone(),
            graph_driver: gd,
            size_rw,
            size_root_fs,
            mounts: self.api_mounts(&rec),
            config: rec.config.clone(),
            network_settings: self.net.settings(&rec),
        })
    }

    pub(crate) fn add_exec_id(&self, id: &str, exec_id: &str) {
        if let Some(e) = self.lock().get_mut(id) {
            e.rec.exec_ids.push(exec_id.to_string());
        }
    }
}

fn label_matches(rec: &ContainerRecord, l: &str) -> bool {
    match l.split_once('=') {
        Some((k, v)) => rec.config.labels.get(k).is_some_and(|x| x == v),
        None => rec.config.labels.contains_key(l),
    }
}

/// `until` in prune filters: a unix timestamp or an RFC 3339 time.
fn parse_until(v: &str) -> ApiResult<DateTime<Utc>> {
    if let Some(t) = parse_time(v) {
        return Ok(t);
    }
    logs::parse_unix_time(v)?
        .ok_or_else(|| ApiError::invalid(format!("invalid filter 'until={v}'")))
}

/// `busybox` → `busybox:latest` for Docker's `No such image` message.
pub fn familiar_reference(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') || name.starts_with("sha256:") {
        name.to_string()
    } else {
        format!("{name}:latest")
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

/// The cgroup freezer, through the runtime.
mod freezer {
    use std::path::Path;

    pub fn set_frozen(state_dir: &Path, frozen: bool) -> Result<(), String> {
        berth_runtime::cgroup::set_frozen(state_dir, frozen).map_err(|e| e.to_string())
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
    use super::*;

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
        let config = Arc::new(DaemonConfig::for_tests(dir));
        std::fs::create_dir_all(&config.root).unwrap();
        let db = Arc::new(redb::Database::create(config.root.join("meta.db")).unwrap());
        let images = Arc::new(ImageStore::open(&config.root, db.clone()).unwrap());
        ContainerService::open(config, db, images).unwrap()
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
