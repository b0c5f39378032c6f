//! `docker update` (`POST /containers/{id}/update`): limits change in a running
//! container's cgroups at once, in the record (inspect) always, and a stopped container
//! starts with them; errors are moby's; the real Docker CLI works against it.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The value of `v1_file` in the container's cgroup of `v1_controller`, or of `v2_file`
/// in its v2 dir when the v1 hierarchy lacks it.
fn cgroup_value(id: &str, v1_controller: &str, v1_file: &str, v2_file: &str) -> String {
    let dirs: Vec<PathBuf> = cgroup_dirs_of(id);
    let v1 = Path::new("/sys/fs/cgroup").join(v1_controller);
    if let Some(dir) = dirs
        .iter()
        .find(|p| p.starts_with(&v1) && p.join(v1_file).exists())
    {
        return read_trim(&dir.join(v1_file)).unwrap_or_default();
    }
    if let Some(dir) = dirs.iter().find(|p| p.join(v2_file).exists()) {
        return read_trim(&dir.join(v2_file)).unwrap_or_default();
    }
    panic!("no cgroup with {v1_controller}/{v1_file} or {v2_file} for {id}: {dirs:?}");
}

fn memory_limit(id: &str) -> String {
    cgroup_value(id, "memory", "memory.limit_in_bytes", "memory.max")
}

/// CFS (quota, period) of the container, from v1 or v2 files.
fn cfs(id: &str) -> (String, String) {
    let dirs = cgroup_dirs_of(id);
    if let Some(cpu) = dirs.iter().find(|p| p.join("cpu.cfs_quota_us").exists()) {
        return (
            read_trim(&cpu.join("cpu.cfs_quota_us")).unwrap_or_default(),
            read_trim(&cpu.join("cpu.cfs_period_us")).unwrap_or_default(),
        );
    }
    if let Some(cpu) = dirs.iter().find(|p| p.join("cpu.max").exists()) {
        let v = read_trim(&cpu.join("cpu.max")).unwrap_or_default();
        let (q, p) = v.split_once(' ').unwrap_or((v.as_str(), ""));
        return (q.to_string(), p.to_string());
    }
    panic!("no cpu cgroup for {id}: {dirs:?}");
}

