//! The store side of `pull`: layers ingested from a registry stream, then the image
//! registered.
//!
//! [`ImageStore::ingest_layer`] makes one pass over a layer blob as fetched:
//!
//! ```text
//! reader ─▶ CountingTee ─┬─▶ BufWriter ─▶ BlobWriter (tmp/ingest-*, sha256 of the blob)
//!                        └─▶ decoder (gzip | zstd | none) ─▶ TarHasher (diff ID) ─▶ unpack_layer (tmp/layer-*)
//! ```
//!
//! At EOF the size, the blob digest and the diff ID are checked; then, under the write
//! lock, blob and directory are renamed into place and the layer recorded with reference
//! count 0, pinned by the pull's [`Lease`]. Any error drops the temp file and directory.
//! [`ImageStore::register_pulled`] then flushes the filesystem once (`syncfs`), writes the
//! config, manifest and index blobs and the image record in one transaction, and ends the
//! lease.
//!
//! Durability: no fsync per file or per layer. A layer recorded with count 0 is removed
//! by the next `open` (no lease survives a restart), so its files only need to be on disk
//! once an image uses it, and the one `syncfs` in `register_pulled` (which also covers
//! layers other pulls wrote) comes before that record. Process crashes (a killed daemon)
//! lose nothing written to the page cache either way.

use std::fs;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use sha2::{Digest, Sha256};

use crate::compression::Compression;
use crate::content::{io_err, random_hex, sha256_digest, BlobWriter};
use crate::import::{sync_filesystem, TempDir};
use crate::lease::Lease;
use crate::reference::Reference;
use crate::schema::{decode, encode, BlobInfo, LayerMeta, LAYERS};
use crate::unpack::unpack_layer;
use crate::{chain_ids, ImageConfig, ImageError, ImageStore};

/// How often `ingest_layer` reports progress.
const PROGRESS_EVERY: u64 = 512 * 1024;
/// Buffer between the network reader and the decoder.
const READ_BUFFER: usize = 256 * 1024;
/// Buffer in front of the blob file: few, large writes.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Everything `register_pulled` needs about an image whose layers were ingested.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The image config, already verified against the config digest.
    pub config: Vec<u8>,
    /// `(digest, bytes)` of the platform's image manifest.
    pub manifest: (String, Vec<u8>),
    /// The manifest list / OCI index, if the tag pointed at one.
    pub index: Option<(String, Vec<u8>)>,
    /// Normalized repository name (no tag, no digest).
    pub name: Reference,
    /// The tag pulled; None for a pull by digest.
    pub tag: Option<String>,
    /// Recorded as `name@repo_digest` (the index digest when there is one).
    pub repo_digest: String,
}

/// What `register_pulled` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOutcome {
    /// `sha256:<hex>` of the config.
    pub image_id: String,
    /// False when the reference pulled (`name:tag`, or `name@digest` for a pull by digest)
    /// already pointed at this image: Docker's "Image is up to date".
    pub updated: bool,
}

fn sha256_only(digest: &str, what: &str) -> Result<(), ImageError> {
    match digest.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        _ => Err(ImageError::InvalidArgument(format!(
            "unsupported {what} digest {digest:?}: only sha256 is supported"
        ))),
    }
}

/// An error that came from the caller's reader, kept so it is reported as such rather
/// than as the tar or decompression error it causes downstream.
enum StreamFault {
    Reader(io::Error),
    TooLong,
}

/// Reads the blob from the caller, copying every byte into the blob file (which hashes
/// it), counting, and reporting progress.
struct CountingTee<'a> {
    inner: &'a mut dyn Read,
    out: BufWriter<BlobWriter>,
    read: u64,
    limit: u64,
    next_report: u64,
    progress: &'a mut dyn FnMut(u64),
    fault: Option<StreamFault>,
}

impl Read for CountingTee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fault.is_some() {
            return Err(io::Error::other("layer stream failed"));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let msg = e.to_string();
                self.fault = Some(StreamFault::Reader(e));
                return Err(io::Error::other(msg));
            }
        };
        self.read += n as u64;
        if self.read > self.limit {
            self.fault = Some(StreamFault::TooLong);
            return Err(io::Error::other("blob longer than its descriptor says"));
        }
        self.out.write_all(&buf[..n])?;
        if self.read >= self.next_report || n == 0 {
            (self.progress)(self.read);
            self.next_report = self.read + PROGRESS_EVERY;
        }
        Ok(n)
    }
}

/// Hashes and counts the uncompressed tar on its way to the unpacker.
struct TarHasher<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for TarHasher<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// The result of the streaming pass, before verification.
struct Streamed {
    tar_digest: String,
    tar_size: u64,
    content_size: u64,
}

