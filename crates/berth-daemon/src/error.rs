//! The daemon's one error type and its one mapping to HTTP.
//!
//! Handlers never pick a status code: they return `ApiError`, whose [`ErrorKind`] decides
//! the status, and whose message is Docker's text, sent as `{"message": "..."}`.

use axum::response::{IntoResponse, Response};
use berth_api::{ErrorKind, ErrorResponse};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotImplemented, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = http::StatusCode::from_u16(self.kind.http_status())
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        if status == http::StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        if status.is_server_error() {
            tracing::error!(message = %self.message, "request failed");
        }
        (
            status,
            axum::Json(ErrorResponse {
                message: self.message,
            }),
        )
            .into_response()
    }
}

/// Runs blocking store work (disk, fsync, redb) on a blocking thread; its error keeps its
/// kind, and a task that panicked is a 500.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("image store task failed: {e}")))?
}

/// Runs short blocking work (a `meta.db` commit and its fsync, removing a directory) from
/// async code without stalling the other requests on this runtime thread: on the
/// daemon's multi-threaded runtime the thread hands its other tasks over first. On a
/// current-thread runtime (unit tests) it simply runs `f`.
pub fn in_place<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Any library error with a `kind()` converts into an `ApiError` keeping its message.
macro_rules! api_error_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                ApiError::new(e.kind(), e.to_string())
            }
        }
    )*};
}
api_error_from!(berth_image::ImageError, berth_registry::RegistryError);

/// An OS error reads as Go prints it (`no space left on device`, not Rust's
/// `No space left on device (os error 28)`): the daemon's fault, a 500.
impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        ApiError::internal(berth_image::os_error::go_text(&e))
    }
}

/// A failed write of `meta.db` reads as `write <root>/meta.db: no space left on device`
/// (the store reopens itself for the next request, see [`berth_image::MetaDb`]).
impl From<redb::Error> for ApiError {
    fn from(e: redb::Error) -> Self {
        ApiError::internal(berth_image::meta_db::error_text(&e))
    }
}

impl ApiError {
    /// `<what>: <error>` for a failed file-system step, with the error as Go prints it
    /// (`mkdir <root>/containers/<id>: no space left on device`).
    pub fn io(what: impl std::fmt::Display, e: &std::io::Error) -> Self {
        ApiError::internal(format!("{what}: {}", berth_image::os_error::go_text(e)))
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::invalid(e.to_string())
    }
}
