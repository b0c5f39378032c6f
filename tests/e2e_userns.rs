//! User namespaces (issue 13 point 7): a daemon with `--userns-remap USER:GROUP` against
//! test subordinate id files (`--subuid-file`, `--subgid-file`: the host's /etc/subuid
//! and /etc/subgid are never read or changed), compared with a daemon without remapping.
//!
//! The remapped root is host uid/gid 231072 (the test files' first range), an id no
//! one on the host has.

mod common;

use common::*;
use serde_json::{json, Value};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const ROOT_UID: u32 = 231072;
const ROOT_GID: u32 = 331072;

/// A remapped daemon (user `daemon`, group `daemon`: both exist on every Debian) with
/// busybox imported.
fn remapped() -> TestDaemon {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let subuid = dir.join("subuid");
    let subgid = dir.join("subgid");
    // Two uid ranges (the second maps container ids 65536 on), one gid range.
    std::fs::write(
        &subuid,
        format!("other:100000:65536\ndaemon:{ROOT_UID}:65536\n1:400000:1000\n"),
    )
    .unwrap();
    std::fs::write(&subgid, format!("daemon:{ROOT_GID}:65536\n")).unwrap();
    let d = TestDaemon::start_with_args(&[
        "--userns-remap",
        "daemon:daemon",
        "--subuid-file",
        subuid.to_str().unwrap(),
        "--subgid-file",
        subgid.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    d.import_busybox();
    d
}

fn run(d: &TestDaemon, args: &[&str]) -> String {
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(args);
    d.berth_ok(&a)
}

fn create(d: &TestDaemon, body: Value) -> (u16, Value) {
    let (status, _, resp) = d.request(
        "POST",
        "/v1.41/containers/create",
        Some(body.to_string().as_bytes()),
    );
    let v = serde_json::from_slice(&resp)
        .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&resp)}));
    (status, v)
}

