//! Making a container and connecting a terminal to it: create, run, start, attach.

use berth_api::{ContainerCreateBody, ContainerInspect, IdResponse, WaitResponse};
use http::Method;
use serde_json::Value as Json;

use crate::args::*;
use crate::client::{empty, query, seg, ApiError, Client, NO_BODY};
use crate::create_body::create_body;
use crate::{stream, terminal, Failure};

/// Prints the JSON messages of a pull or import stream; returns the first error.
pub fn print_json_messages(bytes: &[u8], to_stderr: bool) -> Result<(), String> {
    for line in bytes.split(|b| *b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<Json>(line) else {
            continue;
        };
        if let Some(e) = msg.get("error").and_then(Json::as_str) {
            return Err(e.to_string());
        }
        let status = msg.get("status").and_then(Json::as_str).unwrap_or("");
        if status.is_empty() {
            continue;
        }
        let text = match msg.get("id").and_then(Json::as_str) {
            Some(id) if !id.is_empty() => format!("{id}: {status}"),
            _ => status.to_string(),
        };
        if to_stderr {
            eprintln!("{text}")
        } else {
            outln!("{text}")
        }
    }
    Ok(())
}

/// `--pull`: when `create`/`run` pull the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    Missing,
    Never,
}

impl PullPolicy {
    /// `validatePullOpt`: `always`, `missing` (also empty) or `never`.
    pub fn parse(v: &str) -> Result<PullPolicy, String> {
        match v {
            "always" => Ok(PullPolicy::Always),
            "missing" | "" => Ok(PullPolicy::Missing),
            "never" => Ok(PullPolicy::Never),
            _ => Err(format!(
                "invalid pull option: '{v}': must be one of \"always\", \"missing\" or \"never\""
            )),
        }
    }
}

/// Creates a container as docker/cli's `createContainer` does: with `--pull always` the
/// image is pulled first; with `missing` a 404 from the daemon prints "Unable to find
/// image" on stderr, pulls (progress on stderr) and retries once; with `never` the
/// daemon's error stands. Image IDs are never pulled.
async fn create_container(
    c: &Client,
    body: &ContainerCreateBody,
    o: &ContainerOpts,
    image: &str,
) -> Result<String, ApiError> {
    let policy = PullPolicy::parse(&o.pull).unwrap_or(PullPolicy::Missing);
    // `ParseAnyReference`: an image ID (`sha256:<hex>` or 64 hex digits) is not a name
    // and is never pulled.
    let is_id = image
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let named = if is_id {
        None
    } else {
        berth_image::Reference::parse_normalized(image)
            .ok()
            .map(|r| r.with_default_tag())
    };
    let mut q = Vec::new();
    if let Some(n) = &o.name {
        q.push(("name", n.clone()));
    }
    if let Some(p) = o.platform.as_ref().filter(|p| !p.is_empty()) {
        q.push(("platform", p.to_lowercase()));
    }
    let path = format!("/containers/create{}", query(&q));
    if policy == PullPolicy::Always && named.is_some() {
        crate::registry::pull_for_create(c, image, o.platform.as_deref(), o.quiet).await?;
    }
    let res: IdResponse = match c.typed(Method::POST, &path, Some(body)).await {
        Err(e) if e.status() == 404 && policy == PullPolicy::Missing && named.is_some() => {
            if !o.quiet {
                if let Some(n) = &named {
                    eprintln!("Unable to find image '{}' locally", n.familiar_string());
                }
            }
            crate::registry::pull_for_create(c, image, o.platform.as_deref(), o.quiet).await?;
            c.typed(Method::POST, &path, Some(body)).await?
        }
        other => other?,
    };
    for w in &res.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(res.id)
}

/// `GET /containers/{name}/json`.
pub(crate) async fn inspect_container(
    c: &Client,
    name: &str,
) -> Result<ContainerInspect, ApiError> {
    c.get_as(&format!("/containers/{}/json", seg(name))).await
}

