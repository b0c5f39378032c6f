//! Exec: processes started inside a running container through `berth exec-helper`
//! (see [`berth_runtime::ExecSpec`]). Exec instances live in memory only, as in Docker,
//! and go away with their container.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_api::{ExecCreateBody, ExecInspect, ExecProcessConfig};
use berth_runtime::{ExecSpec, ProcessSpec};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::attach::{parse_detach_keys, DEFAULT_DETACH_KEYS};
use super::pty_io::PtyMaster;
use super::record::{ContainerRecord, Status};
use super::{merge, ContainerService};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub struct ExecEntry {
    pub id: String,
    pub container_id: String,
    pub config: ExecCreateBody,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
    /// The pty master while a TTY exec runs (for resize).
    pub pty: Option<PtyMaster>,
}

impl std::fmt::Debug for PtyMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PtyMaster")
    }
}

#[derive(Default)]
pub struct ExecTable {
    map: Mutex<HashMap<String, ExecEntry>>,
}

impl ExecTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, ExecEntry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of exec `id`, or Docker's "No such exec instance".
    pub(crate) fn get(&self, id: &str) -> ApiResult<ExecEntry> {
        self.lock().get(id).cloned().ok_or_else(|| no_such_exec(id))
    }

    pub fn container_exited(&self, container_id: &str) {
        let _ = container_id;
    }

    pub fn container_removed(&self, container_id: &str) {
        self.lock().retain(|_, e| e.container_id != container_id);
    }

    pub(super) fn update(&self, id: &str, f: impl FnOnce(&mut ExecEntry)) {
        if let Some(e) = self.lock().get_mut(id) {
            f(e);
        }
    }
}

pub(super) fn no_such_exec(id: &str) -> ApiError {
    ApiError::not_found(format!("No such exec instance: {id}"))
}

pub(super) fn not_running(rec: &ContainerRecord) -> ApiError {
    if rec.state.status == Status::Paused {
        ApiError::conflict(format!(
            "Container {} is paused, unpause the container before exec",
            rec.id
        ))
    } else if rec.state.status == Status::Restarting {
        super::record::restarting_error(&rec.id)
    } else {
        ApiError::conflict(format!("Container {} is not running", rec.id))
    }
}

/// The exec's process: the container's environment and defaults, overridden by the exec.
pub fn exec_process(rec: &ContainerRecord, cfg: &ExecCreateBody) -> ProcessSpec {
    let mut env = merge::process_env(&rec.config, &rec.config.hostname);
    for entry in &cfg.env {
        let key = entry.split_once('=').map(|(k, _)| k).unwrap_or(entry);
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e) == key)
        {
            Some(slot) => *slot = entry.clone(),
            None => env.push(entry.clone()),
        }
    }
    let cwd = if !cfg.working_dir.is_empty() {
        cfg.working_dir.clone()
    } else if !rec.config.working_dir.is_empty() {
        rec.config.working_dir.clone()
    } else {
        "/".into()
    };
    ProcessSpec {
        args: cfg.cmd.clone(),
        env,
        cwd,
        user: if cfg.user.is_empty() {
            rec.config.user.clone()
        } else {
            cfg.user.clone()
        },
        tty: cfg.tty,
        open_stdin: cfg.attach_stdin,
        stdin_once: true,
        console_size: cfg
            .console_size
            .as_ref()
            .and_then(|v| Some((*v.first()?, *v.get(1)?))),
        additional_groups: rec.host_config.group_add.clone(),
    }
}

/// An exec's detach sequence: `DetachKeys`, or ctrl-p ctrl-q when empty; moby's
/// wording when it does not parse.
pub(super) fn exec_detach_keys(keys: &str) -> ApiResult<Vec<u8>> {
    if keys.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    parse_detach_keys(keys)
        .map_err(|_| ApiError::invalid(format!("Invalid escape keys ({keys}) provided")))
}

/// Docker's exit code from a wait status: the code, or 128 + signal.
pub(super) fn exit_code(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c as i64,
        (None, Some(s)) => 128 + s as i64,
        _ => 255,
    }
}

/// Exit code of an exec that could not start (moby `daemon/exec.go`).
pub const EXEC_START_FAILED: i64 = 126;

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(super) struct HelperStatus {
    pid: Option<i64>,
    error: Option<String>,
}