impl ImageStore {
    /// True when the layer `chain_id` is stored (Docker's "Already exists").
    pub fn has_layer(&self, chain_id: &str) -> bool {
        let get = || -> Result<bool, ImageError> {
            let rtxn = self.db.begin_read()?;
            Ok(rtxn.open_table(LAYERS)?.get(chain_id)?.is_some())
        };
        get().unwrap_or(false)
    }

    /// A new lease for a pull (see [`Lease`]).
    pub fn lease(&self) -> Lease {
        self.leases.new_lease()
    }

    /// Pins an existing layer under `lease`; false if the layer is not stored (then it
    /// has to be ingested).
    pub fn protect(&self, lease: &Lease, chain_id: &str) -> bool {
        let _g = self.lock();
        if !self.has_layer(chain_id) {
            return false;
        }
        self.leases.pin(lease, chain_id);
        true
    }

    /// One pass over `reader` (the layer blob as fetched): tee into a temp blob file
    /// while hashing it, decompress (by `blob.media_type`), hash the tar (diff ID) and
    /// unpack it into a temp layer directory, calling `progress(bytes_read_so_far)` about
    /// every 512 KiB and at the end. At EOF the size, the blob digest and the diff ID are
    /// verified, then the blob and the directory are published and the layer recorded
    /// (count 0, pinned by `lease`). Any error, an `Err` from `reader` included, leaves
    /// nothing behind; if the layer was stored meanwhile (a concurrent pull won), this
    /// copy is dropped and the stored one pinned. Never holds a whole layer in memory.
    #[allow(clippy::too_many_arguments)]
    pub fn ingest_layer(
        &self,
        lease: &Lease,
        reader: &mut dyn Read,
        blob: &BlobInfo,
        diff_id: &str,
        chain_id: &str,
        parent: Option<&str>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ImageError> {
        sha256_only(&blob.digest, "layer")?;
        sha256_only(diff_id, "diff ID")?;
        let compression = Compression::from_media_type(&blob.media_type)?;
        let expected_chain = match parent {
            None => diff_id.to_string(),
            Some(p) => sha256_digest(format!("{p} {diff_id}").as_bytes()),
        };
        if expected_chain != chain_id {
            return Err(ImageError::InvalidArgument(format!(
                "layer {}: chain ID {chain_id} does not follow from its parent and diff ID {diff_id}",
                blob.digest
            )));
        }
        if self.protect(lease, chain_id) {
            return Ok(());
        }

        let path = self
            .content
            .tmp_dir()
            .join(format!("layer-{}", random_hex()));
        fs::create_dir(&path).map_err(io_err(format!("creating {}", path.display())))?;
        let mut dir = TempDir::new(path);
        let writer = self.content.writer()?;
        let mut tee = CountingTee {
            inner: reader,
            out: BufWriter::with_capacity(WRITE_BUFFER, writer),
            read: 0,
            limit: blob.size,
            next_report: PROGRESS_EVERY,
            progress,
            fault: None,
        };
        let streamed = stream_layer(&mut tee, compression, dir.path());
        if let Some(fault) = tee.fault.take() {
            return Err(match fault {
                StreamFault::Reader(e) => ImageError::Io {
                    context: format!("reading layer {}", blob.digest),
                    source: e,
                },
                StreamFault::TooLong => ImageError::InvalidArgument(format!(
                    "layer {}: the registry sent more than the {} bytes its descriptor gives",
                    blob.digest, blob.size
                )),
            });
        }
        let streamed = streamed?;
        let read = tee.read;
        let writer = tee
            .out
            .into_inner()
            .map_err(|e| io_err(format!("writing layer {}", blob.digest))(e.into_error()))?;
        let sealed = writer.seal_unsynced()?;
        if read != blob.size {
            return Err(ImageError::InvalidArgument(format!(
                "layer {}: size mismatch: expected {} bytes, got {read}",
                blob.digest, blob.size
            )));
        }
        if sealed.digest() != blob.digest {
            // moby's wording for a blob that does not match its digest.
            return Err(ImageError::InvalidArgument(format!(
                "filesystem layer verification failed for digest {}",
                blob.digest
            )));
        }
        if streamed.tar_digest != diff_id {
            return Err(ImageError::InvalidArgument(format!(
                "layer {}: diff ID mismatch: the image config says {diff_id}, the uncompressed layer is {}",
                blob.digest, streamed.tar_digest
            )));
        }
        // No fsync here: a layer with count 0 does not survive a restart, and
        // `register_pulled` flushes the filesystem once before an image refers to it.
        let _g = self.lock();
        if self.has_layer(chain_id) {
            self.leases.pin(lease, chain_id);
            return Ok(()); // a concurrent pull stored it first: ours goes with `dir`/`sealed`.
        }
        sealed.publish()?;
        let target = self.layer_path(chain_id);
        if target.exists() {
            // Left over by a failed operation: no record names it.
            fs::remove_dir_all(&target)
                .map_err(io_err(format!("removing {}", target.display())))?;
        }
        fs::rename(dir.path(), &target).map_err(io_err(format!("committing layer {chain_id}")))?;
        dir.disarm();
        let meta = LayerMeta {
            diff_id: diff_id.to_string(),
            parent: parent.map(str::to_string),
            size: streamed.content_size as i64,
            refcount: 0,
            blob: Some(blob.clone()),
            tar_size: streamed.tar_size,
            sources: Vec::new(),
        };
        let record = || -> Result<(), ImageError> {
            let txn = self.db.begin_write()?;
            txn.open_table(LAYERS)?
                .insert(chain_id, encode(&meta).as_slice())?;
            txn.commit()?;
            Ok(())
        };
        if let Err(e) = record() {
            self.leases
                .remove_layer_files(&[(chain_id.to_string(), meta)]);
            return Err(e);
        }
        self.leases.pin(lease, chain_id);
        Ok(())
    }

    /// Stores the config, manifest and index blobs and the image record (every layer of
    /// the config's chain must be stored and pinned by `lease`), sets `name:tag` (a tag
    /// moved off another image leaves that one dangling, as import does) and
    /// `name@repo_digest`; ends the lease.
    pub fn register_pulled(
        &self,
        lease: Lease,
        image: &PulledImage,
    ) -> Result<RegisterOutcome, ImageError> {
        let outcome = self.register_pulled_locked(&lease, image);
        drop(lease); // after the write lock is released: ending a lease takes it.
        outcome
    }

    fn register_pulled_locked(
        &self,
        lease: &Lease,
        image: &PulledImage,
    ) -> Result<RegisterOutcome, ImageError> {
        let config: ImageConfig = decode(&image.config, "image config")?;
        let (manifest_digest, manifest_bytes) = &image.manifest;
        let mut blobs: Vec<(&str, &[u8])> = vec![(manifest_digest, manifest_bytes)];
        if let Some((d, b)) = &image.index {
            blobs.push((d, b));
        }
        for (d, b) in &blobs {
            sha256_only(d, "manifest")?;
            if sha256_digest(b) != *d {
                return Err(ImageError::InvalidArgument(format!(
                    "manifest verification failed for digest {d}"
                )));
            }
        }
        sha256_only(&image.repo_digest, "repository")?;
        let name = Reference::parse_normalized(&image.name.name())?;
        let tag_ref = match &image.tag {
            Some(t) => Some(name.clone().with_tag(t)?),
            None => None,
        };
        let digest_ref =
            Reference::parse_normalized(&format!("{}@{}", name.name(), image.repo_digest))?;
        let chains = chain_ids(&config.rootfs.diff_ids);
        // One flush for every layer blob and directory of the pull (they were written
        // without fsync), before the record that makes them part of an image.
        sync_filesystem(&self.layers)?;

        let _g = self.lock();
        for chain in &chains {
            if !self.has_layer(chain) {
                return Err(ImageError::InvalidArgument(format!(
                    "layer {chain} of the image is not stored"
                )));
            }
            if !self.leases.pinned_by(lease, chain) {
                return Err(ImageError::InvalidArgument(format!(
                    "layer {chain} of the image is not pinned by the pull's lease"
                )));
            }
        }
        let id = self.content.put(&image.config)?;
        for (d, b) in &blobs {
            let got = self.content.put(b)?;
            debug_assert_eq!(&got, d);
        }
        let key = tag_ref.clone().unwrap_or_else(|| digest_ref.clone());
        let before = {
            let rtxn = self.db.begin_read()?;
            let tags = rtxn.open_table(crate::schema::TAGS)?;
            let v = tags
                .get(key.to_string().as_str())?
                .map(|v| v.value().to_string());
            v
        };
        let mut refs: Vec<Reference> = tag_ref.into_iter().collect();
        refs.push(digest_ref);
        let manifests: Vec<String> = blobs.iter().map(|(d, _)| d.to_string()).collect();
        let sizes = vec![None; chains.len()];
        self.write_image_records(&id, &config, &chains, &sizes, &refs, &manifests)?;
        // The repository holds every layer blob its manifest names.
        let served = manifest_layer_digests(manifest_bytes);
        let held: Vec<(String, String)> = chains
            .iter()
            .zip(&served)
            .map(|(c, d)| (c.clone(), d.clone()))
            .collect();
        // A hint for cross-repository mounts: not worth failing the pull over.
        let _ = self.add_layer_sources(&held, &name.name());
        Ok(RegisterOutcome {
            updated: before.as_deref() != Some(id.as_str()),
            image_id: id,
        })
    }
}

/// The layer digests an image manifest lists, in order (empty if it does not parse).
fn manifest_layer_digests(manifest: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Desc {
        #[serde(default)]
        digest: String,
    }
    #[derive(serde::Deserialize)]
    struct Manifest {
        #[serde(default)]
        layers: Vec<Desc>,
    }
    serde_json::from_slice::<Manifest>(manifest)
        .map(|m| m.layers.into_iter().map(|d| d.digest).collect())
        .unwrap_or_default()
}

/// Decompressed bytes handed from the decoding thread to the unpacking thread.
const CHUNK: usize = 128 * 1024;
/// Chunks in flight between the two threads (bounds the memory of one ingest).
const CHUNKS_IN_FLIGHT: usize = 8;

/// The unpacking thread's view of the decompressed stream: chunks from a channel, handed
/// back for reuse once read. A closed channel is the end of the stream.
struct ChunkReader {
    rx: Receiver<Vec<u8>>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            let Ok(next) = self.rx.recv() else {
                return Ok(0);
            };
            let done = std::mem::replace(&mut self.current, next);
            let _ = self.recycle.try_send(done);
            self.pos = 0;
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads until `buf` is full or the stream ends; the count read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The unpacking half: hash the tar (diff ID), unpack it into `dir`, then read the
/// stream to its end (the tar's end padding counts in the diff ID).
fn unpack_stream(
    reader: ChunkReader,
    dir: &std::path::Path,
) -> Result<(String, u64, u64), ImageError> {
    let mut tar = TarHasher {
        inner: reader,
        hasher: Sha256::new(),
        size: 0,
    };
    let stats = unpack_layer(&mut tar, dir)?;
    io::copy(&mut tar, &mut io::sink())
        .map_err(|e| ImageError::InvalidArgument(format!("invalid tar stream: {e}")))?;
    let digest = format!("sha256:{}", hex::encode(tar.hasher.finalize()));
    Ok((digest, tar.size, stats.size))
}

/// The streaming pass, on two threads so that decompression overlaps the unpacking:
/// this thread reads the blob (tee: blob file + digest), decompresses it and passes the
/// tar in chunks to a scoped thread that hashes and unpacks it. Both streams are read to
/// their end (trailing bytes count in the blob digest). An error on this side (reader,
/// decompression) wins over what the unpacker makes of the stream it cut short.
fn stream_layer(
    tee: &mut CountingTee<'_>,
    compression: Compression,
    dir: &std::path::Path,
) -> Result<Streamed, ImageError> {
    let mut buffered = BufReader::with_capacity(READ_BUFFER, tee);
    let (full_tx, full_rx) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
    let (decoded, unpacked) = std::thread::scope(|s| {
        let unpacker = s.spawn(move || {
            unpack_stream(
                ChunkReader {
                    rx: full_rx,
                    recycle: empty_tx,
                    current: Vec::new(),
                    pos: 0,
                },
                dir,
            )
        });
        let decoded = (|| -> io::Result<()> {
            let mut decoder = compression.decoder(&mut buffered)?;
            loop {
                let mut chunk = empty_rx.try_recv().unwrap_or_default();
                chunk.resize(CHUNK, 0);
                let n = read_full(&mut decoder, &mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                chunk.truncate(n);
                if full_tx.send(chunk).is_err() {
                    return Ok(()); // the unpacker stopped: its error tells why.
                }
            }
        })();
        drop(full_tx);
        let unpacked = unpacker.join().unwrap_or_else(|_| {
            Err(ImageError::InvalidArgument(
                "layer unpacking failed unexpectedly".into(),
            ))
        });
        (decoded, unpacked)
    });
    decoded.map_err(|e| ImageError::InvalidArgument(format!("invalid layer stream: {e}")))?;
    let (tar_digest, tar_size, content_size) = unpacked?;
    io::copy(&mut buffered, &mut io::sink())
        .map_err(|e| ImageError::InvalidArgument(format!("invalid layer stream: {e}")))?;
    Ok(Streamed {
        tar_digest,
        tar_size,
        content_size,
    })
}
