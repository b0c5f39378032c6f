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
    let (status, _, resp) = d.request(
        "POST",
        "/v1.45/containers/create",
        Some(body.to_string().as_bytes()),
    );
    let v = serde_json::from_slice(&resp)
        .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&resp)}));
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
    let (status, v) = create(
        d,
        json!({"Image": "busybox", "Cmd": ["sh", "-c", script], "HostConfig": host_config}),
    );
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
        .map(|k| {
            (
                k.to_string(),
                std::fs::read_to_string(format!("/proc/sys/{k}")).unwrap_or_default(),
            )
        })
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
        assert_eq!(
            (status, v["message"].as_str().unwrap_or_default()),
            (400, *want),
            "{key} with --network {net}: {v}"
        );
    }
    let (_, _, v) = d.request("GET", "/v1.45/containers/json?all=1", None);
    assert_eq!(
        serde_json::from_slice::<Value>(&v).unwrap(),
        json!([]),
        "a refused create left a container"
    );
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
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "hostnet",
        "--network",
        "host",
        "busybox",
        "sleep",
        "1000",
    ]);
    let (status, v) = create(
        &d,
        json!({"Image": "busybox", "Cmd": ["true"],
               "HostConfig": {"NetworkMode": "container:hostnet", "Sysctls": {"net.core.somaxconn": "999"}}}),
    );
    assert_eq!(status, 201, "{v}");
    let (status, msg) = start(&d, v["Id"].as_str().unwrap());
    assert_ne!(status, 204);
    assert!(
        msg.contains("sysctl \"net.core.somaxconn\" not allowed in host network namespace"),
        "{msg}"
    );
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

// ------------------------------------------------------------------ probes