/// A started helper with its pipes.
pub(super) struct Running {
    pub(super) child: tokio::process::Child,
    /// First status line: Ok(pid) or Err((message, exit code)).
    pub(super) status: Result<i64, (String, i64)>,
    /// The pty master of a TTY exec (its stdio then is the pty, not the pipes).
    pub(super) master: Option<PtyMaster>,
}

/// In a forked child: puts `fd` on `target` without close-on-exec.
///
/// SAFETY: async-signal-safe; only for `pre_exec`.
unsafe fn fd_onto(fd: i32, target: i32) -> std::io::Result<()> {
    if fd == target {
        let flags = libc::fcntl(target, libc::F_GETFD);
        if flags < 0 || libc::fcntl(target, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    } else if libc::dup2(fd, target) < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Starts the helper for `spec`: fd 3 its status pipe and, with a TTY, fd 4 the socket
/// the pty master comes back on. Without a TTY its stdio are pipes (stdin only when
/// `stdin`).
pub(super) async fn spawn_helper(spec: &ExecSpec, stdin: bool) -> ApiResult<Running> {
    let exe = super::shim::berth_exe();
    let tty = spec.process.tty;
    let json = serde_json::to_string(spec).map_err(|e| ApiError::internal(e.to_string()))?;
    let (status_r, status_w): (OwnedFd, OwnedFd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ApiError::internal(format!("pipe: {e}")))?;
    let console = if tty {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        Some(
            socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| ApiError::internal(format!("socketpair: {e}")))?,
        )
    } else {
        None
    };
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg0("berth");
    let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    cmd.arg("exec-helper")
        .arg(json)
        .stdin(piped(stdin && !tty))
        .stdout(piped(!tty))
        .stderr(piped(!tty))
        .kill_on_drop(false);
    let w = status_w.as_raw_fd();
    let theirs = console.as_ref().map(|(_, t)| t.as_raw_fd());
    // A health check's exec is forked from a lifecycle thread (below the daemon's
    // priority): the process gets the daemon's nice value, as a container's.
    let nice = crate::lifecycle_pool::base_nice();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            crate::lifecycle_pool::restore_nice(nice)?;
            // Moved up first so that dup2 onto 3 cannot clobber the socket.
            let theirs = match theirs {
                Some(t) if t == 3 => {
                    let moved = libc::fcntl(t, libc::F_DUPFD_CLOEXEC, 5);
                    if moved < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Some(moved)
                }
                other => other,
            };
            fd_onto(w, 3)?;
            if let Some(t) = theirs {
                fd_onto(t, 4)?;
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| ApiError::internal(format!("starting the exec helper: {e}")))?;
    drop(status_w);
    let ours = console.map(|(ours, theirs)| {
        drop(theirs);
        ours
    });
    let (master, status) = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        // The master comes first; EOF instead means the set-up failed (status says why).
        let master = ours.and_then(|s| berth_runtime::pty::recv_master(s.as_raw_fd()).ok());
        let mut line = String::new();
        let mut reader = std::io::BufReader::new(std::fs::File::from(status_r));
        let _ = reader.read_line(&mut line);
        (master, line)
    })
    .await
    .unwrap_or_default();
    let parsed: HelperStatus = serde_json::from_str(status.trim()).unwrap_or_default();
    let status = match (parsed.pid, parsed.error) {
        (Some(pid), None) => Ok(pid),
        // Docker records 126 for any exec that could not start, whatever the cause.
        (_, Some(err)) => Err((err, EXEC_START_FAILED)),
        (None, None) => Err((
            "exec helper exited before starting the process".to_string(),
            126,
        )),
    };
    let master = match master.map(PtyMaster::new) {
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "exec: the pty master cannot be polled");
            None
        }
        None => None,
    };
    let status = match status {
        Ok(pid) if tty && master.is_none() => {
            // Nothing could relay its terminal: the process must not run on.
            // SAFETY: kill takes two integers and touches no memory.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            Err((
                "exec helper did not send the pty".to_string(),
                EXEC_START_FAILED,
            ))
        }
        s => s,
    };
    crate::crash_point::crash_point("exec-after-spawn");
    Ok(Running {
        child,
        status,
        master,
    })
}

/// Docker's wording for an exec that could not start.
pub fn exec_error_message(err: &str) -> String {
    format!(
        "OCI runtime exec failed: exec failed: unable to start container process: {err}: unknown"
    )
}

