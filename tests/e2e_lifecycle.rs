//! The container lifecycle commands (issue 2, point 5): create, start, stop, kill, restart,
//! rm, ps, logs, wait, inspect, rename, pause/unpause, top, exec.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

fn status_of(d: &TestDaemon, name: &str) -> String {
    d.inspect(name)["State"]["Status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn wait_for_log(d: &TestDaemon, name: &str, needle: &str) {
    assert!(
        wait_until(Duration::from_secs(15), || stdout(
            &d.berth(&["logs", name])
        )
        .contains(needle)),
        "{needle:?} never appeared in the logs of {name}: {:?}",
        stdout(&d.berth(&["logs", name]))
    );
}

#[test]
fn create_then_start_runs_it() {
    let d = daemon();
    let id = d
        .berth_ok(&[
            "create",
            "--name",
            "c1",
            "busybox",
            "sh",
            "-c",
            "echo started; exec sleep 1000",
        ])
        .trim()
        .to_string();
    assert!(is_full_id(&id), "create printed {id:?}");
    assert_eq!(status_of(&d, "c1"), "created");
    let v = d.inspect("c1");
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["State"]["Pid"], 0);
    assert_eq!(
        d.berth_ok(&["start", "c1"]).trim(),
        "c1",
        "start prints what it was given"
    );
    assert_eq!(status_of(&d, "c1"), "running");
    let pid = d.inspect("c1")["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    assert!(
        pid > 0 && pid_alive(pid),
        "State.Pid {pid} is not a live process"
    );
    wait_for_log(&d, "c1", "started");
    // Starting a running container is not an error.
    d.berth_ok(&["start", "c1"]);
}

#[test]
fn stop_waits_t_seconds_then_kills_a_process_that_ignores_term() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; echo ready; while true; do sleep 0.2; done",
    ]);
    wait_for_log(&d, "stubborn", "ready");
    let t0 = Instant::now();
    assert_eq!(
        d.berth_ok(&["stop", "-t", "2", "stubborn"]).trim(),
        "stubborn"
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "stop -t 2 returned after {took:?}, before the grace period"
    );
    assert!(took < Duration::from_secs(10), "stop -t 2 took {took:?}");
    let v = d.inspect("stubborn");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 137, "{}", v["State"]);
}

#[test]
fn stop_sends_term_first() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "polite",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    wait_for_log(&d, "polite", "ready");
    let t0 = Instant::now();
    d.berth_ok(&["stop", "-t", "20", "polite"]);
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "stop took {:?} for a process that exits on TERM",
        t0.elapsed()
    );
    assert_eq!(d.inspect("polite")["State"]["ExitCode"], 0);
    assert!(d.berth_ok(&["logs", "polite"]).contains("got TERM"));
    // Stopping a stopped container is fine.
    d.berth_ok(&["stop", "polite"]);
}

#[test]
fn kill_with_signal_and_default_sigkill() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "killme",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got USR1; exit 7' USR1; echo ready; while true; do sleep 0.1; done",
    ]);
    wait_for_log(&d, "killme", "ready");
    assert_eq!(
        d.berth_ok(&["kill", "-s", "USR1", "killme"]).trim(),
        "killme"
    );
    assert_eq!(d.berth_ok(&["wait", "killme"]).trim(), "7");
    assert!(d.berth_ok(&["logs", "killme"]).contains("got USR1"));

    d.run_detached(&["--name", "k2", "busybox", "sleep", "1000"]);
    d.berth_ok(&["kill", "k2"]);
    assert_eq!(d.berth_ok(&["wait", "k2"]).trim(), "137");
    let v = d.inspect("k2");
    assert_eq!(v["State"]["Status"], "exited");
    // Killing a stopped container is Docker's 409.
    let out = d.berth(&["kill", "k2"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
}

#[test]
fn restart_runs_the_process_again() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "restartme",
        "busybox",
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    wait_for_log(&d, "restartme", "started");
    let pid1 = d.inspect("restartme")["State"]["Pid"].as_i64().unwrap_or(0);
    let started1 = d.inspect("restartme")["State"]["StartedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        d.berth_ok(&["restart", "-t", "1", "restartme"]).trim(),
        "restartme"
    );
    let v = d.inspect("restartme");
    assert_eq!(v["State"]["Status"], "running");
    assert_ne!(
        v["State"]["Pid"].as_i64().unwrap_or(0),
        pid1,
        "same pid after restart"
    );
    assert_ne!(
        v["State"]["StartedAt"].as_str().unwrap_or_default(),
        started1
    );
    assert!(
        wait_until(Duration::from_secs(10), || d
            .berth_ok(&["logs", "restartme"])
            == "started\nstarted\n"),
        "logs after restart: {:?}",
        d.berth_ok(&["logs", "restartme"])
    );
    // restart also starts a stopped container.
    d.berth_ok(&["stop", "-t", "0", "restartme"]);
    d.berth_ok(&["restart", "restartme"]);
    assert_eq!(status_of(&d, "restartme"), "running");
}

