//! Small file-system helpers shared by the daemon's services.

use std::path::Path;

/// `du`-style size in bytes of a directory tree (regular files and symlinks, not
/// following them).
pub fn dir_size(path: &Path) -> i64 {
    let mut total = 0i64;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(md) = e.path().symlink_metadata() else {
                continue;
            };
            if md.is_dir() {
                stack.push(e.path());
            } else {
                total += md.len() as i64;
            }
        }
    }
    total
}
