//! Volumes and mounts with Docker's semantics (issue 6): named, anonymous, bind and tmpfs
//! mounts, read-only enforcement, persistence across container removal and daemon
//! restart, copy-up, refusal to remove a volume in use, symlink escapes, no mounts left
//! behind, and the real Docker CLI.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

fn volume_names(d: &TestDaemon) -> Vec<String> {
    d.berth_ok(&["volume", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect()
}

/// Host mounts whose source or target mentions `dir` (from /proc/self/mountinfo).
fn host_mounts_mentioning(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let needle = dir.to_string_lossy().into_owned();
    text.lines()
        .filter(|l| l.contains(&needle))
        .map(String::from)
        .collect()
}

#[test]
fn named_volume_survives_container_removal_and_daemon_restart() {
    let mut d = daemon();
    assert_eq!(
        d.berth_ok(&["volume", "create", "--label", "team=a", "data"]),
        "data\n"
    );
    assert_eq!(
        d.berth_ok(&["volume", "ls"]),
        "DRIVER    VOLUME NAME\nlocal     data\n"
    );
    let v: serde_json::Value =
        serde_json::from_str(&d.berth_ok(&["volume", "inspect", "data"])).unwrap();
    assert_eq!(v[0]["Name"], "data");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    assert_eq!(v[0]["Labels"]["team"], "a");
    let mountpoint = d.root.join("volumes/data/_data");
    assert_eq!(v[0]["Mountpoint"], mountpoint.display().to_string());
    assert_eq!(
        d.berth_ok(&["volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "data"]),
        "data local\n"
    );

    d.berth_ok(&[
        "run",
        "--name",
        "wr",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        std::fs::read_to_string(mountpoint.join("f")).unwrap(),
        "kept\n"
    );
    // In use by a stopped container: refused, even with -f.
    let id = d.full_id("wr");
    for args in [
        &["volume", "rm", "data"][..],
        &["volume", "rm", "-f", "data"],
    ] {
        let out = d.berth(args);
        assert_eq!(code(&out), 1);
        assert_eq!(
            stderr(&out).trim(),
            format!("Error response from daemon: remove data: volume is in use - [{id}]")
        );
    }
    let (status, _, _) = d.request("DELETE", "/volumes/data", None);
    assert_eq!(status, 409);
    // `rm -v` never removes a named volume.
    d.berth_ok(&["rm", "-v", "wr"]);
    assert_eq!(volume_names(&d), ["data"]);

    d.stop_daemon(std::time::Duration::from_secs(10));
    d.start_daemon();
    assert_eq!(volume_names(&d), ["data"]);
    assert_eq!(
        d.berth_ok(&[
            "run",
            "--rm",
            "-v",
            "data:/data",
            "busybox",
            "cat",
            "/data/f"
        ]),
        "kept\n"
    );

    // Filters.
    assert_eq!(
        d.berth_ok(&["volume", "ls", "-q", "--filter", "dangling=true"]),
        "data\n"
    );
    assert_eq!(
        d.berth_ok(&["volume", "ls", "-q", "--filter", "label=team=b"]),
        ""
    );
    assert_eq!(
        d.berth_ok(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            "name=dat",
            "--filter",
            "driver=local"
        ]),
        "data\n"
    );
    assert_eq!(
        d.berth_ok(&["volume", "ls", "--format", "{{.Name}}:{{.Labels}}"]),
        "data:team=a\n"
    );

    // Prune without -a keeps named volumes (API >= 1.42); with -a they go.
    assert_eq!(
        d.berth_ok(&["volume", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    assert_eq!(volume_names(&d), ["data"]);
    let out = d.berth_ok(&["volume", "prune", "-a", "-f"]);
    assert!(
        out.starts_with("Deleted Volumes:\ndata\n\nTotal reclaimed space: "),
        "{out}"
    );
    assert!(volume_names(&d).is_empty());
    assert!(!d.root.join("volumes/data").exists());
    // Not found, and -f ignores that.
    let out = d.berth(&["volume", "rm", "data"]);
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: get data: no such volume"
    );
    d.berth_ok(&["volume", "rm", "-f", "data"]);
    let out = d.berth(&["volume", "create", "a/b"]);
    assert!(
        stderr(&out).contains("includes invalid characters for a local volume name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn binds_tmpfs_and_read_only() {
    let d = daemon();
    let host = d.dir.join("hostdir");
    // A missing -v host path is created as a directory.
    d.berth_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/b", host.display()),
        "busybox",
        "sh",
        "-c",
        "echo x > /b/f",
    ]);
    assert_eq!(std::fs::read_to_string(host.join("f")).unwrap(), "x\n");
    // :ro is enforced.
    let out = d.berth(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/b:ro,z", host.display()),
        "busybox",
        "touch",
        "/b/g",
    ]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    // --mount type=bind with a missing source is an error, and leaves no container.
    let out = d.berth(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/nonexistent/x,target=/x",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/x"),
        "{}",
        stderr(&out)
    );
    let src = host.display().to_string();
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,source={src},target=/m,readonly"),
        "busybox",
        "cat",
        "/m/f",
    ]);
    assert_eq!(out, "x\n");
    // tmpfs both ways.
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/t1:size=1m",
        "--mount",
        "type=tmpfs,target=/t2,tmpfs-size=2m",
        "busybox",
        "sh",
        "-c",
        "grep -E ' /t[12] ' /proc/mounts | cut -d' ' -f1-4",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("tmpfs /t2 tmpfs rw,") || lines[1].starts_with("tmpfs /t2 tmpfs rw,"),
        "{out}"
    );
    assert!(out.contains("size=1024k"), "{out}");
    assert!(out.contains("size=2048k"), "{out}");
    // --read-only: the rootfs refuses writes, volumes and tmpfs do not.
    let out = d.berth(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        "rw:/data",
        "--tmpfs",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        "touch /data/ok && touch /tmp/ok && touch /nope",
    ]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("touch: /nope: Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert!(d.root.join("volumes/rw/_data/ok").exists());
    // Docker's errors for bad specs.
    let out = d.berth(&["create", "-v", "a:/data", "-v", "b:/data", "busybox"]);
    assert!(
        stderr(&out).contains("Duplicate mount point: /data"),
        "{}",
        stderr(&out)
    );
    let out = d.berth(&["create", "-v", "a:b:c:d", "busybox"]);
    assert!(
        stderr(&out).contains("invalid volume specification: 'a:b:c:d'"),
        "{}",
        stderr(&out)
    );
    let out = d.berth(&["create", "-v", "/h:/c:bogus", "busybox"]);
    assert!(
        stderr(&out).contains("invalid mode: bogus"),
        "{}",
        stderr(&out)
    );
    assert_eq!(d.berth_ok(&["ps", "-aq"]), "");
    // A failed create leaves no anonymous volume behind.
    let before = volume_names(&d);
    let out = d.berth(&["create", "--name", "dup", "busybox"]);
    assert_success(&out, "create dup");
    let out = d.berth(&["create", "--name", "dup", "-v", "/anon", "busybox"]);
    assert_ne!(code(&out), 0);
    assert_eq!(volume_names(&d), before);
}

#[test]
fn anonymous_volumes_copy_up_volumes_from_and_rm_v() {
    let d = daemon();
    // An empty anonymous volume over /etc is filled with the image's /etc.
    d.berth_ok(&[
        "create",
        "--name",
        "ca",
        "-v",
        "/etc",
        "busybox",
        "cat",
        "/etc/passwd",
    ]);
    let m = &d.inspect("ca")["Mounts"][0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Destination"], "/etc");
    assert_eq!(m["Driver"], "local");
    assert_eq!(m["RW"], true);
    assert_eq!(m["Propagation"], "");
    let name = m["Name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), 64);
    assert_eq!(
        m["Source"],
        d.root
            .join("volumes")
            .join(&name)
            .join("_data")
            .display()
            .to_string()
    );
    let passwd = d.root.join("volumes").join(&name).join("_data/passwd");
    assert!(passwd.exists(), "copy-up did not fill the volume");
    let image_passwd = d.berth_ok(&["run", "--rm", "busybox", "cat", "/etc/passwd"]);
    assert_eq!(std::fs::read_to_string(&passwd).unwrap(), image_passwd);
    // ps shows the mount too.
    let ps = d.berth_ok(&["ps", "-a", "--format", "{{.Mounts}}"]);
    assert!(
        ps.trim().starts_with(&name[..10]) && ps.trim().ends_with('…'),
        "ps Mounts: {ps}"
    );

    // nocopy: a named volume stays empty.
    d.berth_ok(&["run", "--rm", "-v", "empty:/etc:nocopy", "busybox", "true"]);
    assert_eq!(
        std::fs::read_dir(d.root.join("volumes/empty/_data"))
            .unwrap()
            .count(),
        0
    );
    // A named volume that is not empty is not overwritten.
    d.berth_ok(&[
        "run",
        "--rm",
        "-v",
        "full:/etc",
        "busybox",
        "sh",
        "-c",
        "echo mine > /etc/passwd",
    ]);
    assert_eq!(
        d.berth_ok(&[
            "run",
            "--rm",
            "-v",
            "full:/etc",
            "busybox",
            "cat",
            "/etc/passwd"
        ]),
        "mine\n"
    );

    // --volumes-from shares the same volume.
    d.berth_ok(&["start", "ca"]);
    d.berth_ok(&[
        "run",
        "--name",
        "cb",
        "--volumes-from",
        "ca:ro",
        "busybox",
        "true",
    ]);
    let mb = &d.inspect("cb")["Mounts"][0];
    assert_eq!(mb["Name"], name.as_str());
    assert_eq!(mb["RW"], false);

    // rm -v removes the anonymous volume once no container uses it; never named ones.
    d.berth_ok(&["rm", "-v", "cb"]);
    assert!(
        volume_names(&d).contains(&name),
        "b's rm -v removed a's volume"
    );
    d.berth_ok(&["rm", "-v", "ca"]);
    assert!(!volume_names(&d).contains(&name));
    assert!(volume_names(&d).contains(&"full".to_string()));

    // --rm removes anonymous volumes as well.
    let before = volume_names(&d);
    d.berth_ok(&["run", "--rm", "-v", "/anon", "busybox", "true"]);
    assert!(wait_until(
        std::time::Duration::from_secs(10),
        || volume_names(&d) == before
    ));
    // rm without -v leaves it; prune (anonymous only) takes it.
    d.berth_ok(&["run", "--name", "keep", "-v", "/anon", "busybox", "true"]);
    d.berth_ok(&["rm", "keep"]);
    assert_eq!(volume_names(&d).len(), before.len() + 1);
    let out = d.berth_ok(&["volume", "prune", "-f"]);
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    assert_eq!(volume_names(&d), before);
}

#[test]
fn image_volume_creates_an_anonymous_volume() {
    let d = TestDaemon::start();
    let tar = busybox_tar();
    d.berth_ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "VOLUME /data",
        tar.to_str().unwrap(),
        "withvol:1",
    ]);
    d.berth_ok(&[
        "run",
        "--name",
        "cc",
        "withvol:1",
        "sh",
        "-c",
        "echo v > /data/f",
    ]);
    let m = &d.inspect("cc")["Mounts"][0];
    assert_eq!(m["Destination"], "/data");
    let name = m["Name"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(d.root.join("volumes").join(name).join("_data/f")).unwrap(),
        "v\n"
    );
    // A named volume given by the user replaces the image's anonymous one.
    d.berth_ok(&["create", "--name", "cn", "-v", "mine:/data", "withvol:1"]);
    let mounts = d.inspect("cn")["Mounts"].as_array().unwrap().clone();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0]["Name"], "mine");
}

/// Makes an image whose `/evil` is a symlink to the host path `target`.
fn import_escape_image(d: &TestDaemon, target: &Path) {
    let work = d.dir.join("escape-img");
    std::fs::create_dir_all(&work).unwrap();
    let mut cmd = Command::new("tar");
    cmd.arg("-xf").arg(busybox_tar()).arg("-C").arg(&work);
    assert_success(
        &run_with_timeout(cmd, None, CMD_TIMEOUT, "tar -x"),
        "tar -x",
    );
    // An absolute target: on the host it names `target`; inside the container it must
    // resolve under the rootfs.
    std::os::unix::fs::symlink(target, work.join("evil")).unwrap();
    let tar = d.dir.join("escape.tar");
    let mut cmd = Command::new("tar");
    cmd.arg("-cf").arg(&tar).arg("-C").arg(&work).arg(".");
    assert_success(
        &run_with_timeout(cmd, None, CMD_TIMEOUT, "tar -c"),
        "tar -c",
    );
    d.berth_ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        tar.to_str().unwrap(),
        "escape:1",
    ]);
}

