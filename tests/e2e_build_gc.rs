//! The build cache looks after itself: cache-mount entries (`<root>/builds/cache-mounts/
//! <hash>/{data/,meta.json}`, as the cache-mount store keeps them) are listed by `system
//! df` with their last use, collected least recently used first when over the budget
//! (`--builder-gc-keep-storage`) once a build has ended, never while a build runs, and
//! `builder prune --keep-storage` keeps the most recently used ones.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;

/// An entry as the cache-mount store leaves it: `size` bytes, last used at `used`.
fn entry(root: &Path, name: &str, id: &str, used: i64, size: usize) {
    let d = root.join("builds/cache-mounts").join(name);
    fs::create_dir_all(d.join("data")).unwrap();
    fs::write(d.join("data/blob"), vec![7u8; size]).unwrap();
    fs::write(
        d.join("meta.json"),
        serde_json::json!({"ID": id, "LastUsed": used}).to_string(),
    )
    .unwrap();
}

fn names(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(root.join("builds/cache-mounts"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The cache-mount records of `system df` (the steps of the builds here are tagged,
/// shared: tests/e2e_build_cache_budget.rs looks at those).
fn df_cache(d: &TestDaemon) -> Vec<serde_json::Value> {
    let (status, _, body) = d.request("GET", "/system/df?type=build-cache", None);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let all = v["BuildCache"].as_array().cloned().unwrap_or_default();
    for r in all.iter().filter(|r| r["Type"] == "regular") {
        assert_eq!(r["Shared"], true, "a tagged build's step: {r}");
    }
    all.into_iter()
        .filter(|r| r["Type"] == "exec.cachemount")
        .collect()
}

fn prune(d: &TestDaemon, q: &str) -> serde_json::Value {
    let (status, _, body) = d.request("POST", &format!("/build/prune?{q}"), None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn context(d: &TestDaemon, name: &str, dockerfile: &str) -> String {
    let dir = d.dir.join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    dir.to_str().unwrap().to_string()
}

#[test]
fn over_budget_the_least_recently_used_go_after_a_build() {
    let d = TestDaemon::start_with_args(&["--builder-gc-keep-storage", "2500"]);
    d.import_busybox();
    entry(&d.root, "aaaa", "old", 1_000, 1000);
    entry(&d.root, "bbbb", "mid", 2_000, 1000);
    entry(&d.root, "cccc", "new", 3_000, 1000);

    let cache = df_cache(&d);
    assert_eq!(cache.len(), 3, "{cache:?}");
    let old = cache.iter().find(|r| r["ID"] == "aaaa").unwrap();
    assert_eq!(old["Type"], "exec.cachemount");
    assert_eq!(old["Size"], 1000);
    assert_eq!(old["InUse"], false);
    assert_eq!(old["LastUsedAt"], "1970-01-01T00:16:40.000000000Z");
    assert_eq!(old["Description"], "cached mount with id old");
    if docker_cli_available() {
        let out = d.docker_ok(&["system", "df", "-v"]);
        assert!(
            out.contains("aaaa") && out.contains("exec.cachemount"),
            "{out}"
        );
    }

    // A build ends: the collector brings the cache under 2500 bytes, oldest first.
    let ctx = context(&d, "b", "FROM busybox\nRUN true\n");
    d.berth_ok(&["build", &ctx]);
    assert!(
        wait_until(Duration::from_secs(15), || names(&d.root)
            == ["bbbb", "cccc"]),
        "{:?}",
        names(&d.root)
    );
}

#[test]
fn a_running_build_pins_the_cache_and_prune_keeps_the_newest() {
    let d = TestDaemon::start();
    d.import_busybox();
    entry(&d.root, "aaaa", "old", 1_000, 1000);
    entry(&d.root, "bbbb", "mid", 2_000, 1000);
    entry(&d.root, "cccc", "new", 3_000, 1000);

    // While a build runs, its cache is in use: prune takes nothing of it.
    let ctx = context(&d, "slow", "FROM busybox\nRUN sleep 4\n");
    let mut child = std::process::Command::new(BERTH)
        .args(["-H", &d.host(), "build", "-t", "slow", &ctx])
        .env_remove("DOCKER_HOST")
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || {
            df_cache(&d).iter().all(|r| r["InUse"] == true)
                && d.berth_ok(&["ps", "-q"]).lines().count() == 1
        }),
        "the build runs and its cache is in use"
    );
    let v = prune(&d, "all=1");
    assert_eq!(v["CachesDeleted"], serde_json::Value::Null, "{v}");
    assert_eq!(names(&d.root).len(), 3);
    assert!(child.wait().unwrap().success());

    // Idle: keep-storage 1500 keeps the newest entry only.
    let v = prune(&d, "keep-storage=1500");
    let mut deleted: Vec<String> = serde_json::from_value(v["CachesDeleted"].clone()).unwrap();
    deleted.sort();
    assert_eq!(deleted, ["aaaa", "bbbb"]);
    assert_eq!(v["SpaceReclaimed"], 2000);
    assert_eq!(names(&d.root), ["cccc"]);
    // Then everything.
    let v = prune(&d, "");
    assert_eq!(v["CachesDeleted"], serde_json::json!(["cccc"]));
    assert!(names(&d.root).is_empty());
    assert!(df_cache(&d).is_empty());
}

#[test]
fn a_real_cache_mount_is_listed_used_again_and_pruned() {
    let d = TestDaemon::start();
    d.import_busybox();
    let ctx = context(
        &d,
        "mnt",
        "FROM busybox\nRUN --mount=type=cache,target=/c,id=real-cache head -c 3000 /dev/zero > /c/blob && ls -l /c\n",
    );
    d.berth_ok(&["build", "-t", "mnt", &ctx]);
    let cache = df_cache(&d);
    assert_eq!(cache.len(), 1, "{cache:?}");
    assert_eq!(cache[0]["Type"], "exec.cachemount");
    assert_eq!(cache[0]["Description"], "cached mount with id real-cache");
    assert_eq!(cache[0]["Size"], 3000);
    assert_eq!(cache[0]["UsageCount"], 1, "used by one build");
    assert_eq!(cache[0]["InUse"], false);
    // Used again by another build (no cache hit: another command).
    let ctx2 = context(
        &d,
        "mnt2",
        "FROM busybox\nRUN --mount=type=cache,target=/c,id=real-cache test -f /c/blob\n",
    );
    d.berth_ok(&["build", "-t", "mnt2", &ctx2]);
    assert_eq!(df_cache(&d)[0]["UsageCount"], 2);
    let v = prune(&d, "keep-storage=0&all=1");
    assert_eq!(v["SpaceReclaimed"], 3000, "{v}");
    assert!(df_cache(&d).is_empty());
    // Gone: a new build starts with an empty cache.
    let ctx3 = context(
        &d,
        "mnt3",
        "FROM busybox\nRUN --mount=type=cache,target=/c,id=real-cache test ! -f /c/blob\n",
    );
    d.berth_ok(&["build", &ctx3]);
}
