//! CRI containers end to end: Create/Start/Stop/Remove, Status and List with filters,
//! ExecSync, stats, UpdateContainerResources, logs in the CRI format at the kubelet's
//! path (with ReopenContainerLog), the security context, survival of a daemon kill -9,
//! and bad input with containerd's codes.
//!
//! Every test runs its containers in a real pod (RunPodSandbox); a container labelled
//! `io.berth.cri.sandbox=true` without being one is no sandbox.

mod common;
#[path = "common/cri.rs"]
mod cri;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use cri::v1::{self, ContainerState};
use cri::{cri_daemon_with_busybox, Cri};

/// A pod sandbox (RunPodSandbox with [`sandbox_config`]): its ID.
fn sandbox(d: &TestDaemon, c: &Cri, pod: &str) -> String {
    c.run(c.rt().run_pod_sandbox(v1::RunPodSandboxRequest {
        config: Some(sandbox_config(d, pod)),
        runtime_handler: String::new(),
    }))
    .expect("RunPodSandbox")
    .into_inner()
    .pod_sandbox_id
}

fn sandbox_config(d: &TestDaemon, pod: &str) -> v1::PodSandboxConfig {
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

fn config(name: &str, command: &[&str]) -> v1::ContainerConfig {
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(v1::ImageSpec {
            image: "busybox".into(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/0.log"),
        ..Default::default()
    }
}

fn create(
    c: &Cri,
    sandbox_id: &str,
    cfg: v1::ContainerConfig,
    sc: &v1::PodSandboxConfig,
) -> Result<String, tonic::Status> {
    c.run(c.rt().create_container(v1::CreateContainerRequest {
        pod_sandbox_id: sandbox_id.into(),
        config: Some(cfg),
        sandbox_config: Some(sc.clone()),
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

fn list(c: &Cri, filter: v1::ContainerFilter) -> Vec<v1::Container> {
    c.run(c.rt().list_containers(v1::ListContainersRequest {
        filter: Some(filter),
    }))
    .expect("ListContainers")
    .into_inner()
    .containers
}

fn exec_sync(
    c: &Cri,
    id: &str,
    cmd: &[&str],
    timeout: i64,
) -> Result<v1::ExecSyncResponse, tonic::Status> {
    c.run(c.rt().exec_sync(v1::ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout,
    }))
    .map(|r| r.into_inner())
}

fn wait_exited(c: &Cri, id: &str) -> v1::ContainerStatus {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(30), || {
        let s = status(c, id);
        let done = s.state == ContainerState::ContainerExited as i32;
        last = Some(s);
        done
    });
    assert!(ok, "container {id} did not exit: {last:?}");
    last.unwrap()
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Every record of a CRI log: (stream, tag, content); panics on a malformed line.
fn cri_records(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .map(|l| {
            let mut p = l.splitn(4, ' ');
            let time = p.next().unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(time).is_ok(),
                "bad timestamp in {l:?}"
            );
            let stream = p.next().unwrap().to_string();
            let tag = p.next().unwrap().to_string();
            (stream, tag, p.next().unwrap_or_default().to_string())
        })
        .collect()
}

#[test]
fn a_container_runs_through_its_whole_life() {
    let (d, c) = cri_daemon_with_busybox();
    let sb = sandbox(&d, &c, "web");
    let sc = sandbox_config(&d, "web");
    let mut cfg = config(
        "app",
        &["sh", "-c", "echo hello; echo oops >&2; exec sleep 100000"],
    );
    cfg.labels.insert("tier".into(), "front".into());
    cfg.annotations.insert("note".into(), "kept".into());
    cfg.envs = vec![v1::KeyValue {
        key: "GREETING".into(),
        value: "hi there".into(),
    }];
    let id = create(&c, &sb, cfg, &sc).expect("CreateContainer");
    assert!(is_full_id(&id), "{id}");

    let s = status(&c, &id);
    assert_eq!(s.state, ContainerState::ContainerCreated as i32);
    assert_eq!(s.metadata.as_ref().unwrap().name, "app");
    assert_eq!(s.labels.get("tier").map(String::as_str), Some("front"));
    assert_eq!(s.annotations.get("note").map(String::as_str), Some("kept"));
    assert!(s.created_at > 0 && s.started_at == 0 && s.finished_at == 0);
    let log: PathBuf = d.dir.join("pods/web/app/0.log");
    assert_eq!(s.log_path, log.display().to_string());
    assert!(s.image_ref.starts_with("sha256:"), "{s:?}");
    // The image's default user, root, as containerd reports it (from the image's files).
    let user = s
        .user
        .as_ref()
        .and_then(|u| u.linux.as_ref())
        .expect("a user");
    assert_eq!((user.uid, user.gid), (0, 0));
    assert_eq!(user.supplemental_groups, vec![0]);
    // The Docker API sees the same container, under the kubelet's name.
    let ins = d.inspect(&id);
    assert_eq!(ins["Name"], "/k8s_app_web_default_uid-web_0");
    assert_eq!(ins["HostConfig"]["NetworkMode"], format!("container:{sb}"));

    start(&c, &id);
    let s = status(&c, &id);
    assert_eq!(s.state, ContainerState::ContainerRunning as i32);
    assert!(s.started_at >= s.created_at);
    let listed = list(&c, Default::default());
    assert_eq!(
        listed.len(),
        1,
        "the sandbox is no CRI container: {listed:?}"
    );
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].pod_sandbox_id, sb);

    // The log, in the CRI format at the kubelet's path.
    assert!(
        wait_until(Duration::from_secs(20), || read_log(&log).lines().count()
            >= 2),
        "log: {:?}",
        read_log(&log)
    );
    let mut recs = cri_records(&read_log(&log));
    recs.sort();
    assert_eq!(
        recs,
        vec![
            ("stderr".into(), "F".into(), "oops".into()),
            ("stdout".into(), "F".into(), "hello".into()),
        ]
    );

    // ExecSync: output, exit code, environment.
    let r = exec_sync(
        &c,
        &id,
        &["sh", "-c", "echo $GREETING; echo e >&2; exit 3"],
        10,
    )
    .expect("ExecSync");
    assert_eq!(String::from_utf8_lossy(&r.stdout), "hi there\n");
    assert_eq!(String::from_utf8_lossy(&r.stderr), "e\n");
    assert_eq!(r.exit_code, 3);
    let err = exec_sync(&c, &id, &["sleep", "30"], 1).expect_err("a timeout");
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");

    // Stats of a running container.
    let st = c
        .run(c.rt().container_stats(v1::ContainerStatsRequest {
            container_id: id.clone(),
        }))
        .expect("ContainerStats")
        .into_inner()
        .stats
        .unwrap();
    assert_eq!(st.attributes.as_ref().unwrap().id, id);
    assert!(
        st.cpu
            .as_ref()
            .unwrap()
            .usage_core_nano_seconds
            .as_ref()
            .unwrap()
            .value
            > 0
    );
    assert!(
        st.memory
            .as_ref()
            .unwrap()
            .working_set_bytes
            .as_ref()
            .unwrap()
            .value
            > 0
    );
    assert!(st.writable_layer.is_some());
    let all = c
        .run(
            c.rt()
                .list_container_stats(v1::ListContainerStatsRequest::default()),
        )
        .expect("ListContainerStats")
        .into_inner()
        .stats;
    assert_eq!(all.len(), 1);

    // Exec and Attach answer with URLs of the streaming server.
    let url = c
        .run(c.rt().exec(v1::ExecRequest {
            container_id: id.clone(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        }))
        .expect("Exec")
        .into_inner()
        .url;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    c.run(c.rt().stop_container(v1::StopContainerRequest {
        container_id: id.clone(),
        timeout: 1,
    }))
    .expect("StopContainer");
    let s = status(&c, &id);
    assert_eq!(s.state, ContainerState::ContainerExited as i32);
    assert_eq!(s.reason, "Error");
    assert!(s.exit_code == 137 || s.exit_code == 143, "{s:?}");
    assert!(s.finished_at >= s.started_at);
    // Stopping again is no error.
    c.run(c.rt().stop_container(v1::StopContainerRequest {
        container_id: id.clone(),
        timeout: 1,
    }))
    .expect("StopContainer again");

    for _ in 0..2 {
        c.run(c.rt().remove_container(v1::RemoveContainerRequest {
            container_id: id.clone(),
        }))
        .expect("RemoveContainer (idempotent)");
    }
    assert!(list(&c, Default::default()).is_empty());
    let err = c
        .run(c.rt().container_status(v1::ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        }))
        .expect_err("gone");
    assert_eq!(err.code(), tonic::Code::NotFound);
    // The kubelet's log file stays (the kubelet removes it).
    assert!(log.exists());
}

#[test]
fn exit_reasons_and_filters() {
    let (d, c) = cri_daemon_with_busybox();
    let sb = sandbox(&d, &c, "batch");
    let sc = sandbox_config(&d, "batch");
    let mut ok = config("ok", &["true"]);
    ok.labels.insert("kind".into(), "good".into());
    let mut bad = config("bad", &["sh", "-c", "exit 7"]);
    bad.labels.insert("kind".into(), "bad".into());
    let idle = config("idle", &["sleep", "100000"]);
    let ok = create(&c, &sb, ok, &sc).unwrap();
    let bad = create(&c, &sb, bad, &sc).unwrap();
    let idle = create(&c, &sb, idle, &sc).unwrap();
    start(&c, &ok);
    start(&c, &bad);
    let s = wait_exited(&c, &ok);
    assert_eq!((s.reason.as_str(), s.exit_code), ("Completed", 0));
    let s = wait_exited(&c, &bad);
    assert_eq!((s.reason.as_str(), s.exit_code), ("Error", 7));
    // A command that cannot start: StartContainer fails, the status says why.
    let broken = create(&c, &sb, config("broken", &["/no/such/binary"]), &sc).unwrap();
    let err = c
        .run(c.rt().start_container(v1::StartContainerRequest {
            container_id: broken.clone(),
        }))
        .expect_err("cannot start");
    assert!(err.message().contains("/no/such/binary"), "{err:?}");
    let s = status(&c, &broken);
    assert_eq!(s.state, ContainerState::ContainerExited as i32);
    assert_eq!(s.reason, "StartError");
    assert!(s.message.contains("/no/such/binary"), "{s:?}");
    assert_ne!(s.exit_code, 0);
    c.run(c.rt().remove_container(v1::RemoveContainerRequest {
        container_id: broken,
    }))
    .expect("RemoveContainer");

    let ids = |f: v1::ContainerFilter| {
        let mut v: Vec<String> = list(&c, f).into_iter().map(|c| c.id).collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        ids(Default::default()),
        sorted(vec![ok.clone(), bad.clone(), idle.clone()])
    );
    assert_eq!(
        ids(v1::ContainerFilter {
            state: Some(v1::ContainerStateValue {
                state: ContainerState::ContainerCreated as i32
            }),
            ..Default::default()
        }),
        vec![idle.clone()]
    );
    assert_eq!(
        ids(v1::ContainerFilter {
            label_selector: HashMap::from([("kind".to_string(), "bad".to_string())]),
            ..Default::default()
        }),
        vec![bad.clone()]
    );
    assert_eq!(
        ids(v1::ContainerFilter {
            id: ok[..12].to_string(),
            ..Default::default()
        }),
        vec![ok.clone()]
    );
    assert_eq!(
        ids(v1::ContainerFilter {
            pod_sandbox_id: sb[..12].to_string(),
            ..Default::default()
        })
        .len(),
        3
    );
    assert!(ids(v1::ContainerFilter {
        pod_sandbox_id: "ffffffffffff".into(),
        ..Default::default()
    })
    .is_empty());
    // A prefix finds the container for Status too.
    assert_eq!(status(&c, &idle[..12]).id, idle);
}

#[test]
fn security_context_and_resources_are_applied() {
    let (d, c) = cri_daemon_with_busybox();
    let sb = sandbox(&d, &c, "sec");
    let sc = sandbox_config(&d, "sec");
    let mut cfg = config("locked", &["sleep", "100000"]);
    cfg.linux = Some(v1::LinuxContainerConfig {
        resources: Some(v1::LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            cpu_shares: 512,
            ..Default::default()
        }),
        security_context: Some(v1::LinuxContainerSecurityContext {
            run_as_user: Some(v1::Int64Value { value: 1234 }),
            run_as_group: Some(v1::Int64Value { value: 55 }),
            supplemental_groups: vec![77],
            readonly_rootfs: true,
            no_new_privs: true,
            capabilities: Some(v1::Capability {
                drop_capabilities: vec!["ALL".into()],
                ..Default::default()
            }),
            seccomp: Some(v1::SecurityProfile {
                profile_type: v1::security_profile::ProfileType::RuntimeDefault as i32,
                localhost_ref: String::new(),
            }),
            ..Default::default()
        }),
    });
    let mount_src = d.dir.join("shared");
    std::fs::create_dir_all(&mount_src).unwrap();
    std::fs::write(mount_src.join("f"), "from the host").unwrap();
    cfg.mounts = vec![v1::Mount {
        container_path: "/data".into(),
        host_path: mount_src.display().to_string(),
        readonly: true,
        ..Default::default()
    }];
    let id = create(&c, &sb, cfg, &sc).expect("CreateContainer");
    start(&c, &id);
    let out = |cmd: &str| {
        let r = exec_sync(&c, &id, &["sh", "-c", cmd], 10).expect("ExecSync");
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).trim().to_string(),
        )
    };
    assert_eq!(out("id -u; id -g").1, "1234\n55");
    assert!(out("id -G").1.split(' ').any(|g| g == "77"));
    // The status says who the process is: what `id` says in the container.
    let user = status(&c, &id).user.and_then(|u| u.linux).expect("a user");
    assert_eq!((user.uid, user.gid), (1234, 55));
    assert_eq!(user.supplemental_groups, vec![55, 77]);
    let mut in_container: Vec<i64> = out("id -G")
        .1
        .split(' ')
        .map(|g| g.parse().unwrap())
        .collect();
    in_container.sort();
    in_container.dedup();
    assert_eq!(in_container, user.supplemental_groups);
    assert_ne!(out("touch /x").0, 0, "the rootfs is read-only");
    assert_eq!(out("cat /data/f").1, "from the host");
    assert_ne!(out("touch /data/g").0, 0, "the mount is read-only");
    assert_eq!(out("grep NoNewPrivs /proc/self/status").1, "NoNewPrivs:\t1");
    assert_eq!(
        out("grep CapEff /proc/self/status").1,
        "CapEff:\t0000000000000000"
    );
    assert_eq!(out("grep Seccomp: /proc/self/status").1, "Seccomp:\t2");
    let s = status(&c, &id);
    assert_eq!(s.mounts.len(), 1);
    assert!(s.mounts[0].readonly);
    let res = s.resources.unwrap().linux.unwrap();
    assert_eq!(res.memory_limit_in_bytes, 64 << 20);

    // UpdateContainerResources reaches the record (and the cgroups, as `docker update`).
    c.run(
        c.rt()
            .update_container_resources(v1::UpdateContainerResourcesRequest {
                container_id: id.clone(),
                linux: Some(v1::LinuxContainerResources {
                    memory_limit_in_bytes: 128 << 20,
                    cpu_shares: 256,
                    ..Default::default()
                }),
                ..Default::default()
            }),
    )
    .expect("UpdateContainerResources");
    let res = status(&c, &id).resources.unwrap().linux.unwrap();
    assert_eq!(
        (res.memory_limit_in_bytes, res.cpu_shares),
        (128 << 20, 256)
    );
    assert_eq!(d.inspect(&id)["HostConfig"]["Memory"], 128 << 20);
    let err = c
        .run(
            c.rt()
                .update_container_resources(v1::UpdateContainerResourcesRequest {
                    container_id: id.clone(),
                    linux: Some(v1::LinuxContainerResources {
                        unified: HashMap::from([("memory.max".into(), "1".into())]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
        )
        .expect_err("unified is refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

#[test]
fn reopen_container_log_follows_a_rotation() {
    let (d, c) = cri_daemon_with_busybox();
    let sb = sandbox(&d, &c, "rot");
    let sc = sandbox_config(&d, "rot");
    let cfg = config(
        "talker",
        &[
            "sh",
            "-c",
            "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done",
        ],
    );
    let id = create(&c, &sb, cfg, &sc).unwrap();
    start(&c, &id);
    let log = d.dir.join("pods/rot/talker/0.log");
    assert!(wait_until(Duration::from_secs(20), || read_log(&log)
        .lines()
        .count()
        >= 2));
    // The kubelet's rotation: rename, then ReopenContainerLog.
    let rotated = log.with_extension("log.20250101-000000");
    std::fs::rename(&log, &rotated).unwrap();
    c.run(c.rt().reopen_container_log(v1::ReopenContainerLogRequest {
        container_id: id.clone(),
    }))
    .expect("ReopenContainerLog");
    assert!(
        wait_until(Duration::from_secs(20), || read_log(&log).lines().count()
            >= 2),
        "nothing written to the new file"
    );
    let old: Vec<_> = cri_records(&read_log(&rotated));
    let new: Vec<_> = cri_records(&read_log(&log));
    let n = |r: &(String, String, String)| -> u32 {
        r.2.strip_prefix("line ").unwrap().parse().unwrap()
    };
    assert!(
        n(&new[0]) > n(old.last().unwrap()),
        "the new file goes on where the old one stopped"
    );
    // Not running: FailedPrecondition.
    c.run(c.rt().stop_container(v1::StopContainerRequest {
        container_id: id.clone(),
        timeout: 0,
    }))
    .unwrap();
    let err = c
        .run(c.rt().reopen_container_log(v1::ReopenContainerLogRequest {
            container_id: id.clone(),
        }))
        .expect_err("stopped");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
}

#[test]
fn long_lines_are_split_into_partial_records() {
    let (d, c) = cri_daemon_with_busybox();
    let sb = sandbox(&d, &c, "long");
    let sc = sandbox_config(&d, "long");
    // 20000 bytes and a newline, then an unterminated tail.
    let cfg = config(
        "long",
        &[
            "sh",
            "-c",
            "head -c 20000 /dev/zero | tr '\\0' a; echo; printf tail",
        ],
    );
    let id = create(&c, &sb, cfg, &sc).unwrap();
    start(&c, &id);
    wait_exited(&c, &id);
    let log = d.dir.join("pods/long/long/0.log");
    assert!(wait_until(Duration::from_secs(10), || read_log(&log)
        .lines()
        .count()
        >= 3));
    let recs = cri_records(&read_log(&log));
    let tags: Vec<&str> = recs.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(tags, ["P", "F", "P"], "{recs:?}");
    assert_eq!(recs[0].2.len() + recs[1].2.len(), 20000);
    assert_eq!(recs[2].2, "tail");
    // Berth's own reader understands the format: `docker logs` shows the lines.
    let out = d.berth_ok(&["logs", &id]);
    assert!(
        out.ends_with("tail"),
        "{:?}",
        &out[out.len().saturating_sub(20)..]
    );
}

#[test]
fn containers_survive_a_daemon_kill() {
    let (mut d, c) = cri_daemon_with_busybox();
    let sb = sandbox(&d, &c, "keep");
    let sc = sandbox_config(&d, "keep");
    let id = create(&c, &sb, config("keep", &["sleep", "100000"]), &sc).unwrap();
    start(&c, &id);
    let created = create(&c, &sb, config("later", &["sleep", "100000"]), &sc).unwrap();
    drop(c);
    d.kill_daemon();
    d.start_daemon();
    let c = Cri::connect(d.cri_sock.as_deref().unwrap());
    let s = status(&c, &id);
    assert_eq!(s.state, ContainerState::ContainerRunning as i32);
    assert_eq!(s.metadata.unwrap().name, "keep");
    assert_eq!(
        status(&c, &created).state,
        ContainerState::ContainerCreated as i32
    );
    assert_eq!(list(&c, Default::default()).len(), 2);
    let r = exec_sync(&c, &id, &["echo", "still here"], 10).unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "still here\n");
    // The one created before the kill starts now, and logs where the kubelet said.
    start(&c, &created);
    assert_eq!(
        status(&c, &created).state,
        ContainerState::ContainerRunning as i32
    );
    assert!(d.dir.join("pods/keep/later/0.log").exists());
}

#[test]
fn the_log_path_is_in_the_records_first_write() {
    let (mut d, c) = cri_daemon_with_busybox();
    let sb = sandbox(&d, &c, "crash");
    let sc = sandbox_config(&d, "crash");
    drop(c);
    // The daemon kills itself once the created record is durable, before it answers:
    // what the record says then is all a restarted daemon knows.
    d.stop_daemon(Duration::from_secs(5));
    d.extra_env = vec![("BERTH_TEST_CRASH_AT".into(), "create-after-record".into())];
    d.start_daemon();
    d.extra_env.clear();
    let pid = d.daemon_pid().expect("daemon pid") as i32;
    let c = Cri::connect(d.cri_sock.as_deref().unwrap());
    let cfg = config("early", &["sh", "-c", "echo logged; exec sleep 100000"]);
    assert!(
        create(&c, &sb, cfg, &sc).is_err(),
        "the daemon died in create"
    );
    assert!(wait_until(Duration::from_secs(20), || !pid_alive(pid)));
    drop(c);
    d.kill_daemon();
    d.start_daemon();
    let c = Cri::connect(d.cri_sock.as_deref().unwrap());
    let found = list(&c, Default::default());
    assert_eq!(found.len(), 1, "{found:?}");
    let id = found[0].id.clone();
    let log = d.dir.join("pods/crash/early/0.log");
    assert_eq!(status(&c, &id).log_path, log.display().to_string());
    start(&c, &id);
    assert!(
        wait_until(Duration::from_secs(20), || read_log(&log)
            .contains("logged")),
        "log: {:?}",
        read_log(&log)
    );
}

#[test]
fn bad_input_gets_containerds_codes_and_leaves_nothing() {
    let (d, c) = cri_daemon_with_busybox();
    let sb = sandbox(&d, &c, "bad");
    let sc = sandbox_config(&d, "bad");
    let code = |r: Result<String, tonic::Status>| r.expect_err("refused").code();
    assert_eq!(
        code(create(&c, "0123456789ab", config("x", &["true"]), &sc)),
        tonic::Code::NotFound
    );
    // A plain container is no sandbox.
    let plain = d
        .berth_ok(&["create", "busybox", "true"])
        .trim()
        .to_string();
    assert_eq!(
        code(create(&c, &plain, config("x", &["true"]), &sc)),
        tonic::Code::NotFound
    );
    // Nor one labelled as a sandbox by a Docker client.
    let labelled = d
        .berth_ok(&[
            "run",
            "-d",
            "--label",
            "io.berth.cri.sandbox=true",
            "busybox",
            "sleep",
            "100000",
        ])
        .trim()
        .to_string();
    assert_eq!(
        code(create(&c, &labelled, config("x", &["true"]), &sc)),
        tonic::Code::NotFound
    );
    d.berth_ok(&["rm", "-f", &labelled]);
    let mut no_meta = config("x", &["true"]);
    no_meta.metadata = None;
    assert_eq!(
        code(create(&c, &sb, no_meta, &sc)),
        tonic::Code::InvalidArgument
    );
    let mut no_image = config("x", &["true"]);
    no_image.image = Some(v1::ImageSpec {
        image: "nosuchimage:1".into(),
        ..Default::default()
    });
    assert_eq!(code(create(&c, &sb, no_image, &sc)), tonic::Code::NotFound);
    let mut apparmor = config("x", &["true"]);
    apparmor.linux = Some(v1::LinuxContainerConfig {
        resources: None,
        security_context: Some(v1::LinuxContainerSecurityContext {
            apparmor: Some(v1::SecurityProfile {
                profile_type: v1::security_profile::ProfileType::Localhost as i32,
                localhost_ref: "p".into(),
            }),
            ..Default::default()
        }),
    });
    assert_eq!(
        code(create(&c, &sb, apparmor, &sc)),
        tonic::Code::InvalidArgument
    );
    let mut missing_cap = config("x", &["true"]);
    missing_cap.linux = Some(v1::LinuxContainerConfig {
        resources: None,
        security_context: Some(v1::LinuxContainerSecurityContext {
            capabilities: Some(v1::Capability {
                add_capabilities: vec!["NOT_A_CAP".into()],
                ..Default::default()
            }),
            ..Default::default()
        }),
    });
    assert_eq!(
        code(create(&c, &sb, missing_cap, &sc)),
        tonic::Code::InvalidArgument
    );
    let mut bad_device = config("x", &["true"]);
    bad_device.devices = vec![v1::Device {
        container_path: "/dev/nope".into(),
        host_path: "/dev/does-not-exist".into(),
        permissions: "rwm".into(),
    }];
    assert_eq!(
        code(create(&c, &sb, bad_device, &sc)),
        tonic::Code::InvalidArgument
    );

    // The same name twice: AlreadyExists; the first stays.
    let first = create(&c, &sb, config("dup", &["true"]), &sc).unwrap();
    // A bind source that does not exist is made (as containerd), and taken away again
    // when the create fails afterwards.
    let made = d.dir.join("made/by/create");
    let mut again = config("dup", &["true"]);
    again.mounts = vec![v1::Mount {
        container_path: "/m".into(),
        host_path: made.display().to_string(),
        ..Default::default()
    }];
    assert_eq!(
        code(create(&c, &sb, again, &sc)),
        tonic::Code::AlreadyExists
    );
    assert!(!d.dir.join("made").exists(), "the made host path stayed");
    // Unknown IDs.
    let err = c
        .run(c.rt().start_container(v1::StartContainerRequest {
            container_id: "ffffffffffff".into(),
        }))
        .expect_err("unknown");
    assert_eq!(err.code(), tonic::Code::NotFound);
    // StopContainer is idempotent: an unknown container is already stopped (containerd).
    c.run(c.rt().stop_container(v1::StopContainerRequest {
        container_id: "ffffffffffff".into(),
        timeout: 0,
    }))
    .expect("StopContainer of an unknown ID");
    // The plain container is not a CRI container either.
    let err = c
        .run(c.rt().container_status(v1::ContainerStatusRequest {
            container_id: plain.clone(),
            verbose: false,
        }))
        .expect_err("not CRI");
    assert_eq!(err.code(), tonic::Code::NotFound);
    // Nothing else was left: the sandbox, the plain container, the first `dup`.
    let all = d.berth_ok(&["ps", "-aq", "--no-trunc"]);
    let mut all: Vec<&str> = all.lines().collect();
    all.sort();
    let mut want = vec![sb.as_str(), plain.as_str(), first.as_str()];
    want.sort();
    assert_eq!(all, want);
}

#[test]
fn containers_share_a_real_pods_namespaces_and_go_with_it() {
    let (d, c) = cri_daemon_with_busybox();
    let mut pod = sandbox_config(&d, "real");
    pod.hostname = "real-host".into();
    let sb = c
        .run(c.rt().run_pod_sandbox(v1::RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: String::new(),
        }))
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    let id = create(&c, &sb, config("app", &["sleep", "100000"]), &pod).expect("CreateContainer");
    start(&c, &id);
    let run = |cmd: &str| {
        let r = exec_sync(&c, &id, &["sh", "-c", cmd], 10).expect("ExecSync");
        String::from_utf8_lossy(&r.stdout).trim().to_string()
    };
    // The pod's hostname (UTS), network (one address with the sandbox), and PID
    // namespace (POD: the pause is PID 1).
    assert_eq!(run("hostname"), "real-host");
    let sandbox_ip = c
        .run(c.rt().pod_sandbox_status(v1::PodSandboxStatusRequest {
            pod_sandbox_id: sb.clone(),
            verbose: false,
        }))
        .expect("PodSandboxStatus")
        .into_inner()
        .status
        .and_then(|s| s.network)
        .map(|n| n.ip)
        .unwrap_or_default();
    assert!(!sandbox_ip.is_empty(), "the pod has an address");
    assert!(run("ip -4 addr").contains(&sandbox_ip), "{sandbox_ip}");
    let init = run("cat /proc/1/cmdline | tr '\\0' ' '");
    // Berth's pause (forked from the shim) is PID 1, the container's process another.
    assert!(init.starts_with("berth "), "PID 1 of the pod: {init:?}");
    let sleep_pid: u32 = run("pidof sleep").parse().expect("one sleep");
    assert!(sleep_pid > 1);
    let listed = list(
        &c,
        v1::ContainerFilter {
            pod_sandbox_id: sb.clone(),
            ..Default::default()
        },
    );
    assert_eq!(listed.len(), 1);
    // Removing the pod removes its containers.
    c.run(c.rt().stop_pod_sandbox(v1::StopPodSandboxRequest {
        pod_sandbox_id: sb.clone(),
    }))
    .expect("StopPodSandbox");
    assert_eq!(
        status(&c, &id).state,
        ContainerState::ContainerExited as i32
    );
    c.run(c.rt().remove_pod_sandbox(v1::RemovePodSandboxRequest {
        pod_sandbox_id: sb.clone(),
    }))
    .expect("RemovePodSandbox");
    assert!(list(&c, Default::default()).is_empty());
}
