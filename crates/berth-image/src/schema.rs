//! The image store's metadata schema in the daemon's `meta.db` (redb).
//!
//! Schema version: [`SCHEMA_VERSION`] = 1, kept under key `"version"` in
//! `image_schema`. Tables are prefixed `image_` so they share `meta.db` with the other
//! parts of the daemon. Every change is one write transaction.
//!
//! | table          | key (`&str`)                                  | value                                    |
//! |----------------|-----------------------------------------------|------------------------------------------|
//! | `image_schema` | `"version"`                                   | `u64` schema version                     |
//! | `image_images` | image ID `sha256:<hex>` (sha256 of the config blob) | JSON [`ImageMeta`] (`&[u8]`)       |
//! | `image_tags`   | normalized reference, `docker.io/library/busybox:latest` or `name@sha256:<hex>` | image ID (`&str`) |
//! | `image_layers` | chain ID `sha256:<hex>`                       | JSON [`LayerMeta`] (`&[u8]`)             |
//!
//! Blobs under `blobs/sha256/` and what keeps each alive:
//!
//! | blob                                   | kept while                                               |
//! |----------------------------------------|----------------------------------------------------------|
//! | image config (digest = image ID)       | the image record exists                                  |
//! | manifest / index ([`ImageMeta::manifests`]) | an image record lists it                            |
//! | uncompressed layer tar (digest = diff ID) | a layer record has that diff ID (local layers: import, commit, load) |
//! | compressed layer blob ([`LayerMeta::blob`]) | a layer record names it (pulled layers; local layers once pushed) |
//!
//! A pulled layer keeps only its compressed blob, byte for byte as the registry served
//! it (for an uncompressed layer that blob is the tar itself); a local layer keeps its tar
//! and, after its first push, the gzip blob made for it too.
//! Invariants:
//! - every `image_tags` value is a key of `image_images`;
//! - an image's config is the blob `blobs/sha256/<id hex>`;
//! - `image_layers[c].refcount` is the number of images whose chain includes `c`; a
//!   layer row (its directory `layers/<hex>`, its tar blob keyed by diff ID and its
//!   compressed blob) goes when the count reaches 0, unless a live [`crate::Lease`] pins
//!   it: a pull in progress records its layers with count 0 under its lease, and they go
//!   when the lease ends without the image being registered. Leases live in memory only,
//!   so [`crate::ImageStore::open`] removes every layer row whose count is 0;
//! - files are created before the transaction that refers to them and deleted after the
//!   transaction that drops the last reference, so a crash leaves only unreferenced
//!   files, which [`crate::ImageStore::open`] removes.
//!
//! Migrations: none yet; `open` refuses a newer version than it knows. The fields added
//! for pull and push (`LayerMeta::blob`, `LayerMeta::tar_size`, `ImageMeta::manifests`)
//! are optional in the JSON (serde defaults), so version 1 stores open unchanged.

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::ImageError;

pub const SCHEMA_VERSION: u64 = 1;

pub const SCHEMA: TableDefinition<&str, u64> = TableDefinition::new("image_schema");
pub const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("image_images");
pub const TAGS: TableDefinition<&str, &str> = TableDefinition::new("image_tags");
pub const LAYERS: TableDefinition<&str, &[u8]> = TableDefinition::new("image_layers");

/// Per-image metadata beside its config blob.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ImageMeta {
    /// Chain IDs of the image's layers, bottom first.
    pub chain_ids: Vec<String>,
    /// Sum of the layer sizes in bytes.
    pub size: i64,
    /// When the record was written (RFC 3339), for ordering.
    pub stored_at: String,
    /// Last time a tag was put on the image (RFC 3339), empty if never.
    pub last_tag_time: String,
    /// Parent image ID (commits), empty if none.
    pub parent: String,
    /// Digests of the image manifests and manifest lists / OCI indexes kept as blobs for
    /// this image (a pull stores the platform's manifest and, when the tag named one, the
    /// index), in the order first stored.
    pub manifests: Vec<String>,
    /// Committed by a build step: an entry of the classic builder's step cache
    /// ([`crate::ImageStore::step_cache_entries`]).
    pub build_step: bool,
    /// A step-cache entry's last use (commit or cache hit), unix nanoseconds; 0: never
    /// recorded (then `stored_at` is its last use).
    pub last_used: i64,
    /// How many times the step was committed or found in the cache.
    pub usage_count: u64,
}

