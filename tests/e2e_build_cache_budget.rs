//! The classic builder's step cache under the build-cache budget (issue 19, point 4):
//! the images build steps leave are `regular` build-cache records with their last use,
//! collected least recently used first with the cache mounts when over
//! `--builder-gc-keep-storage`, never while a build that may use them runs, never when
//! tagged (or built on by a tagged image); `builder prune` removes them and counts
//! them, `system df -v` lists them.

mod common;

use std::time::Duration;

use common::build_context::{build, context};
use common::*;
use serde_json::Value;

/// A Dockerfile whose one step adds `size` random bytes at `/name`.
fn step(name: &str, size: usize) -> String {
    format!("FROM busybox\nRUN head -c {size} /dev/urandom > /{name}\n")
}

/// Builds `dockerfile` in context `name` with `extra` flags; returns the output.
fn build_ok(d: &TestDaemon, name: &str, dockerfile: &str, extra: &[&str]) -> String {
    let ctx = context(d, name, &[("Dockerfile", dockerfile)]);
    let out = build(d, &ctx, extra);
    assert_success(&out, &format!("build {name}"));
    stdout(&out)
}

/// `build -q EXTRA…`: the image ID (bare hex, as the build cache names the record).
fn build_id(d: &TestDaemon, name: &str, dockerfile: &str, extra: &[&str]) -> String {
    let mut args = vec!["-q"];
    args.extend_from_slice(extra);
    let out = build_ok(d, name, dockerfile, &args);
    out.trim().trim_start_matches("sha256:").to_string()
}

fn records(d: &TestDaemon) -> Vec<Value> {
    let (status, _, body) = d.request("GET", "/system/df?type=build-cache", None);
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["BuildCache"].as_array().cloned().unwrap_or_default()
}

fn record(d: &TestDaemon, id: &str) -> Option<Value> {
    records(d).into_iter().find(|r| r["ID"] == id)
}

fn image_exists(d: &TestDaemon, id: &str) -> bool {
    d.request("GET", &format!("/images/{id}/json"), None).0 == 200
}

fn prune(d: &TestDaemon, q: &str) -> Value {
    let (status, _, body) = d.request("POST", &format!("/build/prune?{q}"), None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn time(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default()).unwrap()
}

#[test]
fn over_budget_the_least_recently_used_steps_go_and_the_recent_stay_cache_hits() {
    let d = TestDaemon::start_with_args(&["--builder-gc-keep-storage", "250000"]);
    d.import_busybox();
    let a = build_id(&d, "a", &step("a", 100_000), &[]);
    let b = build_id(&d, "b", &step("b", 100_000), &[]);
    // Tagged: shared with the image, not counted, never collected.
    let c = build_id(&d, "c", &step("c", 300_000), &["-t", "keep:1"]);

    let ra = record(&d, &a).expect("a's step is a build-cache record");
    assert_eq!(ra["Type"], "regular");
    assert_eq!(ra["Size"], 100_000, "{ra}");
    assert_eq!(ra["Shared"], false);
    assert_eq!(ra["InUse"], false);
    assert_eq!(ra["UsageCount"], 1);
    assert_eq!(
        ra["Description"],
        "RUN /bin/sh -c head -c 100000 /dev/urandom > /a"
    );
    let rc = record(&d, &c).unwrap();
    assert_eq!(rc["Shared"], true, "{rc}");

    // A rebuild of a: a cache hit, a new last use.
    let out = build_ok(&d, "a", &step("a", 100_000), &[]);
    assert!(out.contains(" ---> Using cache\n"), "{out}");
    assert!(
        out.contains(&format!("Successfully built {}", &a[..12])),
        "{out}"
    );
    let ra2 = record(&d, &a).unwrap();
    assert_eq!(ra2["UsageCount"], 2);
    assert!(time(&ra2["LastUsedAt"]) > time(&ra["LastUsedAt"]), "{ra2}");
    assert!(time(&ra2["LastUsedAt"]) > time(&ra2["CreatedAt"]), "{ra2}");

    // d brings the counted cache to 300000 bytes: once the build ended, the least
    // recently used step (b) goes, a (used again) and d stay, the tagged c stays.
    let dd = build_id(&d, "d", &step("d", 100_000), &[]);
    assert!(
        wait_until(Duration::from_secs(20), || record(&d, &b).is_none()),
        "b is collected: {:?}",
        records(&d)
    );
    assert!(!image_exists(&d, &b), "b's image is gone");
    assert!(record(&d, &a).is_some() && record(&d, &dd).is_some());
    assert!(image_exists(&d, &c) && record(&d, &c).is_some());
    d.berth_ok(&["image", "inspect", "keep:1"]);

    // a is still a hit, b is built again.
    let out = build_ok(&d, "a", &step("a", 100_000), &[]);
    assert!(out.contains(" ---> Using cache\n"), "{out}");
    let out = build_ok(&d, "b", &step("b", 100_000), &[]);
    assert!(!out.contains("Using cache"), "{out}");
    let out = build_ok(&d, "c", &step("c", 300_000), &[]);
    assert!(
        out.contains(" ---> Using cache\n"),
        "the tagged step stays a hit: {out}"
    );

    // `system df -v` lists the steps with their last use.
    let df = d.berth_ok(&["system", "df", "-v"]);
    let row = df
        .lines()
        .find(|l| l.starts_with(&a[..12]))
        .unwrap_or_else(|| panic!("a's row: {df}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "regular", "{row}");
    assert_eq!(cols[2], "100kB", "{row}");
    assert!(row.contains(" ago "), "created and last used: {row}");
    if docker_cli_available() {
        let df = d.docker_ok(&["system", "df", "-v"]);
        let row = df.lines().find(|l| l.starts_with(&a[..12])).unwrap_or("");
        assert!(row.contains("regular") && row.contains("100kB"), "{df}");
    }
}

#[test]
fn a_build_in_progress_keeps_the_steps_it_may_use() {
    let d = TestDaemon::start_with_args(&["--builder-gc-keep-storage", "150000"]);
    d.import_busybox();
    let x = build_id(&d, "x", &step("x", 100_000), &[]);
    // A long build whose first step is x's.
    let slow = context(
        &d,
        "slow",
        &[(
            "Dockerfile",
            &format!("{}RUN sleep 8\n", step("x", 100_000)),
        )],
    );
    let child = std::process::Command::new(BERTH)
        .args(["-H", &d.host(), "build", slow.to_str().unwrap()])
        .env_remove("DOCKER_HOST")
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || d
            .berth_ok(&["ps", "-q"])
            .lines()
            .count()
            == 1),
        "the slow build's step runs"
    );
    // Another build ends meanwhile, over the budget: the collector must wait.
    let z = build_id(&d, "z", &step("z", 100_000), &[]);
    std::thread::sleep(Duration::from_millis(500));
    let now = records(&d);
    assert!(
        now.iter().all(|r| r["InUse"] == true),
        "everything is in use while a build runs: {now:?}"
    );
    assert!(record(&d, &x).is_some() && record(&d, &z).is_some());
    let v = prune(&d, "all=1");
    assert_eq!(v["CachesDeleted"], Value::Null, "{v}");
    assert!(image_exists(&d, &x) && image_exists(&d, &z));

    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(" ---> Using cache\n"),
        "x's step was a hit: {text}"
    );
    // The build is over: z, the least recently used, goes; x (just used) stays.
    assert!(
        wait_until(Duration::from_secs(20), || record(&d, &z).is_none()),
        "z is collected: {:?}",
        records(&d)
    );
    assert!(record(&d, &x).is_some(), "{:?}", records(&d));
    assert!(image_exists(&d, &x));
}

