//! Live restore and cleanliness (issue 2, points 7 and 10): containers outlive a SIGKILLed
//! daemon; after `rm`, and after a failed start, nothing is left behind.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

#[test]
fn containers_survive_a_sigkilled_daemon() {
    let mut d = daemon();
    let id = d.run_detached(&[
        "--name",
        "survivor",
        "busybox",
        "sh",
        "-c",
        "echo before; trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    assert!(wait_until(Duration::from_secs(10), || d
        .berth_ok(&["logs", "survivor"])
        == "before\n"));
    let pid = d.inspect("survivor")["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    assert!(pid > 0 && pid_alive(pid));

    d.kill_daemon();
    std::thread::sleep(Duration::from_millis(300));
    assert!(pid_alive(pid), "the container died with the daemon");
    d.start_daemon();

    let ps = d.berth_ok(&["ps"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&id[..12]) && l.contains("Up ")),
        "ps after restart:\n{ps}"
    );
    let v = d.inspect("survivor");
    assert_eq!(v["State"]["Status"], "running");
    assert_eq!(v["State"]["Pid"].as_i64().unwrap_or(0) as i32, pid);
    assert_eq!(d.berth_ok(&["logs", "survivor"]), "before\n");
    // exec and stop still reach it, and wait reports the exit.
    assert_eq!(
        d.berth_ok(&["exec", "survivor", "echo", "after"]),
        "after\n"
    );
    d.berth_ok(&["stop", "-t", "5", "survivor"]);
    assert_eq!(d.berth_ok(&["wait", "survivor"]).trim(), "0");
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(pid)),
        "process still alive after stop"
    );
    assert_eq!(d.inspect("survivor")["State"]["Status"], "exited");
}

#[test]
fn wait_started_after_restore_sees_the_exit() {
    let mut d = daemon();
    d.run_detached(&["--name", "waiter", "busybox", "sh", "-c", "sleep 3; exit 9"]);
    d.kill_daemon();
    d.start_daemon();
    assert_eq!(d.berth_ok(&["wait", "waiter"]).trim(), "9");
    assert_eq!(d.inspect("waiter")["State"]["ExitCode"], 9);
}

#[test]
fn a_container_that_exits_while_the_daemon_is_down_shows_exited() {
    let mut d = daemon();
    d.run_detached(&[
        "--name",
        "quick",
        "busybox",
        "sh",
        "-c",
        "echo bye; sleep 1; exit 5",
    ]);
    d.kill_daemon();
    std::thread::sleep(Duration::from_secs(2));
    d.start_daemon();
    let v = d.inspect("quick");
    assert_eq!(v["State"]["Status"], "exited", "{}", v["State"]);
    assert_eq!(v["State"]["ExitCode"], 5, "{}", v["State"]);
    assert_eq!(d.berth_ok(&["logs", "quick"]), "bye\n");
}

#[test]
fn a_container_whose_shim_died_is_shown_exited_with_a_reason() {
    let mut d = daemon();
    let id = d.run_detached(&["--name", "orphan", "busybox", "sleep", "1000"]);
    let pid = d.inspect("orphan")["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    d.kill_daemon();
    // Kill the shim (a `berth shim` process that names this container or is an ancestor of
    // its process) and the container.
    let is_shim = |p: i32| {
        let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        String::from_utf8_lossy(&cmd).split('\0').nth(1) == Some("shim")
    };
    let mut shims: Vec<i32> = processes_under(&d.dir)
        .into_iter()
        .filter(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            is_shim(*p) && String::from_utf8_lossy(&cmd).contains(&id)
        })
        .collect();
    let mut ancestor = parent_pid(pid);
    while let Some(a) = ancestor.filter(|a| *a > 1) {
        if is_shim(a) && !shims.contains(&a) {
            shims.push(a);
        }
        ancestor = parent_pid(a);
    }
    assert!(
        !shims.is_empty(),
        "no `berth shim` process names container {id} or is its ancestor"
    );
    for p in shims.iter().chain(std::iter::once(&pid)) {
        signal(*p, libc::SIGKILL);
    }
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(pid)));
    d.start_daemon();
    let v = d.inspect("orphan");
    assert_eq!(v["State"]["Running"], false, "{}", v["State"]);
    assert_eq!(v["State"]["Status"], "exited", "{}", v["State"]);
    assert!(
        v["State"]["Error"].as_str().is_some_and(|e| !e.is_empty()),
        "no reason given: {}",
        v["State"]
    );
    d.berth_ok(&["rm", "orphan"]);
    assert_nothing_left(&d, &id);
}

