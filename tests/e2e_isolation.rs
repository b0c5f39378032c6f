//! What a container is isolated from (issue 2, point 6): namespaces, hostname, pid 1,
//! loopback-only network with `--network none`, capabilities, read-only and masked paths, the overlay layer,
//! and cgroup limits.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

fn run(d: &TestDaemon, script: &str) -> String {
    d.berth_ok(&["run", "--rm", "busybox", "sh", "-c", script])
}

#[test]
fn hostname_is_the_short_id_and_the_process_is_pid_1() {
    let d = daemon();
    let id = d.run_detached(&[
        "--name",
        "iso",
        "busybox",
        "sh",
        "-c",
        "hostname; echo $$; exec sleep 1000",
    ]);
    assert!(
        wait_until(std::time::Duration::from_secs(10), || d
            .berth_ok(&["logs", "iso"])
            .lines()
            .count()
            == 2),
        "logs: {}",
        d.berth_ok(&["logs", "iso"])
    );
    assert_eq!(d.berth_ok(&["logs", "iso"]), format!("{}\n1\n", &id[..12]));
    assert_eq!(d.inspect("iso")["Config"]["Hostname"], &id[..12]);
    // Only the container's own processes are visible.
    let ps = d.berth_ok(&["exec", "iso", "ps", "-o", "pid,comm"]);
    let pids: Vec<&str> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(pids.first(), Some(&"1"), "{ps}");
    assert!(
        pids.len() <= 3,
        "more processes than sleep, ps and sh are visible:\n{ps}"
    );
}

#[test]
fn own_pid_mount_uts_ipc_and_net_namespaces() {
    let d = daemon();
    let out = run(
        &d,
        "for n in pid mnt uts ipc net; do echo $n $(readlink /proc/self/ns/$n); done",
    );
    let mut seen = 0;
    for line in out.lines() {
        let (ns, link) = line.split_once(' ').unwrap_or_else(|| panic!("{out}"));
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).expect("host ns link");
        assert!(link.starts_with(&format!("{ns}:[")), "{line}");
        assert_ne!(
            link,
            host.to_str().unwrap(),
            "the container shares the host's {ns} namespace"
        );
        seen += 1;
    }
    assert_eq!(seen, 5, "{out}");
}

#[test]
fn network_none_is_loopback_only() {
    let d = daemon();
    let run = |script: &str| {
        d.berth_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            script,
        ])
    };
    let links = run("ip -o link show | cut -d: -f2");
    let names: Vec<&str> = links.split_whitespace().collect();
    assert_eq!(names, ["lo"], "ip link: {links}");
    let dev = run("tail -n +3 /proc/net/dev | cut -d: -f1");
    let names: Vec<&str> = dev.split_whitespace().collect();
    assert_eq!(names, ["lo"], "/proc/net/dev: {dev}");
    // lo is up and answers.
    assert_eq!(
        run("ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ok"),
        "ok\n"
    );
}

#[test]
fn dockers_default_capabilities() {
    let d = daemon();
    let out = run(&d, "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status");
    let caps: std::collections::BTreeMap<&str, &str> = out
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k, v.trim()))
        .collect();
    assert_eq!(caps.get("CapEff"), Some(&"00000000a80425fb"), "{out}");
    assert_eq!(caps.get("CapPrm"), Some(&"00000000a80425fb"), "{out}");
    assert_eq!(caps.get("CapBnd"), Some(&"00000000a80425fb"), "{out}");
    assert_eq!(caps.get("CapInh"), Some(&"0000000000000000"), "{out}");
    assert_eq!(caps.get("CapAmb"), Some(&"0000000000000000"), "{out}");
    // A non-root user gets no effective capabilities.
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "-u",
        "nobody",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(
        out.split_whitespace().nth(1),
        Some("0000000000000000"),
        "{out}"
    );
    // Without CAP_SYS_ADMIN, mount is refused.
    let out = d.berth(&[
        "run", "--rm", "busybox", "mount", "-t", "tmpfs", "none", "/mnt",
    ]);
    assert!(!out.status.success(), "mount worked inside the container");
}

