//! `docker cp` (the container archive endpoints) and `docker diff` (container changes):
//! HEAD/GET/PUT on running and stopped containers, copy-up into the writable layer, a
//! symlink escape refused, no mounts left behind, and the real Docker CLI.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// A tar with one regular file.
fn one_file_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_size(content.len() as u64);
    h.set_mode(0o640);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, content).unwrap();
    b.into_inner().unwrap()
}

/// A tar with one regular file whose name is written as is (`..` included, which the
/// tar crate's `set_path` refuses).
fn raw_name_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    {
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
    }
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(content);
    out.resize(512 + content.len().div_ceil(512) * 512 + 1024, 0);
    out
}

/// The files of a tar: (name, content).
fn tar_files(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        out.push((name, data));
    }
    out
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn stat_of(headers: &[(String, String)]) -> serde_json::Value {
    let raw = header(headers, "x-docker-container-path-stat").expect("stat header");
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

fn no_mounts_left(d: &TestDaemon) {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let needle = d.root.join("containers").display().to_string();
    let left: Vec<&str> = text.lines().filter(|l| l.contains(&needle)).collect();
    assert!(left.is_empty(), "mounts left behind: {left:?}");
}

fn put_then_get(d: &TestDaemon, id: &str) {
    let tar = one_file_tar("hello.txt", b"hi there\n");
    let (st, _, body) = d.request(
        "PUT",
        &format!("/containers/{id}/archive?path=/etc"),
        Some(&tar),
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));

    let (st, h, _) = d.request(
        "HEAD",
        &format!("/containers/{id}/archive?path=/etc/hello.txt"),
        None,
    );
    assert_eq!(st, 200);
    let stat = stat_of(&h);
    assert_eq!(stat["name"], "hello.txt");
    assert_eq!(stat["size"], 9);
    assert_eq!(stat["mode"], 0o640);
    assert_eq!(stat["mtime"], "2020-09-13T12:26:40Z");
    assert_eq!(stat["linkTarget"], "");

    let (st, h, body) = d.request(
        "GET",
        &format!("/containers/{id}/archive?path=/etc/hello.txt"),
        None,
    );
    assert_eq!(st, 200);
    assert_eq!(stat_of(&h)["name"], "hello.txt");
    assert_eq!(
        tar_files(&body),
        vec![("hello.txt".to_string(), b"hi there\n".to_vec())]
    );

    // A directory: entries under its base name; `/.` gives its content.
    let (st, h, body) = d.request("GET", &format!("/containers/{id}/archive?path=/etc"), None);
    assert_eq!(st, 200);
    let stat = stat_of(&h);
    assert_eq!(stat["name"], "etc");
    assert_eq!(
        stat["mode"].as_u64().unwrap() & (1 << 31),
        1 << 31,
        "ModeDir"
    );
    let names: Vec<String> = tar_files(&body).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"etc".to_string()), "{names:?}");
    assert!(names.contains(&"etc/hello.txt".to_string()), "{names:?}");

    // A symlink: linkTarget is the resolved path.
    let (st, h, _) = d.request(
        "HEAD",
        &format!("/containers/{id}/archive?path=/bin/sh"),
        None,
    );
    assert_eq!(st, 200);
    let stat = stat_of(&h);
    assert_eq!(
        stat["mode"].as_u64().unwrap() & (1 << 27),
        1 << 27,
        "ModeSymlink"
    );
    assert_eq!(stat["linkTarget"], "/bin/busybox");

    let (st, _, body) = d.request(
        "HEAD",
        &format!("/containers/{id}/archive?path=/nope"),
        None,
    );
    assert_eq!(st, 404);
    assert!(body.is_empty());
    let (st, _, body) = d.request("GET", &format!("/containers/{id}/archive?path=/nope"), None);
    assert_eq!(st, 404);
    let msg: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        msg["message"],
        format!("Could not find the file /nope in container {id}")
    );

    // PUT into a file: not a directory.
    let (st, _, body) = d.request(
        "PUT",
        &format!("/containers/{id}/archive?path=/etc/hello.txt"),
        Some(&tar),
    );
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    let msg: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(msg["message"], "extraction point is not a directory");

    // noOverwriteDirNonDir: a file over the directory /etc/hello.d is refused.
    let dir_tar = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("hello.d/").unwrap();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        b.into_inner().unwrap()
    };
    let (st, _, _) = d.request(
        "PUT",
        &format!("/containers/{id}/archive?path=/etc"),
        Some(&dir_tar),
    );
    assert_eq!(st, 200);
    let over = one_file_tar("hello.d", b"x");
    let (st, _, body) = d.request(
        "PUT",
        &format!("/containers/{id}/archive?path=/etc&noOverwriteDirNonDir=1"),
        Some(&over),
    );
    assert_eq!(st, 500);
    let msg: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        msg["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot overwrite directory \"/etc/hello.d\" with non-directory"),
        "{msg}"
    );
}

