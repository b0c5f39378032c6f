//! `GET /events`, `berth events` and the real `docker events` (issue 15, point 3): every
//! action with Docker's actor attributes, `since`/`until`, filters, live streaming, and
//! events kept across a daemon restart.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// Now as `seconds.nanoseconds`, what the CLIs send.
fn now() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// The events between `since` and now, as `berth events --format '{{json .}}'` prints them.
fn events_since(d: &TestDaemon, since: &str, extra: &[&str]) -> Vec<Value> {
    let until = now();
    let mut args = vec![
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--format",
        "{{json .}}",
    ];
    args.extend_from_slice(extra);
    d.berth_ok(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn actions(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| {
            format!(
                "{} {}",
                e["Type"].as_str().unwrap(),
                e["Action"].as_str().unwrap()
            )
        })
        .collect()
}

/// The first event of `typ` whose action is `action`; panics listing them all.
fn find<'a>(evs: &'a [Value], typ: &str, action: &str) -> &'a Value {
    evs.iter()
        .find(|e| e["Type"] == typ && e["Action"] == action)
        .unwrap_or_else(|| panic!("no {typ} {action} event in {:?}", actions(evs)))
}

fn attr<'a>(e: &'a Value, k: &str) -> &'a str {
    e["Actor"]["Attributes"][k]
        .as_str()
        .unwrap_or_else(|| panic!("no attribute {k} in {e}"))
}

#[test]
fn a_containers_life_has_dockers_events_and_attributes() {
    let d = daemon();
    let t0 = now();
    let id = d
        .berth_ok(&[
            "create", "--name", "ev1", "-l", "app=web", "busybox", "sleep", "1000",
        ])
        .trim()
        .to_string();
    d.berth_ok(&["start", "ev1"]);
    assert_eq!(code(&d.berth(&["exec", "ev1", "sh", "-c", "exit 3"])), 3);
    d.berth_ok(&["pause", "ev1"]);
    d.berth_ok(&["unpause", "ev1"]);
    d.berth_ok(&["top", "ev1"]);
    d.berth_ok(&["rename", "ev1", "ev2"]);
    d.berth_ok(&["update", "--cpu-shares", "512", "ev2"]);
    d.berth_ok(&["kill", "-s", "USR1", "ev2"]);
    d.berth_ok(&["stop", "-t", "1", "ev2"]);
    d.berth_ok(&["rm", "ev2"]);
    let evs = events_since(&d, &t0, &["--filter", &format!("container={id}")]);
    let got = actions(&evs);
    for want in [
        "container create",
        "container start",
        "container exec_create: sh -c exit 3",
        "container exec_start: sh -c exit 3",
        "container exec_die",
        "container pause",
        "container unpause",
        "container top",
        "container rename",
        "container update",
        "container kill",
        "container die",
        "container stop",
        "container destroy",
    ] {
        assert!(got.iter().any(|g| g == want), "no {want:?} in {got:?}");
    }
    let create = find(&evs, "container", "create");
    assert_eq!(create["status"], "create", "the legacy status field");
    assert_eq!(create["id"], id.as_str());
    assert_eq!(create["from"], "busybox");
    assert_eq!(create["scope"], "local");
    assert_eq!(
        (
            attr(create, "name"),
            attr(create, "image"),
            attr(create, "app")
        ),
        ("ev1", "busybox", "web")
    );
    assert!(
        create["timeNano"].as_i64().unwrap() / 1_000_000_000 == create["time"].as_i64().unwrap()
    );
    let die = find(&evs, "container", "exec_die");
    assert_eq!(attr(die, "exitCode"), "3");
    assert_eq!(attr(die, "execID").len(), 64);
    assert_eq!(attr(find(&evs, "container", "rename"), "oldName"), "/ev1");
    let kills: Vec<&str> = evs
        .iter()
        .filter(|e| e["Action"] == "kill")
        .map(|e| attr(e, "signal"))
        .collect();
    assert_eq!(kills.first(), Some(&"10"), "kill -s USR1 first: {kills:?}");
    assert!(kills.contains(&"15"), "stop sends SIGTERM: {kills:?}");
    // `sleep` as PID 1 ignores SIGTERM: stop kills it after the timeout.
    assert!(kills.contains(&"9"), "{kills:?}");
    assert_eq!(attr(find(&evs, "container", "die"), "exitCode"), "137");
    // As dockerd: die, then stop, then destroy.
    let pos = |a: &str| got.iter().position(|g| g == a).unwrap();
    assert!(pos("container die") < pos("container stop"));
    assert!(pos("container stop") < pos("container destroy"));
    // A container filter leaves out the network events about it.
    assert!(evs.iter().all(|e| e["Type"] == "container"), "{got:?}");
}

