//! Container routes (moby `api/server/router/container`): every `/containers/...` route
//! and `/commit` in one table, `method, path → handler`; handlers decode the request and
//! call [`crate::containers::ContainerService`]. Exec, archive (`cp`, `diff`), export
//! and commit handlers live in their own modules.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use berth_api::{ContainerCreateBody, ContainerPruneResponse, WaitError, WaitResponse};
use http::StatusCode;

use super::extract::{JsonBody, OptionalJsonBody, Query};
use super::{archive, exec, export, stream_response};
use crate::containers::attach::AttachOptions;
use crate::containers::logs::{self, LogOptions};
use crate::containers::{ListOptions, WaitCondition};
use crate::error::{ApiError, ApiResult};
use crate::hijack::{self, Hijack};
use crate::state::Daemon;
use crate::version::ApiVersion;

pub fn routes() -> Router<Daemon> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/logs", get(logs_handler))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/update", post(update))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/{link}", delete(remove_link))
        .route("/containers/{id}/exec", post(exec::create))
        .route(
            "/containers/{id}/archive",
            get(archive::get_archive)
                .head(archive::head_archive)
                .put(archive::put_archive),
        )
        .route("/containers/{id}/changes", get(archive::changes))
        .route("/containers/{id}/export", get(export::export))
        .route("/commit", post(export::commit))
}

type Q = Query;

