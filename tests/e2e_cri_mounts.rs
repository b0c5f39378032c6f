//! CRI mounts end to end, in real pods (RunPodSandbox): image volumes (KEP-4639: a CRI
//! `Mount` with `image`, read-only, with `image_sub_path`, reported with the image's ID
//! in ContainerStatus; Docker's `--mount type=image` is the same mount), and bind
//! propagation (an `rshared` bind propagates both ways; a source that is not on a
//! shared or slave mount is refused, as Docker and containerd do).

mod common;
#[path = "common/cri.rs"]
mod cri;

use std::path::PathBuf;

use common::*;
use cri::v1::{self, ContainerState};
use cri::{cri_daemon_with_busybox, Cri};

fn pod_config(d: &TestDaemon, pod: &str) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: pod.into(),
            uid: format!("uid-{pod}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: d.dir.join("pods").join(pod).display().to_string(),
        ..Default::default()
    }
}

/// A real pod: its ID and config.
fn run_pod(d: &TestDaemon, c: &Cri, pod: &str) -> (String, v1::PodSandboxConfig) {
    let cfg = pod_config(d, pod);
    let id = c
        .run(c.rt().run_pod_sandbox(v1::RunPodSandboxRequest {
            config: Some(cfg.clone()),
            runtime_handler: String::new(),
        }))
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    (id, cfg)
}

fn remove_pod(c: &Cri, id: &str) {
    c.run(c.rt().stop_pod_sandbox(v1::StopPodSandboxRequest {
        pod_sandbox_id: id.into(),
    }))
    .expect("StopPodSandbox");
    c.run(c.rt().remove_pod_sandbox(v1::RemovePodSandboxRequest {
        pod_sandbox_id: id.into(),
    }))
    .expect("RemovePodSandbox");
}

fn config(name: &str, mounts: Vec<v1::Mount>) -> v1::ContainerConfig {
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(v1::ImageSpec {
            image: "busybox".into(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "100000".into()],
        mounts,
        ..Default::default()
    }
}

fn create(
    c: &Cri,
    pod: &(String, v1::PodSandboxConfig),
    cfg: v1::ContainerConfig,
) -> Result<String, tonic::Status> {
    c.run(c.rt().create_container(v1::CreateContainerRequest {
        pod_sandbox_id: pod.0.clone(),
        config: Some(cfg),
        sandbox_config: Some(pod.1.clone()),
    }))
    .map(|r| r.into_inner().container_id)
}

fn start(c: &Cri, id: &str) {
    c.run(c.rt().start_container(v1::StartContainerRequest {
        container_id: id.into(),
    }))
    .expect("StartContainer");
}

fn status(c: &Cri, id: &str) -> v1::ContainerStatus {
    c.run(c.rt().container_status(v1::ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    }))
    .expect("ContainerStatus")
    .into_inner()
    .status
    .expect("a status")
}

/// `sh -c cmd` in the container: exit code and stdout+stderr.
fn sh(c: &Cri, id: &str, cmd: &str) -> (i32, String) {
    let r = c
        .run(c.rt().exec_sync(v1::ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["sh".into(), "-c".into(), cmd.into()],
            timeout: 20,
        }))
        .expect("ExecSync")
        .into_inner();
    let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
    out.push_str(&String::from_utf8_lossy(&r.stderr));
    (r.exit_code, out.trim().to_string())
}

