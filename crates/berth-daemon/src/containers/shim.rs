//! The daemon's side of the shim protocol ([`berth_runtime::protocol`]): spawning
//! `berth shim <state-dir>` and talking to its control socket.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use berth_runtime::protocol::{ExitStatus, Reply, Request, ShimEvent, StartReply};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// The binary that shims and exec helpers run: the daemon's own image, through
/// `/proc/self/exe` (in the forked child it still names the daemon's binary), so that a
/// `berth` file replaced on disk (an upgrade, a rebuild) never splits a daemon from its
/// shims or breaks container starts until the daemon itself is restarted. Their argv[0] is
/// set to `berth`, so they show (and match) as `berth shim …` and `berth exec-helper …`.
pub const BERTH_EXE: &str = "/proc/self/exe";

/// The daemon's binary sealed once at start-up ([`seal_binary`]): what shims and exec
/// helpers run, so `/proc/<pid>/exe` of a Berth process inside a container's namespaces
/// is never the host's `berth` file (CVE-2019-5736).
static SEALED: std::sync::OnceLock<berth_runtime::sealed::SealedExe> = std::sync::OnceLock::new();

/// Seals the binary for every later spawn (overlay, else memfd; see
/// [`berth_runtime::sealed`]). Without it, spawns fall back to [`BERTH_EXE`] with a warning.
pub fn seal_binary(scratch: &Path) {
    let started = std::time::Instant::now();
    match berth_runtime::sealed::SealedExe::of_current_exe(scratch) {
        Ok(s) => {
            let micros = started.elapsed().as_micros() as u64;
            tracing::info!(seal = ?s.seal, micros, "binary sealed for shims and exec helpers");
            let _ = SEALED.set(s);
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not seal the binary; shims run from /proc/self/exe")
        }
    }
}

/// What to exec for a shim or an exec helper.
pub fn berth_exe() -> std::path::PathBuf {
    SEALED.get().map_or_else(|| BERTH_EXE.into(), |s| s.path())
}

/// Starts `berth shim <state-dir>` in its own session and reads its start-up line.
/// Returns the container's init pid, or the shim's error message.
pub async fn spawn(state_dir: &Path) -> Result<i64, String> {
    let exe = berth_exe();
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join("shim.log"))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg0("berth");
    cmd.arg("shim")
        .arg(state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    // Forked from a lifecycle thread, the shim inherits its lowered priority and sets
    // the container up at it (a start never takes the CPU from reads); at start it gives
    // the container and then itself the daemon's nice value back.
    cmd.env(
        berth_runtime::shim::NICE_ENV,
        crate::lifecycle_pool::base_nice().to_string(),
    );
    // A process group of its own (in the daemon's session, so that it shares the
    // daemon's scheduling group, as containerd's shims do): no signal to the daemon's
    // group or its terminal's reaches it.
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("starting the shim: {e}"))?;
    let stdout = child.stdout.take().ok_or("shim has no stdout")?;
    // Reap the shim whenever it exits (it stays our child while we live).
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    let mut line = String::new();
    let read = tokio::time::timeout(
        Duration::from_secs(60),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await;
    match read {
        Err(_) => return Err("timed out waiting for the shim to start".into()),
        Ok(Err(e)) => return Err(format!("reading the shim's start-up line: {e}")),
        Ok(Ok(_)) => {}
    }
    let line = line.trim_end();
    if let Some(pid) = line.strip_prefix("ok ") {
        return pid
            .trim()
            .parse()
            .map_err(|_| format!("shim answered {line:?}"));
    }
    if let Some(msg) = line.strip_prefix("error ") {
        return Err(msg.to_string());
    }
    let log = std::fs::read_to_string(state_dir.join("shim.log")).unwrap_or_default();
    Err(format!(
        "shim exited without starting the container: {}",
        log.trim()
    ))
}

/// The longest the daemon waits for a shim to answer a short request (signal, resize,
/// update) or to take a request line: a stopped or wedged shim never blocks a caller
/// longer than this.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a `start` may take: the shim answers once the container's exec succeeded
/// or failed.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("the shim did not answer {what} in time"),
    )
}

