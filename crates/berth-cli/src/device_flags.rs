//! `--device`, `--device-cgroup-rule`, `--gpus`, `--storage-opt`, `--cgroupns` and
//! `--userns` as the Docker CLI reads them (docker/cli `validateDevice`,
//! `parseLinuxDevice`, `ValidateDeviceCgroupRule`, `opts.GpuOpts`); the daemon checks
//! them again.

use std::collections::BTreeMap;

use berth_api::DeviceMapping;

use crate::opts::FlagError;

fn valid_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && !mode.chars().enumerate().any(|(i, c)| mode[..i].contains(c))
}

/// One `--device HOST[:CONTAINER][:PERMS]`.
pub fn parse_device(v: &str) -> Result<DeviceMapping, FlagError> {
    let bad_format = || FlagError(format!("bad format for path: {v}"));
    let parts: Vec<&str> = v.split(':').collect();
    if parts.len() > 3 || parts[0].is_empty() {
        return Err(bad_format());
    }
    let (src, dst, perms) = match parts[..] {
        [src] => (src, src, "rwm"),
        [src, mode] if valid_mode(mode) => (src, src, mode),
        [src, dst] => (src, dst, "rwm"),
        [src, dst, mode] => {
            if !valid_mode(mode) {
                return Err(FlagError(format!("bad mode specified: {mode}")));
            }
            (src, dst, mode)
        }
        _ => return Err(bad_format()),
    };
    if !dst.starts_with('/') {
        return Err(FlagError(format!("{dst} is not an absolute path")));
    }
    Ok(DeviceMapping {
        path_on_host: src.to_string(),
        path_in_container: dst.to_string(),
        cgroup_permissions: perms.to_string(),
    })
}

pub fn devices(values: &[String]) -> Result<Vec<DeviceMapping>, FlagError> {
    values.iter().map(|v| parse_device(v)).collect()
}

/// `--device-cgroup-rule 'c 1:3 rwm'`.
pub fn cgroup_rules(values: &[String]) -> Result<Vec<String>, FlagError> {
    values
        .iter()
        .map(|v| {
            if berth_runtime_rule(v) {
                Ok(v.clone())
            } else {
                Err(FlagError(format!(
                    "invalid argument \"{v}\" for \"--device-cgroup-rule\" flag: invalid device cgroup format '{v}'"
                )))
            }
        })
        .collect()
}

/// `^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`
fn berth_runtime_rule(rule: &str) -> bool {
    let parts: Vec<&str> = rule.split(' ').collect();
    let [kind, nums, perms] = parts[..] else {
        return false;
    };
    let num = |s: &str| s == "*" || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    matches!(kind, "a" | "b" | "c")
        && nums.split_once(':').is_some_and(|(a, b)| num(a) && num(b))
        && (1..=3).contains(&perms.len())
        && perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

/// `--gpus all|N|device=…`: one device request for the `gpu` capability (the daemon
/// answers whether a driver can serve it).
pub fn gpus(value: Option<&str>) -> Result<Option<Vec<serde_json::Value>>, FlagError> {
    let Some(v) = value else {
        return Ok(None);
    };
    let mut count = 0i64;
    let mut ids: Option<Vec<String>> = None;
    for field in v.split(',') {
        match field.split_once('=') {
            None if field == "all" => count = -1,
            None => {
                count = field.parse().map_err(|_| {
                    FlagError(format!(
                        "invalid argument \"{v}\" for \"--gpus\" flag: unexpected key '{field}' in '{v}'"
                    ))
                })?
            }
            Some(("count", n)) => {
                count = if n == "all" {
                    -1
                } else {
                    n.parse().map_err(|_| {
                        FlagError(format!("invalid argument \"{v}\" for \"--gpus\" flag: invalid count ({n}): value must be either \"all\" or an integer"))
                    })?
                }
            }
            Some(("device", list)) => {
                ids = Some(list.split(',').map(str::to_string).collect())
            }
            Some(_) => {}
        }
    }
    Ok(Some(vec![serde_json::json!({
        "Driver": "",
        "Count": count,
        "DeviceIDs": ids,
        "Capabilities": [["gpu"]],
        "Options": {},
    })]))
}

/// `--storage-opt KEY=VALUE`.
pub fn storage_opts(values: &[String]) -> Result<BTreeMap<String, String>, FlagError> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, val)) => Ok((k.to_string(), val.to_string())),
            None => Err(FlagError(format!("invalid storage option {v}"))),
        })
        .collect()
}

/// `--cgroupns host|private` and `--userns host` (the CLI's checks).
pub fn cgroupns(value: Option<&str>) -> Result<String, FlagError> {
    match value.unwrap_or_default() {
        v @ ("" | "host" | "private") => Ok(v.to_string()),
        _ => Err(FlagError("--cgroupns: invalid CGROUP mode".into())),
    }
}

pub fn userns(value: Option<&str>) -> Result<String, FlagError> {
    match value.unwrap_or_default() {
        v @ ("" | "host") => Ok(v.to_string()),
        _ => Err(FlagError("--userns: invalid USER mode".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_as_the_docker_cli_reads_them() {
        let d = parse_device("/dev/fuse").unwrap();
        assert_eq!(
            (
                d.path_on_host.as_str(),
                d.path_in_container.as_str(),
                d.cgroup_permissions.as_str()
            ),
            ("/dev/fuse", "/dev/fuse", "rwm")
        );
        let d = parse_device("/dev/fuse:r").unwrap();
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/fuse", "r")
        );
        let d = parse_device("/dev/fuse:/dev/f:rw").unwrap();
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/f", "rw")
        );
        assert_eq!(
            parse_device("/dev/fuse:relative").unwrap_err().0,
            "relative is not an absolute path"
        );
        assert_eq!(
            parse_device("/dev/fuse:/dev/x:rwx").unwrap_err().0,
            "bad mode specified: rwx"
        );
        assert_eq!(
            parse_device("a:b:c:d").unwrap_err().0,
            "bad format for path: a:b:c:d"
        );
        assert_eq!(
            cgroup_rules(&["bogus".into()]).unwrap_err().0,
            "invalid argument \"bogus\" for \"--device-cgroup-rule\" flag: invalid device cgroup format 'bogus'"
        );
        assert!(cgroup_rules(&["c 7:128 rwm".into(), "a *:* r".into()]).is_ok());
        let g = gpus(Some("all")).unwrap().unwrap();
        assert_eq!(g[0]["Count"], -1);
        assert_eq!(g[0]["Capabilities"], serde_json::json!([["gpu"]]));
        assert_eq!(
            userns(Some("bogus")).unwrap_err().0,
            "--userns: invalid USER mode"
        );
        assert_eq!(cgroupns(Some("host")).unwrap(), "host");
    }
}
