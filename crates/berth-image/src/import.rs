//! `import`: one tar stream (plain or gzip) becomes a one-layer image.
//!
//! Order of effects, so that a failure or a crash leaves nothing behind:
//! 1. the reference and the changes are checked before any byte is read;
//! 2. the stream is unpacked into a private directory under `tmp/` while the same bytes
//!    (uncompressed) go into a content-store ingest, whose digest is the diff ID;
//! 3. under the write lock, the directory is renamed to `layers/<chain-id>` unless that
//!    layer exists already (then the copy is dropped), and the config blob is written;
//! 4. one transaction adds the image record, bumps the layer's reference count and sets
//!    the tag. If that fails, files no record refers to are removed again.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use berth_api::ContainerConfig;
use redb::ReadableTable;

use crate::changes::apply_changes;
use crate::content::{io_err, random_hex, BlobWriter};
use crate::reference::Reference;
use crate::schema::{decode, encode, ImageMeta, LayerMeta, IMAGES, LAYERS, TAGS};
use crate::unpack::unpack_layer;
use crate::{
    chain_ids, now_rfc3339, HistoryEntry, ImageConfig, ImageError, ImageStore, ImportOptions,
    RootFsConfig,
};

/// A directory removed on drop unless disarmed.
pub(crate) struct TempDir(Option<PathBuf>);

impl TempDir {
    pub(crate) fn new(p: PathBuf) -> Self {
        TempDir(Some(p))
    }
    pub(crate) fn path(&self) -> &std::path::Path {
        self.0.as_deref().unwrap_or(std::path::Path::new(""))
    }
    pub(crate) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// Reads from `inner` and copies every byte read into `out`.
struct TeeReader<'a, R> {
    inner: R,
    out: &'a mut BlobWriter,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// An unpacked, not yet committed layer.
pub(crate) struct IngestedLayer {
    dir: TempDir,
    /// The layer's tar, published under the write lock by `commit_image`.
    blob: Option<crate::content::SealedBlob>,
    pub diff_id: String,
    pub size: i64,
    /// Bytes of the uncompressed tar.
    pub tar_size: u64,
}

/// Removes what overlayfs wrote for itself in an upper directory (`trusted.overlay.*`
/// but the opaque marker: origin, impure, …), so the directory can serve as a lower layer.
fn strip_overlay_bookkeeping(p: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    for (name, _) in crate::pack::list_xattrs(p).unwrap_or_default() {
        if name.starts_with("trusted.overlay.") && name != crate::unpack::OVERLAY_OPAQUE_XATTR {
            if let (Ok(cp), Ok(cn)) = (
                std::ffi::CString::new(p.as_os_str().as_bytes()),
                std::ffi::CString::new(name),
            ) {
                // SAFETY: two NUL-terminated strings that live across the call.
                unsafe { libc::lremovexattr(cp.as_ptr(), cn.as_ptr()) };
            }
        }
    }
    if fs::symlink_metadata(p).map(|m| m.is_dir()).unwrap_or(false) {
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                strip_overlay_bookkeeping(&e.path());
            }
        }
    }
}

/// The platform's architecture in Go's spelling.
pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "arm" => "arm",
        other => other,
    }
}

pub(crate) fn open_decompressed<'a>(
    reader: &'a mut dyn Read,
) -> Result<Box<dyn Read + 'a>, ImageError> {
    let mut buf = BufReader::with_capacity(128 * 1024, reader);
    let head = buf
        .fill_buf()
        .map_err(io_err("reading the import stream"))?;
    match crate::compression::Compression::detect(head) {
        crate::compression::Compression::None => {}
        c => {
            return c.decoder(buf).map_err(|e| {
                ImageError::InvalidArgument(format!("invalid compressed stream: {e}"))
            })
        }
    }
    let unsupported = if head.starts_with(b"BZh") {
        Some("bzip2")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else {
        None
    };
    if let Some(kind) = unsupported {
        return Err(ImageError::InvalidArgument(format!(
            "unsupported compression format {kind}"
        )));
    }
    Ok(Box::new(buf))
}

