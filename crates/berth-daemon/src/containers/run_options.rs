//! Checks of the run options compose files use most (`--add-host`, `--dns*`,
//! `--ulimit`, `--group-add`, the namespace modes), in Docker's words.

use berth_api::{ContainerConfig, HostConfig};

use std::path::PathBuf;

use super::record::ContainerRecord;
use crate::error::{ApiError, ApiResult};

/// `--add-host name:ip|host-gateway` (docker/cli `opts.ValidateExtraHost`) and the DNS
/// settings (one word each: they become lines of `resolv.conf`).
pub fn validate_names(hc: &HostConfig) -> Result<(), ApiError> {
    for h in &hc.extra_hosts {
        match h.split_once(':') {
            Some((name, ip)) if !name.is_empty() => {
                if ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(ApiError::invalid(format!(
                        "invalid IP address in add-host: {ip:?}"
                    )));
                }
                if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(ApiError::invalid(format!("bad format for add-host: {h:?}")));
                }
            }
            _ => return Err(ApiError::invalid(format!("bad format for add-host: {h:?}"))),
        }
    }
    for dns in &hc.dns {
        if dns.parse::<std::net::IpAddr>().is_err() {
            return Err(ApiError::invalid(format!("{dns} is not an ip address")));
        }
    }
    for word in hc.dns_search.iter().chain(&hc.dns_options) {
        if word.is_empty() || word.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ApiError::invalid(format!("{word:?} is not a valid domain")));
        }
    }
    Ok(())
}

