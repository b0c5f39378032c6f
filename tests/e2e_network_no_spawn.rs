//! No process spawns on the start path (issue 14, point 5): with `strace -f` attached to
//! the daemon, `run --rm -p` on the default bridge and on a user network execs nothing but
//! Berth's own binary (the shim and the runtime) and the container's command, and
//! `network create`/`rm` execs nothing at all: no `ip`,
//! `unshare`, `nsenter` nor `nft` (links, addresses, routes and namespaces go through
//! netlink, rules through libnftables in-process).

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The file names of every `execve` in an `strace -f -e trace=execve` output.
fn execs(trace: &str) -> Vec<String> {
    trace
        .lines()
        .filter_map(|l| l.split_once("execve(\"").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once('"').map(|(f, _)| f.to_string()))
        .collect()
}

#[test]
fn run_rm_on_a_bridge_spawns_nothing_but_the_shim() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("strace is not installed (scripts/setup installs it): skipped");
        return;
    }
    let d = TestDaemon::start();
    d.import_busybox();
    d.berth_ok(&["network", "create", "nospawn"]);
    // warm-up: the image is unpacked, the bridges are there
    d.berth_ok(&["run", "--rm", "busybox", "true"]);
    let pid = d.daemon_pid().unwrap();
    let trace = d.dir.join("strace.out");
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=execve", "-o"])
        .arg(&trace)
        .arg("-p")
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // strace has attached once the daemon shows a tracer
    let traced = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("TracerPid:") && !l.ends_with("\t0"))
            })
            .unwrap_or(false)
    });
    assert!(traced, "strace did not attach");
    for net in ["bridge", "nospawn"] {
        for _ in 0..2 {
            d.berth_ok(&[
                "run",
                "--rm",
                "--network",
                net,
                "-p",
                "127.0.0.1::80",
                "-p",
                "81",
                "busybox",
                "true",
            ]);
        }
    }
    // a network made and removed: bridge, address, subnet look-ups, rules
    d.berth_ok(&["network", "create", "traced"]);
    d.berth_ok(&["network", "rm", "traced"]);
    signal(strace.id() as i32, libc::SIGINT);
    let _ = strace.wait();
    let out = std::fs::read_to_string(&trace).unwrap();
    let all = execs(&out);
    let berth = std::fs::canonicalize(BERTH).unwrap();
    // Berth's binary, or its sealed copy (berth-runtime's `sealed`, exec'd by fd)
    let ours = |f: &str| {
        f == BERTH
            || f == "/proc/self/exe"
            || f.strip_prefix("/proc/self/fd/")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            || std::fs::canonicalize(f)
                .map(|p| p == berth)
                .unwrap_or(false)
    };
    // the container's command, looked up along its PATH
    let container = |f: &str| f.ends_with("/true") || f == "true";
    let others: Vec<&String> = all.iter().filter(|f| !ours(f) && !container(f)).collect();
    assert!(
        others.is_empty(),
        "the daemon spawned {others:?} (all execs: {all:?})"
    );
    assert!(
        all.iter().filter(|f| ours(f)).count() >= 4,
        "the trace saw no shim: {all:?}"
    );
    d.berth_ok(&["network", "rm", "nospawn"]);
}
