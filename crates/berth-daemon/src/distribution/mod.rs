//! Pull and push: the registry client (`berth-registry`) and the image store
//! (`berth-image`) wired together, reporting progress as Docker's JSON message stream.
//!
//! Both operations first do what can fail cleanly (resolve the reference, find the local
//! image) and only then answer 200 and stream: an error before any output gets its proper
//! HTTP status (404 for an unknown repository, 401 for refused credentials), as moby does;
//! an error later is an `errorDetail` message at the end of the stream. A client that goes
//! away cancels the operation; what it had written is dropped by the store.

mod progress;
pub mod pull;
pub mod push;

pub use progress::Progress;

/// Docker's layer IDs in progress lines: the first 12 hex digits of a digest.
pub fn short_digest(digest: &str) -> String {
    let hex = digest.split_once(':').map(|(_, h)| h).unwrap_or(digest);
    hex.chars().take(12).collect()
}
