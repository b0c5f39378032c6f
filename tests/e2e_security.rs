//! Docker's defences (issue 13): sysctls only inside the container's own namespaces,
//! security options, capabilities by name, seccomp, the sealed binary.
//!
//! Every test here only reads host settings (before and after); none changes the host.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// `POST /containers/create`: status and the JSON answer.
fn create(d: &TestDaemon, body: Value) -> (u16, Value) {
    let (status, _, resp) = d.request("POST", "/v1.45/containers/create", Some(body.to_string().as_bytes()));
    let v = serde_json::from_slice(&resp).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&resp)}));
    (status, v)
}

/// `POST /containers/{id}/start`: status and the message when it failed.
fn start(d: &TestDaemon, id: &str) -> (u16, String) {
    let (status, _, resp) = d.request("POST", &format!("/v1.45/containers/{id}/start"), None);
    let msg = serde_json::from_slice::<Value>(&resp)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, msg)
}

/// Creates, starts and waits for a busybox container running `script`; its output.
fn run_api(d: &TestDaemon, host_config: Value, script: &str) -> String {
    let (status, v) = create(d, json!({"Image": "busybox", "Cmd": ["sh", "-c", script], "HostConfig": host_config}));
    assert_eq!(status, 201, "{v}");
    let id = v["Id"].as_str().unwrap().to_string();
    let (status, msg) = start(d, &id);
    assert_eq!(status, 204, "{msg}");
    let (status, _, body) = d.request("POST", &format!("/v1.45/containers/{id}/wait"), None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let out = d.berth_ok(&["logs", &id]);
    d.berth_ok(&["rm", "-f", &id]);
    out
}

/// The host sysctls a container might try to reach: none of them may ever change.
const WATCHED: &[&str] = &[
    "vm/swappiness",
    "kernel/core_pattern",
    "kernel/hostname",
    "kernel/domainname",
    "kernel/shmmax",
    "kernel/msgmax",
    "kernel/sem",
    "fs/mqueue/msg_max",
    "fs/file-max",
    "net/core/somaxconn",
    "net/ipv4/ip_unprivileged_port_start",
    "net/ipv4/ping_group_range",
    "net/ipv4/tcp_keepalive_time",
];

fn host_sysctls() -> Vec<(String, String)> {
    WATCHED
        .iter()
        .map(|k| (k.to_string(), std::fs::read_to_string(format!("/proc/sys/{k}")).unwrap_or_default()))
        .collect()
}

#[test]
fn host_wide_sysctls_are_refused_at_create_with_runcs_words() {
    let d = daemon();
    let before = host_sysctls();
    let cases: &[(&str, &str, &str)] = &[
        ("vm.swappiness", "bridge", "sysctl \"vm.swappiness\" is not in a separate kernel namespace"),
        ("vm.swappiness", "host", "sysctl \"vm.swappiness\" is not in a separate kernel namespace"),
        ("vm.swappiness", "none", "sysctl \"vm.swappiness\" is not in a separate kernel namespace"),
        ("kernel.core_pattern", "bridge", "sysctl \"kernel.core_pattern\" is not in a separate kernel namespace"),
        ("fs.file-max", "bridge", "sysctl \"fs.file-max\" is not in a separate kernel namespace"),
        ("vm/swappiness", "bridge", "sysctl \"vm/swappiness\" is not in a separate kernel namespace"),
        ("net./../vm/swappiness", "bridge", "sysctl \"net./../vm/swappiness\" is not in a separate kernel namespace"),
        ("kernel.hostname", "bridge", "sysctl \"kernel.hostname\" is not allowed as it conflicts with the OCI \"hostname\" field"),
        ("net.core.somaxconn", "host", "sysctl \"net.core.somaxconn\" not allowed in host network namespace"),
        ("net.ipv4.tcp_keepalive_time", "host", "sysctl \"net.ipv4.tcp_keepalive_time\" not allowed in host network namespace"),
    ];
    for (key, net, want) in cases {
        let (status, v) = create(
            &d,
            json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": net, "Sysctls": {*key: "61"}}}),
        );
        assert_eq!((status, v["message"].as_str().unwrap_or_default()), (400, *want), "{key} with --network {net}: {v}");
    }
    let (_, _, v) = d.request("GET", "/v1.45/containers/json?all=1", None);
    assert_eq!(serde_json::from_slice::<Value>(&v).unwrap(), json!([]), "a refused create left a container");
    assert_eq!(host_sysctls(), before, "a host sysctl changed");
}

#[test]
fn namespaced_sysctls_change_only_the_container() {
    let d = daemon();
    let before = host_sysctls();
    let out = run_api(
        &d,
        json!({"Sysctls": {
            "net.core.somaxconn": "1234",
            "net.ipv4.tcp_keepalive_time": "4321",
            "kernel.shmmax": "1048576",
            "kernel.msgmax": "4096",
            "kernel.sem": "250 256000 32 1000",
            "fs.mqueue.msg_max": "17",
            "kernel.domainname": "berth.test",
        }}),
        "for k in net/core/somaxconn net/ipv4/tcp_keepalive_time kernel/shmmax kernel/msgmax fs/mqueue/msg_max kernel/domainname \
         net/ipv4/ip_unprivileged_port_start; do echo $k=$(cat /proc/sys/$k); done; \
         echo sem=$(cat /proc/sys/kernel/sem | tr -s '\\t ' ' '); \
         echo x > /proc/sys/vm/swappiness 2>/dev/null && echo wrote-swappiness",
    );
    assert_eq!(
        out,
        "net/core/somaxconn=1234\nnet/ipv4/tcp_keepalive_time=4321\nkernel/shmmax=1048576\nkernel/msgmax=4096\n\
         fs/mqueue/msg_max=17\nkernel/domainname=berth.test\nnet/ipv4/ip_unprivileged_port_start=0\nsem=250 256000 32 1000\n"
    );
    assert_eq!(host_sysctls(), before, "a host sysctl changed");
}

#[test]
fn net_sysctls_in_a_host_network_container_joined_by_another_are_refused_at_start() {
    let d = daemon();
    let before = host_sysctls();
    d.berth_ok(&["run", "-d", "--name", "hostnet", "--network", "host", "busybox", "sleep", "1000"]);
    let (status, v) = create(
        &d,
        json!({"Image": "busybox", "Cmd": ["true"],
               "HostConfig": {"NetworkMode": "container:hostnet", "Sysctls": {"net.core.somaxconn": "999"}}}),
    );
    assert_eq!(status, 201, "{v}");
    let (status, msg) = start(&d, v["Id"].as_str().unwrap());
    assert_ne!(status, 204);
    assert!(msg.contains("sysctl \"net.core.somaxconn\" not allowed in host network namespace"), "{msg}");
    // A container that shares a private network namespace may set its sysctls.
    d.berth_ok(&["run", "-d", "--name", "own", "busybox", "sleep", "1000"]);
    let out = run_api(
        &d,
        json!({"NetworkMode": "container:own", "Sysctls": {"net.core.somaxconn": "777"}}),
        "cat /proc/sys/net/core/somaxconn",
    );
    assert_eq!(out, "777\n");
    assert!(
        wait_until(Duration::from_secs(5), || host_sysctls() == before),
        "a host sysctl changed"
    );
}
