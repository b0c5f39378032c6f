//! Real clients against a Berth daemon (issue 2, points 8 and 9): the Docker CLI 28 on
//! these machines, and docker-py in a virtualenv.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[test]
fn docker_version_and_info() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    let out = d.docker_ok(&["version"]);
    let server = out
        .split("Server:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Server section:\n{out}"));
    assert!(server.contains("Engine:"), "{out}");
    assert!(
        server
            .lines()
            .any(|l| l.trim_start().starts_with("API version:") && l.contains("1.45")),
        "server API version:\n{out}"
    );
    // The client negotiated down to the daemon's version.
    let client = out.split("Server:").next().unwrap_or_default();
    assert!(
        client.contains("API version:       1.45 (downgraded from 1.50)")
            || client.contains("1.45"),
        "{out}"
    );

    let out = d.docker(&["info"]);
    assert_success(&out, "docker info");
    let text = stdout(&out);
    assert!(text.contains("Server Version:"), "{text}");
    assert!(
        text.contains(&format!("Docker Root Dir: {}", d.root.display())),
        "{text}"
    );
    assert!(
        !stderr(&out).to_lowercase().contains("error"),
        "docker info stderr: {}",
        stderr(&out)
    );
    assert_eq!(
        d.docker_ok(&["info", "--format", "{{.OSType}}"]).trim(),
        "linux"
    );
}

#[test]
fn docker_import_images_run_and_inspect() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    let out = d.docker_ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        busybox_tar().to_str().unwrap(),
        "busybox:latest",
    ]);
    assert!(
        out.trim().starts_with("sha256:"),
        "docker import printed {out:?}"
    );
    let images = d.docker_ok(&["images"]);
    let mut lines = images.lines();
    let head: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        head,
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"],
        "{images}"
    );
    assert!(
        lines.any(|l| l.split_whitespace().take(2).eq(["busybox", "latest"])),
        "{images}"
    );

    // Attached run: hijacked attach, wait?condition=removed, exit code.
    let out = d.docker(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_success(&out, "docker run --rm busybox echo hello");
    assert_eq!(stdout(&out), "hello\n");
    assert_eq!(stderr(&out), "");
    let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", "echo err >&2; exit 3"]);
    assert_eq!(code(&out), 3);
    assert_eq!(stderr(&out), "err\n");
    assert_eq!(
        d.docker_ok(&["ps", "-a", "-q"]).trim(),
        "",
        "run --rm left a container"
    );

    // Detached run, ps, logs, inspect, stop, rm -f.
    let id = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "echo up; exec sleep 1000",
        ])
        .trim()
        .to_string();
    assert!(is_full_id(&id), "docker run -d printed {id:?}");
    let ps = d.docker_ok(&["ps", "-a"]);
    assert!(ps.starts_with("CONTAINER ID   IMAGE     COMMAND"), "{ps}");
    assert!(
        ps.lines().any(|l| l.starts_with(&id[..12])
            && l.contains("Up ")
            && l.trim_end().ends_with("web")),
        "{ps}"
    );
    assert!(wait_until(Duration::from_secs(10), || d
        .docker_ok(&["logs", "web"])
        == "up\n"));
    let v: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["inspect", "web"])).expect("docker inspect JSON");
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(v[0]["Name"], "/web");
    assert_eq!(v[0]["State"]["Running"], true);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "web"])
            .trim(),
        "running"
    );
    assert_eq!(
        d.docker_ok(&["exec", "web", "sh", "-c", "echo in-exec"]),
        "in-exec\n"
    );
    assert_eq!(code(&d.docker(&["exec", "web", "sh", "-c", "exit 4"])), 4);
    assert_eq!(d.docker_ok(&["stop", "-t", "1", "web"]).trim(), "web");
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "web"
        ])
        .trim(),
        "exited 137"
    );
    assert_eq!(d.docker_ok(&["rm", "-f", "web"]).trim(), "web");
    assert_eq!(d.docker_ok(&["ps", "-a", "-q"]).trim(), "");
    // Docker's error text reaches the user.
    let out = d.docker(&["inspect", "web"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("No such object: web"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn docker_run_d_then_wait_and_logs_api_framing() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "fr",
        "busybox",
        "sh",
        "-c",
        "echo o1; echo e1 >&2; echo o2; exit 6",
    ]);
    assert_eq!(d.docker_ok(&["wait", "fr"]).trim(), "6");
    let out = d.docker(&["logs", "fr"]);
    assert_success(&out, "docker logs");
    assert_eq!(stdout(&out), "o1\no2\n");
    assert_eq!(stderr(&out), "e1\n");
    // The raw API frames logs with Docker's 8-byte header when there is no TTY.
    let (status, _, body) = d.request("GET", "/v1.45/containers/fr/logs?stdout=1&stderr=1", None);
    assert_eq!(status, 200);
    let frames = demux(&body);
    let mut outs: Vec<(u8, String)> = frames.into_iter().collect();
    outs.retain(|(_, s)| !s.is_empty());
    assert!(
        outs.contains(&(1, "o1\n".into())) && outs.contains(&(2, "e1\n".into())),
        "frames: {outs:?}"
    );
}

