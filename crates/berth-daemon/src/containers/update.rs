//! `POST /containers/{id}/update` (moby `daemon/update.go`): changes a container's
//! resource limits (and restart policy) in its record, and in its cgroups when it runs.
//!
//! The rules are moby's: a field left at 0 / empty keeps its value, the request is
//! checked like a create's resources, then against what the container already has
//! (NanoCpus vs CPU period/quota, memory vs the memory+swap limit). Kernel memory is
//! ignored with moby's warnings. Errors about the combination with the container's
//! current settings read "Cannot update container <id>: …".

use berth_api::{ContainerUpdateBody, ContainerUpdateResponse, HostConfig};

use super::merge;
use super::{resolve_in, ContainerService};
use crate::error::{ApiError, ApiResult};

/// moby's minimum for `Memory` and `MemoryReservation`.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

const KERNEL_MEMORY_DEPRECATED: &str =
    "Specifying a kernel memory limit is deprecated and will be removed in a future release.";
const KERNEL_MEMORY_DISCARDED: &str = "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.";
const BLKIO_WEIGHT_DISCARDED: &str =
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";

/// Checks the request on its own (moby `verifyContainerSettings` with `update`), and
/// drops what the host ignores (kernel memory; blkio weight without the controller).
/// Returns the warnings.
pub fn validate_request(
    u: &mut ContainerUpdateBody,
    ncpu: i64,
    blkio_weight_supported: bool,
) -> ApiResult<Vec<String>> {
    let mut warnings = Vec::new();
    if u.memory != 0 && u.memory < MIN_MEMORY {
        return Err(ApiError::invalid("Minimum memory limit allowed is 6MB"));
    }
    if u.memory > 0 && u.memory_swap > 0 && u.memory_swap < u.memory {
        return Err(ApiError::invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if u.memory_reservation != 0 && u.memory_reservation < MIN_MEMORY {
        return Err(ApiError::invalid(
            "Minimum memory reservation allowed is 6MB",
        ));
    }
    if u.memory > 0 && u.memory_reservation > 0 && u.memory < u.memory_reservation {
        return Err(ApiError::invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    if u.kernel_memory != 0 {
        warnings.push(KERNEL_MEMORY_DEPRECATED.to_string());
        warnings.push(KERNEL_MEMORY_DISCARDED.to_string());
        u.kernel_memory = 0;
    }
    if u.nano_cpus > 0 && u.cpu_period > 0 {
        return Err(ApiError::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if u.nano_cpus > 0 && u.cpu_quota > 0 {
        return Err(ApiError::invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if u.nano_cpus < 0 || u.nano_cpus > ncpu * 1_000_000_000 {
        return Err(ApiError::invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if u.cpu_shares < 0 {
        return Err(ApiError::invalid(
            "shares: invalid argument: shares must be a positive number",
        ));
    }
    if u.cpu_period != 0 && !(1000..=1_000_000).contains(&u.cpu_period) {
        return Err(ApiError::invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if u.cpu_quota > 0 && u.cpu_quota < 1000 {
        return Err(ApiError::invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if u.cpu_realtime_period != 0 || u.cpu_realtime_runtime != 0 {
        return Err(ApiError::invalid(
            "Your kernel does not support CPU real-time scheduler",
        ));
    }
    if !u.cpuset_cpus.is_empty() {
        check_cpuset(&u.cpuset_cpus, "cpus", "CPUs", ncpu)?;
    }
    if !u.cpuset_mems.is_empty() {
        check_cpuset(&u.cpuset_mems, "mems", "mems", 1)?;
    }
    if u.blkio_weight != 0 {
        if !blkio_weight_supported {
            warnings.push(BLKIO_WEIGHT_DISCARDED.to_string());
            u.blkio_weight = 0;
        } else if !(10..=1000).contains(&u.blkio_weight) {
            return Err(ApiError::invalid(
                "Range of blkio weight is from 10 to 1000",
            ));
        }
    }
    merge::restart_policy(&u.restart_policy)
        .validate()
        .map_err(ApiError::invalid)?;
    Ok(warnings)
}

/// A cpuset list (`0-3,5`): parsed, and every entry below `available`.
fn check_cpuset(list: &str, what: &str, plural: &str, available: i64) -> ApiResult<()> {
    let invalid = || ApiError::invalid(format!("Invalid value {list} for cpuset {what}"));
    let mut max = 0i64;
    for part in list.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: i64 = lo.trim().parse().map_err(|_| invalid())?;
        let hi: i64 = hi.trim().parse().map_err(|_| invalid())?;
        if lo < 0 || hi < lo {
            return Err(invalid());
        }
        max = max.max(hi);
    }
    if max >= available {
        let avail = if available <= 1 {
            "0".to_string()
        } else {
            format!("0-{}", available - 1)
        };
        return Err(ApiError::invalid(format!(
            "Requested {plural} are not available - requested {list}, available: {avail}"
        )));
    }
    Ok(())
}

/// Merges the request into the container's HostConfig (moby `UpdateContainer`): only
/// the fields the request sets change. The message of an error is what follows
/// "Cannot update container <id>: ".
pub fn merge_into(hc: &mut HostConfig, u: &ContainerUpdateBody) -> Result<(), String> {
    if u.nano_cpus > 0 && hc.cpu_period > 0 {
        return Err(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if u.nano_cpus > 0 && hc.cpu_quota > 0 {
        return Err(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if u.cpu_period > 0 && hc.nano_cpus > 0 {
        return Err(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if u.cpu_quota > 0 && hc.nano_cpus > 0 {
        return Err(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    // moby records the default memory+swap limit (twice the memory) at create; Berth
    // leaves it at 0 and derives it, so make it explicit before comparing or keeping it.
    if hc.memory > 0 && hc.memory_swap == 0 {
        hc.memory_swap = hc.memory * 2;
    }
    if u.blkio_weight != 0 {
        hc.blkio_weight = u.blkio_weight;
    }
    if u.cpu_shares != 0 {
        hc.cpu_shares = u.cpu_shares;
    }
    if u.nano_cpus != 0 {
        hc.nano_cpus = u.nano_cpus;
    }
    if u.cpu_period != 0 {
        hc.cpu_period = u.cpu_period;
    }
    if u.cpu_quota != 0 {
        hc.cpu_quota = u.cpu_quota;
    }
    if !u.cpuset_cpus.is_empty() {
        hc.cpuset_cpus = u.cpuset_cpus.clone();
    }
    if !u.cpuset_mems.is_empty() {
        hc.cpuset_mems = u.cpuset_mems.clone();
    }
    if u.memory != 0 {
        if u.memory > hc.memory_swap && u.memory_swap == 0 {
            return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
        }
        hc.memory = u.memory;
    }
    if u.memory_swap != 0 {
        hc.memory_swap = u.memory_swap;
    }
    if u.memory_reservation != 0 {
        hc.memory_reservation = u.memory_reservation;
    }
    if let Some(pids) = u.pids_limit {
        hc.pids_limit = Some(pids);
    }
    if hc.memory > 0 && hc.memory_swap > 0 && hc.memory_swap < hc.memory {
        return Err(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        );
    }
    if !u.restart_policy.name.is_empty() {
        hc.restart_policy = u.restart_policy.clone();
    }
    Ok(())
}

impl ContainerService {
    /// `POST /containers/{id}/update`: checks the request, applies it to the cgroups of
    /// a running (or paused) container, then saves it in the record. On any error the
    /// record is unchanged.
    pub fn update(
        &self,
        name_or_id: &str,
        mut body: ContainerUpdateBody,
    ) -> ApiResult<ContainerUpdateResponse> {
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        let mut entries = self.lock();
        let id = resolve_in(&entries, name_or_id)?;
        let blkio = body.blkio_weight == 0 || berth_runtime::cgroup::blkio_weight_supported();
        let warnings = validate_request(&mut body, ncpu, blkio)?;
        let state_dir = self.state_dir(&id);
        let entry = entries
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found(format!("No such container: {name_or_id}")))?;
        let cannot = |msg: String| format!("Cannot update container {id}: {msg}");
        use super::record::Status;
        if matches!(entry.rec.state.status, Status::Removing | Status::Dead) {
            return Err(ApiError::conflict(cannot(
                "container is marked for removal and cannot be \"update\"".into(),
            )));
        }
        if entry.starting {
            return Err(ApiError::conflict(cannot(
                "the container is starting, try again".into(),
            )));
        }
        let mut hc = entry.rec.host_config.clone();
        if hc.auto_remove && !body.restart_policy.name.is_empty() {
            return Err(ApiError::invalid(cannot(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            )));
        }
        merge_into(&mut hc, &body).map_err(|m| ApiError::invalid(cannot(m)))?;
        // A running shim applies the new policy from its next exit on.
        if entry.rec.state.status.is_running() && !body.restart_policy.name.is_empty() {
            super::shim::update_restart_blocking(
                &state_dir,
                merge::restart_policy(&hc.restart_policy),
            )
            .map_err(|e| ApiError::internal(cannot(e)))?;
        }
        // While the restart policy restarts it there are no cgroups: the next run gets
        // the new limits from the spec.
        if entry.rec.state.status.is_running() && entry.rec.state.status != Status::Restarting {
            let mut res = merge::resources(&hc);
            // Only a limit the request names is lifted; others are rewritten as they are.
            res.pids_limit = body.pids_limit.or(hc.pids_limit.filter(|l| *l > 0));
            berth_runtime::cgroup_limits::update(&state_dir, &res)
                .map_err(|e| ApiError::internal(cannot(e.to_string())))?;
        }
        if entry.rec.state.status.is_running() {
            // The shim's restarts by the policy read the limits from its spec.
            let res = merge::resources(&hc);
            berth_runtime::shim::update_spec_resources(&state_dir, &res)
                .map_err(|e| ApiError::internal(cannot(e.to_string())))?;
        }
        let old = std::mem::replace(&mut entry.rec.host_config, hc);
        if let Err(e) = self.persist(&entry.rec) {
            entry.rec.host_config = old;
            return Err(e);
        }
        Ok(ContainerUpdateResponse {
            warnings: (!warnings.is_empty()).then_some(warnings),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> ContainerUpdateBody {
        serde_json::from_str(json).unwrap()
    }

    fn check(json: &str) -> Result<Vec<String>, String> {
        validate_request(&mut body(json), 2, false).map_err(|e| e.message)
    }

    #[test]
    fn request_checks_use_mobys_words() {
        assert_eq!(
            check(r#"{"Memory":1000}"#).unwrap_err(),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            check(r#"{"Memory":67108864,"MemorySwap":1000000}"#).unwrap_err(),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            check(r#"{"NanoCpus":1000000000,"CpuQuota":50000}"#).unwrap_err(),
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set"
        );
        assert_eq!(
            check(r#"{"NanoCpus":1000000000,"CpuPeriod":50000}"#).unwrap_err(),
            "Conflicting options: Nano CPUs and CPU Period cannot both be set"
        );
        assert_eq!(
            check(r#"{"NanoCpus":3000000000}"#).unwrap_err(),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        assert_eq!(
            check(r#"{"CpuPeriod":10}"#).unwrap_err(),
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        );
        assert_eq!(
            check(r#"{"CpusetCpus":"0-5"}"#).unwrap_err(),
            "Requested CPUs are not available - requested 0-5, available: 0-1"
        );
        assert_eq!(
            check(r#"{"CpusetCpus":"a"}"#).unwrap_err(),
            "Invalid value a for cpuset cpus"
        );
        assert!(check(r#"{"RestartPolicy":{"Name":"always"}}"#).is_ok());
        assert_eq!(
            check(r#"{"RestartPolicy":{"Name":"foo"}}"#).unwrap_err(),
            "invalid restart policy 'foo'"
        );
        assert_eq!(
            check(r#"{"RestartPolicy":{"Name":"always","MaximumRetryCount":2}}"#).unwrap_err(),
            "maximum retry count cannot be used with restart policy 'always'"
        );
        assert!(check(r#"{"RestartPolicy":{"Name":"no"}}"#)
            .unwrap()
            .is_empty());
        assert!(
            check(r#"{"Memory":67108864,"CpusetCpus":"0,1","PidsLimit":null}"#)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn kernel_memory_and_blkio_are_dropped_with_warnings() {
        let mut b = body(r#"{"KernelMemory":10485760,"BlkioWeight":300}"#);
        let w = validate_request(&mut b, 2, false).unwrap();
        assert_eq!(
            w,
            vec![
                KERNEL_MEMORY_DEPRECATED,
                KERNEL_MEMORY_DISCARDED,
                BLKIO_WEIGHT_DISCARDED
            ]
        );
        assert_eq!((b.kernel_memory, b.blkio_weight), (0, 0));
        let mut b = body(r#"{"BlkioWeight":5}"#);
        assert_eq!(
            validate_request(&mut b, 2, true).unwrap_err().message,
            "Range of blkio weight is from 10 to 1000"
        );
    }

    #[test]
    fn merge_keeps_unset_fields_and_applies_set_ones() {
        let mut hc = HostConfig {
            memory: 64 << 20,
            cpu_shares: 512,
            pids_limit: Some(10),
            ..Default::default()
        };
        merge_into(&mut hc, &body(r#"{"Memory":100663296,"CpuQuota":50000}"#)).unwrap();
        // Memory 96 MiB ≤ the implied memswap 128 MiB; the memswap is kept.
        assert_eq!(hc.memory, 96 << 20);
        assert_eq!(hc.memory_swap, 128 << 20);
        assert_eq!((hc.cpu_shares, hc.cpu_quota), (512, 50_000));
        assert_eq!(hc.pids_limit, Some(10));
        merge_into(&mut hc, &body(r#"{"PidsLimit":-1}"#)).unwrap();
        assert_eq!(hc.pids_limit, Some(-1));
    }

    #[test]
    fn merge_refuses_conflicts_with_current_settings() {
        let mut hc = HostConfig::default();
        assert_eq!(
            merge_into(&mut hc, &body(r#"{"Memory":67108864}"#)).unwrap_err(),
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
        );
        merge_into(&mut hc, &body(r#"{"Memory":67108864,"MemorySwap":-1}"#)).unwrap();
        assert_eq!((hc.memory, hc.memory_swap), (64 << 20, -1));
        let mut hc = HostConfig {
            nano_cpus: 1_000_000_000,
            ..Default::default()
        };
        assert_eq!(
            merge_into(&mut hc, &body(r#"{"CpuQuota":50000}"#)).unwrap_err(),
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        );
        let mut hc = HostConfig {
            cpu_period: 50_000,
            ..Default::default()
        };
        assert_eq!(
            merge_into(&mut hc, &body(r#"{"NanoCpus":1000000000}"#)).unwrap_err(),
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
        );
        let mut hc = HostConfig {
            memory: 64 << 20,
            memory_swap: 128 << 20,
            ..Default::default()
        };
        assert_eq!(
            merge_into(&mut hc, &body(r#"{"MemorySwap":16777216}"#)).unwrap_err(),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
    }
}
