//! CRI containers: a CRI container is a Berth container in the one store, joined to its
//! pod sandbox's namespaces (`container:<sandbox id>` network, IPC and, for a POD PID
//! namespace, PID) and labelled `io.berth.cri.container=true` (see [`labels`]).
//!
//! - [`config`]: `ContainerConfig` → Docker create body (the one translation).
//! - [`lifecycle`]: Create, Start, Stop, Remove, UpdateContainerResources,
//!   ReopenContainerLog.
//! - [`status`]: ContainerStatus and ListContainers (records → CRI); [`user`] its `user`.
//! - [`stats`]: ContainerStats and ListContainerStats.
//! - [`exec_sync`]: ExecSync (Exec and Attach are the streaming server's).

mod config;
mod exec_sync;
pub mod labels;
mod lifecycle;
mod stats;
mod status;
mod user;

use tonic::Status;

use crate::containers::record::ContainerRecord;
use crate::state::Daemon;

/// containerd's text for an unknown container.
pub fn not_found(id: &str) -> Status {
    Status::not_found(format!(
        "an error occurred when try to find container {id:?}: not found"
    ))
}

/// The CRI container `id` (a full ID or a unique prefix of one, as containerd's index).
pub fn find(d: &Daemon, id: &str) -> Result<ContainerRecord, Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument("missing required container_id"));
    }
    let rec = d.containers.get(id).map_err(|_| not_found(id))?;
    if !rec.id.starts_with(id) || !labels::is_cri_container(&rec) {
        return Err(not_found(id));
    }
    Ok(rec)
}

/// The full ID of the CRI container `prefix`, if exactly one has it.
pub fn resolve_prefix(d: &Daemon, prefix: &str) -> Option<String> {
    let found = d
        .containers
        .records_where(|r| r.id.starts_with(prefix) && labels::is_cri_container(r));
    (found.len() == 1).then(|| found[0].id.clone())
}
