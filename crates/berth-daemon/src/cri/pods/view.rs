//! A sandbox container as CRI shows it: `PodSandbox` (lists) and `PodSandboxStatus`.

use std::collections::HashMap;

use berth_cri_api::v1::{
    LinuxPodSandboxStatus, Namespace, NamespaceMode, NamespaceOption, PodSandbox, PodSandboxFilter,
    PodSandboxNetworkStatus, PodSandboxState, PodSandboxStatus, PodSandboxStatusResponse,
};

use super::config::selector_matches;
use super::labels;
use crate::containers::record::ContainerRecord;

/// READY while the pause runs.
pub fn state(rec: &ContainerRecord) -> PodSandboxState {
    if rec.state.status.is_running() {
        PodSandboxState::SandboxReady
    } else {
        PodSandboxState::SandboxNotready
    }
}

fn created_ns(rec: &ContainerRecord) -> i64 {
    rec.created.timestamp_nanos_opt().unwrap_or_default()
}

pub fn pod_sandbox(rec: &ContainerRecord) -> PodSandbox {
    PodSandbox {
        id: rec.id.clone(),
        metadata: Some(labels::metadata(rec)),
        state: state(rec) as i32,
        created_at: created_ns(rec),
        labels: labels::pod_labels(rec),
        annotations: labels::annotations(rec),
        runtime_handler: String::new(),
    }
}

/// ListPodSandbox's filter: ID (a prefix), state, label selector.
pub fn filter_matches(f: &PodSandboxFilter, p: &PodSandbox) -> bool {
    (f.id.is_empty() || p.id.starts_with(&f.id))
        && f.state.as_ref().is_none_or(|s| s.state == p.state)
        && selector_matches(&f.label_selector, &p.labels)
}

/// The namespace modes the pod was made with.
fn namespaces(rec: &ContainerRecord) -> NamespaceOption {
    let hc = &rec.host_config;
    let node_or_pod = |node: bool| {
        if node {
            NamespaceMode::Node
        } else {
            NamespaceMode::Pod
        }
    };
    let pid = match rec.config.labels.get(labels::PID_MODE).map(String::as_str) {
        Some(m) => NamespaceMode::from_str_name(m).unwrap_or(NamespaceMode::Pod),
        None => node_or_pod(hc.pid_mode == "host"),
    };
    NamespaceOption {
        network: node_or_pod(hc.network_mode == "host") as i32,
        pid: pid as i32,
        ipc: node_or_pod(hc.ipc_mode == "host") as i32,
        ..Default::default()
    }
}

pub fn status_response(
    rec: &ContainerRecord,
    ip: String,
    verbose: bool,
) -> PodSandboxStatusResponse {
    let p = pod_sandbox(rec);
    let status = PodSandboxStatus {
        id: p.id,
        metadata: p.metadata,
        state: p.state,
        created_at: p.created_at,
        network: Some(PodSandboxNetworkStatus {
            ip,
            additional_ips: Vec::new(),
        }),
        linux: Some(LinuxPodSandboxStatus {
            namespaces: Some(Namespace {
                options: Some(namespaces(rec)),
            }),
        }),
        labels: p.labels,
        annotations: p.annotations,
        runtime_handler: p.runtime_handler,
    };
    let mut info = HashMap::new();
    if verbose {
        // what `crictl inspectp` shows under "info"
        let detail = serde_json::json!({
            "pid": rec.state.pid,
            "name": rec.name.trim_start_matches('/'),
            "hostname": rec.config.hostname,
            "networkMode": rec.host_config.network_mode,
            "cgroupParent": rec.host_config.cgroup_parent,
            "privileged": rec.host_config.privileged,
            "sysctls": rec.host_config.sysctls,
            "dns": {
                "servers": rec.host_config.dns,
                "searches": rec.host_config.dns_search,
                "options": rec.host_config.dns_options,
            },
            "portBindings": rec.host_config.port_bindings,
        });
        info.insert("info".to_string(), detail.to_string());
    }
    PodSandboxStatusResponse {
        status: Some(status),
        info,
        containers_statuses: Vec::new(),
        timestamp: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::record::Status;
    use berth_cri_api::v1::PodSandboxStateValue;

    fn rec(id: &str, running: bool, app: &str) -> ContainerRecord {
        let mut r = ContainerRecord {
            id: id.into(),
            ..Default::default()
        };
        r.internal.pause = true;
        r.config
            .labels
            .insert(labels::POD_LABELS.into(), format!("{{\"app\":\"{app}\"}}"));
        r.config
            .labels
            .insert(labels::PID_MODE.into(), "CONTAINER".into());
        if running {
            r.state.status = Status::Running;
        }
        r
    }

    #[test]
    fn filters_by_prefix_state_and_labels() {
        let a = pod_sandbox(&rec("abc1", true, "web"));
        let b = pod_sandbox(&rec("abd2", false, "db"));
        let mut f = PodSandboxFilter {
            id: "ab".into(),
            ..Default::default()
        };
        assert!(filter_matches(&f, &a) && filter_matches(&f, &b));
        f.state = Some(PodSandboxStateValue {
            state: PodSandboxState::SandboxReady as i32,
        });
        assert!(filter_matches(&f, &a) && !filter_matches(&f, &b));
        f.state = None;
        f.label_selector = [("app".to_string(), "db".to_string())].into();
        assert!(!filter_matches(&f, &a) && filter_matches(&f, &b));
        f.id = "abc".into();
        assert!(!filter_matches(&f, &b));
    }

    #[test]
    fn status_shows_the_namespace_modes() {
        let mut r = rec("x", true, "a");
        r.host_config.network_mode = "host".into();
        let s = status_response(&r, String::new(), true);
        let st = s.status.unwrap();
        let ns = st.linux.unwrap().namespaces.unwrap().options.unwrap();
        assert_eq!(ns.network, NamespaceMode::Node as i32);
        assert_eq!(ns.pid, NamespaceMode::Container as i32);
        assert_eq!(ns.ipc, NamespaceMode::Pod as i32);
        assert_eq!(st.state, PodSandboxState::SandboxReady as i32);
        assert!(s.info.contains_key("info"));
    }
}