fn words(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn container_root_is_an_unprivileged_host_uid() {
    let d = remapped();
    // root inside, with the image's names
    let id = run(&d, &["busybox", "id"]);
    assert!(id.starts_with("uid=0(root) gid=0(root)"), "{id}");
    // the maps: the user's ranges in order, container ids from 0 on
    let uid_map = run(&d, &["busybox", "cat", "/proc/self/uid_map"]);
    assert_eq!(
        uid_map.lines().map(words).collect::<Vec<_>>(),
        [
            format!("0 {ROOT_UID} 65536"),
            "65536 400000 1000".to_string()
        ],
        "{uid_map}"
    );
    let gid_map = run(&d, &["busybox", "cat", "/proc/self/gid_map"]);
    assert_eq!(words(&gid_map), format!("0 {ROOT_GID} 65536"));

    // The image's files (stored once, owned by 0) are root's inside: idmapped layers.
    let owners = run(
        &d,
        &[
            "busybox",
            "stat",
            "-c",
            "%u:%g",
            "/bin/busybox",
            "/etc/passwd",
            "/",
        ],
    );
    assert_eq!(
        owners.lines().collect::<Vec<_>>(),
        ["0:0", "0:0", "0:0"],
        "{owners}"
    );
    // and root may write to its rootfs, /etc/hosts, a tmpfs
    run(
        &d,
        &[
            "busybox",
            "sh",
            "-c",
            "echo x > /made && echo 1.2.3.4 h >> /etc/hosts && touch /tmp/t /dev/shm/s",
        ],
    );

    // A file made in a bind-mounted host directory is the remapped root's on the host.
    let host_dir = d.dir.join("shared");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::set_permissions(&host_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bind = format!("{}:/data", host_dir.display());
    run(
        &d,
        &[
            "-v",
            &bind,
            "busybox",
            "sh",
            "-c",
            "touch /data/by-root /data/by-1000 && chown 1000:1000 /data/by-1000",
        ],
    );
    let m = std::fs::metadata(host_dir.join("by-root")).unwrap();
    assert_eq!((m.uid(), m.gid()), (ROOT_UID, ROOT_GID));
    let m = std::fs::metadata(host_dir.join("by-1000")).unwrap();
    assert_eq!((m.uid(), m.gid()), (ROOT_UID + 1000, ROOT_GID + 1000));
    // A host file owned by host root is nobody's inside.
    std::fs::write(host_dir.join("hosts-own"), "x").unwrap();
    let o = run(
        &d,
        &[
            "-v",
            &bind,
            "busybox",
            "stat",
            "-c",
            "%u",
            "/data/hosts-own",
        ],
    );
    assert_eq!(o.trim(), "65534");

    // The writable layer on the host: what root wrote is the remapped root's.
    let cid = d.run_detached(&["busybox", "sh", "-c", "echo y > /inlayer; sleep 300"]);
    let upper = d.root.join("containers").join(&cid).join("upper");
    let mut tries = 0;
    while !upper.join("inlayer").exists() && tries < 100 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        tries += 1;
    }
    let m = std::fs::metadata(upper.join("inlayer")).unwrap();
    assert_eq!((m.uid(), m.gid()), (ROOT_UID, ROOT_GID));

    // exec joins the namespace: root inside, the same map
    let out = d.berth_ok(&[
        "exec",
        &cid,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; cat /inlayer",
    ]);
    let lines: Vec<String> = out.lines().map(words).collect();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(lines[1], format!("0 {ROOT_UID} 65536"), "{out}");
    assert_eq!(lines.last().unwrap(), "y", "{out}");
    // the container's processes run as the remapped root on the host
    let pid = d.inspect(&cid)["State"]["Pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        words(uid_line),
        format!("Uid: {ROOT_UID} {ROOT_UID} {ROOT_UID} {ROOT_UID}")
    );
    d.berth_ok(&["rm", "-f", &cid]);

    // A named volume made for a remapped container is its root's.
    run(&d, &["-v", "uvol:/v", "busybox", "touch", "/v/f"]);
    let data = d.root.join("volumes/uvol/_data");
    let m = std::fs::metadata(&data).unwrap();
    assert_eq!((m.uid(), m.gid()), (ROOT_UID, ROOT_GID));
    assert_eq!(std::fs::metadata(data.join("f")).unwrap().uid(), ROOT_UID);

    // info lists userns among the security options, after seccomp
    let (_, _, body) = d.request("GET", "/v1.41/info", None);
    let info: Value = serde_json::from_slice(&body).unwrap();
    let opts: Vec<&str> = info["SecurityOptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(opts.contains(&"name=userns"), "{opts:?}");
    let seccomp = opts
        .iter()
        .position(|o| o.starts_with("name=seccomp"))
        .unwrap();
    assert!(opts.iter().position(|o| *o == "name=userns").unwrap() > seccomp);
}

#[test]
fn userns_host_opts_out_and_refusals_are_dockers() {
    let d = remapped();
    // Docker's texts (moby daemon_unix.go verifyPlatformContainerSettings)
    for (hc, msg) in [
        (
            json!({"Privileged": true}),
            "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode",
        ),
        (
            json!({"NetworkMode": "host"}),
            "cannot share the host's network namespace when user namespaces are enabled",
        ),
        (
            json!({"PidMode": "host"}),
            "cannot share the host PID namespace when user namespaces are enabled",
        ),
    ] {
        let (status, v) = create(&d, json!({"Image": "busybox", "HostConfig": hc}));
        assert_eq!((status, v["message"].as_str().unwrap_or_default()), (400, msg), "{hc}");
        // with --userns host they are fine
        let mut hc = hc.clone();
        hc["UsernsMode"] = json!("host");
        let (status, v) = create(&d, json!({"Image": "busybox", "HostConfig": hc}));
        assert_eq!(status, 201, "{v}");
        d.berth_ok(&["rm", v["Id"].as_str().unwrap()]);
    }

    // --userns host: no user namespace, as without remapping
    let (status, v) = create(
        &d,
        json!({"Image": "busybox", "Cmd": ["sh", "-c", "cat /proc/self/uid_map; stat -c %u /made-by-root 2>/dev/null; touch /made && stat -c %u /made"],
               "HostConfig": {"UsernsMode": "host"}}),
    );
    assert_eq!(status, 201, "{v}");
    let id = v["Id"].as_str().unwrap().to_string();
    assert_eq!(d.inspect(&id)["HostConfig"]["UsernsMode"], "host");
    d.berth_ok(&["start", "-a", &id]);
    let logs = d.berth_ok(&["logs", &id]);
    let lines: Vec<String> = logs.lines().map(words).collect();
    assert_eq!(lines, ["0 0 4294967295", "0"], "{logs}");
    let upper = d.root.join("containers").join(&id).join("upper/made");
    assert_eq!(std::fs::metadata(upper).unwrap().uid(), 0);
    // and the default is the remapped one, shown as "" by inspect as Docker does
    let (status, v) = create(&d, json!({"Image": "busybox"}));
    assert_eq!(status, 201);
    assert_eq!(
        d.inspect(v["Id"].as_str().unwrap())["HostConfig"]["UsernsMode"],
        ""
    );
}

#[test]
fn a_remapped_container_on_the_default_bridge_and_with_options() {
    let d = remapped();
    // the default network (a network namespace made by the daemon), a read-only rootfs,
    // a ulimit above the shim's, a non-root user, --init, a net sysctl
    let out = run(
        &d,
        &[
            "--read-only",
            "--ulimit",
            "nofile=4096:4096",
            "--init",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "busybox",
            "sh",
            "-c",
            "ulimit -n; cat /proc/sys/net/ipv4/ip_forward; ip -o -4 addr show eth0 | grep -c inet; touch /x 2>&1 || true",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "4096", "{out}");
    assert_eq!(lines[1], "1", "{out}");
    assert_eq!(lines[2], "1", "{out}");
    assert!(lines[3].contains("Read-only file system"), "{out}");
    let out = run(
        &d,
        &[
            "-u",
            "1234:1234",
            "busybox",
            "sh",
            "-c",
            "id -u; touch /tmp/x && stat -c %u /tmp/x",
        ],
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), ["1234", "1234"], "{out}");
    // --network none (the container's own network namespace)
    let out = run(
        &d,
        &["--network", "none", "busybox", "cat", "/proc/self/uid_map"],
    );
    assert_eq!(words(&out), format!("0 {ROOT_UID} 65536 65536 400000 1000"));
}

#[test]
fn without_remapping_nothing_changes() {
    let d = TestDaemon::start();
    d.import_busybox();
    let out = run(&d, &["busybox", "cat", "/proc/self/uid_map"]);
    assert_eq!(words(&out), "0 0 4294967295");
    let (_, _, body) = d.request("GET", "/v1.41/info", None);
    let info: Value = serde_json::from_slice(&body).unwrap();
    assert!(!info["SecurityOptions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o == "name=userns"));
    let (status, v) = create(
        &d,
        json!({"Image": "busybox", "HostConfig": {"Privileged": true}}),
    );
    assert_eq!(status, 201, "{v}");
    // the store keeps its modes
    assert_ne!(
        std::fs::metadata(Path::new(&d.root)).unwrap().mode() & 0o777,
        0
    );
}

#[test]
fn remap_settings_in_dockers_words() {
    // a user without ranges stops the daemon with dockerd's message
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let out = std::process::Command::new(BERTH)
        .args(["daemon", "--userns-remap", "daemon", "--subuid-file"])
        .arg(&empty)
        .arg("--subgid-file")
        .arg(&empty)
        .arg("-H")
        .arg(format!("unix://{}/s.sock", dir.path().display()))
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--exec-root")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No subuid ranges found for user \"daemon\""),
        "{err}"
    );
    let out = std::process::Command::new(BERTH)
        .args(["daemon", "--userns-remap", "a:b:c"])
        .arg("-H")
        .arg(format!("unix://{}/s.sock", dir.path().display()))
        .arg("--root")
        .arg(dir.path().join("root"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Invalid user/group specification in --userns-remap: \"a:b:c\""),
        "{err}"
    );
}

#[test]
fn commit_and_export_give_the_containers_own_ids() {
    let d = remapped();
    d.berth_ok(&[
        "run",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo a > /by-root && echo b > /by-42 && chown 42:43 /by-42",
    ]);
    // on the host the layer holds host ids
    let id = d.full_id("c1");
    let upper = d.root.join("containers").join(&id).join("upper");
    assert_eq!(
        std::fs::metadata(upper.join("by-42")).unwrap().uid(),
        ROOT_UID + 42
    );
    // export: the container's ids
    let tar = d.dir.join("c1.tar");
    d.berth_ok(&["export", "-o", tar.to_str().unwrap(), "c1"]);
    let mut a = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let mut seen = 0;
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let h = e.header();
        match p.trim_start_matches("./").trim_start_matches('/') {
            "by-root" => {
                assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
                seen += 1;
            }
            "by-42" => {
                assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (42, 43));
                seen += 1;
            }
            "bin/busybox" => {
                assert_eq!(h.uid().unwrap(), 0);
                seen += 1;
            }
            _ => {}
        }
    }
    assert_eq!(seen, 3);
    // commit: the new layer has the container's ids, seen the same with or without a
    // user namespace
    d.berth_ok(&["commit", "c1", "snap:1"]);
    for extra in [&[][..], &["--userns", "host"][..]] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["snap:1", "stat", "-c", "%u:%g", "/by-root", "/by-42"]);
        if extra.is_empty() {
            let out = d.berth_ok(&args);
            assert_eq!(out.lines().collect::<Vec<_>>(), ["0:0", "42:43"], "{out}");
        } else if docker_cli_available() {
            args[0] = "run";
            let out = d.docker_ok(&args);
            assert_eq!(out.lines().collect::<Vec<_>>(), ["0:0", "42:43"], "{out}");
        }
    }
}