/// Compiles a small static C program into `dir` (gcc is one of Berth's build packages).
fn build_probe(dir: &std::path::Path, name: &str, source: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let bin = dir.join(name);
    let out = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("running gcc");
    assert!(
        out.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// Calls syscalls the default profile blocks, and some it allows; one `name=RESULT` line
/// each (RESULT is `ok` or the errno's name).
const SYSCALL_PROBE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long r) {
    printf("%s=%s\n", name, r >= 0 ? "ok" : strerrorname_np(errno));
}

/* clone(2) as fork with extra flags: the child exits at once. */
static long clone_with(unsigned long flags) {
    long r = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    if (r > 0) waitpid(r, NULL, 0);
    return r;
}

int main(void) {
    report("getpid", syscall(SYS_getpid));
    report("fork", clone_with(0));
    report("socket_inet", socket(AF_INET, SOCK_DGRAM, 0));
    report("personality_query", syscall(SYS_personality, 0xffffffffUL));
    report("personality_addr_no_randomize", syscall(SYS_personality, 0x0040000UL));
    report("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 1));
    report("add_key", syscall(SYS_add_key, "user", "berth", "x", 1, -3));
    report("request_key", syscall(SYS_request_key, "user", "nosuch", NULL, 0));
    report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    report("bpf", syscall(SYS_bpf, -1, NULL, 0));
    report("setns", syscall(SYS_setns, -1, 0));
    report("socket_alg", socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0));
    report("socket_vsock", socket(40 /* AF_VSOCK */, SOCK_STREAM, 0));
    report("clone3", syscall(SYS_clone3, NULL, 0));
    report("clone_newuser", clone_with(CLONE_NEWUSER));
    fflush(stdout);
    report("unshare_user", syscall(SYS_unshare, CLONE_NEWUSER));
    return 0;
}
"#;

/// What Docker's default profile answers for an unprivileged container.
const CONFINED: &str = "getpid=ok\nfork=ok\nsocket_inet=ok\npersonality_query=ok\n\
personality_addr_no_randomize=EPERM\nkeyctl=EPERM\nadd_key=EPERM\nrequest_key=EPERM\n\
perf_event_open=EPERM\nbpf=EPERM\nsetns=EPERM\nsocket_alg=EPERM\nsocket_vsock=EPERM\n\
clone3=ENOSYS\nclone_newuser=EPERM\nunshare_user=EPERM\n";

fn answers(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn probe_run(
    d: &TestDaemon,
    probe_dir: &std::path::Path,
    mut host_config: Value,
    cmd: &[&str],
) -> String {
    host_config["Binds"] = json!([format!("{}:/probe:ro", probe_dir.display())]);
    let (status, v) = create(
        d,
        json!({"Image": "busybox", "Cmd": cmd, "HostConfig": host_config}),
    );
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

#[test]
fn the_default_seccomp_profile_blocks_what_dockers_blocks() {
    let d = daemon();
    let dir = d.dir.join("probe");
    build_probe(&dir, "syscalls", SYSCALL_PROBE);
    let out = probe_run(&d, &dir, json!({}), &["/probe/syscalls"]);
    assert_eq!(out, CONFINED);
    let status = probe_run(
        &d,
        &dir,
        json!({}),
        &[
            "sh",
            "-c",
            "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status",
        ],
    );
    assert_eq!(status, "NoNewPrivs:\t0\nSeccomp:\t2\n");

    // Without the filter the same calls reach the kernel (so the probe can tell).
    for hc in [
        json!({"SecurityOpt": ["seccomp=unconfined"]}),
        json!({"Privileged": true}),
    ] {
        let free = answers(&probe_run(&d, &dir, hc.clone(), &["/probe/syscalls"]));
        assert_eq!(free["keyctl"], "ok", "{hc}: {free:?}");
        assert_eq!(free["clone3"], "EINVAL", "{hc}: {free:?}");
        assert_eq!(free["setns"], "EBADF", "{hc}: {free:?}");
        assert_eq!(
            free["personality_addr_no_randomize"], "ok",
            "{hc}: {free:?}"
        );
        let status = probe_run(
            &d,
            &dir,
            hc.clone(),
            &["sh", "-c", "grep '^Seccomp:' /proc/self/status"],
        );
        assert_eq!(status, "Seccomp:\t0\n", "{hc}");
    }

    // CAP_SYS_ADMIN turns on its group: namespaces and clone3 become the kernel's call.
    let admin = answers(&probe_run(
        &d,
        &dir,
        json!({"CapAdd": ["SYS_ADMIN"]}),
        &["/probe/syscalls"],
    ));
    assert_eq!(admin["setns"], "EBADF", "{admin:?}");
    assert_eq!(admin["clone3"], "EINVAL", "{admin:?}");
    assert_eq!(admin["keyctl"], "EPERM", "{admin:?}");
}

#[test]
fn execs_run_under_the_containers_filter() {
    let d = daemon();
    let dir = d.dir.join("probe");
    build_probe(&dir, "syscalls", SYSCALL_PROBE);
    let dir_s = format!("{}:/probe:ro", dir.display());
    d.berth_ok(&[
        "run", "-d", "--name", "cc", "-v", &dir_s, "busybox", "sleep", "1000",
    ]);
    assert_eq!(d.berth_ok(&["exec", "cc", "/probe/syscalls"]), CONFINED);
    let privileged = answers(&d.berth_ok(&["exec", "--privileged", "cc", "/probe/syscalls"]));
    assert_eq!(
        privileged["keyctl"], "EPERM",
        "exec --privileged keeps the container's filter"
    );
}

#[test]
fn unshare_of_a_user_namespace_fails_as_on_docker() {
    let d = daemon();
    let out = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "unshare",
        "-Urm",
        "sh",
        "-c",
        "mount -t tmpfs none /tmp && echo mounted",
    ]);
    assert_ne!(code(&out), 0, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("mounted"));
}

const PROFILE_NO_MKDIR: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#;

#[test]
fn custom_profiles_from_the_api_and_the_docker_cli() {
    let d = daemon();
    let (status, v) = create(
        &d,
        json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"SecurityOpt": ["seccomp={bad"]}}),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Decoding seccomp profile failed: "),
        "{v}"
    );
    let (status, v) = create(
        &d,
        json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"SecurityOpt": ["seccomp={\"defaultAction\":\"SCMP_ACT_FOO\"}"]}}),
    );
    assert_eq!(
        (status, v["message"].as_str().unwrap()),
        (400, "string SCMP_ACT_FOO is not a valid action for seccomp")
    );

    let dir = d.dir.join("probe");
    std::fs::create_dir_all(&dir).unwrap();
    let out = probe_run(
        &d,
        &dir,
        json!({"SecurityOpt": [format!("seccomp={PROFILE_NO_MKDIR}")]}),
        &[
            "sh",
            "-c",
            "mkdir /tmp/x 2>&1; grep '^Seccomp:' /proc/self/status",
        ],
    );
    assert_eq!(
        out,
        "mkdir: can't create directory '/tmp/x': Permission denied\nSeccomp:\t2\n"
    );

    if docker_cli_available() {
        let profile = d.dir.join("no-mkdir.json");
        std::fs::write(&profile, PROFILE_NO_MKDIR).unwrap();
        let opt = format!("seccomp={}", profile.display());
        let out = d.docker(&[
            "run",
            "--rm",
            "--security-opt",
            &opt,
            "busybox",
            "mkdir",
            "/tmp/x",
        ]);
        assert_ne!(code(&out), 0);
        assert!(
            stderr(&out).contains("Permission denied")
                || stdout(&out).contains("Permission denied"),
            "{out:?}"
        );
    }
}

