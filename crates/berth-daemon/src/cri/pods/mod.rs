//! Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus and
//! ListPodSandbox, PodSandboxStats and ListPodSandboxStats ([`stats`]).
//!
//! A pod sandbox is a Berth container in the one container store (as dockershim made
//! them), whose ID is the PodSandboxId and whose name is dockershim's
//! `k8s_POD_<name>_<namespace>_<uid>_<attempt>`. It needs no image: its rootfs is its
//! empty writable layer, and its PID 1 is Berth's own pause
//! ([`berth_runtime::pause`]), holding the pod's network, IPC and UTS namespaces (and
//! PID, which the pod's containers join when the pod asks for a `POD` PID namespace).
//! Labels: [`labels`]. The pod's containers are Berth containers with
//! `NetworkMode`/`IpcMode` `container:<sandbox id>` (and `PidMode` with a `POD` PID
//! namespace) and `InternalOptions::uts_from` the sandbox.
//!
//! Pods get their addresses on the `berth-cri` bridge network ([`network`]), made on
//! first use, whose containers have no embedded DNS server: a pod's `resolv.conf` is
//! its DNS config. Live restore, reconcile and `docker ps` work for sandboxes as for any
//! container.

pub mod config;
pub mod labels;
mod network;
mod stats;
mod view;

use berth_api::ErrorKind;
use berth_cri_api::v1::*;
use tonic::Status;

use self::labels::is_sandbox;
use super::CriService;
use crate::containers::record::ContainerRecord;
use crate::error::{blocking, ApiError};

pub use self::network::POD_NETWORK;

/// How long a stopping pause gets before SIGKILL (it exits on SIGTERM at once).
const PAUSE_STOP_TIMEOUT: i64 = 2;

fn not_found(id: &str) -> Status {
    Status::not_found(format!(
        "an error occurred when try to find sandbox {id:?}: not found"
    ))
}

/// Whether `rec` belongs to the pod of sandbox `id` (shares its namespaces).
pub fn in_pod(rec: &ContainerRecord, id: &str) -> bool {
    let donor = format!("container:{id}");
    rec.id != id
        && (rec.host_config.network_mode == donor
            || rec.host_config.ipc_mode == donor
            || rec.host_config.pid_mode == donor
            || rec.internal.uts_from.as_deref() == Some(id))
}

impl CriService {
    /// The sandbox of a full ID or a unique ID prefix (as containerd resolves them).
    pub(crate) fn sandbox(&self, id: &str) -> Result<ContainerRecord, Status> {
        if id.is_empty() {
            return Err(Status::invalid_argument("sandbox id is required"));
        }
        let mut hits = self
            .daemon
            .containers
            .records_where(|r| is_sandbox(r) && r.id.starts_with(id));
        if let Some(exact) = hits.iter().position(|r| r.id == id) {
            return Ok(hits.swap_remove(exact));
        }
        match hits.len() {
            1 => Ok(hits.remove(0)),
            0 => Err(not_found(id)),
            _ => Err(Status::invalid_argument(format!(
                "multiple sandboxes found with prefix {id:?}"
            ))),
        }
    }