async fn create(
    State(d): State<Daemon>,
    q: Q,
    JsonBody(body): JsonBody<ContainerCreateBody>,
) -> ApiResult<Response> {
    if let Some(p) = q.get("platform").filter(|p| !p.is_empty()) {
        d.containers.check_platform(&body.config.image, p)?;
    }
    // Directories and a meta.db commit: off the runtime's threads.
    let resp = crate::error::in_place(|| d.containers.create(body, q.get("name")))?;
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

async fn list(State(d): State<Daemon>, q: Q) -> ApiResult<Response> {
    let opts = ListOptions {
        all: q.bool("all"),
        limit: q.int("limit")?.unwrap_or(-1),
        size: q.bool("size"),
        filters: q.filters()?,
    };
    Ok(Json(d.containers.list(&opts)?).into_response())
}

async fn inspect(State(d): State<Daemon>, Path(id): Path<String>, q: Q) -> ApiResult<Response> {
    Ok(Json(d.containers.inspect(&id, q.bool("size"))?).into_response())
}

async fn start(State(d): State<Daemon>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    d.containers.start(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn stop(State(d): State<Daemon>, Path(id): Path<String>, q: Q) -> ApiResult<StatusCode> {
    d.containers.stop(&id, q.int("t")?, q.get("signal")).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart(State(d): State<Daemon>, Path(id): Path<String>, q: Q) -> ApiResult<StatusCode> {
    d.containers
        .restart(&id, q.int("t")?, q.get("signal"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kill(State(d): State<Daemon>, Path(id): Path<String>, q: Q) -> ApiResult<StatusCode> {
    d.containers.kill(&id, q.get("signal")).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(State(d): State<Daemon>, Path(id): Path<String>, q: Q) -> ApiResult<StatusCode> {
    if q.bool("link") {
        return Err(ApiError::internal(
            "Conflict, cannot remove the default link name of the container",
        ));
    }
    // In its own task: a client that goes away must not leave a removal half-done.
    let (containers, force, volumes) = (d.containers.clone(), q.bool("force"), q.bool("v"));
    tokio::spawn(async move { containers.remove_with_volumes(&id, force, volumes).await })
        .await
        .map_err(|e| ApiError::internal(format!("the removal task failed: {e}")))??;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /containers/{parent}/{alias}?link=1`: a link's name, not a container.
async fn remove_link(
    State(d): State<Daemon>,
    Path((parent, alias)): Path<(String, String)>,
    q: Q,
) -> ApiResult<StatusCode> {
    if !q.bool("link") {
        return Err(ApiError::not_found(format!(
            "No such container: {parent}/{alias}"
        )));
    }
    d.containers.remove_link(&parent, &alias)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(State(d): State<Daemon>, q: Q) -> ApiResult<Response> {
    let f = q.filters()?;
    let (deleted, reclaimed) = d.containers.prune(&f)?;
    Ok(Json(ContainerPruneResponse {
        containers_deleted: if deleted.is_empty() {
            None
        } else {
            Some(deleted)
        },
        space_reclaimed: reclaimed,
    })
    .into_response())
}

async fn rename(State(d): State<Daemon>, Path(id): Path<String>, q: Q) -> ApiResult<StatusCode> {
    d.containers.rename(&id, q.get("name").unwrap_or(""))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(State(d): State<Daemon>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    d.containers.pause(&id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unpause(State(d): State<Daemon>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    d.containers.pause(&id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn top(State(d): State<Daemon>, Path(id): Path<String>, q: Q) -> ApiResult<Response> {
    let top = d.containers.top(&id, &q.str("ps_args"))?;
    if let Ok(rec) = d.containers.get(&id) {
        d.containers.emit_container_event(&rec, "top", &[]);
    }
    Ok(Json(top).into_response())
}

async fn resize(State(d): State<Daemon>, Path(id): Path<String>, q: Q) -> ApiResult<StatusCode> {
    let dim = |k: &str| -> ApiResult<u16> {
        let v = q.int(k)?.unwrap_or(0);
        u16::try_from(v).map_err(|_| ApiError::invalid(format!("invalid value for {k}: {v}")))
    };
    d.containers.resize(&id, dim("h")?, dim("w")?).await?;
    Ok(StatusCode::OK)
}

async fn update(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<berth_api::ContainerUpdateBody>,
) -> ApiResult<Response> {
    let updated = d.containers.update(&id, body.unwrap_or_default())?;
    if let Ok(rec) = d.containers.get(&id) {
        d.containers.emit_container_event(&rec, "update", &[]);
    }
    Ok(Json(updated).into_response())
}

/// Sends the status line right away (as Docker does) and the JSON when the wait ends.
async fn wait(State(d): State<Daemon>, Path(id): Path<String>, q: Q) -> ApiResult<Response> {
    let condition = WaitCondition::parse(&q.str("condition"))?;
    let fut = d.containers.wait(&id, condition)?;
    let body = futures_util::stream::once(async move {
        let (code, error) = fut.await;
        let resp = WaitResponse {
            status_code: code,
            error: (!error.is_empty()).then_some(WaitError { message: error }),
        };
        let mut json = serde_json::to_vec(&resp).unwrap_or_default();
        json.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(json))
    });
    Ok(stream_response("application/json", body))
}

async fn logs_handler(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    q: Q,
    version: ApiVersion,
) -> ApiResult<Response> {
    let opts = LogOptions {
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        follow: q.bool("follow"),
        tail: q.get("tail").and_then(logs::parse_tail),
        since: logs::parse_unix_time(&q.str("since"))?,
        until: logs::parse_unix_time(&q.str("until"))?,
        timestamps: q.bool("timestamps"),
        details: q.bool("details"),
    };
    let (tty, rx) = d.containers.logs(&id, opts)?;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let media = hijack::stream_media_type(tty, version.at_least("1.42"));
    Ok(stream_response(media, stream))
}

async fn attach(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    q: Q,
    version: ApiVersion,
    mut req: Request,
) -> ApiResult<Response> {
    let rec = d.containers.get(&id)?;
    let tty = rec.config.tty;
    let detach_keys = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => crate::containers::attach::parse_detach_keys(k)?,
        None => crate::containers::attach::DEFAULT_DETACH_KEYS.to_vec(),
    };
    let opts = AttachOptions {
        stdin: q.bool("stdin"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        tty,
        detach_keys,
    };
    let media = hijack::stream_media_type(tty, version.at_least("1.42"));
    d.containers.emit_container_event(&rec, "attach", &[]);
    match hijack::prepare(&mut req, media) {
        Hijack::Upgrade { response, upgrade } if !q.bool("stream") => {
            // Logs only: the recorded output, then the connection closes.
            let replay = if q.bool("logs") {
                d.containers.log_snapshot(&rec, opts.stdout, opts.stderr)
            } else {
                Vec::new()
            };
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                if let Ok(mut client) = hijack::upgraded(upgrade).await {
                    // docker-py reads the 101 headers through a buffered reader and then
                    // the raw socket: bytes sent in the same instant as the headers would
                    // land in that buffer and be lost. Let the headers go first.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    for chunk in replay {
                        if client.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                    let _ = client.shutdown().await;
                }
            });
            Ok(response)
        }
        Hijack::Upgrade { response, upgrade } => {
            let replay = if q.bool("logs") {
                d.containers.log_snapshot(&rec, opts.stdout, opts.stderr)
            } else {
                Vec::new()
            };
            d.containers.attach(&rec.id, opts, upgrade, replay).await?;
            Ok(response)
        }
        Hijack::Plain if !q.bool("stream") => {
            let replay = if q.bool("logs") {
                d.containers.log_snapshot(&rec, opts.stdout, opts.stderr)
            } else {
                Vec::new()
            };
            let stream = futures_util::stream::iter(replay.into_iter().map(Ok::<_, Infallible>));
            Ok(stream_response(media, stream))
        }
        Hijack::Plain => {
            let out = d.containers.attach_output(&rec.id, opts).await?;
            let stream = tokio_util::io::ReaderStream::new(out);
            Ok(stream_response(media, stream))
        }
    }
}

#[cfg(test)]
mod api_tests {
    use axum::body::Body;
    use http::Request;
    use tower::ServiceExt as _;

    use crate::state::Daemon;

    fn daemon(dir: &std::path::Path) -> Daemon {
        Daemon::for_tests(dir)
    }

    async fn call(d: &Daemon, method: &str, uri: &str, body: &str) -> (u16, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = crate::server::app(d.clone()).oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn errors_use_dockers_words() {
        let dir = tempfile::tempdir().unwrap();
        let d = daemon(dir.path());
        let (s, v) = call(
            &d,
            "POST",
            "/v1.45/containers/create?name=c1",
            r#"{"Image":"nosuchimage"}"#,
        )
        .await;
        assert_eq!(
            (s, v["message"].as_str().unwrap()),
            (404, "No such image: nosuchimage:latest")
        );
        let (s, v) = call(
            &d,
            "POST",
            "/containers/create?name=-bad",
            r#"{"Image":"x"}"#,
        )
        .await;
        assert_eq!(s, 400);
        assert!(v["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid container name (-bad)"));
        let (s, v) = call(&d, "GET", "/containers/json?all=1", "").await;
        assert_eq!((s, v), (200, serde_json::json!([])));
        let (s, v) = call(&d, "GET", "/containers/nope/json", "").await;
        assert_eq!(
            (s, v["message"].as_str().unwrap()),
            (404, "No such container: nope")
        );
        let (s, _) = call(&d, "POST", "/containers/nope/wait", "").await;
        assert_eq!(s, 404);
        let (s, v) = call(
            &d,
            "GET",
            "/containers/json?filters=%7B%22status%22%3A%7B%22bogus%22%3Atrue%7D%7D",
            "",
        )
        .await;
        assert_eq!(
            (s, v["message"].as_str().unwrap()),
            (400, "invalid filter 'status=bogus'")
        );
        let (s, v) = call(&d, "POST", "/exec/nope/start", "{}").await;
        assert_eq!(
            (s, v["message"].as_str().unwrap()),
            (404, "No such exec instance: nope")
        );
        // Nothing was left behind by the failed creates.
        assert_eq!(
            std::fs::read_dir(d.config.root.join("containers"))
                .unwrap()
                .count(),
            0
        );
    }
}
