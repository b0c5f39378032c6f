//! Packing a layer directory into a tar stream, the reverse of [`crate::unpack`]:
//! overlayfs whiteouts (0/0 character devices) become `.wh.NAME` entries and a directory
//! marked `trusted.overlay.opaque=y` gets a `.wh..wh..opq` entry. Used for a container's
//! upper directory (commit, export, diff) and for re-creating layer tars.
//!
//! Entries come sorted by name, parents before children, without the root itself.
//! Owners, modes, mtimes, device numbers, symlinks and hardlinks are kept; extended
//! attributes other than `trusted.overlay.*` are written as PAX `SCHILY.xattr.*` records.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::unpack::{OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

/// All extended attributes of `p` (not following symlinks).
pub(crate) fn list_xattrs(p: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let c = cpath(p)?;
    // SAFETY: a null buffer with size 0 asks for the needed size.
    let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENOTSUP) {
            Ok(Vec::new())
        } else {
            Err(e)
        };
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut names = vec![0u8; n as usize];
    // SAFETY: buffer of the given length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let cname = CString::new(name).map_err(|_| io::Error::other("bad xattr name"))?;
        // SAFETY: size query, then a read into a buffer of that size.
        let size = unsafe { libc::lgetxattr(c.as_ptr(), cname.as_ptr(), std::ptr::null_mut(), 0) };
        if size < 0 {
            continue;
        }
        let mut val = vec![0u8; size as usize];
        // SAFETY: valid C strings and a buffer of the size passed.
        let got = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                val.as_mut_ptr().cast(),
                val.len(),
            )
        };
        if got < 0 {
            continue;
        }
        val.truncate(got as usize);
        out.push((String::from_utf8_lossy(name).into_owned(), val));
    }
    Ok(out)
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(xattrs: &[(String, Vec<u8>)]) -> bool {
    xattrs
        .iter()
        .any(|(k, v)| k == OVERLAY_OPAQUE_XATTR && v == b"y")
}

struct Packer<W: Write> {
    builder: tar::Builder<W>,
    root: PathBuf,
    /// (dev, ino) of regular files with several links → first archived name.
    links: HashMap<(u64, u64), PathBuf>,
    /// Entries from under this directory (a remapped writable layer) get their ids
    /// taken back to the container's.
    unmap: Option<(PathBuf, IdUnmap)>,
}

/// The ids a remapped container's writable layer is stored with (host ids, under
/// `--userns-remap`) taken back to the container's when it is packed: `(container id,
/// host id, count)` ranges as in `uid_map`. An id in no range stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdUnmap {
    pub uids: Vec<(u32, u32, u32)>,
    pub gids: Vec<(u32, u32, u32)>,
}

fn unmap_id(ranges: &[(u32, u32, u32)], id: u32) -> u32 {
    ranges
        .iter()
        .find_map(|&(c, h, n)| (id >= h && id - h < n).then(|| c + (id - h)))
        .unwrap_or(id)
}

impl IdUnmap {
    fn apply(&self, h: &mut Header, m: &fs::Metadata) {
        h.set_uid(unmap_id(&self.uids, m.uid()) as u64);
        h.set_gid(unmap_id(&self.gids, m.gid()) as u64);
    }
}

fn base_header(m: &fs::Metadata, et: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(et);
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(m.uid() as u64);
    h.set_gid(m.gid() as u64);
    h.set_mtime(m.mtime().max(0) as u64);
    h.set_size(0);
    h
}

/// One PAX extended header carrying `records` for the entry that follows.
fn append_pax<W: Write>(
    b: &mut tar::Builder<W>,
    name: &Path,
    records: &[(String, Vec<u8>)],
) -> io::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut data = Vec::new();
    for (k, v) in records {
        // "LEN key=value\n", where LEN counts itself.
        let body = k.len() + v.len() + 3;
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        data.extend_from_slice(format!("{len} {k}=").as_bytes());
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::XHeader);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    let short: String = format!("PaxHeaders/{}", name.display())
        .chars()
        .take(99)
        .collect();
    b.append_data(&mut h, short, &data[..])
}