/// Prints the effective uid; installed setuid root.
const EUID_PROBE: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("uid=%d euid=%d\n", getuid(), geteuid()); return 0; }
"#;

#[test]
fn no_new_privileges_keeps_a_setuid_binary_from_raising_the_euid() {
    use std::os::unix::fs::PermissionsExt;
    let d = daemon();
    let dir = d.dir.join("suid");
    let bin = build_probe(&dir, "euid", EUID_PROBE);
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let cmd = ["/probe/euid"];
    let as_1000 = |opts: Value| {
        let mut hc = json!({});
        if !opts.is_null() {
            hc["SecurityOpt"] = opts;
        }
        let (status, v) = create(
            &d,
            json!({"Image": "busybox", "Cmd": cmd, "User": "1000", "HostConfig": {"Binds": [format!("{}:/probe:ro", dir.display())], "SecurityOpt": hc["SecurityOpt"].clone()}}),
        );
        assert_eq!(status, 201, "{v}");
        let id = v["Id"].as_str().unwrap().to_string();
        assert_eq!(start(&d, &id).0, 204);
        d.request("POST", &format!("/v1.45/containers/{id}/wait"), None);
        let out = d.berth_ok(&["logs", &id]);
        d.berth_ok(&["rm", "-f", &id]);
        out
    };
    // The probe works: without the option the setuid bit makes it root.
    assert_eq!(as_1000(Value::Null), "uid=1000 euid=0\n");
    for opt in [
        "no-new-privileges",
        "no-new-privileges:true",
        "no-new-privileges=true",
    ] {
        assert_eq!(as_1000(json!([opt])), "uid=1000 euid=1000\n", "{opt}");
    }
    assert_eq!(
        as_1000(json!(["no-new-privileges=false"])),
        "uid=1000 euid=0\n"
    );
    let status = probe_run(
        &d,
        &dir,
        json!({"SecurityOpt": ["no-new-privileges"]}),
        &["sh", "-c", "grep '^NoNewPrivs:' /proc/self/status"],
    );
    assert_eq!(status, "NoNewPrivs:\t1\n");
    // An exec in such a container is held the same way.
    let bind = format!("{}:/probe:ro", dir.display());
    if docker_cli_available() {
        d.docker_ok(&[
            "run",
            "-d",
            "--name",
            "nnp",
            "--security-opt",
            "no-new-privileges",
            "-v",
            &bind,
            "busybox",
            "sleep",
            "1000",
        ]);
        assert_eq!(
            d.berth_ok(&["exec", "-u", "1000", "nnp", "/probe/euid"]),
            "uid=1000 euid=1000\n"
        );
    }
}

#[test]
fn security_options_and_capabilities_are_checked_at_create() {
    let d = daemon();
    let cases: &[(Value, &str)] = &[
        (
            json!({"SecurityOpt": ["foo"]}),
            "invalid --security-opt 1: \"foo\"",
        ),
        (
            json!({"SecurityOpt": ["foo=bar"]}),
            "invalid --security-opt 2: \"foo=bar\"",
        ),
        (
            json!({"SecurityOpt": ["no-new-privileges=maybe"]}),
            "invalid --security-opt 2: \"no-new-privileges=maybe\"",
        ),
        (
            json!({"CapAdd": ["FOO"]}),
            "invalid CapAdd: unknown capability: \"CAP_FOO\"",
        ),
        (
            json!({"CapDrop": ["bar"]}),
            "invalid CapDrop: unknown capability: \"CAP_BAR\"",
        ),
        (
            json!({"CapAdd": ["CAP_ALL"]}),
            "invalid CapAdd: unknown capability: \"CAP_ALL\"",
        ),
    ];
    for (hc, want) in cases {
        let (status, v) = create(
            &d,
            json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": hc}),
        );
        assert_eq!(
            (status, v["message"].as_str().unwrap_or_default()),
            (400, *want),
            "{hc}"
        );
    }
    for opts in [
        json!(["label=disable"]),
        json!(["label:disable"]),
        json!(["disable"]),
        json!(["apparmor=unconfined"]),
    ] {
        let out = run_api(&d, json!({"SecurityOpt": opts}), "echo ran");
        assert_eq!(out, "ran\n", "{opts}");
    }
    let (_, _, info) = d.request("GET", "/v1.45/info", None);
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(
        info["SecurityOptions"],
        json!(["name=seccomp,profile=builtin", "name=cgroupns"])
    );
}

