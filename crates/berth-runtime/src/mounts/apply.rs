//! Carrying a mount plan out: each target created and resolved inside the rootfs as it is
//! mounted, the rootfs itself, and the masked and read-only paths.

use crate::defaults::{MASKED_PATHS, READONLY_PATHS};
use crate::error::{Result, RuntimeError};
use crate::securejoin::resolve_in_root;
use crate::spec::ContainerSpec;
use nix::mount::MsFlags;
use std::os::fd::RawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{overlay_options, parse_options, MountOp, TargetKind};
use crate::syscall::Syscall;

pub(crate) fn create_target(path: &Path, kind: TargetKind) -> Result<()> {
    match kind {
        TargetKind::Dir => std::fs::create_dir_all(path)
            .map_err(|e| RuntimeError::io("creating mount point", path, e)),
        TargetKind::File => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| RuntimeError::io("creating mount point", parent, e))?;
            }
            if path.symlink_metadata().is_err() {
                std::fs::File::create(path)
                    .map_err(|e| RuntimeError::io("creating mount point", path, e))?;
            }
            Ok(())
        }
    }
}

/// Carries out `ops` inside `rootfs` (a host path, before `pivot_root`).
pub fn execute(sys: &dyn Syscall, rootfs: &Path, ops: &[MountOp]) -> Result<()> {
    for op in ops {
        match op {
            MountOp::Mount {
                source,
                destination,
                fstype,
                flags,
                data,
                kind,
                remount,
                propagation,
            } => {
                let target = resolve_in_root(rootfs, destination)?;
                create_target(&target, *kind)?;
                let data = (!data.is_empty()).then_some(data.as_str());
                sys.mount(source.as_deref(), &target, fstype.as_deref(), *flags, data)?;
                if let Some(r) = remount {
                    sys.mount(None, &target, None, *r, None)?;
                }
                if let Some(p) = propagation {
                    sys.mount(None, &target, None, *p, None)?;
                }
            }
            MountOp::Symlink { target, link } => {
                let (parent, name) = match link.rsplit_once('/') {
                    Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
                    None => ("/", link.as_str()),
                };
                let dir = resolve_in_root(rootfs, parent)?;
                std::fs::create_dir_all(&dir).map_err(|e| RuntimeError::io("mkdir", &dir, e))?;
                let path = dir.join(name);
                let _ = std::fs::remove_file(&path);
                std::os::unix::fs::symlink(target, &path)
                    .map_err(|e| RuntimeError::io("symlink", &path, e))?;
            }
            MountOp::Remount { destination, flags } => {
                let target = resolve_in_root(rootfs, destination)?;
                sys.mount(None, &target, None, *flags, None)?;
            }
            MountOp::Foreign {
                mnt_ns,
                source,
                destination,
            } => {
                let target = resolve_in_root(rootfs, destination)?;
                create_target(&target, TargetKind::Dir)?;
                sys.attach_foreign_tree(mnt_ns, source, &target)?;
            }
            MountOp::Device(d) => crate::devices::make_device(sys, rootfs, d)?,
            MountOp::Image {
                layers,
                subpath,
                destination,
            } => {
                let target = resolve_in_root(rootfs, destination)?;
                create_target(&target, TargetKind::Dir)?;
                crate::image_volume::mount(sys, layers, subpath, &target)?;
            }
        }
    }
    Ok(())
}

/// Whether a bind of the spec propagates both ways (`rshared`/`shared`).
pub fn has_shared_bind(spec: &ContainerSpec) -> bool {
    spec.mounts.iter().any(|m| {
        m.kind == "bind"
            && parse_options(&m.options)
                .propagation
                .is_some_and(|p| p.contains(MsFlags::MS_SHARED))
    })
}

