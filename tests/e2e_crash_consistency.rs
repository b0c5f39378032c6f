//! Crash consistency (issue 17, points 1 and 3): a daemon killed (SIGKILL) at any instant
//! of create, start, rm or exec leaves no process, cgroup, mount, veth, namespace or
//! nftables rule without a record once it is back; `rm -f` of a container in any state
//! kills everything of it; `--rm` containers that are not running are removed at restore.
//!
//! The daemon kills itself at a named point with `BERTH_TEST_CRASH_AT=<point>` (see
//! `crates/berth-daemon/src/crash_point.rs`), exactly as a `kill -9` at that instant.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// A published port for this test (random, high).
fn some_port() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    20000 + (nanos % 20000) as u16
}

/// Restarts the daemon with `env` set, for the next requests.
fn restart_with_env(d: &mut TestDaemon, env: &[(&str, &str)]) {
    d.stop_daemon(Duration::from_secs(5));
    d.extra_env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    d.start_daemon();
    d.extra_env.clear();
}

/// Runs `args` on a daemon that kills itself at `point`, checks it died, and starts it
/// again (without the crash point) on the same root. Returns what the CLI printed.
fn crash_during(d: &mut TestDaemon, point: &str, args: &[&str]) -> Output {
    restart_with_env(d, &[("BERTH_TEST_CRASH_AT", point)]);
    let pid = d.daemon_pid().expect("daemon pid") as i32;
    let out = d.berth(args);
    assert!(
        wait_until(Duration::from_secs(20), || !pid_alive(pid)),
        "the daemon did not die at {point}; {args:?} printed {out:?}"
    );
    d.kill_daemon();
    d.start_daemon();
    out
}

fn nft_table(d: &TestDaemon) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", &format!("berth_{}", d.bridge)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn links_on(bridge: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// The container IDs (full) of directories in `dir`.
fn ids_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| is_full_id(n))
                .collect()
        })
        .unwrap_or_default()
}

/// Nothing of container `id` is left: no process (shim, container, exec), cgroup,
/// mount, state dir, namespace file, veth, or nftables rule of `port`.
fn assert_nothing_left(d: &TestDaemon, id: &str, port: Option<u16>) {
    let procs: Vec<i32> = processes_under(&d.dir)
        .into_iter()
        .filter(|p| Some(*p as u32) != d.daemon_pid())
        .filter(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let root = std::fs::read_link(format!("/proc/{p}/root")).unwrap_or_default();
            String::from_utf8_lossy(&cmd).contains(id) || root.to_string_lossy().contains(id)
        })
        .collect();
    assert!(procs.is_empty(), "processes of {id} left: {procs:?}");
    let left = wait_until(Duration::from_secs(5), || cgroup_dirs_of(id).is_empty());
    assert!(left, "cgroups of {id} left: {:?}", cgroup_dirs_of(id));
    let mounts: Vec<_> = mounts_under(&d.dir)
        .into_iter()
        .filter(|m| m.to_string_lossy().contains(id))
        .collect();
    assert!(mounts.is_empty(), "mounts of {id} left: {mounts:?}");
    assert!(
        !d.exec_root.join("containers").join(id).exists(),
        "state dir of {id} left"
    );
    assert!(
        !d.exec_root.join("netns").join(id).exists(),
        "network namespace of {id} left"
    );
    // a stopping container's veth is deleted off the request's path (link::delete_links_later)
    let veth = format!("vb{}", &id[..11]);
    let gone = wait_until(Duration::from_secs(5), || {
        !Path::new("/sys/class/net").join(&veth).exists()
    });
    assert!(gone, "veth {veth} left");
    if let Some(port) = port {
        let table = nft_table(d);
        assert!(
            // a published port is a map element `[address . ]port : address . port`
            !table.contains(&format!("{port} : ")),
            "nftables rule for port {port} left:\n{table}"
        );
    }
}

/// A start killed at `point`: afterwards the container is either adopted (running, as
/// its record says) or not running with nothing of it left; either way it can be started
/// and removed, and `rm -f` leaves nothing.
fn start_killed_at(point: &str, adopted: bool) {
    let mut d = daemon();
    let port = some_port();
    let p = format!("{port}:80");
    let id = d
        .berth_ok(&[
            "create", "--name", "ctr", "-p", &p, "-v", "/data", "busybox", "sleep", "1000",
        ])
        .trim()
        .to_string();
    crash_during(&mut d, point, &["start", "ctr"]);
    let v = d.inspect("ctr");
    if adopted {
        assert_eq!(v["State"]["Status"], "running", "{v}");
        let pid = v["State"]["Pid"].as_i64().unwrap_or(0) as i32;
        assert!(pid > 0 && pid_alive(pid), "adopted container's pid {pid}");
        assert!(v["State"]["StartedAt"] != "0001-01-01T00:00:00Z");
        // Watched as usual: stop reaches it and the exit is recorded.
        d.berth_ok(&["stop", "-t", "1", "ctr"]);
        assert_eq!(d.inspect("ctr")["State"]["Status"], "exited");
        assert!(!pid_alive(pid));
    } else {
        assert_eq!(v["State"]["Status"], "created", "{v}");
        assert_eq!(v["State"]["Running"], false);
        assert_eq!(v["State"]["Pid"], 0);
        assert_nothing_left(&d, &id, Some(port));
        assert_eq!(links_on(&d.bridge), Vec::<String>::new());
    }
    // The record matches reality: it starts and goes as any other.
    d.berth_ok(&["start", "ctr"]);
    assert_eq!(d.inspect("ctr")["State"]["Status"], "running");
    d.berth_ok(&["rm", "-f", "ctr"]);
    assert_nothing_left(&d, &id, Some(port));
    assert_eq!(d.berth_ok(&["ps", "-aq"]), "");
}

