//! CRI pod sandboxes end to end, through a Rust CRI client: RunPodSandbox (the pause
//! holding the pod's namespaces, on the `berth-cri` network), PodSandboxStatus,
//! ListPodSandbox with filters, StopPodSandbox, RemovePodSandbox, host networking, port
//! mappings, DNS, sysctls, bad input, and pods across a daemon kill -9.

mod common;
#[path = "common/cri.rs"]
mod cri;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use common::{wait_until, TestDaemon};
use cri::{cri_daemon, v1, Cri};

fn pod_config(name: &str, attempt: u32) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "testns".into(),
            attempt,
        }),
        hostname: format!("{name}-host"),
        log_directory: format!("/var/log/pods/testns_{name}"),
        labels: HashMap::from([("app".to_string(), name.to_string())]),
        annotations: HashMap::from([("example.com/note".to_string(), "hello".to_string())]),
        ..Default::default()
    }
}

fn run_pod(c: &Cri, config: v1::PodSandboxConfig) -> Result<String, tonic::Status> {
    c.run(c.rt().run_pod_sandbox(v1::RunPodSandboxRequest {
        config: Some(config),
        runtime_handler: String::new(),
    }))
    .map(|r| r.into_inner().pod_sandbox_id)
}

fn status(c: &Cri, id: &str) -> Result<v1::PodSandboxStatusResponse, tonic::Status> {
    c.run(c.rt().pod_sandbox_status(v1::PodSandboxStatusRequest {
        pod_sandbox_id: id.into(),
        verbose: true,
    }))
    .map(|r| r.into_inner())
}

fn list(c: &Cri, filter: Option<v1::PodSandboxFilter>) -> Vec<v1::PodSandbox> {
    c.run(
        c.rt()
            .list_pod_sandbox(v1::ListPodSandboxRequest { filter }),
    )
    .expect("ListPodSandbox")
    .into_inner()
    .items
}

fn stop(c: &Cri, id: &str) -> Result<(), tonic::Status> {
    c.run(c.rt().stop_pod_sandbox(v1::StopPodSandboxRequest {
        pod_sandbox_id: id.into(),
    }))
    .map(drop)
}

fn remove(c: &Cri, id: &str) -> Result<(), tonic::Status> {
    c.run(c.rt().remove_pod_sandbox(v1::RemovePodSandboxRequest {
        pod_sandbox_id: id.into(),
    }))
    .map(drop)
}

fn ready(s: &v1::PodSandboxStatusResponse) -> bool {
    s.status.as_ref().map(|s| s.state) == Some(v1::PodSandboxState::SandboxReady as i32)
}

/// The pause's host pid, from the sandbox container's inspect.
fn pause_pid(d: &TestDaemon, id: &str) -> i32 {
    d.inspect(id)["State"]["Pid"].as_i64().expect("a pid") as i32
}

