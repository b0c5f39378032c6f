//! docker-compose 1.29.2 in a venv of its own, made once from PyPI with the pins of
//! REFERENCE §9 and cached under the target dir (shared by the compose e2e tests:
//! include with `#[path = "common/compose.rs"] mod compose;`).

#![allow(dead_code)] // each including test file uses part of it

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::common::venv::python_venv;
use super::common::{run_with_timeout, TestDaemon};

/// The `docker-compose` binary, installing it first if needed.
pub fn compose_venv() -> Result<PathBuf, String> {
    let venv = python_venv(
        "compose-venv",
        &[
            &["setuptools<70", "wheel", "cython<3"],
            &["--no-build-isolation", "PyYAML==5.4.1"],
            &[
                "docker-compose==1.29.2",
                "docker==6.1.3",
                "requests<2.32",
                "urllib3<2",
            ],
        ],
    )?;
    Ok(venv.join("bin/docker-compose"))
}

/// Whether docker-compose can run here: outside CI a venv that cannot be made skips the
/// test (with a `SKIPPED` line); in CI it fails it.
pub fn compose_available() -> bool {
    match compose_venv() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: docker-compose is not available here: {e}");
            false
        }
        Err(e) => panic!("docker-compose venv: {e}"),
    }
}

/// `docker-compose -p PROJECT` in `dir` against the daemon `d` (its own config dir), for
/// the caller to add arguments and environment to.
pub fn compose_command(d: &TestDaemon, project: &str, dir: &Path) -> Command {
    let bin = compose_venv().expect("docker-compose venv");
    let mut cmd = Command::new(bin);
    cmd.args(["-p", project])
        .current_dir(dir)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"));
    cmd
}

/// `docker-compose -p PROJECT ARGS…` in `dir` against the daemon `d`.
pub fn compose_in(d: &TestDaemon, project: &str, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = compose_command(d, project, dir);
    cmd.args(args);
    run_with_timeout(cmd, None, Duration::from_secs(180), "docker-compose")
}
