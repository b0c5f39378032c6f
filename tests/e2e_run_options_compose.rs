//! docker-compose 1.29 brings up a project using the run options of issue 16 (point 7):
//! extra_hosts, dns, init, ulimits, group_add, ipc, pid, devices, device_cgroup_rules,
//! security_opt, shm_size and oom_score_adj; each is checked from inside the containers
//! with the real Docker CLI, then `down` removes it all.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

#[path = "common/compose.rs"]
mod compose;

// `dns` on the default bridge, where it is the container's nameserver (on a user network
// the embedded server forwards to it: see e2e_run_options).
const COMPOSE_FILE: &str = r#"version: "2.4"
services:
  app:
    image: busybox
    command: sleep 300
    network_mode: bridge
    init: true
    extra_hosts:
      - "foo:1.2.3.4"
    dns:
      - 1.1.1.1
    dns_search: a.example
    ulimits:
      nofile:
        soft: 1000
        hard: 2000
      nproc: 500
    group_add:
      - "1234"
    ipc: shareable
    devices:
      - "/dev/null:/dev/mynull:rw"
    device_cgroup_rules:
      - "c 7:128 rwm"
    security_opt:
      - no-new-privileges:true
    shm_size: 32m
    oom_score_adj: 300
  side:
    image: busybox
    command: sleep 300
    network_mode: bridge
    ipc: "service:app"
    pid: host
    depends_on:
      - app
"#;

fn compose(d: &TestDaemon, dir: &Path, args: &[&str]) -> Output {
    compose::compose_in(d, "berthro", dir, args)
}

fn exec(d: &TestDaemon, c: &str, script: &str) -> String {
    d.docker_ok(&["exec", c, "sh", "-c", script])
}

#[test]
fn compose_run_options_reach_the_containers() {
    if !compose::compose_available() {
        return;
    }
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    let proj = d.dir.join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(proj.join("docker-compose.yml"), COMPOSE_FILE).unwrap();
    let out = compose(&d, &proj, &["up", "-d"]);
    assert_success(&out, "docker-compose up -d");
    let (app, side) = ("berthro_app_1", "berthro_side_1");

    let hosts = exec(&d, app, "cat /etc/hosts");
    assert!(hosts.lines().any(|l| l == "1.2.3.4\tfoo"), "{hosts}");
    let resolv = exec(&d, app, "cat /etc/resolv.conf");
    assert_eq!(resolv, "search a.example\nnameserver 1.1.1.1\n");
    // init: PID 1 is docker-init, the command its child
    assert_eq!(exec(&d, app, "cat /proc/1/comm"), "docker-init\n");
    // the container's processes have the limits; an exec gets them too (its soft
    // nofile is the hard one with Docker, a Go runtime effect: only the hard one is checked)
    let limits = exec(&d, app, "grep -E 'open files|processes' /proc/1/limits");
    let nums: Vec<Vec<&str>> = limits
        .lines()
        .map(|l| {
            l.split_whitespace()
                .filter(|w| w.parse::<u64>().is_ok())
                .collect()
        })
        .collect();
    assert_eq!(nums, [vec!["500", "500"], vec!["1000", "2000"]], "{limits}");
    assert_eq!(exec(&d, app, "ulimit -Hn; ulimit -u"), "2000\n500\n");
    let groups = exec(&d, app, "id -G");
    assert!(groups.split_whitespace().any(|g| g == "1234"), "{groups}");
    assert_eq!(
        exec(&d, app, "stat -c '%F %t:%T' /dev/mynull"),
        "character special file 1:3\n"
    );
    if Path::new("/sys/fs/cgroup/devices/devices.list").exists() {
        let list = exec(&d, app, "cat /sys/fs/cgroup/devices/devices.list");
        assert!(list.lines().any(|l| l == "c 7:128 rwm"), "{list}");
    }
    assert_eq!(
        exec(&d, app, "grep NoNewPrivs /proc/self/status"),
        "NoNewPrivs:\t1\n"
    );
    let shm = exec(&d, app, "df -k /dev/shm | tail -1");
    assert_eq!(shm.split_whitespace().nth(1), Some("32768"), "{shm}");
    assert_eq!(exec(&d, app, "cat /proc/self/oom_score_adj"), "300\n");
    // side: app's IPC namespace, the host's pid namespace
    assert_eq!(
        exec(&d, side, "readlink /proc/self/ns/ipc"),
        exec(&d, app, "readlink /proc/self/ns/ipc")
    );
    let host_pid = std::fs::read_link("/proc/self/ns/pid").unwrap();
    assert_eq!(
        exec(&d, side, "readlink /proc/self/ns/pid").trim(),
        host_pid.to_string_lossy()
    );
    let hc = &d.inspect(side)["HostConfig"];
    assert_eq!(hc["PidMode"], "host");
    assert!(
        hc["IpcMode"]
            .as_str()
            .is_some_and(|m| m.starts_with("container:")),
        "{hc}"
    );

    let out = compose(&d, &proj, &["down", "-t", "1"]);
    assert_success(&out, "docker-compose down");
    assert_eq!(d.berth_ok(&["ps", "-aq"]), "");
}
