//! Image interchange and housekeeping commands: save, load, export, commit, image prune.

use std::io::{IsTerminal, Write};

use berth_api::{IdResponse, ImagePruneResponse};
use http::Method;
use serde_json::Value as Json;

use crate::args::{CommitArgs, ExportArgs, ImagePruneArgs, LoadArgs, SaveArgs};
use crate::client::{query, seg, stream_body, Client, NO_BODY};
use crate::{opts, Failure};

const TERMINAL_REFUSAL: &str =
    "cowardly refusing to save to a terminal. Use the -o flag or redirect";

/// Where a streamed archive goes: a file written beside its final path and renamed into
/// place when complete (Docker's `CopyToFile`), or stdout.
enum Sink {
    File {
        tmp: std::path::PathBuf,
        path: std::path::PathBuf,
        file: std::fs::File,
    },
    Stdout(std::io::Stdout),
}

impl Sink {
    fn open(output: Option<&str>, what: &str) -> Result<Sink, Failure> {
        let Some(path) = output.filter(|p| !p.is_empty()) else {
            if std::io::stdout().is_terminal() {
                return Err(Failure::Msg(TERMINAL_REFUSAL.into()));
            }
            return Ok(Sink::Stdout(std::io::stdout()));
        };
        let path = std::path::PathBuf::from(path);
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Failure::Msg(format!(
                "failed to {what}: invalid output path: directory {:?} does not exist",
                dir.display().to_string()
            )));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = std::fs::File::create(&tmp)
            .map_err(|e| Failure::Msg(format!("failed to {what}: {}", crate::io_error_text(&e))))?;
        Ok(Sink::File { tmp, path, file })
    }

    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::File { file, .. } => file.write_all(b),
            Sink::Stdout(s) => s.lock().write_all(b),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::File { tmp, path, file } => {
                file.sync_all()?;
                std::fs::rename(&tmp, &path)
            }
            Sink::Stdout(s) => s.lock().flush(),
        }
    }

    fn abandon(self) {
        if let Sink::File { tmp, .. } = self {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Streams a GET response into `output` (or stdout).
async fn download(
    c: &Client,
    path: &str,
    output: Option<&str>,
    what: &str,
) -> Result<i32, Failure> {
    let mut sink = Sink::open(output, what)?;
    let res = match c
        .send(Method::GET, path, crate::client::empty(), None)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            sink.abandon();
            return Err(e.into());
        }
    };
    let mut write_err = None;
    let streamed = crate::client::for_each_chunk(res, |b| {
        if write_err.is_none() {
            if let Err(e) = sink.write(b) {
                write_err = Some(e);
            }
        }
    })
    .await;
    if let Err(e) = streamed {
        sink.abandon();
        return Err(e.into());
    }
    if let Some(e) = write_err {
        sink.abandon();
        return Err(Failure::Msg(format!(
            "failed to {what}: {}",
            crate::io_error_text(&e)
        )));
    }
    sink.finish()
        .map_err(|e| Failure::Msg(format!("failed to {what}: {}", crate::io_error_text(&e))))?;
    Ok(0)
}

/// `save [-o FILE] IMAGE...`
pub async fn save(c: &Client, a: &SaveArgs) -> Result<i32, Failure> {
    let mut q: Vec<(&str, String)> = a.images.iter().map(|n| ("names", n.clone())).collect();
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    download(
        c,
        &format!("/images/get{}", query(&q)),
        a.output.as_deref(),
        "save image",
    )
    .await
}

/// `export [-o FILE] CONTAINER`
pub async fn export(c: &Client, a: &ExportArgs) -> Result<i32, Failure> {
    download(
        c,
        &format!("/containers/{}/export", seg(&a.container)),
        a.output.as_deref(),
        "export container",
    )
    .await
}

/// Prints a JSON message stream the way Docker's `DisplayJSONMessagesStream` does for
/// `load`: `stream` text as is, `status` lines, and the first `error` as the failure.
fn print_load_messages(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    for line in bytes.split(|b| *b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<Json>(line) else {
            continue;
        };
        if let Some(e) = msg
            .get("error")
            .and_then(Json::as_str)
            .or_else(|| msg.pointer("/errorDetail/message").and_then(Json::as_str))
        {
            return Err(e.to_string());
        }
        if let Some(s) = msg.get("stream").and_then(Json::as_str) {
            let _ = out.write_all(s.as_bytes());
        } else if let Some(s) = msg.get("status").and_then(Json::as_str) {
            let _ = writeln!(out, "{s}");
        }
    }
    Ok(())
}

