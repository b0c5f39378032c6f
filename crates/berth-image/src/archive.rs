//! `save` and `load`: images as a tar archive in the format `docker save` writes since
//! Docker 25 (an OCI image layout plus Docker's `manifest.json`), which older `docker
//! load` versions also read:
//!
//! ```text
//! oci-layout                     {"imageLayoutVersion":"1.0.0"}
//! index.json                     OCI index: one manifest per image (and tag)
//! manifest.json                  [{"Config":"blobs/sha256/<id>","RepoTags":[..],"Layers":["blobs/sha256/<diff>",..]}]
//! repositories                   legacy {"name":{"tag":"<top chain hex>"}}
//! blobs/sha256/<hex>             configs, OCI manifests, uncompressed layer tars
//! ```
//!
//! `load` reads that and the older layout (`<hex>/layer.tar`), gzip or plain: anything
//! `manifest.json` points at. An archive without `manifest.json` that is a pure OCI image
//! layout is read through `index.json` (see [`oci_manifests`]). Layers already stored are not unpacked again.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::content::{digest_hex, io_err, random_hex, sha256_digest};
use crate::reference::Reference;
use crate::schema::{decode, LAYERS};
use crate::stage::{Staged, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE};
use crate::{chain_ids, ImageConfig, ImageError, ImageStore};

const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// One entry of Docker's `manifest.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ArchiveManifest {
    pub config: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub repo_tags: Vec<String>,
    pub layers: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn bad_archive(msg: impl Into<String>) -> ImageError {
    ImageError::InvalidArgument(msg.into())
}

fn append_file<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, name, data)
}

fn append_dir<W: Write>(b: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, name, io::empty())
}

/// Reads exactly `left` bytes: a stored tar shorter than its recorded size is an error,
/// not a corrupt archive entry.
struct ExactReader<'a, R> {
    inner: R,
    left: u64,
    what: &'a str,
}

