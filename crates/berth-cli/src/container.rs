//! Container commands: create, run, start, stop, kill, restart, rm, ps, logs, wait,
//! rename, pause, unpause, top, exec, prune.

use http::Method;
use serde_json::{json, Map, Value as Json};

use crate::args::*;
use crate::client::{empty, query, seg, ApiError, Client};
use crate::formatters::{container_row, ps_headers, PS_TABLE};
use crate::opts::{self, FlagError};
use crate::template::Format;
use crate::{stream, terminal, Failure};

fn lookup_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Builds the `POST /containers/create` body as Docker's CLI does.
pub fn create_body(
    o: &ContainerOpts,
    image: &str,
    command: &[String],
    detach: bool,
) -> Result<Json, FlagError> {
    let mut env = Vec::new();
    for f in &o.env_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| FlagError(format!("open {f}: {}", crate::io_error_text(&e))))?;
        env.extend(opts::parse_env_file(&text, &lookup_env)?);
    }
    for e in &o.env {
        env.push(opts::env_value(e, &lookup_env)?);
    }
    let attach: Vec<String> = o.attach.iter().map(|a| a.to_lowercase()).collect();
    for a in &attach {
        if !["stdin", "stdout", "stderr"].contains(&a.as_str()) {
            return Err(FlagError(format!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR")));
        }
    }
    let (attach_stdin, attach_stdout, attach_stderr) = if detach {
        (false, false, false)
    } else if attach.is_empty() {
        (o.interactive, true, true)
    } else {
        (
            attach.iter().any(|a| a == "stdin"),
            attach.iter().any(|a| a == "stdout"),
            attach.iter().any(|a| a == "stderr"),
        )
    };
    let (exposed, bindings) = opts::ports(&o.publish, &o.expose)?;
    let mut volumes = Map::new();
    let mut binds = Vec::new();
    for v in &o.volume {
        if v.contains(':') {
            binds.push(Json::String(v.clone()));
        } else {
            volumes.insert(v.clone(), json!({}));
        }
    }
    let mounts = o
        .mount
        .iter()
        .map(|m| opts::parse_mount(m))
        .collect::<Result<Vec<_>, _>>()?;
    let tmpfs: Map<String, Json> = o
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((p, opt)) => (p.to_string(), Json::String(opt.to_string())),
            None => (t.clone(), Json::String(String::new())),
        })
        .collect();
    let links: Vec<Json> = o
        .link
        .iter()
        .map(|l| {
            Json::String(if l.contains(':') {
                l.clone()
            } else {
                format!("{l}:{l}")
            })
        })
        .collect();
    let entrypoint = o.entrypoint.as_ref().map(|e| json!([e]));
    let mut host = json!({
        "Binds": if binds.is_empty() { Json::Null } else { Json::Array(binds) },
        "NetworkMode": o.network.clone().unwrap_or_else(|| "default".into()),
        "PortBindings": bindings,
        "AutoRemove": o.rm,
        "Links": if links.is_empty() { Json::Null } else { Json::Array(links) },
        "CapAdd": if o.cap_add.is_empty() { Json::Null } else { json!(o.cap_add) },
        "CapDrop": if o.cap_drop.is_empty() { Json::Null } else { json!(o.cap_drop) },
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "ConsoleSize": if o.tty { let (h, w) = terminal::size().unwrap_or((0, 0)); json!([h, w]) } else { json!([0, 0]) },
        "Privileged": o.privileged,
        "PublishAllPorts": o.publish_all,
        "ReadonlyRootfs": o.read_only,
        "CgroupParent": o.cgroup_parent.clone().unwrap_or_default(),
        "CpuShares": o.cpu_shares.unwrap_or(0),
        "CpuPeriod": o.cpu_period.unwrap_or(0),
        "CpuQuota": o.cpu_quota.unwrap_or(0),
        "CpusetCpus": o.cpuset_cpus.clone().unwrap_or_default(),
        "Memory": o.memory.as_deref().map(|m| opts::parse_memory(m, "-m, --memory")).transpose()?.unwrap_or(0),
        "MemoryReservation": o.memory_reservation.as_deref().map(|m| opts::parse_memory(m, "--memory-reservation")).transpose()?.unwrap_or(0),
        "MemorySwap": o.memory_swap.as_deref().map(opts::parse_memory_swap).transpose()?.unwrap_or(0),
        "NanoCpus": o.cpus.as_deref().map(opts::parse_cpus).transpose()?.unwrap_or(0),
        "Mounts": if mounts.is_empty() { Json::Null } else { Json::Array(mounts) },
    });
    if let Some(h) = host.as_object_mut() {
        if let Some(p) = o.pids_limit {
            h.insert("PidsLimit".into(), json!(p));
        }
        if o.init {
            h.insert("Init".into(), json!(true));
        }
        if !tmpfs.is_empty() {
            h.insert("Tmpfs".into(), Json::Object(tmpfs));
        }
        if !o.volumes_from.is_empty() {
            h.insert("VolumesFrom".into(), json!(o.volumes_from));
        }
        if let Some(s) = &o.shm_size {
            h.insert(
                "ShmSize".into(),
                json!(opts::parse_memory(s, "--shm-size")?),
            );
        }
        if let Some(r) = &o.restart {
            let (name, count) = r.split_once(':').unwrap_or((r, "0"));
            let count: i64 = count.parse().map_err(|_| {
                FlagError(
                    "invalid restart policy format: maximum retry count must be an integer"
                        .to_string(),
                )
            })?;
            h.insert(
                "RestartPolicy".into(),
                json!({"Name": name, "MaximumRetryCount": count}),
            );
        }
    }
    let mut body = json!({
        "Hostname": o.hostname.clone().unwrap_or_default(),
        "Domainname": o.domainname.clone().unwrap_or_default(),
        "User": o.user.clone().unwrap_or_default(),
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
        "ExposedPorts": exposed,
        "Tty": o.tty,
        "OpenStdin": o.interactive,
        "StdinOnce": o.interactive && attach_stdin,
        "Env": env,
        "Cmd": if command.is_empty() { Json::Null } else { json!(command) },
        "Image": image,
        "Volumes": volumes,
        "WorkingDir": o.workdir.clone().unwrap_or_default(),
        "Entrypoint": entrypoint.unwrap_or(Json::Null),
        "Labels": opts::labels(&o.label),
        "HostConfig": host,
        "NetworkingConfig": {"EndpointsConfig": {}},
    });
    if let Some(b) = body.as_object_mut() {
        if let Some(s) = &o.stop_signal {
            b.insert("StopSignal".into(), json!(s));
        }
        if let Some(t) = o.stop_timeout {
            b.insert("StopTimeout".into(), json!(t));
        }
    }
    Ok(body)
}

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
    body: &Json,
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
    let res = match c.json(Method::POST, &path, Some(body)).await {
        Err(e) if e.status() == 404 && policy == PullPolicy::Missing && named.is_some() => {
            if !o.quiet {
                if let Some(n) = &named {
                    eprintln!("Unable to find image '{}' locally", n.familiar_string());
                }
            }
            crate::registry::pull_for_create(c, image, o.platform.as_deref(), o.quiet).await?;
            c.json(Method::POST, &path, Some(body)).await?
        }
        other => other?,
    };
    for w in res
        .get("Warnings")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    Ok(res
        .get("Id")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string())
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
) -> Result<Result<Json, i32>, Failure> {
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
    format!("/containers/{}/attach{}", seg(id), query(&q))
}