fn image_mount(image: &str, path: &str, subpath: &str) -> v1::Mount {
    v1::Mount {
        container_path: path.into(),
        readonly: true,
        image: Some(v1::ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        image_sub_path: subpath.into(),
        ..Default::default()
    }
}

/// A two-layer image: `/data/sub/f` made in the first layer and removed in the second
/// (a whiteout), `/data/sub/g` added there; `/data/link` is an absolute symlink to
/// `/data/sub`. Returns its ID.
fn layered_image(d: &TestDaemon) -> String {
    let ctx = d.dir.join("ivol-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         RUN mkdir -p /data/sub && echo first > /data/sub/f && ln -s /data/sub /data/link\n\
         RUN rm /data/sub/f && echo top > /data/sub/g\n",
    )
    .unwrap();
    d.berth_ok(&["build", "-q", "-t", "ivol", ctx.to_str().unwrap()]);
    d.berth_ok(&["image", "inspect", "-f", "{{.Id}}", "ivol"])
        .trim()
        .to_string()
}

/// Mount points in this (the host's) mount namespace under the daemon's directories.
fn host_mounts(d: &TestDaemon) -> Vec<PathBuf> {
    mounts_under(&d.dir)
}

#[test]
fn image_volumes_are_the_images_merged_layers_read_only() {
    let (mut d, c) = cri_daemon_with_busybox();
    let image_id = layered_image(&d);
    let before_pod = host_mounts(&d);
    let pod = run_pod(&d, &c, "iv");
    let before = host_mounts(&d);
    let id = create(
        &c,
        &pod,
        config(
            "app",
            vec![
                image_mount(&image_id, "/iv", ""),
                // through the image's own absolute symlink, resolved inside it
                image_mount("ivol", "/ivs", "data/link"),
            ],
        ),
    )
    .expect("CreateContainer");
    start(&c, &id);
    // the layers merged as overlayfs merges them: the whiteout hides f
    assert_eq!(sh(&c, &id, "cat /iv/data/sub/g"), (0, "top".into()));
    assert_ne!(sh(&c, &id, "ls /iv/data/sub/f").0, 0);
    // read-only, and not noexec
    let (rc, out) = sh(&c, &id, "touch /iv/x");
    assert_ne!(rc, 0);
    assert!(out.contains("Read-only file system"), "{out}");
    assert_eq!(sh(&c, &id, "/iv/bin/busybox echo ran").1, "ran");
    // the subpath is the directory itself, not the image's root
    assert_eq!(sh(&c, &id, "cat /ivs/g"), (0, "top".into()));
    assert_ne!(sh(&c, &id, "ls /ivs/data").0, 0);
    assert_ne!(sh(&c, &id, "touch /ivs/x").0, 0);
    let (_, mounts) = sh(&c, &id, "grep -E ' /ivs? ' /proc/mounts");
    assert_eq!(mounts.lines().count(), 2, "{mounts}");
    assert!(
        mounts
            .lines()
            .all(|l| l.split(' ').nth(3).unwrap_or("").starts_with("ro")),
        "{mounts}"
    );
    // ContainerStatus: the image as asked and its ID (what PullImage answers)
    let st = status(&c, &id);
    let iv = |path: &str| {
        st.mounts
            .iter()
            .find(|m| m.container_path == path)
            .unwrap_or_else(|| panic!("no mount {path}: {:?}", st.mounts))
            .clone()
    };
    let whole = iv("/iv");
    assert!(whole.readonly);
    assert_eq!(whole.host_path, "");
    let spec = whole.image.expect("an image");
    assert_eq!(spec.image, image_id);
    assert_eq!(spec.image_ref, image_id);
    let sub = iv("/ivs");
    assert_eq!(sub.image.expect("an image").image_ref, image_id);
    assert_eq!(sub.image_sub_path, "data/link");
    // made in the container's mount namespace only: nothing on the host
    assert_eq!(host_mounts(&d), before);

    // a daemon kill -9: the container and its volume are still there
    drop(c);
    d.kill_daemon();
    d.start_daemon();
    let c = Cri::connect(d.cri_sock.as_deref().unwrap());
    assert_eq!(
        status(&c, &id).state,
        ContainerState::ContainerRunning as i32
    );
    assert_eq!(sh(&c, &id, "cat /ivs/g"), (0, "top".into()));
    // the image is in use: not removable
    let rmi = d.berth(&["rmi", "ivol"]);
    assert_ne!(code(&rmi), 0, "rmi of an image in use");
    // the restarted daemon mounts image volumes of new containers too
    let again = create(
        &c,
        &pod,
        config("again", vec![image_mount("ivol", "/iv", "data/sub")]),
    )
    .expect("CreateContainer after the restart");
    start(&c, &again);
    assert_eq!(sh(&c, &again, "cat /iv/g"), (0, "top".into()));
    remove_pod(&c, &pod.0);
    assert_eq!(host_mounts(&d), before_pod);
}

#[test]
fn bad_image_volumes_are_refused_and_leave_nothing() {
    let (d, c) = cri_daemon_with_busybox();
    layered_image(&d);
    let pod = run_pod(&d, &c, "ivbad");
    let refused = |m: v1::Mount| create(&c, &pod, config("bad", vec![m])).expect_err("refused");
    let mut rw = image_mount("ivol", "/iv", "");
    rw.readonly = false;
    assert_eq!(refused(rw).code(), tonic::Code::InvalidArgument);
    let missing = refused(image_mount("ivol", "/iv", "not-existing"));
    assert_eq!(missing.code(), tonic::Code::InvalidArgument);
    assert!(missing.message().contains("not-existing"), "{missing:?}");
    // a file is no directory; `..` leaves the image
    assert_eq!(
        refused(image_mount("ivol", "/iv", "data/sub/g")).code(),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        refused(image_mount("ivol", "/iv", "../etc")).code(),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        refused(image_mount("no-such-image", "/iv", "")).code(),
        tonic::Code::InvalidArgument
    );
    let listed = c
        .run(
            c.rt()
                .list_containers(v1::ListContainersRequest { filter: None }),
        )
        .expect("ListContainers")
        .into_inner()
        .containers;
    assert!(listed.is_empty(), "{listed:?}");
    remove_pod(&c, &pod.0);
}

#[test]
fn docker_image_mounts_are_the_same_mount() {
    let (d, _c) = cri_daemon_with_busybox();
    layered_image(&d);
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=image,source=ivol,target=/iv,image-subpath=data/sub",
        "busybox",
        "sh",
        "-c",
        "cat /iv/g; ls /iv; touch /iv/x 2>&1 || echo refused",
    ]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["top", "g", "touch: /iv/x: Read-only file system", "refused"]
    );
    let id = d
        .berth_ok(&[
            "create",
            "--mount",
            "type=image,source=ivol,target=/iv",
            "busybox",
        ])
        .trim()
        .to_string();
    let m = &d.inspect(&id)["Mounts"][0];
    assert_eq!(m["Type"], "image");
    assert_eq!(m["Source"], "ivol");
    assert_eq!(m["RW"], false);
    d.berth_ok(&["rm", &id]);
    for (spec, why) in [
        ("type=image,target=/iv", "field Source must not be empty"),
        (
            "type=image,source=ivol,target=/iv,image-subpath=/etc",
            "subpath must be a relative path",
        ),
        (
            "type=image,source=ivol,target=/iv,image-subpath=nope",
            "is not a directory in image",
        ),
        ("type=image,source=nosuch,target=/iv", "No such image"),
    ] {
        let out = d.berth(&["create", "--mount", spec, "busybox"]);
        assert_ne!(code(&out), 0, "{spec}");
        assert!(stderr(&out).contains(why), "{spec}: {}", stderr(&out));
    }
}

