//! CreateContainer, StartContainer, StopContainer, RemoveContainer,
//! UpdateContainerResources and ReopenContainerLog on the daemon's container service.

use std::path::{Path, PathBuf};

use berth_api::ErrorKind;
use berth_cri_api::v1::*;
use tonic::Status;

use super::config::{self, Pod};
use super::{find, labels};
use crate::containers::record::{InternalOptions, Status as State};
use crate::cri::CriService;
use crate::state::Daemon;

/// The pod sandbox `id` (a Berth container labelled as one), as the container sees it.
fn sandbox(d: &Daemon, id: &str, cfg: Option<&PodSandboxConfig>) -> Result<Pod, Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument("missing required pod_sandbox_id"));
    }
    let missing = || Status::not_found(format!("failed to find sandbox id {id:?}: not found"));
    let rec = d.containers.get(id).map_err(|_| missing())?;
    if !rec.id.starts_with(id) || !labels::is_sandbox(&rec) {
        return Err(missing());
    }
    let l = &rec.config.labels;
    let meta = cfg.and_then(|c| c.metadata.clone()).unwrap_or_default();
    let pick = |key: &str, fallback: &str| {
        l.get(key)
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| fallback.to_string())
    };
    Ok(Pod {
        sandbox_id: rec.id.clone(),
        name: pick(labels::POD_NAME, &meta.name),
        namespace: pick(labels::POD_NAMESPACE, &meta.namespace),
        uid: pick(labels::POD_UID, &meta.uid),
        log_directory: pick(labels::LOG_DIRECTORY, ""),
    })
}

/// Host directories of bind mounts that do not exist yet, created as containerd does;
/// returned so that a failed create can take them away again.
fn make_missing_sources(body: &berth_api::ContainerCreateBody) -> Result<Vec<PathBuf>, Status> {
    let mut made = Vec::new();
    let mounts = body.host_config.as_ref().map(|h| h.mounts.as_slice());
    for m in mounts.unwrap_or_default() {
        let Some(src) = m.get("Source").and_then(|s| s.as_str()) else {
            continue;
        };
        let path = Path::new(src);
        if path.symlink_metadata().is_ok() {
            continue;
        }
        // The topmost missing ancestor is what to remove on failure.
        let mut top = path.to_path_buf();
        while let Some(parent) = top.parent() {
            if parent.symlink_metadata().is_ok() {
                break;
            }
            top = parent.to_path_buf();
        }
        if let Err(e) = std::fs::create_dir_all(path) {
            remove_made(&made);
            return Err(Status::internal(format!(
                "failed to create host path {src:?}: {e}"
            )));
        }
        made.push(top);
    }
    Ok(made)
}