#[test]
fn rm_refuses_a_running_container_and_rm_f_removes_it() {
    let d = daemon();
    d.run_detached(&["--name", "busy", "busybox", "sleep", "1000"]);
    let out = d.berth(&["rm", "busy"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .to_lowercase()
            .contains("stop the container before"),
        "rm of a running container: {}",
        stderr(&out)
    );
    assert_eq!(status_of(&d, "busy"), "running");
    assert_eq!(d.berth_ok(&["rm", "-f", "busy"]).trim(), "busy");
    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");
    let out = d.berth(&["rm", "busy"]);
    assert!(
        stderr(&out).contains("No such container: busy"),
        "{}",
        stderr(&out)
    );
}

fn ps_rows(out: &str) -> (Vec<String>, Vec<String>) {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    (
        header
            .split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        lines.map(String::from).collect(),
    )
}

#[test]
fn ps_shows_running_by_default_and_all_with_a() {
    let d = daemon();
    let up = d.run_detached(&["--name", "up", "busybox", "sleep", "1000"]);
    let done = d
        .berth_ok(&["create", "--name", "done", "busybox", "true"])
        .trim()
        .to_string();
    d.berth_ok(&["start", "done"]);
    d.berth_ok(&["wait", "done"]);

    let out = d.berth_ok(&["ps"]);
    let (header, rows) = ps_rows(&out);
    assert_eq!(
        header,
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ],
        "{out}"
    );
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].starts_with(&up[..12]), "{out}");
    assert!(rows[0].contains("busybox"), "{out}");
    assert!(rows[0].contains("\"sleep 1000\""), "{out}");
    assert!(rows[0].contains("Up "), "{out}");
    assert!(rows[0].trim_end().ends_with("up"), "{out}");

    let out = d.berth_ok(&["ps", "-a"]);
    let (_, rows) = ps_rows(&out);
    assert_eq!(rows.len(), 2, "{out}");
    let done_row = rows
        .iter()
        .find(|r| r.starts_with(&done[..12]))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(done_row.contains("Exited (0)"), "{out}");

    let q = d.berth_ok(&["ps", "-q"]);
    assert_eq!(q, format!("{}\n", &up[..12]));
    let mut all: Vec<String> = d
        .berth_ok(&["ps", "-a", "-q", "--no-trunc"])
        .lines()
        .map(String::from)
        .collect();
    all.sort();
    let mut want = vec![up.clone(), done.clone()];
    want.sort();
    assert_eq!(all, want);

    // --no-trunc prints full IDs in the table too.
    assert!(d.berth_ok(&["ps", "--no-trunc"]).contains(&up));
    // -l is the latest created, -n N the last N, running or not.
    let (_, rows) = ps_rows(&d.berth_ok(&["ps", "-l"]));
    assert_eq!(rows.len(), 1);
    assert!(rows[0].starts_with(&done[..12]), "ps -l: {rows:?}");
    let (_, rows) = ps_rows(&d.berth_ok(&["ps", "-n", "2"]));
    assert_eq!(rows.len(), 2, "ps -n 2: {rows:?}");
    assert!(
        rows[0].starts_with(&done[..12]) && rows[1].starts_with(&up[..12]),
        "newest first: {rows:?}"
    );
}

