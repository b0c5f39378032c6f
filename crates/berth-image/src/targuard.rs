//! A pass-through reader that watches a tar stream's headers as the `tar` crate will read
//! them, and stops what would make the reader hold unbounded memory or silently drop data:
//!
//! - GNU long names and long links (`L`, `K`) and PAX headers (`x`, `g`) are read whole
//!   into memory by the `tar` crate: above [`MAX_SPECIAL_SIZE`] (1 MiB, Go's
//!   `maxSpecialFileSize`) the stream is refused with Go's `archive/tar: header field too
//!   long`, as dockerd refuses it;
//! - a GNU sparse entry (`S`) lists its map in extension headers the `tar` crate keeps
//!   in memory: more than [`MAX_SPARSE_EXTENSIONS`] of them are refused;
//! - sparse files in the PAX format (`GNU.sparse.*` records) are refused with a clear
//!   error: the `tar` crate would hand their map and data over as the file's content.
//!
//! Every byte read passes through unchanged (digests over the stream stay right). The
//! guard parses headers with the `tar` crate's own functions, so both agree on where
//! each header starts. After the end-of-archive block it only passes bytes on.

use std::io::{self, Read};

/// The largest long name, long link or PAX header accepted (Go's limit).
pub const MAX_SPECIAL_SIZE: u64 = 1 << 20;
/// The most GNU sparse extension headers one entry may have (21 map entries each).
pub const MAX_SPARSE_EXTENSIONS: u32 = 4096;

const BLOCK: usize = 512;

/// Go's `archive/tar.ErrFieldTooLong`.
pub const ERR_FIELD_TOO_LONG: &str = "archive/tar: header field too long";

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

#[derive(Debug)]
enum State {
    /// Collecting a header block.
    Header,
    /// Collecting GNU sparse extension block number `n`.
    SparseExt { n: u32, size: u64 },
    /// Passing `left` bytes of entry data (padding included); the first `keep` of them
    /// are collected (a PAX header's records).
    Data { left: u64, keep: u64, pax: bool },
    /// After the end of the archive.
    Done,
}

/// See the module doc.
pub struct TarGuard<R> {
    inner: R,
    state: State,
    block: Box<[u8; BLOCK]>,
    filled: usize,
    /// The `size` record of the PAX header that describes the next entry.
    pax_size: Option<u64>,
    /// The records of the PAX header being read.
    pax_data: Vec<u8>,
    /// A PAX header is waiting for the entry it describes.
    pax_pending: bool,
    /// The first error: every later read returns it again.
    failed: Option<String>,
}

fn round_up(n: u64) -> io::Result<u64> {
    n.checked_add(BLOCK as u64 - 1)
        .map(|v| v & !(BLOCK as u64 - 1))
        .ok_or_else(|| invalid("size overflow"))
}