#[test]
fn daemon_json_sets_no_new_privileges_and_the_seccomp_profile() {
    let conf = tempfile::tempdir().unwrap();
    let profile = conf.path().join("profile.json");
    std::fs::write(&profile, PROFILE_NO_MKDIR).unwrap();
    let file = conf.path().join("daemon.json");
    std::fs::write(
        &file,
        json!({"no-new-privileges": true, "seccomp-profile": profile}).to_string(),
    )
    .unwrap();
    let d = TestDaemon::start_with_args(&["--config-file", file.to_str().unwrap()]);
    d.import_busybox();
    let out = run_api(
        &d,
        json!({}),
        "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mkdir /tmp/x 2>&1",
    );
    assert_eq!(
        out,
        "NoNewPrivs:\t1\nSeccomp:\t2\nmkdir: can't create directory '/tmp/x': Permission denied\n"
    );
    let out = run_api(
        &d,
        json!({"SecurityOpt": ["no-new-privileges=false", "seccomp=unconfined"]}),
        "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
    );
    assert_eq!(out, "NoNewPrivs:\t0\nSeccomp:\t0\n");
    let (_, _, info) = d.request("GET", "/v1.45/info", None);
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(
        info["SecurityOptions"][0],
        format!("name=seccomp,profile={}", profile.display())
    );
}

// ------------------------------------------------------------------ sealed binary

/// For argv[1] seconds: holds (O_PATH) the exe of every process of this pid namespace
/// that is neither busybox nor this probe, and keeps reopening each for writing, writing
/// its first byte back unchanged (so even a success changes no content). Prints
/// `reached=N refused=N written=N`.
const EXE_WRITER: &str = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int secs = argc > 1 ? atoi(argv[1]) : 5;
    struct stat self, bb;
    stat("/proc/self/exe", &self);
    stat("/bin/busybox", &bb);
    int held[256], nheld = 0;
    dev_t devs[256]; ino_t inos[256];
    long refused = 0, written = 0;
    time_t end = time(NULL) + secs;
    while (time(NULL) < end) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d)) && nheld < 256) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == getpid()) continue;
            char p[64];
            snprintf(p, sizeof p, "/proc/%d/exe", pid);
            int fd = open(p, O_PATH | O_CLOEXEC);
            if (fd < 0) continue;
            struct stat st;
            int known = fstat(fd, &st) != 0
                || (st.st_dev == self.st_dev && st.st_ino == self.st_ino)
                || (st.st_dev == bb.st_dev && st.st_ino == bb.st_ino);
            for (int i = 0; i < nheld && !known; i++)
                known = devs[i] == st.st_dev && inos[i] == st.st_ino;
            if (known) { close(fd); continue; }
            devs[nheld] = st.st_dev; inos[nheld] = st.st_ino; held[nheld++] = fd;
        }
        if (d) closedir(d);
        for (int i = 0; i < nheld; i++) {
            char q[64];
            snprintf(q, sizeof q, "/proc/self/fd/%d", held[i]);
            int w = open(q, O_RDWR | O_CLOEXEC);
            unsigned char b;
            if (w >= 0 && pread(w, &b, 1, 0) == 1 && pwrite(w, &b, 1, 0) == 1) written++;
            else refused++;
            if (w >= 0) close(w);
        }
        usleep(2000);
    }
    printf("reached=%d refused=%ld written=%ld\n", nheld, refused, written);
    return 0;
}
"#;

