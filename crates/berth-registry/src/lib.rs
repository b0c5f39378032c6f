//! Berth's OCI distribution client: the network half of `pull`, `push` and `login`.
//!
//! [`RegistryClient`] resolves references to image manifests (following manifest lists
//! and OCI indexes to the wanted [`Platform`]), streams blobs with digest verification and
//! resumption, uploads blobs and manifests, and checks credentials. It speaks the
//! distribution API with Bearer (token server) and Basic authentication, Docker Hub
//! mirrors, and plain HTTP for insecure registries, and words its errors as dockerd does.

mod auth;
mod blob;
mod client;
mod endpoint;
mod error;
mod manifest;
mod platform;
mod push;

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

#[cfg(test)]
mod tests;