/// Splits a multiplexed stream into (stream, text) frames; panics on a malformed header.
fn demux(mut body: &[u8]) -> Vec<(u8, String)> {
    let mut frames = Vec::new();
    while !body.is_empty() {
        assert!(body.len() >= 8, "truncated frame header: {body:?}");
        let stream = body[0];
        assert!(
            stream <= 3 && body[1..4] == [0, 0, 0],
            "bad frame header {:?}",
            &body[..8]
        );
        let size = u32::from_be_bytes([body[4], body[5], body[6], body[7]]) as usize;
        assert!(body.len() >= 8 + size, "truncated frame");
        frames.push((
            stream,
            String::from_utf8_lossy(&body[8..8 + size]).into_owned(),
        ));
        body = &body[8 + size..];
    }
    frames
}

/// A virtualenv with docker-py, made once and cached under the target dir (a file lock
/// serialises its creation between test processes). An error says why it cannot be made.
fn docker_py_venv() -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = dir.join("docker-py-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".berth-ready");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("docker-py-venv.lock"))
        .map_err(|e| e.to_string())?;
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on an fd open for the call; no memory is passed.
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    }
    if ready.exists() {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    // Debian's python3 (python3-venv, installed by scripts/setup) or whatever python3 is first.
    let base = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut cmd = Command::new(base);
    cmd.args(["-m", "venv"]).arg(&venv);
    let out = run_with_timeout(cmd, None, Duration::from_secs(120), "python3 -m venv");
    if !out.status.success() {
        return Err(format!("python3 -m venv failed: {}", stderr(&out)));
    }
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pip", "install", "--quiet", "docker"]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(300), "pip install docker");
    if !out.status.success() {
        return Err(format!("pip install docker failed: {}", stderr(&out)));
    }
    std::fs::write(&ready, b"").map_err(|e| e.to_string())?;
    Ok(python)
}

const DOCKER_PY_SCRIPT: &str = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1])
assert c.version()["ApiVersion"] == "1.45", c.version()
out = c.containers.run("busybox", "echo hi", remove=True)
print(repr(out))
ct = c.containers.run("busybox", "sh -c 'echo bg; sleep 1000'", detach=True, name="pyc")
ct.reload()
print(ct.status, ct.name)
r = ct.exec_run("sh -c 'echo $X; exit 2'", environment={"X": "from-exec"})
print(r.exit_code, repr(r.output))
ct.stop(timeout=1)
print(ct.wait()["StatusCode"])
print(repr(ct.logs()))
ct.remove()
print(len(c.containers.list(all=True)))
"#;

#[test]
fn docker_py_runs_a_container() {
    let python = match docker_py_venv() {
        Ok(p) => p,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: docker-py is not available here: {e}");
            return;
        }
        Err(e) => panic!("docker-py venv: {e}"),
    };
    let d = TestDaemon::start();
    d.import_busybox();
    let mut cmd = Command::new(python);
    cmd.arg("-c")
        .arg(DOCKER_PY_SCRIPT)
        .arg(d.host())
        .env_remove("DOCKER_HOST");
    let out = run_with_timeout(cmd, None, CMD_TIMEOUT, "docker-py script");
    assert_success(&out, "docker-py script");
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(
        lines,
        [
            "b'hi\\n'",
            "running pyc",
            "2 b'from-exec\\n'",
            "137",
            "b'bg\\n'",
            "0",
        ],
        "stderr: {}",
        stderr(&out)
    );
}
