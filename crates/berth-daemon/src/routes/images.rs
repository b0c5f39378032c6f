//! Images routes: import (`POST /images/create?fromSrc=-`), list, inspect, history, tag,
//! push, save, load, delete. Image names contain `/` (`localhost:5000/a/b:v1`): the
//! router encodes them into one segment before routing (see [`super::one_segment_names`]),
//! so each per-image action is a row of the table.
//!
//! Store calls block (disk, fsync, redb): they run in `spawn_blocking`. The import body
//! is streamed into the store through a bounded channel, never held whole in memory.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use berth_api::{ImageDeleteItem, JsonMessage};
use berth_image::{ImageStore, ImageUser, ImportOptions, ListOptions, Reference};
use http::StatusCode;

use super::extract::Query;
use crate::error::{blocking, ApiError, ApiResult};
use crate::state::Daemon;
use crate::version::ApiVersion;

pub fn routes() -> Router<Daemon> {
    Router::new()
        .route("/images/json", get(list_images))
        .route("/images/create", post(create_image))
        .route("/images/get", get(save_images))
        .route("/images/load", post(load_images))
        .route("/images/prune", post(prune_images))
        .route("/images/{name}/json", get(inspect_image))
        .route("/images/{name}/history", get(image_history))
        .route("/images/{name}/get", get(save_image))
        .route("/images/{name}/tag", post(tag_image))
        .route("/images/{name}/push", post(push_image))
        .route("/images/{name}", delete(delete_image))
        .route(
            "/images/{name}/{*action}",
            get(no_such_image_route).post(no_such_image_route),
        )
}

/// `GET /images/json`.
async fn list_images(
    State(d): State<Daemon>,
    version: Option<Extension<ApiVersion>>,
    q: Query,
) -> ApiResult<Response> {
    let mut filters = q.filters()?;
    if let Some(f) = q.get("filter").filter(|f| !f.is_empty()) {
        // API < 1.41 clients send a reference glob as `filter`.
        filters
            .entry("reference".into())
            .or_default()
            .push(f.to_string());
    }
    let opts = ListOptions {
        all: q.bool("all"),
        filters,
    };
    let images = d.images.clone();
    let mut rows = blocking(move || Ok(images.list(&opts)?)).await?;
    let v = version.map(|Extension(v)| v);
    if v.is_some_and(|v| !v.at_least("1.43")) {
        for r in &mut rows {
            if r.repo_tags.is_empty() && r.repo_digests.is_empty() {
                r.repo_tags.push("<none>:<none>".into());
                r.repo_digests.push("<none>@<none>".into());
            }
        }
    }
    if v.is_none_or(|v| v.at_least("1.44")) {
        for r in &mut rows {
            r.virtual_size = None;
        }
    }
    Ok(Json(rows).into_response())
}

/// Removes fields that API `version` (or the maximum, when not given) no longer has:
/// each `(since, field)` is dropped for versions at or above `since` (moby's legacy
/// field handling in `api/server/router/image`).
fn drop_fields(v: &mut serde_json::Value, version: Option<ApiVersion>, fields: &[(&str, &str)]) {
    let Some(obj) = v.as_object_mut() else { return };
    for (since, field) in fields {
        if version.is_none_or(|v| v.at_least(since)) {
            obj.remove(*field);
        }
    }
}

fn json_stream_line(msg: &JsonMessage) -> String {
    let mut s = serde_json::to_string(msg).unwrap_or_default();
    s.push_str("\r\n");
    s
}