    pub(super) async fn pod_run(
        &self,
        req: RunPodSandboxRequest,
    ) -> Result<RunPodSandboxResponse, Status> {
        let config = req
            .config
            .ok_or_else(|| Status::invalid_argument("sandbox config must include metadata"))?;
        let create = config::sandbox_create(&config, &req.runtime_handler, POD_NETWORK)?;
        let host_net = create
            .body
            .host_config
            .as_ref()
            .is_some_and(|hc| hc.network_mode == "host");
        if !host_net {
            let net = self.daemon.networks.clone();
            let _t = berth_net::timing::Step::new("cri.runp.network");
            blocking(move || network::ensure(&net)).await?;
        }
        let containers = self.daemon.containers.clone();
        let name = create.name.clone();
        let t = berth_net::timing::Step::new("cri.runp.create");
        let made = blocking(move || {
            containers.create_internal(create.body, Some(&create.name), create.internal)
        })
        .await;
        drop(t);
        let id = match made {
            Ok(r) => r.id,
            Err(e) if e.kind == ErrorKind::Conflict => {
                let owner = self.daemon.containers.resolve(&name).unwrap_or_default();
                return Err(Status::already_exists(format!(
                    "failed to reserve sandbox name {name:?}: name {name:?} is reserved for {owner:?}"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = self.daemon.containers.start(&id).await {
            // Nothing is left of a sandbox that did not start.
            if let Err(rm) = self.daemon.containers.remove(&id, true).await {
                tracing::warn!(id, error = %rm.message, "removing a sandbox that did not start");
            }
            let msg = format!("failed to start sandbox {name:?}: {}", e.message);
            return Err(Status::new(Status::from(e).code(), msg));
        }
        Ok(RunPodSandboxResponse { pod_sandbox_id: id })
    }

    /// Stops the pod's containers (at once, as containerd does) and then its pause.
    /// Idempotent; an unknown ID is no error (as in containerd: critest's idempotence
    /// spec, and the kubelet retries stops of pods it has lost).
    pub(super) async fn pod_stop(
        &self,
        req: StopPodSandboxRequest,
    ) -> Result<StopPodSandboxResponse, Status> {
        let sandbox = match self.sandbox(&req.pod_sandbox_id) {
            Ok(s) => s,
            Err(e) if e.code() == tonic::Code::NotFound => return Ok(StopPodSandboxResponse {}),
            Err(e) => return Err(e),
        };
        self.stop_pod(&sandbox.id).await?;
        Ok(StopPodSandboxResponse {})
    }

    async fn stop_pod(&self, id: &str) -> Result<(), Status> {
        let members = self.daemon.containers.records_where(|r| in_pod(r, id));
        for c in members.iter().filter(|c| c.state.status.is_running()) {
            ignore_stopped(self.daemon.containers.stop(&c.id, Some(0), None).await)?;
        }
        ignore_stopped(
            self.daemon
                .containers
                .stop(id, Some(PAUSE_STOP_TIMEOUT), None)
                .await,
        )
    }

    /// Stops the pod, removes its containers and then the sandbox. An unknown ID is no
    /// error (as in containerd: the kubelet retries removals).
    pub(super) async fn pod_remove(
        &self,
        req: RemovePodSandboxRequest,
    ) -> Result<RemovePodSandboxResponse, Status> {
        let sandbox = match self.sandbox(&req.pod_sandbox_id) {
            Ok(s) => s,
            Err(e) if e.code() == tonic::Code::NotFound => return Ok(RemovePodSandboxResponse {}),
            Err(e) => return Err(e),
        };
        let id = sandbox.id;
        self.stop_pod(&id).await?;
        let members = self.daemon.containers.records_where(|r| in_pod(r, &id));
        for c in members {
            ignore_gone(self.daemon.containers.remove(&c.id, true).await)?;
        }
        ignore_gone(self.daemon.containers.remove(&id, true).await)?;
        Ok(RemovePodSandboxResponse {})
    }

    pub(super) async fn pod_status(
        &self,
        req: PodSandboxStatusRequest,
    ) -> Result<PodSandboxStatusResponse, Status> {
        let rec = self.sandbox(&req.pod_sandbox_id)?;
        let ip = self.pod_ip(&rec);
        Ok(view::status_response(&rec, ip, req.verbose))
    }

    pub(super) async fn pod_list(
        &self,
        req: ListPodSandboxRequest,
    ) -> Result<ListPodSandboxResponse, Status> {
        let filter = req.filter.unwrap_or_default();
        let mut items: Vec<PodSandbox> = self
            .daemon
            .containers
            .records_where(is_sandbox)
            .iter()
            .map(view::pod_sandbox)
            .filter(|p| view::filter_matches(&filter, p))
            .collect();
        items.sort_by_key(|p| std::cmp::Reverse(p.created_at));
        Ok(ListPodSandboxResponse { items })
    }

    /// The pod's IPv4 address on the pod network (none with the node's network, or
    /// when the pod is not ready).
    fn pod_ip(&self, rec: &ContainerRecord) -> String {
        if rec.host_config.network_mode == "host" || !rec.state.status.is_running() {
            return String::new();
        }
        let settings = self.daemon.networks.settings(rec);
        settings
            .networks
            .get(POD_NETWORK)
            .map(|e| e.ip_address.clone())
            .filter(|ip| !ip.is_empty())
            .unwrap_or(settings.ip_address)
    }

    /// `NetworkReady`: pods get addresses while Berth's bridge networking is on.
    pub(super) fn pod_network_status(&self) -> Result<(), (String, String)> {
        if self.daemon.networks.enabled {
            Ok(())
        } else {
            Err((
                "NetworkPluginNotReady".into(),
                "bridge networking is disabled (--bridge-name none): pods can only use the node's network".into(),
            ))
        }
    }
}

/// A stop of what is already stopped is done.
fn ignore_stopped(r: Result<(), ApiError>) -> Result<(), Status> {
    match r {
        Err(e) if matches!(e.kind, ErrorKind::NotModified | ErrorKind::NotFound) => Ok(()),
        other => other.map_err(Status::from),
    }
}

/// A removal of what is gone is done.
fn ignore_gone(r: Result<(), ApiError>) -> Result<(), Status> {
    match r {
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        other => other.map_err(Status::from),
    }
}