/// `dir` bind-mounted on itself and made rshared (as critest's host path), under the
/// daemon's directory (the harness unmounts what is left there).
fn shared_dir(d: &TestDaemon, name: &str) -> PathBuf {
    use nix::mount::{mount, MsFlags};
    let dir = d.dir.join(name);
    std::fs::create_dir_all(dir.join("in")).unwrap();
    mount(
        Some(&dir),
        &dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .expect("bind");
    mount(
        None::<&str>,
        &dir,
        None::<&str>,
        MsFlags::MS_SHARED | MsFlags::MS_REC,
        None::<&str>,
    )
    .expect("make rshared");
    dir
}

fn unmount(p: &std::path::Path) {
    nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH)
        .unwrap_or_else(|e| panic!("umount {}: {e}", p.display()));
}

#[test]
fn an_rshared_bind_propagates_both_ways_and_leaves_only_the_containers_mount() {
    let (d, c) = cri_daemon_with_busybox();
    let dir = shared_dir(&d, "bidi");
    let before_pod = host_mounts(&d);
    let pod = run_pod(&d, &c, "prop");
    let before = host_mounts(&d);
    let mut cfg = config(
        "prop",
        vec![v1::Mount {
            container_path: "/x".into(),
            host_path: dir.display().to_string(),
            propagation: v1::MountPropagation::PropagationBidirectional as i32,
            ..Default::default()
        }],
    );
    cfg.linux = Some(v1::LinuxContainerConfig {
        resources: None,
        security_context: Some(v1::LinuxContainerSecurityContext {
            capabilities: Some(v1::Capability {
                add_capabilities: vec!["SYS_ADMIN".into()],
                ..Default::default()
            }),
            seccomp: Some(v1::SecurityProfile {
                profile_type: v1::security_profile::ProfileType::Unconfined as i32,
                localhost_ref: String::new(),
            }),
            ..Default::default()
        }),
    });
    let id = create(&c, &pod, cfg).expect("CreateContainer");
    start(&c, &id);
    // host to container
    let host_made = dir.join("in/host");
    std::fs::create_dir_all(&host_made).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &host_made,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    std::fs::write(host_made.join("flag"), "h").unwrap();
    assert_eq!(sh(&c, &id, "cat /x/in/host/flag"), (0, "h".into()));
    // container to host
    assert_eq!(
        sh(
            &c,
            &id,
            "mkdir -p /x/in/ctr && mount --bind /etc /x/in/ctr && echo ok"
        ),
        (0, "ok".into())
    );
    assert!(
        dir.join("in/ctr/passwd").exists(),
        "the container's mount did not reach the host"
    );
    // only those two reached the host: not the container's rootfs nor its other mounts
    let mut now = host_mounts(&d);
    now.retain(|m| !before.contains(m));
    now.sort();
    assert_eq!(now, [dir.join("in/ctr"), dir.join("in/host")]);
    remove_pod(&c, &pod.0);
    // the container's own mount under the bind stays on the host (as with Docker)
    assert!(dir.join("in/ctr/passwd").exists());
    unmount(&dir.join("in/ctr"));
    unmount(&host_made);
    unmount(&dir);
    let mut left = host_mounts(&d);
    left.retain(|m| !before_pod.contains(m));
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn docker_binds_with_shared_or_slave_propagation_need_such_a_source() {
    let (d, _c) = cri_daemon_with_busybox();
    let dir = shared_dir(&d, "dk");
    let before = host_mounts(&d);
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "--security-opt",
        "seccomp=unconfined",
        "-v",
        &format!("{}:/x:rshared", dir.display()),
        "busybox",
        "sh",
        "-c",
        "mount -t tmpfs tmpfs /x/in && touch /x/in/from-container && echo ok",
    ]);
    assert_eq!(out.trim(), "ok");
    assert!(dir.join("in/from-container").exists());
    let mut now = host_mounts(&d);
    now.retain(|m| !before.contains(m));
    assert_eq!(now, [dir.join("in")]);
    unmount(&dir.join("in"));
    // rslave from a shared source is fine
    let v = format!("{}:/x:rslave", dir.display());
    d.berth_ok(&["run", "--rm", "-v", &v, "busybox", "true"]);
    unmount(&dir);
    // a source on a private mount: refused at start, in Docker's words
    let plain = d.dir.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    for (prop, words) in [
        ("rshared", "but it is not a shared mount"),
        ("rslave", "but it is not a shared or slave mount"),
    ] {
        let v = format!("{}:/x:{prop}", plain.display());
        let out = d.berth(&["run", "--rm", "-v", &v, "busybox", "true"]);
        assert_ne!(code(&out), 0);
        let err = stderr(&out);
        assert!(
            err.contains(&format!("path {} is mounted on ", plain.display()))
                && err.contains(words),
            "{err}"
        );
    }
}
