//! Run options about devices and resources beyond the plain limits: `--device`,
//! `--device-cgroup-rule`, `--gpus`, `--storage-opt`, `--cpu-count`/`--cpu-percent`,
//! `--oom-score-adj`, `--oom-kill-disable`, `--cpu-rt-*`, `--userns`, and the masked and
//! read-only paths inspect shows. Checked at create in Docker's words; the devices are
//! gathered from the host at start, as Docker does.

use berth_api::HostConfig;
use berth_runtime::devices::{self, DeviceSpec};

use crate::error::ApiError;

/// Every create-time check of this module. Fills in what Docker records at create (the
/// masked and read-only paths) and returns Docker's warnings.
pub fn check(hc: &mut HostConfig) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    for d in &hc.devices {
        if d.path_on_host.is_empty() {
            return Err(ApiError::invalid("bad format for path: "));
        }
        let dst = if d.path_in_container.is_empty() {
            &d.path_on_host
        } else {
            &d.path_in_container
        };
        if !dst.starts_with('/') {
            return Err(ApiError::invalid(format!("{dst} is not an absolute path")));
        }
        if !d.cgroup_permissions.is_empty() && !devices::valid_permissions(&d.cgroup_permissions) {
            return Err(ApiError::invalid(format!(
                "bad mode specified: {}",
                d.cgroup_permissions
            )));
        }
    }
    for rule in &hc.device_cgroup_rules {
        if !devices::valid_cgroup_rule(rule) {
            return Err(ApiError::invalid(format!(
                "invalid device cgroup rule format: '{rule}'"
            )));
        }
    }
    // No device driver (nvidia or other) exists in Berth: Docker's answer on a host
    // without one.
    if let Some(req) = hc.device_requests.as_ref().and_then(|r| r.first()) {
        let driver = req.get("Driver").and_then(|v| v.as_str()).unwrap_or("");
        let caps: Vec<String> = req
            .get("Capabilities")
            .and_then(|v| v.as_array())
            .map(|sets| {
                sets.iter()
                    .map(|set| {
                        let words: Vec<&str> = set
                            .as_array()
                            .map(|a| a.iter().filter_map(|w| w.as_str()).collect())
                            .unwrap_or_default();
                        format!("[{}]", words.join(" "))
                    })
                    .collect()
            })
            .unwrap_or_default();
        return Err(ApiError::invalid(format!(
            "could not select device driver {driver:?} with capabilities: [{}]",
            caps.join(" ")
        )));
    }
    let blkio = [
        (&hc.blkio_weight_device, "--blkio-weight-device"),
        (&hc.blkio_device_read_bps, "--device-read-bps"),
        (&hc.blkio_device_write_bps, "--device-write-bps"),
        (&hc.blkio_device_read_iops, "--device-read-iops"),
        (&hc.blkio_device_write_iops, "--device-write-iops"),
    ];
    if let Some((_, flag)) = blkio.iter().find(|(v, _)| !v.is_empty()) {
        return Err(ApiError::invalid(format!(
            "per-device block I/O limits ({flag}) are not supported by Berth yet"
        )));
    }
    if hc.kernel_memory != 0 || hc.kernel_memory_tcp != 0 {
        return Err(ApiError::invalid(
            "kernel memory limits (--kernel-memory) are not supported by Berth (deprecated in Docker)",
        ));
    }
    if hc.io_maximum_iops != 0 || hc.io_maximum_bandwidth != 0 {
        return Err(ApiError::invalid(
            "invalid option: Windows only: IOMaximumBandwidth and IOMaximumIOps",
        ));
    }
    // Docker records "unset" for these defaults
    match hc.memory_swappiness {
        Some(-1) => hc.memory_swappiness = None,
        Some(s) if !(0..=100).contains(&s) => {
            return Err(ApiError::invalid(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            )))
        }
        Some(_) if berth_runtime::cgroup::v1_root("memory").is_none() => {
            warnings.push("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.".into());
            hc.memory_swappiness = None;
        }
        _ => {}
    }
    if hc.pids_limit.is_some_and(|l| l <= 0) {
        hc.pids_limit = None;
    }
    if hc.memory > 0 && hc.memory_swap == 0 {
        hc.memory_swap = hc.memory * 2;
    }
    if !hc.storage_opt.is_empty() {
        return Err(ApiError::invalid(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
        ));
    }
    if hc.cpu_count != 0 {
        return Err(ApiError::invalid(
            "\"--cpu-count\" is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux",
        ));
    }
    if hc.cpu_percent != 0 {
        // moby `verifyPlatformContainerResources` on Linux
        warnings.push("linux does not support CPU percent. Percent discarded.".into());
        hc.cpu_percent = 0;
    }
    if !(-1000..=1000).contains(&hc.oom_score_adj) {
        return Err(ApiError::invalid(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            hc.oom_score_adj
        )));
    }
    if hc.oom_kill_disable == Some(true) {
        if berth_runtime::cgroup::v1_root("memory").is_none() {
            warnings.push(
                "Your kernel does not support OomKillDisable. OomKillDisable discarded.".into(),
            );
            hc.oom_kill_disable = Some(false);
        } else if hc.memory == 0 {
            warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
        }
    }
    check_realtime(hc)?;
    match hc.userns_mode.as_str() {
        // without --userns-remap every container has the host's user namespace
        "" | "host" => {}
        _ => return Err(ApiError::invalid("--userns: invalid USER mode")),
    }
    if !hc.privileged {
        if hc.masked_paths.as_ref().is_some_and(|p| p.is_empty())
            || hc.readonly_paths.as_ref().is_some_and(|p| p.is_empty())
        {
            return Err(ApiError::invalid(
                "unmasking /proc and /sys (--security-opt systempaths=unconfined) is not supported by Berth yet",
            ));
        }
        hc.masked_paths
            .get_or_insert_with(berth_runtime::mounts::masked_paths);
        hc.readonly_paths.get_or_insert_with(|| {
            berth_runtime::mounts::readonly_paths()
                .iter()
                .map(|p| p.to_string())
                .collect()
        });
    }
    Ok(warnings)
}

