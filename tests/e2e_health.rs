//! Healthchecks (issue 15, point 2): probes from `--health-*` and from the image's
//! HEALTHCHECK run inside the container, `State.Health` and its log, the start period,
//! the timeout, `ps`'s status and `health` filter (Berth's CLI and Docker's), the events,
//! the monitor across pause, stop, start and a daemon restart.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

#[path = "common/compose.rs"]
mod compose;

const WAIT: Duration = Duration::from_secs(40);

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

fn health(d: &TestDaemon, name: &str) -> Value {
    d.inspect(name)["State"]["Health"].clone()
}

/// Waits until `name`'s health status is `status`; returns `State.Health` then.
fn wait_health(d: &TestDaemon, name: &str, status: &str) -> Value {
    let mut last = Value::Null;
    let ok = wait_until(WAIT, || {
        last = health(d, name);
        last["Status"] == status
    });
    assert!(ok, "{name} never became {status}: {last}\n{}", d.log_tail());
    last
}

/// `ps` names (one per line) for `ps -a --filter health=VALUE`.
fn ps_health(d: &TestDaemon, value: &str) -> Vec<String> {
    let filter = format!("health={value}");
    d.berth_ok(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// The container events recorded so far (`GET /events?since=0&until=now`).
fn events_of(d: &TestDaemon, id: &str) -> Vec<Value> {
    let until = chrono::Utc::now().timestamp() + 1;
    let (status, _, body) = d.request("GET", &format!("/events?since=0&until={until}"), None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::Deserializer::from_slice(&body)
        .into_iter::<Value>()
        .filter_map(Result::ok)
        .filter(|e| e["Actor"]["ID"] == id)
        .collect()
}

#[test]
fn a_passing_probe_makes_it_healthy_and_ps_says_so() {
    let d = daemon();
    let id = d.run_detached(&[
        "--name",
        "good",
        "--health-cmd",
        "echo ok",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "300",
    ]);
    d.run_detached(&["--name", "plain", "busybox", "sleep", "300"]);
    let h = wait_health(&d, "good", "healthy");
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().expect("Log");
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    assert_eq!(log[0]["ExitCode"], 0);
    assert_eq!(log[0]["Output"], "ok\n");
    for k in ["Start", "End"] {
        let t = log[0][k].as_str().unwrap_or_default();
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{k}: {t}");
    }
    let v = d.inspect("good");
    assert_eq!(
        v["Config"]["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "echo ok"], "Interval": 1_000_000_000})
    );
    assert!(d.inspect("plain")["State"].get("Health").is_none());

    let ps = d.berth_ok(&["ps", "--format", "{{.Names}}\t{{.Status}}"]);
    let good = ps
        .lines()
        .find(|l| l.starts_with("good\t"))
        .unwrap_or_default();
    assert!(
        good.starts_with("good\tUp ") && good.ends_with(" (healthy)"),
        "{ps}"
    );
    let plain = ps
        .lines()
        .find(|l| l.starts_with("plain\t"))
        .unwrap_or_default();
    assert!(!plain.contains('('), "{ps}");
    // GET /containers/json carries the same Status.
    let (_, _, body) = d.request("GET", "/containers/json", None);
    let list: Value = serde_json::from_slice(&body).expect("json");
    let me = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Id"] == id.as_str())
        .cloned()
        .unwrap_or_default();
    assert!(
        me["Status"]
            .as_str()
            .unwrap_or_default()
            .ends_with("(healthy)"),
        "{me}"
    );

    assert_eq!(ps_health(&d, "healthy"), vec!["good"]);
    assert_eq!(ps_health(&d, "none"), vec!["plain"]);
    assert!(ps_health(&d, "unhealthy").is_empty());
    assert!(ps_health(&d, "starting").is_empty());
    let out = d.berth(&["ps", "--filter", "health=bogus"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("Unrecognised filter value for health: bogus"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        d.berth_ok(&["inspect", "--format", "{{.State.Health.Status}}", "good"])
            .trim(),
        "healthy"
    );

    // Docker's events: the probe's exec, then the change of status.
    let events = events_of(&d, &id);
    let actions: Vec<&str> = events.iter().filter_map(|e| e["Action"].as_str()).collect();
    let at = |a: &str| actions.iter().position(|x| *x == a);
    let created = at("exec_create: /bin/sh -c echo ok").unwrap_or_else(|| panic!("{actions:?}"));
    let died = at("exec_die").unwrap_or_else(|| panic!("{actions:?}"));
    let healthy = at("health_status: healthy").unwrap_or_else(|| panic!("{actions:?}"));
    assert!(created < died && died < healthy, "{actions:?}");
    assert!(
        actions.contains(&"exec_start: /bin/sh -c echo ok"),
        "{actions:?}"
    );
    let die = &events[died];
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "0");
    assert_eq!(
        die["Actor"]["Attributes"]["execID"],
        events[created]["Actor"]["Attributes"]["execID"]
    );
    assert_eq!(events[healthy]["Actor"]["Attributes"]["name"], "good");
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("health_status"))
            .count(),
        1,
        "{actions:?}"
    );
}

#[test]
fn failures_in_a_row_make_it_unhealthy() {
    let d = daemon();
    let id = d.run_detached(&[
        "--name",
        "bad",
        "--health-cmd",
        "echo nope >&2; exit 3",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "300",
    ]);
    let h = wait_health(&d, "bad", "unhealthy");
    assert!(h["FailingStreak"].as_i64().unwrap_or(0) >= 2, "{h}");
    let first = &h["Log"][0];
    assert_eq!(first["ExitCode"], 3);
    assert_eq!(first["Output"], "nope\n");
    // The log keeps the last five results.
    assert!(wait_until(WAIT, || health(&d, "bad")["FailingStreak"]
        .as_i64()
        .unwrap_or(0)
        >= 6));
    assert_eq!(health(&d, "bad")["Log"].as_array().map(Vec::len), Some(5));
    let ps = d.berth_ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.trim_end().ends_with("(unhealthy)"), "{ps}");
    assert_eq!(ps_health(&d, "unhealthy"), vec!["bad"]);
    let actions: Vec<String> = events_of(&d, &id)
        .iter()
        .filter_map(|e| e["Action"].as_str().map(str::to_string))
        .filter(|a| a.starts_with("health_status"))
        .collect();
    assert_eq!(actions, vec!["health_status: unhealthy"]);
}

#[test]
fn a_probe_past_its_timeout_is_killed_and_fails() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "slow",
        "--health-cmd",
        "sleep 77",
        "--health-interval",
        "1s",
        "--health-timeout",
        "500ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    ]);
    let h = wait_health(&d, "slow", "unhealthy");
    assert_eq!(h["Log"][0]["ExitCode"], -1);
    assert_eq!(
        h["Log"][0]["Output"],
        "Health check exceeded timeout (500ms)"
    );
    // The probe's process does not outlive its timeout.
    std::thread::sleep(Duration::from_millis(300));
    let ok = wait_until(Duration::from_secs(5), || {
        let top = d.berth_ok(&["top", "slow"]);
        top.lines().filter(|l| l.contains("sleep 77")).count() <= 1
    });
    assert!(ok, "{}", d.berth_ok(&["top", "slow"]));
}

#[test]
fn output_is_capped_at_4k() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "chatty",
        "--health-cmd",
        "head -c 5000 /dev/zero | tr '\\0' a",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "300",
    ]);
    let h = wait_health(&d, "chatty", "healthy");
    let out = h["Log"][0]["Output"].as_str().unwrap_or_default();
    assert_eq!(out.len(), 4096 + 3, "{}", out.len());
    assert!(out.starts_with("aaaa") && out.ends_with("a..."));
}

