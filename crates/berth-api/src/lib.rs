//! Docker Engine API models, with Docker's JSON field names.
//!
//! Shared by the daemon (which serializes them) and the CLI (which reads them), so the
//! two cannot drift apart. Field order matters: `{{json .}}` in the CLI prints fields in
//! the order they are declared here, which follows moby's `api/swagger.yaml`.
//!
//! Every struct tolerates unknown fields and missing optional fields, because real
//! clients (the Docker CLI, docker-py) send more than Berth reads.

pub mod auth;
pub mod build_secrets;
pub mod container;
pub mod events;
pub mod exec;
pub mod image;
pub mod network;
pub mod progress;
pub mod stats;
pub mod system;
pub mod units;
pub mod volume;

pub use auth::*;
pub use container::*;
pub use events::*;
pub use exec::*;
pub use image::*;
pub use network::*;
pub use stats::*;
pub use system::*;
pub use volume::*;

use serde::{Deserialize, Serialize};

/// The API version Berth implements and advertises in `Api-Version`.
pub const API_VERSION: &str = "1.45";
/// The oldest API version Berth accepts.
pub const MIN_API_VERSION: &str = "1.24";

/// `{"message": "..."}`: the body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub message: String,
}

/// `{"Id": "...", "Warnings": []}`: the body of create responses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IdResponse {
    pub id: String,
    #[serde(default, deserialize_with = "container::null_as_default")]
    pub warnings: Vec<String>,
}

/// Parses a `major.minor` API version into a comparable pair.
pub fn parse_api_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Decodes `json` into `T` and encodes it again, asserting the bytes come back unchanged
/// (field names, order and nulls as Docker writes them).
#[cfg(test)]
pub(crate) fn round_trip<T: Serialize + serde::de::DeserializeOwned>(json: &str) -> T {
    let v: T = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_string(&v).unwrap(), json);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_numerically() {
        assert!(parse_api_version("1.9") < parse_api_version("1.24"));
        assert!(parse_api_version(API_VERSION) > parse_api_version(MIN_API_VERSION));
        assert_eq!(parse_api_version("x.1"), None);
        assert_eq!(parse_api_version("1"), None);
    }
}

/// What went wrong, as the Engine API tells clients: every library error in Berth
/// exposes one of these through a `kind()` method, and the daemon maps it to an HTTP
/// status in exactly one place (moby's `httpstatus` pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400
    InvalidArgument,
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 409
    Conflict,
    /// 304 (for example starting a container that is already running)
    NotModified,
    /// 501
    NotImplemented,
    /// 500
    Internal,
    /// 503 (for example swarm endpoints on a node that is not in a swarm)
    Unavailable,
}

impl ErrorKind {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::NotModified => 304,
            ErrorKind::NotImplemented => 501,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
        }
    }
}