#[test]
fn archive_on_a_running_container() {
    let d = daemon();
    let id = d.run_detached(&["busybox", "sleep", "300"]);
    put_then_get(&d, &id);
    // The running container sees the file.
    assert_eq!(
        d.berth_ok(&["exec", &id, "cat", "/etc/hello.txt"]),
        "hi there\n"
    );
    d.berth_ok(&["rm", "-f", &id]);
    no_mounts_left(&d);
}

#[test]
fn archive_on_a_stopped_container_writes_its_upper_layer() {
    let d = daemon();
    let id = d
        .berth_ok(&["create", "busybox", "cat", "/etc/hello.txt"])
        .trim()
        .to_string();
    put_then_get(&d, &id);
    no_mounts_left(&d);
    // Copy-up: the file lands in the container's writable layer.
    let upper = d.root.join("containers").join(&id).join("upper");
    assert_eq!(
        std::fs::read(upper.join("etc/hello.txt")).unwrap(),
        b"hi there\n"
    );
    // And the container sees it when it runs.
    assert_eq!(d.berth_ok(&["start", "-a", &id]), "hi there\n");
    // Exited: still readable.
    let (st, _, body) = d.request(
        "GET",
        &format!("/containers/{id}/archive?path=/etc/hello.txt"),
        None,
    );
    assert_eq!(st, 200);
    assert_eq!(tar_files(&body)[0].1, b"hi there\n");
    no_mounts_left(&d);
    let leftovers: Vec<_> = std::fs::read_dir(d.root.join("containers").join(&id))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("cp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    d.berth_ok(&["rm", &id]);
}

#[test]
fn symlinks_resolve_inside_the_container() {
    let d = daemon();
    // A host directory, and symlinks in the container pointing at its host path.
    let host_dir = d.dir.join("escape-target");
    std::fs::create_dir_all(&host_dir).unwrap();
    let hp = host_dir.display().to_string();
    let script =
        format!("ln -s {hp} /esc && ln -s ../../../../../../../../..{hp} /esc2 && sleep 300");
    let id = d.run_detached(&["busybox", "sh", "-c", &script]);
    assert!(wait_until(Duration::from_secs(10), || {
        d.request(
            "HEAD",
            &format!("/containers/{id}/archive?path=/esc2"),
            None,
        )
        .0 == 200
    }));
    let tar = one_file_tar("pwned", b"x");
    for p in ["/esc", "/esc2", "/esc/", "/esc2/."] {
        let (st, _, body) = d.request(
            "PUT",
            &format!("/containers/{id}/archive?path={p}"),
            Some(&tar),
        );
        assert_eq!(st, 404, "{p}: {}", String::from_utf8_lossy(&body));
    }
    // `..` entries in the tar cannot climb out of the destination either.
    let climb = raw_name_tar(&format!("../../../../../../../..{hp}/pwned2"), b"x");
    let (st, _, _) = d.request(
        "PUT",
        &format!("/containers/{id}/archive?path=/tmp"),
        Some(&climb),
    );
    assert_ne!(st, 200);
    assert_eq!(
        std::fs::read_dir(&host_dir).unwrap().count(),
        0,
        "a file escaped to the host"
    );
    // HEAD of the link: its target as the container sees it.
    let (_, h, _) = d.request(
        "HEAD",
        &format!("/containers/{id}/archive?path=/esc2"),
        None,
    );
    assert_eq!(stat_of(&h)["linkTarget"], hp);
    d.berth_ok(&["rm", "-f", &id]);
}

#[test]
fn changes_list_the_writable_layer() {
    let d = daemon();
    let id = d.run_detached(&[
        "busybox",
        "sh",
        "-c",
        "mkdir /newdir && touch /tmp/x && rm /etc/group && touch /ready && sleep 300",
    ]);
    let mut list = serde_json::Value::Null;
    assert!(wait_until(Duration::from_secs(10), || {
        let (st, _, body) = d.request("GET", &format!("/containers/{id}/changes"), None);
        assert_eq!(st, 200);
        list = serde_json::from_slice(&body).unwrap();
        list.as_array()
            .is_some_and(|a| a.iter().any(|c| c["Path"] == "/ready"))
    }));
    let got: Vec<(String, u64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Path"].as_str().unwrap().to_string(),
                c["Kind"].as_u64().unwrap(),
            )
        })
        .collect();
    let pos = |p: &str, k: u64| {
        got.iter()
            .position(|(gp, gk)| gp == p && *gk == k)
            .unwrap_or_else(|| panic!("{p} kind {k} missing in {got:?}"))
    };
    assert!(pos("/etc", 0) < pos("/etc/group", 2));
    assert!(pos("/etc/group", 2) < pos("/newdir", 1));
    assert!(pos("/newdir", 1) < pos("/tmp", 0));
    assert!(pos("/tmp", 0) < pos("/tmp/x", 1));

    for hidden in [
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/proc",
        "/sys",
        "/dev",
    ] {
        assert!(
            !got.iter().any(|(p, _)| p == hidden),
            "{hidden} listed: {got:?}"
        );
    }
    // A container that changed nothing: no changes (moby answers null).
    let quiet = d.run_detached(&["busybox", "sleep", "300"]);
    let (st, _, body) = d.request("GET", &format!("/containers/{quiet}/changes"), None);
    assert_eq!(st, 200);
    assert_eq!(String::from_utf8_lossy(&body).trim(), "null");
    assert_eq!(d.berth_ok(&["diff", &quiet]), "");
    d.berth_ok(&["rm", "-f", &quiet]);

    let out = d.berth_ok(&["diff", &id]);
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "C /etc",
        "D /etc/group",
        "A /newdir",
        "C /tmp",
        "A /tmp/x",
        "A /ready",
    ] {
        assert!(lines.contains(&want), "{want} missing in {out}");
    }
    let (st, _, _) = d.request("GET", "/containers/nosuch/changes", None);
    assert_eq!(st, 404);
    d.berth_ok(&["rm", "-f", &id]);
}

