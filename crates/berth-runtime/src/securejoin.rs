//! Resolving a container path inside the rootfs, so that a symlink in the image can
//! never point a mount (or a created directory) outside it.

use crate::error::{Result, RuntimeError};
use std::path::{Component, Path, PathBuf};

const MAX_SYMLINKS: usize = 255;

/// Resolves `unsafe_path` (a path inside the container) to a host path under `root`.
///
/// Walks the path one component at a time. Symlinks are read and followed as if `root`
/// were `/`: absolute targets restart at `root`, `..` never climbs above `root`.
/// Components that do not exist yet are appended as they are (the caller creates them).
pub fn resolve_in_root(root: &Path, unsafe_path: &str) -> Result<PathBuf> {
    let mut resolved = PathBuf::new(); // relative to root
    let mut pending: Vec<String> = components_rev(unsafe_path);
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved.join(&part);
        let full = root.join(&candidate);
        match std::fs::symlink_metadata(&full) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(RuntimeError::InvalidArgument(format!(
                        "too many levels of symbolic links resolving {unsafe_path} in {}",
                        root.display()
                    )));
                }
                let target = std::fs::read_link(&full)
                    .map_err(|e| RuntimeError::io("readlink", &full, e))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved = PathBuf::new();
                }
                pending.extend(components_rev(&target));
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

/// The path's components in reverse order (so `pop` yields them first to last).
fn components_rev(path: &str) -> Vec<String> {
    let mut v: Vec<String> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect();
    v.reverse();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn plain_paths_stay_under_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        assert_eq!(resolve_in_root(r, "/a/b").unwrap(), r.join("a/b"));
        assert_eq!(resolve_in_root(r, "/../../etc").unwrap(), r.join("etc"));
        assert_eq!(resolve_in_root(r, "a/./b/../c").unwrap(), r.join("a/c"));
        assert_eq!(resolve_in_root(r, "/").unwrap(), r.to_path_buf());
    }

    #[test]
    fn absolute_symlink_is_rooted() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir(r.join("real")).unwrap();
        symlink("/etc", r.join("evil")).unwrap();
        symlink("/real", r.join("good")).unwrap();
        assert_eq!(
            resolve_in_root(r, "/evil/passwd").unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(r, "/good/x").unwrap(), r.join("real/x"));
    }

    #[test]
    fn relative_dotdot_symlink_cannot_escape() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        symlink("../../../../../../tmp", r.join("a/b/up")).unwrap();
        assert_eq!(resolve_in_root(r, "/a/b/up/x").unwrap(), r.join("tmp/x"));
        symlink("../sib", r.join("a/b/rel")).unwrap();
        assert_eq!(resolve_in_root(r, "/a/b/rel").unwrap(), r.join("a/sib"));
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        symlink("/loop2", r.join("loop1")).unwrap();
        symlink("/loop1", r.join("loop2")).unwrap();
        assert!(resolve_in_root(r, "/loop1/x").is_err());
    }
}
