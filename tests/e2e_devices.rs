//! Devices and resource knobs of `run` (issue 16, points 3, 4, 6 and 8), checked from
//! inside the container with the real Docker CLI: `--device` nodes and their device
//! cgroup rules, `--device-cgroup-rule`, `--privileged` with the host's devices,
//! `--oom-score-adj`, `--oom-kill-disable`, `--cpu-rt-period`, `--cgroupns host`,
//! `--userns host`, what create refuses in Docker's words, and inspect as Docker shows it.

mod common;

use common::*;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// The devices cgroup (v1) of this host, where `devices.list` can be read.
fn has_v1_devices() -> bool {
    std::path::Path::new("/sys/fs/cgroup/devices/devices.list").exists()
}

#[test]
fn device_nodes_and_their_cgroup_rules() {
    skip_unless_docker!();
    let d = daemon();
    // /dev/null under another name, and /dev/zero
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull",
        "--device",
        "/dev/zero",
        "busybox",
        "stat",
        "-c",
        "%F %t:%T %a",
        "/dev/mynull",
        "/dev/zero",
    ]);
    assert_eq!(
        out,
        "character special file 1:3 666\ncharacter special file 1:5 666\n"
    );
    // a device outside the defaults, read-only in the device cgroup: readable listing,
    // writing refused by the cgroup
    if has_v1_devices() && std::path::Path::new("/dev/fuse").exists() {
        let out = d.docker_ok(&[
            "run",
            "--rm",
            "--device",
            "/dev/fuse:/dev/myfuse:r",
            "busybox",
            "sh",
            "-c",
            "stat -c '%t:%T' /dev/myfuse; grep 229 /sys/fs/cgroup/devices/devices.list; echo x > /dev/myfuse || echo refused",
        ]);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("a:e5"), "{out}");
        assert_eq!(lines.next(), Some("c 10:229 r"), "{out}");
        assert_eq!(out.lines().last(), Some("refused"), "{out}");
        // as Docker's devices.list: by type, major and minor, the defaults and ours
        let out = d.docker_ok(&[
            "run",
            "--rm",
            "--device",
            "/dev/fuse",
            "busybox",
            "cat",
            "/sys/fs/cgroup/devices/devices.list",
        ]);
        assert_eq!(
            out,
            "b *:* m\nc *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:1 rwm\nc 5:2 rwm\nc 10:200 rwm\nc 10:229 rwm\nc 136:* rwm\n"
        );
    }

    // a directory of devices: every node under it, at the same place
    if std::path::Path::new("/dev/net/tun").exists() {
        let out = d.docker_ok(&[
            "run",
            "--rm",
            "--device",
            "/dev/net",
            "busybox",
            "stat",
            "-c",
            "%n %t:%T",
            "/dev/net/tun",
        ]);
        assert_eq!(out, "/dev/net/tun a:c8\n");
    }

    // --device-cgroup-rule: in the device cgroup, and shown by inspect
    if has_v1_devices() {
        let out = d.docker_ok(&[
            "run",
            "--name",
            "rules",
            "--device-cgroup-rule",
            "c 7:128 rwm",
            "busybox",
            "cat",
            "/sys/fs/cgroup/devices/devices.list",
        ]);
        assert!(out.lines().any(|l| l == "c 7:128 rwm"), "{out}");
        let hc = &d.inspect("rules")["HostConfig"];
        assert_eq!(hc["DeviceCgroupRules"], serde_json::json!(["c 7:128 rwm"]));
        d.docker_ok(&["rm", "rules"]);
    }
}

