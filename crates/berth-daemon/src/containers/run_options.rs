//! Checks of the run options compose files use most (`--add-host`, `--dns*`,
//! `--ulimit`, `--group-add`, the namespace modes), in Docker's words.

use berth_api::{ContainerConfig, HostConfig};

use crate::error::ApiError;

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
    let user_network = !matches!(
        hc.network_mode.as_str(),
        "" | "default" | "bridge" | "none" | "host"
    ) && !hc.network_mode.starts_with("container:");
    if user_network && !hc.dns.is_empty() {
        // There the embedded DNS server answers, and it forwards to the daemon's
        // upstreams only: refused rather than ignored.
        return Err(ApiError::invalid(
            "custom DNS servers (--dns) on a user-defined network are not supported by Berth yet",
        ));
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

/// `--pid`, `--ipc`, `--uts`: the modes Berth applies; sharing another container's
/// namespaces is refused until it is applied.
pub fn validate_namespaces(hc: &HostConfig, config: &ContainerConfig) -> Result<(), ApiError> {
    let not_yet = |what: &str| {
        Err(ApiError::invalid(format!(
            "{what} is not supported by Berth yet"
        )))
    };
    match hc.pid_mode.as_str() {
        "" | "host" => {}
        m if m.starts_with("container:") => {
            return not_yet("sharing a container's pid namespace (--pid container:NAME)")
        }
        m => return Err(ApiError::invalid(format!("invalid PID mode: {m}"))),
    }
    match hc.ipc_mode.as_str() {
        "" | "private" | "shareable" | "host" | "none" => {}
        m if m.starts_with("container:") => {
            return not_yet("sharing a container's IPC namespace (--ipc container:NAME)")
        }
        m => return Err(ApiError::invalid(format!("Invalid IPC mode: {m}"))),
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

/// The runtime's namespaces for a validated host config.
pub fn namespaces(hc: &HostConfig) -> berth_runtime::Namespaces {
    berth_runtime::Namespaces {
        pid_host: hc.pid_mode == "host",
        ipc: match hc.ipc_mode.as_str() {
            "host" => berth_runtime::IpcMode::Host,
            "none" => berth_runtime::IpcMode::None,
            _ => berth_runtime::IpcMode::Private,
        },
        uts_host: hc.uts_mode == "host",
    }
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
        let mut hc = HostConfig {
            dns: vec!["1.1.1.1".into()],
            network_mode: "mynet".into(),
            ..Default::default()
        };
        assert!(validate_names(&hc)
            .unwrap_err()
            .message
            .contains("not supported by Berth yet"));
        hc.network_mode = "bridge".into();
        assert!(validate_names(&hc).is_ok());
    }
}
