//! A full disk is an error, not a wedge (issue 17, point 2).
//!
//! The daemon's `--root` is a small tmpfs of the test's own. A container fills it through
//! a volume, the test tops it up to the last block; then every write the API is asked for
//! either succeeds or fails with Docker's "no space left on device", as the Berth CLI and
//! the Docker CLI print it (never a broken pipe). Once space is freed, creating, removing
//! and importing work again without a restart; after a kill -9 of the daemon, exactly the
//! changes that were answered with success are there.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// The tmpfs under `--root`.
const ROOT_MIB: u64 = 64;
/// The random tar imported while the disk is full, and again once space is back.
const BIG_MIB: u64 = 8;

const NO_SPACE: &str = "no space left on device";

fn ok(out: &Output) -> bool {
    out.status.success()
}

/// A failed command printed Docker's words for a full disk, and no broken pipe.
fn assert_no_space(out: &Output, what: &str) {
    let err = stderr(out);
    assert!(
        err.contains(NO_SPACE),
        "{what}: expected \"{NO_SPACE}\" in the error, got (exit {}): {err}",
        code(out)
    );
    assert!(
        !err.to_lowercase().contains("broken pipe"),
        "{what}: the client saw a broken pipe: {err}"
    );
}

/// A tar of one file of `mib` MiB of random bytes (nothing compresses it).
fn random_tar(dir: &Path, mib: u64) -> PathBuf {
    let path = dir.join("big.tar");
    let file = fs::File::create(&path).expect("create big.tar");
    let mut b = tar::Builder::new(file);
    let mut h = tar::Header::new_gnu();
    h.set_size(mib << 20);
    h.set_mode(0o644);
    h.set_cksum();
    let random = fs::File::open("/dev/urandom")
        .expect("open /dev/urandom")
        .take(mib << 20);
    b.append_data(&mut h, "blob", random)
        .expect("write big.tar");
    b.into_inner().expect("finish big.tar").flush().unwrap();
    path
}

/// Fills the root: a container writes a file in a volume until the disk is full, then
/// the test writes page-sized files next to it until not one more fits. Returns the
/// volume's data directory (deleting what is in it frees the space again).
fn fill(d: &TestDaemon) -> PathBuf {
    let out = d.berth(&[
        "run",
        "--name",
        "filler",
        "--network",
        "none",
        "-v",
        "fill:/data",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/data/f",
        "bs=1M",
    ]);
    assert!(
        !ok(&out),
        "dd filled a {ROOT_MIB} MiB disk without an error"
    );
    let data = d.root.join("volumes/fill/_data");
    assert!(
        data.join("f").exists(),
        "the filler file is not in the volume"
    );
    let page = vec![0u8; 4096];
    for i in 0.. {
        let p = data.join(format!("top-{i}"));
        if fs::write(&p, &page).is_err() {
            let _ = fs::remove_file(&p);
            break;
        }
    }
    data
}

fn free(data: &Path) {
    for e in fs::read_dir(data).expect("read the volume").flatten() {
        fs::remove_file(e.path()).expect("free space");
    }
}

