//! How a CRI container is written down on its Berth container: labels only, so the one
//! record (and `docker inspect`) holds everything, and live restore needs nothing else.

use std::collections::HashMap;

use berth_cri_api::v1::ContainerMetadata;

use crate::containers::record::ContainerRecord;
use crate::cri::pods::labels::prefixed;

/// `true` on every container made through CRI `CreateContainer`.
pub const CRI_CONTAINER: &str = "io.berth.cri.container";
/// The pod sandbox the container belongs to (dockershim's label name).
pub const SANDBOX_ID: &str = "io.kubernetes.sandbox.id";
/// The pod's names, the annotation prefix and (on the sandbox) the kubelet's
/// `log_directory` are labelled as on the sandbox.
pub use crate::cri::pods::labels::{
    ANNOTATION_PREFIX, LOG_DIRECTORY, POD_NAME, POD_NAMESPACE, POD_UID,
};
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// `ContainerMetadata.attempt`.
pub const ATTEMPT: &str = "io.berth.cri.container.attempt";
/// The image as the request named it (`ImageSpec.image`).
pub const IMAGE: &str = "io.berth.cri.container.image";
/// The CRI labels and annotations, each under its prefix.
pub const LABEL_PREFIX: &str = "io.berth.cri.label.";

/// Whether `rec` is a CRI container.
pub fn is_cri_container(rec: &ContainerRecord) -> bool {
    rec.config.labels.get(CRI_CONTAINER).map(String::as_str) == Some("true")
}

/// Whether `rec` is a pod sandbox: the pods side's one test (Berth's pause, labelled as
/// a sandbox); a label alone, which any Docker client can set, makes none.
pub use crate::cri::pods::labels::is_sandbox;

/// The CRI labels the container was created with.
pub fn cri_labels(rec: &ContainerRecord) -> HashMap<String, String> {
    prefixed(&rec.config.labels, LABEL_PREFIX)
}

/// The CRI annotations the container was created with.
pub fn cri_annotations(rec: &ContainerRecord) -> HashMap<String, String> {
    prefixed(&rec.config.labels, ANNOTATION_PREFIX)
}

pub fn sandbox_id(rec: &ContainerRecord) -> String {
    rec.config
        .labels
        .get(SANDBOX_ID)
        .cloned()
        .unwrap_or_default()
}

pub fn metadata(rec: &ContainerRecord) -> ContainerMetadata {
    let l = &rec.config.labels;
    ContainerMetadata {
        name: l.get(CONTAINER_NAME).cloned().unwrap_or_default(),
        attempt: l.get(ATTEMPT).and_then(|a| a.parse().ok()).unwrap_or(0),
    }
}

/// The image as the request named it (else as the record has it).
pub fn image(rec: &ContainerRecord) -> String {
    rec.config
        .labels
        .get(IMAGE)
        .cloned()
        .unwrap_or_else(|| rec.image.clone())
}
