//! What a sandbox container carries as labels, and the CRI views read back from them.
//!
//! A pod sandbox is a Berth container labelled:
//! - [`SANDBOX`]`=true`;
//! - the pod's labels verbatim, and [`POD_NAME`], [`POD_NAMESPACE`], [`POD_UID`] from
//!   its metadata (what the kubelet sets too), plus [`ATTEMPT`];
//! - each annotation `K=V` as the label [`ANNOTATION_PREFIX`]`K=V`;
//! - [`POD_LABELS`]: the pod's own labels as JSON, so that the CRI view shows exactly
//!   them (not the metadata labels Berth added);
//! - [`LOG_DIRECTORY`] (the kubelet's `log_directory`, where the pod's containers log)
//!   and [`PID_MODE`] (the PID namespace mode asked for).

use std::collections::{BTreeMap, HashMap};

use berth_cri_api::v1::{PodSandboxConfig, PodSandboxMetadata};

use crate::containers::record::ContainerRecord;

pub const SANDBOX: &str = "io.berth.cri.sandbox";
pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const ATTEMPT: &str = "io.berth.cri.attempt";
pub const ANNOTATION_PREFIX: &str = "io.berth.cri.annotation.";
pub const POD_LABELS: &str = "io.berth.cri.pod-labels";
pub const LOG_DIRECTORY: &str = "io.berth.cri.log-directory";
pub const PID_MODE: &str = "io.berth.cri.pid-mode";

/// The labels of the sandbox container of `config`.
pub fn sandbox_labels(
    config: &PodSandboxConfig,
    meta: &PodSandboxMetadata,
    pid_mode: &str,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = config
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let own: BTreeMap<&String, &String> = config.labels.iter().collect();
    out.insert(
        POD_LABELS.into(),
        serde_json::to_string(&own).unwrap_or_else(|_| "{}".into()),
    );
    for (k, v) in &config.annotations {
        out.insert(format!("{ANNOTATION_PREFIX}{k}"), v.clone());
    }
    out.insert(SANDBOX.into(), "true".into());
    out.insert(POD_NAME.into(), meta.name.clone());
    out.insert(POD_NAMESPACE.into(), meta.namespace.clone());
    out.insert(POD_UID.into(), meta.uid.clone());
    out.insert(ATTEMPT.into(), meta.attempt.to_string());
    out.insert(PID_MODE.into(), pid_mode.into());
    if !config.log_directory.is_empty() {
        out.insert(LOG_DIRECTORY.into(), config.log_directory.clone());
    }
    out
}

/// Whether the container is a pod sandbox.
pub fn is_sandbox(rec: &ContainerRecord) -> bool {
    rec.internal.pause && rec.config.labels.get(SANDBOX).map(String::as_str) == Some("true")
}

fn label<'a>(rec: &'a ContainerRecord, key: &str) -> &'a str {
    rec.config.labels.get(key).map(String::as_str).unwrap_or("")
}

pub fn metadata(rec: &ContainerRecord) -> PodSandboxMetadata {
    PodSandboxMetadata {
        name: label(rec, POD_NAME).into(),
        uid: label(rec, POD_UID).into(),
        namespace: label(rec, POD_NAMESPACE).into(),
        attempt: label(rec, ATTEMPT).parse().unwrap_or(0),
    }
}

/// The pod's own labels.
pub fn pod_labels(rec: &ContainerRecord) -> HashMap<String, String> {
    serde_json::from_str(label(rec, POD_LABELS)).unwrap_or_default()
}

/// The pod's annotations.
pub fn annotations(rec: &ContainerRecord) -> HashMap<String, String> {
    prefixed(&rec.config.labels, ANNOTATION_PREFIX)
}

/// The labels under `prefix`, without it (a pod's or a container's annotations).
pub fn prefixed(labels: &BTreeMap<String, String>, prefix: &str) -> HashMap<String, String> {
    labels
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_annotations_come_back_as_given() {
        let meta = PodSandboxMetadata {
            name: "p".into(),
            uid: "u".into(),
            namespace: "ns".into(),
            attempt: 3,
        };
        let config = PodSandboxConfig {
            labels: [("app".to_string(), "web".to_string())].into(),
            annotations: [("a/b".to_string(), "c".to_string())].into(),
            log_directory: "/var/log/pods/x".into(),
            ..Default::default()
        };
        let mut rec = ContainerRecord::default();
        rec.config.labels = sandbox_labels(&config, &meta, "POD");
        rec.internal.pause = true;
        assert!(is_sandbox(&rec));
        assert_eq!(pod_labels(&rec), config.labels);
        assert_eq!(annotations(&rec), config.annotations);
        assert_eq!(metadata(&rec), meta);
        assert_eq!(rec.config.labels[POD_NAMESPACE], "ns");
        assert_eq!(rec.config.labels[LOG_DIRECTORY], "/var/log/pods/x");
    }
}
