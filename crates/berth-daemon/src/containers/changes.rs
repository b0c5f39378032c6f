//! `docker diff`: the changes of a container's writable layer (`upper/`), read directly
//! with the rules of moby's overlay driver (`pkg/archive` `OverlayChanges`).

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One entry of `GET /containers/{id}/changes`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    #[serde(rename = "Path")]
    pub path: String,
    /// 0 modified, 1 added, 2 deleted.
    #[serde(rename = "Kind")]
    pub kind: u8,
}

pub const CHANGE_MODIFY: u8 = 0;
pub const CHANGE_ADD: u8 = 1;
pub const CHANGE_DELETE: u8 = 2;

impl Change {
    /// `docker diff`'s line: `C /tmp`, `A /tmp/x`, `D /gone`.
    pub fn line(&self) -> String {
        let k = match self.kind {
            CHANGE_ADD => 'A',
            CHANGE_DELETE => 'D',
            _ => 'C',
        };
        format!("{k} {}", self.path)
    }
}

/// What moby keeps in a container's init layer (`daemon/initlayer`), below the
/// writable layer: Berth's runtime creates these mount points in `upper/` instead, so
/// `diff` leaves them out (when the image does not have them) as Docker never shows them.
const INIT_LAYER: &[&str] = &[
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/console",
    "/proc",
    "/sys",
    "/.dockerenv",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/mtab",
];

fn in_init_layer(path: &Path) -> bool {
    INIT_LAYER.iter().any(|p| Path::new(p) == path)
}

/// The changes of the writable layer `upper` over `lowers` (top first), in moby's
/// order (a lexical walk): a whiteout is a deletion, an opaque directory that existed
/// below is a deletion (its content then shows as added), a name that exists below is
/// a modification (a directory only when its size, mode or mtime differ), anything
/// else an addition; the parent of an addition or deletion is a modification.
/// Init-layer paths the runtime created ([`INIT_LAYER`]) are not changes, nor is a
/// directory whose only new content they are.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> io::Result<Vec<Change>> {
    let mut out = Vec::new();
    let mut changed_dirs = std::collections::HashSet::new();
    walk_changes(upper, Path::new("/"), lowers, &mut out, &mut changed_dirs)?;
    Ok(out)
}

fn walk_changes(
    upper: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    out: &mut Vec<Change>,
    changed_dirs: &mut std::collections::HashSet<PathBuf>,
) -> io::Result<()> {
    let dir = upper.join(rel.strip_prefix("/").unwrap_or(rel));
    let mut names: Vec<_> = match fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    names.sort();
    for name in names {
        let path = rel.join(&name);
        let inner = path.strip_prefix("/").unwrap_or(&path).to_path_buf();
        let host = upper.join(&inner);
        let Ok(md) = fs::symlink_metadata(&host) else {
            continue;
        };
        let lower = lowers
            .iter()
            .find_map(|l| fs::symlink_metadata(l.join(&inner)).ok());
        let whiteout = md.file_type().is_char_device() && md.rdev() == 0;
        let init_made = lower.is_none() && !whiteout && in_init_layer(&path);
        if init_made {
            // Not a change; an init-layer directory's other content still is.
            if md.is_dir() {
                walk_changes(upper, &path, lowers, out, changed_dirs)?;
            }
            continue;
        }
        let opaque_deleted =
            md.is_dir() && xattr_is_y(&host, "trusted.overlay.opaque") && lower.is_some();
        let mut attrs_only = false;
        let kind = if whiteout || opaque_deleted {
            Some(CHANGE_DELETE)
        } else {
            match &lower {
                None => Some(CHANGE_ADD),
                Some(low)
                    if low.is_dir()
                        && md.is_dir()
                        && low.size() == md.size()
                        && low.mode() == md.mode()
                        && low.mtime() == md.mtime()
                        && low.mtime_nsec() == md.mtime_nsec() =>
                {
                    None // only the parent of something changed
                }
                Some(low) => {
                    attrs_only = low.is_dir() && md.is_dir();
                    Some(CHANGE_MODIFY)
                }
            }
        };
        // A directory changed only by the runtime's init-layer files is not a change.
        let kind = if attrs_only && only_init_content(&host, &path) {
            None
        } else {
            kind
        };
        if let Some(kind) = kind {
            if md.is_dir() {
                changed_dirs.insert(path.clone());
            }
            if kind != CHANGE_MODIFY {
                if let Some(parent) = path.parent() {
                    if parent != Path::new("/") && changed_dirs.insert(parent.to_path_buf()) {
                        out.push(Change {
                            path: parent.display().to_string(),
                            kind: CHANGE_MODIFY,
                        });
                    }
                }
            }
            out.push(Change {
                path: path.display().to_string(),
                kind,
            });
        }
        if md.is_dir() {
            walk_changes(upper, &path, lowers, out, changed_dirs)?;
        }
    }
    Ok(())
}

/// The upper directory `host` (container path `path`) holds init-layer paths only
/// (at least one).
fn only_init_content(host: &Path, path: &Path) -> bool {
    let Ok(rd) = fs::read_dir(host) else {
        return false;
    };
    let names: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    !names.is_empty() && names.iter().all(|n| in_init_layer(&path.join(n)))
}

fn xattr_is_y(path: &Path, name: &str) -> bool {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (
        CString::new(path.as_os_str().as_bytes()),
        CString::new(name),
    ) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: valid C strings and a buffer of the length passed.
    let len = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            n.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
        )
    };
    len == 1 && buf[0] == b'y'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_follow_moby_rules() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        fs::create_dir_all(lower.join("tmp")).unwrap();
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/passwd"), "root").unwrap();
        fs::write(lower.join("gone"), "x").unwrap();
        fs::create_dir_all(upper.join("tmp")).unwrap();
        fs::write(upper.join("tmp/x"), "new").unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/passwd"), "changed").unwrap();
        fs::write(upper.join("new"), "").unwrap();
        // Directory times are coarse: make /etc differ, /tmp match, explicitly.
        let set_mtime = |p: &Path, secs: u64| {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            fs::File::open(p).unwrap().set_modified(t).unwrap();
        };
        set_mtime(&lower.join("etc"), 1_000);
        set_mtime(&upper.join("etc"), 2_000);
        set_mtime(&lower.join("tmp"), 1_000);
        set_mtime(&upper.join("tmp"), 1_000);
        // Runtime-made init-layer paths: not changes, nor is their directory.
        fs::create_dir_all(lower.join("etc2")).unwrap();
        fs::create_dir_all(upper.join("proc")).unwrap();
        fs::create_dir_all(upper.join("dev/pts")).unwrap();
        fs::write(upper.join("dev/extra"), "").unwrap();
        // A whiteout needs mknod (root); skip that part when not permitted.
        let wh = nix::sys::stat::mknod(
            &upper.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .is_ok();
        let got: Vec<String> = changes(&upper, &[lower])
            .unwrap()
            .iter()
            .map(Change::line)
            .collect();
        // /dev is the init layer's: the new file's parent is a modification.
        let mut want = vec!["C /dev", "A /dev/extra", "C /etc", "C /etc/passwd"];
        if wh {
            want.push("D /gone");
        }
        // /tmp is unchanged itself: it shows as the parent of its new file.
        want.extend(["A /new", "C /tmp", "A /tmp/x"]);
        assert_eq!(got, want);
    }
}
