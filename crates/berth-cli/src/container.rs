//! Container commands: stop, kill, restart, rm, ps, logs, wait, rename, pause, unpause,
//! top, exec, prune; create, run, start and attach are in `create_run`.

use berth_api::{
    ContainerPruneResponse, ExecCreateBody, ExecInspect, ExecStartBody, IdResponse, TopResponse,
    WaitResponse,
};
use http::Method;
use serde_json::Value as Json;

use crate::args::*;
use crate::client::{empty, query, seg, Client, NO_BODY};
use crate::create_body::env_list;
use crate::formatters::{container_row, ps_headers, PS_TABLE};
use crate::opts::{self, FlagError};
use crate::template::Format;
use crate::{stream, terminal, Failure};

mod create_run;
pub(crate) use create_run::inspect_container;
pub use create_run::{attach, create, print_json_messages, run, start};

/// Runs one request per name; prints each name that succeeded and each error.
async fn for_each(
    c: &Client,
    names: &[String],
    method: Method,
    path: impl Fn(&str) -> String,
    ignore_404: bool,
) -> Result<i32, Failure> {
    use futures_util::StreamExt;
    // As the Docker CLI (`parallelOperation`): up to 50 requests at once, the results
    // printed in the order of the names.
    let mut results = futures_util::stream::iter(names.iter().map(|n| {
        let path = path(n);
        let method = method.clone();
        async move { (n, c.call(method, &path, NO_BODY).await) }
    }))
    .buffered(50);
    let mut failed = false;
    while let Some((n, result)) = results.next().await {
        match result {
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
            .typed::<WaitResponse, _>(
                Method::POST,
                &format!("/containers/{}/wait", seg(n)),
                NO_BODY,
            )
            .await
        {
            Ok(w) => outln!("{}", w.status_code),
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
            NO_BODY,
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
    let top: TopResponse = c
        .get_as(&format!("/containers/{}/top{q}", seg(&a.name)))
        .await?;
    let mut text = String::new();
    for row in std::iter::once(&top.titles).chain(&top.processes) {
        text.push_str(&row.join("\t"));
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
    // docker/cli asks for sizes when the template uses `.Size`, which `{{json .}}` does
    // (the `json` keyword does not).
    if a.size || format.contains(".Size") || format.replace(' ', "").contains("{{json.}}") {
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
    let info = inspect_container(c, &a.name).await?;
    let tty = info.config.tty;
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
    let id = info.id;
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
fn exec_console_size(tty: bool, local: Option<(u16, u16)>) -> Option<Vec<u16>> {
    match (tty, local) {
        (true, Some((h, w))) => Some(vec![h, w]),
        _ => None,
    }
}

pub async fn exec(c: &Client, a: &ExecArgs) -> Result<i32, Failure> {
    crate::detach::configure(a.detach_keys.as_deref()).map_err(Failure::Msg)?;
    let env = env_list(&a.env_file, &a.env)?;
    if a.tty && a.interactive && !terminal::stdin_is_tty() {
        eprintln!("the input device is not a TTY");
        return Ok(1);
    }
    inspect_container(c, &a.name).await?;
    let body = ExecCreateBody {
        user: a.user.clone().unwrap_or_default(),
        privileged: a.privileged,
        tty: a.tty,
        attach_stdin: a.interactive && !a.detach,
        attach_stderr: !a.detach,
        attach_stdout: !a.detach,
        detach: a.detach,
        detach_keys: crate::detach::spec().unwrap_or_default(),
        env,
        working_dir: a.workdir.clone().unwrap_or_default(),
        cmd: a.command.clone(),
        console_size: exec_console_size(a.tty, terminal::size()),
    };
    let created: IdResponse = c
        .typed(
            Method::POST,
            &format!("/containers/{}/exec", seg(&a.name)),
            Some(&body),
        )
        .await?;
    let id = created.id;
    let start = ExecStartBody {
        detach: a.detach,
        tty: a.tty,
        console_size: None,
    };
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
    if crate::detach::detached() {
        // As the Docker CLI 28: the exec keeps running, the CLI says so and ends with 1.
        eprintln!("read escape sequence");
        return Ok(1);
    }
    if let Ok(Some(e)) = out {
        eprintln!("{e}");
    }
    let info: ExecInspect = c.get_as(&format!("/exec/{}/json", seg(&id))).await?;
    Ok(info.exit_code.unwrap_or(0) as i32)
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
    let r: ContainerPruneResponse = c
        .typed(Method::POST, &format!("/containers/prune{q}"), NO_BODY)
        .await?;
    let deleted = r.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        outln!("Deleted Containers:\n{}\n", deleted.join("\n"));
    }
    out!(
        "{}",
        crate::formatters::reclaimed_space_line(r.space_reclaimed)
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_console_size_only_with_a_tty() {
        assert_eq!(exec_console_size(true, Some((24, 80))), Some(vec![24, 80]));
        assert_eq!(exec_console_size(true, None), None);
        assert_eq!(exec_console_size(false, Some((24, 80))), None);
    }
}