#[test]
fn ps_s_adds_the_size_column() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "sz",
        "busybox",
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /big; exec sleep 1000",
    ]);
    let out = d.berth_ok(&["ps", "-s"]);
    let (header, rows) = ps_rows(&out);
    assert_eq!(header.last().map(String::as_str), Some("SIZE"), "{out}");
    assert!(rows[0].contains("(virtual "), "{out}");
}

#[test]
fn logs_tail_timestamps_follow_and_since() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "logger",
        "busybox",
        "sh",
        "-c",
        "echo one; echo err-one >&2; sleep 2; echo two; echo three; sleep 1000",
    ]);
    wait_for_log(&d, "logger", "three");

    let out = d.berth(&["logs", "logger"]);
    assert_eq!(stdout(&out), "one\ntwo\nthree\n");
    assert_eq!(stderr(&out), "err-one\n", "stderr lines go to stderr");

    assert_eq!(
        d.berth_ok(&["logs", "--tail", "2", "logger"]),
        "two\nthree\n"
    );
    assert_eq!(stdout(&d.berth(&["logs", "--tail", "0", "logger"])), "");

    let ts = d.berth_ok(&["logs", "-t", "logger"]);
    let lines: Vec<&str> = ts.lines().collect();
    assert_eq!(lines.len(), 3, "{ts}");
    for (line, text) in lines.iter().zip(["one", "two", "three"]) {
        let (stamp, rest) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("no timestamp: {line}"));
        assert_eq!(rest, text);
        assert!(
            stamp.len() == 30 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "timestamp {stamp:?} is not RFC 3339 with nanoseconds"
        );
    }
    // --since the time of "two" leaves out "one", two seconds earlier.
    let since_two = lines[1].split(' ').next().unwrap_or_default();
    assert_eq!(
        d.berth_ok(&["logs", "--since", since_two, "logger"]),
        "two\nthree\n"
    );
    // A relative duration works too.
    assert_eq!(
        d.berth_ok(&["logs", "--since", "1h", "logger"]),
        "one\ntwo\nthree\n"
    );
}

#[test]
fn logs_follow_ends_when_the_container_exits() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "follower",
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 2; echo b",
    ]);
    let t0 = Instant::now();
    let out = d.berth_ok(&["logs", "-f", "follower"]);
    assert_eq!(out, "a\nb\n");
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "logs -f returned before the container ended"
    );
}

#[test]
fn json_file_log_on_disk_has_dockers_format() {
    let d = daemon();
    let id = d.run_detached(&[
        "--name",
        "jsonlog",
        "busybox",
        "sh",
        "-c",
        "echo out-line; echo err-line >&2",
    ]);
    assert_eq!(d.berth_ok(&["wait", "jsonlog"]).trim(), "0");
    let v = d.inspect("jsonlog");
    let log_path = v["LogPath"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        log_path,
        d.root
            .join("containers")
            .join(&id)
            .join(format!("{id}-json.log"))
            .to_str()
            .unwrap(),
        "LogPath"
    );
    let text = std::fs::read_to_string(&log_path).expect("json log exists");
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
        .collect();
    assert_eq!(entries.len(), 2, "{text}");
    let mut got: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["stream"].as_str().unwrap_or("").into(),
                e["log"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("stderr".into(), "err-line\n".into()),
            ("stdout".into(), "out-line\n".into())
        ]
    );
    for (line, e) in text.lines().zip(&entries) {
        let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["log", "stream", "time"], "key order of {line}");
        let time = e["time"].as_str().unwrap_or_default();
        assert!(time.ends_with('Z') && time.contains('T'), "time {time:?}");
    }
    assert_eq!(v["HostConfig"]["LogConfig"]["Type"], "json-file");
}

#[test]
fn wait_prints_the_exit_code() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "waiter",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 42",
    ]);
    assert_eq!(d.berth_ok(&["wait", "waiter"]).trim(), "42");
    // Waiting on an exited container returns at once.
    assert_eq!(d.berth_ok(&["wait", "waiter"]).trim(), "42");
}

