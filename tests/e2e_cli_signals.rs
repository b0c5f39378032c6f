//! Issue 18, point 3: `--sig-proxy` on `run` and `attach` without a TTY, as the Docker
//! CLI 28 does it: a signal sent to the CLI reaches the container (whose exit code the CLI
//! then returns); with `--sig-proxy=false` the container never sees it.

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A shell that says `ready`, then turns `sig` into `got <sig>` and exit `code`.
fn trap_script(sig: &str, code: i32) -> String {
    format!("trap 'echo got {sig}; exit {code}' {sig}; echo ready; while :; do sleep 0.1; done")
}

fn spawn_cli(d: &TestDaemon, args: &[&str]) -> Child {
    Command::new(BERTH)
        .arg("-H")
        .arg(d.host())
        .args(args)
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth")
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Waits (bounded) for the CLI to end; its exit code and output.
fn finish(mut child: Child) -> (Option<i32>, String) {
    let ended = wait_until(Duration::from_secs(20), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !ended {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("wait");
    (
        ended.then_some(out.status.code()).flatten(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn logs_say(d: &TestDaemon, name: &str, text: &str) -> bool {
    wait_until(Duration::from_secs(10), || {
        String::from_utf8_lossy(&d.berth(&["logs", name]).stdout).contains(text)
    })
}

#[test]
fn run_forwards_signals_to_the_container_unless_sig_proxy_is_off() {
    let d = TestDaemon::start();
    d.import_busybox();
    let cli = spawn_cli(
        &d,
        &[
            "run",
            "--name",
            "sp1",
            "busybox",
            "sh",
            "-c",
            &trap_script("TERM", 3),
        ],
    );
    assert!(logs_say(&d, "sp1", "ready"));
    signal(&cli, libc::SIGTERM);
    let (code, out) = finish(cli);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("got TERM"), "{out}");
    assert_eq!(d.inspect("sp1")["State"]["ExitCode"], 3);

    let cli = spawn_cli(
        &d,
        &[
            "run",
            "--sig-proxy=false",
            "--name",
            "sp2",
            "busybox",
            "sh",
            "-c",
            &trap_script("TERM", 3),
        ],
    );
    assert!(logs_say(&d, "sp2", "ready"));
    signal(&cli, libc::SIGTERM);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(d.inspect("sp2")["State"]["Running"], true);
    assert!(!logs_say_now(&d, "sp2", "got TERM"));
    signal(&cli, libc::SIGKILL);
    let _ = finish(cli);
    d.berth_ok(&["rm", "-f", "sp2"]);
}

fn logs_say_now(d: &TestDaemon, name: &str, text: &str) -> bool {
    String::from_utf8_lossy(&d.berth(&["logs", name]).stdout).contains(text)
}

#[test]
fn attach_forwards_sigint_and_returns_the_exit_code() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "spa",
        "busybox",
        "sh",
        "-c",
        &trap_script("INT", 4),
    ]);
    assert!(logs_say(&d, "spa", "ready"));
    let cli = spawn_cli(&d, &["attach", "spa"]);
    // The attach is live once the CLI has its stream: give it a moment.
    std::thread::sleep(Duration::from_millis(700));
    signal(&cli, libc::SIGINT);
    let (code, out) = finish(cli);
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("got INT"), "{out}");
    assert_eq!(d.inspect("spa")["State"]["ExitCode"], 4);
}