#[test]
fn symlink_in_image_cannot_take_a_volume_outside_the_rootfs() {
    let d = TestDaemon::start();
    let outside: PathBuf = d.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("host-file"), "host\n").unwrap();
    import_escape_image(&d, &outside);
    let src = d.dir.join("bindsrc");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("from-bind"), "b\n").unwrap();
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "-v",
        "vol:/evil",
        "--mount",
        &format!("type=bind,source={},target=/evil/sub", src.display()),
        "escape:1",
        "sh",
        "-c",
        "touch /evil/written; ls /evil/sub",
    ]);
    assert_eq!(out, "from-bind\n");
    // The host directory the symlink names was neither mounted over nor written to.
    let mut names: Vec<String> = std::fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["host-file"]);
    assert!(d.root.join("volumes/vol/_data/written").exists());
    assert!(host_mounts_mentioning(&outside).is_empty());
}

#[test]
fn nothing_stays_mounted_after_rm() {
    let d = daemon();
    let host = d.dir.join("b");
    let id = d.run_detached(&[
        "-v",
        "data:/data",
        "-v",
        &format!("{}:/b", host.display()),
        "--tmpfs",
        "/t",
        "-v",
        "/anon",
        "busybox",
        "sleep",
        "1000",
    ]);
    // While it runs the mounts live in the container's namespace only.
    assert!(host_mounts_mentioning(&d.root.join("volumes")).is_empty());
    d.berth_ok(&["rm", "-f", "-v", &id]);
    assert!(host_mounts_mentioning(&d.root.join("volumes")).is_empty());
    assert!(host_mounts_mentioning(&host).is_empty());
    assert!(
        mounts_under(&d.dir).is_empty(),
        "{:?}",
        mounts_under(&d.dir)
    );
    assert_eq!(volume_names(&d), ["data"]);
}

