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
//! Invariants:
//! - every `image_tags` value is a key of `image_images`;
//! - an image's config is the blob `blobs/sha256/<id hex>`;
//! - `image_layers[c].refcount` is the number of images whose chain includes `c`; a
//!   layer row (its directory `layers/<hex>` and its tar blob, keyed by diff ID) goes
//!   when the count reaches 0;
//! - files are created before the transaction that refers to them and deleted after the
//!   transaction that drops the last reference, so a crash leaves only unreferenced
//!   files, which [`crate::ImageStore::open`] removes.
//!
//! Migrations: none yet; `open` refuses a newer version than it knows.

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
}

/// One unpacked layer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LayerMeta {
    /// sha256 of the uncompressed tar; the tar is kept as that blob.
    pub diff_id: String,
    /// Chain ID of the layer below, if any.
    pub parent: Option<String>,
    /// Bytes of file content in this layer alone.
    pub size: i64,
    /// Number of images using the layer.
    pub refcount: u64,
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
pub(crate) fn init(db: &redb::Database) -> Result<(), ImageError> {
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