/// The owners in a tar from `cp CONTAINER:PATH -`.
fn cp_out_owners(d: &TestDaemon, src: &str) -> Vec<(String, u64, u64)> {
    let out = d.berth(&["cp", src, "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut a = tar::Archive::new(&out.stdout[..]);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().display().to_string(),
                h.uid().unwrap(),
                h.gid().unwrap(),
            )
        })
        .collect()
}

#[test]
fn cp_in_and_out_of_a_remapped_container() {
    let d = remapped();
    let src = d.dir.join("hostfile");
    std::fs::write(&src, "from the host").unwrap();
    for running in [true, false] {
        let name = if running { "up" } else { "down" };
        d.berth_ok(&[
            "create",
            "--name",
            name,
            "busybox",
            "sh",
            "-c",
            "touch /mine && chown 42:43 /mine; sleep 300",
        ]);
        d.berth_ok(&["start", name]);
        // wait for /mine
        let mut n = 0;
        while !d
            .berth(&["exec", name, "test", "-e", "/mine"])
            .status
            .success()
            && n < 100
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
            n += 1;
        }
        if !running {
            d.berth_ok(&["kill", name]);
        }
        // out: the container's ids, for the image's files and the container's own
        assert_eq!(
            cp_out_owners(&d, &format!("{name}:/mine")),
            [("mine".into(), 42, 43)]
        );
        assert_eq!(
            cp_out_owners(&d, &format!("{name}:/bin/busybox")),
            [("busybox".into(), 0, 0)]
        );
        // in: the tar's owner (host root's file: 0) is the container's root
        d.berth_ok(&["cp", src.to_str().unwrap(), &format!("{name}:/copied")]);
        let id = d.full_id(name);
        let upper = d.root.join("containers").join(&id).join("upper/copied");
        let m = std::fs::metadata(&upper).unwrap();
        assert_eq!((m.uid(), m.gid()), (ROOT_UID, ROOT_GID), "{name}");
        if !running {
            d.berth_ok(&["start", name]);
        }
        let out = d.berth_ok(&["exec", name, "stat", "-c", "%u:%g", "/copied", "/mine"]);
        assert_eq!(out.lines().collect::<Vec<_>>(), ["0:0", "42:43"], "{name}");
        d.berth_ok(&["rm", "-f", name]);
    }
}