/// Every container name (`ps -a`), without the leading `/`.
fn container_names(d: &TestDaemon) -> BTreeSet<String> {
    d.berth_ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn volume_names(d: &TestDaemon) -> BTreeSet<String> {
    d.berth_ok(&["volume", "ls", "-q"])
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Runs `create` (alternating the Berth CLI and, if present, the Docker CLI) until one
/// fails; every failure must be the full disk. Returns the names created.
fn create_until_full(d: &TestDaemon, prefix: &str, docker: bool) -> BTreeSet<String> {
    let mut made = BTreeSet::new();
    for i in 0..40 {
        let name = format!("{prefix}{i}");
        let args = ["create", "--name", name.as_str(), "busybox", "true"];
        let out = if docker {
            d.docker(&args)
        } else {
            d.berth(&args)
        };
        if ok(&out) {
            made.insert(name);
            continue;
        }
        assert_no_space(&out, &format!("create {name}"));
        return made;
    }
    panic!("40 creates on a full disk all succeeded: the disk is not full");
}

#[test]
fn a_full_disk_is_an_error_and_space_coming_back_needs_no_restart() {
    let mut d = TestDaemon::start_on_tmpfs(ROOT_MIB);
    let docker = docker_cli_available();
    d.import_busybox();
    let mut containers: BTreeSet<String> = BTreeSet::new();
    for n in ["a1", "a2", "a3", "a4"] {
        d.berth_ok(&["create", "--name", n, "busybox", "true"]);
        containers.insert(n.into());
    }
    d.berth_ok(&["volume", "create", "keep"]);
    let mut volumes: BTreeSet<String> = ["keep".to_string()].into();
    let big = random_tar(&d.dir, BIG_MIB);
    let big = big.to_str().unwrap();

    let data = fill(&d);
    containers.insert("filler".into());
    volumes.insert("fill".into());

    // An import that does not fit: the error, not a broken pipe, in both CLIs.
    let out = d.berth(&["import", big, "big:full"]);
    assert!(!ok(&out), "import on a full disk succeeded");
    assert_no_space(&out, "berth import");
    if docker {
        let out = d.docker(&["import", big, "big:full"]);
        assert!(!ok(&out), "docker import on a full disk succeeded");
        assert_no_space(&out, "docker import");
    }

    // Metadata writes: some may still fit in meta.db's free pages, then they fail in
    // Docker's words, again and again (the store does not wedge into another error).
    containers.extend(create_until_full(&d, "b", false));
    if docker {
        containers.extend(create_until_full(&d, "c", true));
    }
    containers.extend(create_until_full(&d, "d", false));
    for n in ["a1", "a2"] {
        let out = d.berth(&["rm", "-f", n]);
        if ok(&out) {
            containers.remove(n);
        } else {
            assert_no_space(&out, &format!("rm -f {n}"));
        }
    }
    let out = d.berth(&["volume", "create", "full"]);
    if ok(&out) {
        volumes.insert("full".into());
    } else {
        assert_no_space(&out, "volume create");
    }
    assert_eq!(
        container_names(&d),
        containers,
        "ps -a shows what was answered"
    );

    // Space comes back: everything works again, without a restart.
    free(&data);
    d.berth_ok(&["create", "--name", "after", "busybox", "true"]);
    containers.insert("after".into());
    d.berth_ok(&["rm", "-f", "a3"]);
    containers.remove("a3");
    d.berth_ok(&["volume", "create", "after"]);
    volumes.insert("after".into());
    d.berth_ok(&["import", big, "big:after"]);
    if docker {
        d.docker_ok(&["create", "--name", "after-docker", "busybox", "true"]);
        containers.insert("after-docker".into());
        d.docker_ok(&["rm", "-f", "a4"]);
        containers.remove("a4");
    }
    assert_eq!(container_names(&d), containers);

    // Every acknowledged change survives a kill -9 of the daemon; nothing else appears.
    d.kill_daemon();
    d.start_daemon();
    assert_eq!(
        container_names(&d),
        containers,
        "containers after a restart"
    );
    assert_eq!(volume_names(&d), volumes, "volumes after a restart");
    let images = d.berth_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        images.contains("big:after"),
        "images after a restart: {images}"
    );
    assert!(
        !images.contains("big:full"),
        "a failed import left an image: {images}"
    );
}

#[test]
fn removing_a_volume_frees_its_space_on_a_full_disk() {
    let d = TestDaemon::start_on_tmpfs(ROOT_MIB);
    d.import_busybox();
    d.berth_ok(&["volume", "create", "fill"]);
    let data = d.root.join("volumes/fill/_data");
    let chunk = vec![0u8; 1 << 20];
    for i in 0.. {
        if fs::write(data.join(format!("f-{i}")), &chunk).is_err() {
            break;
        }
    }
    let page = vec![0u8; 4096];
    for i in 0.. {
        if fs::write(data.join(format!("top-{i}")), &page).is_err() {
            break;
        }
    }
    // Whatever meta.db still holds, `volume rm` frees the space: when the record cannot
    // be deleted, the data goes first (as moby's local driver does) and it is retried.
    d.berth_ok(&["volume", "rm", "fill"]);
    assert!(!data.exists(), "the volume's data is still there");
    assert!(!volume_names(&d).contains("fill"));
    d.berth_ok(&["create", "--name", "after", "busybox", "true"]);
}