#[test]
fn sys_is_read_only_and_proc_paths_are_masked_or_read_only() {
    let d = daemon();
    let out = run(&d, "awk '$2==\"/sys\" {print $4}' /proc/mounts");
    assert!(
        out.trim().split(',').next() == Some("ro"),
        "/sys options: {out:?}"
    );
    assert!(!d
        .berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo x > /sys/kernel/uevent_helper"
        ])
        .status
        .success());

    // /proc/kcore is masked: /dev/null bound over it (where the host kernel has one at all).
    if std::path::Path::new("/proc/kcore").exists() {
        assert_eq!(
            run(
                &d,
                "[ -c /proc/kcore ] && echo chardev; wc -c < /proc/kcore"
            ),
            "chardev\n0\n"
        );
    } else {
        assert_eq!(run(&d, "[ ! -e /proc/kcore ] && echo absent"), "absent\n");
    }
    // Files that exist are masked by a /dev/null bind; /proc/timer_list exists here.
    if std::path::Path::new("/proc/timer_list").exists() {
        assert_eq!(
            run(&d, "[ -c /proc/timer_list ] && wc -c < /proc/timer_list"),
            "0\n",
            "/proc/timer_list is not masked"
        );
    }
    for masked in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/latency_stats",
        "/proc/timer_stats",
    ] {
        let out = d.berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            &format!("[ ! -e {masked} ] || [ -c {masked} ] && echo masked"),
        ]);
        assert_eq!(stdout(&out), "masked\n", "{masked} is not masked");
    }
    for dir in ["/proc/acpi", "/proc/scsi", "/sys/firmware"] {
        let out = run(
            &d,
            &format!("[ ! -e {dir} ] || [ -z \"$(ls -A {dir})\" ] && echo empty"),
        );
        assert_eq!(out, "empty\n", "{dir} is not masked");
    }

    // /proc/sys is read-only: even the namespaced hostname cannot be written through it.
    let out = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo changed > /proc/sys/kernel/hostname",
    ]);
    assert!(
        !out.status.success(),
        "/proc/sys/kernel/hostname was writable"
    );
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    let opts = run(&d, "awk '$2==\"/proc/sys\" {print $4}' /proc/mounts");
    assert!(
        opts.lines().any(|o| o.split(',').next() == Some("ro")),
        "/proc/sys mount: {opts:?}"
    );
    assert!(!d
        .berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo 1 > /proc/sysrq-trigger"
        ])
        .status
        .success());
}

#[test]
fn default_devices() {
    let d = daemon();
    let out = run(
        &d,
        "for f in null zero full random urandom tty; do [ -c /dev/$f ] && echo $f; done",
    );
    assert_eq!(out, "null\nzero\nfull\nrandom\nurandom\ntty\n");
    assert_eq!(run(&d, "head -c 4 /dev/zero | wc -c"), "4\n");
    for path in ["/dev/pts", "/dev/shm", "/dev/mqueue"] {
        assert_eq!(
            run(&d, &format!("[ -d {path} ] && echo ok")),
            "ok\n",
            "{path}"
        );
    }
    // No host disks.
    assert_eq!(
        run(&d, "ls /dev | grep -E '^(sd|vd|nvme|xvd)' | wc -l"),
        "0\n"
    );
}

#[test]
fn writes_never_change_the_image_and_vanish_with_rm() {
    let d = daemon();
    d.berth_ok(&[
        "run",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "echo x > /berth-marker-file && rm /bin/ls && echo changed > /etc/hostname.orig",
    ]);
    let id = d.full_id("writer");
    // Another container from the same image sees the image as it was.
    assert_eq!(
        run(&d, "[ ! -e /berth-marker-file ] && [ -e /bin/ls ] && [ ! -e /etc/hostname.orig ] && echo pristine"),
        "pristine\n"
    );
    // The writer's layer holds its writes until rm.
    assert!(
        find_file(&d.root, "berth-marker-file").is_some(),
        "the container's write is not under --root"
    );
    d.berth_ok(&["rm", "writer"]);
    assert_eq!(
        find_file(&d.root, "berth-marker-file"),
        None,
        "the write survived rm"
    );
    assert!(
        !d.root.join("containers").join(&id).exists(),
        "containers/<id> survived rm"
    );
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let rd = std::fs::read_dir(dir).ok()?;
    for e in rd.flatten() {
        let ft = e.file_type().ok()?;
        if e.file_name() == name {
            return Some(e.path());
        }
        if ft.is_dir() && !ft.is_symlink() {
            if let Some(p) = find_file(&e.path(), name) {
                return Some(p);
            }
        }
    }
    None
}

/// The test process's own cgroup path in a v1 controller (or "" for v2: `0::`).
fn own_cgroup(controller: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrls
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_string())
    })
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The container's cgroup dir for `controller` (v1), or its v2 dir when v1 lacks it.
fn container_cgroup(
    id: &str,
    v1_controller: &str,
    v1_file: &str,
    v2_file: &str,
) -> (PathBuf, String) {
    let dirs = cgroup_dirs_of(id);
    let v1 = Path::new("/sys/fs/cgroup").join(v1_controller);
    if let Some(dir) = dirs
        .iter()
        .find(|p| p.starts_with(&v1) && p.join(v1_file).exists())
    {
        return (
            dir.clone(),
            read_trim(&dir.join(v1_file)).unwrap_or_default(),
        );
    }
    if let Some(dir) = dirs.iter().find(|p| p.join(v2_file).exists()) {
        return (
            dir.clone(),
            read_trim(&dir.join(v2_file)).unwrap_or_default(),
        );
    }
    panic!("no cgroup with {v1_controller}/{v1_file} or {v2_file} for container {id}; berth cgroups found: {dirs:?}");
}

