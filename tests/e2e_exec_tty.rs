//! `exec` with a TTY, end to end: `POST /exec/{id}/start` with `Tty: true` (raw output on
//! a pty from the container's devpts, stdin, exit code, detach), `POST /exec/{id}/resize`,
//! `berth exec -t` / `-it` in a real terminal, and that nothing is left behind.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running busybox container (`sleep 1000`): (its full ID, its init's host pid).
fn container(d: &TestDaemon) -> (String, i64) {
    d.import_busybox();
    let id = d.run_detached(&["busybox", "sleep", "1000"]);
    let pid = d.inspect(&id)["State"]["Pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "no init pid");
    (id, pid)
}

fn exec_create(d: &TestDaemon, id: &str, body: serde_json::Value) -> String {
    let (status, _, out) = d.request(
        "POST",
        &format!("/v1.45/containers/{id}/exec"),
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(
        status,
        201,
        "exec create: {}",
        String::from_utf8_lossy(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out).expect("exec create JSON");
    v["Id"].as_str().expect("Id").to_string()
}

fn exec_inspect(d: &TestDaemon, exec: &str) -> serde_json::Value {
    let (status, _, out) = d.request("GET", &format!("/v1.45/exec/{exec}/json"), None);
    assert_eq!(
        status,
        200,
        "exec inspect: {}",
        String::from_utf8_lossy(&out)
    );
    serde_json::from_slice(&out).expect("exec inspect JSON")
}

/// Waits until the exec is no longer running; returns its inspect.
fn exec_finished(d: &TestDaemon, exec: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let done = wait_until(Duration::from_secs(20), || {
        last = exec_inspect(d, exec);
        last["Running"] == false && !last["ExitCode"].is_null()
    });
    assert!(done, "exec still running: {last}");
    last
}

/// `POST /exec/{id}/start` hijacked (Upgrade: tcp) with `Tty: true`: the stream after
/// the 101 headers.
fn start_hijacked(d: &TestDaemon, exec: &str) -> (UnixStream, Vec<u8>) {
    start_hijacked_with(d, exec, true)
}

fn start_hijacked_with(d: &TestDaemon, exec: &str, tty: bool) -> (UnixStream, Vec<u8>) {
    start_hijacked_body(d, exec, tty, &format!(r#"{{"Detach":false,"Tty":{tty}}}"#))
}

fn start_hijacked_body(d: &TestDaemon, exec: &str, tty: bool, body: &str) -> (UnixStream, Vec<u8>) {
    let mut s = UnixStream::connect(&d.sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let body = body.as_bytes();
    let req = format!(
        "POST /v1.45/exec/{exec}/start HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).expect("read headers");
        assert!(
            n == 1,
            "EOF in the headers: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_lowercase();
    assert!(text.starts_with("http/1.1 101"), "headers: {text}");
    let media = if tty {
        "raw-stream"
    } else {
        "multiplexed-stream"
    };
    assert!(text.contains(media), "expected {media}: {text}");
    (s, head)
}

/// Reads until EOF (or the time limit; then fails with what came).
fn read_all(s: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read: {e}; so far: {:?}", String::from_utf8_lossy(&out)),
        }
    }
}

/// Reads until `needle` shows up.
fn read_until(s: &mut UnixStream, needle: &str) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains(needle) {
        match s.read(&mut buf) {
            Ok(0) => panic!("EOF before {needle:?}: {:?}", String::from_utf8_lossy(&out)),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read: {e}; so far: {:?}", String::from_utf8_lossy(&out)),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Exec helpers working on the container whose init is `init_pid`.
fn exec_helpers_of(init_pid: i64) -> Vec<i32> {
    let needle = format!("\"init_pid\":{init_pid},");
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline);
        if text.contains("exec-helper") && text.contains(&needle) && pid_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// The daemon's open pty masters.
fn daemon_pty_fds(d: &TestDaemon) -> usize {
    let pid = d.daemon_pid().expect("daemon pid");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .map(|l| l.to_string_lossy().contains("ptmx"))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

fn assert_nothing_left(d: &TestDaemon, init_pid: i64) {
    let clean = wait_until(Duration::from_secs(10), || {
        exec_helpers_of(init_pid).is_empty() && daemon_pty_fds(d) == 0
    });
    assert!(
        clean,
        "left behind: exec helpers {:?}, daemon pty fds {}",
        exec_helpers_of(init_pid),
        daemon_pty_fds(d)
    );
}

#[test]
fn tty_exec_runs_on_a_container_pty_with_raw_output_and_exit_code() {
    let d = TestDaemon::start();
    let (id, init_pid) = container(&d);
    let exec = exec_create(
        &d,
        &id,
        serde_json::json!({
            "AttachStdout": true, "AttachStderr": true, "Tty": true,
            "ConsoleSize": [30, 100],
            "Cmd": ["sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty; stty size; echo to-stderr >&2; exit 3"],
        }),
    );
    assert_eq!(exec_inspect(&d, &exec)["ProcessConfig"]["tty"], true);
    let (mut s, _) = start_hijacked(&d, &exec);
    let out = read_all(&mut s);
    let text = String::from_utf8_lossy(&out);
    // Raw: no 8-byte stream headers, the terminal's CRLF line ends, stderr on the pty too.
    assert!(text.starts_with("/dev/pts/"), "output: {text:?}");
    assert!(
        text.contains("\r\nstdin-is-a-tty\r\n30 100\r\nto-stderr\r\n"),
        "output: {text:?}"
    );
    assert!(!out.contains(&0u8), "no stream headers: {out:?}");
    let info = exec_finished(&d, &exec);
    assert_eq!(info["ExitCode"], 3, "{info}");
    assert!(info["Pid"].as_i64().unwrap_or(0) > 0, "{info}");
    // The start request's ConsoleSize (API 1.42+) wins over the create's.
    let exec = exec_create(
        &d,
        &id,
        serde_json::json!({
            "AttachStdout": true, "Tty": true, "ConsoleSize": [30, 100],
            "Cmd": ["stty", "size"],
        }),
    );
    let (mut s, _) = start_hijacked_body(
        &d,
        &exec,
        true,
        r#"{"Detach":false,"Tty":true,"ConsoleSize":[12,34]}"#,
    );
    assert_eq!(String::from_utf8_lossy(&read_all(&mut s)), "12 34\r\n");
    assert_nothing_left(&d, init_pid);
}

#[test]
fn tty_exec_reads_stdin_from_the_hijacked_connection_and_resizes() {
    let d = TestDaemon::start();
    let (id, init_pid) = container(&d);
    let exec = exec_create(
        &d,
        &id,
        serde_json::json!({
            "AttachStdin": true, "AttachStdout": true, "AttachStderr": true, "Tty": true,
            "Cmd": ["sh", "-c", "echo ready; read line; echo got:$line; read x; stty size; exit 4"],
        }),
    );
    let (mut s, _) = start_hijacked(&d, &exec);
    read_until(&mut s, "ready");
    s.write_all(b"hello\n").expect("stdin");
    let seen = read_until(&mut s, "got:hello");
    // The terminal echoes what it is sent.
    assert!(seen.contains("hello\r\n"), "echo: {seen:?}");
    let (status, _, body) = d.request(
        "POST",
        &format!("/v1.45/exec/{exec}/resize?h=40&w=120"),
        None,
    );
    assert_eq!(status, 200, "resize: {}", String::from_utf8_lossy(&body));
    s.write_all(b"\n").expect("stdin");
    let seen = read_until(&mut s, "40 120");
    let rest = read_all(&mut s);
    assert!(!seen.contains('\0') && !rest.contains(&0u8), "raw stream");
    let info = exec_finished(&d, &exec);
    assert_eq!(info["ExitCode"], 4, "{info}");
    // A missing dimension is refused as moby's router does.
    let (status, _, body) = d.request("POST", &format!("/v1.45/exec/{exec}/resize?w=120"), None);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // Unknown exec.
    let (status, _, _) = d.request("POST", "/v1.45/exec/nosuchexec/resize?h=1&w=1", None);
    assert_eq!(status, 404);
    assert_nothing_left(&d, init_pid);
}

#[test]
fn resize_of_an_exec_without_a_tty_is_accepted() {
    let d = TestDaemon::start();
    let (id, _) = container(&d);
    let exec = exec_create(
        &d,
        &id,
        serde_json::json!({"Cmd": ["sleep", "2"], "Tty": false}),
    );
    let (status, _, _) = d.request(
        "POST",
        &format!("/v1.45/exec/{exec}/start"),
        Some(br#"{"Detach":true}"#),
    );
    assert_eq!(status, 200);
    let (status, _, body) = d.request(
        "POST",
        &format!("/v1.45/exec/{exec}/resize?h=10&w=10"),
        None,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn detached_tty_exec_runs_on_a_pty_and_records_its_exit_code() {
    let d = TestDaemon::start();
    let (id, init_pid) = container(&d);
    let exec = exec_create(
        &d,
        &id,
        serde_json::json!({
            "Tty": true,
            "Cmd": ["sh", "-c", "tty > /tmp/ttyname; echo lots of output; exit 5"],
        }),
    );
    let (status, _, body) = d.request(
        "POST",
        &format!("/v1.45/exec/{exec}/start"),
        Some(br#"{"Detach":true,"Tty":true}"#),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let info = exec_finished(&d, &exec);
    assert_eq!(info["ExitCode"], 5, "{info}");
    let name = d.berth_ok(&["exec", &id, "cat", "/tmp/ttyname"]);
    assert!(name.starts_with("/dev/pts/"), "tty printed {name:?}");
    assert_nothing_left(&d, init_pid);
}

#[test]
fn client_going_away_hangs_up_the_terminal() {
    let d = TestDaemon::start();
    let (id, init_pid) = container(&d);
    let exec = exec_create(
        &d,
        &id,
        serde_json::json!({
            "AttachStdin": true, "AttachStdout": true, "AttachStderr": true, "Tty": true,
            "Cmd": ["sh", "-c", "echo ready; sleep 1000"],
        }),
    );
    let (mut s, _) = start_hijacked(&d, &exec);
    read_until(&mut s, "ready");
    assert_eq!(
        exec_helpers_of(init_pid).len(),
        1,
        "one helper while it runs"
    );
    assert_eq!(
        daemon_pty_fds(&d),
        1,
        "the daemon holds the pty master while it runs"
    );
    drop(s);
    let info = exec_finished(&d, &exec);
    // SIGHUP, as when a terminal hangs up.
    assert_eq!(info["ExitCode"], 128 + 1, "{info}");
    assert_nothing_left(&d, init_pid);
}

#[test]
fn cli_exec_t_prints_the_pty_name() {
    let d = TestDaemon::start();
    let (id, init_pid) = container(&d);
    let out = d.berth(&["exec", "-t", &id, "tty"]);
    assert_success(&out, "berth exec -t tty");
    let text = stdout(&out);
    assert!(
        text.starts_with("/dev/pts/") && text.ends_with("\r\n"),
        "{text:?}"
    );
    let out = d.berth(&["exec", "-t", &id, "sh", "-c", "exit 6"]);
    assert_eq!(code(&out), 6);
    // Another user owns its terminal and can reopen it (runc's fixStdioPermissions).
    let out = d.berth(&[
        "exec",
        "-t",
        "-u",
        "nobody",
        &id,
        "sh",
        "-c",
        "stat -c %u $(tty); echo again > $(tty)",
    ]);
    assert_success(&out, "berth exec -t -u nobody");
    assert_eq!(stdout(&out), "65534\r\nagain\r\n");
    assert_nothing_left(&d, init_pid);
}

/// `berth exec -it c sh` on a real terminal (a pty we hold the master of): raw mode,
/// window size, typing commands, the exit code.
#[test]
fn cli_exec_it_is_interactive_on_a_real_terminal() {
    let d = TestDaemon::start();
    let (id, init_pid) = container(&d);
    let mut cmd = Command::new(BERTH);
    cmd.args(["-H", &d.host(), "exec", "-it", &id, "sh"]);
    interactive_sh_session(cmd);
    assert_nothing_left(&d, init_pid);
}

/// The same with the real Docker CLI.
#[test]
fn docker_cli_exec_it_is_interactive_on_a_real_terminal() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    let (id, init_pid) = container(&d);
    let mut cmd = Command::new(DOCKER_CLI);
    cmd.args(["exec", "-it", &id, "sh"])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION");
    interactive_sh_session(cmd);
    let out = d.docker(&["exec", "-t", &id, "tty"]);
    assert_success(&out, "docker exec -t tty");
    assert!(stdout(&out).starts_with("/dev/pts/"), "{}", stdout(&out));
    assert_nothing_left(&d, init_pid);
}

/// Runs `cmd` (an `exec -it … sh`) on a pty of its own sized 25x91, types commands into
/// it, grows the window, and checks the shell saw all of it and exited with 7.
fn interactive_sh_session(mut cmd: Command) {
    let winsize = nix::pty::Winsize {
        ws_row: 25,
        ws_col: 91,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&winsize), None).expect("openpty");
    let slave: OwnedFd = pty.slave;
    let master = std::fs::File::from(pty.master);
    cmd.stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave.try_clone().expect("dup")));
    let slave_fd = slave.as_raw_fd();
    // SAFETY: setsid and ioctl only, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            libc::ioctl(slave_fd, libc::TIOCSCTTY as _, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn exec -it");
    drop(slave);
    // Reader thread: everything the CLI prints on its terminal.
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut reader = master.try_clone().expect("dup master");
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return, // EIO once the CLI is gone
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut seen = String::new();
    let wait_for = |needle: &str, seen: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(b) => seen.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => panic!("no {needle:?} on the terminal; saw {seen:?}"),
            }
        }
    };
    let mut m = &master;
    // The local terminal is in raw mode: a carriage return is what Enter sends.
    m.write_all(b"echo mark-$((6*7))\r").expect("type");
    wait_for("mark-42", &mut seen);
    // ^C reaches the foreground job through the exec's terminal, not the shell.
    m.write_all(b"sleep 100\r").expect("type");
    std::thread::sleep(Duration::from_millis(300));
    m.write_all(b"\x03").expect("ctrl-c");
    m.write_all(b"echo after-$((1+1))\r").expect("type");
    wait_for("after-2", &mut seen);
    m.write_all(b"tty; stty size\r").expect("type");
    wait_for("25 91", &mut seen);
    assert!(seen.contains("/dev/pts/"), "{seen:?}");
    // The window grows: SIGWINCH to the CLI, which resizes the exec's terminal.
    let bigger = libc::winsize {
        ws_row: 50,
        ws_col: 132,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through a pointer valid for the call.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &bigger) };
    let resized = wait_until(Duration::from_secs(10), || {
        let _ = m.write_all(b"stty size\r");
        std::thread::sleep(Duration::from_millis(300));
        while let Ok(b) = rx.try_recv() {
            seen.push_str(&String::from_utf8_lossy(&b));
        }
        seen.contains("50 132")
    });
    assert!(
        resized,
        "the exec's terminal did not follow the window: {seen:?}"
    );
    m.write_all(b"exit 7\r").expect("type");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "exec -it did not end: {seen:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(7), "{seen:?}");
}

/// As in moby, the start request's `Tty` decides the framing: a TTY exec started
/// without it sends its terminal as stdout frames (docker-py's default).
#[test]
fn tty_exec_started_without_tty_sends_stdout_frames() {
    let d = TestDaemon::start();
    let (id, init_pid) = container(&d);
    let exec = exec_create(
        &d,
        &id,
        serde_json::json!({
            "AttachStdout": true, "AttachStderr": true, "Tty": true,
            "Cmd": ["sh", "-c", "printf out; printf err >&2"],
        }),
    );
    let (mut s, _) = start_hijacked_with(&d, &exec, false);
    let out = read_all(&mut s);
    let mut payload = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        assert!(rest.len() >= 8, "a partial frame header: {out:?}");
        assert_eq!(rest[0], 1, "all of a terminal is stdout: {out:?}");
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        payload.extend_from_slice(&rest[8..8 + len]);
        rest = &rest[8 + len..];
    }
    assert_eq!(payload, b"outerr");
    assert_eq!(exec_finished(&d, &exec)["ExitCode"], 0);
    assert_nothing_left(&d, init_pid);
}

/// The detach keys end the session and leave the process running; bad keys are refused.
#[test]
fn detach_keys_leave_the_tty_exec_running() {
    let d = TestDaemon::start();
    let (id, _) = container(&d);
    let (status, _, body) = d.request(
        "POST",
        &format!("/v1.45/containers/{id}/exec"),
        Some(br#"{"Cmd":["cat"],"Tty":true,"DetachKeys":"ctrl-pp"}"#),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("Invalid escape keys (ctrl-pp) provided"));
    for (keys, typed) in [(None, &b"\x10\x11"[..]), (Some("ctrl-x"), &b"\x18"[..])] {
        let mut req = serde_json::json!({
            "AttachStdin": true, "AttachStdout": true, "Tty": true, "Cmd": ["cat"],
        });
        if let Some(k) = keys {
            // docker-py's spelling.
            req["detachKeys"] = serde_json::json!(k);
        }
        let exec = exec_create(&d, &id, req);
        let (mut s, _) = start_hijacked(&d, &exec);
        s.write_all(b"abc\n").expect("stdin");
        read_until(&mut s, "abc\r\nabc\r\n");
        s.write_all(typed).expect("detach keys");
        let rest = read_all(&mut s);
        assert!(
            !String::from_utf8_lossy(&rest).contains("^P"),
            "keys were echoed: {rest:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
        let info = exec_inspect(&d, &exec);
        assert_eq!(info["Running"], true, "detaching leaves it running: {info}");
    }
}