/// `HostConfig.Ulimits`: names go-units knows, soft never above hard (-1 = unlimited).
pub fn validate_ulimits(limits: &[berth_api::Ulimit]) -> Result<(), ApiError> {
    for u in limits {
        if berth_runtime::rlimits::resource(&u.name).is_none() {
            return Err(ApiError::invalid(format!(
                "invalid ulimit type: {}",
                u.name
            )));
        }
        if u.hard != -1 && (u.soft > u.hard || u.soft == -1) {
            return Err(ApiError::invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
    }
    Ok(())
}

/// `--pid`, `--ipc`, `--uts`: the modes Docker knows (a `container:NAME` donor is
/// checked at create and start).
pub fn validate_namespaces(hc: &HostConfig, config: &ContainerConfig) -> Result<(), ApiError> {
    match hc.pid_mode.as_str() {
        "" | "host" => {}
        m if donor_name(m).is_some() => {}
        m => return Err(ApiError::invalid(format!("invalid PID mode: {m}"))),
    }
    match hc.ipc_mode.as_str() {
        "" | "private" | "shareable" | "host" | "none" => {}
        m if donor_name(m).is_some() => {}
        m => return Err(ApiError::invalid(format!("Invalid IPC mode: {m}"))),
    }
    // private: the init unshares its cgroup namespace; host: it keeps the host's
    match hc.cgroupns_mode.as_str() {
        "" | "private" | "host" => {}
        m => {
            return Err(ApiError::invalid(format!(
                "invalid cgroup namespace mode: {m}"
            )))
        }
    }
    match hc.uts_mode.as_str() {
        "" => {}
        "host" => {
            if !config.hostname.is_empty() {
                return Err(ApiError::invalid(
                    "Conflicting options: hostname and the UTS mode",
                ));
            }
        }
        m => return Err(ApiError::invalid(format!("invalid UTS mode: {m}"))),
    }
    Ok(())
}

/// `NAME` of a `container:NAME` pid or IPC mode.
pub fn donor_name(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:").filter(|n| !n.is_empty())
}

/// The runtime's namespaces for a validated host config; `donor` finds the container a
/// `container:NAME` mode names. Checked at start, as Docker does: the other container
/// must run, and share its IPC (`--ipc shareable`) for `--ipc container:`.
pub fn namespaces(
    hc: &HostConfig,
    internal: &super::record::InternalOptions,
    donor: &dyn Fn(&str) -> ApiResult<ContainerRecord>,
) -> ApiResult<berth_runtime::Namespaces> {
    let ns_of = |rec: &ContainerRecord, kind: &str| {
        PathBuf::from(format!("/proc/{}/ns/{kind}", rec.state.pid))
    };
    let pid_join = match donor_name(&hc.pid_mode) {
        Some(name) => {
            let rec = donor(name)?;
            if !rec.state.status.is_running() || rec.state.pid <= 0 {
                return Err(ApiError::conflict(format!(
                    "container {} is not running",
                    rec.id
                )));
            }
            Some(ns_of(&rec, "pid"))
        }
        None => None,
    };
    let ipc = match hc.ipc_mode.as_str() {
        "host" => berth_runtime::IpcMode::Host,
        "none" => berth_runtime::IpcMode::None,
        m => match donor_name(m) {
            Some(name) => {
                let rec = donor(name)?;
                let cant = |why: String| {
                    ApiError::conflict(format!("can't join IPC of container {}: {why}", rec.id))
                };
                if !rec.state.status.is_running() || rec.state.pid <= 0 {
                    return Err(cant(format!("container {} is not running", rec.id)));
                }
                match rec.host_config.ipc_mode.as_str() {
                    "host" => berth_runtime::IpcMode::Host,
                    "shareable" => berth_runtime::IpcMode::Join {
                        ns: ns_of(&rec, "ipc"),
                        mnt_ns: ns_of(&rec, "mnt"),
                    },
                    _ => return Err(cant(
                        "non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
                            .into(),
                    )),
                }
            }
            None => berth_runtime::IpcMode::Private,
        },
    };
    // The CRI's `uts_from`: the sandbox's hostname, which must run.
    let uts_join = match &internal.uts_from {
        Some(name) => {
            let rec = donor(name)?;
            if !rec.state.status.is_running() || rec.state.pid <= 0 {
                return Err(ApiError::conflict(format!(
                    "can't join UTS namespace of container {}: container {} is not running",
                    rec.id, rec.id
                )));
            }
            Some(ns_of(&rec, "uts"))
        }
        None => None,
    };
    Ok(berth_runtime::Namespaces {
        pid_host: hc.pid_mode == "host",
        pid_join,
        ipc,
        uts_host: hc.uts_mode == "host",
        uts_join,
        cgroup_host: hc.cgroupns_mode == "host",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(h: &[&str]) -> HostConfig {
        HostConfig {
            extra_hosts: h.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn cgroupns_modes() {
        let c = ContainerConfig::default();
        let mode = |m: &str| HostConfig {
            cgroupns_mode: m.into(),
            ..Default::default()
        };
        assert!(validate_namespaces(&mode("private"), &c).is_ok());
        assert!(validate_namespaces(&mode(""), &c).is_ok());
        assert!(validate_namespaces(&mode("host"), &c).is_ok());
        assert_eq!(
            validate_namespaces(&mode("bogus"), &c).unwrap_err().message,
            "invalid cgroup namespace mode: bogus"
        );
    }

    #[test]
    fn add_host_in_docker_words() {
        assert!(validate_names(&hosts(&["a:1.2.3.4", "b:host-gateway", "c:::1"])).is_ok());
        assert_eq!(
            validate_names(&hosts(&["nocolon"])).unwrap_err().message,
            "bad format for add-host: \"nocolon\""
        );
        assert_eq!(
            validate_names(&hosts(&["a:x"])).unwrap_err().message,
            "invalid IP address in add-host: \"x\""
        );
        // --dns on a user network too (the embedded server forwards to it)
        let mut hc = HostConfig {
            dns: vec!["1.1.1.1".into()],
            network_mode: "mynet".into(),
            ..Default::default()
        };
        assert!(validate_names(&hc).is_ok());
        hc.network_mode = "bridge".into();
        assert!(validate_names(&hc).is_ok());
        hc.dns = vec!["x".into()];
        assert_eq!(
            validate_names(&hc).unwrap_err().message,
            "x is not an ip address"
        );
    }
}
