//! The store side of `push`: what to upload, and the manifest to put.
//!
//! A pulled layer is pushed as the blob it was pulled as, byte for byte (so existence
//! checks and cross-repository mounts name the same digest). A local layer (import,
//! commit, load) is gzip-compressed once, deterministically (no file name, mtime 0,
//! OS byte "unknown", default level), and the result is recorded as the layer's blob, so
//! every later push gives the same digest without compressing again.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use redb::ReadableTable;
use serde::Serialize;

use crate::compression::{docker_media_type, MEDIA_DOCKER_LAYER_GZIP};
use crate::content::io_err;
use crate::reference::Reference;
use crate::schema::{decode, encode, BlobInfo, LayerMeta, IMAGES, LAYERS, TAGS};
use crate::{ImageError, ImageStore};

pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Sources remembered per layer blob.
const MAX_SOURCES: usize = 8;

/// Everything a push uploads, in order: layers, config, then the manifest.
#[derive(Debug, Clone)]
pub struct PushPlan {
    /// The config blob (its digest is the image ID).
    pub config: Vec<u8>,
    pub config_digest: String,
    /// Bottom layer first.
    pub layers: Vec<PushLayer>,
    /// The Docker schema2 manifest to put.
    pub manifest: Vec<u8>,
    pub manifest_media_type: String,
}

/// One layer to upload.
#[derive(Debug, Clone)]
pub struct PushLayer {
    /// Digest, size and media type as the manifest names them.
    pub blob: BlobInfo,
    /// The compressed blob file to upload.
    pub path: PathBuf,
    /// The layer's diff ID (uncompressed tar digest).
    pub diff_id: String,
    /// Repositories (normalized names, `docker.io/library/busybox`) known to hold the
    /// blob, for a cross-repository mount (`?mount=<digest>&from=<repo path>` when on the
    /// same registry); most recent first.
    pub sources: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'a str,
    size: u64,
    digest: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Schema2Manifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
}

/// JSON indented as Docker's distribution code writes manifests (three spaces).
fn docker_json<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    // Serializing plain structs of strings and numbers cannot fail.
    let _ = v.serialize(&mut ser);
    out
}

impl ImageStore {
    /// The blobs and the manifest to push `image` (anything [`ImageStore::resolve`]
    /// accepts). Compresses the local layers never pushed before (see the module docs).
    pub fn push_plan(&self, image: &str) -> Result<PushPlan, ImageError> {
        let id = self.resolve_id(image)?;
        let meta = self.image_meta(&id)?;
        let config = self.content.read(&id)?;
        let mut layers = Vec::with_capacity(meta.chain_ids.len());
        for chain in &meta.chain_ids {
            let lm = self.layer_meta(chain)?;
            let blob = match lm.blob.clone() {
                Some(b) => b,
                None => self.compress_layer(chain, &lm)?,
            };
            layers.push(PushLayer {
                path: self.content.blob_path(&blob.digest),
                blob: BlobInfo {
                    media_type: docker_media_type(&blob.media_type),
                    ..blob
                },
                diff_id: lm.diff_id.clone(),
                sources: lm.sources.iter().rev().cloned().collect(),
            });
        }
        let manifest = docker_json(&Schema2Manifest {
            schema_version: 2,
            media_type: MEDIA_DOCKER_MANIFEST,
            config: Descriptor {
                media_type: MEDIA_DOCKER_CONFIG,
                size: config.len() as u64,
                digest: &id,
            },
            layers: layers
                .iter()
                .map(|l| Descriptor {
                    media_type: &l.blob.media_type,
                    size: l.blob.size,
                    digest: &l.blob.digest,
                })
                .collect(),
        });
        Ok(PushPlan {
            config,
            config_digest: id,
            layers,
            manifest,
            manifest_media_type: MEDIA_DOCKER_MANIFEST.to_string(),
        })
    }

