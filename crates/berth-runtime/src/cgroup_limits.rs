//! A container's resource limits written to its cgroups, at create and on `docker update`:
//! CPU (quota, shares or weight, cpusets), memory and swap, pids, the device rules and the
//! real-time budget, on v1 and v2.

use crate::cgroup::{write_file, CgroupPaths};
use crate::defaults::DEVICE_ALLOW_RULES;
use crate::error::{Result, RuntimeError};
use crate::spec::Resources;
use std::path::Path;

/// CFS period used for `--cpus` (Docker's 100 ms).
pub const CFS_PERIOD_US: u64 = 100_000;

/// CFS quota and period in microseconds: `nano_cpus` wins, then `cpu_quota`.
pub fn cfs_quota(res: &Resources) -> Option<(i64, u64)> {
    if res.nano_cpus > 0 {
        Some((
            res.nano_cpus * CFS_PERIOD_US as i64 / 1_000_000_000,
            CFS_PERIOD_US,
        ))
    } else if res.cpu_quota > 0 {
        let period = if res.cpu_period > 0 {
            res.cpu_period as u64
        } else {
            CFS_PERIOD_US
        };
        Some((res.cpu_quota, period))
    } else {
        None
    }
}

/// cgroup v1 `cpu.shares` → v2 `cpu.weight` (runc's conversion).
pub fn shares_to_weight(shares: i64) -> u64 {
    if shares <= 0 {
        return 100;
    }
    let shares = shares.clamp(2, 262_144) as u64;
    1 + ((shares - 2) * 9999) / 262_142
}

/// v1 `memory.memsw.limit_in_bytes`: Docker's default is twice the memory limit.
pub fn memsw_v1(res: &Resources) -> Option<i64> {
    if res.memory <= 0 {
        return None;
    }
    match res.memory_swap {
        0 => Some(res.memory * 2),
        -1 => Some(-1),
        s => Some(s),
    }
}

/// v2 `memory.swap.max` (swap only, without the memory part).
pub fn swap_max_v2(res: &Resources) -> Option<String> {
    memsw_v1(res).map(|s| {
        if s < 0 {
            "max".to_string()
        } else {
            (s - res.memory).max(0).to_string()
        }
    })
}

pub(crate) fn apply_limits(paths: &CgroupPaths, res: &Resources, privileged: bool) -> Result<()> {
    let need = |c: &str| {
        paths.dir_for(c).ok_or_else(|| {
            RuntimeError::InvalidArgument(format!(
                "the {c} cgroup controller is not available on this host"
            ))
        })
    };
    if res.memory > 0 {
        let (dir, v2) = need("memory")?;
        if v2 {
            write_file(&dir.join("memory.max"), &res.memory.to_string())?;
            if let Some(s) = swap_max_v2(res) {
                if dir.join("memory.swap.max").exists() {
                    write_file(&dir.join("memory.swap.max"), &s)?;
                }
            }
        } else {
            let limit = dir.join("memory.limit_in_bytes");
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            let swap = memsw_v1(res).filter(|_| memsw.exists());
            // v1 keeps memory ≤ memory+swap at every step: raising the memory above the
            // current memsw limit needs the memsw limit raised first.
            if write_file(&limit, &res.memory.to_string()).is_err() {
                if let Some(s) = swap {
                    write_file(&memsw, &s.to_string())?;
                }
                write_file(&limit, &res.memory.to_string())?;
            }
            if let Some(s) = swap {
                write_file(&memsw, &s.to_string())?;
            }
        }
    }
    if res.memory_reservation > 0 {
        let (dir, v2) = need("memory")?;
        let file = if v2 {
            "memory.low"
        } else {
            "memory.soft_limit_in_bytes"
        };
        write_file(&dir.join(file), &res.memory_reservation.to_string())?;
    }
    if let Some((quota, period)) = cfs_quota(res) {
        let (dir, v2) = need("cpu")?;
        if v2 {
            write_file(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
        } else {
            write_file(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
            write_file(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
        }
    }
    if res.cpu_shares > 0 {
        let (dir, v2) = need("cpu")?;
        if v2 {
            write_file(
                &dir.join("cpu.weight"),
                &shares_to_weight(res.cpu_shares).to_string(),
            )?;
        } else {
            write_file(&dir.join("cpu.shares"), &res.cpu_shares.to_string())?;
        }
    }
    if !res.cpuset_cpus.is_empty() {
        let (dir, _) = need("cpuset")?;
        write_file(&dir.join("cpuset.cpus"), &res.cpuset_cpus)?;
    }
    if !res.cpuset_mems.is_empty() {
        let (dir, _) = need("cpuset")?;
        write_file(&dir.join("cpuset.mems"), &res.cpuset_mems)?;
    }
    if let Some(limit) = res.pids_limit.filter(|l| *l > 0) {
        let (dir, _) = need("pids")?;
        write_file(&dir.join("pids.max"), &limit.to_string())?;
    }
    if let Some(s) = res.memory_swappiness.filter(|s| (0..=100).contains(s)) {
        if let Some(dir) = paths.v1.get("memory") {
            write_file(&dir.join("memory.swappiness"), &s.to_string())?;
        }
    }
    if res.oom_kill_disable {
        // v1 only: cgroup v2 has no switch for it (Docker ignores it there)
        if let Some(dir) = paths.v1.get("memory") {
            write_file(&dir.join("memory.oom_control"), "1")?;
        }
    }
    crate::cgroup_knobs::apply_rt(paths, res)?;
    if !privileged {
        if let Some(dir) = paths.v1.get("devices") {
            write_file(&dir.join("devices.deny"), "a")?;
            for rule in crate::cgroup_knobs::device_allow_rules(DEVICE_ALLOW_RULES, res) {
                write_file(&dir.join("devices.allow"), rule)?;
            }
        }
    }
    Ok(())
}

/// Applies changed limits to a running container's cgroups (`docker update`), with the
/// same rules as at create; a `pids_limit` of `Some(≤ 0)` lifts the pids limit.
/// Device rules are left as they are.
pub fn update(state_dir: &Path, res: &Resources) -> Result<()> {
    let paths = CgroupPaths::load(state_dir)?;
    apply_limits(&paths, res, true)?;
    if res.pids_limit.is_some_and(|l| l <= 0) {
        if let Some((dir, _)) = paths.dir_for("pids") {
            write_file(&dir.join("pids.max"), "max")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_conversions() {
        let r = Resources {
            nano_cpus: 1_500_000_000,
            ..Default::default()
        };
        assert_eq!(cfs_quota(&r), Some((150_000, 100_000)));
        let r = Resources {
            cpu_quota: 50_000,
            cpu_period: 200_000,
            ..Default::default()
        };
        assert_eq!(cfs_quota(&r), Some((50_000, 200_000)));
        assert_eq!(cfs_quota(&Resources::default()), None);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn swap_defaults() {
        let r = Resources {
            memory: 100,
            ..Default::default()
        };
        assert_eq!(memsw_v1(&r), Some(200));
        assert_eq!(swap_max_v2(&r), Some("100".into()));
        let r = Resources {
            memory: 100,
            memory_swap: -1,
            ..Default::default()
        };
        assert_eq!(memsw_v1(&r), Some(-1));
        assert_eq!(swap_max_v2(&r), Some("max".into()));
        let r = Resources {
            memory: 100,
            memory_swap: 300,
            ..Default::default()
        };
        assert_eq!(swap_max_v2(&r), Some("200".into()));
        assert_eq!(memsw_v1(&Resources::default()), None);
    }
}
