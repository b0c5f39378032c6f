//! Berth's Dockerfile builds, as Docker's classic builder does them (moby
//! `builder/dockerfile`): [`dockerfile`] parses (on top of `parse-dockerfile`),
//! [`shell`] expands variables, [`dockerignore`] matches `.dockerignore` patterns,
//! [`args`] scopes build arguments, [`copy`] resolves, hashes and copies COPY/ADD
//! sources, [`archive`] reads compressed tars, and [`builder`] runs the stages step by
//! step against a [`builder::Backend`] (the daemon's containers and image store, or a
//! fake in tests), writing Docker's progress texts.

pub mod archive;
pub mod args;
pub mod builder;
pub mod cache;
pub mod copy;
mod dispatch;
pub mod dockerfile;
pub mod dockerignore;
pub mod gofmt;
pub mod shell;

/// What can go wrong in a build; the message is Docker's text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BuildError {
    /// A bad Dockerfile, argument or source (HTTP 400 before the stream starts).
    #[error("{0}")]
    Invalid(String),
    /// A step failed (`The command '…' returned a non-zero code: 3`), with its code.
    #[error("{message}")]
    Step { message: String, code: i64 },
    /// Anything else (I/O, store).
    #[error("{0}")]
    Failed(String),
    /// The client went away: stop quietly.
    #[error("build cancelled")]
    Cancelled,
}

impl BuildError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        BuildError::Invalid(msg.into())
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        BuildError::Failed(msg.into())
    }
}

impl From<std::io::Error> for BuildError {
    fn from(e: std::io::Error) -> Self {
        BuildError::Failed(e.to_string())
    }
}
