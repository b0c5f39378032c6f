//! Restart policies and OOM (issue 15, points 1 and 5): `--restart` on run and update,
//! Docker's backoff and `RestartCount`, `Restarting` in inspect and ps, user stops that
//! end the policy, containers started at daemon start, restarts by the shim while the
//! daemon is down, and `OOMKilled`.

mod common;

use common::*;
use std::time::Duration;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

fn state(d: &TestDaemon, name: &str) -> serde_json::Value {
    d.inspect(name)["State"].clone()
}

fn restart_count(d: &TestDaemon, name: &str) -> i64 {
    d.inspect(name)["RestartCount"].as_i64().unwrap_or(-1)
}

fn status(d: &TestDaemon, name: &str) -> String {
    state(d, name)["Status"].as_str().unwrap_or("").to_string()
}

/// The actions of the container's events so far (`GET /events` with `until`).
fn actions(d: &TestDaemon, name: &str) -> Vec<String> {
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let filters = format!("{{\"container\":[\"{name}\"]}}");
    let path = format!(
        "/events?since=0&until={until}&filters={}",
        filters
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
            .replace('[', "%5B")
            .replace(']', "%5D")
            .replace(':', "%3A")
    );
    let (st, _, body) = d.request("GET", &path, None);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8_lossy(&body)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["Action"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn invalid_policies_are_refused_with_dockers_words() {
    let d = daemon();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--restart", "always:3"],
            "maximum retry count cannot be used with restart policy 'always'",
        ),
        (
            &["--restart", "unless-stopped:1"],
            "maximum retry count cannot be used with restart policy 'unless-stopped'",
        ),
        (
            &["--restart", "on-failure:-1"],
            "maximum retry count cannot be negative",
        ),
        (
            &["--restart", "sometimes"],
            "invalid restart policy 'sometimes'",
        ),
        // The CLI's own checks, as Docker's CLI words them.
        (
            &["--rm", "--restart", "always"],
            "conflicting options: cannot specify both --restart and --rm",
        ),
        (
            &["--restart", ":3"],
            "invalid restart policy format: no policy provided before colon",
        ),
    ];
    for (flags, want) in cases {
        let mut args = vec!["create"];
        args.extend_from_slice(flags);
        args.extend(["busybox", "true"]);
        let out = d.berth(&args);
        assert_ne!(code(&out), 0, "{args:?} was accepted");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    let (st, _, body) = d.request(
        "POST",
        "/containers/create",
        Some(br#"{"Image":"busybox","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":1}}}"#),
    );
    assert_eq!(st, 400);
    assert!(
        String::from_utf8_lossy(&body)
            .contains("can't create 'AutoRemove' container with restart policy"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // The API, with an empty name and a count: accepted as "no", as dockerd does.
    let (st, _, body) = d.request(
        "POST",
        "/containers/create",
        Some(br#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"RestartPolicy":{"Name":"","MaximumRetryCount":2}}}"#),
    );
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    // update: the same checks, and not on an AutoRemove container.
    d.berth_ok(&["create", "--name", "up", "busybox", "true"]);
    let out = d.berth(&["update", "--restart", "always:2", "up"]);
    assert!(
        stderr(&out).contains("maximum retry count cannot be used with restart policy 'always'"),
        "{}",
        stderr(&out)
    );
    d.berth_ok(&["create", "--rm", "--name", "rm", "busybox", "true"]);
    let out = d.berth(&["update", "--restart", "always", "rm"]);
    assert!(
        stderr(&out).contains(
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn on_failure_restarts_failures_up_to_the_limit() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "fail",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    assert!(
        wait_until(Duration::from_secs(20), || status(&d, "fail") == "exited"
            && restart_count(&d, "fail") == 2),
        "state: {} count {}",
        state(&d, "fail"),
        restart_count(&d, "fail")
    );
    std::thread::sleep(Duration::from_millis(1500));
    let v = d.inspect("fail");
    assert_eq!(v["RestartCount"], 2, "restarted after the limit");
    assert_eq!(v["State"]["ExitCode"], 3);
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(v["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    assert_eq!(d.berth_ok(&["logs", "fail"]), "run\nrun\nrun\n");
    // A success is not a failure.
    d.run_detached(&["--name", "ok", "--restart", "on-failure", "busybox", "true"]);
    assert_eq!(d.berth_ok(&["wait", "ok"]).trim(), "0");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(status(&d, "ok"), "exited");
    assert_eq!(restart_count(&d, "ok"), 0);
    // A user start resets the count.
    d.berth_ok(&["start", "fail"]);
    assert!(wait_until(Duration::from_secs(20), || status(&d, "fail")
        == "exited"
        && restart_count(&d, "fail") == 2));
}

#[test]
fn always_backs_off_and_shows_restarting() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "loop",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    // ps and inspect while the policy waits to restart it (the waits grow: 100 ms,
    // 200 ms, ... so this state lasts longer and longer).
    let mut seen_ps = String::new();
    let seen = wait_until(Duration::from_secs(30), || {
        let ps = d.berth_ok(&["ps", "--format", "{{.Status}}", "--filter", "name=loop"]);
        let st = state(&d, "loop");
        if ps.starts_with("Restarting (1) ") && ps.trim_end().ends_with(" ago") {
            seen_ps = ps;
            return st["Restarting"] == true
                && st["Running"] == true
                && st["Status"] == "restarting";
        }
        false
    });
    assert!(seen, "never saw Restarting (1) in ps and inspect");
    assert_eq!(
        d.berth_ok(&["ps", "-q", "--filter", "status=restarting"])
            .lines()
            .count(),
        1
    );
    // The backoff (100 ms, doubling): once it waits 800 ms and more, a second brings at
    // most two more restarts; without it the loop would restart dozens of times.
    assert!(wait_until(Duration::from_secs(30), || restart_count(
        &d, "loop"
    ) >= 4));
    let n = restart_count(&d, "loop");
    std::thread::sleep(Duration::from_secs(1));
    let m = restart_count(&d, "loop");
    assert!(m - n <= 2, "RestartCount went from {n} to {m} in a second");
    // While it waits (3.2 s and more from the sixth restart on), exec, pause, top and
    // attach are refused with Docker's words; start has nothing to do.
    assert!(wait_until(Duration::from_secs(30), || restart_count(
        &d, "loop"
    ) >= 6
        && status(&d, "loop") == "restarting"));
    let id = d.full_id("loop");
    if docker_cli_available() {
        // The real Docker CLI's ps and inspect show it as dockerd's do.
        let ps = d.docker_ok(&["ps", "--format", "{{.Status}}", "--filter", "name=loop"]);
        assert!(
            ps.starts_with("Restarting (1) ") && ps.trim_end().ends_with(" ago"),
            "{ps:?}"
        );
        let st = d.docker_ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Restarting}} {{.State.Running}}",
            "loop",
        ]);
        assert_eq!(st.trim(), "restarting true true");
    }
    let busy = format!("Container {id} is restarting, wait until the container is running");
    for args in [
        &["exec", "loop", "true"][..],
        &["pause", "loop"],
        &["top", "loop"],
    ] {
        let out = d.berth(args);
        assert!(stderr(&out).contains(&busy), "{args:?}: {}", stderr(&out));
    }
    let out = d.berth(&["attach", "loop"]);
    assert!(
        stderr(&out)
            .contains("You cannot attach to a restarting container, wait until it is running"),
        "{}",
        stderr(&out)
    );
    d.berth_ok(&["start", "loop"]);
    assert_eq!(status(&d, "loop"), "restarting");
    // wait answers at the next exit, as dockerd's does for a restarting container.
    assert_eq!(d.berth_ok(&["wait", "loop"]).trim(), "1");
    // A stop ends it, also during the backoff; it stays stopped.
    d.berth_ok(&["stop", "loop"]);
    assert_eq!(status(&d, "loop"), "exited");
    let n = restart_count(&d, "loop");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(&d, "loop"), "exited");
    assert_eq!(restart_count(&d, "loop"), n);
    // rm -f of a restarting container.
    d.run_detached(&[
        "--name",
        "loop2",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 2",
    ]);
    assert!(wait_until(Duration::from_secs(10), || restart_count(
        &d, "loop2"
    ) >= 2));
    d.berth_ok(&["rm", "-f", "loop2"]);
    assert_ne!(code(&d.berth(&["inspect", "loop2"])), 0);
}

#[test]
fn user_stop_and_kill_end_the_policy_until_the_next_start() {
    let d = daemon();
    for policy in ["always", "unless-stopped"] {
        let name = format!("svc-{policy}");
        d.run_detached(&[
            "--name",
            &name,
            "--restart",
            policy,
            "busybox",
            "sleep",
            "1000",
        ]);
        d.berth_ok(&["stop", "-t", "1", &name]);
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(status(&d, &name), "exited", "{policy} after stop");
        assert_eq!(restart_count(&d, &name), 0);
        d.berth_ok(&["start", &name]);
        assert_eq!(status(&d, &name), "running");
        d.berth_ok(&["kill", &name]);
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(status(&d, &name), "exited", "{policy} after kill");
        assert_eq!(state(&d, &name)["ExitCode"], 137);
        d.berth_ok(&["rm", &name]);
    }
    // A crash (not the user) is restarted; `docker restart` keeps the policy.
    let id = d.run_detached(&[
        "--name",
        "crash",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    let pid = state(&d, "crash")["Pid"].as_i64().unwrap() as i32;
    signal(pid, libc::SIGKILL);
    assert!(wait_until(Duration::from_secs(10), || {
        let s = state(&d, "crash");
        s["Status"] == "running" && s["Pid"].as_i64() != Some(pid as i64)
    }));
    assert_eq!(restart_count(&d, "crash"), 1);
    assert_eq!(state(&d, "crash")["ExitCode"], 0);
    // Docker's events for a restart by the policy: die, then start (no restart event).
    let acts = actions(&d, "crash");
    let at = acts
        .iter()
        .position(|a| a == "die")
        .unwrap_or_else(|| panic!("{acts:?}"));
    assert_eq!(acts[at..].to_vec(), ["die", "start"], "{acts:?}");
    // The restarted process is in the same network namespace: same address, and it
    // reaches the bridge.
    let ip = d.inspect("crash")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let gw = d.inspect("crash")["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!ip.is_empty() && !gw.is_empty());
    assert!(d
        .berth_ok(&["exec", "crash", "ip", "-4", "addr", "show", "eth0"])
        .contains(&format!("inet {ip}/")));
    d.berth_ok(&["exec", "crash", "ping", "-c", "1", "-W", "2", &gw]);
    d.berth_ok(&["restart", "-t", "1", &id]);
    assert_eq!(status(&d, "crash"), "running");
    assert_eq!(restart_count(&d, "crash"), 0);
}

#[test]
fn update_restart_reaches_a_running_container() {
    let d = daemon();
    d.run_detached(&["--name", "later", "busybox", "sh", "-c", "sleep 2; exit 4"]);
    d.berth_ok(&["update", "--restart", "on-failure:1", "later"]);
    let v = d.inspect("later");
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert!(
        wait_until(Duration::from_secs(20), || status(&d, "later") == "exited"
            && restart_count(&d, "later") == 1),
        "{}",
        state(&d, "later")
    );
    // And back to no.
    d.berth_ok(&["update", "--restart", "no", "later"]);
    assert_eq!(
        d.inspect("later")["HostConfig"]["RestartPolicy"]["Name"],
        "no"
    );

    // Limits updated on a running container hold after a restart by the policy.
    let id = d.run_detached(&[
        "--name",
        "limited",
        "--restart",
        "always",
        "-m",
        "64m",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.berth_ok(&[
        "update",
        "--memory",
        "48m",
        "--memory-swap",
        "96m",
        "limited",
    ]);
    let pid = state(&d, "limited")["Pid"].as_i64().unwrap() as i32;
    signal(pid, libc::SIGKILL);
    assert!(wait_until(Duration::from_secs(10), || {
        let s = state(&d, "limited");
        s["Status"] == "running" && s["Pid"].as_i64() != Some(pid as i64)
    }));
    let limit = cgroup_dirs_of(&id)
        .iter()
        .find_map(|dir| {
            ["memory.limit_in_bytes", "memory.max"]
                .iter()
                .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
        })
        .expect("the container's memory cgroup");
    assert_eq!(limit.trim(), (48u64 << 20).to_string());
}

#[test]
fn daemon_start_starts_policy_containers() {
    let mut d = daemon();
    for (name, policy) in [("aa", "always"), ("uu", "unless-stopped"), ("nn", "no")] {
        d.run_detached(&[
            "--name",
            name,
            "--restart",
            policy,
            "busybox",
            "sleep",
            "1000",
        ]);
        d.berth_ok(&["stop", "-t", "1", name]);
    }
    // An unless-stopped container that exited by itself (not stopped by the user)...
    d.run_detached(&[
        "--name",
        "u2",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.kill_daemon();
    // ... its shim and process are gone (a host reboot), so the daemon must start it.
    let pid_file = d.exec_root.join("containers");
    for entry in std::fs::read_dir(&pid_file).unwrap().flatten() {
        if let Ok(p) = std::fs::read_to_string(entry.path().join("shim.pid")) {
            signal(p.trim().parse().unwrap(), libc::SIGKILL);
        }
        if let Ok(p) = std::fs::read_to_string(entry.path().join("init.pid")) {
            signal(p.trim().parse().unwrap(), libc::SIGKILL);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    d.start_daemon();
    assert!(
        wait_until(Duration::from_secs(15), || status(&d, "aa") == "running"
            && status(&d, "u2") == "running"),
        "aa: {} u2: {}",
        state(&d, "aa"),
        state(&d, "u2")
    );
    assert_eq!(status(&d, "uu"), "exited");
    assert_eq!(status(&d, "nn"), "exited");
    assert_eq!(d.berth_ok(&["exec", "aa", "echo", "hi"]), "hi\n");
}

#[test]
fn the_shim_restarts_a_crash_while_the_daemon_is_down() {
    let mut d = daemon();
    d.run_detached(&[
        "--name",
        "solo",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "echo up; exec sleep 1000",
    ]);
    let before = state(&d, "solo");
    let pid = before["Pid"].as_i64().unwrap() as i32;
    let id = d.full_id("solo");
    d.kill_daemon();
    signal(pid, libc::SIGKILL);
    // The shim restarts it by itself: a second "up" in the log.
    let log = d
        .root
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("up")
            .count()
            == 2),
        "no restart while the daemon was down"
    );
    d.start_daemon();
    let v = d.inspect("solo");
    assert_eq!(v["State"]["Status"], "running", "{}", v["State"]);
    assert_eq!(v["RestartCount"], 1);
    let new_pid = v["State"]["Pid"].as_i64().unwrap() as i32;
    assert!(new_pid > 0 && new_pid != pid && pid_alive(new_pid));
    assert!(v["State"]["StartedAt"].as_str() > before["StartedAt"].as_str());
    assert_eq!(d.berth_ok(&["exec", "solo", "echo", "in"]), "in\n");
    // The daemon follows the next crash too.
    signal(new_pid, libc::SIGKILL);
    assert!(wait_until(Duration::from_secs(10), || restart_count(
        &d, "solo"
    ) == 2
        && status(&d, "solo") == "running"));
    d.berth_ok(&["stop", "-t", "1", "solo"]);
    assert_eq!(status(&d, "solo"), "exited");
}

#[test]
fn the_daemon_restarts_a_container_whose_shim_died() {
    let d = daemon();
    let id = d.run_detached(&[
        "--name",
        "orphan",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    let pid = state(&d, "orphan")["Pid"].as_i64().unwrap() as i32;
    let shim_pid: i32 =
        std::fs::read_to_string(d.exec_root.join("containers").join(&id).join("shim.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    // The shim goes, and its container with it (parent-death signal).
    signal(shim_pid, libc::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(15), || {
            let s = state(&d, "orphan");
            s["Status"] == "running" && s["Pid"].as_i64().is_some_and(|p| p > 0 && p != pid as i64)
        }),
        "{}",
        state(&d, "orphan")
    );
    assert!(!pid_alive(pid));
    assert_eq!(restart_count(&d, "orphan"), 1);
    assert_eq!(d.berth_ok(&["exec", "orphan", "echo", "back"]), "back\n");
    // Without a policy it stays down.
    let id2 = d.run_detached(&["--name", "plain", "busybox", "sleep", "1000"]);
    let shim2: i32 =
        std::fs::read_to_string(d.exec_root.join("containers").join(&id2).join("shim.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    signal(shim2, libc::SIGKILL);
    assert!(wait_until(Duration::from_secs(10), || status(&d, "plain") == "exited"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&d, "plain"), "exited");
    assert_eq!(state(&d, "plain")["ExitCode"], 255);
}

#[test]
fn restarts_that_end_while_the_daemon_is_down_are_counted() {
    let mut d = daemon();
    let id = d.run_detached(&[
        "--name",
        "gives-up",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 5",
    ]);
    let state_dir = d.exec_root.join("containers").join(&id);
    d.kill_daemon();
    // Three runs and two restarts later the shim has written exit.json and gone.
    assert!(
        wait_until(Duration::from_secs(20), || !state_dir
            .join("shim.sock")
            .exists()),
        "the shim is still there"
    );
    d.start_daemon();
    let v = d.inspect("gives-up");
    assert_eq!(v["State"]["Status"], "exited", "{}", v["State"]);
    assert_eq!(v["State"]["ExitCode"], 5);
    assert_eq!(v["RestartCount"], 2);
    // The limit is reached, so the daemon's start-up does not start it either.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&d, "gives-up"), "exited");
}

#[test]
fn a_container_killed_by_its_memory_limit_is_oom_killed() {
    let d = daemon();
    // `tail` keeps a line of /dev/zero (no newline ever) in memory: it grows until the
    // 16 MiB limit of the container's own cgroup kills it.
    d.run_detached(&[
        "--name",
        "hog",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(d.berth_ok(&["wait", "hog"]).trim(), "137");
    let st = state(&d, "hog");
    assert_eq!(st["OOMKilled"], true, "{st}");
    assert_eq!(st["ExitCode"], 137);
    // Docker's order: oom, then die.
    let acts = actions(&d, "hog");
    let at = acts
        .iter()
        .position(|a| a == "oom")
        .unwrap_or_else(|| panic!("{acts:?}"));
    assert_eq!(
        acts.get(at + 1).map(String::as_str),
        Some("die"),
        "{acts:?}"
    );
    // With a restart policy, each OOM kill is followed by oom, die and start.
    d.run_detached(&[
        "--name",
        "hog2",
        "--restart",
        "on-failure:1",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "tail",
        "/dev/zero",
    ]);
    assert!(wait_until(Duration::from_secs(30), || status(&d, "hog2")
        == "exited"
        && restart_count(&d, "hog2") == 1));
    let acts = actions(&d, "hog2");
    let at = acts
        .iter()
        .position(|a| a == "oom")
        .unwrap_or_else(|| panic!("{acts:?}"));
    assert_eq!(
        acts[at..at + 3].to_vec(),
        ["oom", "die", "start"],
        "{acts:?}"
    );
    assert_eq!(state(&d, "hog2")["OOMKilled"], true);
    // A container that exits by itself is not.
    d.run_detached(&["--name", "fine", "--memory", "16m", "busybox", "true"]);
    assert_eq!(d.berth_ok(&["wait", "fine"]).trim(), "0");
    assert_eq!(state(&d, "fine")["OOMKilled"], false);
}

#[path = "common/compose.rs"]
mod compose;

#[test]
fn compose_restart_always_keeps_a_service_up() {
    if !compose::compose_available() {
        return;
    }
    let d = daemon();
    let proj = d.dir.join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(
        proj.join("docker-compose.yml"),
        "version: \"3.8\"\nservices:\n  flaky:\n    image: busybox\n    restart: always\n    command: sh -c \"echo up; sleep 1; exit 1\"\n",
    )
    .unwrap();
    let compose = |args: &[&str]| compose::compose_in(&d, "berthr", &proj, args);
    assert_success(&compose(&["up", "-d"]), "docker-compose up -d");
    let name = "berthr_flaky_1";
    assert_eq!(
        d.inspect(name)["HostConfig"]["RestartPolicy"]["Name"],
        "always"
    );
    assert!(
        wait_until(Duration::from_secs(20), || restart_count(&d, name) >= 2
            && status(&d, name) == "running"),
        "{}",
        state(&d, name)
    );
    assert!(d.berth_ok(&["logs", name]).matches("up\n").count() >= 3);
    assert_success(&compose(&["down", "-t", "1"]), "docker-compose down");
    assert_eq!(d.berth_ok(&["ps", "-aq"]), "");
}