/// `load [-i FILE] [-q]`
pub async fn load(c: &Client, a: &LoadArgs) -> Result<i32, Failure> {
    let body = match a.input.as_deref().filter(|p| !p.is_empty()) {
        Some(path) => {
            let f = tokio::fs::File::open(path)
                .await
                .map_err(|e| Failure::Msg(format!("open {path}: {}", crate::io_error_text(&e))))?;
            stream_body(f)
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Failure::Msg(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            stream_body(tokio::io::stdin())
        }
    };
    let mut q = vec![("quiet", if a.quiet { "1" } else { "0" }.to_string())];
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    let res = c
        .send(
            Method::POST,
            &format!("/images/load{}", query(&q)),
            body,
            Some("application/x-tar"),
        )
        .await?;
    let mut buf = Vec::new();
    crate::client::for_each_chunk(res, |b| buf.extend_from_slice(b)).await?;
    print_load_messages(&buf).map_err(Failure::Msg)?;
    Ok(0)
}

/// `commit [-a] [-m] [-c] [-p] CONTAINER [REPOSITORY[:TAG]]`: prints the new image ID.
pub async fn commit(c: &Client, a: &CommitArgs) -> Result<i32, Failure> {
    let mut q: Vec<(&str, String)> = vec![("container", a.container.clone())];
    if let Some(r) = a.reference.as_deref().filter(|r| !r.is_empty()) {
        let (repo, tag) = opts::split_ref(r);
        q.push(("repo", opts::normalize_repo(&repo)));
        if let Some(t) = tag {
            q.push(("tag", t));
        }
    }
    if let Some(m) = &a.message {
        q.push(("comment", m.clone()));
    }
    if let Some(au) = &a.author {
        q.push(("author", au.clone()));
    }
    q.push(("pause", if a.pause { "1" } else { "0" }.to_string()));
    for ch in &a.change {
        q.push(("changes", ch.clone()));
    }
    let r: IdResponse = c
        .typed(Method::POST, &format!("/commit{}", query(&q)), NO_BODY)
        .await?;
    println!("{}", r.id);
    Ok(0)
}

/// The text `image prune` prints for the daemon's answer (docker/cli `image/prune.go`).
pub fn prune_report(r: &ImagePruneResponse) -> String {
    let mut out = String::new();
    if let Some(items) = r.images_deleted.as_ref().filter(|i| !i.is_empty()) {
        out.push_str("Deleted Images:\n");
        for it in items {
            if let Some(u) = it.untagged.as_ref().filter(|s| !s.is_empty()) {
                out.push_str(&format!("untagged: {u}\n"));
            }
            if let Some(d) = it.deleted.as_ref().filter(|s| !s.is_empty()) {
                out.push_str(&format!("deleted: {d}\n"));
            }
        }
        out.push('\n');
    }
    out.push_str(&crate::formatters::reclaimed_space_line(r.space_reclaimed));
    out
}

/// `image prune [-a] [--filter] [-f]`
pub async fn prune(c: &Client, a: &ImagePruneArgs) -> Result<i32, Failure> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
    } else {
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
    };
    if !a.force && !crate::confirm(warning) {
        return Ok(0);
    }
    let mut filters = a.filter.clone();
    filters.push(format!("dangling={}", !a.all));
    let q = match opts::filters_json(&filters)? {
        Some(f) => query(&[("filters", f)]),
        None => String::new(),
    };
    let r: ImagePruneResponse = c
        .typed(Method::POST, &format!("/images/prune{q}"), NO_BODY)
        .await?;
    print!("{}", prune_report(&r));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_report_in_dockers_words() {
        let report = |j: Json| prune_report(&serde_json::from_value(j).unwrap());
        let r = serde_json::json!({"ImagesDeleted": [{"Untagged": "a:1"}, {"Deleted": "sha256:ab"}], "SpaceReclaimed": 2048});
        assert_eq!(report(r), "Deleted Images:\nuntagged: a:1\ndeleted: sha256:ab\n\nTotal reclaimed space: 2.048kB\n");
        let none = serde_json::json!({"ImagesDeleted": null, "SpaceReclaimed": 0});
        assert_eq!(report(none), "Total reclaimed space: 0B\n");
    }

    #[test]
    fn load_messages_print_streams_and_fail_on_errors() {
        assert!(print_load_messages(b"{\"stream\":\"Loaded image: a:1\\n\"}\r\n").is_ok());
        assert_eq!(
            print_load_messages(b"{\"error\":\"bad\",\"errorDetail\":{\"message\":\"bad\"}}")
                .unwrap_err(),
            "bad"
        );
    }
}