#[test]
fn volume_api_shapes() {
    let d = TestDaemon::start();
    let (status, _, body) = d.request("POST", "/volumes/create", Some(br#"{"Name":"v1","Labels":{"a":"b"},"DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=1m"}}"#));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["Options"]["type"], "tmpfs");
    let (status, _, body) = d.request("GET", "/volumes", None);
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list["Volumes"].as_array().unwrap().len(), 1);
    assert!(list["Warnings"].is_null());
    let (status, _, _) = d.request("GET", "/volumes/nope", None);
    assert_eq!(status, 404);
    let (status, _, body) = d.request(
        "POST",
        "/volumes/create",
        Some(br#"{"Name":"v2","DriverOpts":{"bogus":"1"}}"#),
    );
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).contains("invalid option key: \\\"bogus\\\""),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // API 1.41 prunes every unused volume, 1.42+ only anonymous ones.
    let (_, _, body) = d.request("POST", "/v1.45/volumes/prune", None);
    assert!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["VolumesDeleted"].is_null()
    );
    let (_, _, body) = d.request("POST", "/v1.41/volumes/prune", None);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["VolumesDeleted"],
        serde_json::json!(["v1"])
    );
    let (status, _, _) = d.request("DELETE", "/volumes/v1", None);
    assert_eq!(status, 404);
}

