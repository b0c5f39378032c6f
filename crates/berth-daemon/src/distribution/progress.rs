//! The JSON message stream of a pull or push: a bounded channel from the operation's task
//! to the response body, so a slow client slows the transfer instead of filling memory.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use berth_api::progress::JsonProgress;
use berth_api::{ErrorDetail, JsonMessage};
use tokio::sync::mpsc;

use crate::error::ApiError;

/// Width the daemon renders progress bars for (moby's default without a terminal).
const RENDER_WIDTH: usize = 200;
/// At most one progress update per layer this often (Docker's progress reader uses 100 ms).
const UPDATE_INTERVAL: Duration = Duration::from_millis(100);

/// The sending half; cheap to clone into layer tasks. Sending fails once the client is gone.
#[derive(Clone)]
pub struct Progress {
    tx: mpsc::Sender<JsonMessage>,
}

/// The client disconnected: stop the operation.
#[derive(Debug)]
pub struct Cancelled;

impl From<Cancelled> for ApiError {
    fn from(_: Cancelled) -> Self {
        ApiError::internal("context canceled")
    }
}

impl Progress {
    /// A progress channel and the streaming response that drains it.
    pub fn channel() -> (Progress, Response) {
        let (tx, rx) = mpsc::channel::<JsonMessage>(64);
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            let msg = rx.recv().await?;
            let mut line = serde_json::to_vec(&msg).unwrap_or_default();
            line.extend_from_slice(b"\r\n");
            Some((Ok::<_, Infallible>(Bytes::from(line)), rx))
        });
        let response = (
            [(http::header::CONTENT_TYPE, "application/json")],
            Body::from_stream(body),
        )
            .into_response();
        (Progress { tx }, response)
    }

    pub async fn send(&self, msg: JsonMessage) -> Result<(), Cancelled> {
        self.tx.send(msg).await.map_err(|_| Cancelled)
    }

    /// `{"status": text}` with no layer ID.
    pub async fn status(&self, text: impl Into<String>) -> Result<(), Cancelled> {
        self.send(JsonMessage {
            status: Some(text.into()),
            ..Default::default()
        })
        .await
    }

    /// `{"status": text, "progressDetail": {}, "id": id}`: a layer's new state.
    pub async fn layer(&self, id: &str, text: &str) -> Result<(), Cancelled> {
        self.send(layer_message(id, text, JsonProgress::default()))
            .await
    }

    /// The error that ends a stream.
    pub async fn error(&self, message: &str) {
        let msg = JsonMessage {
            error: Some(message.to_string()),
            error_detail: Some(ErrorDetail {
                message: message.to_string(),
            }),
            ..Default::default()
        };
        let _ = self.send(msg).await;
    }

    /// A throttled byte counter for one layer, usable from a blocking thread: it sends a
    /// `text` (`Downloading`, `Pushing`) message with a bar at most every 100 ms.
    pub fn meter(&self, id: &str, text: &'static str, total: u64) -> Meter {
        Meter {
            tx: self.tx.clone(),
            id: id.to_string(),
            text,
            total,
            start: chrono::Utc::now().timestamp(),
            last: None,
        }
    }
}

fn layer_message(id: &str, text: &str, detail: JsonProgress) -> JsonMessage {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as i128;
    let bar = detail.render(RENDER_WIDTH, now);
    JsonMessage {
        status: Some(text.to_string()),
        progress_detail: Some(serde_json::to_value(detail).unwrap_or_default()),
        progress: (!bar.is_empty()).then_some(bar),
        id: Some(id.to_string()),
        ..Default::default()
    }
}

/// See [`Progress::meter`].
pub struct Meter {
    tx: mpsc::Sender<JsonMessage>,
    id: String,
    text: &'static str,
    total: u64,
    start: i64,
    last: Option<Instant>,
}

impl Meter {
    /// Records `done` bytes; sends from a blocking thread (never call it on the runtime).
    pub fn update_blocking(&mut self, done: u64) {
        if let Some(m) = self.due(done) {
            let _ = self.tx.blocking_send(m);
        }
    }

    /// Records `done` bytes from async code; a full channel skips the update.
    pub fn update(&mut self, done: u64) {
        if let Some(m) = self.due(done) {
            let _ = self.tx.try_send(m);
        }
    }

    fn due(&mut self, done: u64) -> Option<JsonMessage> {
        if self.last.is_some_and(|t| t.elapsed() < UPDATE_INTERVAL) {
            return None;
        }
        self.last = Some(Instant::now());
        let detail = JsonProgress {
            current: done as i64,
            total: self.total as i64,
            start: self.start,
            ..Default::default()
        };
        Some(layer_message(&self.id, self.text, detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_messages_look_like_dockers() {
        let m = layer_message("3f4d90098f5b", "Pulling fs layer", JsonProgress::default());
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"status":"Pulling fs layer","id":"3f4d90098f5b","progressDetail":{}}"#
        );
        let m = layer_message(
            "3f4d90098f5b",
            "Downloading",
            JsonProgress {
                current: 10,
                total: 100,
                ..Default::default()
            },
        );
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v["progressDetail"],
            serde_json::json!({"current": 10, "total": 100})
        );
        assert!(
            v["progress"].as_str().unwrap().starts_with("[=====>  "),
            "{v}"
        );
    }

    #[tokio::test]
    async fn meter_throttles_and_stops_when_the_client_is_gone() {
        let (p, response) = Progress::channel();
        let mut meter = p.meter("x", "Downloading", 100);
        meter.update(1);
        meter.update(2); // within 100 ms: skipped
        drop(response);
        assert!(p.status("after").await.is_err());
    }
}
