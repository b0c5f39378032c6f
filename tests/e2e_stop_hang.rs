//! Issue 17, point 4: `stop -t N`, `kill` and `rm -f` finish within N plus a few seconds
//! whatever state the container's shim is in (here: SIGSTOPped, so it accepts nothing
//! and answers nothing), and `ps`/`inspect` stay responsive meanwhile.

mod common;

use common::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Upper bounds (correctness, not benchmarks): the old code hung for more than 40 s.
const STOP_BOUND: Duration = Duration::from_secs(15);
const QUERY_BOUND: Duration = Duration::from_secs(5);

/// A SIGSTOPped shim, continued (and killed if the test failed) on drop, so no stopped
/// process is ever left behind.
struct Stopped {
    pid: i32,
}

impl Stopped {
    fn shim_of(d: &TestDaemon, id: &str) -> Stopped {
        let pid: i32 = std::fs::read_to_string(state_dir(d, id).join("shim.pid"))
            .expect("shim.pid")
            .trim()
            .parse()
            .expect("a pid");
        signal(pid, libc::SIGSTOP);
        assert!(
            wait_until(Duration::from_secs(5), || proc_state(pid) == Some('T')),
            "shim {pid} did not stop"
        );
        Stopped { pid }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if std::thread::panicking() {
            signal(self.pid, libc::SIGKILL);
        }
        signal(self.pid, libc::SIGCONT);
    }
}

fn state_dir(d: &TestDaemon, id: &str) -> PathBuf {
    d.exec_root.join("containers").join(id)
}

/// The one-letter state of a process in /proc/<pid>/stat.
fn proc_state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(')').next()?.trim_start().chars().next()
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

/// The container's processes (its cgroup dirs' `cgroup.procs`).
fn container_procs(id: &str) -> Vec<i32> {
    cgroup_dirs_of(id)
        .iter()
        .flat_map(|d| {
            std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

fn assert_responsive(d: &TestDaemon, name: &str) {
    let (out, took) = timed(|| d.berth(&["ps", "-a"]));
    assert_success(&out, "ps");
    assert!(took < QUERY_BOUND, "ps took {took:?}");
    let (out, took) = timed(|| d.berth(&["inspect", name]));
    assert_success(&out, "inspect");
    assert!(took < QUERY_BOUND, "inspect took {took:?}");
}

fn assert_gone_for_good(id: &str, shim: i32, init: i32) {
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(shim)
            && !pid_alive(init)),
        "the shim ({shim}) or the init ({init}) is still alive"
    );
    assert!(container_procs(id).is_empty(), "{:?}", container_procs(id));
}

fn init_pid(d: &TestDaemon, name: &str) -> i32 {
    d.inspect(name)["State"]["Pid"].as_i64().expect("pid") as i32
}

#[test]
fn stop_kill_and_rm_f_of_a_stopped_shim_are_bounded() {
    let d = TestDaemon::start();
    d.import_busybox();
    // pid 1 ignores SIGTERM (no handler): only a kill ends it.
    for name in ["hs1", "hs2", "hs3", "hs-other"] {
        d.run_detached(&["--name", name, "busybox", "sleep", "1000"]);
    }
    let ids: Vec<String> = ["hs1", "hs2", "hs3"].iter().map(|n| d.full_id(n)).collect();
    let inits: Vec<i32> = ["hs1", "hs2", "hs3"]
        .iter()
        .map(|n| init_pid(&d, n))
        .collect();

    // stop -t 1, with ps and inspect of every container answering while it waits.
    let s1 = Stopped::shim_of(&d, &ids[0]);
    let host = d.host();
    let stopper = std::thread::spawn(move || {
        let mut cmd = std::process::Command::new(BERTH);
        cmd.args(["-H", &host, "stop", "-t", "1", "hs1"]);
        timed(|| run_with_timeout(cmd, None, CMD_TIMEOUT, "stop -t 1"))
    });
    std::thread::sleep(Duration::from_millis(300));
    for name in ["hs1", "hs2", "hs-other"] {
        assert_responsive(&d, name);
    }
    let (out, took) = stopper.join().unwrap();
    assert_success(&out, "stop -t 1 of a container whose shim is stopped");
    assert!(took < STOP_BOUND, "stop -t 1 took {took:?}");
    let st = &d.inspect("hs1")["State"];
    assert_eq!(st["Running"], false, "{st}");
    assert_eq!(st["ExitCode"], 137, "{st}");
    assert_gone_for_good(&ids[0], s1.pid, inits[0]);
    drop(s1);

    // kill (SIGKILL).
    let s2 = Stopped::shim_of(&d, &ids[1]);
    let (out, took) = timed(|| d.berth(&["kill", "hs2"]));
    assert_success(&out, "kill");
    assert!(took < STOP_BOUND, "kill took {took:?}");
    assert!(
        wait_until(Duration::from_secs(5), || d.inspect("hs2")["State"]
            ["Running"]
            == false),
        "{}",
        d.inspect("hs2")["State"]
    );
    assert_gone_for_good(&ids[1], s2.pid, inits[1]);
    drop(s2);

    // rm -f.
    let s3 = Stopped::shim_of(&d, &ids[2]);
    let (out, took) = timed(|| d.berth(&["rm", "-f", "hs3"]));
    assert_success(&out, "rm -f");
    assert!(took < STOP_BOUND, "rm -f took {took:?}");
    assert_gone_for_good(&ids[2], s3.pid, inits[2]);
    drop(s3);
    let out = d.berth(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!stdout(&out).contains("hs3"), "{}", stdout(&out));

    // The untouched container still runs, and the stopped ones start again.
    assert_eq!(d.inspect("hs-other")["State"]["Running"], true);
    d.berth_ok(&["start", "hs1"]);
    assert_eq!(d.inspect("hs1")["State"]["Running"], true);
    let (out, took) = timed(|| d.berth(&["stop", "-t", "1", "hs1"]));
    assert_success(&out, "stop of a healthy shim");
    assert!(took < STOP_BOUND, "stop took {took:?}");
}

#[test]
fn a_non_kill_signal_reaches_the_container_when_its_shim_is_stopped() {
    let d = TestDaemon::start();
    d.import_busybox();
    // A shell that exits 7 on SIGUSR1 (sh as pid 1 runs its traps).
    let id = d.run_detached(&[
        "--name",
        "sig",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' USR1; while :; do sleep 0.1; done",
    ]);
    let init = init_pid(&d, "sig");
    let s = Stopped::shim_of(&d, &id);
    let (out, took) = timed(|| d.berth(&["kill", "-s", "USR1", "sig"]));
    assert_success(&out, "kill -s USR1");
    assert!(took < STOP_BOUND, "kill -s USR1 took {took:?}");
    assert!(
        wait_until(Duration::from_secs(5), || proc_state(init) == Some('Z')
            || !pid_alive(init)),
        "the init did not exit on USR1"
    );
    drop(s);
    // Continued, the shim reports the exit as usual.
    assert!(
        wait_until(Duration::from_secs(10), || d.inspect("sig")["State"]
            ["Running"]
            == false),
        "{}",
        d.inspect("sig")["State"]
    );
    assert_eq!(d.inspect("sig")["State"]["ExitCode"], 7);
}
