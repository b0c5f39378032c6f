//! Berth's image store.
//!
//! On disk, under the daemon's `--root`:
//! - `blobs/sha256/<hex>`: content store (image configs, manifests and indexes, local
//!   layers' uncompressed tars, pulled layers' compressed blobs as the registry served
//!   them, and the gzip blobs made when a local layer is first pushed);
//! - `layers/<chain-id-hex>/`: one unpacked read-only layer, shared by every image that
//!   has it (overlay whiteouts already converted);
//! - `tmp/`: ingest area (write, fsync, verify digest, rename).
//!
//! Metadata (tags, image records, layer reference counts) lives in redb tables inside the
//! daemon's `meta.db`, documented in [`schema`].
//!
//! Public surface used by the daemon:
//! ```ignore
//! let store = ImageStore::open(root, db)?;                 // db: Arc<crate::MetaDb>
//! let id = store.import(reader, ImportOptions { .. })?;    // one-layer image from a tar
//! let img = store.resolve("busybox")?;                     // name[:tag], name@digest, id, short id
//! let lowers = store.layer_dirs(&img.id)?;                 // overlay lowerdirs, top first
//! store.list()?; store.inspect(..)?; store.history(..)?; store.tag(..)?; store.remove(..)?;
//! store.remove_image(name, force, prune, &|id| Some(ImageUser { .. }))?;  // running vs stopped users
//! store.commit(&CommitOptions { parent, upper, .. })?;     // container upper dir → new image
//! store.save(&names, &mut writer)?; store.load(&mut reader)?;  // docker save / load archives
//! store.disk_usage()?; store.check()?;                     // system df, system check
//!
//! // pull (from spawn_blocking, several layers at once):
//! let lease = store.lease();
//! if !(store.has_layer(&chain) && store.protect(&lease, &chain)) {   // "Already exists"
//!     store.ingest_layer(&lease, &mut reader, &blob, &diff_id, &chain, parent, &mut |n| ..)?;
//! }
//! let out = store.register_pulled(lease, &PulledImage { .. })?;  // out.updated: "Downloaded newer image"
//! // push:
//! let plan = store.push_plan("localhost:5000/app:1")?;      // blobs + schema2 manifest
//! store.add_repo_digest(&name, &manifest_digest, &plan.config_digest)?;
//! let (tar, size) = store.layer_tar(&chain)?;               // any layer's uncompressed tar
//! ```
//!
//! Modules: [`reference`](mod@reference) (Docker's reference grammar), [`content`] (blobs), [`unpack`] /
//! [`pack`] (layer tar ↔ directory with overlay whiteouts), [`schema`] (metadata tables),
//! [`changes`] (Dockerfile `--change` instructions), [`compression`] (layer media types
//! and decoders); import, commit, archive (save/load), query (list/inspect/history),
//! remove (tag/rmi), pull (ingest from a registry stream, leases in `lease`) and push
//! (push plans) implement the operations.

mod archive;
mod build_commit;
pub mod changes;
mod commit;
pub mod compression;
pub mod content;
mod import;
mod lease;
pub mod meta_db;
pub mod os_error;
pub mod pack;
mod pull;
mod push;
mod query;
pub mod reference;
mod remove;
pub mod schema;
mod stage;
mod step_cache;
pub mod targuard;
pub mod unpack;
mod usage;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_api::ErrorKind;
use redb::ReadableTableMetadata;

pub use crate::archive::ArchiveManifest;
pub use crate::build_commit::BuildStepCommit;
pub use crate::commit::{merge_commit_config, CommitOptions};
pub use crate::compression::Compression;
use crate::content::{digest_hex, io_err, ContentStore};
pub use crate::lease::Lease;
pub use crate::meta_db::MetaDb;
pub use crate::pull::{PulledImage, RegisterOutcome};
pub use crate::push::{PushLayer, PushPlan};
pub use crate::reference::{Reference, ReferenceError};
pub use crate::remove::ImageUser;
pub use crate::schema::BlobInfo;
use crate::schema::{decode, ImageMeta, LayerMeta, IMAGES, LAYERS, TAGS};
pub use crate::step_cache::{step_description, StepCacheEntry};
pub use crate::usage::ImageDiskUsage;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{context}: {}", crate::os_error::go_text(.source))]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{}", crate::meta_db::error_text(.0))]
    Db(#[from] redb::Error),
}