#[test]
fn builder_prune_removes_and_counts_the_steps() {
    let d = TestDaemon::start();
    d.import_busybox();
    let old = build_id(&d, "old", &step("old", 100_000), &[]);
    let new = build_id(&d, "new", &step("new", 100_000), &[]);
    let kept = build_id(&d, "kept", &step("kept", 50_000), &["-t", "kept:1"]);
    let cache_mount =
        "FROM busybox\nRUN --mount=type=cache,target=/c head -c 3000 /dev/zero > /c/f\n";
    build_id(&d, "mnt", cache_mount, &["-t", "mnt:1"]);

    // Filters: type picks the cache mount only, until (recent use) nothing.
    let v = prune(&d, "filters=%7B%22type%22%3A%5B%22exec.cachemount%22%5D%7D");
    assert_eq!(v["SpaceReclaimed"], 3000, "{v}");
    let out = d.berth_ok(&["builder", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    assert!(record(&d, &old).is_some() && record(&d, &new).is_some());

    // keep-storage: the least recently used step goes, counted.
    let v = prune(&d, "keep-storage=150000");
    assert_eq!(v["CachesDeleted"], serde_json::json!([old]), "{v}");
    assert_eq!(v["SpaceReclaimed"], 100_000);
    assert!(!image_exists(&d, &old));
    // An id filter, then without --all: what is left that is not shared.
    let v = prune(
        &d,
        &format!("filters=%7B%22id%22%3A%5B%22{}%22%5D%7D", &kept[..12]),
    );
    assert_eq!(v["CachesDeleted"], Value::Null, "a tagged step stays: {v}");
    let out = d.berth_ok(&["builder", "prune", "-f"]);
    assert_eq!(
        out,
        format!("Deleted build cache objects:\n{new}\n\nTotal reclaimed space: 100kB\n")
    );
    assert!(!image_exists(&d, &new));
    let out = d.berth_ok(&["builder", "prune", "-a", "-f"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    // The tagged images and their steps stay.
    d.berth_ok(&["image", "inspect", "kept:1", "mnt:1"]);
    let left: Vec<Value> = records(&d);
    assert!(
        left.iter()
            .all(|r| r["Shared"] == true && r["Type"] == "regular"),
        "{left:?}"
    );
    assert_eq!(left.len(), 2, "{left:?}");
}