impl<R: Read> Read for ExactReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("layer {}: stored tar is shorter than recorded", self.what),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl ImageStore {
    /// Writes the images `names` refer to as one archive into `out`. Names that are
    /// references put their tag into `RepoTags`; IDs save the image untagged.
    pub fn save(&self, names: &[String], out: &mut dyn Write) -> Result<(), ImageError> {
        // image ID → tags asked for, in first-seen order.
        let mut images: Vec<(String, Vec<Reference>)> = Vec::new();
        for name in names {
            let id = self.resolve_id(name)?;
            let by_id = id.starts_with(&format!("sha256:{name}")) || id.starts_with(name.as_str());
            let tag = if by_id {
                None
            } else {
                Reference::parse_normalized(name)
                    .ok()
                    .map(|r| r.with_default_tag())
            };
            match images.iter_mut().find(|(i, _)| *i == id) {
                Some((_, tags)) => tags.extend(tag),
                None => images.push((id, tag.into_iter().collect())),
            }
        }
        let w = |e: io::Error| ImageError::Io {
            context: "writing the image archive".into(),
            source: e,
        };
        let mut b = tar::Builder::new(out);
        append_dir(&mut b, "blobs").map_err(w)?;
        append_dir(&mut b, "blobs/sha256").map_err(w)?;
        let mut written = std::collections::HashSet::new();
        let mut manifests = Vec::new();
        let mut index = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (id, tags) in &images {
            let config_bytes = self.content.read(id)?;
            let config: ImageConfig = decode(&config_bytes, "image config")?;
            let mut layer_descs = Vec::new();
            let mut layer_paths = Vec::new();
            let chains = chain_ids(&config.rootfs.diff_ids);
            for (diff, chain) in config.rootfs.diff_ids.iter().zip(&chains) {
                // The uncompressed tar, whether the layer keeps it or a compressed blob.
                let (tar, size) = self.layer_tar(chain)?;
                if written.insert(diff.clone()) {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(size);
                    let mut exact = ExactReader {
                        inner: tar.take(size),
                        left: size,
                        what: diff,
                    };
                    b.append_data(
                        &mut h,
                        format!("blobs/sha256/{}", digest_hex(diff)),
                        &mut exact,
                    )
                    .map_err(w)?;
                }
                layer_descs.push(json!({"mediaType": MEDIA_LAYER, "digest": diff, "size": size}));
                layer_paths.push(format!("blobs/sha256/{}", digest_hex(diff)));
            }
            if written.insert(id.clone()) {
                append_file(
                    &mut b,
                    &format!("blobs/sha256/{}", digest_hex(id)),
                    &config_bytes,
                )
                .map_err(w)?;
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": {"mediaType": MEDIA_CONFIG, "digest": id, "size": config_bytes.len()},
                "layers": layer_descs,
            });
            let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
            let manifest_digest = sha256_digest(&manifest_bytes);
            if written.insert(manifest_digest.clone()) {
                append_file(
                    &mut b,
                    &format!("blobs/sha256/{}", digest_hex(&manifest_digest)),
                    &manifest_bytes,
                )
                .map_err(w)?;
            }
            let desc = |annotations: serde_json::Value| json!({"mediaType": MEDIA_MANIFEST, "digest": manifest_digest, "size": manifest_bytes.len(), "annotations": annotations});
            if tags.is_empty() {
                index.push(desc(json!({})));
            }
            for t in tags {
                index.push(desc(json!({
                    "io.containerd.image.name": t.to_string(),
                    "org.opencontainers.image.ref.name": t.tag().unwrap_or("latest"),
                })));
                if let Some(top) = chain_ids(&config.rootfs.diff_ids).last() {
                    repositories.entry(t.familiar_name()).or_default().insert(
                        t.tag().unwrap_or("latest").to_string(),
                        digest_hex(top).to_string(),
                    );
                }
            }
            manifests.push(ArchiveManifest {
                config: format!("blobs/sha256/{}", digest_hex(id)),
                repo_tags: tags.iter().map(|t| t.familiar_string()).collect(),
                layers: layer_paths,
            });
        }
        let index = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": index});
        append_file(
            &mut b,
            "index.json",
            &serde_json::to_vec(&index).unwrap_or_default(),
        )
        .map_err(w)?;
        append_file(
            &mut b,
            "manifest.json",
            &serde_json::to_vec(&manifests).unwrap_or_default(),
        )
        .map_err(w)?;
        append_file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(w)?;
        if !repositories.is_empty() {
            append_file(
                &mut b,
                "repositories",
                &serde_json::to_vec(&repositories).unwrap_or_default(),
            )
            .map_err(w)?;
        }
        b.finish().map_err(w)?;
        Ok(())
    }

    fn layer_stored(&self, chain: &str) -> Result<bool, ImageError> {
        let rtxn = self.db.begin_read()?;
        Ok(rtxn.open_table(LAYERS)?.get(chain)?.is_some())
    }

    /// Loads every image of an archive (see the module doc); returns Docker's messages
    /// without the newline: `Loaded image: busybox:latest`, `Loaded image ID: sha256:…`.
    pub fn load(&self, reader: &mut dyn Read) -> Result<Vec<String>, ImageError> {
        let dir = self
            .content
            .tmp_dir()
            .join(format!("load-{}", random_hex()));
        fs::create_dir(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let guard = crate::import::TempDir::new(dir.clone());
        let staged = {
            let decompressed = crate::import::open_decompressed(reader)?;
            Staged::extract(decompressed, &dir)?
        };
        let manifests: Vec<ArchiveManifest> = if staged.is_file("manifest.json") {
            let manifest_bytes = staged.read_small("manifest.json", MAX_MANIFEST_SIZE)?;
            serde_json::from_slice(&manifest_bytes)
                .map_err(|e| bad_archive(format!("invalid manifest.json: {e}")))?
        } else if staged.is_file("oci-layout") && staged.is_file("index.json") {
            oci_manifests(&staged)?
        } else {
            return Err(bad_archive(
                "invalid tar header: the archive has no manifest.json",
            ));
        };
        let mut messages = Vec::new();
        for m in manifests {
            let config_bytes = staged.read_small(&m.config, MAX_CONFIG_SIZE)?;
            let config: ImageConfig = decode(&config_bytes, "image config")?;
            if config.rootfs.diff_ids.len() != m.layers.len() {
                return Err(bad_archive(format!(
                    "invalid manifest, layers length mismatch: expected {}, got {}",
                    config.rootfs.diff_ids.len(),
                    m.layers.len()
                )));
            }
            let tags = m
                .repo_tags
                .iter()
                .map(|t| Reference::parse_normalized(t).map(|r| r.with_default_tag()))
                .collect::<Result<Vec<_>, _>>()?;
            let chains = chain_ids(&config.rootfs.diff_ids);
            let mut layers = Vec::new();
            for (i, rel) in m.layers.iter().enumerate() {
                if self.layer_stored(&chains[i])? {
                    layers.push(None);
                    continue;
                }
                let mut f = staged.open_existing(rel)?;
                layers.push(Some(self.ingest_local_layer(&mut f)?));
            }
            let id = self.commit_image(&config_bytes, &config, layers, &tags)?;
            if tags.is_empty() {
                messages.push(format!("Loaded image ID: {id}"));
            }
            messages.extend(
                tags.iter()
                    .map(|t| format!("Loaded image: {}", t.familiar_string())),
            );
        }
        drop(guard);
        Ok(messages)
    }
}

