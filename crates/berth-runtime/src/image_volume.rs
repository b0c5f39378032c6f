//! Image volumes (CRI `Mount.image`, Docker's `--mount type=image`): an image's layers
//! mounted read-only into a container.

use crate::error::{Result, RuntimeError};
use crate::securejoin::resolve_in_root;
use crate::syscall::Syscall;
use nix::mount::{MntFlags, MsFlags};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The image volume: the image's layers as a read-only overlay (no upper layer: the
/// kernel refuses every write) at `target`, made inside the container's mount namespace
/// like the rootfs, so it goes with the container and never shows on the host. With a
/// `subpath`, that directory of the overlay (resolved inside it) replaces it: a detached
/// copy of the subdirectory is taken, the overlay unmounted, the copy attached.
pub(crate) fn mount(
    sys: &dyn Syscall,
    layers: &[PathBuf],
    subpath: &str,
    target: &Path,
) -> Result<()> {
    if layers.is_empty() {
        return Err(RuntimeError::Internal(format!(
            "image volume at {} has no layers",
            target.display()
        )));
    }
    let lower: Vec<String> = layers.iter().map(|p| p.display().to_string()).collect();
    sys.mount(
        Some(Path::new("overlay")),
        target,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(&format!("lowerdir={}", lower.join(":"))),
    )?;
    if subpath.is_empty() {
        return Ok(());
    }
    let dir = resolve_in_root(target, subpath)?;
    let tree = sys.clone_tree(&dir)?;
    sys.umount2(target, MntFlags::MNT_DETACH)?;
    sys.attach_detached(tree.as_raw_fd(), target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::fake::{Call, Recording};

    #[test]
    fn the_layers_are_a_read_only_overlay() {
        let k = Recording::default();
        let layers = vec![PathBuf::from("/l/top"), PathBuf::from("/l/base")];
        mount(&k, &layers, "", Path::new("/r/mnt")).unwrap();
        assert_eq!(
            k.calls(),
            [Call::Mount {
                source: Some("overlay".into()),
                target: "/r/mnt".into(),
                fstype: Some("overlay".into()),
                flags: MsFlags::MS_RDONLY,
                data: Some("lowerdir=/l/top:/l/base".into()),
            }]
        );
        assert!(mount(&k, &[], "", Path::new("/r/mnt")).is_err());
    }

    #[test]
    fn a_subpath_replaces_the_overlay_by_its_directory_resolved_inside_it() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("mnt");
        std::fs::create_dir_all(target.join("usr/etc")).unwrap();
        // a symlink to an absolute path stays inside the image
        std::os::unix::fs::symlink("/usr/etc", target.join("etc")).unwrap();
        let k = Recording::default();
        mount(&k, &[PathBuf::from("/l/one")], "etc", &target).unwrap();
        let calls = k.calls();
        assert!(matches!(&calls[0], Call::Mount { target: t, .. } if *t == target));
        assert_eq!(calls[1], Call::CloneTree(target.join("usr/etc")));
        assert_eq!(
            calls[2],
            Call::Umount2(target.clone(), MntFlags::MNT_DETACH)
        );
        assert_eq!(calls[3], Call::AttachDetached(target));
    }
}