/// `--cpu-rt-period` / `--cpu-rt-runtime` (moby `verifyPlatformContainerResources`).
fn check_realtime(hc: &HostConfig) -> Result<(), ApiError> {
    let (period, runtime) = (hc.cpu_realtime_period, hc.cpu_realtime_runtime);
    if period == 0 && runtime == 0 {
        return Ok(());
    }
    // the kernel's CONFIG_RT_GROUP_SCHED, on a v1 cpu hierarchy
    let supported = berth_runtime::cgroup::v1_root("cpu")
        .is_some_and(|root| root.join("cpu.rt_runtime_us").exists());
    if period != 0 && !supported {
        return Err(ApiError::invalid(
            "Your kernel does not support cgroup cpu real-time period",
        ));
    }
    if runtime != 0 && !supported {
        return Err(ApiError::invalid(
            "Your kernel does not support cgroup cpu real-time runtime",
        ));
    }
    if period != 0 && runtime != 0 && runtime > period {
        return Err(ApiError::invalid(
            "cpu real-time runtime cannot be higher than cpu real-time period",
        ));
    }
    Ok(())
}

/// The devices to create at start: the `--device`s found on the host (Docker's error
/// when one is missing) and, when privileged, every host device.
pub fn devices(hc: &HostConfig) -> Result<Vec<DeviceSpec>, ApiError> {
    let mut out = if hc.privileged {
        devices::host_devices()
    } else {
        Vec::new()
    };
    for d in &hc.devices {
        let dst = if d.path_in_container.is_empty() {
            &d.path_on_host
        } else {
            &d.path_in_container
        };
        let perms = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            &d.cgroup_permissions
        };
        let found =
            devices::from_mapping(&d.path_on_host, dst, perms).map_err(ApiError::internal)?;
        for dev in found {
            out.retain(|o| o.path != dev.path);
            out.push(dev);
        }
    }
    Ok(out)
}