/// One unpacked layer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LayerMeta {
    /// sha256 of the uncompressed tar. Local layers keep the tar as that blob; pulled
    /// layers keep only [`LayerMeta::blob`] (read the tar through
    /// [`crate::ImageStore::layer_tar`], which handles both).
    pub diff_id: String,
    /// Chain ID of the layer below, if any.
    pub parent: Option<String>,
    /// Bytes of file content in this layer alone.
    pub size: i64,
    /// Number of images using the layer.
    pub refcount: u64,
    /// The compressed blob as a registry serves it: the pulled bytes, or the gzip made
    /// for a local layer's first push. None for a local layer never pushed.
    pub blob: Option<BlobInfo>,
    /// Bytes of the uncompressed tar (0 in records written before pulls existed: then
    /// the tar blob's file size is the answer).
    pub tar_size: u64,
    /// Repositories (normalized names, `docker.io/library/busybox`) known to hold
    /// [`LayerMeta::blob`]: the ones it was pulled from or pushed to. A push offers them
    /// for a cross-repository mount.
    pub sources: Vec<String>,
}

/// A blob as a registry descriptor names it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlobInfo {
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
    /// The layer media type, e.g. `application/vnd.docker.image.rootfs.diff.tar.gzip`.
    pub media_type: String,
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

pub(crate) fn decode<T: for<'a> Deserialize<'a>>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Io {
        context: format!("decoding {what}"),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

/// Creates the tables and checks/stores the schema version.
pub(crate) fn init(db: &crate::MetaDb) -> Result<(), ImageError> {
    let txn = db.begin_write().map_err(redb::Error::from)?;
    {
        let mut schema = txn.open_table(SCHEMA).map_err(redb::Error::from)?;
        let current = schema
            .get("version")
            .map_err(redb::Error::from)?
            .map(|v| v.value());
        match current {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(ImageError::InvalidArgument(format!(
                    "image metadata schema version {v} is newer than this daemon supports ({SCHEMA_VERSION})"
                )))
            }
            Some(_) => {}
            None => {
                schema.insert("version", SCHEMA_VERSION).map_err(redb::Error::from)?;
            }
        }
        txn.open_table(IMAGES).map_err(redb::Error::from)?;
        txn.open_table(TAGS).map_err(redb::Error::from)?;
        txn.open_table(LAYERS).map_err(redb::Error::from)?;
    }
    txn.commit().map_err(redb::Error::from)?;
    Ok(())
}

/// Reads every row of a `&str → &[u8]` table.
pub(crate) fn all_bytes<T: ReadableTable<&'static str, &'static [u8]>>(
    t: &T,
) -> Result<Vec<(String, Vec<u8>)>, ImageError> {
    let mut out = Vec::new();
    for row in t.iter().map_err(redb::Error::from)? {
        let (k, v) = row.map_err(redb::Error::from)?;
        out.push((k.value().to_string(), v.value().to_vec()));
    }
    Ok(out)
}

/// Reads every row of a `&str → &str` table.
pub(crate) fn all_strs<T: ReadableTable<&'static str, &'static str>>(
    t: &T,
) -> Result<Vec<(String, String)>, ImageError> {
    let mut out = Vec::new();
    for row in t.iter().map_err(redb::Error::from)? {
        let (k, v) = row.map_err(redb::Error::from)?;
        out.push((k.value().to_string(), v.value().to_string()));
    }
    Ok(out)
}
