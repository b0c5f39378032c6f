//! ContainerStatus and ListContainers: Berth records seen as CRI containers.

use std::collections::HashMap;

use berth_cri_api::v1::*;
use tonic::Status;

use super::{find, labels, resolve_prefix};
use crate::containers::record::{ContainerRecord, Status as State};
use crate::cri::CriService;

fn nanos(t: &chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(0)
}

/// The CRI state of a record. A start that failed leaves Docker's `created` with an
/// error: CRI calls that EXITED (containerd: reason `StartError`).
pub fn state(rec: &ContainerRecord) -> ContainerState {
    match rec.state.status {
        State::Created if !rec.state.error.is_empty() => ContainerState::ContainerExited,
        State::Created => ContainerState::ContainerCreated,
        State::Running | State::Paused | State::Restarting => ContainerState::ContainerRunning,
        State::Exited | State::Dead | State::Removing => ContainerState::ContainerExited,
    }
}

pub fn state_name(rec: &ContainerRecord) -> &'static str {
    state(rec).as_str_name()
}

/// `(reason, message)` as containerd gives them.
fn reason(rec: &ContainerRecord) -> (String, String) {
    let s = &rec.state;
    match state(rec) {
        ContainerState::ContainerExited if rec.state.status == State::Created => {
            ("StartError".into(), s.error.clone())
        }
        ContainerState::ContainerExited => {
            let why = if s.oom_killed {
                "OOMKilled"
            } else if s.exit_code == 0 {
                "Completed"
            } else {
                "Error"
            };
            (why.into(), s.error.clone())
        }
        _ => (String::new(), String::new()),
    }
}

/// The image as the status shows it: its first tag and first repo digest (else its ID),
/// as containerd; the store is asked once per call.
struct ImageNames {
    tag: Option<String>,
    image_ref: String,
}

fn image_names(d: &crate::state::Daemon, rec: &ContainerRecord) -> ImageNames {
    match d.images.inspect(&rec.image_id) {
        Ok(i) => ImageNames {
            tag: i.repo_tags.first().cloned(),
            image_ref: i
                .repo_digests
                .first()
                .cloned()
                .unwrap_or(rec.image_id.clone()),
        },
        Err(_) => ImageNames {
            tag: None,
            image_ref: rec.image_id.clone(),
        },
    }
}

fn mounts(rec: &ContainerRecord) -> Vec<Mount> {
    rec.mount_points
        .iter()
        .map(|m| Mount {
            container_path: m.destination.clone(),
            host_path: if m.kind == "image" {
                String::new()
            } else {
                m.source.clone()
            },
            // an image volume: the image as asked for and its ID (what PullImage gave)
            image: (m.kind == "image").then(|| ImageSpec {
                image: m.source.clone(),
                image_ref: m.name.clone(),
                ..Default::default()
            }),
            image_sub_path: if m.kind == "image" {
                m.subpath.clone()
            } else {
                String::new()
            },
            readonly: !m.rw,
            propagation: match m.propagation.as_str() {
                "rslave" | "slave" => MountPropagation::PropagationHostToContainer,
                "rshared" | "shared" => MountPropagation::PropagationBidirectional,
                _ => MountPropagation::PropagationPrivate,
            } as i32,
            ..Default::default()
        })
        .collect()
}

pub fn to_container(rec: &ContainerRecord) -> Container {
    Container {
        id: rec.id.clone(),
        pod_sandbox_id: labels::sandbox_id(rec),
        metadata: Some(labels::metadata(rec)),
        image: Some(ImageSpec {
            image: labels::image(rec),
            ..Default::default()
        }),
        image_ref: rec.image_id.clone(),
        image_id: rec.image_id.clone(),
        state: state(rec) as i32,
        created_at: nanos(&rec.created),
        labels: labels::cri_labels(rec),
        annotations: labels::cri_annotations(rec),
    }
}

