//! Unpacking one layer tar into a directory, overlayfs style.
//!
//! - `.wh.NAME` becomes a character device `NAME` with device number 0/0 (an overlayfs
//!   whiteout), owned as the tar entry says; `.wh..wh..opq` sets the xattr
//!   `trusted.overlay.opaque=y` on its directory; other `.wh..wh.*` entries (aufs
//!   bookkeeping) are skipped.
//! - Entries are refused when their path is absolute or contains `..`, when a parent
//!   directory on the way is a symlink (the write would land outside the layer), when a
//!   hardlink target escapes, or when a relative symlink points above the layer root.
//! - Ownership, permission bits (setuid/setgid/sticky included), mtimes, `SCHILY.xattr.*`
//!   extended attributes, hardlinks, device nodes and FIFOs are kept.
//!
//! The caller unpacks into a fresh private directory and renames it into place, so a
//! failure here leaves only that directory to remove.

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::content::io_err;
use crate::ImageError;

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What an unpack produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Bytes of regular file content (hardlinks counted once).
    pub size: u64,
}

fn bad_entry(name: &[u8], why: &str) -> ImageError {
    ImageError::InvalidArgument(format!(
        "invalid tar entry {:?}: {why}",
        String::from_utf8_lossy(name)
    ))
}

/// A failed read of the stream is the client's bad archive (a 400); the storage failing
/// under it (a full disk) is the daemon's error, in dockerd's words:
/// `Error processing tar file(exit status 1): write /blob: no space left on device`.
fn bad_tar(e: io::Error) -> ImageError {
    if crate::os_error::is_storage_failure(&e) {
        return ImageError::Io {
            context: UNTAR_ERROR_PREFIX.trim_end_matches(": ").into(),
            source: e,
        };
    }
    ImageError::InvalidArgument(format!("invalid tar stream: {e}"))
}

/// [`bad_tar`] for a failed copy of an entry's data to its file, named as in the layer.
fn bad_copy(name: &[u8]) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |e| {
        if crate::os_error::is_storage_failure(&e) {
            let name = String::from_utf8_lossy(name);
            let path = format!("/{}", name.trim_start_matches("./").trim_start_matches('/'));
            return bad_tar(crate::os_error::with_path("write", Path::new(&path), e));
        }
        bad_tar(e)
    }
}

/// Splits an entry name into clean components; an empty result is the layer root.
fn clean_components(name: &[u8]) -> Result<Vec<OsString>, ImageError> {
    if name.first() == Some(&b'/') {
        return Err(bad_entry(name, "absolute paths are not allowed in a layer"));
    }
    let mut out = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(bad_entry(name, "\"..\" is not allowed in a layer path")),
            c => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(out)
}

/// The directories this unpack has created or checked to be real directories, so that
/// the parents of later entries need no `lstat` each. Sound because the destination is
/// private to the unpack: a directory only stops being one through [`Dirs::clear_path`],
/// which forgets it and everything under it.
#[derive(Default)]
struct Dirs {
    known: std::collections::HashSet<PathBuf>,
}

impl Dirs {
    /// Makes sure every parent of `comps` under `root` is a real directory (creating
    /// missing ones, mode 0755) and never a symlink. Returns the parent path.
    fn prepare_parent(
        &mut self,
        root: &Path,
        comps: &[OsString],
        name: &[u8],
    ) -> Result<PathBuf, ImageError> {
        let mut p = root.to_path_buf();
        for c in comps {
            p.push(c);
            if !self.known.contains(&p) {
                ensure_dir(&p, name)?;
                self.known.insert(p.clone());
            }
        }
        Ok(p)
    }

    /// [`clear_path`], forgetting a directory it removes (and what was under it).
    fn clear_path(&mut self, p: &Path, keep_dir: bool) -> Result<bool, ImageError> {
        if !keep_dir && self.known.contains(p) {
            self.known.retain(|k| !k.starts_with(p));
        }
        clear_path(p, keep_dir)
    }
}