#[test]
fn inspect_has_dockers_fields() {
    let d = daemon();
    let id = d.run_detached(&[
        "--name",
        "insp",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "--hostname",
        "h1",
        "-u",
        "nobody",
        "busybox",
        "sleep",
        "1000",
    ]);
    let v = d.inspect("insp");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Name"], "/insp");
    assert_eq!(v["Path"], "sleep");
    assert_eq!(v["Args"], serde_json::json!(["1000"]));
    assert!(
        v["Created"].as_str().is_some_and(|c| c.ends_with('Z')),
        "Created {}",
        v["Created"]
    );
    assert!(
        v["Image"]
            .as_str()
            .is_some_and(|i| i.starts_with("sha256:") && is_full_id(&i[7..])),
        "Image {}",
        v["Image"]
    );
    let st = &v["State"];
    assert_eq!(st["Status"], "running");
    assert_eq!(st["Running"], true);
    assert_eq!(st["Paused"], false);
    assert_eq!(st["Restarting"], false);
    assert_eq!(st["OOMKilled"], false);
    assert_eq!(st["Dead"], false);
    assert_eq!(st["ExitCode"], 0);
    assert!(st["Pid"].as_i64().unwrap_or(0) > 0);
    assert!(
        st["StartedAt"]
            .as_str()
            .is_some_and(|s| !s.starts_with("0001")),
        "{st}"
    );
    assert_eq!(st["FinishedAt"], "0001-01-01T00:00:00Z");
    let c = &v["Config"];
    assert_eq!(c["Image"], "busybox");
    assert_eq!(c["Hostname"], "h1");
    assert_eq!(c["WorkingDir"], "/tmp");
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["Cmd"], serde_json::json!(["sleep", "1000"]));
    let env: Vec<&str> = c["Env"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e.as_str()).collect())
        .unwrap_or_default();
    assert!(env.contains(&"FOO=bar"), "Env {env:?}");
    // as Docker: no PATH added where the image defines none (the process still gets one)
    assert!(!env.iter().any(|e| e.starts_with("PATH=")), "Env {env:?}");
    assert!(v["HostConfig"].is_object());
    assert!(v["NetworkSettings"].is_object());
    assert!(v["Mounts"].is_array());
    assert_eq!(v["RestartCount"], 0);

    d.berth_ok(&["stop", "-t", "0", "insp"]);
    let st = d.inspect("insp")["State"].clone();
    assert_eq!(st["Status"], "exited");
    assert_eq!(st["Pid"], 0);
    assert!(
        st["FinishedAt"]
            .as_str()
            .is_some_and(|s| !s.starts_with("0001")),
        "{st}"
    );

    // --format with a Go template.
    assert_eq!(
        d.berth_ok(&["inspect", "--format", "{{.Name}} {{.State.Status}}", "insp"]),
        "/insp exited\n"
    );
}

#[test]
fn rename_changes_the_name() {
    let d = daemon();
    let id = d.run_detached(&["--name", "old", "busybox", "sleep", "1000"]);
    d.berth_ok(&["rename", "old", "new"]);
    assert_eq!(d.inspect("new")["Name"], "/new");
    assert_eq!(d.inspect("new")["Id"], id.as_str());
    let out = d.berth(&["inspect", "old"]);
    assert!(!out.status.success(), "old name still resolves");
    // The old name is free again; the new one is taken.
    d.berth_ok(&["create", "--name", "old", "busybox"]);
    let out = d.berth(&["rename", "old", "new"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Conflict."), "{}", stderr(&out));
}

#[test]
fn pause_and_unpause() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "pauser",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/tick; sleep 0.05; done",
    ]);
    // The counter, read from the host through the container's writable layer.
    let tick = d
        .root
        .join("containers")
        .join(d.full_id("pauser"))
        .join("upper/tmp/tick");
    let read_tick = || std::fs::read_to_string(&tick).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(10), || read_tick()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
            > 1),
        "the counter never ran"
    );
    d.berth_ok(&["pause", "pauser"]);
    let v = d.inspect("pauser");
    assert_eq!(v["State"]["Paused"], true);
    assert_eq!(v["State"]["Status"], "paused");
    assert!(
        d.berth_ok(&["ps"]).contains("(Paused)"),
        "ps shows (Paused)"
    );
    // exec into a paused container is refused.
    let out = d.berth(&["exec", "pauser", "true"]);
    assert!(!out.status.success(), "exec into a paused container worked");
    // Frozen: the counter does not move while paused.
    let p1 = read_tick();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(p1, read_tick(), "the process kept running while paused");
    d.berth_ok(&["unpause", "pauser"]);
    let v = d.inspect("pauser");
    assert_eq!(v["State"]["Paused"], false);
    assert_eq!(v["State"]["Status"], "running");
    let t1 = d.berth_ok(&["exec", "pauser", "cat", "/tmp/tick"]);
    std::thread::sleep(Duration::from_millis(400));
    let t2 = d.berth_ok(&["exec", "pauser", "cat", "/tmp/tick"]);
    assert_ne!(t1, t2, "the process does not run after unpause");
    // Unpausing a running container is an error.
    assert!(!d.berth(&["unpause", "pauser"]).status.success());
}