/// An OCI descriptor as `index.json` and manifests carry it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct OciDescriptor {
    media_type: String,
    digest: String,
    annotations: BTreeMap<String, String>,
}

/// An OCI index (`index.json`) or image manifest: only the fields `load` needs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct OciDocument {
    media_type: String,
    manifests: Vec<OciDescriptor>,
    config: Option<OciDescriptor>,
    layers: Vec<OciDescriptor>,
}

const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// `blobs/<alg>/<hex>` for a digest `<alg>:<hex>`.
fn blob_path(digest: &str) -> Result<String, ImageError> {
    match digest.split_once(':') {
        Some((alg, hex))
            if !alg.is_empty() && !hex.is_empty() && !hex.contains('/') && !alg.contains('/') =>
        {
            Ok(format!("blobs/{alg}/{hex}"))
        }
        _ => Err(bad_archive(format!(
            "invalid digest in OCI layout: {digest:?}"
        ))),
    }
}

fn read_oci_document(root: &Staged, digest: &str) -> Result<OciDocument, ImageError> {
    let rel = blob_path(digest)?;
    let bytes = root.read_small(&rel, MAX_MANIFEST_SIZE)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| bad_archive(format!("invalid OCI manifest {digest}: {e}")))
}

/// The tag an `index.json` entry names: `io.containerd.image.name` (what Docker 25+ and
/// containerd write), else `org.opencontainers.image.ref.name` when it is a whole reference
/// (a bare tag such as `v1` names no repository and gives no tag).
fn oci_repo_tag(annotations: &BTreeMap<String, String>) -> Option<String> {
    if let Some(name) = annotations
        .get(ANNOTATION_IMAGE_NAME)
        .filter(|n| !n.is_empty())
    {
        return Some(name.clone());
    }
    let r = annotations.get(ANNOTATION_REF_NAME)?;
    let whole = r.contains('/') || r.contains(':');
    (whole && Reference::parse_normalized(r).is_ok()).then(|| r.clone())
}

/// Reads a pure OCI image layout (no `manifest.json`) as the manifests `load` works on:
/// every image manifest `index.json` names (through nested indexes, taking the first image
/// manifest of each), with its tag from the entry's annotations. Entries for the same
/// config are merged, so an image saved under two tags loads once with both.
fn oci_manifests(root: &Staged) -> Result<Vec<ArchiveManifest>, ImageError> {
    let bytes = root.read_small("index.json", MAX_MANIFEST_SIZE)?;
    let index: OciDocument = serde_json::from_slice(&bytes)
        .map_err(|e| bad_archive(format!("invalid index.json: {e}")))?;
    let mut out: Vec<ArchiveManifest> = Vec::new();
    for entry in &index.manifests {
        let mut doc = read_oci_document(root, &entry.digest)?;
        // A (nested) index: follow its first image manifest.
        let mut depth = 0;
        while doc.config.is_none() && !doc.manifests.is_empty() {
            depth += 1;
            if depth > 8 {
                return Err(bad_archive("invalid OCI layout: indexes nested too deep"));
            }
            let first = doc.manifests[0].digest.clone();
            doc = read_oci_document(root, &first)?;
        }
        if doc.media_type == MEDIA_INDEX || doc.media_type == DOCKER_MANIFEST_LIST {
            return Err(bad_archive(format!(
                "invalid OCI layout: index {} lists no image",
                entry.digest
            )));
        }
        let config = doc.config.as_ref().ok_or_else(|| {
            bad_archive(format!("invalid OCI manifest {}: no config", entry.digest))
        })?;
        let manifest = ArchiveManifest {
            config: blob_path(&config.digest)?,
            repo_tags: oci_repo_tag(&entry.annotations).into_iter().collect(),
            layers: doc
                .layers
                .iter()
                .map(|l| blob_path(&l.digest))
                .collect::<Result<_, _>>()?,
        };
        match out.iter_mut().find(|m| m.config == manifest.config) {
            Some(m) => {
                for t in manifest.repo_tags {
                    if !m.repo_tags.contains(&t) {
                        m.repo_tags.push(t);
                    }
                }
            }
            None => out.push(manifest),
        }
    }
    if out.is_empty() {
        return Err(bad_archive(
            "invalid OCI layout: index.json lists no manifest",
        ));
    }
    Ok(out)
}