#[test]
fn privileged_gets_the_hosts_devices() {
    skip_unless_docker!();
    let d = daemon();
    let host: Vec<String> = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .filter(|e| {
            use std::os::unix::fs::FileTypeExt;
            let ft = e.file_type().unwrap();
            (ft.is_char_device() || ft.is_block_device()) && e.file_name() != "console"
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "ls /dev; echo ==; cat /sys/fs/cgroup/devices/devices.list 2>/dev/null",
    ]);
    let (listing, cgroup) = out.split_once("==\n").expect("separator");
    let ours: Vec<&str> = listing.lines().collect();
    // every device node directly in the host's /dev (but the console) is there too
    for name in &host {
        assert!(ours.contains(&name.as_str()), "{name} missing: {ours:?}");
    }
    if has_v1_devices() {
        assert_eq!(cgroup, "a *:* rwm\n");
    }
    // without --privileged, only Docker's few
    let out = d.docker_ok(&["run", "--rm", "busybox", "ls", "/dev"]);
    let mut expected = vec![
        "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
        "stdout", "tty", "urandom", "zero",
    ];
    if std::path::Path::new("/proc/kcore").exists() {
        expected.push("core");
        expected.sort();
    }
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn oom_and_realtime_knobs() {
    skip_unless_docker!();
    let d = daemon();
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--oom-score-adj",
        "500",
        "busybox",
        "cat",
        "/proc/self/oom_score_adj",
    ]);
    assert_eq!(out, "500\n");
    if std::path::Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists() {
        let out = d.docker(&[
            "run",
            "--rm",
            "--oom-kill-disable",
            "busybox",
            "head",
            "-1",
            "/sys/fs/cgroup/memory/memory.oom_control",
        ]);
        assert_success(&out, "run --oom-kill-disable");
        assert_eq!(stdout(&out), "oom_kill_disable 1\n");
        assert!(
            stderr(&out)
                .contains("OOM killer is disabled for the container, but no memory limit is set"),
            "{}",
            stderr(&out)
        );
    }
    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_period_us").exists() {
        let out = d.docker_ok(&[
            "run",
            "--rm",
            "--cpu-rt-period",
            "50000",
            "busybox",
            "cat",
            "/sys/fs/cgroup/cpu/cpu.rt_period_us",
        ]);
        assert_eq!(out, "50000\n");
    }
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--cpus",
        "0.5",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max",
    ]);
    assert!(out == "50000\n100000\n" || out == "50000 100000\n", "{out}");
}