#[test]
fn tmpfs_volume_driver_options() {
    let mut d = daemon();
    d.berth_ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=3m",
        "tv",
    ]);
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "-v",
        "tv:/tv",
        "busybox",
        "sh",
        "-c",
        "grep ' /tv ' /proc/mounts | cut -d' ' -f1-3",
    ]);
    assert_eq!(out, "tmpfs /tv tmpfs\n");
    assert!(
        mounts_under(&d.root).is_empty(),
        "the tmpfs volume stayed mounted: {:?}",
        mounts_under(&d.root)
    );
    // Mounted on the host while a container uses it, shared by the running users,
    // unmounted when the last one stops.
    let data = d.root.join("volumes/tv/_data");
    let a = d.run_detached(&[
        "-v",
        "tv:/tv",
        "busybox",
        "sh",
        "-c",
        "echo shared > /tv/f; sleep 1000",
    ]);
    assert!(wait_until(std::time::Duration::from_secs(10), || data
        .join("f")
        .exists()));
    assert_eq!(mounts_under(&data), std::slice::from_ref(&data));
    let b = d.run_detached(&["-v", "tv:/tv", "busybox", "sleep", "1000"]);
    assert_eq!(d.berth_ok(&["exec", &b, "cat", "/tv/f"]), "shared\n");
    d.berth_ok(&["stop", "-t", "0", &a]);
    assert_eq!(
        mounts_under(&data),
        std::slice::from_ref(&data),
        "unmounted while a user still runs"
    );
    d.berth_ok(&["stop", "-t", "0", &b]);
    assert!(
        mounts_under(&data).is_empty(),
        "still mounted after the last user stopped"
    );
    assert!(!data.join("f").exists());
    let out = d.berth(&["volume", "rm", "tv"]);
    assert!(
        stderr(&out).contains("volume is in use"),
        "{}",
        stderr(&out)
    );
    // A daemon restart keeps the mount for a running user and unmounts after it stops.
    let c = d.run_detached(&["-v", "tv:/tv", "busybox", "sleep", "1000"]);
    d.kill_daemon();
    d.start_daemon();
    assert_eq!(mounts_under(&data), std::slice::from_ref(&data));
    d.berth_ok(&["stop", "-t", "0", &c]);
    assert!(
        mounts_under(&data).is_empty(),
        "still mounted after a restart and the last stop"
    );
    d.berth_ok(&["rm", &a, &b, &c]);
    d.berth_ok(&["volume", "rm", "tv"]);
    let bsrc = d.dir.join("dev");
    std::fs::create_dir_all(&bsrc).unwrap();
    std::fs::write(bsrc.join("f"), "dev\n").unwrap();
    d.berth_ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &format!("device={}", bsrc.display()),
        "bv",
    ]);
    assert_eq!(
        d.berth_ok(&["run", "--rm", "-v", "bv:/bv", "busybox", "cat", "/bv/f"]),
        "dev\n"
    );
    assert!(mounts_under(&d.dir).is_empty());
}

