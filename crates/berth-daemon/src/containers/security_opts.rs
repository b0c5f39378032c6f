//! Create-time checks of the security settings of a container (sysctls,
//! `--security-opt`, `--cap-add`/`--cap-drop` names), in Docker's words, and the
//! runtime's [`SecuritySpec`] from them. The rules live in `berth-runtime`, which
//! applies the sysctl rules again when the container starts.

use berth_api::HostConfig;
use berth_runtime::security::{self, SecurityDefaults};
use berth_runtime::{capabilities, sysctl, SecuritySpec};

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
pub fn validate(hc: &HostConfig, defaults: &SecurityDefaults) -> Result<(), ApiError> {
    capabilities::validate(&hc.cap_add, &hc.cap_drop).map_err(runtime_err)?;
    spec(hc, defaults)?;
    sysctl::validate_all(hc.sysctls.keys().map(String::as_str), namespaces(hc)).map_err(runtime_err)
}

/// no_new_privs and seccomp for the container (and its execs).
/// The seccomp program is built here, once per profile and capability set for the
/// daemon's lifetime, so a container start does not pay libseccomp's compile.
pub fn spec(hc: &HostConfig, defaults: &SecurityDefaults) -> Result<SecuritySpec, ApiError> {
    let mut spec =
        security::parse(&hc.security_opt, defaults, hc.privileged).map_err(runtime_err)?;
    let caps =
        capabilities::compute(hc.privileged, &hc.cap_add, &hc.cap_drop).map_err(runtime_err)?;
    security::compile(&mut spec, &caps).map_err(runtime_err)?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(json: &str) -> HostConfig {
        serde_json::from_str(json).unwrap()
    }

    fn check(json: &str) -> Result<(), ApiError> {
        validate(&hc(json), &SecurityDefaults::default())
    }

    #[test]
    fn sysctls_are_checked_against_the_namespaces() {
        assert!(check(r#"{"Sysctls":{"net.ipv4.ip_forward":"1","kernel.shmmax":"1"}}"#).is_ok());
        let e = check(r#"{"Sysctls":{"vm.swappiness":"61"}}"#).unwrap_err();
        assert_eq!(
            e.message,
            "sysctl \"vm.swappiness\" is not in a separate kernel namespace"
        );
        let e =
            check(r#"{"NetworkMode":"host","Sysctls":{"net.ipv4.ip_forward":"1"}}"#).unwrap_err();
        assert_eq!(
            e.message,
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
    }

    #[test]
    fn security_options_and_capability_names() {
        assert!(check(
            r#"{"SecurityOpt":["no-new-privileges","label=disable","apparmor=unconfined"]}"#
        )
        .is_ok());
        let e = check(r#"{"SecurityOpt":["foo=bar"]}"#).unwrap_err();
        assert_eq!(e.message, "invalid --security-opt 2: \"foo=bar\"");
        let e = check(r#"{"CapAdd":["FOO"]}"#).unwrap_err();
        assert_eq!(e.message, "invalid CapAdd: unknown capability: \"CAP_FOO\"");
        let s = spec(
            &hc(r#"{"SecurityOpt":["no-new-privileges:true"]}"#),
            &SecurityDefaults::default(),
        )
        .unwrap();
        assert!(s.no_new_privileges);
    }
}