#[test]
fn berth_cp_both_ways() {
    let d = daemon();
    let id = d.run_detached(&["busybox", "sleep", "300"]);
    let work = d.dir.join("cp-work");
    std::fs::create_dir_all(work.join("srcdir/sub")).unwrap();
    std::fs::write(work.join("srcdir/sub/f"), "deep\n").unwrap();
    std::fs::write(work.join("file.txt"), "one\n").unwrap();
    let w = |p: &str| work.join(p).display().to_string();

    // file → dir in the container, then back to a new file name.
    d.berth_ok(&["cp", &w("file.txt"), &format!("{id}:/tmp")]);
    assert_eq!(d.berth_ok(&["exec", &id, "cat", "/tmp/file.txt"]), "one\n");
    d.berth_ok(&["cp", &w("file.txt"), &format!("{id}:/tmp/renamed")]);
    assert_eq!(d.berth_ok(&["exec", &id, "cat", "/tmp/renamed"]), "one\n");
    d.berth_ok(&["cp", &format!("{id}:/tmp/renamed"), &w("back.txt")]);
    assert_eq!(
        std::fs::read_to_string(work.join("back.txt")).unwrap(),
        "one\n"
    );

    // dir → dir (new name), dir → existing dir (nested).
    d.berth_ok(&["cp", &w("srcdir"), &format!("{id}:/opt")]);
    assert_eq!(d.berth_ok(&["exec", &id, "cat", "/opt/sub/f"]), "deep\n");
    d.berth_ok(&["cp", &w("srcdir"), &format!("{id}:/tmp")]);
    assert_eq!(
        d.berth_ok(&["exec", &id, "cat", "/tmp/srcdir/sub/f"]),
        "deep\n"
    );
    d.berth_ok(&["cp", &format!("{id}:/opt"), &w("fromctr")]);
    d.berth_ok(&["cp", &format!("{id}:/"), &w("rootcopy")]);
    assert_eq!(
        std::fs::read_to_string(work.join("rootcopy/tmp/file.txt")).unwrap(),
        "one\n"
    );
    assert!(work.join("rootcopy/proc").is_dir());
    assert_eq!(
        std::fs::read_dir(work.join("rootcopy/proc"))
            .unwrap()
            .count(),
        0,
        "/proc's content is not copied"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("fromctr/sub/f")).unwrap(),
        "deep\n"
    );

    // `-` writes a tar to stdout and reads one from stdin.
    let out = d.berth(&["cp", &format!("{id}:/tmp/file.txt"), "-"]);
    assert_success(&out, "cp to -");
    assert_eq!(
        tar_files(&out.stdout),
        vec![("file.txt".to_string(), b"one\n".to_vec())]
    );
    let tar = one_file_tar("piped.txt", b"piped\n");
    let out = d.berth_with_stdin(&["cp", "-", &format!("{id}:/tmp")], Some(&tar));
    assert_success(&out, "cp from -");
    assert_eq!(
        d.berth_ok(&["exec", &id, "cat", "/tmp/piped.txt"]),
        "piped\n"
    );

    // Errors in Docker's words.
    let out = d.berth(&["cp", &format!("{id}:/nope"), &w("x")]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        format!("Error response from daemon: Could not find the file /nope in container {id}\n")
    );
    let out = d.berth(&["cp", &w("a"), &w("b")]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("must specify at least one container source"),
        "{}",
        stderr(&out)
    );
    d.berth_ok(&["rm", "-f", &id]);
}

