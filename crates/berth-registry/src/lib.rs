//! Berth's OCI distribution client: the network half of `pull`, `push` and `login`.
//!
//! [`RegistryClient`] resolves references to image manifests (following manifest lists
//! and OCI indexes to the wanted [`Platform`]), streams blobs with digest verification and
//! resumption, uploads blobs and manifests, and checks credentials. It speaks the
//! distribution API with Bearer (token server) and Basic authentication, Docker Hub
//! mirrors, and plain HTTP for insecure registries, and words its errors as dockerd does.
//!
//! Behaviour worth knowing:
//! - **Mirrors** are tried for `docker.io` names only, in order, then Docker Hub itself;
//!   a mirror is skipped only when it cannot be reached. Its "not found" is the answer
//!   (dockerd would fall back to Hub; Berth does not, so an offline pull through a mirror
//!   gives a 404 instead of a DNS error). A mirror missing a whole repository answers
//!   Docker Hub's `pull access denied for NAME, repository does not exist or may require
//!   'docker login': denied: requested access to the resource is denied`. Mirrors get no
//!   credentials (as dockerd's login, which never sends Hub credentials to a mirror).
//! - **Insecure hosts** (`localhost`, loopback addresses or names resolving to them, and
//!   `insecure_registries` entries, `host[:port]` or CIDR) are tried over HTTPS without
//!   verification, then plain HTTP; the scheme that answered is remembered per host.
//!   Everything else is verified HTTPS (webpki roots plus `certs_dir/<host>/*.crt`).
//! - **Tokens** are cached per (realm, service, credentials, scope) until they expire, one
//!   fetch at a time per key; a refused cached token is fetched again once.
//! - **Blob streams** reconnect after a dropped connection (up to 5 times, backoff from
//!   200 ms) with `Range: bytes=N-`; a registry that ignores `Range` is re-read from 0
//!   and the bytes already yielded are skipped. Size and sha256 are checked; a mismatch
//!   is the stream's last item.
//! - **Any registry host** can have mirrors and another upstream in containerd's
//!   `hosts.toml` layout under `RegistryConfig::hosts_dir` ([`hosts`]), read at each pull.

mod auth;
mod blob;
mod client;
mod endpoint;
mod error;
pub mod hosts;
mod manifest;
mod platform;
mod push;
mod search;

pub use auth::Challenge;
pub use blob::BlobStream;
pub use client::{RegistryClient, Repository, ResolvedImage};
pub use endpoint::RegistryConfig;
pub use error::RegistryError;
pub use manifest::{
    sha256_digest, Descriptor, MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
pub use platform::Platform;
pub use search::{split_term, SearchResult};

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;
