//! Docker's copy-up: an empty volume mounted over a path that has content in the image
//! is first filled with that content, keeping ownership, modes and symlinks.
//!
//! The image is read through its unpacked layer directories, top-most first, as
//! overlayfs would merge them: a 0/0 character device is a whiteout, a directory with
//! `trusted.overlay.opaque=y` hides everything below it. Symlinks on the way to the
//! mount path are followed inside the image's root, never outside it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use berth_image::unpack::is_opaque;

fn is_whiteout(md: &std::fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// Whether some layer above the lower ones hides `rel` (a whiteout or opaque dir on one
/// of its ancestors, or an ancestor that is not a directory).
fn hidden_below(layer: &Path, rel: &Path) -> bool {
    let mut p = layer.to_path_buf();
    for c in rel.components() {
        match p.symlink_metadata() {
            Ok(md) if md.is_dir() => {
                if p != layer && is_opaque(&p) {
                    return true;
                }
            }
            Ok(_) => return true,
            Err(_) => return false,
        }
        p.push(c);
    }
    false
}

/// The real path of `rel` in the merged view, or None when absent or whited out.
fn lookup(layers: &[PathBuf], rel: &Path) -> Option<PathBuf> {
    for layer in layers {
        let p = layer.join(rel);
        if let Ok(md) = p.symlink_metadata() {
            return (!is_whiteout(&md)).then_some(p);
        }
        if hidden_below(layer, rel) {
            return None;
        }
    }
    None
}

/// The content of the regular file at `path` (absolute) in the merged view, symlinks
/// followed inside the image; None when absent, whited out or not a regular file.
pub fn read_file(layers: &[PathBuf], path: &str) -> Option<Vec<u8>> {
    let real = lookup(layers, &resolve(layers, path)?)?;
    if !real.symlink_metadata().ok()?.is_file() {
        return None;
    }
    std::fs::read(real).ok()
}

/// Resolves `path` (absolute, in the container) in the merged view, following symlinks
/// as if the image root were `/`. Returns the path relative to the root.
pub fn resolve(layers: &[PathBuf], path: &str) -> Option<PathBuf> {
    let mut pending: Vec<OsString> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let real = lookup(layers, &candidate)?;
        let md = real.symlink_metadata().ok()?;
        if md.file_type().is_symlink() {
            links += 1;
            if links > 40 {
                return None;
            }
            let target = std::fs::read_link(&real).ok()?;
            if target.is_absolute() {
                resolved = PathBuf::new();
            }
            for c in target.components().rev() {
                match c {
                    Component::Normal(s) => pending.push(s.to_os_string()),
                    Component::ParentDir => pending.push("..".into()),
                    _ => {}
                }
            }
        } else {
            resolved = candidate;
        }
    }
    Some(resolved)
}

/// Whether `path` (absolute, in the container) is a directory in the merged view,
/// following symlinks inside the image.
pub fn is_dir(layers: &[PathBuf], path: &str) -> bool {
    resolve(layers, path)
        .and_then(|rel| {
            if rel.as_os_str().is_empty() {
                return Some(true);
            }
            lookup(layers, &rel).map(|real| real.is_dir())
        })
        .unwrap_or(false)
}

/// Entries of the merged directory `rel`: name → real path (whiteouts removed).
fn list_merged(layers: &[PathBuf], rel: &Path) -> BTreeMap<OsString, Option<PathBuf>> {
    let mut out: BTreeMap<OsString, Option<PathBuf>> = BTreeMap::new();
    for layer in layers {
        let dir = layer.join(rel);
        match dir.symlink_metadata() {
            Ok(md) if md.is_dir() => {
                if let Ok(rd) = std::fs::read_dir(&dir) {
                    for e in rd.flatten() {
                        let name = e.file_name();
                        if out.contains_key(&name) {
                            continue;
                        }
                        let white = e.path().symlink_metadata().is_ok_and(|m| is_whiteout(&m));
                        out.insert(name, (!white).then(|| e.path()));
                    }
                }
                if is_opaque(&dir) {
                    break;
                }
            }
            Ok(_) => break,
            Err(_) => {
                if hidden_below(layer, rel) {
                    break;
                }
            }
        }
    }
    out
}

fn copy_meta(src: &std::fs::Metadata, dst: &Path, symlink: bool) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dst, Some(src.uid()), Some(src.gid()))?;
    if !symlink {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(src.mode() & 0o7777))?;
    }
    Ok(())
}

