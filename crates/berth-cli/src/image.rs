//! Image commands: import, images, rmi, tag, history.

use berth_api::ImageDeleteItem;
use http::Method;
use serde_json::Value as Json;

use crate::args::*;
use crate::client::{query, seg, stream_body, Client, NO_BODY};
use crate::formatters::{
    history_headers, history_row, image_rows, images_headers, HISTORY_TABLE, IMAGES_DIGESTS_TABLE,
    IMAGES_TABLE,
};
use crate::opts;
use crate::template::Format;
use crate::Failure;

pub async fn import(c: &Client, a: &ImportArgs) -> Result<i32, Failure> {
    let mut q: Vec<(&str, String)> = Vec::new();
    let is_url = a.file.starts_with("http://") || a.file.starts_with("https://");
    q.push((
        "fromSrc",
        if a.file == "-" || !is_url {
            "-".to_string()
        } else {
            a.file.clone()
        },
    ));
    if let Some(r) = &a.reference {
        q.push(("repo", r.clone()));
    }
    if let Some(m) = &a.message {
        q.push(("message", m.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    for ch in &a.change {
        q.push(("changes", ch.clone()));
    }
    let body = if is_url {
        crate::client::empty()
    } else if a.file == "-" {
        stream_body(tokio::io::stdin())
    } else {
        let f = tokio::fs::File::open(&a.file)
            .await
            .map_err(|e| Failure::Msg(format!("open {}: {}", a.file, crate::io_error_text(&e))))?;
        stream_body(f)
    };
    let res = c
        .send(
            Method::POST,
            &format!("/images/create{}", query(&q)),
            body,
            Some("application/x-tar"),
        )
        .await?;
    let mut buf = Vec::new();
    crate::client::for_each_chunk(res, |b| buf.extend_from_slice(b)).await?;
    crate::container::print_json_messages(&buf, false).map_err(Failure::Msg)?;
    Ok(0)
}

pub async fn images(c: &Client, a: &ImagesArgs) -> Result<i32, Failure> {
    let default = if a.digests {
        IMAGES_DIGESTS_TABLE
    } else {
        IMAGES_TABLE
    };
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        a.format.clone().unwrap_or_else(|| default.to_string())
    };
    let format = match format.as_str() {
        "table" => default.to_string(),
        "json" => "{{json .}}".to_string(),
        _ => format,
    };
    let tmpl = Format::parse_rows(&format).map_err(|e| Failure::Msg(e.to_string()))?;
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let mut q = Vec::new();
    if a.all {
        q.push(("all", "1".to_string()));
    }
    if let Some(f) = opts::filters_json(&filters)? {
        q.push(("filters", f));
    }
    let list = c.get(&format!("/images/json{}", query(&q))).await?;
    let now = chrono::Utc::now();
    let digests = a.digests || format.contains("{{.Digest}}");
    let rows: Vec<Json> = list
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|img| image_rows(img, !a.no_trunc, digests, now, &|f| tmpl.wants(f)))
        .collect();
    out!(
        "{}",
        tmpl.render(&rows, &images_headers())
            .map_err(|e| Failure::Msg(e.to_string()))?
    );
    Ok(0)
}

pub async fn rmi(c: &Client, a: &RmiArgs) -> Result<i32, Failure> {
    let mut q = Vec::new();
    if a.force {
        q.push(("force", "1".to_string()));
    }
    if a.no_prune {
        q.push(("noprune", "1".to_string()));
    }
    let q = query(&q);
    let mut failed = false;
    for n in &a.names {
        match c
            .typed::<Vec<ImageDeleteItem>, _>(
                Method::DELETE,
                &format!("/images/{}{q}", seg(n)),
                NO_BODY,
            )
            .await
        {
            Ok(items) => {
                for item in items {
                    if let Some(u) = item.untagged {
                        outln!("Untagged: {u}");
                    }
                    if let Some(d) = item.deleted {
                        outln!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub async fn tag(c: &Client, a: &TagArgs) -> Result<i32, Failure> {
    let (repo, tag) = opts::split_ref(&a.target);
    let q = query(&[
        ("repo", opts::normalize_repo(&repo)),
        ("tag", tag.unwrap_or_else(|| "latest".into())),
    ]);
    c.call(
        Method::POST,
        &format!("/images/{}/tag{q}", seg(&a.source)),
        NO_BODY,
    )
    .await?;
    Ok(0)
}

pub async fn history(c: &Client, a: &HistoryArgs) -> Result<i32, Failure> {
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        a.format
            .clone()
            .unwrap_or_else(|| HISTORY_TABLE.to_string())
    };
    let format = match format.as_str() {
        "table" => HISTORY_TABLE.to_string(),
        "json" => "{{json .}}".to_string(),
        _ => format,
    };
    let tmpl = Format::parse_rows(&format).map_err(|e| Failure::Msg(e.to_string()))?;
    let list = c.get(&format!("/images/{}/history", seg(&a.image))).await?;
    let now = chrono::Utc::now();
    let rows: Vec<Json> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| history_row(h, !a.no_trunc, a.human, now))
        .collect();
    out!(
        "{}",
        tmpl.render(&rows, &history_headers(a.human))
            .map_err(|e| Failure::Msg(e.to_string()))?
    );
    Ok(0)
}