#[test]
fn docker_cli_volumes_and_mounts() {
    skip_unless_docker!();
    let d = daemon();
    assert_eq!(
        d.docker_ok(&["volume", "create", "--label", "x=y", "dv"]),
        "dv\n"
    );
    assert_eq!(
        d.docker_ok(&["volume", "ls"]),
        "DRIVER    VOLUME NAME\nlocal     dv\n"
    );
    assert_eq!(
        d.docker_ok(&["volume", "ls", "-q", "--filter", "dangling=true"]),
        "dv\n"
    );
    let v: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["volume", "inspect", "dv"])).unwrap();
    assert_eq!(v[0]["Labels"]["x"], "y");
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "-v",
            "dv:/d",
            "busybox",
            "sh",
            "-c",
            "echo hi > /d/f; cat /d/f"
        ]),
        "hi\n"
    );
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,source=dv,target=/d,readonly",
            "busybox",
            "cat",
            "/d/f"
        ]),
        "hi\n"
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=dv,target=/d,readonly",
        "busybox",
        "touch",
        "/d/g",
    ]);
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/nonexistent/x,target=/x",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("bind source path does not exist: /nonexistent/x"),
        "{}",
        stderr(&out)
    );
    d.docker_ok(&["create", "--name", "user", "-v", "dv:/d", "busybox"]);
    let out = d.docker(&["volume", "rm", "dv"]);
    assert!(
        stderr(&out).contains("volume is in use"),
        "{}",
        stderr(&out)
    );
    d.docker_ok(&["rm", "user"]);
    assert_eq!(d.docker_ok(&["volume", "rm", "dv"]), "dv\n");
    d.docker_ok(&["volume", "create", "p1"]);
    let out = d.docker_ok(&["volume", "prune", "-a", "-f"]);
    assert!(out.starts_with("Deleted Volumes:\np1\n"), "{out}");
    assert_eq!(d.docker_ok(&["volume", "ls", "-q"]), "");
}

