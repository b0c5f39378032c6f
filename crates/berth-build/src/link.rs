//! Hard links instead of copies for COPY/ADD: a regular file of the build's own scratch
//! (the received context, a stage's extracted image, a download) that the step would copy
//! unchanged (same owner, mode and mtime, new name in the step's layer) is linked into the
//! step's writable layer instead of written a second time.
//!
//! Safe because that scratch is private to one build, never written after it is
//! received, and removed when the build ends; the layer keeps the inode, read-only like
//! every layer (containers change files by copy-up). The links are made in the upper
//! directory itself once the step's overlay is unmounted (a link from outside cannot be
//! made through the overlay); the directories on the way are created or copied up
//! through the overlay first, and their mtimes are set again after the links.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;

/// Collects the links of one COPY/ADD step; [`Linker::finish`] makes them.
#[derive(Debug)]
pub struct Linker {
    /// Only files under this directory (the build's scratch) are linked.
    scratch: PathBuf,
    /// Where the step's filesystem is mounted while copying (the overlay's merged
    /// directory, or the upper directory itself for a `FROM scratch` stage).
    merged: PathBuf,
    /// The step's writable layer.
    upper: PathBuf,
    dev: u64,
    /// Inodes linked in this step: a second name for one of them is copied, so that a
    /// layer never gets hard links the context did not ask for.
    seen: HashSet<u64>,
    /// (source, destination in `upper`).
    links: Vec<(PathBuf, PathBuf)>,
    /// Directories in `upper` whose mtime the links change, with the mtime to keep.
    dirs: Vec<(PathBuf, FileTime)>,
}

impl Linker {
    /// A linker for a step whose layer is `upper`, mounted at `merged` while copying.
    /// None when `upper` is not on the same filesystem as `scratch`.
    pub fn new(scratch: &Path, merged: &Path, upper: &Path) -> Option<Self> {
        let dev = fs::metadata(upper).ok()?.dev();
        if fs::metadata(scratch).ok()?.dev() != dev {
            return None;
        }
        Some(Linker {
            scratch: scratch.to_path_buf(),
            merged: merged.to_path_buf(),
            upper: upper.to_path_buf(),
            dev,
            seen: HashSet::new(),
            links: Vec::new(),
            dirs: Vec::new(),
        })
    }

    fn in_upper(&self, merged_path: &Path) -> Option<PathBuf> {
        merged_path
            .strip_prefix(&self.merged)
            .ok()
            .map(|rel| self.upper.join(rel))
    }

    /// Takes the copy of `src` (metadata `md`) to `dst` (a path under the merged root,
    /// where nothing is yet) when it can be a link; false: copy it.
    pub(crate) fn take(
        &mut self,
        src: &Path,
        md: &fs::Metadata,
        dst: &Path,
        owner: (u32, u32),
    ) -> bool {
        if !md.is_file()
            || md.dev() != self.dev
            || (md.uid(), md.gid()) != owner
            || !src.starts_with(&self.scratch)
            || self.seen.contains(&md.ino())
        {
            return false;
        }
        let Some(target) = self.in_upper(dst) else {
            return false;
        };
        self.seen.insert(md.ino());
        self.links.push((src.to_path_buf(), target));
        true
    }

    /// Makes sure the directory `dir` (under the merged root) is in the upper directory,
    /// so that links can be made in it later: a directory only in a lower layer is
    /// copied up (a change of owner to the same owner is enough). Its mtime becomes the
    /// time of the links, as it would with copies made in it.
    pub(crate) fn ensure_upper_dir(&mut self, dir: &Path) -> io::Result<()> {
        if self.merged == self.upper {
            return Ok(());
        }
        let md = fs::symlink_metadata(dir)?;
        std::os::unix::fs::lchown(dir, Some(md.uid()), Some(md.gid()))
    }

    /// Records that the directory `dir` (under the merged root) must end with `mtime`.
    pub(crate) fn keep_mtime(&mut self, dir: &Path, mtime: FileTime) {
        if let Some(p) = self.in_upper(dir) {
            self.dirs.push((p, mtime));
        }
    }

    /// Number of files to link.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Makes the links (the step's overlay unmounted); a link that fails (a file
    /// system without them, too many links) becomes a copy. Then the directories get
    /// their mtimes back.
    pub fn finish(self, owner: (u32, u32)) -> io::Result<()> {
        for (src, dst) in &self.links {
            if fs::hard_link(src, dst).is_err() {
                let md = fs::symlink_metadata(src)?;
                fs::copy(src, dst)?;
                fs::set_permissions(dst, fs::Permissions::from_mode(md.mode() & 0o7777))?;
                std::os::unix::fs::lchown(dst, Some(owner.0), Some(owner.1))?;
                let mtime = FileTime::from_last_modification_time(&md);
                filetime::set_symlink_file_times(dst, mtime, mtime)?;
            }
        }
        for (dir, mtime) in &self.dirs {
            if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
                filetime::set_symlink_file_times(dir, *mtime, *mtime)?;
            }
        }
        Ok(())
    }
}
