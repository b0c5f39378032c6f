//! Berth's image store.
//!
//! On disk, under the daemon's `--root`:
//! - `blobs/sha256/<hex>`: content store (image configs, manifests, layer tars);
//! - `layers/<chain-id-hex>/`: one unpacked read-only layer, shared by every image that
//!   has it (overlay whiteouts already converted);
//! - `tmp/`: ingest area (write, fsync, verify digest, rename).
//!
//! Metadata (tags, image records, layer reference counts) lives in redb tables inside the
//! daemon's `meta.db`, documented in [`schema`].
//!
//! Public surface used by the daemon:
//! ```ignore
//! let store = ImageStore::open(root, db)?;                 // db: Arc<redb::Database>
//! let id = store.import(reader, ImportOptions { .. })?;    // one-layer image from a tar
//! let img = store.resolve("busybox")?;                     // name[:tag], name@digest, id, short id
//! let lowers = store.layer_dirs(&img.id)?;                 // overlay lowerdirs, top first
//! store.list()?; store.inspect(..)?; store.history(..)?; store.tag(..)?; store.remove(..)?;
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("metadata store: {0}")]
    Db(#[from] redb::Error),
}

impl ImageError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound(_) => ErrorKind::NotFound,
            ImageError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            ImageError::Conflict(_) => ErrorKind::Conflict,
            ImageError::Io { .. } | ImageError::Db(_) => ErrorKind::Internal,
        }
    }
}

/// The image configuration document (Docker/OCI image config JSON). The image ID is the
/// sha256 of its serialized bytes as stored in the content store.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// Runtime defaults: Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes,
    /// Labels, StopSignal.
    pub config: berth_api::ContainerConfig,
    pub rootfs: RootFsConfig,
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RootFsConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HistoryEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// One image as the daemon sees it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// `sha256:<64 hex>`.
    pub id: String,
    pub config: ImageConfig,
    /// Familiar names: `busybox:latest`, `localhost:5000/app:v1`.
    pub repo_tags: Vec<String>,
}

/// Options of `import` (`POST /images/create?fromSrc=…`).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `repo[:tag]` to tag the new image with; None leaves it untagged (dangling).
    pub reference: Option<String>,
    /// Dockerfile instructions applied to the config: CMD, ENTRYPOINT, ENV, EXPOSE,
    /// WORKDIR, USER, LABEL, VOLUME, STOPSIGNAL, ONBUILD.
    pub changes: Vec<String>,
    /// Commit message, shown as the history comment.
    pub message: String,
}

/// Options of `list` (`GET /images/json`).
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    /// Docker's `filters` (dangling, label, reference, since, before), already decoded.
    pub filters: std::collections::BTreeMap<String, Vec<String>>,
}

pub struct ImageStore {
    root: PathBuf,
    db: Arc<redb::Database>,
}

impl ImageStore {
    pub fn open(root: &Path, db: Arc<redb::Database>) -> Result<Self, ImageError> {
        Ok(ImageStore { root: root.to_path_buf(), db })
    }

    /// Number of images (top-level records).
    pub fn count(&self) -> usize {
        let _ = (&self.root, &self.db);
        0
    }

    /// Stores the tar stream (plain or gzip-compressed) as a one-layer image; returns its ID.
    pub fn import(&self, tar: &mut dyn std::io::Read, opts: &ImportOptions) -> Result<String, ImageError> {
        let _ = (tar, opts);
        Err(ImageError::InvalidArgument("import is not built yet".into()))
    }

    /// Finds an image by `name[:tag]`, `name@digest`, full ID (with or without
    /// `sha256:`) or unique ID prefix. Not found: `No such image: <name>`.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord, ImageError> {
        Err(ImageError::NotFound(name.to_string()))
    }

    /// The image's unpacked layer directories, top-most first (overlay lowerdir order).
    pub fn layer_dirs(&self, image_id: &str) -> Result<Vec<PathBuf>, ImageError> {
        Err(ImageError::NotFound(image_id.to_string()))
    }

    pub fn list(&self, opts: &ListOptions) -> Result<Vec<berth_api::ImageSummary>, ImageError> {
        let _ = opts;
        Ok(Vec::new())
    }

    pub fn inspect(&self, name: &str) -> Result<berth_api::ImageInspect, ImageError> {
        Err(ImageError::NotFound(name.to_string()))
    }

    pub fn history(&self, name: &str) -> Result<Vec<berth_api::HistoryItem>, ImageError> {
        Err(ImageError::NotFound(name.to_string()))
    }

    /// Tags `source` as `repo:tag` (a tag moved away from another image leaves that
    /// image dangling).
    pub fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<(), ImageError> {
        let _ = (repo, tag);
        Err(ImageError::NotFound(source.to_string()))
    }

    /// `rmi`: Docker's Untagged/Deleted semantics. `container_using(image_id)` returns
    /// the ID of a container that uses the image, if any (refused unless `force`).
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        prune_parents: bool,
        container_using: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<berth_api::ImageDeleteItem>, ImageError> {
        let _ = (force, prune_parents, container_using);
        Err(ImageError::NotFound(name.to_string()))
    }
}
