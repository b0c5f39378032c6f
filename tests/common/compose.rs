//! docker-compose 1.29.2 in a venv of its own, made once from PyPI with the pins of
//! REFERENCE §9 and cached under the target dir (shared by the compose e2e tests:
//! include with `#[path = "common/compose.rs"] mod compose;`).

use std::path::PathBuf;

use super::common::venv::python_venv;

/// The `docker-compose` binary, installing it first if needed.
pub fn compose_venv() -> Result<PathBuf, String> {
    let venv = python_venv(
        "compose-venv",
        &[
            &["setuptools<70", "wheel", "cython<3"],
            &["--no-build-isolation", "PyYAML==5.4.1"],
            &[
                "docker-compose==1.29.2",
                "docker==6.1.3",
                "requests<2.32",
                "urllib3<2",
            ],
        ],
    )?;
    Ok(venv.join("bin/docker-compose"))
}
