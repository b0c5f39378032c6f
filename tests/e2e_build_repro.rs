//! Reproducible builds: with the build arg `SOURCE_DATE_EPOCH`, the same context and
//! Dockerfile give the same image ID in two fresh daemons (another machine: other
//! stores, other container IDs, context files written at other times) and on every
//! rebuild, and pushing them gives the same manifest digest.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::registry::{image_id, pushed_digest, RegistryAuth, TestRegistry};
use common::*;

const EPOCH: &str = "1700000000";
const EPOCH_TIME: &str = "2023-11-14T22:13:20Z";

const DOCKERFILE: &str = "FROM busybox
COPY greeting /srv/greeting
COPY tree /srv/tree
RUN mkdir -p /out/sub && echo built > /out/file && ln -s file /out/link && touch /out/sub/new
ENV X=1
WORKDIR /work
";

fn context(dir: &Path) -> PathBuf {
    for (f, c) in [
        ("Dockerfile", DOCKERFILE),
        ("greeting", "hello\n"),
        ("tree/b", "b\n"),
        ("tree/a/c", "c\n"),
    ] {
        let p = dir.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, c).unwrap();
    }
    dir.to_path_buf()
}

fn build(d: &TestDaemon, ctx: &Path, tag: &str, extra: &[&str]) -> String {
    let mut args = vec!["build", "-t", tag];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    d.berth_ok(&args);
    image_id(d, tag)
}

#[test]
fn the_same_context_gives_the_same_image_and_manifest_in_two_daemons() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let d1 = TestDaemon::start();
    d1.import_busybox();
    let bb = d1.dir.join("bb.tar");
    d1.berth_ok(&["save", "-o", bb.to_str().unwrap(), "busybox"]);
    let d2 = TestDaemon::start();
    d2.berth_ok(&["load", "-i", bb.to_str().unwrap()]);
    assert_eq!(image_id(&d1, "busybox"), image_id(&d2, "busybox"));

    let arg = format!("SOURCE_DATE_EPOCH={EPOCH}");
    let repro = ["--build-arg", arg.as_str()];
    let ctx1 = context(&d1.dir.join("ctx"));
    let id1 = build(&d1, &ctx1, "repro:1", &repro);
    // Another checkout: the same files, written later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ctx2 = context(&d2.dir.join("ctx"));
    let id2 = build(&d2, &ctx2, "repro:1", &repro);
    assert_eq!(id1, id2, "two daemons, one image");
    // Every build, also without the cache.
    let again = build(
        &d1,
        &ctx1,
        "repro:2",
        &[&repro[..], &["--no-cache"]].concat(),
    );
    assert_eq!(id1, again, "a rebuild without the cache");

    let created = d1.berth_ok(&["image", "inspect", "--format", "{{.Created}}", "repro:1"]);
    assert_eq!(created.trim(), EPOCH_TIME);
    let inspect: serde_json::Value =
        serde_json::from_str(&d1.berth_ok(&["image", "inspect", "repro:1"])).unwrap();
    let img = &inspect[0];
    for (k, v) in [
        ("Container", &img["Container"]),
        ("Hostname", &img["ContainerConfig"]["Hostname"]),
    ] {
        assert!(
            v.is_null() || v == "",
            "no container ID or hostname: {k} {v}"
        );
    }
    let history = d1.berth_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedAt}}",
        "repro:1",
    ]);
    let ours: Vec<&str> = history.lines().take(5).collect();
    assert!(
        ours.iter().all(|l| l.starts_with("2023-11-1")),
        "history times are the epoch: {history}"
    );

    // The same manifest from both daemons.
    let mut digests = Vec::new();
    for (d, tag) in [(&d1, "d1"), (&d2, "d2")] {
        let name = format!("{}/test/repro:{tag}", reg.addr);
        d.berth_ok(&["tag", "repro:1", &name]);
        digests.push(pushed_digest(&d.berth_ok(&["push", &name])));
    }
    assert_eq!(digests[0], digests[1]);

    // Without the epoch, a rebuild is another image (the times differ): the epoch is
    // what makes them equal.
    let plain1 = build(&d1, &ctx1, "plain:1", &["--no-cache"]);
    let plain2 = build(&d1, &ctx1, "plain:2", &["--no-cache"]);
    assert_ne!(plain1, plain2);
    assert_ne!(plain1, id1);
}

#[test]
fn a_bad_epoch_is_refused() {
    let d = TestDaemon::start();
    d.import_busybox();
    let ctx = context(&d.dir.join("ctx"));
    let out = d.berth(&[
        "build",
        "--build-arg",
        "SOURCE_DATE_EPOCH=yesterday",
        ctx.to_str().unwrap(),
    ]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("invalid SOURCE_DATE_EPOCH: yesterday"),
        "{}",
        stderr(&out)
    );
}
