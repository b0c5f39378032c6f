//! Berth's Dockerfile builds, as Docker's classic builder does them (moby
//! `builder/dockerfile`): [`dockerfile`] parses (on top of `parse-dockerfile`),
//! [`shell`] expands variables, [`dockerignore`] matches `.dockerignore` patterns,
//! [`args`] scopes build arguments, [`copy`] resolves, hashes and copies COPY/ADD
//! sources, [`archive`] reads compressed tars, and [`builder`] runs the stages step by
//! step against a [`builder::Backend`] (the daemon's containers and image store, or a
//! fake in tests), writing Docker's progress texts.
//!
//! Choices, and why:
//! - `parse-dockerfile` does the syntax (directives, continuations, flags, JSON forms);
//!   its error texts are reworded into moby's (`dockerfile parse error line 2: unknown
//!   instruction: FROBNICATE`).
//! - The modern syntax of BuildKit's frontend runs in the same classic `POST /build`:
//!   [`heredoc`] (here-documents in RUN/COPY/ADD), [`run_mount`] (`RUN --mount`,
//!   `--network`), `COPY/ADD --chmod/--link/--exclude`, `ADD --checksum`, and the
//!   `${V#p}`/`${V%p}`/`${V/a/b}` forms in [`shell`]. `# syntax=` and `# check=` are
//!   accepted; Berth always builds with its own frontend (the image `# syntax=` names is
//!   never fetched). Bad flags get BuildKit's error texts.
//! - The cache is moby's: a step's key is its parent image and its step config (the Cmd
//!   carries the instruction text, RUN's build args, COPY/ADD's content checksum). The
//!   image records the steps leave are the cache, so it needs no store of its own and
//!   survives restarts; `rmi` of the final image prunes the intermediate ones.
//! - Only RUN needs a container. COPY, ADD, WORKDIR and metadata steps write into a
//!   workspace (an overlay of the parent's layers, mounted privately) that the backend
//!   commits like a container; the `Running in`/`Removing intermediate container` lines
//!   Docker prints for them name that workspace.

pub mod archive;
pub mod args;
pub mod builder;
pub mod cache;
pub mod copy;
mod copy_step;
mod dispatch;
pub mod dockerfile;
pub mod dockerignore;
pub mod gofmt;
pub mod graph;
pub mod heredoc;
pub mod link;
pub mod repro;
pub mod run_mount;
pub mod run_step;
pub mod shell;
mod shell_pattern;
mod stages;

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
