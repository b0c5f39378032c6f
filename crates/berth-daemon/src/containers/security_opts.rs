//! Create-time checks of the security settings of a container (sysctls), in Docker's
//! words. The rules themselves live in `berth-runtime`, which applies them again when
//! the container starts.

use berth_api::HostConfig;
use berth_runtime::sysctl;

use crate::error::ApiError;

fn runtime_err(e: berth_runtime::RuntimeError) -> ApiError {
    ApiError::new(e.kind(), e.to_string())
}

/// Which namespaces the container will own, as far as create can tell (a
/// `container:NAME` network is checked again by the runtime at start).
fn namespaces(hc: &HostConfig) -> sysctl::Namespaces {
    let shared = |mode: &str| mode == "host" || mode.starts_with("container:");
    sysctl::Namespaces {
        net: hc.network_mode != "host",
        ipc: !shared(&hc.ipc_mode),
        uts: hc.uts_mode != "host",
    }
}

/// Every check of this module, called once from create.
pub fn validate(hc: &HostConfig) -> Result<(), ApiError> {
    sysctl::validate_all(hc.sysctls.keys().map(String::as_str), namespaces(hc)).map_err(runtime_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(json: &str) -> HostConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn sysctls_are_checked_against_the_namespaces() {
        assert!(validate(&hc(
            r#"{"Sysctls":{"net.ipv4.ip_forward":"1","kernel.shmmax":"1"}}"#
        ))
        .is_ok());
        let e = validate(&hc(r#"{"Sysctls":{"vm.swappiness":"61"}}"#)).unwrap_err();
        assert_eq!(
            e.message,
            "sysctl \"vm.swappiness\" is not in a separate kernel namespace"
        );
        let e = validate(&hc(
            r#"{"NetworkMode":"host","Sysctls":{"net.ipv4.ip_forward":"1"}}"#,
        ))
        .unwrap_err();
        assert_eq!(
            e.message,
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
    }
}