fn copy_tree(layers: &[PathBuf], rel: &Path, dst: &Path) -> std::io::Result<()> {
    for (name, real) in list_merged(layers, rel) {
        let Some(src) = real else { continue };
        let md = src.symlink_metadata()?;
        let target = dst.join(&name);
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(layers, &rel.join(&name), &target)?;
            copy_meta(&md, &target, false)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &target)?;
            copy_meta(&md, &target, true)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &target)?;
            copy_meta(&md, &target, false)?;
        }
        // Devices, fifos and sockets in an image path under a volume are skipped.
    }
    Ok(())
}

/// Fills the empty directory `dst` with what `path` holds in the image. Does nothing
/// when `dst` is not empty or the image has no directory at `path`. Returns whether
/// anything was copied.
pub fn copy_image_path(layers: &[PathBuf], path: &str, dst: &Path) -> std::io::Result<bool> {
    if std::fs::read_dir(dst)?.next().is_some() {
        return Ok(false);
    }
    let Some(rel) = resolve(layers, path) else {
        return Ok(false);
    };
    let Some(real) = lookup(layers, &rel) else {
        return Ok(false);
    };
    let md = real.symlink_metadata()?;
    if !md.is_dir() {
        return Ok(false);
    }
    copy_tree(layers, &rel, dst)?;
    copy_meta(&md, dst, false)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_layers_and_follows_symlinks_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("top");
        let low = t.path().join("low");
        std::fs::create_dir_all(low.join("srv/data/sub")).unwrap();
        std::fs::write(low.join("srv/data/a"), "a").unwrap();
        std::fs::write(low.join("srv/data/gone"), "x").unwrap();
        std::fs::write(low.join("srv/data/sub/b"), "b").unwrap();
        std::fs::set_permissions(
            low.join("srv/data/sub"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::fs::create_dir_all(top.join("srv/data")).unwrap();
        std::fs::write(top.join("srv/data/c"), "c").unwrap();
        // A whiteout of `gone` in the top layer (needs root for mknod).
        let wh = std::ffi::CString::new(
            top.join("srv/data/gone")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: `wh` is a valid NUL-terminated path; mknod touches no memory of ours.
        let whiteout = unsafe { libc::mknod(wh.as_ptr(), libc::S_IFCHR | 0o600, 0) } == 0;
        // `/data` is a symlink to `/srv/data`; `/escape` points far outside.
        std::os::unix::fs::symlink("/srv/data", top.join("data")).unwrap();
        std::os::unix::fs::symlink("../../../../../../srv/data", top.join("escape")).unwrap();
        let layers = vec![top.clone(), low.clone()];
        assert_eq!(
            resolve(&layers, "/data").unwrap(),
            PathBuf::from("srv/data")
        );
        assert_eq!(
            resolve(&layers, "/escape").unwrap(),
            PathBuf::from("srv/data")
        );

        // Files read through the merged view: the top layer's, the lower's, through a
        // symlink; none for a directory, a missing path or a whited-out one.
        assert_eq!(read_file(&layers, "/srv/data/c").unwrap(), b"c");
        assert_eq!(read_file(&layers, "/data/sub/b").unwrap(), b"b");
        assert_eq!(read_file(&layers, "/data/sub"), None);
        assert_eq!(read_file(&layers, "/data/nope"), None);
        if whiteout {
            assert_eq!(read_file(&layers, "/srv/data/gone"), None);
        }

        let dst = t.path().join("vol");
        std::fs::create_dir(&dst).unwrap();
        assert!(copy_image_path(&layers, "/data", &dst).unwrap());
        assert_eq!(std::fs::read_to_string(dst.join("a")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(dst.join("c")).unwrap(), "c");
        assert_eq!(std::fs::read_to_string(dst.join("sub/b")).unwrap(), "b");
        assert_eq!(
            dst.join("sub").metadata().unwrap().permissions().mode() & 0o777,
            0o700
        );
        if whiteout {
            assert!(!dst.join("gone").exists());
        }
        // is_dir (image volume subpaths): through symlinks, in any layer
        assert!(is_dir(&layers, "/data/sub"));
        assert!(is_dir(&layers, "/escape"));
        assert!(is_dir(&layers, "/"));
        assert!(!is_dir(&layers, "/data/a"));
        assert!(!is_dir(&layers, "/nope"));
        // Not empty any more: a second copy does nothing.
        assert!(!copy_image_path(&layers, "/data", &dst).unwrap());
        // A path the image lacks copies nothing.
        let empty = t.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(!copy_image_path(&layers, "/nope", &empty).unwrap());
    }
}