fn parent_pid(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Asserts that nothing of container `id` is left on the host: no mount under the daemon's
/// dirs, no cgroup, no process, and (with `rm`) no state dir under --root or --exec-root.
fn assert_nothing_left(d: &TestDaemon, id: &str) {
    let mounts = mounts_under(&d.dir);
    assert!(
        mounts.is_empty(),
        "mounts left under {}: {mounts:?}",
        d.dir.display()
    );
    let proc_mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    assert!(!proc_mounts.contains(id), "/proc/mounts still names {id}");
    let cgroups = cgroup_dirs_of(id);
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    let daemon_pid = d.daemon_pid().map(|p| p as i32);
    let procs: Vec<(i32, String)> = processes_under(&d.dir)
        .into_iter()
        .filter(|p| Some(*p) != daemon_pid)
        .map(|p| {
            (
                p,
                String::from_utf8_lossy(
                    &std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default(),
                )
                .replace('\0', " "),
            )
        })
        .collect();
    assert!(procs.is_empty(), "processes left: {procs:?}");
    let paths = paths_naming(&d.dir, id);
    assert!(paths.is_empty(), "state left: {paths:?}");
}

/// Every path under `dir` whose file name contains `id`.
fn paths_naming(dir: &Path, id: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().contains(id) {
                found.push(e.path());
            }
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(e.path());
            }
        }
    }
    found
}

#[test]
fn nothing_is_left_after_rm() {
    let d = daemon();
    let id = d.run_detached(&[
        "--name",
        "clean",
        "-m",
        "32m",
        "--pids-limit",
        "20",
        "busybox",
        "sh",
        "-c",
        "echo hi > /tmp/x; sleep 1000",
    ]);
    let pid = d.inspect("clean")["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    assert!(
        !cgroup_dirs_of(&id).is_empty(),
        "the running container has no cgroup"
    );
    d.berth_ok(&["exec", "-d", "clean", "sleep", "1000"]);
    d.berth_ok(&["rm", "-f", "clean"]);
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(pid)),
        "container process {pid} survived rm -f"
    );
    assert_nothing_left(&d, &id);
}

#[test]
fn nothing_is_left_after_stop_then_rm() {
    let d = daemon();
    let id = d.run_detached(&["--name", "clean2", "busybox", "sleep", "1000"]);
    d.berth_ok(&["stop", "-t", "0", "clean2"]);
    // A stopped container keeps its files but has no process, mount or cgroup.
    assert!(
        mounts_under(&d.root).is_empty(),
        "mounts left after stop: {:?}",
        mounts_under(&d.root)
    );
    assert!(
        cgroup_dirs_of(&id).is_empty(),
        "cgroups left after stop: {:?}",
        cgroup_dirs_of(&id)
    );
    d.berth_ok(&["rm", "clean2"]);
    assert_nothing_left(&d, &id);
}

#[test]
fn nothing_is_left_after_a_failed_start() {
    let d = daemon();
    let out = d.berth(&[
        "run",
        "--name",
        "broken",
        "-m",
        "32m",
        "busybox",
        "nosuchcmd",
    ]);
    assert_eq!(code(&out), 127, "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("exec: \"nosuchcmd\": executable file not found in $PATH"),
        "{}",
        stderr(&out)
    );
    let id = d.full_id("broken");
    // The container still exists (as with Docker), but nothing runs or is mounted for it.
    assert!(
        mounts_under(&d.dir).is_empty(),
        "mounts left: {:?}",
        mounts_under(&d.dir)
    );
    assert!(
        cgroup_dirs_of(&id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs_of(&id)
    );
    let runtime_state = paths_naming(&d.exec_root, &id);
    assert!(
        runtime_state.is_empty(),
        "runtime state left under --exec-root: {runtime_state:?}"
    );
    d.berth_ok(&["rm", "broken"]);
    assert_nothing_left(&d, &id);
}

#[test]
fn nothing_is_left_after_run_rm_of_a_missing_command() {
    let d = daemon();
    let out = d.berth(&["run", "--rm", "busybox", "nosuchcmd"]);
    assert_eq!(code(&out), 127, "stderr: {}", stderr(&out));
    assert!(wait_until(Duration::from_secs(5), || d
        .berth_ok(&["ps", "-a", "-q"])
        .trim()
        .is_empty()));
    assert!(
        mounts_under(&d.dir).is_empty(),
        "mounts left: {:?}",
        mounts_under(&d.dir)
    );
    let left = std::fs::read_dir(d.root.join("containers"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "containers/ is not empty");
}