fn to_status(d: &crate::state::Daemon, rec: &ContainerRecord) -> ContainerStatus {
    let names = image_names(d, rec);
    let layers = d.images.layer_dirs(&rec.image_id).ok();
    let (reason, message) = reason(rec);
    let s = &rec.state;
    let finished = state(rec) == ContainerState::ContainerExited;
    ContainerStatus {
        id: rec.id.clone(),
        metadata: Some(labels::metadata(rec)),
        state: state(rec) as i32,
        created_at: nanos(&rec.created),
        started_at: s.started_at.as_ref().map(nanos).unwrap_or(0),
        finished_at: match (finished, &s.finished_at) {
            (true, Some(t)) => nanos(t),
            (true, None) => nanos(&rec.created),
            _ => 0,
        },
        exit_code: if finished { s.exit_code as i32 } else { 0 },
        image: Some(ImageSpec {
            image: names.tag.unwrap_or_else(|| labels::image(rec)),
            ..Default::default()
        }),
        image_ref: names.image_ref,
        image_id: rec.image_id.clone(),
        reason,
        message,
        labels: labels::cri_labels(rec),
        annotations: labels::cri_annotations(rec),
        mounts: mounts(rec),
        log_path: if rec.host_config.log_config.kind == crate::containers::log_config::CRI_DRIVER {
            rec.log_path.display().to_string()
        } else {
            String::new()
        },
        resources: Some(ContainerResources {
            linux: Some(LinuxContainerResources {
                cpu_period: rec.host_config.cpu_period,
                cpu_quota: rec.host_config.cpu_quota,
                cpu_shares: rec.host_config.cpu_shares,
                memory_limit_in_bytes: rec.host_config.memory,
                oom_score_adj: rec.host_config.oom_score_adj,
                cpuset_cpus: rec.host_config.cpuset_cpus.clone(),
                cpuset_mems: rec.host_config.cpuset_mems.clone(),
                memory_swap_limit_in_bytes: rec.host_config.memory_swap,
                ..Default::default()
            }),
            windows: None,
        }),
        user: Some(super::user::container_user(layers.as_deref(), rec)),
    }
}

/// Whether `rec` passes the filter (IDs already resolved from prefixes).
fn matches(f: &ContainerFilter, rec: &ContainerRecord) -> bool {
    if !f.id.is_empty() && rec.id != f.id {
        return false;
    }
    if let Some(s) = &f.state {
        if state(rec) as i32 != s.state {
            return false;
        }
    }
    if !f.pod_sandbox_id.is_empty() && labels::sandbox_id(rec) != f.pod_sandbox_id {
        return false;
    }
    if !f.label_selector.is_empty() {
        let l = labels::cri_labels(rec);
        if !f.label_selector.iter().all(|(k, v)| l.get(k) == Some(v)) {
            return false;
        }
    }
    true
}

impl CriService {
    pub async fn container_status(
        &self,
        req: ContainerStatusRequest,
    ) -> Result<ContainerStatusResponse, Status> {
        let rec = find(&self.daemon, &req.container_id)?;
        let d = self.daemon.clone();
        let status = crate::error::in_place(|| to_status(&d, &rec));
        let mut info = HashMap::new();
        if req.verbose {
            let v = serde_json::json!({
                "pid": rec.state.pid,
                "sandboxID": labels::sandbox_id(&rec),
                "config": rec.config,
                "hostConfig": rec.host_config,
            });
            info.insert("info".to_string(), v.to_string());
        }
        Ok(ContainerStatusResponse {
            status: Some(status),
            info,
        })
    }

    pub async fn list_containers(
        &self,
        req: ListContainersRequest,
    ) -> Result<ListContainersResponse, Status> {
        let mut f = req.filter.unwrap_or_default();
        // Prefixes name the one container or sandbox they match, as containerd's index.
        if !f.id.is_empty() {
            match resolve_prefix(&self.daemon, &f.id) {
                Some(id) => f.id = id,
                None => return Ok(ListContainersResponse::default()),
            }
        }
        if !f.pod_sandbox_id.is_empty() {
            let found = self
                .daemon
                .containers
                .records_where(|r| r.id.starts_with(&f.pod_sandbox_id) && labels::is_sandbox(r));
            if found.len() == 1 {
                f.pod_sandbox_id = found[0].id.clone();
            }
        }
        let mut recs = self
            .daemon
            .containers
            .records_where(|r| labels::is_cri_container(r) && matches(&f, r));
        recs.sort_by_key(|a| a.created);
        Ok(ListContainersResponse {
            containers: recs.iter().map(to_container).collect(),
        })
    }
}
