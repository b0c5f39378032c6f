//! Devices added to a container: `--device HOST[:CONTAINER[:PERMS]]` (moby
//! `oci.DevicesFromPath`) and, with `--privileged`, every device of the host (runc
//! `devices.HostDevices`). The daemon gathers them from the host when the container
//! starts; the init creates each node in the container's `/dev` and the device cgroup
//! allows it.

use serde::{Deserialize, Serialize};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One device node to create in the container.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct DeviceSpec {
    /// Absolute path inside the container.
    pub path: String,
    /// The host node it copies (bind-mounted instead where mknod is not allowed, as in a
    /// user namespace).
    pub host_path: PathBuf,
    /// `c` (character) or `b` (block).
    pub kind: String,
    pub major: u64,
    pub minor: u64,
    /// Permission bits of the host node (`0o660`).
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Device cgroup access: a subset of `rwm`.
    pub permissions: String,
}

impl DeviceSpec {
    /// The v1 `devices.allow` line for this device (`c 10:229 rwm`).
    pub fn cgroup_rule(&self) -> String {
        format!(
            "{} {}:{} {}",
            self.kind, self.major, self.minor, self.permissions
        )
    }
}

/// True when `perms` is a valid device cgroup permission string (`r`, `rw`, `rwm`, …).
pub fn valid_permissions(perms: &str) -> bool {
    !perms.is_empty()
        && perms.len() <= 3
        && perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && !perms
            .chars()
            .enumerate()
            .any(|(i, c)| perms[..i].contains(c))
}

/// True when `rule` is a device cgroup rule as moby accepts it
/// (`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`).
pub fn valid_cgroup_rule(rule: &str) -> bool {
    let parts: Vec<&str> = rule.split(' ').collect();
    let [kind, nums, perms] = parts[..] else {
        return false;
    };
    let num = |s: &str| s == "*" || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    matches!(kind, "a" | "b" | "c")
        && nums.split_once(':').is_some_and(|(a, b)| num(a) && num(b))
        && !perms.is_empty()
        && perms.len() <= 3
        && perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

/// Why a path is not a device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("not a device node")]
    NotADevice,
    #[error("{}", nix::errno::Errno::from_raw(.0.raw_os_error().unwrap_or(libc::EIO)).desc().to_lowercase())]
    Io(std::io::Error),
}

/// The device at `host` (not following a final symlink), `None`-free: a fifo, file or
/// directory is [`DeviceError::NotADevice`].
pub fn from_path(host: &Path, perms: &str) -> Result<DeviceSpec, DeviceError> {
    let md = std::fs::symlink_metadata(host).map_err(DeviceError::Io)?;
    let ft = md.file_type();
    let kind = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return Err(DeviceError::NotADevice);
    };
    let rdev = md.rdev();
    Ok(DeviceSpec {
        path: host.display().to_string(),
        host_path: host.to_path_buf(),
        kind: kind.into(),
        major: nix::sys::stat::major(rdev),
        minor: nix::sys::stat::minor(rdev),
        file_mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        permissions: perms.into(),
    })
}

/// `--device HOST:CONTAINER:PERMS`: the node at `host` (a symlink is followed), or every
/// node under the directory `host`, placed at `container` (moby `DevicesFromPath`).
/// Errors in Docker's words.
pub fn from_mapping(host: &str, container: &str, perms: &str) -> Result<Vec<DeviceSpec>, String> {
    let mut resolved = PathBuf::from(host);
    if std::fs::symlink_metadata(host).is_ok_and(|m| m.file_type().is_symlink()) {
        if let Ok(p) = std::fs::canonicalize(host) {
            resolved = p;
        }
    }
    let err = match from_path(&resolved, perms) {
        Ok(mut d) => {
            d.path = container.to_string();
            return Ok(vec![d]);
        }
        Err(e) => e,
    };
    let mut out = Vec::new();
    if matches!(err, DeviceError::NotADevice) && resolved.is_dir() {
        walk(&resolved, &mut |p| {
            if let Ok(mut d) = from_path(p, perms) {
                let rel = p.strip_prefix(&resolved).unwrap_or(p);
                d.path = Path::new(container).join(rel).display().to_string();
                out.push(d);
            }
        });
    }
    if out.is_empty() {
        return Err(format!(
            "error gathering device information while adding custom device {host:?}: {err}"
        ));
    }
    Ok(out)
}

/// Every entry under `dir` (depth first, sorted, symlinks not followed).
fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        f(&p);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            walk(&p, f);
        }
    }
}

/// The host's devices under `/dev` for `--privileged` (runc `HostDevices`): without
/// `pts`, `shm`, `fd`, `mqueue`, `.lxc`, `.lxd-mounts`, `.udev` and `/dev/console`.
pub fn host_devices() -> Vec<DeviceSpec> {
    let mut out = Vec::new();
    host_devices_in(Path::new("/dev"), &mut out);
    out
}

fn host_devices_in(dir: &Path, out: &mut Vec<DeviceSpec>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.is_dir() {
            if !matches!(
                name.as_str(),
                "pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev"
            ) {
                host_devices_in(&p, out);
            }
            continue;
        }
        if name == "console" && dir == Path::new("/dev") {
            continue;
        }
        if let Ok(d) = from_path(&p, "rwm") {
            out.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_and_rules_as_docker_checks_them() {
        for ok in ["r", "rw", "rwm", "mr", "w"] {
            assert!(valid_permissions(ok), "{ok}");
        }
        for bad in ["", "rwx", "rr", "rwmr", "x"] {
            assert!(!valid_permissions(bad), "{bad}");
        }
        for ok in ["c 1:3 rwm", "b *:* m", "a *:* rwm", "c 10:229 r"] {
            assert!(valid_cgroup_rule(ok), "{ok}");
        }
        for bad in [
            "bogus",
            "c 1:3",
            "x 1:3 rwm",
            "c 1 rwm",
            "c a:3 rwm",
            "c 1:3 rwx",
        ] {
            assert!(!valid_cgroup_rule(bad), "{bad}");
        }
    }

    #[test]
    fn a_host_node_becomes_a_device_with_its_numbers() {
        let d = from_mapping("/dev/null", "/dev/mynull", "rw").unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].kind.as_str(), d[0].major, d[0].minor), ("c", 1, 3));
        assert_eq!(d[0].path, "/dev/mynull");
        assert_eq!(d[0].host_path, Path::new("/dev/null"));
        assert_eq!(d[0].cgroup_rule(), "c 1:3 rw");
    }

    #[test]
    fn missing_paths_and_plain_files_in_dockers_words() {
        assert_eq!(
            from_mapping("/nonexistent", "/nonexistent", "rwm").unwrap_err(),
            "error gathering device information while adding custom device \"/nonexistent\": no such file or directory"
        );
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("file");
        std::fs::write(&f, "x").unwrap();
        let f = f.display().to_string();
        assert_eq!(
            from_mapping(&f, "/dev/x", "rwm").unwrap_err(),
            format!(
                "error gathering device information while adding custom device {f:?}: not a device node"
            )
        );
        // an empty directory holds no device either
        let e = d.path().display().to_string();
        std::fs::remove_file(d.path().join("file")).unwrap();
        assert!(from_mapping(&e, "/dev/x", "rwm")
            .unwrap_err()
            .ends_with(": not a device node"));
    }

    #[test]
    fn host_devices_skip_console_and_pseudo_dirs() {
        let all = host_devices();
        assert!(all.iter().any(|d| d.path == "/dev/null"));
        assert!(!all
            .iter()
            .any(|d| d.path == "/dev/console" || d.path.starts_with("/dev/pts/")));
    }
}
