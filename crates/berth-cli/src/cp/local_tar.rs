//! The local side of a copy: tarring a host path (entries renamed as asked), renaming the
//! entries of an archive, and extracting one into a host directory.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::paths::{rebase_name, split_path_dir_entry};
use crate::Failure;

/// Rewrites every entry of `tar` with [`rebase_name`].
pub(super) fn rebase_archive(tar: &[u8], old: &str, new: &str) -> Result<Vec<u8>, Failure> {
    let err = |e: std::io::Error| Failure::Msg(format!("rebasing archive: {e}"));
    let mut a = tar::Archive::new(tar);
    let mut b = tar::Builder::new(Vec::new());
    for e in a.entries().map_err(err)? {
        let mut e = e.map_err(err)?;
        let mut h = e.header().clone();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let renamed = rebase_name(&name, old, new);
        let mut data = Vec::new();
        e.read_to_end(&mut data).map_err(err)?;
        match h.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let mut target = e
                    .link_name()
                    .map_err(err)?
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                if h.entry_type() == tar::EntryType::Link {
                    target = rebase_name(&target, old, new);
                }
                b.append_link(&mut h, &renamed, &target).map_err(err)?;
            }
            _ => b.append_data(&mut h, &renamed, &data[..]).map_err(err)?,
        }
    }
    b.into_inner().map_err(err)
}

/// A tar of local `path`, entries named from its base name or `rebase`
/// (go-archive `TarResourceRebase`).
pub(super) fn tar_local(path: &str, rebase: Option<&str>) -> Result<Vec<u8>, Failure> {
    let err = |e: std::io::Error| Failure::Msg(e.to_string());
    let (dir, base) = split_path_dir_entry(path);
    let src = if base == "." {
        PathBuf::from(&dir)
    } else {
        Path::new(&dir).join(&base)
    };
    let name = rebase.unwrap_or(&base).to_string();
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    append_local(&mut b, &src, Path::new(&name)).map_err(err)?;
    b.into_inner().map_err(err)
}

pub(super) fn append_local(
    b: &mut tar::Builder<Vec<u8>>,
    src: &Path,
    name: &Path,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let md = std::fs::symlink_metadata(src)?;
    if md.file_type().is_socket() {
        return Ok(());
    }
    if !md.is_dir() {
        return b.append_path_with_name(src, name);
    }
    b.append_dir(name, src)?;
    let mut names: Vec<_> = std::fs::read_dir(src)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for n in names {
        append_local(b, &src.join(&n), &name.join(&n))?;
    }
    Ok(())
}

/// Extracts `tar` into local `dir` as go-archive `Untar` with `NoLchown` and
/// `NoOverwriteDirNonDir`.
pub(super) fn untar_local(tar: &[u8], dir: &str) -> Result<(), Failure> {
    let err = |e: std::io::Error| Failure::Msg(e.to_string());
    let dest = PathBuf::from(dir);
    let mut a = tar::Archive::new(tar);
    a.set_preserve_permissions(true);
    a.set_preserve_mtime(true);
    a.set_overwrite(true);
    a.set_unpack_xattrs(false);
    for e in a.entries().map_err(err)? {
        let mut e = e.map_err(err)?;
        let rel = e.path().map_err(err)?.into_owned();
        let target = dest.join(&rel);
        let is_dir = e.header().entry_type().is_dir();
        if let Ok(existing) = std::fs::symlink_metadata(&target) {
            if existing.is_dir() && !is_dir {
                return Err(Failure::Msg(format!(
                    "cannot overwrite directory {:?} with non-directory {:?}",
                    target.display().to_string(),
                    dir
                )));
            }
            if !existing.is_dir() && is_dir {
                return Err(Failure::Msg(format!(
                    "cannot overwrite non-directory {:?} with directory {:?}",
                    target.display().to_string(),
                    dir
                )));
            }
        }
        e.unpack_in(&dest).map_err(err)?;
    }
    Ok(())
}
