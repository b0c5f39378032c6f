//! `--add-host`, `--dns`, `--ulimit` and the namespace modes as the Docker CLI reads
//! them (docker/cli `opts.ValidateExtraHost`, `ValidateIPAddress`, go-units
//! `ParseUlimit`); the daemon checks them again.

use berth_api::Ulimit;

use crate::opts::FlagError;

fn flag_err(value: &str, flag: &str, why: impl std::fmt::Display) -> FlagError {
    FlagError(format!(
        "invalid argument \"{value}\" for \"{flag}\" flag: {why}"
    ))
}

/// `name:ip` or `name:host-gateway`.
pub fn add_hosts(values: &[String]) -> Result<Vec<String>, FlagError> {
    values
        .iter()
        .map(|v| match v.split_once(':') {
            Some((name, ip)) if !name.is_empty() => {
                if ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(flag_err(
                        v,
                        "--add-host",
                        format!("invalid IP address in add-host: {ip:?}"),
                    ));
                }
                Ok(v.clone())
            }
            _ => Err(flag_err(
                v,
                "--add-host",
                format!("bad format for add-host: {v:?}"),
            )),
        })
        .collect()
}

pub fn dns_servers(values: &[String]) -> Result<Vec<String>, FlagError> {
    values
        .iter()
        .map(|v| match v.trim().parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(ip.to_string()),
            Err(_) => Err(flag_err(
                v,
                "--dns",
                format!("IP address is not correctly formatted: {v}"),
            )),
        })
        .collect()
}

/// The names go-units knows (`ulimitNameMapping`).
pub const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

fn parse_int(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| {
        let why = if matches!(
            e.kind(),
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
        ) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        format!("strconv.ParseInt: parsing {s:?}: {why}")
    })
}

/// go-units `ParseUlimit`: `name=soft[:hard]`.
pub fn parse_ulimit(v: &str) -> Result<Ulimit, String> {
    let Some((name, limits)) = v.split_once('=') else {
        return Err(format!("invalid ulimit argument: {v}"));
    };
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [soft, hard] => {
            let hard = parse_int(hard)?;
            (parse_int(soft)?, hard)
        }
        [soft] => {
            let s = parse_int(soft)?;
            (s, s)
        }
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ))
        }
    };
    if hard != -1 && soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

pub fn ulimits(values: &[String]) -> Result<Vec<Ulimit>, FlagError> {
    values
        .iter()
        .map(|v| parse_ulimit(v).map_err(|why| flag_err(v, "--ulimit", why)))
        .collect()
}

/// `--pid`, `--uts`: `host`, `container:NAME` (pid) or empty.
pub fn ns_mode(value: Option<&str>, flag: &str, what: &str) -> Result<String, FlagError> {
    let v = value.unwrap_or_default();
    let ok = match v {
        "" | "host" => true,
        _ => flag == "--pid" && v.strip_prefix("container:").is_some_and(|n| !n.is_empty()),
    };
    if ok {
        Ok(v.to_string())
    } else {
        Err(FlagError(format!("{flag}: invalid {what} mode")))
    }
}

/// `--log-driver` and `--log-opt KEY=VALUE` as the Docker CLI sends them.
pub fn log_config(
    driver: Option<&str>,
    opts: &[String],
) -> Result<berth_api::LogConfig, FlagError> {
    let driver = driver.unwrap_or_default();
    if driver == "none" && !opts.is_empty() {
        return Err(FlagError(format!(
            "invalid logging opts for driver {driver}"
        )));
    }
    Ok(berth_api::LogConfig {
        kind: driver.to_string(),
        config: opts
            .iter()
            .map(|o| {
                let (k, v) = o.split_once('=').unwrap_or((o, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_in_docker_words() {
        assert_eq!(
            add_hosts(&["nocolon".into()]).unwrap_err().0,
            "invalid argument \"nocolon\" for \"--add-host\" flag: bad format for add-host: \"nocolon\""
        );
        assert!(add_hosts(&["a:1.2.3.4".into(), "gw:host-gateway".into()]).is_ok());
        assert_eq!(
            ulimits(&["nofile=x".into()]).unwrap_err().0,
            "invalid argument \"nofile=x\" for \"--ulimit\" flag: strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            parse_ulimit("nofile=10:5").unwrap_err(),
            "ulimit soft limit must be less than or equal to hard limit: 10 > 5"
        );
        assert_eq!(
            parse_ulimit("foo=1").unwrap_err(),
            "invalid ulimit type: foo"
        );
        let u = parse_ulimit("nofile=100:200").unwrap();
        assert_eq!((u.soft, u.hard), (100, 200));
        assert_eq!(
            dns_servers(&["x".into()]).unwrap_err().0,
            "invalid argument \"x\" for \"--dns\" flag: IP address is not correctly formatted: x"
        );
        assert_eq!(
            ns_mode(Some("bogus"), "--pid", "PID").unwrap_err().0,
            "--pid: invalid PID mode"
        );
    }
}