    /// Records `name@digest` as a RepoDigest of `image_id` (after a push, as Docker does),
    /// and `name` as a source of each of the image's layer blobs.
    pub fn add_repo_digest(
        &self,
        name: &Reference,
        digest: &str,
        image_id: &str,
    ) -> Result<(), ImageError> {
        let r = Reference::parse_normalized(&format!("{}@{digest}", name.name()))?;
        let _g = self.lock();
        let txn = self.db.begin_write()?;
        let chains = {
            let images = txn.open_table(IMAGES)?;
            let meta: crate::schema::ImageMeta = match images.get(image_id)? {
                Some(v) => decode(v.value(), "image record")?,
                None => return Err(ImageError::NotFound(image_id.to_string())),
            };
            txn.open_table(TAGS)?
                .insert(r.to_string().as_str(), image_id)?;
            meta.chain_ids
        };
        txn.commit()?;
        // Sources are a hint for cross-repository mounts: the digest is recorded anyway.
        let held: Vec<(String, String)> = chains
            .into_iter()
            .filter_map(|c| {
                let b = self.layer_meta(&c).ok()?.blob?;
                Some((c, b.digest))
            })
            .collect();
        let _ = self.add_layer_sources(&held, &name.name());
        Ok(())
    }

    /// Adds `repo` (most recent last, at most [`MAX_SOURCES`] kept) to the sources of
    /// each `(chain, blob digest)` whose recorded blob is that digest. The caller holds
    /// the write lock.
    pub(crate) fn add_layer_sources(
        &self,
        held: &[(String, String)],
        repo: &str,
    ) -> Result<(), ImageError> {
        let txn = self.db.begin_write()?;
        {
            let mut layers = txn.open_table(LAYERS)?;
            for (chain, digest) in held {
                let Some(v) = layers.get(chain.as_str())?.map(|v| v.value().to_vec()) else {
                    continue;
                };
                let mut lm: LayerMeta = decode(&v, "layer record")?;
                if lm.blob.as_ref().map(|b| &b.digest) != Some(digest) {
                    continue;
                }
                lm.sources.retain(|s| s != repo);
                lm.sources.push(repo.to_string());
                if lm.sources.len() > MAX_SOURCES {
                    lm.sources.remove(0);
                }
                layers.insert(chain.as_str(), encode(&lm).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    pub(crate) fn layer_meta(&self, chain: &str) -> Result<LayerMeta, ImageError> {
        let rtxn = self.db.begin_read()?;
        let v = rtxn
            .open_table(LAYERS)?
            .get(chain)?
            .ok_or_else(|| ImageError::NotFound(format!("layer {chain}")))?;
        decode(v.value(), "layer record")
    }

    /// Gzips a local layer's tar into the content store and records it as the layer's
    /// blob (a concurrent push that recorded one first wins; ours is dropped).
    fn compress_layer(&self, chain: &str, lm: &LayerMeta) -> Result<BlobInfo, ImageError> {
        let (mut tar, _) = self.open_layer_tar(lm)?;
        let writer = self.content.writer()?;
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(
                BufWriter::with_capacity(1024 * 1024, writer),
                flate2::Compression::default(),
            );
        io::copy(&mut tar, &mut gz).map_err(io_err(format!("compressing layer {chain}")))?;
        let mut buffered = gz
            .finish()
            .map_err(io_err(format!("compressing layer {chain}")))?;
        buffered
            .flush()
            .map_err(io_err(format!("compressing layer {chain}")))?;
        let writer = buffered
            .into_inner()
            .map_err(|e| io_err(format!("compressing layer {chain}"))(e.into_error()))?;
        let size = writer.size();
        let sealed = writer.seal()?;
        let blob = BlobInfo {
            digest: sealed.digest().to_string(),
            size,
            media_type: MEDIA_DOCKER_LAYER_GZIP.to_string(),
        };
        let _g = self.lock();
        let mut current = self.layer_meta(chain)?;
        if let Some(b) = current.blob {
            return Ok(b);
        }
        sealed.publish()?;
        current.blob = Some(blob.clone());
        let txn = self.db.begin_write()?;
        txn.open_table(LAYERS)?
            .insert(chain, encode(&current).as_slice())?;
        txn.commit()?;
        Ok(blob)
    }
}