#[test]
fn a_container_keeps_the_maps_it_was_created_with() {
    let mut d = remapped();
    d.berth_ok(&[
        "create",
        "--name",
        "early",
        "busybox",
        "cat",
        "/proc/self/uid_map",
    ]);
    // the daemon restarted without remapping: the container's files still hold host
    // ids of its maps, so it keeps them; new containers get the host's namespace
    d.stop_daemon(std::time::Duration::from_secs(10));
    d.extra_args.clear();
    d.start_daemon();
    let out = d.berth_ok(&["start", "-a", "early"]);
    assert_eq!(
        out.lines().map(words).next().unwrap(),
        format!("0 {ROOT_UID} 65536")
    );
    let out = run(&d, &["busybox", "cat", "/proc/self/uid_map"]);
    assert_eq!(words(&out), "0 0 4294967295");
}

#[test]
fn a_build_on_a_remapped_daemon_commits_the_containers_ids() {
    let d = remapped();
    let ctx = d.dir.join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN touch /by-root /by-42 && chown 42:43 /by-42 && cat /proc/self/uid_map > /map\n",
    )
    .unwrap();
    d.berth_ok(&["build", "-q", "-t", "built:1", ctx.to_str().unwrap()]);
    // the RUN step ran remapped
    let out = run(&d, &["built:1", "cat", "/map"]);
    assert_eq!(words(&out), format!("0 {ROOT_UID} 65536 65536 400000 1000"));
    // and its layer holds the container's ids
    let out = run(
        &d,
        &["built:1", "stat", "-c", "%u:%g", "/by-root", "/by-42"],
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0:0", "42:43"], "{out}");
    let tar = d.dir.join("built.tar");
    d.berth_ok(&["save", "-o", tar.to_str().unwrap(), "built:1"]);
    assert!(std::fs::metadata(&tar).unwrap().len() > 0);
}

