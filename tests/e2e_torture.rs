//! A short round of the torture harness (issue 17, point 7): `tests/torture/run` drives a
//! daemon through random operations with the daemon or a shim killed -9 at a random
//! instant, and checks after each round that nothing is left without a record. Long runs:
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
