//! Small file helpers.

use crate::error::{Result, RuntimeError};
use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` through a temporary file and a rename: a reader (the daemon,
/// a restarted shim) sees the old file or the whole new one, also when the writer is
/// killed half-way. No fsync: these are the runtime state files of live processes (pid
/// files, cgroups, exit status) under the exec root, which mean nothing after the machine
/// goes down (their processes are gone with it), as runc's and containerd's state files
/// are written; a start then pays no disk flush for them.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| RuntimeError::io("create", &tmp, e))?;
    f.write_all(data)
        .map_err(|e| RuntimeError::io("write", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| RuntimeError::io("rename", path, e))
}