/// Opens a connection to the shim and sends one request line (never blocks: the connect
/// is non-blocking and the write has [`CALL_TIMEOUT`]).
pub async fn connect(state_dir: &Path, req: &Request) -> std::io::Result<UnixStream> {
    let std_stream = berth_runtime::protocol::connect_nonblocking(state_dir)?;
    let mut stream = UnixStream::from_std(std_stream)?;
    let mut line = serde_json::to_vec(req).map_err(std::io::Error::other)?;
    line.push(b'\n');
    tokio::time::timeout(CALL_TIMEOUT, stream.write_all(&line))
        .await
        .map_err(|_| timed_out("a request"))??;
    Ok(stream)
}

async fn read_json_line<T: serde::de::DeserializeOwned>(
    stream: UnixStream,
) -> std::io::Result<Option<T>> {
    let mut line = String::new();
    let n = BufReader::new(stream).read_line(&mut line).await?;
    if n == 0 {
        return Ok(None);
    }
    serde_json::from_str(line.trim_end())
        .map(Some)
        .map_err(std::io::Error::other)
}

pub async fn start(state_dir: &Path) -> std::io::Result<StartReply> {
    let stream = connect(state_dir, &Request::Start).await?;
    tokio::time::timeout(START_TIMEOUT, read_json_line(stream))
        .await
        .map_err(|_| timed_out("start"))??
        .ok_or_else(|| {
            std::io::Error::other("the shim closed the connection before answering start")
        })
}

/// A `wait` connection: resolve it with [`wait_exit`].
pub async fn open_wait(state_dir: &Path) -> std::io::Result<UnixStream> {
    connect(state_dir, &Request::Wait).await
}

/// The exit status from a `wait` connection; `None` when the shim died without one.
pub async fn wait_exit(stream: UnixStream) -> Option<ExitStatus> {
    read_json_line(stream).await.ok().flatten()
}

/// Why a short request to a shim failed.
#[derive(Debug)]
pub enum CallError {
    /// The shim did not take or answer the request within [`CALL_TIMEOUT`] (stopped,
    /// wedged), or could not be reached at all.
    Unreachable(String),
    /// The shim answered with an error.
    Refused(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(e) | CallError::Refused(e) => f.write_str(e),
        }
    }
}

impl From<CallError> for String {
    fn from(e: CallError) -> String {
        e.to_string()
    }
}

/// One request, one [`Reply`], all within [`CALL_TIMEOUT`].
async fn call(state_dir: &Path, req: Request) -> Result<(), CallError> {
    let exchange = async {
        let stream = connect(state_dir, &req)
            .await
            .map_err(|e| CallError::Unreachable(format!("connecting to the shim: {e}")))?;
        match read_json_line::<Reply>(stream).await {
            Ok(Some(r)) if r.ok || r.error.is_empty() => Ok(()),
            Ok(Some(r)) => Err(CallError::Refused(r.error)),
            Ok(None) => Err(CallError::Unreachable(
                "the shim closed the connection".into(),
            )),
            Err(e) => Err(CallError::Unreachable(e.to_string())),
        }
    };
    tokio::time::timeout(CALL_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(CallError::Unreachable(
                "the container's shim does not answer".into(),
            ))
        })
}

async fn simple(state_dir: &Path, req: Request) -> Result<(), String> {
    call(state_dir, req).await.map_err(String::from)
}

pub async fn signal(state_dir: &Path, signal: i32) -> Result<(), String> {
    simple(
        state_dir,
        Request::Signal {
            signal,
            manual: false,
            cancel_restart: false,
        },
    )
    .await
}

/// A signal from the user (`stop`, `kill`): the container counts as stopped by the user
/// and, with `cancel_restart`, its restart policy stops until the next start.
pub async fn signal_by_user(
    state_dir: &Path,
    signal: i32,
    cancel_restart: bool,
) -> Result<(), CallError> {
    call(
        state_dir,
        Request::Signal {
            signal,
            manual: true,
            cancel_restart,
        },
    )
    .await
}

/// A shim's `watch` stream.
pub type Watch = tokio::io::Lines<BufReader<UnixStream>>;

/// A `watch` connection: read its events with [`next_event`].
pub async fn open_watch(state_dir: &Path) -> std::io::Result<Watch> {
    let stream = connect(state_dir, &Request::Watch).await?;
    Ok(BufReader::new(stream).lines())
}

/// The next event of a `watch` connection; `None` once it closed (after the final
/// exit, or because the shim died).
pub async fn next_event(lines: &mut Watch) -> Option<ShimEvent> {
    let line = lines.next_line().await.ok()??;
    serde_json::from_str(&line).ok()
}