#[test]
fn failures_in_the_start_period_do_not_count() {
    let d = daemon();
    // Always failing, with a long start period: it stays `starting`, its streak 0.
    d.run_detached(&[
        "--name",
        "warming",
        "--health-cmd",
        "exit 1",
        "--health-interval",
        "1s",
        "--health-start-period",
        "5m",
        "--health-start-interval",
        "1s",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    ]);
    // Healthy at the third probe: from starting straight to healthy.
    let id = d.run_detached(&[
        "--name",
        "counter",
        "--health-cmd",
        "echo x >> /counter; test $(wc -l < /counter) -ge 3",
        "--health-interval",
        "1s",
        "--health-start-period",
        "5m",
        "--health-start-interval",
        "1s",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    ]);
    assert!(wait_until(WAIT, || health(&d, "warming")["Log"]
        .as_array()
        .map_or(0, Vec::len)
        >= 2));
    let h = health(&d, "warming");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert!(d
        .berth_ok(&["ps", "--filter", "name=warming", "--format", "{{.Status}}"])
        .trim_end()
        .ends_with("(health: starting)"));
    assert!(ps_health(&d, "starting").contains(&"warming".to_string()));

    let h = wait_health(&d, "counter", "healthy");
    assert_eq!(h["Log"].as_array().map(Vec::len), Some(3), "{h}");
    let changes: Vec<String> = events_of(&d, &id)
        .iter()
        .filter_map(|e| e["Action"].as_str().map(str::to_string))
        .filter(|a| a.starts_with("health_status"))
        .collect();
    assert_eq!(changes, vec!["health_status: healthy"]);
}