/// Makes private the mount that holds `path` (runc's rootfsParentMountPrivate): the
/// directories up from `path` are tried until one is a mount point (the others give
/// EINVAL, or ENOENT for a rootfs not made yet).
pub fn make_parent_private(sys: &dyn Syscall, path: &Path) -> Result<()> {
    let mut dir = path;
    loop {
        match sys.mount(None, dir, None, MsFlags::MS_PRIVATE, None) {
            Ok(()) => return Ok(()),
            Err(RuntimeError::Sys {
                errno: nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT,
                ..
            }) => match dir.parent() {
                Some(up) => dir = up,
                None => {
                    return Err(RuntimeError::Internal(format!(
                        "no mount point holds {}",
                        path.display()
                    )))
                }
            },
            Err(e) => return Err(e),
        }
    }
}

/// The overlay (or, without image layers, a bind of `upper_dir`) at `spec.rootfs`; with a
/// user namespace, `tree`: the one the shim made of idmapped layers (a detached mount).
pub fn mount_rootfs(sys: &dyn Syscall, spec: &ContainerSpec, tree: Option<RawFd>) -> Result<()> {
    if let Some(tree) = tree {
        // (the shim made the directory: the remapped root may not)
        return sys.attach_detached(tree, &spec.rootfs);
    }
    std::fs::create_dir_all(&spec.rootfs)
        .map_err(|e| RuntimeError::io("creating rootfs", &spec.rootfs, e))?;
    if spec.lower_dirs.is_empty() {
        sys.mount(
            Some(&spec.upper_dir),
            &spec.rootfs,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
    } else {
        let data = overlay_options(&spec.lower_dirs, &spec.upper_dir, &spec.work_dir);
        sys.mount(
            Some(Path::new("overlay")),
            &spec.rootfs,
            Some("overlay"),
            MsFlags::empty(),
            Some(&data),
        )
    }
}

/// Paths to mask: Docker's list plus each CPU's `thermal_throttle` that exists.
pub fn masked_paths() -> Vec<String> {
    let mut v: Vec<String> = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
    if let Ok(rd) = std::fs::read_dir("/sys/devices/system/cpu") {
        let mut cpus: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.starts_with("cpu") && n[3..].chars().all(|c| c.is_ascii_digit()) && n.len() > 3
            })
            .map(|n| format!("/sys/devices/system/cpu/{n}/thermal_throttle"))
            .filter(|p| Path::new(p).exists())
            .collect();
        cpus.sort();
        v.extend(cpus);
    }
    v
}

/// After `pivot_root`: hides the masked paths (a verified `/dev/null` over files, an
/// empty read-only tmpfs over directories) and makes the read-only paths read-only.
pub fn mask_and_protect(sys: &dyn Syscall, masked: &[String], readonly: &[&str]) -> Result<()> {
    use std::os::fd::AsRawFd;
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_path()
        .open("/dev/null")
        .map_err(|e| RuntimeError::io("open", "/dev/null", e))?;
    let md = devnull
        .metadata()
        .map_err(|e| RuntimeError::io("stat", "/dev/null", e))?;
    if !md.file_type().is_char_device() || md.rdev() != nix::sys::stat::makedev(1, 3) {
        return Err(RuntimeError::Internal(
            "/dev/null in the container is not the char device 1:3; refusing to mask paths with it"
                .into(),
        ));
    }
    let devnull_fd = PathBuf::from(format!("/proc/self/fd/{}", devnull.as_raw_fd()));
    for p in masked {
        let path = Path::new(p);
        let Ok(md) = path.symlink_metadata() else {
            continue;
        };
        if md.is_dir() {
            sys.mount(
                Some(Path::new("tmpfs")),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )?;
        } else {
            sys.mount(Some(&devnull_fd), path, None, MsFlags::MS_BIND, None)?;
        }
    }
    for p in readonly {
        let path = Path::new(p);
        if path.symlink_metadata().is_err() {
            continue;
        }
        sys.mount(
            Some(path),
            path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        sys.mount(Some(path), path, None, flags, None)?;
    }
    Ok(())
}

/// Docker's read-only paths.
pub fn readonly_paths() -> &'static [&'static str] {
    READONLY_PATHS
}

trait OpenPath {
    fn custom_flags_path(&mut self) -> &mut Self;
}

impl OpenPath for std::fs::OpenOptions {
    /// O_PATH: the descriptor only names the file, it never opens the device.
    fn custom_flags_path(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_PATH | libc::O_CLOEXEC)
    }
}
