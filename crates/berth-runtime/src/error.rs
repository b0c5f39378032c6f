//! The runtime's error type. Every variant maps to a [`berth_api::ErrorKind`] so the
//! daemon turns it into an HTTP status in one place.

use berth_api::ErrorKind;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Bad input in a spec (unknown capability, bad user, bad option).
    #[error("{0}")]
    InvalidArgument(String),
    /// A user or group named in `-u` does not exist in the container.
    #[error("{0}")]
    NotFound(String),
    /// A file operation on `path` failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A system call failed; the message says exactly what was attempted.
    /// Displayed with Go's wording for the errno (`no such file or directory`).
    #[error("{what}: {}", errno.desc().to_lowercase())]
    Sys {
        what: String,
        errno: nix::errno::Errno,
    },
    /// Anything else that went wrong inside the runtime.
    #[error("{0}")]
    Internal(String),
}

impl RuntimeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RuntimeError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            RuntimeError::NotFound(_) => ErrorKind::NotFound,
            RuntimeError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            _ => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(what: impl Into<String>, errno: nix::errno::Errno) -> Self {
        RuntimeError::Sys {
            what: what.into(),
            errno,
        }
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;
