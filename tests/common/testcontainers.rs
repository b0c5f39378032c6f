//! testcontainers-python in a venv of its own, made once from PyPI and cached under the
//! target dir (include with `#[path = "common/testcontainers.rs"] mod testcontainers;`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::common::*;

/// The venv's `python`, installing testcontainers first if needed.
pub fn testcontainers_python() -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = dir.join("testcontainers-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".berth-ready");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("testcontainers-venv.lock"))
        .map_err(|e| e.to_string())?;
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; the lock ends with the file.
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    }
    if ready.exists() {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-m", "venv"]).arg(&venv);
    let out = run_with_timeout(cmd, None, Duration::from_secs(120), "python3 -m venv");
    if !out.status.success() {
        return Err(format!("python3 -m venv failed: {}", stderr(&out)));
    }
    let mut cmd = Command::new(venv.join("bin/pip"));
    cmd.args(["install", "-q", "testcontainers==4.15.0"]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(600), "pip install");
    if !out.status.success() {
        return Err(format!(
            "pip install testcontainers failed: {}",
            stderr(&out)
        ));
    }
    std::fs::write(&ready, b"").map_err(|e| e.to_string())?;
    Ok(python)
}
