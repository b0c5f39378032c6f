//! The content store: `blobs/sha256/<hex>` under the store root.
//!
//! Contract (after containerd's local content store):
//! - content is written through a [`BlobWriter`] into `tmp/` under a random name;
//! - [`BlobWriter::commit`] fsyncs the file, checks the digest when one was expected, and
//!   renames it into `blobs/sha256/<hex>`; only then is the blob visible;
//! - a writer dropped without commit removes its temp file, so a failed ingest leaves
//!   nothing (a crash leaves only `tmp/` litter, cleared at the next open);
//! - committing content that already exists is not an error: the copy is discarded.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ImageError;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ImageError {
    let context = context.into();
    move |source| ImageError::Io { context, source }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of `sha256:<hex>` (or the input if it has no algorithm prefix).
pub fn digest_hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl ContentStore {
    /// Opens (creating) `root/blobs/sha256` and `root/tmp`.
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        let blobs = root.join("blobs").join("sha256");
        let tmp = root.join("tmp");
        fs::create_dir_all(&blobs).map_err(io_err(format!("creating {}", blobs.display())))?;
        fs::create_dir_all(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        Ok(ContentStore { blobs, tmp })
    }

    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Path of a committed blob (whether or not it exists).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.blobs.join(digest_hex(digest))
    }

    pub fn exists(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn read(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let p = self.blob_path(digest);
        fs::read(&p).map_err(io_err(format!("reading blob {digest}")))
    }

    /// Writes `bytes` as one blob and returns its digest.
    pub fn put(&self, bytes: &[u8]) -> Result<String, ImageError> {
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(io_err("writing blob"))?;
        w.commit(None)
    }

    /// Starts an ingest.
    pub fn writer(&self) -> Result<BlobWriter, ImageError> {
        let path = self.tmp.join(format!("ingest-{}", random_hex()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(format!("creating {}", path.display())))?;
        Ok(BlobWriter {
            file: Some(file),
            path,
            hasher: Sha256::new(),
            blobs: self.blobs.clone(),
            size: 0,
        })
    }

    /// Removes a blob; a missing blob is not an error.
    pub fn delete(&self, digest: &str) -> Result<(), ImageError> {
        match fs::remove_file(self.blob_path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(io_err(format!("removing blob {digest}"))(e))
            }
            _ => Ok(()),
        }
    }

    /// Digests of all committed blobs.
    pub fn list(&self) -> Result<Vec<String>, ImageError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).map_err(io_err("listing blobs"))? {
            let e = e.map_err(io_err("listing blobs"))?;
            if let Some(name) = e.file_name().to_str() {
                out.push(format!("sha256:{name}"));
            }
        }
        Ok(out)
    }
}

pub(crate) fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

/// An ingest in progress; hashes what is written.
pub struct BlobWriter {
    file: Option<File>,
    path: PathBuf,
    hasher: Sha256,
    blobs: PathBuf,
    size: u64,
}

impl BlobWriter {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// fsync, verify (when `expected` is given), rename into place; returns the digest.
    /// On a mismatch nothing is published and the temp file goes with the sealed blob.
    pub fn commit(self, expected: Option<&str>) -> Result<String, ImageError> {
        let sealed = self.seal()?;
        let digest = sealed.digest().to_string();
        if let Some(exp) = expected {
            if exp != digest {
                return Err(ImageError::InvalidArgument(format!(
                    "digest mismatch: expected {exp}, got {digest}"
                )));
            }
        }
        sealed.publish()?;
        Ok(digest)
    }
}

impl BlobWriter {
    /// fsync and hash, without publishing: the blob stays in `tmp/` until
    /// [`SealedBlob::publish`] (which callers do under the store's write lock, so a
    /// concurrent removal of the same content cannot delete it in between).
    pub fn seal(self) -> Result<SealedBlob, ImageError> {
        self.seal_with(true)
    }

    /// Like [`BlobWriter::seal`] without the fsync: for ingests whose caller flushes the
    /// whole filesystem once (`syncfs`) before any record that must survive a crash
    /// refers to the blob (pulled layers: see [`crate::ImageStore::register_pulled`]).
    pub fn seal_unsynced(self) -> Result<SealedBlob, ImageError> {
        self.seal_with(false)
    }

    fn seal_with(mut self, sync: bool) -> Result<SealedBlob, ImageError> {
        let file = self
            .file
            .take()
            .ok_or_else(|| ImageError::InvalidArgument("blob writer already closed".into()))?;
        if sync {
            file.sync_all().map_err(io_err("syncing blob"))?;
        }
        drop(file);
        let digest = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
        let path = std::mem::take(&mut self.path);
        Ok(SealedBlob {
            path,
            digest,
            blobs: self.blobs.clone(),
        })
    }
}

/// A complete, synced blob not yet in the content store; removed on drop unless published.
pub struct SealedBlob {
    path: PathBuf,
    digest: String,
    blobs: PathBuf,
}

impl SealedBlob {
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Renames the blob into the store (dropping our copy if it is there already).
    pub fn publish(mut self) -> Result<(), ImageError> {
        let target = self.blobs.join(digest_hex(&self.digest));
        if target.exists() {
            return Ok(());
        }
        fs::rename(&self.path, &target)
            .map_err(io_err(format!("committing blob {}", self.digest)))?;
        if let Ok(dir) = File::open(&self.blobs) {
            let _ = dir.sync_all();
        }
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for SealedBlob {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer closed"))?;
        let n = f
            .write(buf)
            .map_err(|e| crate::os_error::with_path("write", &self.path, e))?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_commits_by_digest_and_dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = cs.put(b"hello").unwrap();
        assert_eq!(d, sha256_digest(b"hello"));
        assert_eq!(cs.read(&d).unwrap(), b"hello");
        assert_eq!(cs.put(b"hello").unwrap(), d);
        {
            let mut w = cs.writer().unwrap();
            w.write_all(b"partial").unwrap();
        }
        let mut w = cs.writer().unwrap();
        w.write_all(b"x").unwrap();
        assert!(w.commit(Some(&sha256_digest(b"y"))).is_err());
        assert_eq!(fs::read_dir(cs.tmp_dir()).unwrap().count(), 0);
        assert_eq!(cs.list().unwrap(), vec![d]);
    }
}