/// The device cgroup rules after the defaults: each `--device`, then the
/// `--device-cgroup-rule`s.
pub fn device_rules(hc: &HostConfig, devices: &[DeviceSpec]) -> Vec<String> {
    let mut rules: Vec<String> = if hc.privileged {
        Vec::new()
    } else {
        let user: Vec<String> = hc
            .devices
            .iter()
            .map(|d| {
                if d.path_in_container.is_empty() {
                    d.path_on_host.clone()
                } else {
                    d.path_in_container.clone()
                }
            })
            .collect();
        devices
            .iter()
            .filter(|d| {
                user.iter()
                    .any(|u| d.path == *u || d.path.starts_with(&format!("{u}/")))
            })
            .map(DeviceSpec::cgroup_rule)
            .collect()
    };
    rules.extend(hc.device_cgroup_rules.iter().cloned());
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::DeviceMapping;

    fn hc(json: serde_json::Value) -> HostConfig {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn docker_texts_for_bad_values() {
        let err = |j| check(&mut hc(j)).unwrap_err().message;
        assert_eq!(
            err(serde_json::json!({"DeviceCgroupRules": ["bogus"]})),
            "invalid device cgroup rule format: 'bogus'"
        );
        assert_eq!(
            err(
                serde_json::json!({"Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "rel", "CgroupPermissions": "rwm"}]})
            ),
            "rel is not an absolute path"
        );
        assert_eq!(
            err(
                serde_json::json!({"Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/x", "CgroupPermissions": "rwx"}]})
            ),
            "bad mode specified: rwx"
        );
        assert_eq!(
            err(
                serde_json::json!({"DeviceRequests": [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]})
            ),
            "could not select device driver \"\" with capabilities: [[gpu]]"
        );
        assert_eq!(
            err(serde_json::json!({"StorageOpt": {"size": "1G"}})),
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
        );
        assert_eq!(
            err(serde_json::json!({"OomScoreAdj": 1001})),
            "Invalid value 1001, range for oom score adj is [-1000, 1000]"
        );
        assert_eq!(
            err(serde_json::json!({"UsernsMode": "bogus"})),
            "--userns: invalid USER mode"
        );
        assert!(err(serde_json::json!({"CpuCount": 1}))
            .starts_with("\"--cpu-count\" is only supported"));
    }

    #[test]
    fn defaults_recorded_and_warnings() {
        let mut h = hc(serde_json::json!({"CpuPercent": 50, "UsernsMode": "host"}));
        let w = check(&mut h).unwrap();
        assert_eq!(
            w,
            ["linux does not support CPU percent. Percent discarded."]
        );
        assert_eq!(h.cpu_percent, 0);
        assert!(h
            .masked_paths
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_string()));
        assert!(h
            .readonly_paths
            .as_ref()
            .unwrap()
            .contains(&"/proc/sys".to_string()));
        let mut p = hc(serde_json::json!({"Privileged": true}));
        check(&mut p).unwrap();
        assert_eq!((p.masked_paths, p.readonly_paths), (None, None));
    }

    #[test]
    fn device_rules_follow_the_devices_then_the_rules() {
        let h = HostConfig {
            devices: vec![DeviceMapping {
                path_on_host: "/dev/null".into(),
                path_in_container: "/dev/mynull".into(),
                cgroup_permissions: "r".into(),
            }],
            device_cgroup_rules: vec!["c 7:128 rwm".into()],
            ..Default::default()
        };
        let devs = devices(&h).unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(device_rules(&h, &devs), ["c 1:3 r", "c 7:128 rwm"]);
        let missing = HostConfig {
            devices: vec![DeviceMapping {
                path_on_host: "/nonexistent".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            devices(&missing).unwrap_err().message,
            "error gathering device information while adding custom device \"/nonexistent\": no such file or directory"
        );
    }
}