fn pids_max(id: &str) -> String {
    cgroup_value(id, "pids", "pids.max", "pids.max")
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[test]
fn updating_a_running_container_changes_its_cgroups_and_inspect() {
    let d = daemon();
    let id = d.run_detached(&[
        "--name",
        "up1",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(memory_limit(&id), "67108864");
    let out = d.berth_ok(&[
        "update",
        "-m",
        "96m",
        "--cpus",
        "1.5",
        "--pids-limit",
        "80",
        "up1",
    ]);
    assert_eq!(out, "up1\n");
    assert_eq!(memory_limit(&id), (96u64 << 20).to_string());
    assert_eq!(cfs(&id), ("150000".to_string(), "100000".to_string()));
    assert_eq!(pids_max(&id), "80");
    let hc = &d.inspect(&id)["HostConfig"];
    assert_eq!(hc["Memory"], 96i64 << 20);
    // The memory+swap limit the container had (twice the first memory) is kept.
    assert_eq!(hc["MemorySwap"], 128i64 << 20);
    assert_eq!(hc["NanoCpus"], 1_500_000_000i64);
    assert_eq!(hc["PidsLimit"], 80);

    // Above the memory+swap limit: refused until the swap limit comes along.
    let out = d.berth(&["update", "-m", "200m", "up1"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out).trim(),
        format!("Error response from daemon: Cannot update container {id}: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
    );
    assert_eq!(
        memory_limit(&id),
        (96u64 << 20).to_string(),
        "a refused update changed the cgroup"
    );
    d.berth_ok(&["update", "-m", "200m", "--memory-swap", "400m", "up1"]);
    assert_eq!(memory_limit(&id), (200u64 << 20).to_string());
    // A soft limit and the CPUs the container may use.
    d.berth_ok(&[
        "update",
        "--memory-reservation",
        "16m",
        "--cpuset-cpus",
        "0",
        "up1",
    ]);
    assert_eq!(
        cgroup_value(&id, "memory", "memory.soft_limit_in_bytes", "memory.low"),
        (16u64 << 20).to_string()
    );
    assert_eq!(
        cgroup_value(&id, "cpuset", "cpuset.cpus", "cpuset.cpus"),
        "0"
    );
    let hc = &d.inspect(&id)["HostConfig"];
    assert_eq!(
        (hc["MemoryReservation"].clone(), hc["CpusetCpus"].clone()),
        ((16i64 << 20).into(), "0".into())
    );
    // A paused container is running: its cgroups change too.
    d.berth_ok(&["pause", "up1"]);
    d.berth_ok(&["update", "--pids-limit", "70", "up1"]);
    assert_eq!(pids_max(&id), "70");
    d.berth_ok(&["unpause", "up1"]);
    // Lifting the pids limit.
    d.berth_ok(&["update", "--pids-limit", "-1", "up1"]);
    assert_eq!(pids_max(&id), "max");
    // The container still runs, and a limit holds inside it: 80 more processes fail
    // under a pids limit of 20.
    d.berth_ok(&["update", "--pids-limit", "20", "up1"]);
    let out = d.berth(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for i in $(seq 1 40); do sleep 2 & done; wait",
    ]);
    assert!(
        stderr(&out).contains("Resource temporarily unavailable") || !out.status.success(),
        "40 processes started under an updated pids limit of 20"
    );
}

#[test]
fn a_stopped_container_starts_with_the_updated_limits() {
    let d = daemon();
    d.berth_ok(&["create", "--name", "up2", "busybox", "sleep", "1000"]);
    let out = d.berth_ok(&[
        "update",
        "-m",
        "32m",
        "--memory-swap",
        "64m",
        "--cpu-quota",
        "25000",
        "--cpu-period",
        "50000",
        "--pids-limit",
        "30",
        "-c",
        "256",
        "up2",
    ]);
    assert_eq!(out, "up2\n");
    let hc = &d.inspect("up2")["HostConfig"];
    assert_eq!(hc["Memory"], 32i64 << 20);
    assert_eq!(hc["MemorySwap"], 64i64 << 20);
    assert_eq!(
        (hc["CpuQuota"].clone(), hc["CpuPeriod"].clone()),
        (25000.into(), 50000.into())
    );
    assert_eq!(hc["PidsLimit"], 30);
    assert_eq!(hc["CpuShares"], 256);
    d.berth_ok(&["start", "up2"]);
    let id = d.full_id("up2");
    assert_eq!(memory_limit(&id), (32u64 << 20).to_string());
    assert_eq!(cfs(&id), ("25000".to_string(), "50000".to_string()));
    assert_eq!(pids_max(&id), "30");
    // NanoCpus cannot be set over a CPU period/quota the container has.
    let out = d.berth(&["update", "--cpus", "1", "up2"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out).trim(),
        format!("Error response from daemon: Cannot update container {id}: Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
    );
}

#[test]
fn api_errors_and_warnings_are_mobys() {
    let d = daemon();
    d.berth_ok(&["create", "--name", "up3", "busybox", "sleep", "1000"]);
    let (s, _, b) = d.request(
        "POST",
        "/v1.45/containers/nope/update",
        Some(br#"{"Memory":67108864}"#),
    );
    assert_eq!(
        (s, json(&b)["message"].clone()),
        (404, "No such container: nope".into())
    );
    let (s, _, b) = d.request(
        "POST",
        "/v1.45/containers/up3/update",
        Some(br#"{"Memory":1024}"#),
    );
    assert_eq!(
        (s, json(&b)["message"].clone()),
        (400, "Minimum memory limit allowed is 6MB".into())
    );
    let (s, _, b) = d.request(
        "POST",
        "/v1.45/containers/up3/update",
        Some(br#"{"NanoCpus":1000000000,"CpuQuota":50000}"#),
    );
    assert_eq!(
        (s, json(&b)["message"].clone()),
        (
            400,
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set".into()
        )
    );
    let (s, _, b) = d.request(
        "POST",
        "/v1.45/containers/up3/update",
        Some(br#"{"RestartPolicy":{"Name":"bogus"}}"#),
    );
    assert_eq!(
        (s, json(&b)["message"].clone()),
        (400, "invalid restart policy 'bogus'".into())
    );
    // Kernel memory is ignored with moby's warnings; "no" is accepted.
    let (s, _, b) = d.request(
        "POST",
        "/v1.45/containers/up3/update",
        Some(br#"{"KernelMemory":10485760,"RestartPolicy":{"Name":"no"},"CpuShares":512}"#),
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    let w = json(&b)["Warnings"].clone();
    assert!(
        w[0].as_str()
            .unwrap_or("")
            .starts_with("Specifying a kernel memory limit is deprecated"),
        "{w}"
    );
    let hc = &d.inspect("up3")["HostConfig"];
    assert_eq!(hc["CpuShares"], 512);
    assert_eq!(hc["RestartPolicy"]["Name"], "no");
    // Nothing was changed by the refused requests.
    assert_eq!(hc["Memory"], 0);
    assert_eq!(hc["NanoCpus"], 0);

    // The CLI: no flags, missing containers, several names.
    let out = d.berth(&["update", "up3"]);
    assert_eq!(
        (code(&out), stderr(&out).trim()),
        (
            1,
            "you must provide one or more flags when using this command"
        )
    );
    let out = d.berth(&["update"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("'berth update' requires at least 1 argument"),
        "{}",
        stderr(&out)
    );
    d.berth_ok(&["create", "--name", "up4", "busybox"]);
    let out = d.berth(&["update", "--cpu-shares", "100", "up3", "nope", "up4"]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "up3\nup4\n");
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: No such container: nope"
    );
    assert_eq!(d.inspect("up4")["HostConfig"]["CpuShares"], 100);
    let out = d.berth(&["update", "--restart", "always:2", "up3"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: maximum retry count cannot be used with restart policy 'always'"
    );
}

#[test]
fn the_docker_cli_updates_a_running_container() {
    skip_unless_docker!();
    let d = daemon();
    let id = d.run_detached(&["--name", "dk1", "-m", "64m", "busybox", "sleep", "1000"]);
    let out = d.docker_ok(&[
        "update",
        "--memory",
        "48m",
        "--cpus",
        "0.25",
        "--pids-limit",
        "40",
        "dk1",
    ]);
    assert_eq!(out, "dk1\n");
    assert_eq!(memory_limit(&id), (48u64 << 20).to_string());
    assert_eq!(cfs(&id).0, "25000");
    assert_eq!(pids_max(&id), "40");
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}",
            "dk1"
        ])
        .trim(),
        "50331648 250000000 40"
    );
    let out = d.docker(&["update", "--memory", "1m", "dk1"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("Minimum memory limit allowed is 6MB"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["update", "--kernel-memory", "10m", "dk1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("dk1\n"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("kernel memory limit"),
        "{}",
        stdout(&out)
    );
}