impl<W: Write> Packer<W> {
    /// [`base_header`] with the ids of an entry at `path` unmapped when it must be.
    fn header(&self, path: &Path, m: &fs::Metadata, et: EntryType) -> Header {
        let mut h = base_header(m, et);
        if let Some((under, unmap)) = &self.unmap {
            if path.starts_with(under) {
                unmap.apply(&mut h, m);
            }
        }
        h
    }

    fn walk(&mut self, rel: &Path) -> io::Result<()> {
        let dir = self.root.join(rel);
        let mut names: Vec<_> = fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let rel_child = rel.join(&name);
            self.entry(&rel_child)?;
        }
        Ok(())
    }

    fn entry(&mut self, rel: &Path) -> io::Result<()> {
        let path = self.root.join(rel);
        let m = fs::symlink_metadata(&path)?;
        let ft = m.file_type();
        if is_whiteout(&m) {
            let name = rel.file_name().unwrap_or_default();
            let mut wh = std::ffi::OsString::from(WHITEOUT_PREFIX);
            wh.push(name);
            let mut h = self.header(&path, &m, EntryType::Regular);
            h.set_mode(0o644);
            let target = rel.with_file_name(wh);
            return self.builder.append_data(&mut h, target, io::empty());
        }
        let opaque = ft.is_dir() && is_opaque(&list_xattrs(&path).unwrap_or_default());
        self.plain_entry(&path, rel, &m)?;
        if ft.is_dir() {
            if opaque {
                let mut h = self.header(&path, &m, EntryType::Regular);
                h.set_mode(0o644);
                self.builder
                    .append_data(&mut h, rel.join(WHITEOUT_OPAQUE), io::empty())?;
            }
            return self.walk(rel);
        }
        Ok(())
    }

    /// Writes the one entry at `path` as `rel`: no whiteout conversion, no children.
    fn plain_entry(&mut self, path: &Path, rel: &Path, m: &fs::Metadata) -> io::Result<()> {
        let ft = m.file_type();
        let records: Vec<(String, Vec<u8>)> = list_xattrs(path)
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("trusted.overlay."))
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
            .collect();
        if ft.is_dir() {
            append_pax(&mut self.builder, rel, &records)?;
            let mut h = self.header(path, m, EntryType::Directory);
            return self.builder.append_data(&mut h, rel, io::empty());
        }
        if ft.is_file() && m.nlink() > 1 {
            if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                let mut h = self.header(path, m, EntryType::Link);
                return self.builder.append_link(&mut h, rel, first.clone());
            }
            self.links.insert((m.dev(), m.ino()), rel.to_path_buf());
        }
        append_pax(&mut self.builder, rel, &records)?;
        if ft.is_file() {
            let mut h = self.header(path, m, EntryType::Regular);
            h.set_size(m.len());
            let f = fs::File::open(path)?;
            self.builder.append_data(&mut h, rel, f)
        } else if ft.is_symlink() {
            let target = fs::read_link(path)?;
            let mut h = self.header(path, m, EntryType::Symlink);
            self.builder.append_link(&mut h, rel, target)
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let et = if ft.is_char_device() {
                EntryType::Char
            } else if ft.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Fifo
            };
            let mut h = self.header(path, m, et);
            if et != EntryType::Fifo {
                h.set_device_major(libc::major(m.rdev()))?;
                h.set_device_minor(libc::minor(m.rdev()))?;
            }
            self.builder.append_data(&mut h, rel, io::empty())
        } else {
            Ok(()) // sockets are not archived (as in Docker)
        }
    }

    /// Writes the merged view of directory `rel` over `layers` (roots, top first, in
    /// which `rel` is a directory visible from above): each name comes from the topmost
    /// layer that has it; a whiteout hides it and everything below; a directory merges
    /// with the same directory in lower layers down to the first opaque one or the first
    /// layer where the name is not a directory.
    fn merged_dir(&mut self, rel: &Path, layers: &[PathBuf]) -> io::Result<()> {
        let mut names = std::collections::BTreeSet::new();
        for root in layers {
            let Ok(rd) = fs::read_dir(root.join(rel)) else {
                continue;
            };
            for e in rd {
                names.insert(e?.file_name());
            }
        }
        for name in names {
            let child = rel.join(&name);
            let mut top: Option<(PathBuf, fs::Metadata)> = None;
            let mut below: Vec<PathBuf> = Vec::new();
            for root in layers {
                let p = root.join(&child);
                let Ok(m) = fs::symlink_metadata(&p) else {
                    continue;
                };
                if is_whiteout(&m) || (top.is_some() && !m.is_dir()) {
                    break;
                }
                let is_dir = m.is_dir();
                if top.is_none() {
                    top = Some((p.clone(), m));
                }
                if !is_dir {
                    break;
                }
                below.push(root.clone());
                if is_opaque(&list_xattrs(&p).unwrap_or_default()) {
                    break;
                }
            }
            let Some((path, m)) = top else { continue };
            self.plain_entry(&path, &child, &m)?;
            if m.is_dir() {
                self.merged_dir(&child, &below)?;
            }
        }
        Ok(())
    }
}

