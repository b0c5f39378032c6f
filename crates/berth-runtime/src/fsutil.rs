//! Small file helpers.

use crate::error::{Result, RuntimeError};
use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` through a temporary file, fsync and rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| RuntimeError::io("create", &tmp, e))?;
    f.write_all(data)
        .map_err(|e| RuntimeError::io("write", &tmp, e))?;
    f.sync_all()
        .map_err(|e| RuntimeError::io("fsync", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| RuntimeError::io("rename", path, e))
}