#[test]
fn a_remapped_builds_cache_mounts_and_secrets_belong_to_its_root() {
    use sha2::Digest;
    let d = remapped();
    let ctx = d.dir.join("ctx-mounts");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox
RUN --mount=type=cache,target=/c,id=u-root touch /c/f && stat -c '%u:%g' /c > /c-owner
RUN --mount=type=cache,target=/d,id=u-42,uid=42,gid=43 touch /d/x && stat -c '%u:%g' /d > /d-owner
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /tok-read
",
    )
    .unwrap();
    let secret = d.dir.join("tok.txt");
    std::fs::write(&secret, "value").unwrap();
    let src = format!("id=tok,src={}", secret.display());
    d.berth_ok(&[
        "build",
        "-q",
        "--secret",
        &src,
        "-t",
        "mounts:1",
        ctx.to_str().unwrap(),
    ]);
    let out = run(
        &d,
        &["mounts:1", "cat", "/c-owner", "/d-owner", "/tok-read"],
    );
    assert_eq!(out, "0:0\n42:43\nvalue", "{out}");
    // On the host: the remapped root's ids (and those of 42:43).
    let host_owner = |id: &str| {
        let h = hex::encode(sha2::Sha256::digest(id.as_bytes()));
        let m = std::fs::metadata(
            d.root
                .join("builds/cache-mounts")
                .join(&h[..32])
                .join("data"),
        )
        .unwrap();
        use std::os::unix::fs::MetadataExt;
        (m.uid(), m.gid())
    };
    assert_eq!(host_owner("u-root"), (ROOT_UID, ROOT_GID));
    assert_eq!(host_owner("u-42"), (ROOT_UID + 42, ROOT_GID + 43));
}

#[test]
fn healthchecks_and_restarts_of_a_remapped_container() {
    let d = remapped();
    let id = d.run_detached(&[
        "--health-cmd",
        "test \"$(id -u)\" = 0 && grep -q 231072 /proc/self/uid_map",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "300",
    ]);
    let mut status = String::new();
    for _ in 0..100 {
        status = d.inspect(&id)["State"]["Health"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if status == "healthy" || status == "unhealthy" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(status, "healthy");
    d.berth_ok(&["rm", "-f", &id]);
    // the shim starts it again, in a new user namespace each time
    let id = d.run_detached(&[
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "grep -q 231072 /proc/self/uid_map && exit 3",
    ]);
    let mut state = Value::Null;
    for _ in 0..100 {
        state = d.inspect(&id);
        if state["RestartCount"] == 2 && state["State"]["Running"] == false {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(state["RestartCount"], 2, "{state}");
    assert_eq!(state["State"]["ExitCode"], 3, "{state}");
}

#[test]
fn shared_namespaces_with_a_remapped_container() {
    let d = remapped();
    // the host's IPC and UTS namespaces (Docker allows both with user namespaces)
    let out = run(
        &d,
        &[
            "--ipc",
            "host",
            "--uts",
            "host",
            "busybox",
            "sh",
            "-c",
            "id -u; hostname",
        ],
    );
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["0", host.as_str()],
        "{out}"
    );
    // another container's network namespace
    let donor = d.run_detached(&["busybox", "sleep", "300"]);
    let out = run(
        &d,
        &[
            "--network",
            &format!("container:{donor}"),
            "busybox",
            "sh",
            "-c",
            "ip -o -4 addr show eth0 | grep -c inet",
        ],
    );
    assert_eq!(out.trim(), "1");
    // --pid container: joins the donor's user namespace too, as Docker does
    let out = run(
        &d,
        &["--pid", &format!("container:{donor}"), "busybox", "sh", "-c",
          "id -u; readlink /proc/self/ns/user; ps -o comm | grep -c sleep; touch /x && stat -c %u /x"],
    );
    let lines: Vec<&str> = out.lines().collect();
    let donor_pid = d.inspect(&donor)["State"]["Pid"].as_i64().unwrap();
    let donor_ns = std::fs::read_link(format!("/proc/{donor_pid}/ns/user")).unwrap();
    assert_eq!(lines, ["0", donor_ns.to_str().unwrap(), "1", "0"], "{out}");
    // with its IPC namespace (a shareable donor) as well
    let shm = d.run_detached(&[
        "--ipc",
        "shareable",
        "busybox",
        "sh",
        "-c",
        "echo hi > /dev/shm/f; sleep 300",
    ]);
    let c = format!("container:{shm}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let out = run(
        &d,
        &["--pid", &c, "--ipc", &c, "busybox", "cat", "/dev/shm/f"],
    );
    assert_eq!(out.trim(), "hi");
    // --ipc container: alone is refused (Berth joins a user namespace only with its PID
    // namespace)
    let (status, v) = create(
        &d,
        json!({"Image": "busybox", "HostConfig": {"IpcMode": c}}),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("only with --pid"),
        "{v}"
    );
    d.berth_ok(&["rm", "-f", &donor, &shm]);
}
