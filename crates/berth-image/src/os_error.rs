//! OS errors in Docker's words: Go prints an errno as the lower-case C text
//! (`no space left on device`), and a failed file operation as `write <path>: <errno>`.
//! Rust prints `No space left on device (os error 28)`.

use std::io;
use std::path::{Path, PathBuf};

/// Go's text of an OS error (`no space left on device`); other errors as they print.
pub fn go_text(e: &io::Error) -> String {
    if e.raw_os_error().is_none() {
        return e.to_string();
    }
    let text = e.to_string();
    let bare = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = bare.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => bare.to_string(),
    }
}

/// Whether the error says the storage itself failed (full, over quota, read-only or
/// broken), not the request: such errors are the daemon's (a 500), never a bad input.
pub fn is_storage_failure(e: &io::Error) -> bool {
    let errno = e.raw_os_error().or_else(|| {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<PathError>())
            .and_then(|p| p.source.raw_os_error())
    });
    matches!(
        errno,
        Some(libc::ENOSPC | libc::EDQUOT | libc::EIO | libc::EROFS)
    ) || e.kind() == io::ErrorKind::StorageFull
}

/// Go's `*fs.PathError`: `write /var/lib/berth/meta.db: no space left on device`.
#[derive(Debug)]
pub struct PathError {
    pub op: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.op,
            self.path.display(),
            go_text(&self.source)
        )
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `e` as an `io::Error` of the same kind that prints as Go's `<op> <path>: <errno>`.
pub fn with_path(op: &'static str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        PathError {
            op,
            path: path.to_path_buf(),
            source: e,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_read_as_go_prints_them() {
        let full = io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(go_text(&full), "no space left on device");
        assert!(is_storage_failure(&full));
        assert_eq!(
            go_text(&io::Error::from_raw_os_error(libc::EIO)),
            "input/output error"
        );
        let wrapped = with_path("write", Path::new("/r/meta.db"), full);
        assert_eq!(
            wrapped.to_string(),
            "write /r/meta.db: no space left on device"
        );
        assert!(is_storage_failure(&wrapped));
        assert!(!is_storage_failure(&io::Error::from_raw_os_error(
            libc::ENOENT
        )));
        assert_eq!(go_text(&io::Error::other("bad header")), "bad header");
    }
}
