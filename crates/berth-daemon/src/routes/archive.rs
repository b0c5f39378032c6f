//! `docker cp` and `docker diff` handlers (routed in the containers table) (moby `api/server/router/container/copy.go`,
//! `ContainerChanges`):
//! - `HEAD /containers/{id}/archive?path=`: the path's stat in `X-Docker-Container-Path-Stat`;
//! - `GET /containers/{id}/archive?path=`: a tar of the path, with that header;
//! - `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`: extracts
//!   the tar body into the directory `path`;
//! - `GET /containers/{id}/changes`: the writable layer's changes.
//!
//! The filesystem work is in [`crate::containers::archive`].

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::ErrorKind;
use http::StatusCode;

use super::extract::Query;
use crate::containers::archive::{self as cp, CpError, ExtractOptions};
use crate::containers::cp_root::{self, BindMount, RootAccess};
use crate::containers::record::ContainerRecord;
use crate::error::{ApiError, ApiResult};
use crate::state::Daemon;

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

type Q = Query;

fn api_error(e: CpError) -> ApiError {
    match e {
        CpError::NotFound(m) => ApiError::new(ErrorKind::NotFound, m),
        CpError::Invalid(m) => ApiError::invalid(m),
        CpError::Failed(m) => ApiError::internal(m),
    }
}

/// Deletes the private mountpoint of a stopped container's access when dropped.
struct Access {
    root: RootAccess,
    _mountpoint: Option<tempfile::TempDir>,
    /// A container under `--userns-remap`: its files hold host ids.
    idmap: Option<berth_runtime::userns::UserNamespace>,
}

async fn access(d: &Daemon, rec: &ContainerRecord) -> ApiResult<Access> {
    let idmap = d.containers.userns_of(&rec.id);
    if rec.state.status.is_running() && rec.state.pid > 0 {
        return Ok(Access {
            root: RootAccess::Running { pid: rec.state.pid },
            _mountpoint: None,
            idmap,
        });
    }
    let dir = d.containers.container_dir(&rec.id);
    let images = d.images.clone();
    let image_id = rec.image_id.clone();
    let lowers = tokio::task::spawn_blocking(move || images.layer_dirs(&image_id))
        .await
        .map_err(|e| ApiError::internal(format!("archive task failed: {e}")))??;
    // Volumes and binds (tmpfs mounts of a stopped container are empty: not mounted).
    let binds = d
        .containers
        .runtime_mounts(rec)?
        .into_iter()
        .filter(|m| m.kind == "bind")
        .map(|m| BindMount {
            rw: !m.options.iter().any(|o| o == "ro"),
            destination: m.destination,
            source: m.source,
        })
        .collect();
    let mnt = tempfile::Builder::new()
        .prefix("cp-")
        .tempdir_in(&dir)
        .map_err(|e| ApiError::internal(format!("creating a mountpoint: {e}")))?;
    Ok(Access {
        root: RootAccess::Stopped {
            upper: dir.join("upper"),
            work: dir.join("work"),
            lowers,
            mountpoint: mnt.path().to_path_buf(),
            binds,
            idmap: idmap.clone(),
        },
        _mountpoint: Some(mnt),
        idmap,
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CpError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("archive task failed: {e}")))?
        .map_err(api_error)
}

async fn stat(d: &Daemon, id: &str, path: &str) -> ApiResult<(ContainerRecord, cp::PathStat)> {
    let rec = d.containers.get(id)?;
    let acc = access(d, &rec).await?;
    let (path, name) = (path.to_string(), id.to_string());
    let st = blocking(move || {
        let r = cp_root::in_container_root(&acc.root, || cp::stat_path(&path, &name));
        drop(acc);
        r
    })
    .await?;
    Ok((rec, st))
}

pub(super) async fn head_archive(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let path = q.str("path");
    let (_, st) = stat(&d, &id, &path).await?;
    Ok((StatusCode::OK, [(STAT_HEADER, st.header_value())]).into_response())
}

pub(super) async fn get_archive(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let path = q.str("path");
    let (rec, st) = stat(&d, &id, &path).await?;
    let acc = access(&d, &rec).await?;
    d.containers.emit_container_event(&rec, "archive-path", &[]);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter { tx: tx.clone() };
        let r = cp_root::in_container_root(&acc.root, || {
            cp::archive_path_unmapped(&path, &id, &mut w, acc.idmap.as_ref())
        });
        drop(acc);
        if let Err(e) = r {
            tracing::warn!(error = %e, "container archive failed mid-stream");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [
            (
                http::header::CONTENT_TYPE.as_str(),
                "application/x-tar".to_string(),
            ),
            (STAT_HEADER, st.header_value()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Sends what the tar writer produces to the response body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) async fn put_archive(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    q: Q,
    req: Request,
) -> ApiResult<Response> {
    let path = q.str("path");
    let body = req.into_body();
    let checked = async {
        let rec = d.containers.get(&id)?;
        let abs = cp::abs_path(&path);
        let to_volume = rec.mount_points.iter().any(|m| {
            m.rw && (abs == m.destination
                || abs.starts_with(&format!("{}/", m.destination.trim_end_matches('/'))))
        });
        if rec.host_config.readonly_rootfs && !to_volume {
            return Err(ApiError::invalid("container rootfs is marked read-only"));
        }
        let acc = access(&d, &rec).await?;
        Ok((rec, acc))
    };
    let (rec, acc) = match checked.await {
        Ok(ok) => ok,
        Err(e) => {
            crate::request_body::drain(body).await;
            return Err(e);
        }
    };
    let mut body = crate::request_body::blocking_reader(body);
    let no_overwrite = q.bool("noOverwriteDirNonDir");
    let copy_uid_gid = q.bool("copyUIDGID");
    let user = rec.config.user.clone();
    blocking(move || {
        let body = &mut body;
        let r = cp_root::in_container_root(&acc.root, || {
            let chown = if copy_uid_gid {
                cp::copy_owner(&user)?
            } else {
                None
            };
            let opts = ExtractOptions {
                no_overwrite_dir_non_dir: no_overwrite,
                chown,
                idmap: acc.idmap.clone(),
            };
            cp::extract_to_dir(&mut *body, &path, &id, &opts)
        });
        drop(acc);
        // What the tar reader left (padding after the end-of-archive blocks, or the rest
        // after an error) is read before the answer, or the client's write fails.
        body.drain_rest();
        r
    })
    .await?;
    d.containers
        .emit_container_event(&rec, "extract-to-dir", &[]);
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn changes(
    State(d): State<Daemon>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let rec = d.containers.get(&id)?;
    let upper = d.containers.container_dir(&rec.id).join("upper");
    let images = d.images.clone();
    let image_id = rec.image_id.clone();
    let list = tokio::task::spawn_blocking(
        move || -> ApiResult<Vec<crate::containers::changes::Change>> {
            let lowers = images.layer_dirs(&image_id)?;
            crate::containers::changes::changes(&upper, &lowers)
                .map_err(|e| ApiError::internal(format!("changes: {e}")))
        },
    )
    .await
    .map_err(|e| ApiError::internal(format!("changes task failed: {e}")))??;
    // moby answers `null` when nothing changed (a nil slice).
    if list.is_empty() {
        return Ok(Json(serde_json::Value::Null).into_response());
    }
    Ok(Json(list).into_response())
}