impl<R> TarGuard<R> {
    pub fn new(inner: R) -> Self {
        TarGuard {
            inner,
            state: State::Header,
            block: Box::new([0; BLOCK]),
            filled: 0,
            pax_size: None,
            pax_data: Vec::new(),
            pax_pending: false,
            failed: None,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Looks at `bytes`, the next bytes of the stream.
    fn observe(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Done => return Ok(()),
                State::Data { left, keep, pax } => {
                    let n = (*left).min(bytes.len() as u64) as usize;
                    let k = (*keep).min(n as u64) as usize;
                    if *pax {
                        self.pax_data.extend_from_slice(&bytes[..k]);
                    }
                    *keep -= k as u64;
                    *left -= n as u64;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        let was_pax = *pax;
                        self.state = State::Header;
                        if was_pax {
                            self.end_pax()?;
                        }
                    }
                }
                State::Header | State::SparseExt { .. } => {
                    let n = (BLOCK - self.filled).min(bytes.len());
                    self.block[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
                    self.filled += n;
                    bytes = &bytes[n..];
                    if self.filled == BLOCK {
                        self.filled = 0;
                        self.end_block()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A whole block of header or sparse extension is in `self.block`.
    fn end_block(&mut self) -> io::Result<()> {
        if let State::SparseExt { n, size } = self.state {
            let ext = tar::GnuExtSparseHeader::new();
            let mut ext = ext;
            ext.as_mut_bytes().copy_from_slice(&self.block[..]);
            self.state = if ext.is_extended() {
                if n + 1 > MAX_SPARSE_EXTENSIONS {
                    return Err(invalid(format!(
                        "invalid tar header: a sparse file map of more than {MAX_SPARSE_EXTENSIONS} extension headers"
                    )));
                }
                State::SparseExt { n: n + 1, size }
            } else {
                self.data_state(size, 0, false)?
            };
            return Ok(());
        }
        if self.block.iter().all(|b| *b == 0) {
            self.state = State::Done;
            return Ok(());
        }
        let header = tar::Header::from_byte_slice(&self.block[..]);
        let et = header.entry_type();
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        let own_size = header.entry_size()?;
        let is_extension = et.is_gnu_longname()
            || et.is_gnu_longlink()
            || et.is_pax_local_extensions()
            || et.is_pax_global_extensions();
        if is_extension {
            if own_size > MAX_SPECIAL_SIZE {
                return Err(invalid(ERR_FIELD_TOO_LONG));
            }
            let local_pax = recognized && et.is_pax_local_extensions();
            // The tar crate keeps PAX records for the next entry across long-name and
            // long-link headers; anything else it hands out as an entry.
            let consumed = !(recognized && (et.is_gnu_longname() || et.is_gnu_longlink()));
            if consumed && !local_pax {
                self.pax_pending = false;
                self.pax_size = None;
            }
            if local_pax {
                self.pax_data.clear();
                self.pax_size = None;
            }
            self.state = self.data_state(own_size, own_size, local_pax)?;
            if own_size == 0 && local_pax {
                self.end_pax()?;
            }
            return Ok(());
        }
        // An entry: the PAX size (if any) overrides the header's.
        let size = match (self.pax_pending, self.pax_size) {
            (true, Some(s)) => s,
            _ => own_size,
        };
        self.pax_pending = false;
        self.pax_size = None;
        if et.is_gnu_sparse() {
            if let Some(gnu) = header.as_gnu() {
                if gnu.is_extended() {
                    self.state = State::SparseExt { n: 1, size };
                    return Ok(());
                }
            }
        }
        self.state = self.data_state(size, 0, false)?;
        Ok(())
    }

    fn data_state(&self, size: u64, keep: u64, pax: bool) -> io::Result<State> {
        let left = round_up(size)?;
        Ok(if left == 0 {
            State::Header
        } else {
            State::Data { left, keep, pax }
        })
    }

    /// The records of a PAX header are all in: its `size`, and no PAX sparse file.
    fn end_pax(&mut self) -> io::Result<()> {
        self.pax_pending = true;
        self.pax_size = pax_size(&self.pax_data);
        let sparse = tar::PaxExtensions::new(&self.pax_data)
            .flatten()
            .any(|e| e.key_bytes().starts_with(b"GNU.sparse."));
        self.pax_data.clear();
        if sparse {
            return Err(invalid(
                "unsupported tar entry: a sparse file in the PAX format (GNU.sparse.* records); write it without --sparse or in the GNU format",
            ));
        }
        Ok(())
    }
}

/// The PAX `size` record exactly as the `tar` crate reads it (`pax_extensions_value`).
fn pax_size(data: &[u8]) -> Option<u64> {
    for ext in tar::PaxExtensions::new(data) {
        let ext = ext.ok()?;
        if ext.key() != Ok("size") {
            continue;
        }
        return ext.value().ok()?.parse::<u64>().ok();
    }
    None
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(msg) = &self.failed {
            return Err(invalid(msg.clone()));
        }
        let n = self.inner.read(buf)?;
        if let Err(e) = self.observe(&buf[..n]) {
            self.failed = Some(e.to_string());
            return Err(e);
        }
        Ok(n)
    }
}

#[cfg(test)]
#[path = "targuard_tests.rs"]
mod tests;
