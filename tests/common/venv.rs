//! Python venvs made once from PyPI and cached under the target dir, shared by the tests
//! that drive Python clients (docker-compose 1.29, testcontainers).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{run_with_timeout, stderr};

/// The venv `name` under the target dir, made with `pip install` of each argument list in
/// turn unless an earlier call finished it. Calls from parallel tests wait for each other.
pub fn python_venv(name: &str, installs: &[&[&str]]) -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = dir.join(name);
    let ready = venv.join(".berth-ready");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{name}.lock")))
        .map_err(|e| e.to_string())?;
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; the lock ends with the file.
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    }
    if ready.exists() {
        return Ok(venv);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-m", "venv"]).arg(&venv);
    let out = run_with_timeout(cmd, None, Duration::from_secs(120), "python3 -m venv");
    if !out.status.success() {
        return Err(format!("python3 -m venv failed: {}", stderr(&out)));
    }
    for args in installs {
        let mut cmd = Command::new(venv.join("bin/pip"));
        cmd.arg("install").arg("-q").args(*args);
        let out = run_with_timeout(cmd, None, Duration::from_secs(600), "pip install");
        if !out.status.success() {
            return Err(format!(
                "pip install {} failed: {}",
                args.join(" "),
                stderr(&out)
            ));
        }
    }
    std::fs::write(&ready, b"").map_err(|e| e.to_string())?;
    Ok(venv)
}