impl From<ReferenceError> for ImageError {
    fn from(e: ReferenceError) -> Self {
        ImageError::InvalidArgument(e.0)
    }
}

/// `?` on redb's many error types.
macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for ImageError {
            fn from(e: $t) -> Self {
                ImageError::Db(e.into())
            }
        }
    )*};
}
db_err!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

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
    /// Commit/import message (Docker's `comment`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub docker_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// The image this one was committed from (Docker's `parent`), empty for imports.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub parent: String,
    /// The container a commit was made from.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// The config the committed container ran with (Docker's `container_config`); a
    /// build step's Cmd there is the history's CreatedBy and the build cache's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_config: Option<berth_api::ContainerConfig>,
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

/// The image store. Cheap to share behind an `Arc`; all methods take `&self` and block
/// (the daemon calls them from `spawn_blocking`).
pub struct ImageStore {
    root: PathBuf,
    db: Arc<crate::MetaDb>,
    content: ContentStore,
    layers: PathBuf,
    /// Serializes changes that touch both files and metadata (layer rename + records).
    /// Shared with the leases, which remove unused layers when they end.
    write_lock: Arc<Mutex<()>>,
    /// Layers pinned by pulls in progress.
    leases: Arc<lease::LeaseTable>,
    /// Decoded image configs by image ID. A config is content-addressed, so an entry can
    /// never go stale; it is dropped when its image is deleted.
    configs: Mutex<std::collections::HashMap<String, Arc<ImageConfig>>>,
}

impl ImageStore {
    /// Opens the store under `root` (creating `blobs/`, `layers/`, `tmp/`), creates the
    /// metadata tables, and removes what an interrupted operation left behind: everything
    /// in `tmp/`, layer directories without a layer record, blobs nothing refers to.
    pub fn open(root: &Path, db: Arc<crate::MetaDb>) -> Result<Self, ImageError> {
        let content = ContentStore::open(root)?;
        let layers = root.join("layers");
        fs::create_dir_all(&layers).map_err(io_err(format!("creating {}", layers.display())))?;
        schema::init(&db)?;
        let write_lock = Arc::new(Mutex::new(()));
        let leases = Arc::new(lease::LeaseTable::new(
            write_lock.clone(),
            db.clone(),
            content.clone(),
            layers.clone(),
        ));
        let store = ImageStore {
            root: root.to_path_buf(),
            db,
            content,
            layers,
            write_lock,
            leases,
            configs: Mutex::new(Default::default()),
        };
        store.collect_garbage()?;
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        lease::lock(&self.write_lock)
    }