/// docker/cli `reportError` (CLI 28): `berth: <msg>` and, when asked, the `--help` hint.
fn report_error(cmd: &str, msg: &str, with_help: bool) {
    let mut s = msg.to_string();
    if with_help {
        s.push_str(&format!(
            "\n\nRun 'berth {cmd} --help' for more information"
        ));
    }
    eprintln!("berth: {s}");
}

/// docker/cli `runStartContainerErr`: 127 when the command is missing, 126 when it cannot
/// be executed, else 125.
pub fn start_error_code(msg: &str) -> i32 {
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

/// `create_body`, with Docker's reporting: unreadable env files through `reportError`
/// (exit 125), bad flag values as flag errors.
fn create_body_for(
    cmd: &str,
    o: &ContainerOpts,
    image: &str,
    command: &[String],
    detach: bool,
) -> Result<Result<ContainerCreateBody, i32>, Failure> {
    match create_body(o, image, command, detach) {
        Ok(b) => Ok(Ok(b)),
        Err(e) if e.0.starts_with("open ") => {
            report_error(cmd, &e.0, true);
            Ok(Err(125))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn create(c: &Client, a: &CreateArgs) -> Result<i32, Failure> {
    if let Err(e) = PullPolicy::parse(&a.opts.pull) {
        report_error("create", &e, true);
        return Ok(125);
    }
    let body = match create_body_for("create", &a.opts, &a.image, &a.command, false)? {
        Ok(b) => b,
        Err(code) => return Ok(code),
    };
    // Unlike run, Docker's create prints a daemon error plainly and exits 1.
    let id = create_container(c, &body, &a.opts, &a.image).await?;
    outln!("{id}");
    Ok(0)
}

/// `POST /containers/{id}/attach?stream=1&…` for the streams asked for (run, start -a, attach).
fn attach_path(id: &str, stdin: bool, stdout: bool, stderr: bool) -> String {
    let mut q = vec![("stream", "1".to_string())];
    for (name, on) in [("stdin", stdin), ("stdout", stdout), ("stderr", stderr)] {
        if on {
            q.push((name, "1".into()));
        }
    }
    if let Some(k) = crate::detach::spec() {
        q.push(("detachKeys", k));
    }
    format!("/containers/{}/attach{}", seg(id), query(&q))
}

/// Starts `POST /containers/{id}/wait` and returns once its response headers are in (or
/// after a short grace), so that the wait is registered before the container starts.
async fn start_wait(
    c: &Client,
    id: &str,
    condition: &str,
) -> tokio::task::JoinHandle<Result<WaitResponse, ApiError>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let c = c.clone();
    let path = format!("/containers/{}/wait?condition={condition}", seg(id));
    let handle = tokio::spawn(async move {
        let res = c.send(Method::POST, &path, empty(), None).await;
        let _ = tx.send(());
        let res = res?;
        let mut body = Vec::new();
        crate::client::for_each_chunk(res, |b| body.extend_from_slice(b)).await?;
        serde_json::from_slice(&body).map_err(|e| ApiError::Transport(e.to_string()))
    });
    let _ = tokio::time::timeout(std::time::Duration::from_millis(150), rx).await;
    handle
}

fn exit_status(
    res: Result<Result<WaitResponse, ApiError>, tokio::task::JoinError>,
) -> Result<i32, Failure> {
    match res {
        Ok(Ok(w)) => {
            if let Some(e) = w.error.filter(|e| !e.message.is_empty()) {
                eprintln!("{}", e.message);
                return Ok(125);
            }
            Ok(w.status_code as i32)
        }
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(Failure::Msg(e.to_string())),
    }
}

/// Forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT to the container, as `--sig-proxy` does.
fn proxy_signals(c: &Client, id: &str) -> Option<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
    ];
    let mut streams = Vec::new();
    for (k, name) in kinds {
        streams.push((signal(k).ok()?, name));
    }
    let c = c.clone();
    let id = id.to_string();
    Some(tokio::spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (mut s, name) in streams {
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(name).is_err() {
                        break;
                    }
                }
            });
        }
        while let Some(name) = rx.recv().await {
            let _ = c
                .call(
                    Method::POST,
                    &format!("/containers/{}/kill?signal={name}", seg(&id)),
                    NO_BODY,
                )
                .await;
        }
    }))
}