fn sha256_of(path: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The exe of a Berth process refuses writes: it is not the host's file, and writing its
/// first byte back (no content change even if it went through) fails.
fn assert_sealed(pid: i32, what: &str) {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let exe = format!("/proc/{pid}/exe");
    let md = std::fs::metadata(&exe).unwrap_or_else(|e| panic!("{what} {pid}: {e}"));
    let host = std::fs::metadata(BERTH).unwrap();
    assert_ne!(
        (md.dev(), md.ino()),
        (host.dev(), host.ino()),
        "{what} {pid} runs the host's berth file"
    );
    if let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&exe)
    {
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, 0).unwrap();
        assert!(
            f.write_all_at(&b, 0).is_err(),
            "{what} {pid}: a write to its exe went through"
        );
    }
}

/// `berth <role>` children of this test's daemon (shims and exec helpers).
fn berth_pids(d: &TestDaemon, role: &str) -> Vec<i32> {
    let daemon = d.daemon_pid().expect("daemon pid") as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit(") ")
                .next()
                .and_then(|r| r.split(' ').nth(1)?.parse::<i32>().ok());
            ppid == Some(daemon) && cmd.starts_with(format!("berth\0{role}\0").as_bytes())
        })
        .collect()
}

#[test]
fn berth_processes_in_container_namespaces_run_a_sealed_binary() {
    let before = sha256_of(BERTH);
    let d = daemon();
    let dir = d.dir.join("probe");
    build_probe(&dir, "exewriter", EXE_WRITER);
    let bind = format!("{}:/probe:ro", dir.display());
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "sealed",
        "--cap-add",
        "SYS_PTRACE",
        "-v",
        &bind,
        "busybox",
        "sleep",
        "1000",
    ]);

    // From the host: the shim (whose clone is the init) and an exec helper that stays in
    // the container's namespaces while its process runs.
    d.berth_ok(&["exec", "-d", "sealed", "sleep", "300"]);
    assert!(
        wait_until(Duration::from_secs(10), || !berth_pids(&d, "exec-helper")
            .is_empty()),
        "no exec helper"
    );
    let shims = berth_pids(&d, "shim");
    assert!(!shims.is_empty(), "no shim");
    for pid in shims {
        assert_sealed(pid, "shim");
    }
    for pid in berth_pids(&d, "exec-helper") {
        assert_sealed(pid, "exec helper");
    }

    // From inside, with CAP_SYS_PTRACE, CVE-2019-5736's way: a command whose interpreter
    // is /proc/self/exe makes an exec run Berth's binary inside the container, where a
    // process holds its exe and writes to it once it is gone.
    d.berth_ok(&[
        "exec",
        "sealed",
        "sh",
        "-c",
        "printf '#!/proc/self/exe exec-helper\\n' > /trap && chmod +x /trap",
    ]);
    d.berth_ok(&[
        "exec",
        "-d",
        "sealed",
        "sh",
        "-c",
        "/probe/exewriter 6 > /tmp/report",
    ]);
    for _ in 0..15 {
        let _ = d.berth(&["exec", "sealed", "/trap"]);
    }
    let mut report = String::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            report = d
                .berth(&["exec", "sealed", "cat", "/tmp/report"])
                .stdout
                .iter()
                .map(|&b| b as char)
                .collect();
            report.contains("written=")
        }),
        "the probe wrote no report"
    );
    eprintln!("in-container probe: {report}");
    assert!(report.trim_end().ends_with("written=0"), "{report}");
    assert_eq!(sha256_of(BERTH), before, "the host's berth binary changed");
}

#[test]
fn the_berth_cli_reads_security_opt_and_sysctl_as_the_docker_cli() {
    let d = daemon();
    let profile = d.dir.join("no-mkdir.json");
    std::fs::write(&profile, format!("{PROFILE_NO_MKDIR}\n")).unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = d.berth(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "mkdir",
        "/tmp/x",
    ]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        "--sysctl",
        "net.core.somaxconn=321",
        "busybox",
        "sh",
        "-c",
        "grep '^NoNewPrivs:' /proc/self/status; cat /proc/sys/net/core/somaxconn",
    ]);
    assert_eq!(out, "NoNewPrivs:\t1\n321\n");
    let out = d.berth(&[
        "run",
        "--rm",
        "--sysctl",
        "vm.swappiness=61",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("invalid argument \"vm.swappiness=61\" for \"--sysctl\" flag: sysctl 'vm.swappiness=61' is not allowed"),
        "{}",
        stderr(&out)
    );
    let out = d.berth(&["run", "--rm", "--security-opt", "foo", "busybox", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("Invalid --security-opt: \"foo\""),
        "{}",
        stderr(&out)
    );
}
