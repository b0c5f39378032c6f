//! End-to-end tests of `berth shim` and `berth exec-helper` against a busybox rootfs.
//! Needs root (namespaces, mounts, cgroups) and Debian's busybox-static.

use berth_runtime::protocol::{ExitStatus, StartReply};
use berth_runtime::{ContainerSpec, ExecSpec, MountSpec, ProcessSpec, Resources};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// A one-layer busybox image: /bin/busybox with its applet links, passwd and group.
fn build_lower(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for d in ["etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").unwrap();
}

struct Container {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    state: PathBuf,
    spec: ContainerSpec,
    shim: std::cell::RefCell<Option<std::process::Child>>,
}

impl Container {
    fn new(name: &str, args: &[&str]) -> Container {
        let tmp = tempfile::Builder::new()
            .prefix("berth-rt-")
            .tempdir_in("/tmp")
            .unwrap();
        // A state dir deeper than a sockaddr_un can name, as in the daemon's tests.
        let base = tmp
            .path()
            .join("a-rather-long-directory-name-like-the-exec-root-of-a-test-daemon-0123456789");
        build_lower(&base.join("lower"));
        for d in ["upper", "work", "rootfs", "state"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        let id = format!("{name}-{}", std::process::id());
        let spec = ContainerSpec {
            id: id.clone(),
            lower_dirs: vec![base.join("lower")],
            upper_dir: base.join("upper"),
            work_dir: base.join("work"),
            rootfs: base.join("rootfs"),
            hostname: "c0ffee123456".into(),
            log_path: base.join("state").join(format!("{id}-json.log")),
            process: ProcessSpec {
                args: args.iter().map(|s| s.to_string()).collect(),
                env: vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                    "HOSTNAME=c0ffee123456".into(),
                ],
                cwd: "/".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        Container {
            state: base.join("state"),
            base,
            _tmp: tmp,
            spec,
            shim: Default::default(),
        }
    }

    /// Runs `berth shim` and returns its start-up line.
    fn create(&self) -> String {
        std::fs::write(
            self.state.join("spec.json"),
            serde_json::to_vec(&self.spec).unwrap(),
        )
        .unwrap();
        let mut child = Command::new(BERTH)
            .arg("shim")
            .arg(&self.state)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        // The shim keeps running after its start-up line; we reap it in `assert_gone`.
        *self.shim.borrow_mut() = Some(child);
        out.trim_end().to_string()
    }

    fn connect(&self, request: &str) -> UnixStream {
        let s = berth_runtime::protocol::connect(&self.state).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        (&s).write_all(format!("{request}\n").as_bytes()).unwrap();
        s
    }

    fn start(&self) -> StartReply {
        let s = self.connect(r#"{"op":"start"}"#);
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    fn wait_conn(&self) -> UnixStream {
        self.connect(r#"{"op":"wait"}"#)
    }

    fn pid_file(&self, name: &str) -> i32 {
        std::fs::read_to_string(self.state.join(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.state.join("cgroups.json")).unwrap())
                .unwrap();
        let mut dirs: Vec<PathBuf> = v["v1"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| PathBuf::from(p.as_str().unwrap()))
            .collect();
        if let Some(u) = v["unified"].as_str() {
            dirs.push(u.into());
        }
        dirs
    }

    /// Nothing of the container is left: no mount under its dir, no cgroup, no process.
    fn assert_gone(&self, pids: &[i32], cgroups: &[PathBuf]) {
        // The shim is our child: reap it (it exits right after answering `wait`).
        if let Some(mut child) = self.shim.borrow_mut().take() {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() {
                assert!(std::time::Instant::now() < deadline, "shim did not exit");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        assert!(
            !mounts.contains(self.base.to_str().unwrap()),
            "mount left behind:\n{mounts}"
        );
        for d in cgroups {
            assert!(!d.exists(), "cgroup {} left behind", d.display());
        }
        for pid in pids {
            // Processes that are not our children (the init, a shim whose parent died)
            // may still be finishing up: give them a moment.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            // SAFETY: kill with signal 0 only checks that the pid exists.
            while unsafe { libc::kill(*pid, 0) } == 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            // SAFETY: as above, a liveness check.
            let alive = unsafe { libc::kill(*pid, 0) } == 0;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            assert!(!alive, "process {pid} left behind: {stat}");
        }
        assert!(!self.state.join("shim.sock").exists());
    }
}

fn read_wait(s: UnixStream) -> ExitStatus {
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad wait answer {line:?}: {e}"))
}

/// Reads Docker-framed output until the shim closes the connection.
fn read_frames(mut s: UnixStream) -> Vec<(u8, Vec<u8>)> {
    let mut data = Vec::new();
    s.read_to_end(&mut data).unwrap();
    let mut out = Vec::new();
    let mut rest = &data[..];
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        out.push((rest[0], rest[8..8 + len].to_vec()));
        rest = &rest[8 + len..];
    }
    assert!(rest.is_empty(), "trailing partial frame");
    out
}

fn stream_text(frames: &[(u8, Vec<u8>)], stream: u8) -> String {
    frames
        .iter()
        .filter(|f| f.0 == stream)
        .map(|f| String::from_utf8_lossy(&f.1).into_owned())
        .collect()
}

#[test]
fn runs_logs_attaches_and_cleans_up() {
    let script = "echo out1; echo err1 >&2; hostname; echo pid=$$; grep CapEff /proc/self/status; \
        (touch /sys/x 2>/dev/null && echo sys-rw) || echo sys-ro; echo data > /newfile; \
        cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; exit 3";
    let mut c = Container::new("basic", &["sh", "-c", script]);
    c.spec.resources = Resources {
        memory: 64 << 20,
        nano_cpus: 1_500_000_000,
        pids_limit: Some(100),
        ..Default::default()
    };
    let line = c.create();
    assert!(line.starts_with("ok "), "start-up line: {line}");
    let init_pid: i32 = line[3..].parse().unwrap();
    assert_eq!(c.pid_file("init.pid"), init_pid);
    let shim_pid = c.pid_file("shim.pid");
    let cgroups = c.cgroup_dirs();

    // The memory limit is in the container's cgroup before it starts.
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.state.join("cgroups.json")).unwrap()).unwrap();
    let limit = match v["v1"]["memory"].as_str() {
        Some(dir) => std::fs::read_to_string(Path::new(dir).join("memory.limit_in_bytes")).unwrap(),
        None => {
            std::fs::read_to_string(Path::new(v["unified"].as_str().unwrap()).join("memory.max"))
                .unwrap()
        }
    };
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    let read = |ctrl: &str, file: &str| {
        let dir = v["v1"][ctrl].as_str().or(v["unified"].as_str()).unwrap();
        std::fs::read_to_string(Path::new(dir).join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    if v["v1"]["cpu"].is_string() {
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "150000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
    } else {
        assert_eq!(read("cpu", "cpu.max"), "150000 100000");
    }
    assert_eq!(read("pids", "pids.max"), "100");

    let attach = c.connect(r#"{"op":"attach","stdin":false,"stdout":true,"stderr":true}"#);
    let wait = c.wait_conn();
    std::thread::sleep(Duration::from_millis(50));
    let reply = c.start();
    assert_eq!(reply.error, "");
    let status = read_wait(wait);
    assert_eq!(status.exit_code, 3);
    assert!(!status.oom_killed);
    assert!(
        status.finished_at.ends_with('Z') && status.finished_at.len() == 30,
        "{}",
        status.finished_at
    );

    let frames = read_frames(attach);
    let out = stream_text(&frames, 1);
    let err = stream_text(&frames, 2);
    assert_eq!(err, "err1\n");
    assert!(
        out.starts_with("out1\nc0ffee123456\npid=1\nCapEff:\t00000000a80425fb\nsys-ro\n"),
        "stdout: {out:?}"
    );
    assert!(
        out.contains(&(64u64 << 20).to_string()),
        "container sees its memory limit: {out:?}"
    );

    // json-file log in Docker's format.
    let log = std::fs::read_to_string(&c.spec.log_path).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "out1\n");
    assert_eq!(first["stream"], "stdout");
    assert!(
        log.lines()
            .any(|l| l.starts_with(r#"{"log":"err1\n","stream":"stderr","time":""#)),
        "{log}"
    );
    let keys: Vec<&str> = log
        .lines()
        .next()
        .unwrap()
        .split('"')
        .skip(1)
        .step_by(2)
        .take(1)
        .collect();
    assert_eq!(keys, vec!["log"]);

    // The write landed in the container's layer, not in the image.
    assert_eq!(
        std::fs::read_to_string(c.base.join("upper/newfile")).unwrap(),
        "data\n"
    );
    assert!(!c.base.join("lower/newfile").exists());

    let exit: ExitStatus =
        serde_json::from_slice(&std::fs::read(c.state.join("exit.json")).unwrap()).unwrap();
    assert_eq!(exit, status);
    c.assert_gone(&[init_pid, shim_pid], &cgroups);
}

fn exec_helper(spec: &ExecSpec) -> (i32, String, String) {
    use std::os::fd::AsRawFd;
    let (status_r, status_w) = nix::unistd::pipe().unwrap();
    let fd = status_w.as_raw_fd();
    let mut cmd = Command::new(BERTH);
    cmd.arg("exec-helper")
        .arg(serde_json::to_string(spec).unwrap())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the pre_exec closure only calls dup2 and fcntl, which are async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(status_w);
    let out = child.wait_with_output().unwrap();
    let mut status = String::new();
    std::fs::File::from(status_r)
        .read_to_string(&mut status)
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        status,
    )
}

#[test]
fn exec_signal_and_missing_command() {
    let c = Container::new("exec", &["sleep", "30"]);
    let line = c.create();
    assert!(line.starts_with("ok "), "{line}");
    let init_pid: i32 = line[3..].parse().unwrap();
    let shim_pid = c.pid_file("shim.pid");
    let cgroups = c.cgroup_dirs();
    assert_eq!(c.start().error, "");
    // The rootfs and every container mount live only in the container's namespace.
    let host_mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !host_mounts.contains(c.base.to_str().unwrap()),
        "{host_mounts}"
    );

    let spec = |args: &[&str], user: &str| ExecSpec {
        init_pid,
        process: ProcessSpec {
            args: args.iter().map(|s| s.to_string()).collect(),
            cwd: "/".into(),
            user: user.into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let (code, out, status) = exec_helper(&spec(
        &["sh", "-c", "hostname; id -u; cat /proc/1/cmdline; exit 7"],
        "nobody",
    ));
    assert_eq!(code, 7, "status: {status}");
    assert_eq!(out, concat!("c0ffee123456\n65534\nsleep\0", "30\0"));
    assert!(status.starts_with("{\"pid\":"), "{status}");
    // The exec'd process runs in the container's cgroups (the root of its cgroup ns).
    let (code, out, status) = exec_helper(&spec(&["cat", "/proc/self/cgroup"], ""));
    assert_eq!(code, 0, "{status}");
    assert!(out.lines().any(|l| l == "0::/"), "{out}");
    assert!(
        out.lines()
            .filter(|l| !l.contains("name="))
            .all(|l| l.ends_with(":/")),
        "{out}"
    );

    // pause/unpause and top, as the daemon calls them.
    assert_eq!(
        berth_runtime::cgroup::pids(&c.state).unwrap(),
        vec![init_pid]
    );
    berth_runtime::cgroup::set_frozen(&c.state, true).unwrap();
    let frozen = |dir: &PathBuf| {
        std::fs::read_to_string(dir.join("freezer.state"))
            .or_else(|_| std::fs::read_to_string(dir.join("cgroup.events")))
            .unwrap_or_default()
    };
    assert!(cgroups
        .iter()
        .map(frozen)
        .any(|s| s.contains("FROZEN") || s.contains("frozen 1")));
    berth_runtime::cgroup::set_frozen(&c.state, false).unwrap();
    assert!(!cgroups
        .iter()
        .map(frozen)
        .any(|s| s.contains("FROZEN") || s.contains("frozen 1")));
    let (code, _, status) = exec_helper(&spec(&["nosuch"], ""));
    assert_eq!(code, 127);
    assert_eq!(
        status.trim(),
        r#"{"error":"exec: \"nosuch\": executable file not found in $PATH","exit_code":127}"#
    );

    let wait = c.wait_conn();
    let s = c.connect(r#"{"op":"signal","signal":9}"#);
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).unwrap();
    assert!(reply.contains("\"ok\":true"), "{reply}");
    assert_eq!(read_wait(wait).exit_code, 137);
    c.assert_gone(&[init_pid, shim_pid], &cgroups);
}

#[test]
fn missing_command_gives_dockers_127() {
    let c = Container::new("nocmd", &["nosuch"]);
    let line = c.create();
    assert!(line.starts_with("ok "), "{line}");
    let init_pid: i32 = line[3..].parse().unwrap();
    let cgroups = c.cgroup_dirs();
    let wait = c.wait_conn();
    let reply = c.start();
    assert_eq!(
        reply.error,
        r#"exec: "nosuch": executable file not found in $PATH"#
    );
    assert_eq!(reply.exit_code, 127);
    let status = read_wait(wait);
    assert_eq!(status.exit_code, 127);
    assert_eq!(status.error, reply.error);
    c.assert_gone(&[init_pid, c.pid_file("shim.pid")], &cgroups);
}

#[test]
fn failed_setup_leaves_nothing() {
    let mut c = Container::new("badmount", &["true"]);
    c.spec.mounts.push(MountSpec {
        destination: "/data".into(),
        kind: "bind".into(),
        source: c.base.join("does-not-exist"),
        options: vec!["rbind".into()],
        ..Default::default()
    });
    let line = c.create();
    assert!(line.starts_with("error "), "{line}");
    assert!(
        line.contains("/data") && line.contains("does-not-exist"),
        "diagnostic names the mount: {line}"
    );
    assert!(!c.state.join("cgroups.json").exists());
    assert!(!c.state.join("shim.sock").exists());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(c.base.to_str().unwrap()));
    let leftover = Command::new("sh")
        .arg("-c")
        .arg(format!("ls -d /sys/fs/cgroup/*/berth/{id} /sys/fs/cgroup/*/*/*/berth/{id} /sys/fs/cgroup/*/*/berth/{id} 2>/dev/null", id = c.spec.id))
        .output()
        .unwrap();
    assert!(
        leftover.stdout.is_empty(),
        "cgroups left: {}",
        String::from_utf8_lossy(&leftover.stdout)
    );
}

#[test]
fn tty_in_the_containers_devpts_with_resize() {
    let mut c = Container::new("tty", &["sh", "-c", "stty size; tty; ls /dev/console"]);
    c.spec.process.tty = true;
    c.spec.process.console_size = Some((40, 100));
    let line = c.create();
    assert!(line.starts_with("ok "), "{line}");
    let init_pid: i32 = line[3..].parse().unwrap();
    let cgroups = c.cgroup_dirs();
    let attach = c.connect(r#"{"op":"attach","stdin":false,"stdout":true,"stderr":true}"#);
    let mut reply = String::new();
    BufReader::new(c.connect(r#"{"op":"resize","height":50,"width":120}"#))
        .read_line(&mut reply)
        .unwrap();
    assert!(reply.contains("\"ok\":true"), "{reply}");
    let wait = c.wait_conn();
    assert_eq!(c.start().error, "");
    assert_eq!(read_wait(wait).exit_code, 0);
    let frames = read_frames(attach);
    assert!(frames.iter().all(|f| f.0 == 1));
    assert_eq!(
        stream_text(&frames, 1),
        "50 120\r\n/dev/pts/0\r\n/dev/console\r\n"
    );
    c.assert_gone(&[init_pid, c.pid_file("shim.pid")], &cgroups);
}

#[test]
fn user_mounts_and_readonly_rootfs() {
    let script = "id; (touch /x 2>/dev/null && echo root-rw) || echo root-ro; cat /etc/extra; \
        echo t > /scratch/t && echo tmpfs-rw; (echo v 2>/dev/null > /vol/v && echo vol-rw) || echo vol-ro; \
        cat /proc/sys/net/ipv4/ip_unprivileged_port_start; pwd";
    let mut c = Container::new("opts", &["sh", "-c", script]);
    let extra = c.base.join("extra.txt");
    std::fs::write(&extra, "extra file\n").unwrap();
    std::fs::create_dir(c.base.join("vol")).unwrap();
    c.spec.readonly_rootfs = true;
    c.spec.process.user = "nobody".into();
    c.spec.process.cwd = "/work/dir".into();
    c.spec.mounts = vec![
        MountSpec {
            destination: "/etc/extra".into(),
            kind: "bind".into(),
            source: extra,
            options: vec!["rbind".into(), "ro".into()],
            ..Default::default()
        },
        MountSpec {
            destination: "/scratch".into(),
            kind: "tmpfs".into(),
            source: PathBuf::new(),
            options: vec!["mode=1777".into(), "size=1m".into()],
            ..Default::default()
        },
        MountSpec {
            destination: "/vol".into(),
            kind: "bind".into(),
            source: c.base.join("vol"),
            options: vec!["ro".into()],
            ..Default::default()
        },
    ];
    let line = c.create();
    assert!(line.starts_with("ok "), "{line}");
    let init_pid: i32 = line[3..].parse().unwrap();
    let cgroups = c.cgroup_dirs();
    let attach = c.connect(r#"{"op":"attach","stdin":false,"stdout":true,"stderr":true}"#);
    let wait = c.wait_conn();
    assert_eq!(c.start().error, "");
    assert_eq!(read_wait(wait).exit_code, 0);
    let frames = read_frames(attach);
    assert_eq!(stream_text(&frames, 2), "");
    assert_eq!(
        stream_text(&frames, 1),
        "uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)\nroot-ro\nextra file\ntmpfs-rw\nvol-ro\n0\n/work/dir\n"
    );
    assert!(!c.base.join("vol/v").exists());
    c.assert_gone(&[init_pid, c.pid_file("shim.pid")], &cgroups);
}

#[test]
fn oom_kill_is_reported() {
    let mut c = Container::new(
        "oom",
        &[
            "sh",
            "-c",
            "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
        ],
    );
    c.spec.resources = Resources {
        memory: 8 << 20,
        ..Default::default()
    };
    let line = c.create();
    assert!(line.starts_with("ok "), "{line}");
    let init_pid: i32 = line[3..].parse().unwrap();
    let cgroups = c.cgroup_dirs();
    let wait = c.wait_conn();
    assert_eq!(c.start().error, "");
    let status = read_wait(wait);
    assert!(status.oom_killed, "{status:?}");
    assert_eq!(status.exit_code, 137);
    c.assert_gone(&[init_pid, c.pid_file("shim.pid")], &cgroups);
}

/// Runs a container to completion and returns (exit code, stdout, stderr).
fn run_to_end(c: &Container) -> (i64, String, String) {
    let line = c.create();
    assert!(line.starts_with("ok "), "{line}");
    let init_pid: i32 = line[3..].parse().unwrap();
    let cgroups = c.cgroup_dirs();
    let attach = c.connect(r#"{"op":"attach","stdin":false,"stdout":true,"stderr":true}"#);
    let wait = c.wait_conn();
    assert_eq!(c.start().error, "");
    let code = read_wait(wait).exit_code;
    let frames = read_frames(attach);
    c.assert_gone(&[init_pid, c.pid_file("shim.pid")], &cgroups);
    (code, stream_text(&frames, 1), stream_text(&frames, 2))
}

#[test]
fn masked_and_read_only_proc_paths_unless_privileged() {
    let script = "wc -c < /proc/timer_list; (echo 1 2>/dev/null > /proc/sysrq-trigger && echo sysrq-rw) || echo sysrq-ro; \
        (echo 1 2>/dev/null > /proc/sys/kernel/ns_last_pid && echo sys-rw) || echo sys-ro; ls /sys/firmware | wc -l; \
        grep CapEff /proc/self/status";
    let c = Container::new("masked", &["sh", "-c", script]);
    let (code, out, _) = run_to_end(&c);
    assert_eq!(code, 0);
    assert_eq!(out, "0\nsysrq-ro\nsys-ro\n0\nCapEff:\t00000000a80425fb\n");

    let mut c = Container::new(
        "priv",
        &[
            "sh",
            "-c",
            "wc -c < /proc/timer_list; grep CapEff /proc/self/status",
        ],
    );
    c.spec.privileged = true;
    let (code, out, _) = run_to_end(&c);
    assert_eq!(code, 0);
    let mut lines = out.lines();
    assert_ne!(lines.next(), Some("0"), "{out}");
    let host_bnd = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bnd = host_bnd
        .lines()
        .find(|l| l.starts_with("CapBnd"))
        .unwrap()
        .split('\t')
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(lines.next().unwrap(), format!("CapEff:\t{host_bnd}"));
}

#[test]
fn container_outlives_a_killed_parent() {
    let c = Container::new(
        "orphan",
        &["sh", "-c", "read x < /dev/null; sleep 1; exit 4"],
    );
    std::fs::write(
        c.state.join("spec.json"),
        serde_json::to_vec(&c.spec).unwrap(),
    )
    .unwrap();
    // A stand-in for the daemon: starts the shim, then dies by SIGKILL.
    let startup = c.base.join("startup");
    let mut daemon = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{BERTH} shim {} > {} & exec sleep 60",
            c.state.display(),
            startup.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&startup)
        .unwrap_or_default()
        .ends_with('\n')
    {
        assert!(std::time::Instant::now() < deadline, "no start-up line");
        std::thread::sleep(Duration::from_millis(10));
    }
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let line = std::fs::read_to_string(&startup).unwrap();
    assert!(line.starts_with("ok "), "{line}");
    let init_pid: i32 = line.trim()[3..].parse().unwrap();
    let cgroups = c.cgroup_dirs();
    let wait = c.wait_conn();
    assert_eq!(c.start().error, "");
    assert_eq!(read_wait(wait).exit_code, 4);
    c.assert_gone(&[init_pid, c.pid_file("shim.pid")], &cgroups);
}

/// Reads one `watch` line.
fn next_event(r: &mut BufReader<UnixStream>) -> berth_runtime::protocol::ShimEvent {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad watch line {line:?}: {e}"))
}

#[test]
fn the_shim_applies_the_restart_policy_and_reports_each_step() {
    let mut c = Container::new("restart", &["sh", "-c", "echo run; exit 3"]);
    c.spec.restart = berth_runtime::restart::RestartPolicy {
        name: "on-failure".into(),
        maximum_retry_count: 2,
    };
    let line = c.create();
    assert!(line.starts_with("ok "), "{line}");
    let first_pid: i32 = line[3..].parse().unwrap();
    // Each run has the same cgroup paths (made again for each).
    let cgroups = c.cgroup_dirs();
    let wait = c.wait_conn();
    let mut watch = BufReader::new(c.connect(r#"{"op":"watch"}"#));
    let ev = next_event(&mut watch);
    assert_eq!(
        (ev.kind.as_str(), ev.running, ev.restarting),
        ("state", false, false)
    );
    assert_eq!(c.start().error, "");
    let mut pids = vec![first_pid];
    for n in 1..=2 {
        let ev = next_event(&mut watch);
        assert_eq!(
            (ev.kind.as_str(), ev.restarting, ev.restart_count),
            ("exit", true, n),
            "{ev:?}"
        );
        assert_eq!(ev.exit.as_ref().map(|e| e.exit_code), Some(3));
        let ev = next_event(&mut watch);
        assert_eq!(
            (ev.kind.as_str(), ev.running, ev.restart_count),
            ("start", true, n),
            "{ev:?}"
        );
        assert!(ev.pid > 0 && !pids.contains(&(ev.pid as i32)));
        pids.push(ev.pid as i32);
    }
    let ev = next_event(&mut watch);
    assert_eq!(
        (ev.kind.as_str(), ev.restarting, ev.restart_count),
        ("exit", false, 2),
        "{ev:?}"
    );
    // `wait` answers once, at the end.
    let status = read_wait(wait);
    assert_eq!((status.exit_code, status.restart_count), (3, 2));
    let log = std::fs::read_to_string(&c.spec.log_path).unwrap();
    assert_eq!(log.matches("run").count(), 3, "{log}");
    pids.push(c.pid_file("shim.pid"));
    c.assert_gone(&pids, &cgroups);
}

#[test]
fn a_user_stop_ends_the_policy() {
    let mut c = Container::new("stopped", &["sleep", "1000"]);
    c.spec.restart = berth_runtime::restart::RestartPolicy {
        name: "always".into(),
        maximum_retry_count: 0,
    };
    let line = c.create();
    assert!(line.starts_with("ok "), "{line}");
    let first_pid: i32 = line[3..].parse().unwrap();
    let cgroups = c.cgroup_dirs();
    let mut watch = BufReader::new(c.connect(r#"{"op":"watch"}"#));
    next_event(&mut watch);
    assert_eq!(c.start().error, "");
    // A crash: restarted.
    // SAFETY: kill takes integers.
    unsafe { libc::kill(first_pid, libc::SIGKILL) };
    let ev = next_event(&mut watch);
    assert_eq!((ev.kind.as_str(), ev.restarting), ("exit", true));
    assert_eq!(ev.exit.as_ref().map(|e| e.exit_code), Some(137));
    let ev = next_event(&mut watch);
    assert_eq!(ev.kind, "start");
    let second_pid = ev.pid as i32;
    // The user's stop (`kill`: SIGKILL, as the init ignores SIGTERM) with cancel_restart,
    // and no restart after it.
    let s = c.connect(r#"{"op":"signal","signal":9,"manual":true,"cancel_restart":true}"#);
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).unwrap();
    assert!(answer.contains("\"ok\":true"), "{answer}");
    let ev = next_event(&mut watch);
    assert_eq!(
        (ev.kind.as_str(), ev.restarting, ev.restart_count),
        ("exit", false, 1),
        "{ev:?}"
    );
    assert_eq!(ev.exit.as_ref().map(|e| e.exit_code), Some(137));
    c.assert_gone(&[first_pid, second_pid, c.pid_file("shim.pid")], &cgroups);
}

/// A CRI pod sandbox at the runtime's level: the pause runs with no image (an empty
/// rootfs), as PID 1 named `pause`; a second container joins its UTS namespace
/// (`uts_join`) and sees its hostname; SIGTERM ends the pause with 0.
#[test]
fn a_pause_holds_the_hostname_another_container_joins() {
    let mut pause = Container::new("pause", &["/pause"]);
    pause.spec.pause = true;
    pause.spec.lower_dirs.clear();
    pause.spec.hostname = "podhost".into();
    let line = pause.create();
    assert!(line.starts_with("ok "), "{line}");
    let pid: i32 = line[3..].parse().unwrap();
    let cgroups = pause.cgroup_dirs();
    let wait = pause.wait_conn();
    assert_eq!(pause.start().error, "");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "pause");

    let mut member = Container::new("member", &["hostname"]);
    member.spec.hostname = "ignored".into();
    member.spec.namespaces.uts_join = Some(format!("/proc/{pid}/ns/uts").into());
    let (code, out, err) = run_to_end(&member);
    assert_eq!((code, out.as_str()), (0, "podhost\n"), "{err}");

    // SAFETY: kill with a pid read from the shim and a valid signal.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(read_wait(wait).exit_code, 0);
    pause.assert_gone(&[pid, pause.pid_file("shim.pid")], &cgroups);
}

/// `berth pod-pause` (hidden): the same pause as a plain process; SIGINT ends it with 0.
#[test]
fn the_pause_subcommand_sleeps_until_told() {
    let mut child = Command::new(BERTH)
        .arg("pod-pause")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the pause exited by itself"
    );
    // SAFETY: kill with our child's pid and a valid signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