pub async fn run(c: &Client, a: &RunArgs) -> Result<i32, Failure> {
    crate::detach::configure(a.detach_keys.as_deref()).map_err(Failure::Msg)?;
    let o = &a.opts;
    // Docker checks the terminal only when it attaches stdin (not with -d).
    if o.tty && o.interactive && !a.detach && !terminal::stdin_is_tty() {
        eprintln!("the input device is not a TTY");
        return Ok(1);
    }
    if let Err(e) = PullPolicy::parse(&o.pull) {
        report_error("run", &e, true);
        return Ok(125);
    }
    let body = match create_body_for("run", o, &a.image, &a.command, a.detach)? {
        Ok(b) => b,
        Err(code) => return Ok(code),
    };
    let id = match create_container(c, &body, o, &a.image).await {
        Ok(id) => id,
        Err(e) => {
            report_error("run", &e.to_string(), true);
            return Ok(125);
        }
    };
    let start_path = format!("/containers/{}/start", seg(&id));
    if a.detach {
        // Docker prints the ID before it starts the container.
        outln!("{id}");
        if let Err(e) = c.call(Method::POST, &start_path, NO_BODY).await {
            report_error("run", &e.to_string(), true);
            return Ok(start_error_code(&e.message()));
        }
        return Ok(0);
    }
    let attach_stdin = body.config.attach_stdin;
    let path = attach_path(
        &id,
        attach_stdin,
        body.config.attach_stdout,
        body.config.attach_stderr,
    );
    let io = match c.hijack(&path, NO_BODY).await {
        Ok(io) => Some(io),
        Err(e) => {
            report_error("run", &e.to_string(), true);
            return Ok(125);
        }
    };
    let wait = start_wait(c, &id, if o.rm { "removed" } else { "next-exit" }).await;
    let raw = if o.tty && attach_stdin {
        terminal::RawMode::enter()
    } else {
        None
    };
    if let Err(e) = c.call(Method::POST, &start_path, NO_BODY).await {
        drop(raw);
        report_error("run", &e.to_string(), true);
        if o.rm {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), wait).await;
        }
        return Ok(start_error_code(&e.message()));
    }
    let resizer = if o.tty {
        Some(terminal::track_size(c, format!("/containers/{}/resize", seg(&id))).await)
    } else {
        None
    };
    let sig = if a.sig_proxy && !o.tty {
        proxy_signals(c, &id)
    } else {
        None
    };
    let out = match io {
        Some(io) => stream::session(io, o.tty, attach_stdin).await,
        None => Ok(None),
    };
    drop(raw);
    if let Some(s) = sig {
        s.abort();
    }
    if let Some(r) = resizer {
        r.abort();
    }
    if crate::detach::detached() {
        // docker run -it: ctrl-p ctrl-q leaves the container running, exit 0, no message.
        return Ok(0);
    }
    if let Ok(Some(e)) = out {
        eprintln!("{e}");
    }
    exit_status(wait.await)
}