    /// What `open` removes: everything in `tmp/` (half-done ingests), layer records with
    /// count 0 (a pull interrupted before its image was registered: no lease survives a
    /// restart), layer directories without a record, and blobs that neither an image
    /// (config, kept manifests) nor a layer record (tar, compressed blob) names.
    fn collect_garbage(&self) -> Result<(), ImageError> {
        let _g = self.lock();
        if let Ok(rd) = fs::read_dir(self.content.tmp_dir()) {
            for e in rd.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
        self.drop_unused_layer_records()?;
        let rtxn = self.db.begin_read()?;
        let layers = schema::all_bytes(&rtxn.open_table(LAYERS)?)?;
        let images = schema::all_bytes(&rtxn.open_table(IMAGES)?)?;
        let mut live_layers = std::collections::HashSet::new();
        let mut live_blobs = std::collections::HashSet::new();
        for (chain, v) in &layers {
            live_layers.insert(digest_hex(chain).to_string());
            let meta: LayerMeta = decode(v, "layer record")?;
            for d in lease::layer_blobs(&meta) {
                live_blobs.insert(digest_hex(&d).to_string());
            }
        }
        for (id, v) in &images {
            live_blobs.insert(digest_hex(id).to_string());
            let meta: ImageMeta = decode(v, "image record")?;
            for d in &meta.manifests {
                live_blobs.insert(digest_hex(d).to_string());
            }
        }
        if let Ok(rd) = fs::read_dir(&self.layers) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if !live_layers.contains(&name) {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        for d in self.content.list()? {
            if !live_blobs.contains(digest_hex(&d)) {
                self.content.delete(&d)?;
            }
        }
        Ok(())
    }

    /// Removes layer records whose count is 0 (see [`ImageStore::collect_garbage`]); their
    /// files go with the sweep that follows.
    fn drop_unused_layer_records(&self) -> Result<(), ImageError> {
        let txn = self.db.begin_write()?;
        {
            let mut layers = txn.open_table(LAYERS)?;
            let mut unused = Vec::new();
            for (chain, v) in schema::all_bytes(&layers)? {
                if decode::<LayerMeta>(&v, "layer record")?.refcount == 0 {
                    unused.push(chain);
                }
            }
            for chain in unused {
                layers.remove(chain.as_str())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The uncompressed tar of the stored layer `chain_id` and its size in bytes, whether
    /// the layer keeps its tar (local layers) or only a compressed blob (pulled layers:
    /// decompressed on the fly). Every reader of a layer's tar goes through here.
    pub fn layer_tar(&self, chain_id: &str) -> Result<(Box<dyn std::io::Read>, u64), ImageError> {
        let rtxn = self.db.begin_read()?;
        let lm: LayerMeta = match rtxn.open_table(LAYERS)?.get(chain_id)? {
            Some(v) => decode(v.value(), "layer record")?,
            None => return Err(ImageError::NotFound(format!("layer {chain_id}"))),
        };
        drop(rtxn);
        self.open_layer_tar(&lm)
    }

    pub(crate) fn open_layer_tar(
        &self,
        lm: &LayerMeta,
    ) -> Result<(Box<dyn std::io::Read>, u64), ImageError> {
        let tar_path = self.content.blob_path(&lm.diff_id);
        if let Ok(f) = fs::File::open(&tar_path) {
            let size = f
                .metadata()
                .map_err(io_err(format!("layer {}", lm.diff_id)))?
                .len();
            return Ok((Box::new(f), size));
        }
        let blob = lm.blob.as_ref().ok_or_else(|| ImageError::Io {
            context: format!("layer {}: its tar is not stored", lm.diff_id),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        let compression = Compression::from_media_type(&blob.media_type)?;
        let f = fs::File::open(self.content.blob_path(&blob.digest))
            .map_err(io_err(format!("opening layer blob {}", blob.digest)))?;
        let reader = compression
            .decoder(std::io::BufReader::with_capacity(256 * 1024, f))
            .map_err(io_err(format!("opening layer blob {}", blob.digest)))?;
        let size = if lm.tar_size > 0 {
            lm.tar_size
        } else {
            // Not recorded: count once.
            let mut counter = compression
                .decoder(std::io::BufReader::new(
                    fs::File::open(self.content.blob_path(&blob.digest))
                        .map_err(io_err(format!("opening layer blob {}", blob.digest)))?,
                ))
                .map_err(io_err(format!("opening layer blob {}", blob.digest)))?;
            std::io::copy(&mut counter, &mut std::io::sink())
                .map_err(io_err(format!("reading layer blob {}", blob.digest)))?
        };
        Ok((reader, size))
    }

    /// Number of images (top-level records).
    pub fn count(&self) -> usize {
        let count = || -> Result<u64, ImageError> {
            let rtxn = self.db.begin_read()?;
            Ok(rtxn.open_table(IMAGES)?.len()?)
        };
        count().unwrap_or(0) as usize
    }

    /// Directory of an unpacked layer.
    pub fn layer_path(&self, chain_id: &str) -> PathBuf {
        self.layers.join(digest_hex(chain_id))
    }

    /// Finds an image by `name[:tag]`, `name@digest`, full ID (with or without
    /// `sha256:`) or unique ID prefix. Not found: `No such image: <name>`.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord, ImageError> {
        let id = self.resolve_id(name)?;
        self.record(&id)
    }

    /// The image ID `name` refers to (see [`ImageStore::resolve`]).
    pub fn resolve_id(&self, name: &str) -> Result<String, ImageError> {
        let rtxn = self.db.begin_read()?;
        let images = rtxn.open_table(IMAGES)?;
        let tags = rtxn.open_table(TAGS)?;
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if reference::is_full_hex_id(hex) {
            let id = format!("sha256:{hex}");
            return match images.get(id.as_str())? {
                Some(_) => Ok(id),
                None => Err(ImageError::NotFound(id)),
            };
        }
        let parsed = Reference::parse_normalized(name);
        if let Ok(r) = &parsed {
            let key = r.clone().with_default_tag().to_string();
            if let Some(id) = tags.get(key.as_str())? {
                return Ok(id.value().to_string());
            }
        }
        let is_hex_prefix = !hex.is_empty()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if is_hex_prefix {
            let mut found = None;
            let start = format!("sha256:{hex}");
            for row in images.range(start.as_str()..)? {
                let (k, _) = row?;
                let k = k.value();
                if !k.starts_with(&start) {
                    break;
                }
                if found.is_some() {
                    found = None; // ambiguous: Docker answers "No such image".
                    break;
                }
                found = Some(k.to_string());
            }
            if let Some(id) = found {
                return Ok(id);
            }
        }
        match parsed {
            Ok(r) => Err(ImageError::NotFound(r.with_default_tag().familiar_string())),
            // An ID prefix that is not a valid reference (`sha256:12ab`): not found.
            Err(_) if name.starts_with("sha256:") => Err(ImageError::NotFound(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// The image's unpacked layer directories, top-most first (overlay lowerdir order).
    /// `image_id` may be anything [`ImageStore::resolve`] accepts.
    pub fn layer_dirs(&self, image_id: &str) -> Result<Vec<PathBuf>, ImageError> {
        let id = self.resolve_id(image_id)?;
        let meta = self.image_meta(&id)?;
        Ok(meta
            .chain_ids
            .iter()
            .rev()
            .map(|c| self.layer_path(c))
            .collect())
    }

    pub(crate) fn image_meta(&self, id: &str) -> Result<ImageMeta, ImageError> {
        let rtxn = self.db.begin_read()?;
        let images = rtxn.open_table(IMAGES)?;
        let v = images
            .get(id)?
            .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
        decode(v.value(), "image record")
    }

    pub(crate) fn image_config(&self, id: &str) -> Result<ImageConfig, ImageError> {
        Ok((*self.image_config_shared(id)?).clone())
    }

    /// The decoded config of image `id`, from the cache or the content store.
    pub(crate) fn image_config_shared(&self, id: &str) -> Result<Arc<ImageConfig>, ImageError> {
        let cache = || self.configs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache().get(id) {
            return Ok(c.clone());
        }
        let bytes = self.content.read(id)?;
        let config: Arc<ImageConfig> = Arc::new(decode(&bytes, "image config")?);
        cache().insert(id.to_string(), config.clone());
        Ok(config)
    }

    /// Drops a deleted image's cached config.
    pub(crate) fn forget_config(&self, id: &str) {
        self.configs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Normalized reference keys pointing at `id` (tags and digests).
    pub(crate) fn refs_of(&self, id: &str) -> Result<Vec<String>, ImageError> {
        let rtxn = self.db.begin_read()?;
        let tags = schema::all_strs(&rtxn.open_table(TAGS)?)?;
        Ok(tags
            .into_iter()
            .filter(|(_, v)| v == id)
            .map(|(k, _)| k)
            .collect())
    }

    pub(crate) fn record(&self, id: &str) -> Result<ImageRecord, ImageError> {
        let config = self.image_config(id)?;
        let (repo_tags, _) = split_refs(&self.refs_of(id)?);
        Ok(ImageRecord {
            id: id.to_string(),
            config,
            repo_tags,
        })
    }
}

/// Splits normalized reference keys into familiar tags and familiar digests, sorted.
pub(crate) fn split_refs(keys: &[String]) -> (Vec<String>, Vec<String>) {
    let refs: Vec<Reference> = keys
        .iter()
        .filter_map(|k| Reference::parse_normalized(k).ok())
        .collect();
    split_references(&refs)
}

/// [`split_refs`] of references already parsed.
pub(crate) fn split_references(refs: &[Reference]) -> (Vec<String>, Vec<String>) {
    let mut tags = Vec::new();
    let mut digests = Vec::new();
    for r in refs {
        if r.digest().is_some() {
            digests.push(r.familiar_string());
        } else {
            tags.push(r.familiar_string());
        }
    }
    tags.sort();
    digests.sort();
    (tags, digests)
}

/// Chain IDs for a list of diff IDs (OCI image spec: `chain(n) = sha256(chain(n-1) + " " + diff(n))`).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => content::sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Unix seconds of an RFC 3339 time, 0 if it does not parse.
pub(crate) fn unix_seconds(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp())
        .unwrap_or(0)
}

/// The first 12 hex characters of an ID (Docker's `TruncateID`).
pub fn short_id(id: &str) -> String {
    digest_hex(id).chars().take(12).collect()
}

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod pull_tests;
#[cfg(test)]
mod store_tests;