fn ns_of(pid: i32, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn nsenter(pid: i32, flags: &[&str], cmd: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg("-t")
        .arg(pid.to_string())
        .args(flags)
        .args(cmd)
        .output()
        .expect("nsenter");
    assert!(out.status.success(), "nsenter {cmd:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_pod_runs_is_listed_stopped_and_removed() {
    let (d, c) = cri_daemon();
    let mut config = pod_config("web", 0);
    config.dns_config = Some(v1::DnsConfig {
        servers: vec!["10.96.0.10".into()],
        searches: vec!["testns.svc.cluster.local".into()],
        options: vec!["ndots:5".into()],
    });
    config.linux = Some(v1::LinuxPodSandboxConfig {
        sysctls: HashMap::from([("net.ipv4.tcp_keepalive_time".to_string(), "500".to_string())]),
        ..Default::default()
    });
    let id = run_pod(&c, config).expect("RunPodSandbox");
    assert_eq!(
        d.full_id(&id),
        id,
        "the PodSandboxId is the Berth container ID"
    );

    let s = status(&c, &id).expect("PodSandboxStatus");
    assert!(ready(&s), "{s:?}");
    let st = s.status.clone().unwrap();
    let meta = st.metadata.clone().unwrap();
    assert_eq!(
        (
            meta.name.as_str(),
            meta.namespace.as_str(),
            meta.uid.as_str(),
            meta.attempt
        ),
        ("web", "testns", "uid-web", 0)
    );
    assert!(
        st.created_at > 1_000_000_000_000_000_000,
        "{}",
        st.created_at
    );
    assert_eq!(st.labels, HashMap::from([("app".into(), "web".into())]));
    assert_eq!(st.annotations["example.com/note"], "hello");
    let ip: std::net::Ipv4Addr = st.network.unwrap().ip.parse().expect("a pod IPv4");
    assert!(!ip.is_unspecified());
    let ns = st.linux.unwrap().namespaces.unwrap().options.unwrap();
    assert_eq!(ns.network, v1::NamespaceMode::Pod as i32);
    assert!(s.info.contains_key("info"));

    // The Berth container: dockershim's name, the contract's labels, the pause as PID 1.
    let inspect = d.inspect(&id);
    assert_eq!(inspect["Name"], "/k8s_POD_web_testns_uid-web_0");
    let labels = &inspect["Config"]["Labels"];
    assert_eq!(labels["io.berth.cri.sandbox"], "true");
    assert_eq!(labels["io.kubernetes.pod.name"], "web");
    assert_eq!(labels["io.kubernetes.pod.namespace"], "testns");
    assert_eq!(labels["io.kubernetes.pod.uid"], "uid-web");
    assert_eq!(labels["app"], "web");
    let pid = pause_pid(&d, &id);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "pause");
    // its own namespaces, its hostname, the DNS config as resolv.conf, the sysctl
    let me = std::process::id() as i32;
    for kind in ["net", "ipc", "uts", "pid"] {
        assert_ne!(ns_of(pid, kind), ns_of(me, kind), "{kind} namespace");
    }
    assert_eq!(nsenter(pid, &["-u"], &["hostname"]), "web-host");
    let resolv = std::fs::read_to_string(format!("/proc/{pid}/root/etc/resolv.conf")).unwrap();
    assert!(resolv.contains("nameserver 10.96.0.10"), "{resolv}");
    assert!(!resolv.contains("127.0.0.11"), "{resolv}");
    assert!(
        resolv.contains("search testns.svc.cluster.local"),
        "{resolv}"
    );
    assert!(resolv.contains("options ndots:5"), "{resolv}");
    assert_eq!(
        nsenter(
            pid,
            &["-n"],
            &["cat", "/proc/sys/net/ipv4/tcp_keepalive_time"]
        ),
        "500"
    );
    assert!(nsenter(pid, &["-n"], &["ip", "-4", "-o", "addr"]).contains(&ip.to_string()));

    // Lists and filters.
    let other = run_pod(&c, pod_config("db", 1)).expect("a second pod");
    d.full_id(&other);
    assert_eq!(list(&c, None).len(), 2);
    let by = |f: v1::PodSandboxFilter| -> Vec<String> {
        list(&c, Some(f)).into_iter().map(|p| p.id).collect()
    };
    assert_eq!(
        by(v1::PodSandboxFilter {
            id: id[..12].into(),
            ..Default::default()
        }),
        std::slice::from_ref(&id)
    );
    assert_eq!(
        by(v1::PodSandboxFilter {
            label_selector: HashMap::from([("app".into(), "db".into())]),
            ..Default::default()
        }),
        std::slice::from_ref(&other)
    );
    // a short ID prefix names the pod too
    assert!(ready(&status(&c, &id[..16]).expect("status by prefix")));

    // Stats: the pause counts, its eth0 is the pod's interface.
    let stats = c
        .run(c.rt().pod_sandbox_stats(v1::PodSandboxStatsRequest {
            pod_sandbox_id: id.clone(),
        }))
        .expect("PodSandboxStats")
        .into_inner()
        .stats
        .unwrap();
    assert_eq!(stats.attributes.unwrap().id, id);
    let linux = stats.linux.unwrap();
    assert_eq!(linux.process.unwrap().process_count.unwrap().value, 1);
    assert!(linux.memory.unwrap().usage_bytes.unwrap().value > 0);
    let eth0 = linux.network.unwrap().default_interface.expect("eth0");
    assert_eq!(eth0.name, "eth0");
    let listed = c
        .run(
            c.rt()
                .list_pod_sandbox_stats(v1::ListPodSandboxStatsRequest {
                    filter: Some(v1::PodSandboxStatsFilter {
                        id: String::new(),
                        label_selector: HashMap::from([("app".into(), "db".into())]),
                    }),
                }),
        )
        .expect("ListPodSandboxStats")
        .into_inner()
        .stats;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attributes.as_ref().unwrap().id, other);

    // Stop: NOTREADY, the pause gone; idempotent.
    stop(&c, &id).expect("StopPodSandbox");
    assert!(!ready(&status(&c, &id).unwrap()));
    assert!(wait_until(Duration::from_secs(10), || !common::pid_alive(
        pid
    )));
    stop(&c, &id).expect("StopPodSandbox again");
    let not_ready = by(v1::PodSandboxFilter {
        state: Some(v1::PodSandboxStateValue {
            state: v1::PodSandboxState::SandboxNotready as i32,
        }),
        ..Default::default()
    });
    assert_eq!(not_ready, std::slice::from_ref(&id));

    // Remove: gone from CRI and from Berth; idempotent (a running pod is stopped first).
    remove(&c, &id).expect("RemovePodSandbox");
    remove(&c, &id).expect("RemovePodSandbox again");
    remove(&c, &other).expect("RemovePodSandbox of a running pod");
    assert!(list(&c, None).is_empty());
    assert_eq!(status(&c, &id).unwrap_err().code(), tonic::Code::NotFound);
    let ps = d.berth_ok(&["ps", "-aq"]);
    assert!(ps.trim().is_empty(), "{ps}");
}