pub async fn start(c: &Client, a: &StartArgs) -> Result<i32, Failure> {
    crate::detach::configure(a.detach_keys.as_deref()).map_err(Failure::Msg)?;
    if a.attach || a.interactive {
        if a.names.len() > 1 {
            return Err(Failure::Msg(
                "you cannot start and attach multiple containers at once".into(),
            ));
        }
        let name = &a.names[0];
        let info = inspect_container(c, name).await?;
        let tty = info.config.tty;
        let stdin = a.interactive && info.config.open_stdin;
        let id = info.id;
        let io = c
            .hijack(&attach_path(&id, stdin, true, true), NO_BODY)
            .await?;
        let wait = start_wait(c, &id, "next-exit").await;
        let raw = if tty && stdin {
            terminal::RawMode::enter()
        } else {
            None
        };
        if let Err(e) = c
            .call(
                Method::POST,
                &format!("/containers/{}/start", seg(&id)),
                NO_BODY,
            )
            .await
        {
            drop(raw);
            return Err(e.into());
        }
        if tty {
            terminal::send_resize(c, &format!("/containers/{}/resize", seg(&id))).await;
        }
        let out = stream::session(io, tty, stdin).await;
        drop(raw);
        if crate::detach::detached() {
            // As `run -it`: the Docker CLI detaches `start -ai` silently, exit 0.
            return Ok(0);
        }
        if let Ok(Some(e)) = out {
            eprintln!("{e}");
        }
        return exit_status(wait.await);
    }
    let mut failed = Vec::new();
    for n in &a.names {
        match c
            .call(
                Method::POST,
                &format!("/containers/{}/start", seg(n)),
                NO_BODY,
            )
            .await
        {
            Ok(_) => outln!("{n}"),
            Err(e) => {
                eprintln!("{e}");
                failed.push(n.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(Failure::Msg(format!(
            "Error: failed to start containers: {}",
            failed.join(", ")
        )))
    }
}

/// `berth attach`: the container's streams (and stdin unless `--no-stdin`) until it
/// exits; the exit code is the container's.
pub async fn attach(c: &Client, a: &AttachArgs) -> Result<i32, Failure> {
    crate::detach::configure(a.detach_keys.as_deref()).map_err(Failure::Msg)?;
    let info = inspect_container(c, &a.name).await?;
    if !info.state.running {
        return Err(Failure::Msg(
            "You cannot attach to a stopped container, start it first".into(),
        ));
    }
    if info.state.paused {
        return Err(Failure::Msg(
            "You cannot attach to a paused container, unpause it first".into(),
        ));
    }
    let id = info.id;
    let tty = info.config.tty;
    let stdin = !a.no_stdin && info.config.open_stdin;
    let wait = start_wait(c, &id, "next-exit").await;
    let io = c
        .hijack(&attach_path(&id, stdin, true, true), NO_BODY)
        .await?;
    let raw = if tty && stdin {
        terminal::RawMode::enter()
    } else {
        None
    };
    let resizer = if tty {
        Some(terminal::track_size(c, format!("/containers/{}/resize", seg(&id))).await)
    } else {
        None
    };
    let sig = if a.sig_proxy && !tty {
        proxy_signals(c, &id)
    } else {
        None
    };
    let out = stream::session(io, tty, stdin).await;
    drop(raw);
    for h in [resizer, sig].into_iter().flatten() {
        h.abort();
    }
    if crate::detach::detached() {
        // docker attach: "read escape sequence", exit 1, the container keeps running.
        eprintln!("read escape sequence");
        return Ok(1);
    }
    if let Ok(Some(e)) = out {
        eprintln!("{e}");
    }
    exit_status(wait.await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies() {
        assert_eq!(PullPolicy::parse("always"), Ok(PullPolicy::Always));
        assert_eq!(PullPolicy::parse(""), Ok(PullPolicy::Missing));
        assert_eq!(PullPolicy::parse("never"), Ok(PullPolicy::Never));
        assert_eq!(
            PullPolicy::parse("Always").unwrap_err(),
            "invalid pull option: 'Always': must be one of \"always\", \"missing\" or \"never\""
        );
    }

    #[test]
    fn start_errors_map_to_docker_exit_codes() {
        assert_eq!(
            start_error_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_error_code("exec /etc: permission denied"), 126);
        assert_eq!(start_error_code("cgroup failure"), 125);
    }
}