#[test]
fn cgroupns_host_and_userns_host() {
    skip_unless_docker!();
    let d = daemon();
    // private (the default): the container's cgroup is its root
    let out = d.docker_ok(&[
        "run",
        "--name",
        "priv",
        "busybox",
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(out.lines().all(|l| l.ends_with(":/")), "{out}");
    assert_eq!(d.inspect("priv")["HostConfig"]["CgroupnsMode"], "private");
    // host: the full path, and /sys/fs/cgroup still shows the container's own limits
    let out = d.docker_ok(&[
        "run",
        "--name",
        "hostns",
        "--cgroupns",
        "host",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "cat /proc/self/cgroup; echo ==; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
    ]);
    let id = d.full_id("hostns");
    let (cg, limit) = out.split_once("==\n").expect("separator");
    assert!(
        cg.lines()
            .filter(|l| !l.contains("name="))
            .all(|l| l.ends_with(&format!("/berth/{id}"))),
        "{cg}"
    );
    assert_eq!(limit, "67108864\n");
    assert_eq!(d.inspect("hostns")["HostConfig"]["CgroupnsMode"], "host");
    // --userns host: the host's user namespace, as every container without remapping
    let out = d.docker_ok(&[
        "run",
        "--name",
        "uns",
        "--userns",
        "host",
        "busybox",
        "cat",
        "/proc/self/uid_map",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"]
    );
    assert_eq!(d.inspect("uns")["HostConfig"]["UsernsMode"], "host");
    d.docker_ok(&["rm", "priv", "hostns", "uns"]);
}

#[test]
fn refusals_in_dockers_words_leave_nothing_behind() {
    skip_unless_docker!();
    let d = daemon();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--gpus", "all"],
            "could not select device driver \"\" with capabilities: [[gpu]]",
        ),
        (
            &["--storage-opt", "size=1G"],
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
        ),
        (
            &["--oom-score-adj", "1001"],
            "Invalid value 1001, range for oom score adj is [-1000, 1000]",
        ),
        (
            &["--cpu-rt-runtime", "2000", "--cpu-rt-period", "1000"],
            "cpu real-time runtime cannot be higher than cpu real-time period",
        ),
        (
            &["--pid", "container:missing"],
            "No such container: missing",
        ),
        (
            &["--add-host", "nocolon"],
            "bad format for add-host: \"nocolon\"",
        ),
        (
            &["--ulimit", "nofile=x"],
            "invalid argument \"nofile=x\" for \"--ulimit\" flag",
        ),
        (
            &["--device-cgroup-rule", "bogus"],
            "invalid device cgroup format 'bogus'",
        ),
        (
            &["--platform", "linux/s390x"],
            "does not match the specified platform: wanted linux/s390x, actual: linux/amd64",
        ),
    ];
    for (flags, text) in cases {
        if flags[0] == "--platform" && std::env::consts::ARCH != "x86_64" {
            continue;
        }
        let mut args = vec!["run", "--rm", "--pull", "never"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "true"]);
        let out = d.docker(&args);
        assert_ne!(code(&out), 0, "{flags:?}");
        assert!(stderr(&out).contains(text), "{flags:?}: {}", stderr(&out));
    }
    assert_eq!(
        d.docker_ok(&["ps", "-aq"]).trim(),
        "",
        "a refusal left a container"
    );
    // The daemon checks what clients send without the CLI's checks.
    let bodies = [
        (
            serde_json::json!({"DeviceCgroupRules": ["bogus"]}),
            "invalid device cgroup rule format: 'bogus'",
        ),
        (
            serde_json::json!({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "rel", "CgroupPermissions": "rwm"}]}),
            "rel is not an absolute path",
        ),
        (
            serde_json::json!({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rwx"}]}),
            "bad mode specified: rwx",
        ),
        (
            serde_json::json!({"UsernsMode": "bogus"}),
            "--userns: invalid USER mode",
        ),
        (
            serde_json::json!({"CpuCount": 2}),
            "\"--cpu-count\" is only supported on a Docker daemon running on windows",
        ),
        (
            serde_json::json!({"CgroupnsMode": "bogus"}),
            "invalid cgroup namespace mode: bogus",
        ),
    ];
    for (hc, text) in bodies {
        let body = serde_json::json!({"Image": "busybox", "HostConfig": hc});
        let (status, _, resp) = d.request(
            "POST",
            "/v1.41/containers/create",
            Some(body.to_string().as_bytes()),
        );
        let resp = String::from_utf8_lossy(&resp);
        assert_eq!(status, 400, "{hc}: {resp}");
        assert!(resp.contains(&text.replace('"', "\\\"")), "{hc}: {resp}");
    }
    // CpuPercent is Windows-only: discarded with Docker's warning
    let body = serde_json::json!({"Image": "busybox", "HostConfig": {"CpuPercent": 50}});
    let (status, _, resp) = d.request(
        "POST",
        "/v1.41/containers/create?name=pct",
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(status, 201);
    let resp: serde_json::Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(
        resp["Warnings"],
        serde_json::json!(["linux does not support CPU percent. Percent discarded."])
    );
    assert_eq!(d.inspect("pct")["HostConfig"]["CpuPercent"], 0);
    d.docker_ok(&["rm", "pct"]);

    // A missing device: Docker's error at start; the container stays created (as with
    // Docker) and nothing of the start is left: no cgroup, no mount, no process.
    let out = d.docker(&[
        "run",
        "--name",
        "nodev",
        "--device",
        "/nonexistent",
        "busybox",
        "true",
    ]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains(
            "error gathering device information while adding custom device \"/nonexistent\": no such file or directory"
        ),
        "{}",
        stderr(&out)
    );
    let id = d.full_id("nodev");
    assert_eq!(d.inspect("nodev")["State"]["Status"], "created");
    assert!(cgroup_dirs_of(&id).is_empty(), "{:?}", cgroup_dirs_of(&id));
    assert!(mounts_under(&d.exec_root).is_empty());
    d.docker_ok(&["rm", "nodev"]);
    let out = d.docker(&["run", "--rm", "--device", "/nonexistent", "busybox", "true"]);
    assert_ne!(code(&out), 0);
    assert_eq!(
        d.docker_ok(&["ps", "-aq"]).trim(),
        "",
        "run --rm left a container"
    );
}

#[test]
fn inspect_shows_what_docker_shows() {
    skip_unless_docker!();
    let d = daemon();
    d.docker_ok(&["create", "--name", "plain", "busybox", "true"]);
    let v = d.inspect("plain");
    let hc = &v["HostConfig"];
    assert_eq!(hc["NetworkMode"], "default");
    assert_eq!(hc["ShmSize"], 67108864);
    assert_eq!(hc["IpcMode"], "private");
    assert_eq!(hc["CpuCount"], 0);
    assert_eq!(hc["CpuPercent"], 0);
    assert!(hc["DeviceRequests"].is_null());
    let masked: Vec<&str> = hc["MaskedPaths"]
        .as_array()
        .expect("MaskedPaths")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    for p in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/sys/firmware",
    ] {
        assert!(masked.contains(&p), "{masked:?}");
    }
    assert_eq!(
        hc["ReadonlyPaths"],
        serde_json::json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ])
    );
    // the image defines no PATH: none is added to the config (the process gets one)
    assert!(
        v["Config"]["Env"].as_array().is_none_or(|e| e.is_empty()),
        "{}",
        v["Config"]["Env"]
    );
    // the masked paths are what the container sees masked
    let out = d.docker_ok(&["start", "-a", "plain"]);
    assert_eq!(out, "");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo $PATH; wc -c < /proc/keys; grep ' /proc/sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1",
    ]);
    assert_eq!(
        out,
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n0\nro\n"
    );
    // lists the CLI leaves unset are null, defaults recorded as Docker records them
    let hc = &d.inspect("plain")["HostConfig"];
    for k in [
        "Binds",
        "CapAdd",
        "CapDrop",
        "GroupAdd",
        "Links",
        "SecurityOpt",
        "VolumesFrom",
        "DeviceCgroupRules",
        "PidsLimit",
        "MemorySwappiness",
    ] {
        assert!(hc[k].is_null(), "{k}: {}", hc[k]);
    }
    assert!(hc.get("Mounts").is_none(), "{hc}");
    assert_eq!(hc["BlkioDeviceReadBps"], serde_json::json!([]));
    let out = d.docker_ok(&[
        "run",
        "--name",
        "mem",
        "-m",
        "64m",
        "--memory-swappiness",
        "10",
        "--ulimit",
        "nofile=100:200",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.swappiness 2>/dev/null || echo 10",
    ]);
    assert_eq!(out, "10\n");
    let hc = &d.inspect("mem")["HostConfig"];
    assert_eq!(hc["MemorySwap"], 128i64 << 20);
    assert_eq!(hc["MemorySwappiness"], 10);
    assert_eq!(
        serde_json::to_string(&hc["Ulimits"]).unwrap(),
        r#"[{"Name":"nofile","Hard":200,"Soft":100}]"#
    );
    d.docker_ok(&["rm", "mem"]);
    let out = d.docker(&["create", "--memory-swappiness", "101", "busybox"]);
    assert_ne!(code(&out), 0);
    let out = d.docker(&["create", "--device-read-bps", "/dev/null:1mb", "busybox"]);
    assert!(
        stderr(&out).contains("not supported by Berth yet"),
        "{}",
        stderr(&out)
    );
    // privileged: nothing masked, as Docker (null)
    d.docker_ok(&[
        "create",
        "--name",
        "priv",
        "--privileged",
        "--network",
        "bridge",
        "busybox",
    ]);
    let hc = &d.inspect("priv")["HostConfig"];
    assert!(
        hc["MaskedPaths"].is_null() && hc["ReadonlyPaths"].is_null(),
        "{hc}"
    );
    assert_eq!(hc["NetworkMode"], "bridge");
    d.docker_ok(&["rm", "plain", "priv"]);
}