/// Makes sure `p` is a real directory (creating it, mode 0755, if missing), never a
/// symlink: `name` is the entry that needs it.
fn ensure_dir(p: &Path, name: &[u8]) -> Result<(), ImageError> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => Err(bad_entry(
            name,
            "a parent directory is a symlink: the write would land outside the layer",
        )),
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(bad_entry(name, "a parent is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(p).map_err(io_err(format!("creating {}", p.display())))?;
            fs::set_permissions(p, fs::Permissions::from_mode(0o755))
                .map_err(io_err(format!("chmod {}", p.display())))
        }
        Err(e) => Err(io_err(format!("stat {}", p.display()))(e)),
    }
}

/// Removes whatever is at `p` unless it is a directory and `keep_dir` is set.
/// Returns true when a directory was kept.
fn clear_path(p: &Path, keep_dir: bool) -> Result<bool, ImageError> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            if keep_dir {
                return Ok(true);
            }
            fs::remove_dir_all(p).map_err(io_err(format!("removing {}", p.display())))?;
        }
        Ok(_) => fs::remove_file(p).map_err(io_err(format!("removing {}", p.display())))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("stat {}", p.display()))(e)),
    }
    Ok(false)
}

fn cpath(p: &Path) -> Result<CString, ImageError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| ImageError::InvalidArgument(format!("path with NUL byte: {}", p.display())))
}

fn check(rc: libc::c_int, what: &str, p: &Path) -> Result<(), ImageError> {
    if rc != 0 {
        return Err(io_err(format!("{what} {}", p.display()))(
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn lchown(p: &Path, uid: u64, gid: u64) -> Result<(), ImageError> {
    let c = cpath(p)?;
    // SAFETY: c is a valid NUL-terminated path.
    check(
        unsafe { libc::lchown(c.as_ptr(), uid as libc::uid_t, gid as libc::gid_t) },
        "lchown",
        p,
    )
}

fn chmod(p: &Path, mode: u32) -> Result<(), ImageError> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode & 0o7777))
        .map_err(io_err(format!("chmod {}", p.display())))
}

fn mknod(p: &Path, kind: libc::mode_t, major: u32, minor: u32) -> Result<(), ImageError> {
    let c = cpath(p)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: c is a valid NUL-terminated path.
    check(unsafe { libc::mknod(c.as_ptr(), kind, dev) }, "mknod", p)
}

pub(crate) fn lsetxattr(p: &Path, name: &str, value: &[u8]) -> Result<(), ImageError> {
    let c = cpath(p)?;
    let n = CString::new(name)
        .map_err(|_| ImageError::InvalidArgument(format!("bad xattr name {name:?}")))?;
    // SAFETY: valid C strings, value pointer/length from a slice.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check(rc, &format!("setting xattr {name} on"), p)
}

fn set_mtime(p: &Path, secs: u64) -> Result<(), ImageError> {
    let c = cpath(p)?;
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: valid path and a two-element timespec array.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(rc, "setting mtime of", p)
}

/// Joins `parent_rel` and a relative symlink target lexically; false if it climbs above
/// the root. Absolute targets are resolved inside the container root at run time: fine.
fn symlink_stays_inside(parent_rel: &[OsString], target: &[u8]) -> bool {
    if target.first() == Some(&b'/') {
        return true;
    }
    let mut depth = parent_rel.len() as i64;
    for c in target.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

/// Copies a GNU sparse entry's content (the `tar` crate reads its holes as zeros) into
/// `f`, seeking over every all-zero block instead of writing it, so the holes stay holes.
/// Returns the file's size.
pub fn copy_sparse(r: &mut dyn Read, f: &mut fs::File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom, Write};
    const HOLE: usize = 4096;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            break;
        }
        for chunk in buf[..n].chunks(HOLE) {
            if chunk.iter().all(|b| *b == 0) {
                f.seek(SeekFrom::Current(chunk.len() as i64))?;
            } else {
                f.write_all(chunk)?;
            }
        }
        total += n as u64;
    }
    f.set_len(total)?;
    Ok(total)
}

/// What dockerd puts before every error of a layer's untar.
pub const UNTAR_ERROR_PREFIX: &str = "Error processing tar file(exit status 1): ";

