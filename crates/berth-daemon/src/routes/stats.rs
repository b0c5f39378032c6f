//! `GET /containers/{id}/stats?stream=&one-shot=` (moby `daemon/stats.go`): one JSON
//! object, or one per second until the client goes.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use berth_api::ContainerStats;

use super::extract::Query;
use super::stream_response;
use crate::containers::record::ContainerRecord;
use crate::error::{ApiError, ApiResult};
use crate::state::Daemon;
use crate::stats::{with_pre, zeroed};

pub fn routes() -> Router<Daemon> {
    Router::new().route("/containers/{id}/stats", get(stats))
}

/// Running in the sense of stats: a process to measure (paused ones too).
fn measurable(rec: &ContainerRecord) -> bool {
    rec.state.status.is_running() && rec.state.pid > 0
}

fn encode(s: &ContainerStats) -> Bytes {
    let mut json = serde_json::to_vec(s).unwrap_or_default();
    json.push(b'\n');
    Bytes::from(json)
}

struct Feed {
    d: Daemon,
    id: String,
    prev: Option<ContainerStats>,
    first: bool,
    /// Resolves when the daemon shuts down.
    closed: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

impl Feed {
    async fn next(&mut self) -> Option<Bytes> {
        if !self.first {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = &mut self.closed => return None,
            }
        }
        self.first = false;
        // A removed container ends the stream.
        let rec = self.d.containers.get(&self.id).ok()?;
        if !measurable(&rec) {
            self.prev = None;
            return Some(encode(&zeroed(&rec)));
        }
        let s = self
            .d
            .stats
            .sample(&rec, &self.d.containers.state_dir(&rec.id));
        let out = with_pre(s.clone(), self.prev.as_ref());
        self.prev = Some(s);
        Some(encode(&out))
    }
}

async fn stats(State(d): State<Daemon>, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let rec = d.containers.get(&id)?;
    let stream = q.get("stream").is_none_or(|_| q.bool("stream"));
    let one_shot = q.bool("one-shot");
    if stream && one_shot {
        return Err(ApiError::invalid(
            "cannot have stream=true and one-shot=true",
        ));
    }
    if !stream {
        let state_dir = d.containers.state_dir(&rec.id);
        let s = if !measurable(&rec) {
            zeroed(&rec)
        } else if one_shot {
            d.stats.sample(&rec, &state_dir)
        } else {
            d.stats.one_off(&rec, &state_dir).await
        };
        return Ok(Json(s).into_response());
    }
    let prev = if measurable(&rec) {
        d.stats.previous(&rec)
    } else {
        None
    };
    let closed = Box::pin(d.events.closed());
    let feed = Feed {
        closed,
        d,
        id: rec.id,
        prev,
        first: true,
    };
    let body = futures_util::stream::unfold(feed, |mut feed| async move {
        let chunk = feed.next().await?;
        Some((Ok::<_, Infallible>(chunk), feed))
    });
    Ok(stream_response("application/json", body))
}