#[test]
fn network_and_volume_events_name_the_container() {
    let d = daemon();
    let t0 = now();
    d.berth_ok(&["network", "create", "evnet"]);
    d.berth_ok(&["volume", "create", "evvol"]);
    let id = d.run_detached(&[
        "--name",
        "nv",
        "-v",
        "evvol:/data",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.berth_ok(&["network", "connect", "evnet", "nv"]);
    d.berth_ok(&["network", "disconnect", "evnet", "nv"]);
    d.berth_ok(&["rm", "-f", "nv"]);
    d.berth_ok(&["network", "rm", "evnet"]);
    d.berth_ok(&["volume", "rm", "evvol"]);
    let evs = events_since(&d, &t0, &[]);
    let net_create = find(&evs, "network", "create");
    assert_eq!(
        (attr(net_create, "name"), attr(net_create, "type")),
        ("evnet", "bridge")
    );
    assert_eq!(net_create["Actor"]["ID"].as_str().unwrap().len(), 64);
    assert!(
        net_create.get("status").is_none(),
        "no legacy fields on network events"
    );
    let connects: Vec<&Value> = evs
        .iter()
        .filter(|e| e["Type"] == "network" && e["Action"] == "connect")
        .collect();
    assert!(
        connects
            .iter()
            .any(|e| attr(e, "name") == "bridge" && attr(e, "container") == id),
        "{:?}",
        actions(&evs)
    );
    assert!(connects.iter().any(|e| attr(e, "name") == "evnet"));
    let disc = find(&evs, "network", "disconnect");
    assert_eq!(
        (attr(disc, "name"), attr(disc, "container")),
        ("evnet", id.as_str())
    );
    assert_eq!(attr(find(&evs, "network", "destroy"), "name"), "evnet");
    let vc = find(&evs, "volume", "create");
    assert_eq!(
        (vc["Actor"]["ID"].as_str(), attr(vc, "driver")),
        (Some("evvol"), "local")
    );
    let mount = find(&evs, "volume", "mount");
    assert_eq!(
        (
            attr(mount, "container"),
            attr(mount, "destination"),
            attr(mount, "read/write"),
            attr(mount, "driver")
        ),
        (id.as_str(), "/data", "true", "local")
    );
    assert_eq!(attr(find(&evs, "volume", "unmount"), "container"), id);
    find(&evs, "volume", "destroy");
    // type filters: only what was asked for.
    let only = events_since(
        &d,
        &t0,
        &["--filter", "type=volume", "--filter", "event=mount"],
    );
    assert!(
        !only.is_empty()
            && only
                .iter()
                .all(|e| e["Type"] == "volume" && e["Action"] == "mount"),
        "{:?}",
        actions(&only)
    );
    let by_net = events_since(&d, &t0, &["--filter", "network=evnet"]);
    assert!(
        !by_net.is_empty() && by_net.iter().all(|e| e["Type"] == "network"),
        "{:?}",
        actions(&by_net)
    );
}

#[test]
fn image_events_for_tag_commit_rmi_save_load_and_import() {
    let d = daemon();
    d.run_detached(&["--name", "src", "-l", "k=v", "busybox", "sleep", "1000"]);
    let t0 = now();
    d.berth_ok(&["commit", "src", "evimg:1"]);
    d.berth_ok(&["tag", "evimg:1", "evimg:2"]);
    d.berth_ok(&["rmi", "evimg:2"]);
    d.berth_ok(&["rm", "-f", "src"]);
    d.berth_ok(&["rmi", "evimg:1"]);
    let tar = d.dir.join("bb.tar");
    d.berth_ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    d.berth_ok(&["load", "-i", tar.to_str().unwrap()]);
    let evs = events_since(&d, &t0, &[]);
    let commit = find(&evs, "container", "commit");
    assert_eq!(attr(commit, "imageRef"), "evimg:1");
    assert!(attr(commit, "imageID").starts_with("sha256:"));
    let tags: Vec<&str> = evs
        .iter()
        .filter(|e| e["Action"] == "tag")
        .map(|e| attr(e, "name"))
        .collect();
    assert_eq!(tags, ["evimg:1", "evimg:2"]);
    // Image events carry the image's labels, and the legacy id/status.
    let tag = find(&evs, "image", "tag");
    assert_eq!(attr(tag, "k"), "v");
    assert_eq!(tag["status"], "tag");
    let untags = evs.iter().filter(|e| e["Action"] == "untag").count();
    assert_eq!(untags, 2, "{:?}", actions(&evs));
    let deletes = evs.iter().filter(|e| e["Action"] == "delete").count();
    assert_eq!(
        deletes,
        1,
        "one image deleted (layers have no events): {:?}",
        actions(&evs)
    );
    find(&evs, "image", "save");
    find(&evs, "image", "load");
    let by_image = events_since(&d, &t0, &["--filter", "image=evimg"]);
    assert!(
        by_image.iter().any(|e| e["Action"] == "tag"),
        "{:?}",
        actions(&by_image)
    );
}

#[test]
fn events_stream_live_until_the_client_goes() {
    let d = daemon();
    let mut child = Command::new(BERTH)
        .args([
            "-H",
            &d.host(),
            "events",
            "--filter",
            "container=live",
            "--format",
            "{{.Status}} {{.Actor.Attributes.name}}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The subscription is in place once the request is: give the client a moment.
    std::thread::sleep(Duration::from_millis(500));
    d.berth_ok(&["run", "--rm", "--name", "live", "busybox", "true"]);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.starts_with("destroy")) {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("the stream stopped before destroy: {seen:?}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        seen.first().map(String::as_str),
        Some("create live"),
        "{seen:?}"
    );
    assert!(seen.iter().any(|l| l == "die live"), "{seen:?}");
}

#[test]
fn until_in_the_future_ends_the_stream_then() {
    let d = daemon();
    let until = format!(
        "{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 2
    );
    // As dockerd: with `until` alone, the kept events up to it, then the live ones until
    // it passes; then the stream ends.
    let out = d.berth_ok(&[
        "events",
        "--until",
        &until,
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    assert_eq!(out, "image import\n", "the busybox import only");
    // since after until is refused in Docker's words.
    let (status, _, body) = d.request("GET", "/events?since=100&until=1", None);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body)
        .contains("`since` time (100) cannot be after `until` time (1)"));
    let (status, _, body) = d.request(
        "GET",
        "/events?until=1&filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D",
        None,
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("invalid filter 'bogus'"));
}

#[test]
fn the_last_events_survive_a_daemon_restart() {
    let mut d = daemon();
    let t0 = now();
    d.berth_ok(&["create", "--name", "kept", "busybox", "true"]);
    d.berth_ok(&["rm", "kept"]);
    d.stop_daemon(Duration::from_secs(20));
    d.start_daemon();
    let evs = events_since(&d, &t0, &[]);
    let got = actions(&evs);
    let create = got.iter().position(|a| a == "container create");
    let destroy = got.iter().position(|a| a == "container destroy");
    assert!(create.is_some() && create < destroy, "{got:?}");
    // RFC 3339 and relative times work too.
    let rfc = chrono_like_rfc3339(&t0);
    assert!(d
        .berth_ok(&["events", "--since", &rfc, "--until", &now()])
        .contains("container create"));
    assert!(d
        .berth_ok(&["events", "--since", "10m", "--until", &now()])
        .contains("container create"));
}

/// `secs.nanos` → `YYYY-MM-DDTHH:MM:SSZ` a second earlier, through `date`.
fn chrono_like_rfc3339(unix: &str) -> String {
    let secs: i64 = unix.split('.').next().unwrap().parse().unwrap();
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{}", secs - 1), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_docker_cli_reads_berth_events() {
    skip_unless_docker!();
    let d = daemon();
    let t0 = now();
    let id = d.run_detached(&["--name", "dk", "-l", "team=a", "busybox", "true"]);
    assert!(wait_until(Duration::from_secs(20), || d.inspect("dk")
        ["State"]["Status"]
        == "exited"));
    let until = now();
    let lines = d.docker_ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "container=dk",
    ]);
    let start = lines
        .lines()
        .find(|l| l.contains(" container start "))
        .unwrap_or_else(|| panic!("{lines}"));
    // `2026-12-03T12:00:00.000000000Z container start <id> (image=busybox, name=dk, team=a)`
    assert!(
        start.ends_with(&format!(
            "container start {id} (image=busybox, name=dk, team=a)"
        )),
        "{start}"
    );
    assert_eq!(
        start.split(' ').next().unwrap().len(),
        "2026-12-03T12:00:00.000000000Z".len(),
        "{start}"
    );
    let json = d.docker_ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "event=die",
        "--format",
        "{{json .}}",
    ]);
    let v: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(
        (v["Action"].as_str(), attr(&v, "exitCode")),
        (Some("die"), "0")
    );
    let fmt = d.docker_ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--format",
        "{{.Type}}/{{.Action}}/{{.Actor.Attributes.name}}",
    ]);
    assert!(fmt.lines().any(|l| l == "container/create/dk"), "{fmt}");
    // The Docker CLI's own berth output is the same line.
    let berth = d.berth_ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "container=dk",
    ]);
    assert_eq!(berth, lines);
}
