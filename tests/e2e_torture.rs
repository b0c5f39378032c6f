//! A short round of the torture harness (issue 17, point 7): `tests/torture/run` drives a
//! daemon (its root on a small tmpfs, a local registry beside it) through random operations
//! with the daemon, a shim or the client killed -9, the disk full or a shim frozen at a
//! random instant, and checks after each round that nothing is left without a record, that
//! every acknowledged change holds and that the daemon's fds and RSS stay flat. Long runs:
//! `tests/torture/run --rounds 1000` (see its `--help`); a failing round prints the seed
//! that replays it.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const ROUNDS: usize = 50;

#[test]
fn a_short_torture_run_leaves_nothing_behind() {
    let script = Path::new(REPO).join("tests/torture/run");
    let tar = busybox_tar();
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .args(["--rounds", &ROUNDS.to_string(), "--berth", BERTH, "--image"])
        .arg(&tar);
    let out = run_with_timeout(cmd, None, Duration::from_secs(600), "tests/torture/run");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        code(&out) == 0 && text.contains(&format!("{ROUNDS} rounds, 0 failures")),
        "the torture run failed (replay with the seed it printed):\n{text}"
    );
}

/// The harness's checks catch what they are for: a lost acknowledged write, a removal
/// that did not hold, an fd leak and an RSS leak, planted by `--self-test`.
#[test]
fn the_torture_checks_catch_planted_problems() {
    let script = Path::new(REPO).join("tests/torture/run");
    let tar = busybox_tar();
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .args(["--self-test", "--berth", BERTH, "--image"])
        .arg(&tar);
    let out = run_with_timeout(cmd, None, Duration::from_secs(300), "tests/torture/run");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        code(&out) == 0 && text.contains("self-test: ok"),
        "the torture checks missed a planted problem:\n{text}"
    );
}
