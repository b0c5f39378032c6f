//! `GET /events` (moby `api/server/router/system` `getEvents`): the kept events between
//! `since` and `until` that pass `filters`, then the new ones as they happen, until the
//! client goes or `until` passes.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use berth_api::EventMessage;
use chrono::Utc;
use tokio::sync::broadcast::{self, error::RecvError};

use super::extract::Query;
use super::stream_response;
use crate::error::{ApiError, ApiResult};
use crate::events::filter::{self, Filters};
use crate::state::Daemon;

pub fn routes() -> Router<Daemon> {
    Router::new().route("/events", get(events))
}

struct Feed {
    buffered: VecDeque<Arc<EventMessage>>,
    /// `None` once only past events are wanted.
    live: Option<broadcast::Receiver<Arc<EventMessage>>>,
    filters: Filters,
    deadline: Option<tokio::time::Instant>,
    /// Resolves when the daemon shuts down.
    closed: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// One event as Go's `json.Encoder` writes it: the object and a newline.
fn encode(ev: &EventMessage) -> Bytes {
    let mut json = serde_json::to_vec(ev).unwrap_or_default();
    json.push(b'\n');
    Bytes::from(json)
}

impl Feed {
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(ev) = self.buffered.pop_front() {
            return Some(encode(&ev));
        }
        let live = self.live.as_mut()?;
        loop {
            let recv = async {
                match self.deadline {
                    Some(d) => tokio::time::timeout_at(d, live.recv()).await.ok(),
                    None => Some(live.recv().await),
                }
            };
            let next = tokio::select! {
                next = recv => next?,
                () = &mut self.closed => return None,
            };
            match next {
                Ok(ev) if filter::include(&self.filters, &ev) => return Some(encode(&ev)),
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

async fn events(State(d): State<Daemon>, q: Query) -> ApiResult<Response> {
    let now = Utc::now();
    let (since_s, until_s) = (q.str("since"), q.str("until"));
    let since = filter::parse_time(&since_s, now)?;
    let until = filter::parse_time(&until_s, now)?;
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            return Err(ApiError::invalid(format!(
                "`since` time ({since_s}) cannot be after `until` time ({until_s})"
            )));
        }
    }
    let filters = q.filters()?;
    filter::validate(&filters)?;
    let (kept, live) = d.events.subscribe();
    let nanos = |t: chrono::DateTime<Utc>| t.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let (since_n, until_n) = (since.map(nanos), until.map(nanos));
    // As moby's `loadBufferedEvents`: no past events unless `since` or `until` is given.
    let buffered = if since.is_none() && until.is_none() {
        VecDeque::new()
    } else {
        kept.into_iter()
            .filter(|e| since_n.is_none_or(|s| e.time_nano >= s))
            .filter(|e| until_n.is_none_or(|u| e.time_nano <= u))
            .filter(|e| filter::include(&filters, e))
            .collect()
    };
    let only_past = until.is_some_and(|u| u <= now);
    let deadline =
        until.map(|u| tokio::time::Instant::now() + (u - now).to_std().unwrap_or_default());
    let feed = Feed {
        buffered,
        live: (!only_past).then_some(live),
        filters,
        deadline,
        closed: Box::pin(d.events.closed()),
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let chunk = feed.next().await?;
        Some((Ok::<_, Infallible>(chunk), feed))
    });
    Ok(stream_response("application/json", stream))
}