/// `update --restart` on a running container: the shim's new policy (blocking, short).
pub fn update_restart_blocking(
    state_dir: &Path,
    restart: berth_runtime::restart::RestartPolicy,
) -> Result<(), String> {
    use std::io::{BufRead, Write};
    let mut stream = berth_runtime::protocol::connect_nonblocking(state_dir)
        .map_err(|e| format!("connecting to the shim: {e}"))?;
    stream
        .set_nonblocking(false)
        .map_err(|e| format!("connecting to the shim: {e}"))?;
    let _ = stream.set_read_timeout(Some(CALL_TIMEOUT));
    let _ = stream.set_write_timeout(Some(CALL_TIMEOUT));
    let mut line = serde_json::to_vec(&Request::Update { restart }).map_err(|e| e.to_string())?;
    line.push(b'\n');
    stream.write_all(&line).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    match serde_json::from_str::<Reply>(answer.trim_end()) {
        Ok(r) if r.ok => Ok(()),
        Ok(r) => Err(r.error),
        Err(_) => Err("the shim closed the connection".into()),
    }
}

/// Makes the shim reopen the container's log file (CRI `ReopenContainerLog`).
pub async fn reopen_log(state_dir: &Path) -> Result<(), CallError> {
    call(state_dir, Request::ReopenLog).await
}

pub async fn resize(state_dir: &Path, height: u16, width: u16) -> Result<(), String> {
    simple(state_dir, Request::Resize { height, width }).await
}

/// `exit.json` left by a shim that finished while nobody listened.
pub fn read_exit_file(state_dir: &Path) -> Option<ExitStatus> {
    let bytes = std::fs::read(state_dir.join("exit.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether the shim recorded in `shim.pid` is still alive.
pub fn shim_alive(state_dir: &Path) -> bool {
    let Ok(pid) = std::fs::read_to_string(state_dir.join("shim.pid")) else {
        return false;
    };
    let Ok(pid) = pid.trim().parse::<i32>() else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the pid exists; no memory is passed.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// Waits (bounded) for the shim process to be gone, so its state dir can be removed.
pub async fn wait_shim_gone(state_dir: &Path, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while shim_alive(state_dir) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The pid in `shim.pid`, if the shim is alive.
fn shim_pid(state_dir: &Path) -> Option<i32> {
    let pid = std::fs::read_to_string(state_dir.join("shim.pid")).ok()?;
    let pid: i32 = pid.trim().parse().ok()?;
    // SAFETY: kill with signal 0 only checks that the pid exists; no memory is passed.
    (pid > 0 && unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
}

/// Sends `signal` straight to the container's init (`init.pid`), for when its shim does
/// not answer. The init is the shim's child: while the shim lives and has not reaped it,
/// the pid cannot name another process.
pub fn signal_init_directly(state_dir: &Path, signal: i32) -> Result<(), String> {
    if shim_pid(state_dir).is_none() {
        return Err("the container's shim is gone".into());
    }
    let pid: i32 = std::fs::read_to_string(state_dir.join("init.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .filter(|p| *p > 0)
        .ok_or("the container's init pid is unknown")?;
    // SAFETY: kill takes two integers; no memory is passed.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(format!(
            "cannot kill container: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// Ends a container without its shim's help (the shim is stopped, wedged, or the
/// container ignores SIGKILL through it): records a SIGKILL exit in `exit.json` unless the
/// shim wrote one, kills the shim, then every process in the container's cgroups
/// (`cgroup.kill`, or freeze + SIGKILL + thaw). The exit monitor then sees the shim's
/// connection close and records the exit.
pub async fn kill_hard(state_dir: &Path) {
    let state = state_dir.to_path_buf();
    let done = tokio::task::spawn_blocking(move || {
        let exit = state.join("exit.json");
        if !exit.exists() && state.exists() {
            let status = ExitStatus {
                exit_code: 128 + libc::SIGKILL as i64,
                finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                ..Default::default()
            };
            if let Ok(data) = serde_json::to_vec(&status) {
                let tmp = state.join("exit.json.daemon");
                if std::fs::write(&tmp, data).is_ok() {
                    let _ = std::fs::rename(&tmp, &exit);
                }
            }
        }
        if let Some(pid) = shim_pid(&state) {
            tracing::warn!(pid, state = %state.display(), "killing an unresponsive shim");
            // SAFETY: kill takes two integers; no memory is passed.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if let Err(e) = berth_runtime::cgroup_kill::kill_all(&state) {
            tracing::warn!(state = %state.display(), error = %e, "killing the container's cgroup");
        }
    });
    let _ = done.await;
}