#[test]
fn top_lists_the_process() {
    let d = daemon();
    d.run_detached(&["--name", "topper", "busybox", "sleep", "1000"]);
    let out = d.berth_ok(&["top", "topper"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{out}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].ends_with("sleep 1000"), "{out}");
    let host_pid = d.inspect("topper")["State"]["Pid"].as_i64().unwrap_or(0);
    assert_eq!(
        rows[0].split_whitespace().nth(1),
        Some(host_pid.to_string().as_str()),
        "PID is the host pid: {out}"
    );
    let out = d.berth(&["top", "nosuch"]);
    assert!(!out.status.success());
}

#[test]
fn exec_env_workdir_user_and_exit_code() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "execer",
        "-e",
        "FROM_RUN=r",
        "busybox",
        "sleep",
        "1000",
    ]);
    let out = d.berth(&[
        "exec",
        "execer",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 5",
    ]);
    assert_eq!(code(&out), 5);
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    assert_eq!(
        d.berth_ok(&[
            "exec",
            "-e",
            "FOO=bar",
            "execer",
            "sh",
            "-c",
            "echo $FOO $FROM_RUN"
        ]),
        "bar r\n"
    );
    assert_eq!(
        d.berth_ok(&["exec", "-w", "/etc", "execer", "pwd"]),
        "/etc\n"
    );
    assert_eq!(
        d.berth_ok(&["exec", "-u", "nobody", "execer", "id", "-u"]),
        "65534\n"
    );
    assert_eq!(
        d.berth_ok(&["exec", "execer", "hostname"]).trim(),
        &d.full_id("execer")[..12]
    );
    // exec joins the container's pid namespace: sleep is pid 1 there.
    assert_eq!(
        d.berth_ok(&["exec", "execer", "cat", "/proc/1/cmdline"]),
        "sleep\u{0}1000\u{0}"
    );
    // Docker 20.10 answers 126 here (its exec start failure default), later daemons 127.
    let out = d.berth(&["exec", "execer", "nosuchcmd"]);
    assert!(
        matches!(code(&out), 126 | 127),
        "exit code {}; stderr: {}",
        code(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("executable file not found in $PATH"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exec_d_runs_in_the_background() {
    let d = daemon();
    d.run_detached(&["--name", "xd", "busybox", "sleep", "1000"]);
    let t0 = Instant::now();
    let out = d.berth_ok(&["exec", "-d", "xd", "sh", "-c", "sleep 2; touch /tmp/flag"]);
    assert_eq!(out, "");
    assert!(
        t0.elapsed() < Duration::from_millis(1800),
        "exec -d waited for the process"
    );
    assert!(
        !d.berth(&["exec", "xd", "test", "-e", "/tmp/flag"])
            .status
            .success(),
        "flag exists too early"
    );
    assert!(
        wait_until(Duration::from_secs(10), || d
            .berth(&["exec", "xd", "test", "-e", "/tmp/flag"])
            .status
            .success()),
        "exec -d process never ran"
    );
}

#[test]
fn exec_into_a_stopped_container_is_refused() {
    let d = daemon();
    d.berth_ok(&["create", "--name", "stopped", "busybox", "sleep", "1000"]);
    let out = d.berth(&["exec", "stopped", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
}
