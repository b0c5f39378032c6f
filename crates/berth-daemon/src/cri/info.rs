//! Version, Status and RuntimeConfig: what the kubelet asks first.

use berth_cri_api::v1::{
    CgroupDriver, LinuxRuntimeConfiguration, RuntimeCondition, RuntimeConfigResponse,
    RuntimeStatus, StatusResponse, VersionResponse,
};

/// The kubelet's CRI API version string (what containerd and CRI-O answer too).
const KUBE_API_VERSION: &str = "0.1.0";
/// The name the kubelet shows as the node's container runtime.
pub const RUNTIME_NAME: &str = "berth";
/// The CRI API version served.
const RUNTIME_API_VERSION: &str = "v1";

pub fn version() -> VersionResponse {
    VersionResponse {
        version: KUBE_API_VERSION.into(),
        runtime_name: RUNTIME_NAME.into(),
        runtime_version: env!("CARGO_PKG_VERSION").into(),
        runtime_api_version: RUNTIME_API_VERSION.into(),
    }
}

/// One condition; a false one carries a reason and message (as the kubelet shows them).
fn condition(kind: &str, ready: Result<(), (String, String)>) -> RuntimeCondition {
    match ready {
        Ok(()) => RuntimeCondition {
            r#type: kind.into(),
            status: true,
            reason: String::new(),
            message: String::new(),
        },
        Err((reason, message)) => RuntimeCondition {
            r#type: kind.into(),
            status: false,
            reason,
            message,
        },
    }
}

/// `RuntimeReady` is true while the daemon serves; `NetworkReady` says whether pods can
/// get a network (`network` is the pod network's state).
pub fn status(network: Result<(), (String, String)>) -> StatusResponse {
    StatusResponse {
        status: Some(RuntimeStatus {
            conditions: vec![
                condition("RuntimeReady", Ok(())),
                condition("NetworkReady", network),
            ],
        }),
        info: Default::default(),
        runtime_handlers: Vec::new(),
        features: None,
    }
}

/// Berth drives cgroups through the filesystem (v1, v2 and the hybrid), never systemd.
pub fn runtime_config() -> RuntimeConfigResponse {
    RuntimeConfigResponse {
        linux: Some(LinuxRuntimeConfiguration {
            cgroup_driver: CgroupDriver::Cgroupfs as i32,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_say_why_the_network_is_not_ready() {
        let s = status(Err(("NetworkPluginNotReady".into(), "no bridge".into())));
        let c = s.status.expect("a status").conditions;
        assert_eq!(c[0].r#type, "RuntimeReady");
        assert!(c[0].status);
        assert_eq!(c[1].r#type, "NetworkReady");
        assert!(!c[1].status);
        assert_eq!(c[1].reason, "NetworkPluginNotReady");
    }

    #[test]
    fn the_cgroup_driver_is_cgroupfs() {
        let linux = runtime_config().linux.expect("linux config");
        assert_eq!(linux.cgroup_driver, CgroupDriver::Cgroupfs as i32);
    }
}
