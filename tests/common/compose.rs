//! docker-compose 1.29.2 in a venv of its own, made once from PyPI with the pins of
//! REFERENCE §9 and cached under the target dir (shared by the compose e2e tests:
//! include with `#[path = "common/compose.rs"] mod compose;`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::common::*;

/// The `docker-compose` binary, installing it first if needed.
pub fn compose_venv() -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = dir.join("compose-venv");
    let bin = venv.join("bin/docker-compose");
    let ready = venv.join(".berth-ready");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("compose-venv.lock"))
        .map_err(|e| e.to_string())?;
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; the lock ends with the file.
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    }
    if ready.exists() {
        return Ok(bin);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-m", "venv"]).arg(&venv);
    let out = run_with_timeout(cmd, None, Duration::from_secs(120), "python3 -m venv");
    if !out.status.success() {
        return Err(format!("python3 -m venv failed: {}", stderr(&out)));
    }
    let pip = venv.join("bin/pip");
    for args in [
        vec!["install", "-q", "setuptools<70", "wheel", "cython<3"],
        vec!["install", "-q", "--no-build-isolation", "PyYAML==5.4.1"],
        vec![
            "install",
            "-q",
            "docker-compose==1.29.2",
            "docker==6.1.3",
            "requests<2.32",
            "urllib3<2",
        ],
    ] {
        let mut cmd = Command::new(&pip);
        cmd.args(&args);
        let out = run_with_timeout(cmd, None, Duration::from_secs(600), "pip install");
        if !out.status.success() {
            return Err(format!("pip {} failed: {}", args.join(" "), stderr(&out)));
        }
    }
    std::fs::write(&ready, b"").map_err(|e| e.to_string())?;
    Ok(bin)
}