const DOCKER_PY_VOLUMES: &str = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1])
v = c.volumes.create(name="pyv", labels={"k": "v"})
print(v.name, v.attrs["Driver"], v.attrs["Labels"]["k"])
print([x.name for x in c.volumes.list()])
out = c.containers.run("busybox", "sh -c 'echo hi > /d/f; cat /d/f'", volumes={"pyv": {"bind": "/d", "mode": "rw"}}, remove=True)
print(repr(out))
out = c.containers.run("busybox", "cat /d/f", volumes=["pyv:/d:ro"], remove=True)
print(repr(out))
c.volumes.get("pyv").remove()
print(len(c.volumes.list()))
"#;

/// docker-py's `volumes.create` and `containers.run(volumes=…)`, with the docker-py venv
/// that `e2e_clients` makes (skipped when it has not been made yet outside CI).
#[test]
fn docker_py_volumes() {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("docker-py-venv");
    if !venv.join(".berth-ready").exists() {
        if std::env::var_os("CI").is_none() {
            eprintln!("SKIPPED: the docker-py venv is not made yet (e2e_clients makes it)");
            return;
        }
        panic!("the docker-py venv is missing at {}", venv.display());
    }
    let d = daemon();
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg("-c")
        .arg(DOCKER_PY_VOLUMES)
        .arg(d.host())
        .env_remove("DOCKER_HOST");
    let out = run_with_timeout(cmd, None, CMD_TIMEOUT, "docker-py volumes script");
    assert_success(&out, "docker-py volumes script");
    assert_eq!(
        stdout(&out),
        "pyv local v\n['pyv']\nb'hi\\n'\nb'hi\\n'\n0\n",
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn system_df_counts_local_volumes() {
    let d = daemon();
    d.berth_ok(&["volume", "create", "used"]);
    d.berth_ok(&["volume", "create", "idle"]);
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "-v",
        "used:/data",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/data/f bs=1000 count=300 2>/dev/null; sleep 100",
    ]);
    assert!(
        wait_until(std::time::Duration::from_secs(10), || {
            d.berth_ok(&["system", "df", "--format", "{{.Type}} {{.Size}}"])
                .contains("Local Volumes 300kB")
        }),
        "system df: {}",
        d.berth_ok(&["system", "df"])
    );
    let line = d.berth_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Active}}",
    ]);
    assert!(
        line.lines().any(|l| l == "Local Volumes|2|1"),
        "system df: {line}"
    );
    d.berth_ok(&["rm", "-f", "holder"]);
}