/// Starts `POST /containers/{id}/wait` and returns once its response headers are in (or
/// after a short grace), so that the wait is registered before the container starts.
async fn start_wait(
    c: &Client,
    id: &str,
    condition: &str,
) -> tokio::task::JoinHandle<Result<Json, ApiError>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let c = c.clone();
    let path = format!("/containers/{}/wait?condition={condition}", seg(id));
    let handle = tokio::spawn(async move {
        let res = c.send(Method::POST, &path, empty(), None).await;
        let _ = tx.send(());
        let res = res?;
        let mut body = Vec::new();
        crate::client::for_each_chunk(res, |b| body.extend_from_slice(b)).await?;
        serde_json::from_slice::<Json>(&body).map_err(|e| ApiError::Transport(e.to_string()))
    });
    let _ = tokio::time::timeout(std::time::Duration::from_millis(150), rx).await;
    handle
}

fn exit_status(
    res: Result<Result<Json, ApiError>, tokio::task::JoinError>,
) -> Result<i32, Failure> {
    match res {
        Ok(Ok(j)) => {
            if let Some(m) = j
                .pointer("/Error/Message")
                .and_then(Json::as_str)
                .filter(|m| !m.is_empty())
            {
                eprintln!("{m}");
                return Ok(125);
            }
            Ok(j.get("StatusCode").and_then(Json::as_i64).unwrap_or(0) as i32)
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
                    None,
                )
                .await;
        }
    }))
}