#[test]
fn the_images_healthcheck_applies_and_flags_override_it() {
    let d = daemon();
    let tar = busybox_tar();
    d.berth_ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "HEALTHCHECK --interval=1s --retries=4 CMD echo from-image",
        tar.to_str().unwrap(),
        "hc:img",
    ]);
    d.run_detached(&["--name", "inherits", "hc:img", "sleep", "300"]);
    let h = wait_health(&d, "inherits", "healthy");
    assert_eq!(h["Log"][0]["Output"], "from-image\n");
    assert_eq!(
        d.inspect("inherits")["Config"]["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "echo from-image"], "Interval": 1_000_000_000, "Retries": 4})
    );
    // Field by field: the command from the flag, the interval and retries from the image.
    d.run_detached(&[
        "--name",
        "mine",
        "--health-cmd",
        "echo mine",
        "hc:img",
        "sleep",
        "300",
    ]);
    let h = wait_health(&d, "mine", "healthy");
    assert_eq!(h["Log"][0]["Output"], "mine\n");
    assert_eq!(
        d.inspect("mine")["Config"]["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "echo mine"], "Interval": 1_000_000_000, "Retries": 4})
    );
    // --no-healthcheck disables it (the image's timings stay, as in Docker).
    d.run_detached(&[
        "--name",
        "off",
        "--no-healthcheck",
        "hc:img",
        "sleep",
        "300",
    ]);
    let v = d.inspect("off");
    assert_eq!(
        v["Config"]["Healthcheck"],
        serde_json::json!({"Test": ["NONE"], "Interval": 1_000_000_000, "Retries": 4})
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(d.inspect("off")["State"].get("Health").is_none());
    assert!(ps_health(&d, "none").contains(&"off".to_string()));
    let status = d.berth_ok(&["ps", "--filter", "name=off", "--format", "{{.Status}}"]);
    assert!(
        status.starts_with("Up ") && !status.contains('('),
        "{status}"
    );
}

#[test]
fn invalid_settings_are_refused_in_dockers_words() {
    let d = daemon();
    let create = |hc: &str| {
        let body = format!(r#"{{"Image":"busybox","Cmd":["true"],"Healthcheck":{hc}}}"#);
        let (status, _, body) = d.request("POST", "/containers/create", Some(body.as_bytes()));
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    for (hc, msg) in [
        (
            r#"{"Test":["CMD","true"],"Interval":100}"#,
            "Interval in Healthcheck cannot be less than 1ms",
        ),
        (
            r#"{"Test":["CMD","true"],"Timeout":-1}"#,
            "Timeout in Healthcheck cannot be less than 1ms",
        ),
        (
            r#"{"Test":["CMD","true"],"Retries":-1}"#,
            "Retries in Healthcheck cannot be negative",
        ),
        (
            r#"{"Test":["CMD","true"],"StartPeriod":5}"#,
            "StartPeriod in Healthcheck cannot be less than 1ms",
        ),
        (
            r#"{"Test":["CMD","true"],"StartInterval":5}"#,
            "StartInterval in Healthcheck cannot be less than 1ms",
        ),
    ] {
        let (status, body) = create(hc);
        assert_eq!(status, 400, "{hc}: {body}");
        assert!(body.contains(msg), "{hc}: {body}");
    }
    let (status, body) = create(r#"{"Test":["CMD","true"],"Interval":1000000,"Timeout":null}"#);
    assert_eq!(status, 201, "{body}");
    for (args, msg) in [
        (
            vec!["--health-interval", "-1s"],
            "--health-interval cannot be negative",
        ),
        (
            vec!["--health-retries", "-2"],
            "--health-retries cannot be negative",
        ),
        (
            vec!["--no-healthcheck", "--health-cmd", "true"],
            "--no-healthcheck conflicts with --health-* options",
        ),
        (
            vec!["--health-timeout", "5"],
            "time: missing unit in duration \"5\"",
        ),
    ] {
        let mut full = vec!["create"];
        full.extend(args.iter().copied());
        full.extend(["busybox", "true"]);
        let out = d.berth(&full);
        assert_eq!(code(&out), 125, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(msg), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn pause_stop_and_start_drive_the_monitor() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "cycle",
        "--health-cmd",
        "test -f /dev/shm/ok",
        "--health-interval",
        "1s",
        "--health-retries",
        "100",
        "busybox",
        "sleep",
        "300",
    ]);
    d.berth_ok(&["exec", "cycle", "touch", "/dev/shm/ok"]);
    wait_health(&d, "cycle", "healthy");
    // Paused: the monitor stops and Docker reports unhealthy.
    d.berth_ok(&["pause", "cycle"]);
    assert_eq!(health(&d, "cycle")["Status"], "unhealthy");
    let status = d.berth_ok(&["ps", "--format", "{{.Status}}"]);
    assert!(status.trim_end().ends_with("(Paused)"), "{status}");
    d.berth_ok(&["unpause", "cycle"]);
    wait_health(&d, "cycle", "healthy");
    // Stopped: unhealthy, the log kept.
    d.berth_ok(&["stop", "-t", "0", "cycle"]);
    let h = health(&d, "cycle");
    assert_eq!(h["Status"], "unhealthy", "{h}");
    let kept = h["Log"].as_array().map_or(0, Vec::len);
    assert!(kept > 0);
    assert_eq!(ps_health(&d, "unhealthy"), vec!["cycle"]);
    // Started again: starting, streak 0, until a probe passes (/dev/shm is new: it fails,
    // but 100 retries keep it starting).
    d.berth_ok(&["start", "cycle"]);
    let h = health(&d, "cycle");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert!(wait_until(WAIT, || health(&d, "cycle")["FailingStreak"]
        .as_i64()
        .unwrap_or(0)
        >= 1));
    assert_eq!(health(&d, "cycle")["Status"], "starting");
    d.berth_ok(&["exec", "cycle", "touch", "/dev/shm/ok"]);
    wait_health(&d, "cycle", "healthy");
}

#[test]
fn health_checks_resume_after_a_daemon_restart() {
    let mut d = daemon();
    d.run_detached(&[
        "--name",
        "lasting",
        "--health-cmd",
        "test -f /dev/shm/ok",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    ]);
    d.berth_ok(&["exec", "lasting", "touch", "/dev/shm/ok"]);
    wait_health(&d, "lasting", "healthy");
    d.kill_daemon();
    let restarted = chrono::Utc::now();
    d.start_daemon();
    // Probes run again: results after the restart, and a failure is seen.
    let ok = wait_until(WAIT, || {
        let h = health(&d, "lasting");
        h["Status"] == "healthy"
            && h["Log"].as_array().into_iter().flatten().any(|r| {
                r["Start"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t > restarted)
            })
    });
    assert!(ok, "{}\n{}", health(&d, "lasting"), d.log_tail());
    d.berth_ok(&["exec", "lasting", "rm", "/dev/shm/ok"]);
    wait_health(&d, "lasting", "unhealthy");
}

#[test]
fn the_docker_cli_shows_health_in_ps_and_inspect() {
    if !docker_cli_available() {
        eprintln!("SKIPPED: no Docker CLI");
        return;
    }
    let d = daemon();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "viacli",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "--health-start-interval",
        "1s",
        "--health-start-period",
        "1m",
        "busybox",
        "sleep",
        "300",
    ]);
    d.docker_ok(&["run", "-d", "--name", "other", "busybox", "sleep", "300"]);
    wait_health(&d, "viacli", "healthy");
    let status = d.docker_ok(&["inspect", "--format", "{{.State.Health.Status}}", "viacli"]);
    assert_eq!(status.trim(), "healthy");
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    let line = ps
        .lines()
        .find(|l| l.starts_with("viacli "))
        .unwrap_or_default();
    assert!(
        line.starts_with("viacli Up ") && line.ends_with("(healthy)"),
        "{ps}"
    );
    // The default table too.
    let table = d.docker_ok(&["ps"]);
    assert!(
        table
            .lines()
            .any(|l| l.contains("(healthy)") && l.ends_with("viacli")),
        "{table}"
    );
    let q = |f: &str| d.docker_ok(&["ps", "--filter", f, "--format", "{{.Names}}"]);
    assert_eq!(q("health=healthy").trim(), "viacli");
    assert_eq!(q("health=none").trim(), "other");
    let hc = d.docker_ok(&[
        "inspect",
        "--format",
        "{{json .Config.Healthcheck}}",
        "viacli",
    ]);
    let hc: Value = serde_json::from_str(hc.trim()).expect("json");
    assert_eq!(hc["StartInterval"], 1_000_000_000);
    // `docker events` sees the change of status (`event=health_status` matches its
    // `health_status: …` forms).
    let until = (chrono::Utc::now().timestamp() + 1).to_string();
    let ev = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(ev.trim(), "health_status: healthy viacli");
    assert_eq!(hc["StartPeriod"], 60_000_000_000u64);
}

const COMPOSE_FILE: &str = r#"version: "3.8"
services:
  db:
    image: busybox
    command: sh -c "sleep 3; touch /tmp/ready; exec sleep 300"
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: 1s
      retries: 30
  app:
    image: busybox
    command: sleep 300
    depends_on:
      db:
        condition: service_healthy
"#;

fn time_of(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    v.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

#[test]
fn compose_starts_a_dependent_service_once_its_dependency_is_healthy() {
    if !compose::compose_available() {
        return;
    }
    let d = daemon();
    let proj = d.dir.join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(proj.join("docker-compose.yml"), COMPOSE_FILE).unwrap();
    let compose = |args: &[&str]| compose::compose_in(&d, "berthh", &proj, args);
    assert_success(&compose(&["up", "-d"]), "docker-compose up -d");
    let db = d.inspect("berthh_db_1");
    let app = d.inspect("berthh_app_1");
    assert_eq!(
        db["State"]["Health"]["Status"], "healthy",
        "{}",
        db["State"]
    );
    assert_eq!(app["State"]["Status"], "running");
    // The app started after the first passing probe of the db, which failed before.
    let log = db["State"]["Health"]["Log"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(log.iter().any(|r| r["ExitCode"] == 1), "{log:?}");
    let passed = log
        .iter()
        .find(|r| r["ExitCode"] == 0)
        .expect("a passing probe");
    assert!(
        time_of(&app["State"]["StartedAt"]) >= time_of(&passed["End"]),
        "{log:?}\n{}",
        app["State"]
    );
    assert!(time_of(&app["State"]["StartedAt"]) > time_of(&db["State"]["StartedAt"]));
    assert_success(&compose(&["down", "-t", "1"]), "docker-compose down");
}

#[test]
fn an_exec_form_probe_runs_as_the_containers_user_in_its_workdir() {
    let d = daemon();
    let body = br#"{"Image":"busybox","Cmd":["sleep","300"],"User":"1000","WorkingDir":"/tmp",
        "Healthcheck":{"Test":["CMD","sh","-c","id -u; pwd"],"Interval":1000000000}}"#;
    let (status, _, out) = d.request("POST", "/containers/create?name=asuser", Some(body));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&out));
    // Created, not started: no State.Health yet.
    assert!(d.inspect("asuser")["State"].get("Health").is_none());
    d.berth_ok(&["start", "asuser"]);
    let h = wait_health(&d, "asuser", "healthy");
    assert_eq!(h["Log"][0]["Output"], "1000\n/tmp\n");
}

#[test]
fn a_restart_by_the_policy_starts_the_health_over() {
    let d = daemon();
    // The first run is healthy and exits; in the second the probe fails, but 100
    // retries keep a fresh health `starting`.
    d.run_detached(&[
        "--name", "again", "--restart", "always", "--health-cmd", "test ! -f /tmp/second",
        "--health-interval", "1s", "--health-retries", "100", "busybox", "sh", "-c",
        "if [ -f /tmp/first ]; then touch /tmp/second; exec sleep 300; fi; touch /tmp/first; sleep 3; exit 1",
    ]);
    wait_health(&d, "again", "healthy");
    let mut last = Value::Null;
    let ok = wait_until(WAIT, || {
        last = d.inspect("again");
        let h = &last["State"]["Health"];
        last["RestartCount"].as_i64().unwrap_or(0) >= 1
            && last["State"]["Running"] == true
            && h["Status"] == "starting"
            && h["FailingStreak"].as_i64().unwrap_or(0) >= 1
    });
    assert!(ok, "{}\n{}", last["State"], d.log_tail());
    d.berth_ok(&["rm", "-f", "again"]);
}
