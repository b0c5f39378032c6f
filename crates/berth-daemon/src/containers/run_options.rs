//! Checks of the run options compose files use most (`--add-host`, `--dns*`,
//! `--ulimit`, `--group-add`, the namespace modes), in Docker's words.

use berth_api::HostConfig;

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
            return Err(ApiError::invalid(format!("invalid ulimit type: {}", u.name)));
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
    }
}