/// Flushes the filesystem holding `dir` (one `syncfs`, cheaper than an fsync per file),
/// so a layer renamed into place is on disk before any record points at it.
pub(crate) fn sync_filesystem(dir: &std::path::Path) -> Result<(), ImageError> {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(dir).map_err(io_err(format!("opening {}", dir.display())))?;
    // SAFETY: a valid open file descriptor.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(io_err(format!("syncfs {}", dir.display()))(
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Most entries a layer may have for [`sync_layer`] to fsync them one by one.
const FSYNC_EACH_MAX: usize = 256;

/// Makes a new layer directory durable before it is renamed into place: a small one
/// (a RUN step's few files) by an fsync of each file and directory, which does not wait
/// for the rest of the filesystem's dirty data as `syncfs` does; a big one by one
/// [`sync_filesystem`]. Whiteouts and symlinks are covered by their directory's fsync.
pub(crate) fn sync_layer(dir: &std::path::Path) -> Result<(), ImageError> {
    let Some(paths) = small_layer_entries(dir) else {
        return sync_filesystem(dir);
    };
    for p in paths.iter().rev() {
        fs::File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(io_err(format!("syncing {}", p.display())))?;
    }
    Ok(())
}

/// `dir` and its files and directories when there are at most [`FSYNC_EACH_MAX`];
/// None for a bigger layer (which [`sync_layer`] flushes with one `syncfs`).
pub(crate) fn small_layer_entries(dir: &std::path::Path) -> Option<Vec<std::path::PathBuf>> {
    fn collect(p: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> bool {
        let Ok(rd) = fs::read_dir(p) else {
            return false;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { return false };
            if ft.is_dir() {
                out.push(e.path());
                if out.len() > FSYNC_EACH_MAX || !collect(&e.path(), out) {
                    return false;
                }
            } else if ft.is_file() {
                out.push(e.path());
            }
            if out.len() > FSYNC_EACH_MAX {
                return false;
            }
        }
        true
    }
    let mut paths = vec![dir.to_path_buf()];
    collect(dir, &mut paths).then_some(paths)
}

/// True when an unpacked import looks like a `docker save` archive rather than a root
/// filesystem: `manifest.json` at its root (Docker's form), or `oci-layout` with
/// `index.json` (the OCI layout).
/// Symlinks are not followed: they point into the image, not at the host.
fn is_image_archive(root: &std::path::Path) -> bool {
    let file = |n: &str| {
        fs::symlink_metadata(root.join(n))
            .map(|m| m.is_file())
            .unwrap_or(false)
    };
    file("manifest.json") || (file("oci-layout") && file("index.json"))
}

impl ImageStore {
    /// Unpacks one local layer stream (plain, gzip or zstd) into a private temp dir and
    /// stores its uncompressed tar as a blob keyed by diff ID.
    pub(crate) fn ingest_local_layer(
        &self,
        reader: &mut dyn Read,
    ) -> Result<IngestedLayer, ImageError> {
        let decompressed = open_decompressed(reader)?;
        let mut blob = self.content.writer()?;
        let path = self
            .content
            .tmp_dir()
            .join(format!("layer-{}", random_hex()));
        fs::create_dir(&path).map_err(io_err(format!("creating {}", path.display())))?;
        let dir = TempDir(Some(path));
        let stats = {
            let mut tee = TeeReader {
                inner: decompressed,
                out: &mut blob,
            };
            let stats = unpack_layer(&mut tee, dir.path())?;
            // The tar's end padding (and anything after it) is part of the diff ID.
            io::copy(&mut tee, &mut io::sink())
                .map_err(|e| ImageError::InvalidArgument(format!("invalid tar stream: {e}")))?;
            stats
        };
        let tar_size = blob.size();
        let blob = blob.seal()?;
        let diff_id = blob.digest().to_string();
        Ok(IngestedLayer {
            dir,
            blob: Some(blob),
            diff_id,
            size: stats.size as i64,
            tar_size,
        })
    }

    /// Takes the directory `dir` (a build step's writable layer, overlay whiteouts as they
    /// are) as a new layer without unpacking it again: its tar is written once as the
    /// layer's blob, then the directory itself moves into `tmp/` to become the layer.
    /// `dir` is consumed (it must be on the store's filesystem).
    pub(crate) fn adopt_dir_as_layer(
        &self,
        dir: &std::path::Path,
    ) -> Result<IngestedLayer, ImageError> {
        let mut blob = self.content.writer()?;
        crate::pack::pack_layer(dir, &mut blob)
            .and_then(io::Write::flush)
            .map_err(io_err(format!("packing {}", dir.display())))?;
        let tar_size = blob.size();
        // A big layer's tar is not synced on its own: `commit_image` flushes the whole
        // filesystem (`sync_layer`) before it moves the layer in and writes the records.
        let blob = if small_layer_entries(dir).is_some() {
            blob.seal()?
        } else {
            blob.seal_unsynced()?
        };
        let diff_id = blob.digest().to_string();
        fn content_size(p: &std::path::Path) -> i64 {
            let Ok(md) = fs::symlink_metadata(p) else {
                return 0;
            };
            if md.is_dir() {
                fs::read_dir(p)
                    .map(|rd| rd.flatten().map(|e| content_size(&e.path())).sum())
                    .unwrap_or(0)
            } else if md.is_file() {
                md.len() as i64
            } else {
                0
            }
        }
        let size = content_size(dir);
        strip_overlay_bookkeeping(dir);
        let path = self
            .content
            .tmp_dir()
            .join(format!("layer-{}", random_hex()));
        fs::rename(dir, &path).map_err(io_err(format!("moving {}", dir.display())))?;
        Ok(IngestedLayer {
            dir: TempDir(Some(path)),
            blob: Some(blob),
            diff_id,
            size,
            tar_size,
        })
    }

    /// Stores the tar stream (plain or gzip-compressed) as a one-layer image; returns its ID.
    pub fn import(&self, tar: &mut dyn Read, opts: &ImportOptions) -> Result<String, ImageError> {
        let reference = match opts.reference.as_deref().filter(|s| !s.is_empty()) {
            Some(r) => {
                let r = Reference::parse_normalized(r)?.with_default_tag();
                if r.digest().is_some() {
                    return Err(ImageError::InvalidArgument(
                        "cannot import digest reference".into(),
                    ));
                }
                Some(r)
            }
            None => None,
        };
        let mut run_config = ContainerConfig::default();
        apply_changes(&mut run_config, &opts.changes)?;

        let layer = self.ingest_local_layer(tar)?;
        if is_image_archive(layer.dir.path()) {
            drop(layer); // nothing was published: the temp dir and tar go with it.
            return Err(ImageError::InvalidArgument(
                "this is an image archive written by \"docker save\", not a filesystem tarball: use \"docker load\" (berth load -i FILE) to load it".into(),
            ));
        }
        let created = now_rfc3339();
        let comment = if opts.message.is_empty() {
            "Imported from -".to_string()
        } else {
            opts.message.clone()
        };
        let config = ImageConfig {
            architecture: go_arch().to_string(),
            os: "linux".to_string(),
            created: Some(created.clone()),
            config: run_config,
            rootfs: RootFsConfig {
                kind: "layers".into(),
                diff_ids: vec![layer.diff_id.clone()],
            },
            history: vec![HistoryEntry {
                created: Some(created),
                comment: comment.clone(),
                ..Default::default()
            }],
            comment,
            ..Default::default()
        };
        let bytes =
            serde_json::to_vec(&config).map_err(|e| ImageError::InvalidArgument(e.to_string()))?;
        let tags: Vec<Reference> = reference.into_iter().collect();
        self.commit_image(&bytes, &config, vec![Some(layer)], &tags)
    }

    /// Writes the config blob (`bytes`, whose sha256 is the image ID) and the records of
    /// an image. `new_layers[i]` is the freshly unpacked layer `i` of the config's
    /// `rootfs.diff_ids`, or None when that layer is already stored; a fresh copy of a
    /// layer that exists meanwhile is dropped. `tags` are set (moved) onto the image.
    pub(crate) fn commit_image(
        &self,
        bytes: &[u8],
        config: &ImageConfig,
        new_layers: Vec<Option<IngestedLayer>>,
        tags: &[Reference],
    ) -> Result<String, ImageError> {
        let chains = chain_ids(&config.rootfs.diff_ids);
        let mut sizes: Vec<Option<(i64, u64)>> = vec![None; chains.len()];
        let _g = self.lock();
        let mut moved: Vec<PathBuf> = Vec::new();
        for (i, layer) in new_layers.into_iter().enumerate() {
            let Some(mut layer) = layer else { continue };
            let Some(chain) = chains.get(i) else { continue };
            if layer.diff_id != config.rootfs.diff_ids[i] {
                return Err(ImageError::InvalidArgument(format!(
                    "layer {i} has diff ID {}, the image config says {}",
                    layer.diff_id, config.rootfs.diff_ids[i]
                )));
            }
            sizes[i] = Some((layer.size, layer.tar_size));
            if let Some(blob) = layer.blob.take() {
                blob.publish()?;
            }
            let target = self.layer_path(chain);
            if !target.exists() {
                sync_layer(layer.dir.path())?;
                fs::rename(layer.dir.path(), &target)
                    .map_err(io_err(format!("committing layer {chain}")))?;
                layer.dir.disarm();
                moved.push(target);
            }
        }
        let result = (|| {
            let id = self.content.put(bytes)?;
            self.write_image_records(&id, config, &chains, &sizes, tags, &[])?;
            Ok(id)
        })();
        if result.is_err() {
            self.drop_unreferenced(&moved, config);
        }
        result
    }

    /// One transaction: the image record (new: layer counts go up; existing: kept),
    /// `tags_to_set` pointed at it and `manifests` added to its kept manifests.
    /// `sizes[i]` is `(content size, tar size)` of a layer not yet recorded. The caller
    /// holds the write lock.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_image_records(
        &self,
        id: &str,
        config: &ImageConfig,
        chains: &[String],
        sizes: &[Option<(i64, u64)>],
        tags_to_set: &[Reference],
        manifests: &[String],
    ) -> Result<(), ImageError> {
        let now = now_rfc3339();
        let txn = self.db.begin_write()?;
        {
            let mut images = txn.open_table(IMAGES)?;
            let mut layers = txn.open_table(LAYERS)?;
            let mut tags = txn.open_table(TAGS)?;
            let existing = images.get(id)?.map(|v| v.value().to_vec());
            let mut meta = match existing {
                Some(v) => decode::<ImageMeta>(&v, "image record")?,
                None => {
                    let mut total = 0;
                    for (i, chain) in chains.iter().enumerate() {
                        let diff_id = &config.rootfs.diff_ids[i];
                        let current = layers.get(chain.as_str())?.map(|v| v.value().to_vec());
                        let new_size = || {
                            sizes.get(i).copied().flatten().ok_or_else(|| {
                                ImageError::InvalidArgument(format!(
                                    "layer {diff_id} is neither stored nor given"
                                ))
                            })
                        };
                        let mut lm = match current {
                            Some(v) => decode::<LayerMeta>(&v, "layer record")?,
                            None => {
                                let new_size = new_size()?;
                                LayerMeta {
                                    diff_id: diff_id.clone(),
                                    parent: if i == 0 {
                                        None
                                    } else {
                                        Some(chains[i - 1].clone())
                                    },
                                    size: new_size.0,
                                    refcount: 0,
                                    blob: None,
                                    tar_size: new_size.1,
                                    sources: Vec::new(),
                                }
                            }
                        };
                        lm.refcount += 1;
                        total += lm.size;
                        layers.insert(chain.as_str(), encode(&lm).as_slice())?;
                    }
                    ImageMeta {
                        chain_ids: chains.to_vec(),
                        size: total,
                        stored_at: now.clone(),
                        last_tag_time: String::new(),
                        parent: config.parent.clone(),
                        manifests: Vec::new(),
                        ..Default::default()
                    }
                }
            };
            for m in manifests {
                if !meta.manifests.contains(m) {
                    meta.manifests.push(m.clone());
                }
            }
            for r in tags_to_set {
                tags.insert(r.to_string().as_str(), id)?;
                meta.last_tag_time = now.clone();
            }
            images.insert(id, encode(&meta).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// After a failed commit: removes layer dirs we moved in and blobs that no record
    /// refers to (best effort; `open` collects anything left).
    fn drop_unreferenced(&self, moved: &[PathBuf], config: &ImageConfig) {
        let check = || -> Result<(), ImageError> {
            let rtxn = self.db.begin_read()?;
            let layers = rtxn.open_table(LAYERS)?;
            let chains = chain_ids(&config.rootfs.diff_ids);
            for (i, chain) in chains.iter().enumerate() {
                if layers.get(chain.as_str())?.is_none() {
                    let p = self.layer_path(chain);
                    if moved.contains(&p) {
                        let _ = fs::remove_dir_all(&p);
                    }
                    self.content.delete(&config.rootfs.diff_ids[i])?;
                }
            }
            Ok(())
        };
        let _ = check();
    }
}