#[test]
fn killed_after_the_start_is_recorded() {
    start_killed_at("start-after-mark", false);
}

#[test]
fn killed_after_the_network_is_attached() {
    start_killed_at("start-after-attach", false);
}

#[test]
fn killed_while_the_shim_waits_for_start() {
    start_killed_at("start-after-spawn", false);
}

#[test]
fn killed_after_the_container_was_released_it_is_adopted() {
    start_killed_at("start-after-go", true);
}

#[test]
fn rm_f_of_a_created_container_with_a_live_shim_kills_it() {
    let mut d = daemon();
    let id = d
        .berth_ok(&["create", "--name", "ctr", "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    // The start hangs once the shim has set the container up (a created container
    // with a live shim), and `rm -f` comes in.
    restart_with_env(&mut d, &[("BERTH_TEST_STALL_AT", "start-after-spawn")]);
    let host = d.host();
    let starter = std::thread::spawn(move || {
        let mut cmd = Command::new(BERTH);
        cmd.args(["-H", &host, "start", "ctr"]);
        run_with_timeout(cmd, None, Duration::from_secs(60), "start")
    });
    let state = d.exec_root.join("containers").join(&id);
    assert!(
        wait_until(Duration::from_secs(20), || state.join("shim.pid").exists()),
        "the shim did not start"
    );
    let shim_pid: i32 = std::fs::read_to_string(state.join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(shim_pid));
    assert_eq!(d.inspect("ctr")["State"]["Status"], "created");
    d.berth_ok(&["rm", "-f", "ctr"]);
    assert!(!pid_alive(shim_pid), "rm -f left the shim running");
    assert_nothing_left(&d, &id, None);
    assert_eq!(d.berth_ok(&["ps", "-aq"]), "");
    // The stalled start never comes back; the daemon goes with the harness.
    d.kill_daemon();
    let _ = starter.join();
}

#[test]
fn a_client_gone_during_start_leaves_no_half_done_start() {
    let mut d = daemon();
    let id = d
        .berth_ok(&[
            "create", "--name", "ctr", "-p", "0:80", "busybox", "sleep", "1000",
        ])
        .trim()
        .to_string();
    restart_with_env(
        &mut d,
        &[
            ("BERTH_TEST_STALL_AT", "start-after-spawn"),
            ("BERTH_TEST_STALL_SECS", "2"),
        ],
    );
    let mut client = Command::new(BERTH)
        .args(["-H", &d.host(), "start", "ctr"])
        .spawn()
        .unwrap();
    let state = d.exec_root.join("containers").join(&id);
    assert!(
        wait_until(Duration::from_secs(20), || state.join("shim.pid").exists()),
        "the shim did not start"
    );
    // The client goes away while the start is half-way (its request is dropped).
    let _ = client.kill();
    let _ = client.wait();
    // The start still runs to its end: the container runs, as its record says.
    assert!(
        wait_until(Duration::from_secs(20), || d.inspect("ctr")["State"]
            ["Status"]
            == "running"),
        "{}",
        d.inspect("ctr")["State"]
    );
    let pid = d.inspect("ctr")["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    assert!(pid > 0 && pid_alive(pid));
    d.berth_ok(&["rm", "-f", "ctr"]);
    assert_nothing_left(&d, &id, None);
}

#[test]
fn killed_during_stop_the_record_matches_the_process() {
    let mut d = daemon();
    let port = some_port();
    let p = format!("{port}:80");
    // Ignores SIGTERM: the stop waits its timeout, and the daemon dies meanwhile.
    let id = d.run_detached(&[
        "--name",
        "ctr",
        "-p",
        &p,
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; sleep 1000",
    ]);
    let pid = d.inspect("ctr")["State"]["Pid"].as_i64().unwrap() as i32;
    let host = d.host();
    let stopper = std::thread::spawn(move || {
        let mut cmd = Command::new(BERTH);
        cmd.args(["-H", &host, "stop", "-t", "2", "ctr"]);
        run_with_timeout(cmd, None, Duration::from_secs(60), "stop")
    });
    std::thread::sleep(Duration::from_millis(700));
    d.kill_daemon();
    let _ = stopper.join();
    // The shim finishes the stop on its own or not; either way the record says so.
    std::thread::sleep(Duration::from_secs(3));
    d.start_daemon();
    let v = d.inspect("ctr");
    let running = v["State"]["Running"].as_bool().unwrap();
    assert_eq!(running, pid_alive(pid), "{}", v["State"]);
    if !running {
        assert_nothing_left(&d, &id, Some(port));
    }
    d.berth_ok(&["rm", "-f", "ctr"]);
    assert!(!pid_alive(pid));
    assert_nothing_left(&d, &id, Some(port));
}

#[test]
fn killed_during_create_leaves_no_directory_without_a_record() {
    let mut d = daemon();
    let out = crash_during(
        &mut d,
        "create-before-record",
        &["create", "--name", "ctr", "busybox", "true"],
    );
    assert_ne!(code(&out), 0);
    assert_eq!(d.berth_ok(&["ps", "-aq"]), "");
    assert_eq!(ids_in(&d.root.join("containers")), Vec::<String>::new());
    // The name is free.
    d.berth_ok(&["create", "--name", "ctr", "busybox", "true"]);
}

#[test]
fn killed_during_rm_leaves_nothing_of_the_container() {
    let mut d = daemon();
    let port = some_port();
    let p = format!("{port}:80");
    let id = d.run_detached(&["--name", "ctr", "-p", &p, "busybox", "sleep", "1000"]);
    crash_during(&mut d, "rm-after-record", &["rm", "-f", "ctr"]);
    assert_eq!(d.berth_ok(&["ps", "-aq"]), "");
    assert!(!d.root.join("containers").join(&id).exists());
    assert_nothing_left(&d, &id, Some(port));
    assert_eq!(links_on(&d.bridge), Vec::<String>::new());
    // Its address and port are free again.
    d.run_detached(&["--name", "ctr", "-p", &p, "busybox", "sleep", "1000"]);
}

#[test]
fn killed_during_exec_the_exec_goes_with_its_container() {
    let mut d = daemon();
    let id = d.run_detached(&["--name", "ctr", "busybox", "sleep", "1000"]);
    crash_during(
        &mut d,
        "exec-after-spawn",
        &["exec", "-d", "ctr", "sleep", "999"],
    );
    assert_eq!(d.inspect("ctr")["State"]["Status"], "running");
    d.berth_ok(&["rm", "-f", "ctr"]);
    assert_nothing_left(&d, &id, None);
}

/// `<hierarchy>/<own cgroup>/berth/<id>` in the v1 `pids` hierarchy (or the v2 tree), where
/// a shim of a daemon started by this test places the container.
fn pids_cgroup_of(id: &str) -> Option<std::path::PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in own.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        let base = match ctrls {
            "pids" => "/sys/fs/cgroup/pids",
            "" if !Path::new("/sys/fs/cgroup/pids").exists() => "/sys/fs/cgroup",
            _ => continue,
        };
        return Some(
            Path::new(base)
                .join(path.trim_start_matches('/'))
                .join("berth")
                .join(id),
        );
    }
    None
}

#[test]
fn cgroups_no_state_dir_names_are_removed_at_restore() {
    let mut d = daemon();
    let id = d
        .berth_ok(&["create", "--name", "ctr", "busybox", "true"])
        .trim()
        .to_string();
    d.kill_daemon();
    // As a shim killed after making the container's cgroup, before saving its path.
    let Some(cg) = pids_cgroup_of(&id) else {
        eprintln!("no pids cgroup hierarchy: skipped");
        return;
    };
    std::fs::create_dir_all(&cg).unwrap();
    let mut sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
    std::fs::write(cg.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    d.start_daemon();
    let gone = wait_until(Duration::from_secs(5), || {
        matches!(sleeper.try_wait(), Ok(Some(_)))
    });
    if !gone {
        let _ = sleeper.kill();
        let _ = sleeper.wait();
    }
    let cg_left = cg.exists();
    if cg_left {
        let _ = std::fs::remove_dir(&cg);
    }
    assert!(gone, "the process in the container's cgroup was not killed");
    assert!(!cg_left, "cgroup {} left", cg.display());
    assert_eq!(d.inspect("ctr")["State"]["Status"], "created");
}

#[test]
fn auto_remove_containers_that_are_not_running_go_at_restore() {
    let mut d = daemon();
    // Never started, with an anonymous volume.
    d.berth_ok(&[
        "create", "--rm", "--name", "never", "-v", "/data", "busybox", "true",
    ]);
    // Exits while the daemon is down.
    d.run_detached(&["--rm", "--name", "quick", "busybox", "sleep", "1"]);
    // Still running: kept.
    d.run_detached(&["--rm", "--name", "long", "busybox", "sleep", "1000"]);
    // Not auto-remove: kept.
    d.berth_ok(&[
        "create", "--name", "plain", "-v", "/data", "busybox", "true",
    ]);
    assert_eq!(d.berth_ok(&["volume", "ls", "-q"]).lines().count(), 2);
    d.kill_daemon();
    std::thread::sleep(Duration::from_secs(2));
    d.start_daemon();
    let names = d.berth_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["long", "plain"]);
    // `never`'s anonymous volume went with it (as `rm -v`), `plain`'s stays.
    let vols = d.berth_ok(&["volume", "ls", "-q"]);
    let plain = d.inspect("plain")["Mounts"][0]["Name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(vols.trim(), plain);
}