pub async fn run(c: &Client, a: &RunArgs) -> Result<i32, Failure> {
    let o = &a.opts;
    if o.tty && o.interactive && !terminal::stdin_is_tty() {
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
        if let Err(e) = c.call(Method::POST, &start_path, None).await {
            report_error("run", &e.to_string(), true);
            return Ok(start_error_code(&e.message()));
        }
        return Ok(0);
    }
    let attach_stdin = body["AttachStdin"].as_bool().unwrap_or(false);
    let attached = |k: &str| body[k].as_bool().unwrap_or(false);
    let path = attach_path(
        &id,
        attach_stdin,
        attached("AttachStdout"),
        attached("AttachStderr"),
    );
    let io = match c.hijack(&path, None).await {
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
    if let Err(e) = c.call(Method::POST, &start_path, None).await {
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
    if let Ok(Some(e)) = out {
        eprintln!("{e}");
    }
    exit_status(wait.await)
}

pub async fn start(c: &Client, a: &StartArgs) -> Result<i32, Failure> {
    if a.attach || a.interactive {
        if a.names.len() > 1 {
            return Err(Failure::Msg(
                "you cannot start and attach multiple containers at once".into(),
            ));
        }
        let name = &a.names[0];
        let info = c.get(&format!("/containers/{}/json", seg(name))).await?;
        let tty = info
            .pointer("/Config/Tty")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let open_stdin = info
            .pointer("/Config/OpenStdin")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let stdin = a.interactive && open_stdin;
        let id = info
            .get("Id")
            .and_then(Json::as_str)
            .unwrap_or(name)
            .to_string();
        let io = c.hijack(&attach_path(&id, stdin, true, true), None).await?;
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
                None,
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
        if let Ok(Some(e)) = out {
            eprintln!("{e}");
        }
        return exit_status(wait.await);
    }
    let mut failed = Vec::new();
    for n in &a.names {
        match c
            .call(Method::POST, &format!("/containers/{}/start", seg(n)), None)
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
    let info = c.get(&format!("/containers/{}/json", seg(&a.name))).await?;
    if info.pointer("/State/Running").and_then(Json::as_bool) != Some(true) {
        return Err(Failure::Msg(
            "You cannot attach to a stopped container, start it first".into(),
        ));
    }
    if info.pointer("/State/Paused").and_then(Json::as_bool) == Some(true) {
        return Err(Failure::Msg(
            "You cannot attach to a paused container, unpause it first".into(),
        ));
    }
    let id = info
        .get("Id")
        .and_then(Json::as_str)
        .unwrap_or(&a.name)
        .to_string();
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let stdin = !a.no_stdin
        && info
            .pointer("/Config/OpenStdin")
            .and_then(Json::as_bool)
            .unwrap_or(false);
    let wait = start_wait(c, &id, "next-exit").await;
    let io = c.hijack(&attach_path(&id, stdin, true, true), None).await?;
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
    if let Ok(Some(e)) = out {
        eprintln!("{e}");
    }
    exit_status(wait.await)
}

/// Runs one request per name; prints each name that succeeded and each error.
async fn for_each(
    c: &Client,
    names: &[String],
    method: Method,
    path: impl Fn(&str) -> String,
    ignore_404: bool,
) -> Result<i32, Failure> {
    let mut failed = false;
    for n in names {
        match c.call(method.clone(), &path(n), None).await {
            Ok(_) => outln!("{n}"),
            Err(e) if ignore_404 && e.status() == 404 => eprintln!("{e}"),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub async fn stop(c: &Client, a: &StopArgs, restart: bool) -> Result<i32, Failure> {
    let mut q = Vec::new();
    if let Some(s) = &a.signal {
        q.push(("signal", s.clone()));
    }
    if let Some(t) = a.time {
        q.push(("t", t.to_string()));
    }
    let verb = if restart { "restart" } else { "stop" };
    let q = query(&q);
    for_each(
        c,
        &a.names,
        Method::POST,
        |n| format!("/containers/{}/{verb}{q}", seg(n)),
        false,
    )
    .await
}

pub async fn kill(c: &Client, a: &KillArgs) -> Result<i32, Failure> {
    let q = query(
        &a.signal
            .iter()
            .map(|s| ("signal", s.clone()))
            .collect::<Vec<_>>(),
    );
    for_each(
        c,
        &a.names,
        Method::POST,
        |n| format!("/containers/{}/kill{q}", seg(n)),
        false,
    )
    .await
}

pub async fn rm(c: &Client, a: &RmArgs) -> Result<i32, Failure> {
    let mut q = Vec::new();
    if a.volumes {
        q.push(("v", "1".to_string()));
    }
    if a.link {
        q.push(("link", "1".to_string()));
    }
    if a.force {
        q.push(("force", "1".to_string()));
    }
    let q = query(&q);
    for_each(
        c,
        &a.names,
        Method::DELETE,
        |n| format!("/containers/{}{q}", seg(n.trim_matches('/'))),
        a.force,
    )
    .await
}

pub async fn pause(c: &Client, a: &Names, verb: &str) -> Result<i32, Failure> {
    for_each(
        c,
        &a.names,
        Method::POST,
        |n| format!("/containers/{}/{verb}", seg(n)),
        false,
    )
    .await
}

pub async fn wait(c: &Client, a: &Names) -> Result<i32, Failure> {
    let mut failed = false;
    for n in &a.names {
        match c
            .json(Method::POST, &format!("/containers/{}/wait", seg(n)), None)
            .await
        {
            Ok(j) => outln!(
                "{}",
                j.get("StatusCode").and_then(Json::as_i64).unwrap_or(0)
            ),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub async fn rename(c: &Client, a: &RenameArgs) -> Result<i32, Failure> {
    let new = a.new.trim();
    if a.old.trim().is_empty() || new.is_empty() {
        return Err(Failure::Msg(
            "Error: Neither old nor new names may be empty".into(),
        ));
    }
    match c
        .call(
            Method::POST,
            &format!(
                "/containers/{}/rename{}",
                seg(&a.old),
                query(&[("name", new.to_string())])
            ),
            None,
        )
        .await
    {
        Ok(_) => Ok(0),
        Err(e) => Err(Failure::Msg(format!(
            "{e}\nError: failed to rename container named {}",
            a.old
        ))),
    }
}

pub async fn top(c: &Client, a: &TopArgs) -> Result<i32, Failure> {
    let q = if a.ps_args.is_empty() {
        String::new()
    } else {
        query(&[("ps_args", a.ps_args.join(" "))])
    };
    let j = c
        .get(&format!("/containers/{}/top{q}", seg(&a.name)))
        .await?;
    let mut text = String::new();
    let titles: Vec<&str> = j
        .get("Titles")
        .and_then(Json::as_array)
        .map(|t| t.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    text.push_str(&titles.join("\t"));
    text.push('\n');
    for p in j
        .get("Processes")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let cells: Vec<&str> = p
            .as_array()
            .map(|r| r.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    out!("{}", crate::template::tabwrite(&text, 20, 3));
    Ok(0)
}

pub async fn ps(c: &Client, a: &PsArgs) -> Result<i32, Failure> {
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        a.format.clone().unwrap_or_else(|| PS_TABLE.to_string())
    };
    let format = if format == "table" {
        PS_TABLE.to_string()
    } else {
        format
    };
    let format = if a.size && a.format.is_none() && !a.quiet {
        format!("{format}\t{{{{.Size}}}}")
    } else {
        format
    };
    let tmpl = Format::parse_rows(&format).map_err(|e| Failure::Msg(e.ps_text()))?;
    let mut q = Vec::new();
    if a.all {
        q.push(("all", "1".to_string()));
    }
    let limit = if a.latest && a.last == -1 { 1 } else { a.last };
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    if a.size || format.contains(".Size") {
        q.push(("size", "1".to_string()));
    }
    if let Some(f) = opts::filters_json(&a.filter)? {
        q.push(("filters", f));
    }
    let list = c.get(&format!("/containers/json{}", query(&q))).await?;
    let now = chrono::Utc::now();
    let rows: Vec<Json> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|ct| container_row(ct, !a.no_trunc, now, &|f| tmpl.wants(f)))
        .collect();
    out!(
        "{}",
        tmpl.render(&rows, &ps_headers())
            .map_err(|e| Failure::Msg(e.ps_text()))?
    );
    Ok(0)
}

pub async fn logs(c: &Client, a: &LogsArgs) -> Result<i32, Failure> {
    let info = c.get(&format!("/containers/{}/json", seg(&a.name))).await?;
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let now = chrono::Utc::now();
    let mut q = vec![("stderr", "1".to_string()), ("stdout", "1".to_string())];
    if let Some(s) = &a.since {
        q.push((
            "since",
            crate::units::get_timestamp(s, now)
                .map_err(|e| FlagError(format!("invalid value for \"since\": {e}")))?,
        ));
    }
    if let Some(u) = &a.until {
        q.push((
            "until",
            crate::units::get_timestamp(u, now)
                .map_err(|e| FlagError(format!("invalid value for \"until\": {e}")))?,
        ));
    }
    if a.timestamps {
        q.push(("timestamps", "1".into()));
    }
    if a.follow {
        q.push(("follow", "1".into()));
    }
    if a.details {
        q.push(("details", "1".into()));
    }
    q.push(("tail", a.tail.clone()));
    let id = info
        .get("Id")
        .and_then(Json::as_str)
        .unwrap_or(&a.name)
        .to_string();
    let res = c
        .send(
            Method::GET,
            &format!("/containers/{}/logs{}", seg(&id), query(&q)),
            empty(),
            None,
        )
        .await?;
    let mut demux = stream::Demuxer::default();
    crate::client::for_each_chunk(res, |b| {
        if tty {
            stream::write_stdout(b);
        } else {
            for chunk in demux.push(b) {
                if let Some(e) = stream::emit(chunk) {
                    eprintln!("{e}");
                }
            }
        }
    })
    .await?;
    Ok(0)
}

/// The exec's initial terminal size (rows, columns), as the Docker CLI sends it: the
/// local terminal's with `-t`, else none.
fn exec_console_size(tty: bool, local: Option<(u16, u16)>) -> Json {
    match (tty, local) {
        (true, Some((h, w))) => json!([h, w]),
        _ => Json::Null,
    }
}

pub async fn exec(c: &Client, a: &ExecArgs) -> Result<i32, Failure> {
    let mut env = Vec::new();
    for f in &a.env_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| FlagError(format!("open {f}: {}", crate::io_error_text(&e))))?;
        env.extend(opts::parse_env_file(&text, &lookup_env)?);
    }
    for e in &a.env {
        env.push(opts::env_value(e, &lookup_env)?);
    }
    if a.tty && a.interactive && !terminal::stdin_is_tty() {
        eprintln!("the input device is not a TTY");
        return Ok(1);
    }
    c.get(&format!("/containers/{}/json", seg(&a.name))).await?;
    let body = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": a.interactive && !a.detach,
        "AttachStderr": !a.detach,
        "AttachStdout": !a.detach,
        "Detach": a.detach,
        "DetachKeys": "",
        "Env": if env.is_empty() { Json::Null } else { json!(env) },
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": a.command,
        "ConsoleSize": exec_console_size(a.tty, terminal::size()),
    });
    let created = c
        .json(
            Method::POST,
            &format!("/containers/{}/exec", seg(&a.name)),
            Some(&body),
        )
        .await?;
    let id = created
        .get("Id")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    let start = json!({"Detach": a.detach, "Tty": a.tty});
    let start_path = format!("/exec/{}/start", seg(&id));
    if a.detach {
        c.call(Method::POST, &start_path, Some(&start)).await?;
        return Ok(0);
    }
    let io = c.hijack(&start_path, Some(&start)).await?;
    let raw = if a.tty && a.interactive {
        terminal::RawMode::enter()
    } else {
        None
    };
    let resizer = if a.tty {
        Some(terminal::track_size(c, format!("/exec/{}/resize", seg(&id))).await)
    } else {
        None
    };
    let out = stream::session(io, a.tty, a.interactive).await;
    drop(raw);
    if let Some(r) = resizer {
        r.abort();
    }
    if let Ok(Some(e)) = out {
        eprintln!("{e}");
    }
    let info = c.get(&format!("/exec/{}/json", seg(&id))).await?;
    Ok(info.get("ExitCode").and_then(Json::as_i64).unwrap_or(0) as i32)
}

pub async fn prune(c: &Client, a: &PruneArgs) -> Result<i32, Failure> {
    if !a.force
        && !crate::confirm(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
        )
    {
        return Ok(0);
    }
    let q = match opts::filters_json(&a.filter)? {
        Some(f) => query(&[("filters", f)]),
        None => String::new(),
    };
    let r = c
        .json(Method::POST, &format!("/containers/prune{q}"), None)
        .await?;
    let deleted: Vec<&str> = r
        .get("ContainersDeleted")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        outln!("Deleted Containers:\n{}\n", deleted.join("\n"));
    }
    out!("{}", crate::formatters::reclaimed_space_line(&r));
    Ok(0)
}

#[cfg(test)]
mod tests {

    #[test]
    fn exec_console_size_only_with_a_tty() {
        assert_eq!(exec_console_size(true, Some((24, 80))), json!([24, 80]));
        assert_eq!(exec_console_size(true, None), Json::Null);
        assert_eq!(exec_console_size(false, Some((24, 80))), Json::Null);
    }

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

    use super::*;
    use clap::Parser;

    fn parse_run(args: &[&str]) -> RunArgs {
        let mut v = vec!["berth", "run"];
        v.extend_from_slice(args);
        match crate::args::Cli::try_parse_from(v).unwrap().cmd {
            Some(Cmd::Run(r)) => r,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn run_keeps_the_commands_own_flags() {
        let r = parse_run(&[
            "-d", "--name", "web", "-e", "A=1", "-h", "box", "busybox", "sh", "-c", "ls -l", "-d",
        ]);
        assert!(r.detach);
        assert_eq!(r.opts.name.as_deref(), Some("web"));
        assert_eq!(r.opts.hostname.as_deref(), Some("box"));
        assert_eq!(r.image, "busybox");
        assert_eq!(r.command, vec!["sh", "-c", "ls -l", "-d"]);
    }

    #[test]
    fn create_body_resources() {
        let r = parse_run(&[
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--cpus",
            "0.5",
            "-c",
            "512",
            "--pids-limit",
            "20",
            "-l",
            "a=b",
            "--entrypoint",
            "",
            "-p",
            "8080:80",
            "-v",
            "/data",
            "-v",
            "/h:/c:ro",
            "--init",
            "--rm",
            "busybox",
        ]);
        let b = create_body(&r.opts, &r.image, &r.command, false).unwrap();
        let h = &b["HostConfig"];
        assert_eq!(h["Memory"], 67_108_864);
        assert_eq!(h["MemorySwap"], -1);
        assert_eq!(h["NanoCpus"], 500_000_000);
        assert_eq!(h["CpuShares"], 512);
        assert_eq!(h["PidsLimit"], 20);
        assert_eq!(h["Init"], true);
        assert_eq!(h["AutoRemove"], true);
        assert_eq!(h["Binds"], json!(["/h:/c:ro"]));
        assert_eq!(
            h["PortBindings"],
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(b["Volumes"], json!({"/data": {}}));
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["Labels"], json!({"a": "b"}));
        assert_eq!(b["Cmd"], Json::Null);
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["AttachStdin"], false);
    }

    #[test]
    fn detached_create_attaches_nothing() {
        let r = parse_run(&["-d", "-i", "busybox", "cat"]);
        let b = create_body(&r.opts, &r.image, &r.command, true).unwrap();
        assert_eq!(b["AttachStdout"], false);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["Cmd"], json!(["cat"]));
    }

    #[test]
    fn bad_memory_is_a_flag_error() {
        let r = parse_run(&["-m", "lots", "busybox"]);
        let e = create_body(&r.opts, &r.image, &r.command, false).unwrap_err();
        assert_eq!(
            e.0,
            "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'"
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