/// Unpacks the tar stream into `dest` (an existing, empty directory). Errors read as
/// dockerd's (`Error processing tar file(exit status 1): …`).
pub fn unpack_layer<R: Read>(reader: R, dest: &Path) -> Result<UnpackStats, ImageError> {
    unpack_entries(reader, dest).map_err(|e| match e {
        ImageError::InvalidArgument(m) => ImageError::InvalidArgument(format!(
            "{UNTAR_ERROR_PREFIX}{}",
            m.strip_prefix("invalid tar stream: ").unwrap_or(&m)
        )),
        other => other,
    })
}

fn unpack_entries<R: Read>(reader: R, dest: &Path) -> Result<UnpackStats, ImageError> {
    let mut archive = tar::Archive::new(crate::targuard::TarGuard::new(reader));
    let mut stats = UnpackStats::default();
    let mut dir_mtimes: Vec<(PathBuf, u64)> = Vec::new();
    let mut dirs = Dirs::default();
    for entry in archive.entries().map_err(bad_tar)? {
        let mut entry = entry.map_err(bad_tar)?;
        let name = entry.path_bytes().into_owned();
        let comps = clean_components(&name)?;
        let header = entry.header().clone();
        let et = header.entry_type();
        // Like Go's archive/tar, an empty numeric field reads as 0.
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mode = header.mode().unwrap_or(0o644);
        let mtime = header.mtime().unwrap_or(0);

        let Some((base, parents)) = comps.split_last() else {
            // The layer root itself ("./"): take its metadata.
            if et.is_dir() {
                lchown(dest, uid, gid)?;
                chmod(dest, mode)?;
                dir_mtimes.push((dest.to_path_buf(), mtime));
            }
            continue;
        };
        let base_bytes = base.as_bytes();
        let parent = dirs.prepare_parent(dest, parents, &name)?;

        if base_bytes == WHITEOUT_OPAQUE.as_bytes() {
            lsetxattr(&parent, OVERLAY_OPAQUE_XATTR, b"y")?;
            continue;
        }
        if base_bytes.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
            continue;
        }
        if let Some(hidden) = base_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            // `.wh..` and `.wh...` would name the directory itself or its parent.
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(bad_entry(&name, "invalid whiteout name"));
            }
            let target = parent.join(OsStr::from_bytes(hidden));
            dirs.clear_path(&target, false)?;
            mknod(&target, libc::S_IFCHR, 0, 0)?;
            lchown(&target, uid, gid)?;
            continue;
        }

        let path = parent.join(base);
        match et {
            EntryType::Directory => {
                if !dirs.clear_path(&path, true)? {
                    fs::create_dir(&path)
                        .map_err(io_err(format!("creating {}", path.display())))?;
                }
                dirs.known.insert(path.clone());
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let create = || {
                    fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .custom_flags(libc::O_NOFOLLOW)
                        .mode(0o600)
                        .open(&path)
                };
                // Most entries are new: try first, clear what is in the way only then.
                let mut f = match create() {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        dirs.clear_path(&path, false)?;
                        create()
                    }
                    other => other,
                }
                .map_err(io_err(format!("creating {}", path.display())))?;
                stats.size += if et == EntryType::GNUSparse {
                    copy_sparse(&mut entry, &mut f).map_err(bad_copy(&name))?
                } else {
                    io::copy(&mut entry, &mut f).map_err(bad_copy(&name))?
                };
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad_entry(&name, "symlink without a target"))?
                    .into_owned();
                if !symlink_stays_inside(parents, &target) {
                    return Err(bad_entry(&name, "symlink target points outside the layer"));
                }
                dirs.clear_path(&path, false)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(io_err(format!("creating symlink {}", path.display())))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad_entry(&name, "hardlink without a target"))?
                    .into_owned();
                let tcomps = clean_components(&target)?;
                let Some((_, tparents)) = tcomps.split_last() else {
                    return Err(bad_entry(&name, "hardlink to the layer root"));
                };
                let tparent = dirs.prepare_parent(dest, tparents, &name)?;
                let tpath =
                    tparent.join(tcomps.last().map(OsString::as_os_str).unwrap_or_default());
                let tmeta = fs::symlink_metadata(&tpath)
                    .map_err(|_| bad_entry(&name, "hardlink target does not exist in the layer"))?;
                if tmeta.is_dir() {
                    return Err(bad_entry(&name, "hardlink to a directory"));
                }
                if tpath == path {
                    continue;
                }
                dirs.clear_path(&path, false)?;
                fs::hard_link(&tpath, &path)
                    .map_err(io_err(format!("linking {}", path.display())))?;
                // The inode's owner, mode and times came with the target's own entry.
                continue;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let kind = match et {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                dirs.clear_path(&path, false)?;
                mknod(&path, kind | (mode & 0o7777) as libc::mode_t, major, minor)?;
            }
            // PAX global headers carry nothing for a layer (Go's archive/tar skips them
            // too); PAX and GNU long-name headers are folded in by the tar crate.
            EntryType::XGlobalHeader => continue,
            // What dockerd says (pkg/archive createTarFile) of types it does not know.
            other => {
                return Err(ImageError::InvalidArgument(format!(
                    "unhandled tar header type {}",
                    other.as_byte()
                )))
            }
        }

        let is_symlink = et == EntryType::Symlink;
        lchown(&path, uid, gid)?;
        if !is_symlink {
            chmod(&path, mode)?;
        }
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                let Ok(key) = ext.key() else { continue };
                if let Some(xname) = key.strip_prefix("SCHILY.xattr.") {
                    lsetxattr(&path, xname, ext.value_bytes())?;
                }
            }
        }
        if et == EntryType::Directory {
            dir_mtimes.push((path, mtime));
        } else {
            set_mtime(&path, mtime)?;
        }
    }
    // Directory mtimes last (creating their children changed them), deepest first.
    for (p, t) in dir_mtimes.iter().rev() {
        set_mtime(p, *t)?;
    }
    Ok(stats)
}

