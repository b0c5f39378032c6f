//! testcontainers-python in a venv of its own, made once from PyPI and cached under the
//! target dir (include with `#[path = "common/testcontainers.rs"] mod testcontainers;`).

use std::path::PathBuf;

use super::common::venv::python_venv;

/// The venv's `python`, installing testcontainers first if needed.
pub fn testcontainers_python() -> Result<PathBuf, String> {
    let venv = python_venv("testcontainers-venv", &[&["testcontainers==4.15.0"]])?;
    Ok(venv.join("bin/python"))
}