#[test]
fn memory_limit_lands_in_the_containers_cgroup_under_the_daemons() {
    let d = daemon();
    let id = d.run_detached(&["-m", "64m", "busybox", "sleep", "1000"]);
    let (dir, value) = container_cgroup(&id, "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(value, "67108864", "{}", dir.display());
    assert_eq!(d.inspect(&id)["HostConfig"]["Memory"], 67108864);
    // The cgroup nests under the daemon's own cgroup (the daemon inherits the test's).
    if dir.starts_with("/sys/fs/cgroup/memory") {
        let own = own_cgroup("memory").unwrap_or_default();
        let want = Path::new("/sys/fs/cgroup/memory")
            .join(own.trim_start_matches('/'))
            .join("berth")
            .join(&id);
        assert_eq!(dir, want, "memory cgroup is not under the daemon's cgroup");
    }
    // The container's process is in it.
    let pid = d.inspect(&id)["State"]["Pid"].as_i64().unwrap_or(0);
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    assert!(
        procs.split_whitespace().any(|p| p == pid.to_string()),
        "pid {pid} not in {}: {procs}",
        dir.display()
    );
}

#[test]
fn pids_limit_cpus_and_cpu_shares() {
    let d = daemon();
    let id = d.run_detached(&[
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "busybox",
        "sleep",
        "1000",
    ]);
    let (_, pids) = container_cgroup(&id, "pids", "pids.max", "pids.max");
    assert_eq!(pids, "50");
    let dirs = cgroup_dirs_of(&id);
    if let Some(cpu) = dirs.iter().find(|p| p.join("cpu.cfs_quota_us").exists()) {
        assert_eq!(
            read_trim(&cpu.join("cpu.cfs_quota_us")).as_deref(),
            Some("50000")
        );
        assert_eq!(
            read_trim(&cpu.join("cpu.cfs_period_us")).as_deref(),
            Some("100000")
        );
        assert_eq!(read_trim(&cpu.join("cpu.shares")).as_deref(), Some("512"));
    } else if let Some(cpu) = dirs.iter().find(|p| p.join("cpu.max").exists()) {
        assert_eq!(
            read_trim(&cpu.join("cpu.max")).as_deref(),
            Some("50000 100000")
        );
        assert!(cpu.join("cpu.weight").exists());
    } else {
        panic!("no cpu cgroup for {id}: {dirs:?}");
    }
    let v = d.inspect(&id);
    assert_eq!(v["HostConfig"]["PidsLimit"], 50);
    assert_eq!(v["HostConfig"]["NanoCpus"], 500000000);
    assert_eq!(v["HostConfig"]["CpuShares"], 512);
    // The pids limit holds inside the container.
    let out = d.berth(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for i in $(seq 1 80); do sleep 30 & done; wait",
    ]);
    assert!(
        stderr(&out).contains("Resource temporarily unavailable") || !out.status.success(),
        "80 processes started under --pids-limit 50"
    );
}

/// The init enters its cgroups partly by itself (one thread moving itself into each v1
/// hierarchy) and partly through clone3 into the v2 one, and an exec's process the same
/// way: the container's first process and an exec's sit in every cgroup of the
/// container, v1 and v2, from their first instruction.
#[test]
fn the_containers_first_process_sits_in_every_one_of_its_cgroups() {
    let d = daemon();
    let out = d.berth_ok(&[
        "run",
        "--name",
        "placed",
        "--cgroupns",
        "host",
        "busybox",
        "cat",
        "/proc/self/cgroup",
    ]);
    let id = d.berth_ok(&["inspect", "-f", "{{.Id}}", "placed"]);
    assert_in_cgroups_of(&out, id.trim());
    let id = d.run_detached(&["--cgroupns", "host", "busybox", "sleep", "1000"]);
    let out = d.berth_ok(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert_in_cgroups_of(&out, &id);
}

/// `out` (a `/proc/self/cgroup`) names container `id`'s cgroup in every hierarchy this
/// test's process is in, but name=… ones (systemd's, not Berth's).
fn assert_in_cgroups_of(out: &str, id: &str) {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut checked = 0;
    for line in out.lines() {
        // `N:controllers:/path`; name=… hierarchies (systemd's) are not Berth's.
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next(), parts.next().unwrap_or(""), parts.next());
        if ctrls.starts_with("name=") {
            continue;
        }
        let path = path.unwrap_or("");
        assert!(
            path.ends_with(&format!("/berth/{id}")),
            "{line}: not in the container's cgroup\n{out}"
        );
        checked += 1;
    }
    // every hierarchy this test's process is in (but name=…) was checked
    let ours = own
        .lines()
        .filter(|l| !l.split(':').nth(1).unwrap_or("").starts_with("name="))
        .count();
    assert_eq!(checked, ours, "{out}\nours:\n{own}");
}
