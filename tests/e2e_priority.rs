//! Lifecycle work runs on threads below the daemon's priority (issue 17, point 8: reads
//! never queue behind starts), but a container keeps the nice value Docker gives it: the
//! daemon's own, whatever thread started it (the start, a restart by the policy, an exec).

mod common;

use common::*;
use std::time::Duration;

/// Field 19 of /proc/PID/stat: the nice value.
fn nice_of_stat(stat: &str) -> i32 {
    let after_comm = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    after_comm
        .split_whitespace()
        .nth(16)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no nice value in {stat:?}"))
}

fn daemon_nice(d: &TestDaemon) -> i32 {
    let pid = d.daemon_pid().expect("the daemon runs");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the daemon's stat");
    nice_of_stat(&stat)
}

const NICE_IN_CONTAINER: &str = "cut -d' ' -f19 /proc/self/stat";

#[test]
fn containers_and_their_execs_keep_the_daemons_nice_value() {
    let d = TestDaemon::start();
    d.import_busybox();
    let want = daemon_nice(&d).to_string();

    let out = d.berth_ok(&["run", "--rm", "busybox", "sh", "-c", NICE_IN_CONTAINER]);
    assert_eq!(out.trim(), want, "a container's nice value");

    let id = d.run_detached(&["busybox", "sleep", "1000"]);
    let pid = d.inspect(&id)["State"]["Pid"].as_i64().expect("a pid");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("init's stat");
    assert_eq!(
        nice_of_stat(&stat).to_string(),
        want,
        "a detached container's init"
    );
    // Its shim (the init's parent) set the container up below the daemon's priority
    // and then took the daemon's nice value back.
    let ppid = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().nth(1))
        .expect("init's parent");
    let shim = std::fs::read_to_string(format!("/proc/{ppid}/stat")).expect("the shim's stat");
    let cmdline = std::fs::read(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
    assert!(
        cmdline.starts_with(b"berth\0shim\0"),
        "init's parent is not a shim: {:?}",
        String::from_utf8_lossy(&cmdline)
    );
    assert_eq!(nice_of_stat(&shim).to_string(), want, "the running shim");
    let out = d.berth_ok(&["exec", &id, "sh", "-c", NICE_IN_CONTAINER]);
    assert_eq!(out.trim(), want, "an exec's nice value");

    // Restarted by its policy (from the daemon's lifecycle threads, no request).
    let r = d.berth_ok(&[
        "run",
        "-d",
        "--restart",
        "on-failure:3",
        "busybox",
        "sh",
        "-c",
        &format!("{NICE_IN_CONTAINER}; sleep 0.2; exit 1"),
    ]);
    let r = r.trim().to_string();
    assert!(
        wait_until(Duration::from_secs(60), || {
            d.inspect(&r)["RestartCount"].as_i64().unwrap_or(0) >= 3
                && !d.inspect(&r)["State"]["Running"].as_bool().unwrap_or(true)
        }),
        "the container was not restarted by its policy"
    );
    let logs = d.berth_ok(&["logs", &r]);
    let lines: Vec<&str> = logs.lines().collect();
    assert!(lines.len() >= 4, "logs of a restarted container: {logs:?}");
    assert!(
        lines.iter().all(|l| l.trim() == want),
        "nice values across restarts: {lines:?}, want {want}"
    );
    d.berth_ok(&["rm", "-f", &id, &r]);
}
