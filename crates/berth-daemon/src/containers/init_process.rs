//! `--init` (`HostConfig.Init`): the container's PID 1 stays Berth's own init
//! (`docker-init`, see `berth_runtime::tiny_init`), which starts the command; the binary
//! is also bind-mounted read-only at `/sbin/docker-init` (it runs there only where the
//! image has the host's C library: Berth is not a static binary).

use berth_runtime::MountSpec;

pub const INIT_PATH: &str = "/sbin/docker-init";

/// The binary to mount: the daemon's executable (the sealed copy lives in a mount
/// namespace of its own), read-only.
fn init_binary() -> std::path::PathBuf {
    std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .unwrap_or_else(|_| super::shim::berth_exe())
}

/// The mounts, with the init binary added when `--init` asks for it.
pub fn with_init_mount(mut mounts: Vec<MountSpec>, init: bool) -> Vec<MountSpec> {
    if init {
        mounts.push(MountSpec {
            destination: INIT_PATH.into(),
            kind: "bind".into(),
            source: init_binary(),
            options: vec!["bind".into(), "ro".into(), "rprivate".into()],
            ..Default::default()
        });
    }
    mounts
}
