//! Reproducible images (BuildKit's `SOURCE_DATE_EPOCH`): with the build arg set, a
//! step's layer has every mtime newer than the epoch clamped to it (the layer tar's
//! entries are already written in name order), the image's `created` and history times
//! are the epoch, and nothing of the host (the step container's ID and hostname) is
//! kept in the config. The same context and Dockerfile then give the same image ID on
//! any store and machine; the push's gzip is deterministic already.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use filetime::FileTime;

use crate::BuildError;

/// The build arg's name.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// The epoch the build args ask for (None: not set, or set empty).
pub fn epoch_from_args(
    args: &std::collections::BTreeMap<String, Option<String>>,
) -> Result<Option<i64>, BuildError> {
    match args.get(SOURCE_DATE_EPOCH) {
        Some(Some(v)) if !v.trim().is_empty() => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Some(n)),
            _ => Err(BuildError::invalid(format!(
                "invalid SOURCE_DATE_EPOCH: {v}"
            ))),
        },
        _ => Ok(None),
    }
}

/// The epoch as the config's `created` (RFC 3339, UTC).
pub fn epoch_rfc3339(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Sets every mtime (and atime) under `dir`, `dir` itself included, that is newer than
/// `epoch` to `epoch`; symlinks are not followed.
pub fn clamp_mtimes(dir: &Path, epoch: i64) -> io::Result<()> {
    let md = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if md.is_dir() {
        for e in std::fs::read_dir(dir)? {
            clamp_mtimes(&e?.path(), epoch)?;
        }
    }
    if md.mtime() > epoch || md.atime() > epoch {
        let t = FileTime::from_unix_time(epoch.min(md.mtime()), 0);
        let a = FileTime::from_unix_time(epoch.min(md.atime()), 0);
        filetime::set_symlink_file_times(dir, a, t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_args_and_clamping() {
        let mut args = std::collections::BTreeMap::new();
        assert_eq!(epoch_from_args(&args).unwrap(), None);
        args.insert(
            SOURCE_DATE_EPOCH.to_string(),
            Some("1700000000".to_string()),
        );
        assert_eq!(epoch_from_args(&args).unwrap(), Some(1_700_000_000));
        args.insert(SOURCE_DATE_EPOCH.to_string(), Some("soon".to_string()));
        assert_eq!(
            epoch_from_args(&args).unwrap_err().to_string(),
            "invalid SOURCE_DATE_EPOCH: soon"
        );
        assert_eq!(epoch_rfc3339(0), "1970-01-01T00:00:00Z");

        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/new"), "x").unwrap();
        std::fs::write(d.path().join("old"), "x").unwrap();
        std::os::unix::fs::symlink("/nowhere", d.path().join("a/link")).unwrap();
        let old = FileTime::from_unix_time(1000, 0);
        filetime::set_file_mtime(d.path().join("old"), old).unwrap();
        clamp_mtimes(d.path(), 5000).unwrap();
        for p in ["", "a", "a/b", "a/b/new", "a/link"] {
            let m = std::fs::symlink_metadata(d.path().join(p)).unwrap();
            assert_eq!(m.mtime(), 5000, "{p}");
        }
        let m = std::fs::metadata(d.path().join("old")).unwrap();
        assert_eq!(m.mtime(), 1000, "older files keep their time");
    }
}