#[test]
fn network_is_ready_when_cri_serves() {
    let (_d, c) = cri_daemon();
    let s = c
        .run(c.rt().status(v1::StatusRequest { verbose: false }))
        .expect("Status")
        .into_inner();
    let conds = s.status.unwrap().conditions;
    assert!(conds.iter().all(|c| c.status), "{conds:?}");
}

#[test]
fn bad_input_gets_containerds_codes_and_leaves_nothing() {
    let (d, c) = cri_daemon();
    let mut no_meta = pod_config("x", 0);
    no_meta.metadata = None;
    let e = run_pod(&c, no_meta).unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");

    let id = run_pod(&c, pod_config("dup", 0)).expect("a pod");
    d.full_id(&id);
    let e = run_pod(&c, pod_config("dup", 0)).unwrap_err();
    assert_eq!(e.code(), tonic::Code::AlreadyExists, "{e:?}");
    assert!(e.message().contains(&id), "{e:?}");
    // the next attempt is another pod
    let next = run_pod(&c, pod_config("dup", 1)).expect("attempt 1");
    d.full_id(&next);

    let e = c
        .run(c.rt().run_pod_sandbox(v1::RunPodSandboxRequest {
            config: Some(pod_config("kata", 0)),
            runtime_handler: "kata".into(),
        }))
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");

    // A sysctl of the host's (not namespaced) fails the start: nothing is left of it.
    let mut bad = pod_config("badsysctl", 0);
    bad.linux = Some(v1::LinuxPodSandboxConfig {
        sysctls: HashMap::from([("vm.swappiness".to_string(), "10".to_string())]),
        ..Default::default()
    });
    let e = run_pod(&c, bad).unwrap_err();
    assert_ne!(e.code(), tonic::Code::Ok);
    assert_eq!(list(&c, None).len(), 2, "only the two good pods");
    assert_eq!(d.berth_ok(&["ps", "-aq"]).lines().count(), 2);

    let unknown = "f".repeat(64);
    assert_eq!(
        status(&c, &unknown).unwrap_err().code(),
        tonic::Code::NotFound
    );
    stop(&c, &unknown).expect("stopping an unknown pod is no error");
    remove(&c, &unknown).expect("removing an unknown pod is no error");
    // a plain container is no pod
    d.import_busybox();
    let plain = d.run_detached(&["busybox", "sleep", "60"]);
    assert_eq!(
        status(&c, &plain).unwrap_err().code(),
        tonic::Code::NotFound
    );
}