#[test]
fn docker_cli_cp_and_diff() {
    skip_unless_docker!();
    let d = daemon();
    let id = d.run_detached(&["busybox", "sh", "-c", "touch /tmp/x && sleep 300"]);
    let work = d.dir.join("docker-cp");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("in.txt"), "docker\n").unwrap();
    let src = work.join("in.txt").display().to_string();
    d.docker_ok(&["cp", &src, &format!("{id}:/tmp/")]);
    assert_eq!(d.berth_ok(&["exec", &id, "cat", "/tmp/in.txt"]), "docker\n");
    let back = work.join("out").display().to_string();
    d.docker_ok(&["cp", &format!("{id}:/tmp"), &back]);
    assert_eq!(
        std::fs::read_to_string(work.join("out/in.txt")).unwrap(),
        "docker\n"
    );
    assert!(work.join("out/x").exists());
    // -L follows a symlink to its target's content.
    d.docker_ok(&[
        "cp",
        "-L",
        &format!("{id}:/bin/sh"),
        &work.join("sh").display().to_string(),
    ]);
    assert!(std::fs::metadata(work.join("sh")).unwrap().len() > 100_000);
    let out = d.docker(&["cp", &format!("{id}:/nope"), &back]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("Could not find the file /nope in container"),
        "{}",
        stderr(&out)
    );

    // `dir/.` copies the content; a local directory to a new container path.
    let dot = work.join("dot");
    std::fs::create_dir_all(&dot).unwrap();
    d.docker_ok(&["cp", &format!("{id}:/tmp/."), &dot.display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(dot.join("in.txt")).unwrap(),
        "docker\n"
    );
    d.docker_ok(&["cp", &dot.display().to_string(), &format!("{id}:/newdir")]);
    assert_eq!(
        d.berth_ok(&["exec", &id, "cat", "/newdir/in.txt"]),
        "docker\n"
    );
    // The whole root.
    let root = work.join("root");
    d.docker_ok(&["cp", &format!("{id}:/"), &root.display().to_string()]);
    assert!(root.join("bin/busybox").exists());
    let tmp_list: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        root.join("tmp/in.txt").exists(),
        "root/tmp holds {tmp_list:?}\n{}",
        d.log_tail()
    );

    let diff = d.docker_ok(&["diff", &id]);
    let lines: Vec<&str> = diff.lines().collect();
    assert!(lines.contains(&"C /tmp"), "{diff}");
    assert!(lines.contains(&"A /tmp/x"), "{diff}");
    assert!(lines.contains(&"A /tmp/in.txt"), "{diff}");
    d.berth_ok(&["rm", "-f", &id]);
    no_mounts_left(&d);
}

