//! Docker's checks of bind propagation at start (moby `daemon/oci_linux.go`
//! `ensureShared`, `ensureSharedOrSlave`; containerd's CRI has the same): an `rshared`
//! bind's source must be on a shared mount, an `rslave` one's on a shared or slave
//! mount, else nothing could propagate and the bind would silently act as private.

use std::path::{Path, PathBuf};

use super::mounts::MountPoint;
use crate::error::{ApiError, ApiResult};

/// The mount point holding `path` (the longest mount point it is under; of mounts on
/// the same point, the last, which is on top) and its optional fields (`shared:N`,
/// `master:N`), from a `/proc/self/mountinfo` text.
fn mount_of(path: &Path, mountinfo: &str) -> Option<(PathBuf, Vec<String>)> {
    let mut best: Option<(PathBuf, Vec<String>)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4) else {
            continue;
        };
        let point = PathBuf::from(unescape(point));
        if !path.starts_with(&point) {
            continue;
        }
        let optional: Vec<String> = fields
            .iter()
            .skip(6)
            .take_while(|f| **f != "-")
            .map(|f| f.to_string())
            .collect();
        let longer = best
            .as_ref()
            .is_none_or(|(b, _)| point.components().count() >= b.components().count());
        if longer {
            best = Some((point, optional));
        }
    }
    best
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The check for one bind source with `propagation`, against `mountinfo`.
fn check_one(source: &Path, propagation: &str, mountinfo: &str) -> ApiResult<()> {
    let (want_slave, words) = match propagation {
        "rshared" | "shared" => (false, "a shared mount"),
        "rslave" | "slave" => (true, "a shared or slave mount"),
        _ => return Ok(()),
    };
    let Some((point, optional)) = mount_of(source, mountinfo) else {
        return Err(ApiError::internal(format!(
            "could not find the mount point of {}",
            source.display()
        )));
    };
    let ok = optional
        .iter()
        .any(|f| f.starts_with("shared:") || (want_slave && f.starts_with("master:")));
    if ok {
        return Ok(());
    }
    Err(ApiError::internal(format!(
        "path {} is mounted on {} but it is not {words}",
        source.display(),
        point.display()
    )))
}

/// Every bind of `points` with a shared or slave propagation, against this process's
/// mount table (the daemon's, where the shim starts the container).
pub(crate) fn check_binds(points: &[MountPoint]) -> ApiResult<()> {
    let binds: Vec<&MountPoint> = points
        .iter()
        .filter(|p| {
            p.kind == "bind"
                && matches!(
                    p.propagation.as_str(),
                    "rshared" | "shared" | "rslave" | "slave"
                )
        })
        .collect();
    if binds.is_empty() {
        return Ok(());
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| ApiError::internal(format!("reading /proc/self/mountinfo: {e}")))?;
    for p in binds {
        // the real path: a symlink on the way is followed as the kernel will
        let source = std::fs::canonicalize(&p.source).unwrap_or_else(|_| PathBuf::from(&p.source));
        check_one(&source, &p.propagation, &mountinfo)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
46 27 254:0 /tmp/sh /tmp/sh rw,relatime shared:5 - ext4 /dev/vda rw
47 27 254:0 /tmp/sl /tmp/sl rw,relatime master:5 - ext4 /dev/vda rw
48 46 0:51 / /tmp/sh/in rw,relatime - tmpfs tmpfs rw
49 27 254:0 /tmp/a\\040b /tmp/a\\040b rw shared:9 - ext4 /dev/vda rw";

    #[test]
    fn the_longest_mount_point_holds_the_path() {
        let (p, opt) = mount_of(Path::new("/tmp/sh/x/y"), INFO).unwrap();
        assert_eq!(
            (p, opt),
            (PathBuf::from("/tmp/sh"), vec!["shared:5".into()])
        );
        let (p, opt) = mount_of(Path::new("/tmp/sh/in/z"), INFO).unwrap();
        assert_eq!((p, opt.len()), (PathBuf::from("/tmp/sh/in"), 0));
        // a path prefix is no parent: /tmp/shx is on /
        assert_eq!(
            mount_of(Path::new("/tmp/shx"), INFO).unwrap().0,
            Path::new("/")
        );
        assert_eq!(
            mount_of(Path::new("/tmp/a b/c"), INFO).unwrap().0,
            Path::new("/tmp/a b")
        );
    }

    #[test]
    fn shared_and_slave_binds_need_such_a_source_in_dockers_words() {
        assert!(check_one(Path::new("/tmp/sh/d"), "rshared", INFO).is_ok());
        assert!(check_one(Path::new("/tmp/sh/d"), "rslave", INFO).is_ok());
        assert!(check_one(Path::new("/tmp/sl"), "rslave", INFO).is_ok());
        assert_eq!(
            check_one(Path::new("/tmp/sl"), "rshared", INFO)
                .unwrap_err()
                .message,
            "path /tmp/sl is mounted on /tmp/sl but it is not a shared mount"
        );
        assert_eq!(
            check_one(Path::new("/srv/x"), "slave", INFO)
                .unwrap_err()
                .message,
            "path /srv/x is mounted on / but it is not a shared or slave mount"
        );
        assert!(check_one(Path::new("/srv/x"), "rprivate", INFO).is_ok());
    }
}