#[test]
fn host_network_pods_share_the_nodes_network() {
    let (d, c) = cri_daemon();
    let mut config = pod_config("hostnet", 0);
    config.linux = Some(v1::LinuxPodSandboxConfig {
        security_context: Some(v1::LinuxSandboxSecurityContext {
            namespace_options: Some(v1::NamespaceOption {
                network: v1::NamespaceMode::Node as i32,
                pid: v1::NamespaceMode::Container as i32,
                ipc: v1::NamespaceMode::Pod as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    config.dns_config = Some(v1::DnsConfig {
        servers: vec!["10.96.0.10".into()],
        searches: vec!["cluster.local".into()],
        options: Vec::new(),
    });
    let id = run_pod(&c, config).expect("a host-network pod");
    d.full_id(&id);
    let s = status(&c, &id).unwrap().status.unwrap();
    assert_eq!(s.network.unwrap().ip, "");
    let ns = s.linux.unwrap().namespaces.unwrap().options.unwrap();
    assert_eq!(ns.network, v1::NamespaceMode::Node as i32);
    assert_eq!(ns.pid, v1::NamespaceMode::Container as i32);
    let pid = pause_pid(&d, &id);
    let me = std::process::id() as i32;
    assert_eq!(ns_of(pid, "net"), ns_of(me, "net"));
    assert_eq!(ns_of(pid, "uts"), ns_of(me, "uts"));
    assert_ne!(ns_of(pid, "ipc"), ns_of(me, "ipc"));
    // the pod's DNS config, for its containers to share
    let resolv = std::fs::read_to_string(format!("/proc/{pid}/root/etc/resolv.conf")).unwrap();
    assert!(resolv.contains("nameserver 10.96.0.10"), "{resolv}");
    assert!(resolv.contains("search cluster.local"), "{resolv}");
    remove(&c, &id).expect("remove");
}

/// A pod's hostPort reaches a server in the pod (a Berth container in the sandbox's
/// network namespace).
#[test]
fn port_mappings_publish_the_pods_ports() {
    let (d, c) = cri_daemon();
    d.import_busybox();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = pod_config("ports", 0);
    config.port_mappings = vec![v1::PortMapping {
        protocol: v1::Protocol::Tcp as i32,
        container_port: 8080,
        host_port: port as i32,
        host_ip: "127.0.0.1".into(),
    }];
    let id = run_pod(&c, config).expect("a pod with a port");
    d.full_id(&id);
    let server = d.run_detached(&[
        "--network",
        &format!("container:{id}"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    d.full_id(&server);
    let mut body = String::new();
    let ok = wait_until(Duration::from_secs(15), || {
        body.clear();
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n");
        s.read_to_string(&mut body).is_ok() && body.contains("200 OK")
    });
    assert!(ok, "no answer on the pod's hostPort {port}: {body:?}");
    assert!(body.contains("ports-host"), "{body}");
    remove(&c, &id).expect("remove the pod");
    // the container in the pod's namespaces goes with it
    assert!(d.berth_ok(&["ps", "-aq"]).trim().is_empty());
}

#[test]
fn pods_survive_a_daemon_kill() {
    let (mut d, c) = cri_daemon();
    let id = run_pod(&c, pod_config("survivor", 0)).expect("a pod");
    d.full_id(&id);
    let pid = pause_pid(&d, &id);
    let ip = status(&c, &id).unwrap().status.unwrap().network.unwrap().ip;
    drop(c);
    d.kill_daemon();
    assert!(common::pid_alive(pid), "the pause outlives the daemon");
    d.start_daemon();
    let c = Cri::connect(d.cri_sock.as_ref().unwrap());
    let s = status(&c, &id).expect("the pod is found again");
    assert!(ready(&s), "{s:?}");
    assert_eq!(s.status.unwrap().network.unwrap().ip, ip);
    assert_eq!(pause_pid(&d, &id), pid);
    assert_eq!(list(&c, None).len(), 1);
    stop(&c, &id).expect("stop after the restart");
    assert!(wait_until(Duration::from_secs(10), || !common::pid_alive(
        pid
    )));
    remove(&c, &id).expect("remove after the restart");
}

/// The pod's cgroup parent (the kubelet's pod cgroup) holds the pause, and Berth removes
/// the directories it made for it with the pod; a privileged pod's sandbox is privileged.
#[test]
fn cgroup_parent_and_privileged_are_applied() {
    let (d, c) = cri_daemon();
    let parent = format!("berthpodtest{}/pod-abc", std::process::id());
    let mut config = pod_config("cg", 0);
    config.linux = Some(v1::LinuxPodSandboxConfig {
        cgroup_parent: format!("/{parent}"),
        security_context: Some(v1::LinuxSandboxSecurityContext {
            privileged: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    let id = run_pod(&c, config).expect("a pod with a cgroup parent");
    d.full_id(&id);
    let pid = pause_pid(&d, &id);
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cgroups.contains(&format!("/{parent}/{id}")), "{cgroups}");
    assert_eq!(d.inspect(&id)["HostConfig"]["Privileged"], true);
    remove(&c, &id).expect("remove");
    let top = parent.split('/').next().unwrap();
    for base in [
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ] {
        let dir = std::path::Path::new(base).join(top);
        assert!(
            wait_until(Duration::from_secs(10), || !dir.exists()),
            "{} left behind",
            dir.display()
        );
    }
}