/// Reads the overlay opaque marker of a directory (for tests and export).
pub fn is_opaque(dir: &Path) -> bool {
    let Ok(c) = cpath(dir) else { return false };
    let n = CString::new(OVERLAY_OPAQUE_XATTR).unwrap_or_default();
    let mut buf = [0u8; 4];
    // SAFETY: valid C strings and a buffer of the given size.
    let rc = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    rc == 1 && buf[0] == b'y'
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    fn header(name: &str, et: EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(et);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        h
    }

    /// A raw tar with the name written byte for byte (tar::Builder refuses `..`).
    fn raw_entry(buf: &mut Vec<u8>, name: &str, et: EntryType, link: &str, data: &[u8]) {
        let mut h = tar::Header::new_old();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(et);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1);
        h.set_cksum();
        buf.extend_from_slice(h.as_bytes());
        buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        buf.extend(std::iter::repeat_n(0u8, pad));
    }

    fn finish(mut buf: Vec<u8>) -> Vec<u8> {
        buf.extend(std::iter::repeat_n(0u8, 1024));
        buf
    }

    #[test]
    fn converts_whiteouts_and_keeps_metadata() {
        let mut b = tar::Builder::new(Vec::new());
        b.append(&header("./", EntryType::Directory, 0o755, 0), &[][..])
            .unwrap();
        b.append(&header("etc/", EntryType::Directory, 0o755, 0), &[][..])
            .unwrap();
        let mut h = header("etc/passwd", EntryType::Regular, 0o4640, 5);
        h.set_uid(70);
        h.set_gid(71);
        h.set_cksum();
        b.append(&h, &b"hello"[..]).unwrap();
        let mut h = header("etc/hard", EntryType::Link, 0o4640, 0);
        h.set_link_name("etc/passwd").unwrap();
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        let mut h = header("etc/sym", EntryType::Symlink, 0o777, 0);
        h.set_link_name("/etc/passwd").unwrap();
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        b.append(
            &header("etc/.wh.gone", EntryType::Regular, 0o644, 0),
            &[][..],
        )
        .unwrap();
        b.append(
            &header("opq/.wh..wh..opq", EntryType::Regular, 0o644, 0),
            &[][..],
        )
        .unwrap();
        b.append(&header("tmp/", EntryType::Directory, 0o1777, 0), &[][..])
            .unwrap();
        let mut h = header("dev/null", EntryType::Char, 0o666, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        let tar = b.into_inner().unwrap();

        let dir = tempfile::tempdir().unwrap();
        let stats = unpack_layer(&tar[..], dir.path()).unwrap();
        assert_eq!(stats.size, 5);
        let r = dir.path();
        let m = fs::metadata(r.join("etc/passwd")).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777, m.mtime()),
            (70, 71, 0o4640, 1_600_000_000)
        );
        assert_eq!(m.nlink(), 2);
        assert_eq!(fs::metadata(r.join("etc/hard")).unwrap().ino(), m.ino());
        assert_eq!(
            fs::read_link(r.join("etc/sym")).unwrap(),
            Path::new("/etc/passwd")
        );
        let wh = fs::symlink_metadata(r.join("etc/gone")).unwrap();
        assert!(wh.file_type().is_char_device());
        assert_eq!(wh.rdev(), 0);
        assert!(!r.join("etc/.wh.gone").exists());
        assert!(is_opaque(&r.join("opq")));
        assert!(!is_opaque(&r.join("etc")));
        assert_eq!(fs::metadata(r.join("tmp")).unwrap().mode() & 0o7777, 0o1777);
        assert_eq!(fs::metadata(r.join("etc")).unwrap().mtime(), 1_600_000_000);
        let null = fs::symlink_metadata(r.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), libc::makedev(1, 3));
    }

    fn refused(tar: Vec<u8>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let _ = outside;
        let e = unpack_layer(&finish(tar)[..], &dir.path().join("")).unwrap_err();
        assert!(matches!(e, ImageError::InvalidArgument(_)), "{e}");
        e.to_string()
    }

    #[test]
    fn refuses_dotdot_and_absolute_paths() {
        let mut t = Vec::new();
        raw_entry(&mut t, "../evil", EntryType::Regular, "", b"x");
        assert!(refused(t).contains(".."));
        let mut t = Vec::new();
        raw_entry(&mut t, "a/../../evil", EntryType::Regular, "", b"x");
        assert!(refused(t).contains(".."));
        let mut t = Vec::new();
        raw_entry(&mut t, "/etc/evil", EntryType::Regular, "", b"x");
        assert!(refused(t).contains("absolute"));
    }

    #[test]
    fn refuses_writes_through_symlinked_parents() {
        let outside = tempfile::tempdir().unwrap();
        let mut t = Vec::new();
        let target = outside.path().to_str().unwrap().to_string();
        raw_entry(&mut t, "link", EntryType::Symlink, &target, b"");
        raw_entry(&mut t, "link/evil", EntryType::Regular, "", b"x");
        assert!(refused(t).contains("symlink"));
        assert!(!outside.path().join("evil").exists());
    }

    #[test]
    fn refuses_escaping_links() {
        let mut t = Vec::new();
        raw_entry(
            &mut t,
            "a/b",
            EntryType::Symlink,
            "../../../etc/shadow",
            b"",
        );
        assert!(refused(t).contains("outside"));
        let mut t = Vec::new();
        raw_entry(&mut t, "h", EntryType::Link, "../etc/shadow", b"");
        assert!(refused(t).contains(".."));
        let mut t = Vec::new();
        raw_entry(&mut t, "h", EntryType::Link, "/etc/shadow", b"");
        assert!(refused(t).contains("absolute"));
    }

    #[test]
    fn a_directory_replaced_by_a_symlink_or_file_is_not_written_through() {
        // The parents of `a/b/x` are known directories when `a` turns into a symlink:
        // the unpack must notice and refuse the write through it.
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().to_str().unwrap().to_string();
        let mut t = Vec::new();
        raw_entry(&mut t, "a/b/ok", EntryType::Regular, "", b"1");
        raw_entry(&mut t, "a", EntryType::Symlink, &target, b"");
        raw_entry(&mut t, "a/b/evil", EntryType::Regular, "", b"x");
        assert!(refused(t).contains("symlink"));
        assert!(!outside.path().join("b").exists());
        let mut t = Vec::new();
        raw_entry(&mut t, "d/e/ok", EntryType::Regular, "", b"1");
        raw_entry(&mut t, "d", EntryType::Regular, "", b"now a file");
        raw_entry(&mut t, "d/e/x", EntryType::Regular, "", b"x");
        assert!(refused(t).contains("not a directory"));
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let mut t = Vec::new();
        raw_entry(&mut t, "f", EntryType::Regular, "", b"one");
        raw_entry(&mut t, "f", EntryType::Regular, "", b"two");
        raw_entry(&mut t, "s", EntryType::Symlink, "f", b"");
        raw_entry(&mut t, "s", EntryType::Regular, "", b"three");
        let dir = tempfile::tempdir().unwrap();
        unpack_layer(&finish(t)[..], dir.path()).unwrap();
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"two");
        assert_eq!(fs::read(dir.path().join("s")).unwrap(), b"three");
    }

    /// A GNU sparse entry: `real` bytes, with data blocks at the given offsets.
    pub(crate) fn sparse_entry(
        buf: &mut Vec<u8>,
        name: &str,
        real: u64,
        blocks: &[(u64, &[u8; 512])],
    ) {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(EntryType::GNUSparse);
        h.set_mode(0o644);
        h.set_size(512 * blocks.len() as u64);
        h.set_mtime(1);
        let gnu = h.as_gnu_mut().unwrap();
        for (slot, (off, _)) in gnu.sparse.iter_mut().zip(blocks) {
            slot.offset = *b"00000000000\0";
            let o = format!("{off:011o}\0");
            slot.offset.copy_from_slice(o.as_bytes());
            slot.numbytes.copy_from_slice(b"00000001000\0");
        }
        let r = format!("{real:011o}\0");
        gnu.realsize.copy_from_slice(r.as_bytes());
        h.set_cksum();
        buf.extend_from_slice(h.as_bytes());
        for (_, data) in blocks {
            buf.extend_from_slice(&data[..]);
        }
    }

    #[test]
    fn gnu_sparse_files_keep_their_holes() {
        let mut t = Vec::new();
        let real = 1u64 << 30;
        sparse_entry(
            &mut t,
            "sparse",
            real,
            &[(0, &[b'a'; 512]), (real - 512, &[b'z'; 512])],
        );
        let dir = tempfile::tempdir().unwrap();
        let stats = unpack_layer(&finish(t)[..], dir.path()).unwrap();
        assert_eq!(stats.size, real);
        let p = dir.path().join("sparse");
        let m = fs::metadata(&p).unwrap();
        assert_eq!(m.len(), real);
        assert!(
            m.blocks() * 512 < 1 << 20,
            "holes were written: {} blocks",
            m.blocks()
        );
        use std::io::{Seek, SeekFrom};
        let mut f = fs::File::open(&p).unwrap();
        let mut b = [0u8; 512];
        f.read_exact(&mut b).unwrap();
        assert_eq!(b, [b'a'; 512]);
        f.seek(SeekFrom::Start(real - 512)).unwrap();
        f.read_exact(&mut b).unwrap();
        assert_eq!(b, [b'z'; 512]);
        f.seek(SeekFrom::Start(4096)).unwrap();
        f.read_exact(&mut b).unwrap();
        assert_eq!(b, [0; 512]);
    }

    #[test]
    fn whiteouts_of_dot_and_dotdot_remove_nothing() {
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("layer");
        fs::create_dir(&dest).unwrap();
        fs::write(outer.path().join("sibling"), "kept").unwrap();
        for name in [".wh...", ".wh..", "d/.wh...", ".wh."] {
            let mut t = Vec::new();
            raw_entry(&mut t, "d/f", EntryType::Regular, "", b"1");
            raw_entry(&mut t, name, EntryType::Regular, "", b"");
            let e = unpack_layer(&finish(t)[..], &dest).unwrap_err();
            assert!(e.to_string().contains("whiteout"), "{name}: {e}");
            assert!(outer.path().join("sibling").exists(), "{name}");
            assert!(dest.join("d/f").exists(), "{name}");
        }
    }

    #[test]
    fn unknown_entry_types_are_refused_as_dockerd_does() {
        let mut t = Vec::new();
        raw_entry(&mut t, "vol", EntryType::new(b'V'), "", b"");
        assert_eq!(
            refused(t),
            "Error processing tar file(exit status 1): unhandled tar header type 86"
        );
    }
}