/// Writes the flattened filesystem of overlay layers `layers` (directories, top first,
/// e.g. a container's upper dir then its image's layers) as one tar into `out`: what a
/// mount of them would show, whiteouts applied and not archived (`docker export`).
pub fn export_merged<W: Write>(layers: &[PathBuf], out: W) -> io::Result<W> {
    export_merged_unmapped(layers, out, None)
}

/// [`export_merged`] with the top layer's ids taken back through `unmap` (a container
/// under `--userns-remap`, whose writable layer holds host ids).
pub fn export_merged_unmapped<W: Write>(
    layers: &[PathBuf],
    out: W,
    unmap: Option<IdUnmap>,
) -> io::Result<W> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut p = Packer {
        builder,
        root: PathBuf::new(),
        links: HashMap::new(),
        unmap: unmap.zip(layers.first().cloned()).map(|(u, top)| (top, u)),
    };
    let mut visible = Vec::new();
    for l in layers {
        visible.push(l.clone());
        if is_opaque(&list_xattrs(l).unwrap_or_default()) {
            break;
        }
    }
    p.merged_dir(Path::new(""), &visible)?;
    p.builder.into_inner()
}

/// Writes the directory `dir` as a layer tar into `out` (end-of-archive included).
pub fn pack_layer<W: Write>(dir: &Path, out: W) -> io::Result<W> {
    pack_layer_unmapped(dir, out, None)
}