fn json_stream(lines: Vec<JsonMessage>) -> Response {
    let body: String = lines.iter().map(json_stream_line).collect();
    ([(http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn status(s: impl Into<String>) -> JsonMessage {
    JsonMessage {
        status: Some(s.into()),
        ..Default::default()
    }
}

/// `repo` (may carry a tag) plus an optional `tag` → the reference to tag with.
pub(super) fn repo_tag(repo: &str, tag: &str) -> ApiResult<Option<String>> {
    if repo.is_empty() {
        return Ok(None);
    }
    let mut r = Reference::parse_normalized(repo).map_err(|e| ApiError::invalid(e.0))?;
    if !tag.is_empty() {
        r = r.with_tag(tag).map_err(|e| ApiError::invalid(e.0))?;
    }
    Ok(Some(r.to_string()))
}

/// `POST /images/create`: `fromSrc=-` imports the body, `fromSrc=http://…` what the
/// daemon downloads from there; `fromImage` pulls (see [`crate::distribution::pull`]).
async fn create_image(State(d): State<Daemon>, q: Query, req: Request) -> ApiResult<Response> {
    if let Some(src) = q.get("fromSrc").filter(|s| !s.is_empty()) {
        let body = if src == "-" {
            req.into_body()
        } else {
            fetch_url(src).await?
        };
        let opts = ImportOptions {
            reference: repo_tag(&q.str("repo"), &q.str("tag"))?,
            changes: q.all("changes"),
            message: q.str("message"),
        };
        let reader = crate::request_body::blocking_reader(body);
        let images = d.images.clone();
        let id = blocking(move || {
            let mut reader = reader;
            let id = images.import(&mut reader, &opts);
            reader.drain_rest();
            Ok(id?)
        })
        .await?;
        d.emit_image_event("import", &id, &id);
        return Ok(json_stream(vec![status(id)]));
    }
    let image = q.str("fromImage");
    if image.is_empty() {
        return Err(ApiError::invalid(
            "either fromSrc or fromImage must be given",
        ));
    }
    let tag = q.str("tag");
    let name = if tag.is_empty() {
        image.clone()
    } else if tag.starts_with("sha256:") {
        format!("{image}@{tag}")
    } else {
        format!("{image}:{tag}")
    };
    let reference = Reference::parse_normalized(&name).map_err(|e| ApiError::invalid(e.0))?;
    // No tag and no digest anywhere: every tag of the repository (`pull -a`).
    let all_tags = reference.tag().is_none() && reference.digest().is_none();
    let platform = match q.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => berth_registry::Platform::parse(p)?,
        None => berth_registry::Platform::host(),
    };
    let auth = registry_auth(req.headers())?;
    crate::distribution::pull::start(
        &d,
        crate::distribution::pull::PullRequest {
            reference,
            all_tags,
            platform,
            auth,
        },
    )
    .await
}

/// The `X-Registry-Auth` header, if any credentials are in it.
pub(crate) fn registry_auth(headers: &http::HeaderMap) -> ApiResult<Option<berth_api::AuthConfig>> {
    match headers.get("x-registry-auth").map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(v)) => berth_api::AuthConfig::from_header(v).map_err(ApiError::invalid),
        Some(Err(_)) => Err(ApiError::invalid(
            "invalid X-Registry-Auth header: not ASCII",
        )),
    }
}

/// `GET` of an `http://` URL for `import` (moby's `fromSrc=<url>`): the response body,
/// streamed. Redirects are followed (at most 10); a non-2xx answer is an error in moby's
/// words. Only plain HTTP is supported.
async fn fetch_url(src: &str) -> ApiResult<Body> {
    Ok(fetch_url_with_headers(src).await?.1)
}

/// [`fetch_url`] with the response headers (ADD of a URL in a build reads `Last-Modified`).
pub(crate) async fn fetch_url_with_headers(src: &str) -> ApiResult<(http::HeaderMap, Body)> {
    let mut url = src.to_string();
    for _ in 0..10 {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| ApiError::invalid(format!("invalid URL {url:?}: {e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(ApiError::not_implemented(format!("Get {url:?}: https is not supported by this daemon; serve the file over http"))),
            _ => return Err(ApiError::invalid(format!("invalid URL {url:?}: only http:// URLs (or - for the request body) can be imported"))),
        }
        let host = uri
            .host()
            .ok_or_else(|| ApiError::invalid(format!("invalid URL {url:?}: no host")))?
            .to_string();
        let port = uri.port_u16().unwrap_or(80);
        let get_err = |e: &dyn std::fmt::Display| ApiError::internal(format!("Get {url:?}: {e}"));
        let stream =
            tokio::net::TcpStream::connect((host.trim_matches(|c| c == '[' || c == ']'), port))
                .await
                .map_err(|e| {
                    // Go's wording: `dial tcp 127.0.0.1:9: connect: connection refused`.
                    let text = match e.raw_os_error() {
                        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
                        None => e.to_string(),
                    };
                    get_err(&format!("dial tcp {host}:{port}: connect: {text}"))
                })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Body>(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| get_err(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let host_header = match uri.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let req = http::Request::get(path)
            .header(http::header::HOST, host_header)
            .header(http::header::USER_AGENT, "Berth")
            .body(Body::empty())
            .map_err(|e| get_err(&e))?;
        let res = sender.send_request(req).await.map_err(|e| get_err(&e))?;
        let status = res.status();
        if status.is_redirection() {
            if let Some(loc) = res
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            {
                url = if loc.starts_with('/') {
                    format!("http://{}:{port}{loc}", host)
                } else {
                    loc.to_string()
                };
                continue;
            }
        }
        if !status.is_success() {
            return Err(ApiError::internal(format!(
                "failed to GET {url} with status {}",
                format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or_default()
                )
                .trim()
            )));
        }
        let headers = res.headers().clone();
        return Ok((headers, Body::new(res.into_body())));
    }
    Err(ApiError::invalid(format!(
        "Get {src:?}: stopped after 10 redirects"
    )))
}

fn page_not_found() -> ApiError {
    ApiError::not_found("page not found")
}

/// `GET /images/{name}/json`.
async fn inspect_image(
    State(d): State<Daemon>,
    version: Option<Extension<ApiVersion>>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let images = d.images.clone();
    let inspect = blocking(move || Ok(images.inspect(&name)?)).await?;
    let mut value = serde_json::to_value(inspect).map_err(|e| ApiError::internal(e.to_string()))?;
    let fields = [
        ("1.44", "VirtualSize"),
        ("1.45", "Container"),
        ("1.45", "ContainerConfig"),
    ];
    drop_fields(&mut value, version.map(|Extension(v)| v), &fields);
    Ok(Json(value).into_response())
}

/// `GET /images/{name}/history`.
async fn image_history(State(d): State<Daemon>, Path(name): Path<String>) -> ApiResult<Response> {
    let images = d.images.clone();
    let v = blocking(move || Ok(images.history(&name)?)).await?;
    Ok(Json(v).into_response())
}

/// `GET /images/{name}/get`.
async fn save_image(State(d): State<Daemon>, Path(name): Path<String>) -> ApiResult<Response> {
    save(d, vec![name]).await
}

/// A `GET` or `POST` under `/images/` that names no action.
async fn no_such_image_route() -> ApiError {
    page_not_found()
}

/// `GET /images/get?names=a&names=b`.
async fn save_images(State(d): State<Daemon>, q: Query) -> ApiResult<Response> {
    save(d, q.all("names")).await
}

/// A blocking `Write` that feeds a response body through a bounded channel.
struct BodyWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl BodyWriter {
    const CHUNK: usize = 64 * 1024;
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl std::io::Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= Self::CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Streams `docker save` output. Names are resolved first, so a missing image is a
/// proper 404; a failure later can only cut the stream short.
async fn save(d: Daemon, names: Vec<String>) -> ApiResult<Response> {
    if names.is_empty() {
        return Err(ApiError::invalid("no image names given"));
    }
    let images = d.images.clone();
    let check = names.clone();
    blocking(move || {
        for n in &check {
            images.resolve_id(n)?;
        }
        Ok(())
    })
    .await?;
    for id in names.iter().filter_map(|n| d.images.resolve_id(n).ok()) {
        d.emit_image_event("save", &id, &id);
    }
    let images = d.images.clone();
    Ok(tar_stream_response("image save", move |w| {
        images.save(&names, w).map_err(|e| e.to_string())
    }))
}

/// Runs `produce` on a blocking thread and streams what it writes as an
/// `application/x-tar` response body. A failure after the first bytes can only cut the
/// stream short (logged under `what`).
pub(crate) fn tar_stream_response(
    what: &'static str,
    produce: impl FnOnce(&mut dyn std::io::Write) -> Result<(), String> + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = BodyWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let result = produce(&mut w);
        let result = result.and_then(|_| std::io::Write::flush(&mut w).map_err(|e| e.to_string()));
        if let Err(e) = result {
            tracing::warn!(error = %e, "{what} failed mid-stream");
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [(http::header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// `POST /images/load?quiet=`: the body is an archive from `docker save`.
async fn load_images(State(d): State<Daemon>, req: Request) -> ApiResult<Response> {
    let reader = crate::request_body::blocking_reader(req.into_body());
    let images = d.images.clone();
    let result = blocking(move || {
        let mut reader = reader;
        let loaded = images.load(&mut reader);
        reader.drain_rest();
        Ok(loaded?)
    })
    .await;
    // Like moby, a failed load is still a 200 whose JSON stream carries the error
    // (docker-py raises ImageLoadError from it; the CLI prints it and exits 1).
    if let Ok(messages) = &result {
        emit_load_events(&d, messages);
    }
    let lines = match result {
        Ok(messages) => messages
            .into_iter()
            .map(|m| JsonMessage {
                stream: Some(format!("{m}\n")),
                ..Default::default()
            })
            .collect(),
        Err(e) => vec![JsonMessage {
            error: Some(e.message.clone()),
            error_detail: Some(berth_api::ErrorDetail { message: e.message }),
            ..Default::default()
        }],
    };
    Ok(json_stream(lines))
}

/// `POST /images/{name}/tag?repo=&tag=` → 201.
async fn tag_image(
    State(d): State<Daemon>,
    Path(name): Path<String>,
    q: Query,
) -> ApiResult<Response> {
    let repo = q.str("repo");
    if repo.is_empty() {
        return Err(ApiError::invalid(
            "repository name must have at least one component",
        ));
    }
    let tag = q.str("tag");
    let images = d.images.clone();
    let (target, new_ref) = (
        name.clone(),
        if tag.is_empty() {
            repo.clone()
        } else {
            format!("{repo}:{tag}")
        },
    );
    blocking(move || Ok(images.tag(&name, &repo, &tag)?)).await?;
    if let (Ok(id), Ok(r)) = (
        d.images.resolve_id(&target),
        Reference::parse_normalized(&new_ref),
    ) {
        d.emit_image_event("tag", &id, &r.familiar_string());
    }
    Ok(StatusCode::CREATED.into_response())
}

/// `load` events: for each image a load message names (`Loaded image: ref` or
/// `Loaded image ID: sha256:…`), with its ID as `name`, as dockerd 20.10.
fn emit_load_events(d: &Daemon, messages: &[String]) {
    for m in messages {
        let named = m
            .strip_prefix("Loaded image ID: ")
            .or_else(|| m.strip_prefix("Loaded image: "));
        if let Some(id) = named.and_then(|n| d.images.resolve_id(n.trim()).ok()) {
            d.emit_image_event("load", &id, &id);
        }
    }
}

/// `POST /images/{name}/push?tag=`.
async fn push_image(
    State(d): State<Daemon>,
    Path(name): Path<String>,
    q: Query,
    headers: http::HeaderMap,
) -> ApiResult<Response> {
    let auth = registry_auth(&headers)?;
    crate::distribution::push::start(&d, &name, &q.str("tag"), auth).await
}

/// Who uses an image, for the delete and prune conflict checks: a running (or paused,
/// or restarting) container first, as moby checks, else any other container.
pub(crate) fn image_user(d: &Daemon, image_id: &str) -> Option<ImageUser> {
    let bare = |s: &str| s.strip_prefix("sha256:").unwrap_or(s).to_string();
    let wanted = bare(image_id);
    let opts = crate::containers::ListOptions {
        all: true,
        limit: 0,
        size: false,
        filters: Default::default(),
    };
    let mut users: Vec<ImageUser> = match d.containers.list(&opts) {
        Ok(rows) => rows
            .into_iter()
            .filter(|c| bare(&c.image_id) == wanted)
            .map(|c| ImageUser {
                running: matches!(c.state.as_str(), "running" | "paused" | "restarting"),
                container_id: c.id,
            })
            .collect(),
        // Listing failed: fall back to the service's own lookup (counted as stopped).
        Err(_) => d
            .containers
            .container_using_image(image_id)
            .map(|container_id| ImageUser {
                container_id,
                running: false,
            })
            .into_iter()
            .collect(),
    };
    // image volumes (`--mount type=image`, CRI image mounts) use their image too
    let mounting = d.containers.records_where(|r| {
        r.mount_points
            .iter()
            .any(|p| p.kind == "image" && bare(&p.name) == wanted)
    });
    users.extend(mounting.into_iter().map(|r| ImageUser {
        running: r.state.status.is_running(),
        container_id: r.id,
    }));
    users.iter().find(|u| u.running).or(users.first()).cloned()
}

/// `POST /images/prune?filters=` → `{"ImagesDeleted": [...]|null, "SpaceReclaimed": n}`.
async fn prune_images(State(d): State<Daemon>, q: Query) -> ApiResult<Response> {
    let filters = q.filters()?;
    let images = d.images.clone();
    let d2 = d.clone();
    let before = d.image_labels();
    let (items, reclaimed) = blocking(move || {
        let user = |id: &str| image_user(&d2, id);
        Ok(images.prune(&filters, &user)?)
    })
    .await?;
    d.emit_image_delete_events(&items, "", &before);
    let pruned = berth_api::ImagePruneResponse {
        images_deleted: (!items.is_empty()).then_some(items),
        space_reclaimed: u64::try_from(reclaimed).unwrap_or(0),
    };
    Ok(Json(pruned).into_response())
}

/// `DELETE /images/{name}?force=&noprune=`.
async fn delete_image(
    State(d): State<Daemon>,
    Path(rest): Path<String>,
    q: Query,
) -> ApiResult<Json<Vec<ImageDeleteItem>>> {
    let (force, prune) = (q.bool("force"), !q.bool("noprune"));
    let images: std::sync::Arc<ImageStore> = d.images.clone();
    let image_id = d.images.resolve_id(&rest).unwrap_or_default();
    let before = d.image_labels();
    let d2 = d.clone();
    let out = blocking(move || {
        let user = |id: &str| image_user(&d2, id);
        Ok(images.remove_image(&rest, force, prune, &user)?)
    })
    .await?;
    d.emit_image_delete_events(&out, &image_id, &before);
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_dropped_by_api_version() {
        let fields = [("1.44", "VirtualSize"), ("1.45", "Container")];
        let mut v = serde_json::json!({"VirtualSize": 1, "Container": "", "Size": 1});
        drop_fields(&mut v, Some(ApiVersion(1, 43)), &fields);
        assert_eq!(
            v,
            serde_json::json!({"VirtualSize": 1, "Container": "", "Size": 1})
        );
        drop_fields(&mut v, Some(ApiVersion(1, 44)), &fields);
        assert_eq!(v, serde_json::json!({"Container": "", "Size": 1}));
        drop_fields(&mut v, None, &fields);
        assert_eq!(v, serde_json::json!({"Size": 1}));
    }

    #[test]
    fn repo_and_tag_combine() {
        assert_eq!(
            repo_tag("imported:v1", "").unwrap().as_deref(),
            Some("docker.io/library/imported:v1")
        );
        assert_eq!(
            repo_tag("imported", "v2").unwrap().as_deref(),
            Some("docker.io/library/imported:v2")
        );
        assert_eq!(repo_tag("", "v2").unwrap(), None);
        assert!(repo_tag("Bad", "").is_err());
    }
}
