//! Issue 18, point 3: ctrl-p ctrl-q (or `--detach-keys`, or the config's `detachKeys`)
//! detaches `run -it`, `start -ai`, `attach` and `exec -it` as the Docker CLI does, driven
//! through a real terminal (tmux).

mod common;

use common::tmux::Tmux;
use common::*;
use std::time::Duration;

#[test]
fn ctrl_p_ctrl_q_detaches_run_and_attach() {
    let Some(t) = Tmux::new("detach") else {
        eprintln!("skipped: tmux is not installed (scripts/setup installs it)");
        return;
    };
    let d = TestDaemon::start();
    d.import_busybox();
    let berth = format!("{BERTH} -H {}", d.host());
    // run -it: detach, exit 0, no message; the container keeps running.
    t.start("run", &format!("{berth} run -it --name det1 busybox sh"));
    t.wait_for("run", "/ #");
    t.cmd(&["send-keys", "-t", "run", "echo hel", "Enter"]);
    t.wait_for("run", "hel\n");
    t.cmd(&["send-keys", "-t", "run", "C-p", "C-q"]);
    let screen = t.wait_for("run", "EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(!screen.contains("read escape sequence"), "{screen}");
    assert_eq!(d.inspect("det1")["State"]["Running"], true);
    // attach: "read escape sequence", exit 1, still running.
    t.start("att", &format!("{berth} attach det1"));
    std::thread::sleep(Duration::from_millis(500));
    t.cmd(&["send-keys", "-t", "att", "echo again", "Enter"]);
    t.wait_for("att", "again\n");
    t.cmd(&["send-keys", "-t", "att", "C-p", "C-q"]);
    let screen = t.wait_for("att", "EXIT=");
    assert!(screen.contains("read escape sequence"), "{screen}");
    assert!(screen.contains("EXIT=1"), "{screen}");
    assert_eq!(d.inspect("det1")["State"]["Running"], true);
    // --detach-keys: other keys; ctrl-p alone is passed through.
    t.start(
        "keys",
        &format!("{berth} attach --detach-keys ctrl-x,x det1"),
    );
    std::thread::sleep(Duration::from_millis(500));
    t.cmd(&["send-keys", "-t", "keys", "echo third", "Enter"]);
    t.wait_for("keys", "third\n");
    t.cmd(&["send-keys", "-t", "keys", "C-x", "x"]);
    let screen = t.wait_for("keys", "EXIT=");
    assert!(screen.contains("read escape sequence"), "{screen}");
    assert_eq!(d.inspect("det1")["State"]["Running"], true);
}

#[test]
fn start_ai_exec_it_and_config_detach_keys() {
    let Some(t) = Tmux::new("detach2") else {
        eprintln!("skipped: tmux is not installed (scripts/setup installs it)");
        return;
    };
    let d = TestDaemon::start();
    d.import_busybox();
    let berth = format!("{BERTH} -H {}", d.host());
    d.berth_ok(&["create", "-it", "--name", "sai", "busybox", "sh"]);
    // start -ai: as `run -it`, exit 0 without a message (Docker CLI 28 the same).
    t.start("sai", &format!("{berth} start -ai sai"));
    t.wait_for("sai", "/ #");
    t.cmd(&["send-keys", "-t", "sai", "echo one", "Enter"]);
    t.wait_for("sai", "one\n");
    t.cmd(&["send-keys", "-t", "sai", "C-p", "C-q"]);
    let screen = t.wait_for("sai", "EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(!screen.contains("read escape sequence"), "{screen}");
    assert_eq!(d.inspect("sai")["State"]["Running"], true);
    // exec -it: "read escape sequence", exit 1; the exec's shell stays, the container too.
    t.start("ex", &format!("{berth} exec -it sai sh"));
    t.wait_for("ex", "/ #");
    t.cmd(&["send-keys", "-t", "ex", "echo two", "Enter"]);
    t.wait_for("ex", "two\n");
    t.cmd(&["send-keys", "-t", "ex", "C-p", "C-q"]);
    let screen = t.wait_for("ex", "EXIT=");
    assert!(screen.contains("read escape sequence"), "{screen}");
    assert!(screen.contains("EXIT=1"), "{screen}");
    assert_eq!(d.inspect("sai")["State"]["Running"], true);
    // The config file's detachKeys.
    let cfg = d.dir.join("detach-config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.json"), r#"{"detachKeys":"ctrl-a,a"}"#).unwrap();
    t.start(
        "cfg",
        &format!("DOCKER_CONFIG={} {berth} attach sai", cfg.display()),
    );
    std::thread::sleep(Duration::from_millis(500));
    t.cmd(&["send-keys", "-t", "cfg", "echo three", "Enter"]);
    t.wait_for("cfg", "three\n");
    // ctrl-p ctrl-q is no longer the sequence: it reaches the shell.
    t.cmd(&["send-keys", "-t", "cfg", "C-p", "C-q"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!t.screen("cfg").contains("EXIT="), "{}", t.screen("cfg"));
    t.cmd(&["send-keys", "-t", "cfg", "C-a", "a"]);
    let screen = t.wait_for("cfg", "EXIT=");
    assert!(screen.contains("read escape sequence"), "{screen}");
    assert!(screen.contains("EXIT=1"), "{screen}");
    assert_eq!(d.inspect("sai")["State"]["Running"], true);
}