/// [`pack_layer`] with every id taken back through `unmap` (see [`IdUnmap`]).
pub fn pack_layer_unmapped<W: Write>(dir: &Path, out: W, unmap: Option<IdUnmap>) -> io::Result<W> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut p = Packer {
        builder,
        root: dir.to_path_buf(),
        links: HashMap::new(),
        unmap: unmap.map(|u| (dir.to_path_buf(), u)),
    };
    p.walk(Path::new(""))?;
    p.builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unpack::{is_opaque as dir_is_opaque, unpack_layer};

    fn names(tar: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect()
    }

    fn header(name: &str, et: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(et);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_500_000_000);
        h.set_uid(1);
        h.set_gid(2);
        h.set_cksum();
        h
    }

    #[test]
    fn whiteouts_round_trip_through_unpack_and_pack() {
        let mut b = tar::Builder::new(Vec::new());
        b.append(&header("etc/", EntryType::Directory, 0o755, 0), &[][..])
            .unwrap();
        b.append(
            &header("etc/.wh.shadow", EntryType::Regular, 0o644, 0),
            &[][..],
        )
        .unwrap();
        b.append(&header("opq/", EntryType::Directory, 0o750, 0), &[][..])
            .unwrap();
        b.append(
            &header("opq/.wh..wh..opq", EntryType::Regular, 0o644, 0),
            &[][..],
        )
        .unwrap();
        b.append(
            &header("opq/keep", EntryType::Regular, 0o600, 2),
            &b"hi"[..],
        )
        .unwrap();
        let mut h = header("opq/link", EntryType::Link, 0o600, 0);
        h.set_link_name("opq/keep").unwrap();
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        let mut h = header("sym", EntryType::Symlink, 0o777, 0);
        h.set_link_name("/etc/passwd").unwrap();
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        let original = b.into_inner().unwrap();

        let one = tempfile::tempdir().unwrap();
        unpack_layer(&original[..], one.path()).unwrap();
        let packed = pack_layer(one.path(), Vec::new()).unwrap();
        assert_eq!(
            names(&packed),
            vec![
                "etc",
                "etc/.wh.shadow",
                "opq",
                "opq/.wh..wh..opq",
                "opq/keep",
                "opq/link",
                "sym"
            ]
        );
        // Unpacking the packed tar gives the same tree.
        let two = tempfile::tempdir().unwrap();
        unpack_layer(&packed[..], two.path()).unwrap();
        let wh = fs::symlink_metadata(two.path().join("etc/shadow")).unwrap();
        assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
        assert!(dir_is_opaque(&two.path().join("opq")));
        let keep = fs::metadata(two.path().join("opq/keep")).unwrap();
        assert_eq!(
            (keep.uid(), keep.gid(), keep.mode() & 0o7777, keep.mtime()),
            (1, 2, 0o600, 1_500_000_000)
        );
        assert_eq!(
            fs::metadata(two.path().join("opq/link")).unwrap().ino(),
            keep.ino()
        );
        assert_eq!(
            fs::read_link(two.path().join("sym")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            fs::metadata(two.path().join("opq")).unwrap().mode() & 0o7777,
            0o750
        );
        // And packing is deterministic.
        assert_eq!(pack_layer(two.path(), Vec::new()).unwrap(), packed);
    }

    #[test]
    fn xattrs_travel_as_pax_records() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"x").unwrap();
        if crate::unpack::lsetxattr(&f, "user.berth", b"v1").is_err() {
            return; // the filesystem under the temp dir has no user xattrs
        }
        let packed = pack_layer(dir.path(), Vec::new()).unwrap();
        let out = tempfile::tempdir().unwrap();
        unpack_layer(&packed[..], out.path()).unwrap();
        let x = list_xattrs(&out.path().join("f")).unwrap();
        assert!(
            x.contains(&("user.berth".to_string(), b"v1".to_vec())),
            "{x:?}"
        );
    }

    #[test]
    fn export_merges_layers_and_applies_whiteouts() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        for d in ["etc", "opq", "gone"] {
            fs::create_dir_all(lower.join(d)).unwrap();
        }
        fs::write(lower.join("etc/passwd"), "root").unwrap();
        fs::write(lower.join("etc/shadow"), "x").unwrap();
        fs::write(lower.join("opq/old"), "o").unwrap();
        fs::write(lower.join("gone/f"), "g").unwrap();
        fs::write(lower.join("file"), "lower").unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::create_dir_all(upper.join("opq")).unwrap();
        fs::write(upper.join("etc/hostname"), "box").unwrap();
        fs::write(upper.join("file"), "upper").unwrap();
        fs::write(upper.join("opq/new"), "n").unwrap();
        let whiteout = |p: &Path| {
            let c = cpath(p).unwrap();
            // SAFETY: a valid path; makes a 0/0 character device (overlay whiteout).
            assert_eq!(
                // SAFETY: a valid path; makes a 0/0 character device (overlay whiteout).
                unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) },
                0
            );
        };
        whiteout(&upper.join("etc/shadow"));
        whiteout(&upper.join("gone"));
        let c = cpath(&upper.join("opq")).unwrap();
        let n = CString::new(OVERLAY_OPAQUE_XATTR).unwrap();
        // SAFETY: valid C strings and value.
        assert_eq!(
            // SAFETY: valid C strings and a one-byte value.
            unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), b"y".as_ptr().cast(), 1, 0) },
            0
        );

        let tar = export_merged(&[upper.clone(), lower.clone()], Vec::new()).unwrap();
        let got = names(&tar);
        assert_eq!(
            got,
            vec![
                "etc",
                "etc/hostname",
                "etc/passwd",
                "file",
                "opq",
                "opq/new"
            ]
        );
        let mut a = tar::Archive::new(&tar[..]);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().as_os_str() == "file" {
                let mut s = String::new();
                io::Read::read_to_string(&mut e, &mut s).unwrap();
                assert_eq!(s, "upper", "the top layer's copy wins");
            }
        }
    }
}