#[test]
fn stopped_container_volumes_owner_and_read_only_rootfs() {
    let d = daemon();
    // A created container's volume is mounted for cp (the file lands in the volume).
    let id = d
        .berth_ok(&[
            "create",
            "-v",
            "cpvol:/vol1",
            "-u",
            "1234:5678",
            "busybox",
            "cat",
            "/vol1/data.txt",
        ])
        .trim()
        .to_string();
    let tar = one_file_tar("data.txt", b"in the volume\n");
    let (st, _, body) = d.request(
        "PUT",
        &format!("/containers/{id}/archive?path=/vol1&copyUIDGID=1"),
        Some(&tar),
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let data = d.root.join("volumes/cpvol/_data/data.txt");
    assert_eq!(std::fs::read(&data).unwrap(), b"in the volume\n");
    // copyUIDGID: owned by the container's user.
    let md = std::fs::metadata(&data).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&md),
            std::os::unix::fs::MetadataExt::gid(&md)
        ),
        (1234, 5678)
    );
    assert_eq!(d.berth_ok(&["start", "-a", &id]), "in the volume\n");
    no_mounts_left(&d);
    d.berth_ok(&["rm", &id]);

    // A read-only rootfs refuses copies, except into a volume.
    let ro = d
        .berth_ok(&["create", "--read-only", "-v", "/data", "busybox", "true"])
        .trim()
        .to_string();
    let (st, _, body) = d.request(
        "PUT",
        &format!("/containers/{ro}/archive?path=/tmp"),
        Some(&tar),
    );
    assert_eq!(st, 400);
    let msg: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(msg["message"], "container rootfs is marked read-only");
    let (st, _, _) = d.request(
        "PUT",
        &format!("/containers/{ro}/archive?path=/data"),
        Some(&tar),
    );
    assert_eq!(st, 200);
    d.berth_ok(&["rm", "-v", &ro]);
    no_mounts_left(&d);
}

/// Runs `berth -H … ARGS` under `script`, so stdout and stderr are a terminal.
fn berth_on_a_terminal(d: &TestDaemon, args: &str) -> String {
    let cmd = format!("{BERTH} -H {} {args}", d.host());
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env_remove("DOCKER_HOST")
        .env("DOCKER_CONFIG", d.dir.join("docker-config"));
    let out = run_with_timeout(c, None, Duration::from_secs(60), "script berth cp");
    assert_success(&out, &cmd);
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn cp_prints_its_summary_only_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: script(1) is not installed");
        return;
    }
    let d = daemon();
    let id = d.run_detached(&["busybox", "sleep", "300"]);
    let file = d.dir.join("two-k");
    std::fs::write(&file, vec![b'x'; 2048]).unwrap();
    let out = berth_on_a_terminal(&d, &format!("cp {} {id}:/tmp", file.display()));
    assert!(
        out.contains(&format!(
            "Successfully copied 2.05kB (transferred 3.58kB) to {id}:/tmp\n"
        )),
        "{out:?}"
    );
    let back = d.dir.join("back");
    let out = berth_on_a_terminal(&d, &format!("cp {id}:/tmp/two-k {}", back.display()));
    assert!(
        out.contains(&format!(
            "Successfully copied 2.05kB (transferred 3.58kB) to {}\n",
            back.display()
        )),
        "{out:?}"
    );
    // Not on a terminal: nothing.
    let out = d.berth(&["cp", &file.display().to_string(), &format!("{id}:/tmp")]);
    assert_success(&out, "cp");
    assert_eq!(stderr(&out), "");
    d.berth_ok(&["rm", "-f", &id]);
}