fn remove_made(made: &[PathBuf]) {
    for p in made {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// An error of the container service with the codes containerd gives.
fn status_of(e: crate::error::ApiError) -> Status {
    match e.kind {
        ErrorKind::NotFound => Status::not_found(e.message),
        ErrorKind::InvalidArgument => Status::invalid_argument(e.message),
        ErrorKind::Conflict => Status::failed_precondition(e.message),
        _ => Status::unknown(e.message),
    }
}

impl CriService {
    pub async fn create_container(
        &self,
        req: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, Status> {
        let cfg = req
            .config
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("container config is required"))?;
        let pod = sandbox(
            &self.daemon,
            &req.pod_sandbox_id,
            req.sandbox_config.as_ref(),
        )?;
        let plan = config::plan(cfg, &pod, req.sandbox_config.as_ref(), &|p| {
            std::fs::read_to_string(p)
        })?;
        let image = plan.body.config.image.clone();
        let images = self.daemon.images.clone();
        let t = berth_net::timing::Step::new("cri.create.image");
        let resolved = tokio::task::spawn_blocking(move || images.resolve(&image))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        drop(t);
        if let Err(e) = resolved {
            let image = &plan.body.config.image;
            return Err(match e.kind() {
                ErrorKind::NotFound => {
                    Status::not_found(format!("failed to resolve image {image:?}: not found"))
                }
                _ => Status::unknown(format!("failed to resolve image {image:?}: {e}")),
            });
        }
        // Devices are looked at now, as containerd builds its spec at create.
        for dev in &cfg.devices {
            if let Err(e) = std::fs::metadata(&dev.host_path) {
                return Err(Status::invalid_argument(format!(
                    "failed to add device {:?}: {e}",
                    dev.host_path
                )));
            }
        }
        let made = make_missing_sources(&plan.body)?;
        let svc = self.daemon.containers.clone();
        let (body, name) = (plan.body, plan.name.clone());
        // The pod's hostname: the sandbox's UTS namespace. The CRI log goes into the
        // record's first write (no second write after create that a crash could miss).
        let internal = InternalOptions {
            uts_from: Some(pod.sandbox_id.clone()),
            cri_log: plan.log_path,
            ..Default::default()
        };
        let t = berth_net::timing::Step::new("cri.create.record");
        let created = crate::error::in_place(|| svc.create_internal(body, Some(&name), internal));
        drop(t);
        let id = match created {
            Ok(r) => r.id,
            Err(e) => {
                remove_made(&made);
                return Err(match e.kind {
                    ErrorKind::Conflict => Status::already_exists(format!(
                        "failed to reserve container name {:?}: {}",
                        plan.name, e.message
                    )),
                    _ => status_of(e),
                });
            }
        };
        Ok(CreateContainerResponse { container_id: id })
    }

    pub async fn start_container(&self, req: StartContainerRequest) -> Result<(), Status> {
        let rec = find(&self.daemon, &req.container_id)?;
        if rec.state.status != State::Created || rec.state.started_at.is_some() {
            return Err(Status::failed_precondition(format!(
                "container {} is in {} state, not created",
                rec.id,
                super::status::state_name(&rec)
            )));
        }
        let sandbox = labels::sandbox_id(&rec);
        match self.daemon.containers.get(&sandbox) {
            Ok(s) if s.state.status.is_running() => {}
            _ => {
                return Err(Status::failed_precondition(format!(
                    "sandbox container {sandbox:?} is not running"
                )))
            }
        }
        self.daemon.containers.start(&rec.id).await.map_err(|e| {
            Status::unknown(format!(
                "failed to start container {:?}: {}",
                rec.id, e.message
            ))
        })
    }

    /// Idempotent: an unknown container is already stopped (containerd answers success).
    pub async fn stop_container(&self, req: StopContainerRequest) -> Result<(), Status> {
        let rec = match find(&self.daemon, &req.container_id) {
            Ok(r) => r,
            Err(e) if e.code() == tonic::Code::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if !rec.state.status.is_running() {
            return Ok(());
        }
        match self
            .daemon
            .containers
            .stop(&rec.id, Some(req.timeout.max(0)), None)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind == ErrorKind::NotModified || e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Status::unknown(format!(
                "failed to stop container {:?}: {}",
                rec.id, e.message
            ))),
        }
    }

    /// Idempotent: an unknown container is already removed. A running one is killed.
    pub async fn remove_container(&self, req: RemoveContainerRequest) -> Result<(), Status> {
        let rec = match find(&self.daemon, &req.container_id) {
            Ok(r) => r,
            Err(e) if e.code() == tonic::Code::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.daemon.containers.remove(&rec.id, true).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Status::unknown(format!(
                "failed to remove container {:?}: {}",
                rec.id, e.message
            ))),
        }
    }

    pub async fn update_container_resources(
        &self,
        req: UpdateContainerResourcesRequest,
    ) -> Result<(), Status> {
        let rec = find(&self.daemon, &req.container_id)?;
        if req.windows.is_some() {
            return Err(Status::invalid_argument(
                "windows resources are not supported on Linux",
            ));
        }
        let Some(r) = req.linux else {
            return Ok(());
        };
        let mut hc = rec.host_config.clone();
        config::resources(&mut hc, &r)?;
        if hc.oom_score_adj != rec.host_config.oom_score_adj {
            return Err(Status::invalid_argument(
                "oom_score_adj cannot be changed on an existing container",
            ));
        }
        let body = berth_api::ContainerUpdateBody {
            cpu_period: hc.cpu_period,
            cpu_quota: hc.cpu_quota,
            cpu_shares: hc.cpu_shares,
            memory: hc.memory,
            memory_swap: hc.memory_swap,
            cpuset_cpus: hc.cpuset_cpus,
            cpuset_mems: hc.cpuset_mems,
            ..Default::default()
        };
        let svc = self.daemon.containers.clone();
        crate::error::in_place(|| svc.update(&rec.id, body))
            .map(|_| ())
            .map_err(|e| match e.kind {
                ErrorKind::InvalidArgument => Status::invalid_argument(e.message),
                _ => Status::unknown(format!(
                    "failed to update resources of container {:?}: {}",
                    rec.id, e.message
                )),
            })
    }

    pub async fn reopen_container_log(&self, req: ReopenContainerLogRequest) -> Result<(), Status> {
        let rec = find(&self.daemon, &req.container_id)?;
        if !rec.state.status.is_running() {
            return Err(Status::failed_precondition(
                "can't reopen log for a non-running container",
            ));
        }
        if rec.host_config.log_config.kind != crate::containers::log_config::CRI_DRIVER {
            return Err(Status::failed_precondition(format!(
                "container {} has no CRI log file",
                rec.id
            )));
        }
        self.daemon
            .containers
            .reopen_log(&rec.id)
            .await
            .map_err(|e| Status::unknown(e.message))
    }
}
