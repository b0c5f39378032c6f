//! The staging directory of `load`: an image archive unpacked so that its manifest can
//! name any file in it, and read back without ever leaving that directory.
//!
//! Writing: every path is walked from the directory's file descriptor one component at
//! a time with `O_NOFOLLOW` (a symlinked parent is refused, never written through);
//! files are created with `O_CREAT|O_EXCL|O_NOFOLLOW`; hardlinks are resolved with
//! `openat2(RESOLVE_IN_ROOT)` and linked by descriptor; device nodes and FIFOs are not
//! created (an image archive has no use for them); runs of zeros become holes.
//!
//! Reading: `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`, so a
//! symlink (the legacy format links duplicate `layer.tar` files) resolves inside the
//! directory as if it were `/`, as dockerd's `FollowSymlinkInScope` does; the result
//! must be a regular file, and manifests and configs have a size limit.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};
use nix::unistd::{linkat, symlinkat, unlinkat, UnlinkatFlags};
use tar::EntryType;

use crate::targuard::TarGuard;
use crate::ImageError;

/// Largest `manifest.json`, `index.json` or OCI manifest `load` reads.
pub const MAX_MANIFEST_SIZE: u64 = 8 << 20;
/// Largest image config `load` reads.
pub const MAX_CONFIG_SIZE: u64 = 8 << 20;

/// The deepest path `load` unpacks (an image archive has three levels).
const MAX_DEPTH: usize = 64;

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::InvalidArgument(msg.into())
}

fn errno_msg(e: Errno) -> String {
    io::Error::from(e)
        .to_string()
        .split(" (os error")
        .next()
        .unwrap_or("")
        .to_lowercase()
}

/// An unpacked image archive (the directory itself belongs to the caller).
pub(crate) struct Staged {
    root: OwnedFd,
}

/// The clean components of an entry or link name: a leading `/` is dropped (the name
/// is taken inside the archive, as dockerd does), `..` that climbs above the top is
/// refused.
fn components(name: &[u8]) -> Result<Vec<&[u8]>, ImageError> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(bad(format!(
                        "invalid image archive: {:?} is outside of the archive",
                        String::from_utf8_lossy(name)
                    )));
                }
            }
            c => out.push(c),
        }
        if out.len() > MAX_DEPTH {
            return Err(bad(format!(
                "invalid image archive: {:?} is nested too deep",
                String::from_utf8_lossy(name)
            )));
        }
    }
    Ok(out)
}

fn io_bad(what: &str, name: &[u8], e: Errno) -> ImageError {
    bad(format!(
        "invalid image archive: {what} {:?}: {}",
        String::from_utf8_lossy(name),
        errno_msg(e)
    ))
}

impl Staged {
    /// Unpacks the (already decompressed) tar `reader` into `dir`, an empty directory.
    /// Errors read as dockerd's (`Error processing tar file(exit status 1): …`).
    pub(crate) fn extract(reader: impl Read, dir: &Path) -> Result<Staged, ImageError> {
        Self::extract_entries(reader, dir).map_err(|e| match e {
            ImageError::InvalidArgument(m) => bad(format!(
                "Error processing tar file(exit status 1): {}",
                m.strip_prefix("invalid image archive: ").unwrap_or(&m)
            )),
            other => other,
        })
    }