pub(super) async fn pump<R: AsyncRead + Unpin>(
    mut r: R,
    stream: u8,
    tx: tokio::sync::mpsc::Sender<(u8, Bytes)>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx
                    .send((stream, Bytes::copy_from_slice(&buf[..n])))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

impl ContainerService {
    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, name_or_id: &str, body: ExecCreateBody) -> ApiResult<String> {
        let rec = self.get(name_or_id)?;
        if rec.state.status != Status::Running {
            return Err(not_running(&rec));
        }
        if body.cmd.is_empty() {
            return Err(ApiError::invalid("No exec command specified"));
        }
        exec_detach_keys(&body.detach_keys)?;
        let id = hex::encode(rand::random::<[u8; 32]>());
        self.execs.lock().insert(
            id.clone(),
            ExecEntry {
                id: id.clone(),
                container_id: rec.id.clone(),
                config: body,
                running: false,
                started: false,
                exit_code: None,
                pid: 0,
                pty: None,
            },
        );
        self.add_exec_id(&rec.id, &id);
        self.emit_exec_event(&id, "exec_create", None);
        Ok(id)
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> ApiResult<ExecInspect> {
        let e = self.execs.get(id)?;
        let c = &e.config;
        Ok(ExecInspect {
            id: e.id.clone(),
            running: e.running,
            exit_code: e.exit_code,
            process_config: ExecProcessConfig {
                tty: c.tty,
                entrypoint: c.cmd.first().cloned().unwrap_or_default(),
                arguments: c.cmd.iter().skip(1).cloned().collect(),
                privileged: c.privileged,
                user: c.user.clone(),
                working_dir: c.working_dir.clone(),
            },
            open_stdin: c.attach_stdin,
            open_stderr: c.attach_stderr,
            open_stdout: c.attach_stdout,
            container_id: e.container_id.clone(),
            pid: e.pid,
        })
    }

    /// Checks that exec `id` can start and marks it started; returns its config and
    /// whether it has a TTY.
    pub fn exec_prepare(&self, id: &str) -> ApiResult<ExecEntry> {
        let entry = {
            let mut execs = self.execs.lock();
            let e = execs.get_mut(id).ok_or_else(|| no_such_exec(id))?;
            if e.running {
                return Err(ApiError::conflict(format!(
                    "Error: Exec command {id} is already running"
                )));
            }
            if e.started {
                return Err(ApiError::conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            e.clone()
        };
        let rec = self.record_by_id(&entry.container_id)?;
        if rec.state.status != Status::Running {
            return Err(not_running(&rec));
        }
        self.execs.update(id, |e| e.started = true);
        self.emit_exec_event(id, "exec_start", None);
        Ok(entry)
    }

    pub(super) fn record_by_id(&self, id: &str) -> ApiResult<ContainerRecord> {
        self.get(id)
    }

    pub(super) fn exec_spec(&self, entry: &ExecEntry) -> ApiResult<ExecSpec> {
        let rec = self.record_by_id(&entry.container_id)?;
        if rec.state.status != Status::Running {
            return Err(not_running(&rec));
        }
        self.exec_spec_for(&rec, &entry.config)
    }

    /// The helper's spec for running `cfg` in the running container `rec`.
    pub(super) fn exec_spec_for(
        &self,
        rec: &ContainerRecord,
        cfg: &ExecCreateBody,
    ) -> ApiResult<ExecSpec> {
        let hc = &rec.host_config;
        Ok(ExecSpec {
            init_pid: rec.state.pid as i32,
            process: exec_process(rec, cfg),
            privileged: cfg.privileged || hc.privileged,
            cap_add: hc.cap_add.clone(),
            cap_drop: hc.cap_drop.clone(),
            security: super::security_opts::spec(hc, &self.config.security)?,
            rlimits: self.rlimits(hc),
            oom_score_adj: (hc.oom_score_adj != 0).then_some(hc.oom_score_adj as i32),
        })
    }

    /// `POST /exec/{id}/start` with `Detach`: starts and returns once the process runs.
    pub async fn exec_start_detached(self: &Arc<Self>, entry: ExecEntry) -> ApiResult<()> {
        let spec = self.exec_spec(&entry)?;
        let mut run = spawn_helper(&spec, false).await?;
        let id = entry.id.clone();
        // Nobody reads the output: drain it so the process never blocks.
        let mut outputs: Vec<Box<dyn AsyncRead + Send + Unpin>> = Vec::new();
        if let Some(out) = run.child.stdout.take() {
            outputs.push(Box::new(out));
        }
        if let Some(err) = run.child.stderr.take() {
            outputs.push(Box::new(err));
        }
        if let Some(m) = &run.master {
            outputs.push(Box::new(m.clone()));
        }
        for mut out in outputs {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut out, &mut tokio::io::sink()).await;
            });
        }
        match run.status {
            Ok(pid) => {
                let pty = run.master.take();
                self.execs.update(&id, |e| {
                    e.running = true;
                    e.pid = pid;
                    e.pty = pty;
                })
            }
            Err((msg, code)) => {
                let _ = run.child.wait().await;
                self.execs.update(&id, |e| e.exit_code = Some(code));
                self.emit_exec_event(&id, "exec_die", Some(code));
                return Err(ApiError::invalid(exec_error_message(&msg)));
            }
        }
        let svc = self.clone();
        tokio::spawn(async move {
            let code = run.child.wait().await.map(exit_code).unwrap_or(255);
            svc.exec_finished(&id, code);
        });
        Ok(())
    }

    /// Records the end of exec `id` and lets go of its pty.
    pub(super) fn exec_finished(&self, id: &str, code: i64) {
        self.execs.update(id, |e| {
            e.running = false;
            e.exit_code = Some(code);
            e.pty = None;
        });
        self.emit_exec_event(id, "exec_die", Some(code));
    }

    /// `POST /exec/{id}/resize`: sets the size of a running TTY exec's terminal. Like
    /// Docker it waits (up to 10 s) for an exec being started; without a TTY, or once the
    /// process is gone, there is nothing to resize and it succeeds.
    pub async fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> ApiResult<()> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let e = self.execs.get(id)?;
            if let Some(pty) = &e.pty {
                return pty
                    .resize(rows, cols)
                    .map_err(|err| ApiError::internal(format!("Cannot resize exec {id}: {err}")));
            }
            let done = e.running || e.exit_code.is_some();
            if done || !e.config.tty && e.started {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::internal("timeout waiting for exec session ready"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_process_inherits_container_settings() {
        let mut rec = ContainerRecord::default();
        rec.config.env = vec!["A=1".into(), "B=2".into()];
        rec.config.working_dir = "/srv".into();
        rec.config.user = "nobody".into();
        rec.config.hostname = "abc".into();
        let cfg = ExecCreateBody {
            cmd: vec!["sh".into()],
            env: vec!["B=3".into()],
            ..Default::default()
        };
        let p = exec_process(&rec, &cfg);
        assert_eq!(p.args, vec!["sh"]);
        assert!(p.env.contains(&"A=1".to_string()));
        assert!(p.env.contains(&"B=3".to_string()));
        assert!(!p.env.contains(&"B=2".to_string()));
        assert!(p.env.contains(&"HOSTNAME=abc".to_string()));
        assert_eq!(p.cwd, "/srv");
        assert_eq!(p.user, "nobody");
        let cfg = ExecCreateBody {
            cmd: vec!["id".into()],
            user: "root".into(),
            working_dir: "/tmp".into(),
            ..Default::default()
        };
        let p = exec_process(&rec, &cfg);
        assert_eq!((p.cwd.as_str(), p.user.as_str()), ("/tmp", "root"));
    }

    #[test]
    fn exec_detach_keys_default_and_errors() {
        assert_eq!(exec_detach_keys("").ok(), Some(vec![0x10, 0x11]));
        assert_eq!(exec_detach_keys("ctrl-p").ok(), Some(vec![0x10]));
        assert_eq!(
            exec_detach_keys("ctrl-pp").err().map(|e| e.message),
            Some("Invalid escape keys (ctrl-pp) provided".to_string())
        );
    }

    #[test]
    fn detach_keys_are_read_from_docker_py_s_spelling() {
        let body: ExecCreateBody =
            serde_json::from_str(r#"{"Cmd":["cat"],"detachKeys":"ctrl-p"}"#).expect("body");
        assert_eq!(body.detach_keys, "ctrl-p");
    }

    #[test]
    fn exit_codes_from_wait_status() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(4 << 8)), 4);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(9)), 137);
    }
}