    fn extract_entries(reader: impl Read, dir: &Path) -> Result<Staged, ImageError> {
        let root = openat(
            nix::fcntl::AT_FDCWD,
            dir,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| bad(format!("opening {}: {}", dir.display(), errno_msg(e))))?;
        let staged = Staged { root };
        let mut archive = tar::Archive::new(TarGuard::new(reader));
        let tar_err = |e: io::Error| bad(format!("invalid image archive: {e}"));
        for entry in archive.entries().map_err(tar_err)? {
            let mut entry = entry.map_err(tar_err)?;
            let name = entry.path_bytes().into_owned();
            let comps = components(&name)?;
            let et = entry.header().entry_type();
            let Some((base, parents)) = comps.split_last() else {
                continue; // the top directory itself
            };
            let parent = staged.dir_of(parents, &name)?;
            match et {
                EntryType::Directory => {
                    match mkdirat(&parent, *base, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {
                            staged.subdir(&parent, base, &name)?;
                        }
                        Err(e) => return Err(io_bad("creating", &name, e)),
                    }
                }
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    remove(&parent, base, &name)?;
                    let fd = openat(
                        &parent,
                        *base,
                        OFlag::O_WRONLY
                            | OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o600),
                    )
                    .map_err(|e| io_bad("creating", &name, e))?;
                    let mut f = fs::File::from(fd);
                    crate::unpack::copy_sparse(&mut entry, &mut f).map_err(tar_err)?;
                }
                EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| bad("invalid image archive: symlink without a target"))?
                        .into_owned();
                    remove(&parent, base, &name)?;
                    symlinkat(OsStr::from_bytes(&target), &parent, *base)
                        .map_err(|e| io_bad("creating symlink", &name, e))?;
                }
                EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| bad("invalid image archive: hardlink without a target"))?
                        .into_owned();
                    let tcomps = components(&target)?;
                    // Go's `link OLD NEW: …`.
                    let link_err = |e: Errno| {
                        bad(format!(
                            "invalid image archive: link {} /{}: {}",
                            String::from_utf8_lossy(&target),
                            String::from_utf8_lossy(&comps.join(&b'/')),
                            errno_msg(e)
                        ))
                    };
                    let src = staged
                        .resolve(&tcomps, OFlag::O_PATH | OFlag::O_NOFOLLOW)
                        .map_err(link_err)?;
                    let st = fstat(&src).map_err(link_err)?;
                    if SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) == SFlag::S_IFDIR {
                        return Err(bad(format!(
                            "invalid image archive: hardlink {:?} to a directory",
                            String::from_utf8_lossy(&name)
                        )));
                    }
                    remove(&parent, base, &name)?;
                    linkat(&src, "", &parent, *base, nix::fcntl::AtFlags::AT_EMPTY_PATH)
                        .map_err(link_err)?;
                }
                // Device nodes, FIFOs, PAX global headers: nothing `load` reads.
                _ => {}
            }
        }
        Ok(staged)
    }

    /// The directory `comps` (created as needed), never through a symlink.
    fn dir_of(&self, comps: &[&[u8]], name: &[u8]) -> Result<OwnedFd, ImageError> {
        let mut cur = self
            .root
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| bad(format!("invalid image archive: {e}")))?;
        for c in comps {
            match mkdirat(&cur, *c, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(io_bad("creating the parent of", name, e)),
            }
            cur = self.subdir(&cur, c, name)?;
        }
        Ok(cur)
    }

    fn subdir(&self, parent: &OwnedFd, c: &[u8], name: &[u8]) -> Result<OwnedFd, ImageError> {
        openat(
            parent,
            c,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => bad(format!(
                "invalid image archive: {:?}: a parent directory is a symlink or not a directory",
                String::from_utf8_lossy(name)
            )),
            e => io_bad("opening the parent of", name, e),
        })
    }

    /// Opens `comps` resolved inside the staging directory as its root.
    fn resolve(&self, comps: &[&[u8]], flags: OFlag) -> Result<OwnedFd, Errno> {
        let rel = if comps.is_empty() {
            b".".to_vec()
        } else {
            comps.join(&b'/')
        };
        openat2(
            &self.root,
            OsStr::from_bytes(&rel),
            OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
                ResolveFlag::RESOLVE_IN_ROOT
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            ),
        )
    }

    /// Opens the regular file `rel` (a path the archive's manifest names) for reading;
    /// `Ok(None)` when nothing is there.
    pub(crate) fn open(&self, rel: &str) -> Result<Option<(fs::File, u64)>, ImageError> {
        let comps = components(rel.as_bytes())?;
        let fd = match self.resolve(
            &comps,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(bad(format!("open {rel}: {}", errno_msg(e)))),
        };
        let st = fstat(&fd).map_err(|e| bad(format!("stat {rel}: {}", errno_msg(e))))?;
        if SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) != SFlag::S_IFREG {
            return Err(bad(format!(
                "invalid image archive: {rel} is not a regular file"
            )));
        }
        Ok(Some((fs::File::from(fd), st.st_size as u64)))
    }

    /// Opens `rel`, which must exist (dockerd's `open …: no such file or directory`).
    pub(crate) fn open_existing(&self, rel: &str) -> Result<fs::File, ImageError> {
        match self.open(rel)? {
            Some((f, _)) => Ok(f),
            None => Err(bad(format!("open {rel}: no such file or directory"))),
        }
    }

    /// Reads the small file `rel` (a manifest, index or config) whole, refusing one
    /// above `limit` bytes.
    pub(crate) fn read_small(&self, rel: &str, limit: u64) -> Result<Vec<u8>, ImageError> {
        let (f, size) = self
            .open(rel)?
            .ok_or_else(|| bad(format!("open {rel}: no such file or directory")))?;
        if size > limit {
            return Err(bad(format!(
                "invalid image archive: {rel} is {size} bytes, more than the {limit} allowed"
            )));
        }
        let mut out = Vec::with_capacity(size as usize);
        f.take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("reading {rel}: {e}")))?;
        if out.len() as u64 > limit {
            return Err(bad(format!(
                "invalid image archive: {rel} is more than the {limit} bytes allowed"
            )));
        }
        Ok(out)
    }

    /// A regular file is at `rel` (symlinks resolved inside).
    pub(crate) fn is_file(&self, rel: &str) -> bool {
        matches!(self.open(rel), Ok(Some(_)))
    }
}

/// Removes what is at `base` in `parent` so a new entry can take its place; a
/// directory stays (and the new entry then fails to be created over it).
fn remove(parent: &OwnedFd, base: &[u8], name: &[u8]) -> Result<(), ImageError> {
    match unlinkat(parent, base, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) | Err(Errno::EISDIR) => Ok(()),
        Err(e) => Err(io_bad("replacing", name, e)),
    }
}

#[cfg(test)]
#[path = "stage_tests.rs"]
mod tests;
