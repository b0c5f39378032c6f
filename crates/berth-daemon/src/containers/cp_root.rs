//! Entering a container's filesystem for `docker cp`, as moby's `chrootarchive`: a
//! short-lived thread whose root is the container's merged filesystem, so every path and
//! symlink (absolute or `..`) resolves inside the container and never reaches the host.
//! A running container is entered through `/proc/<init pid>/root`; a stopped one has its
//! overlay (and its volumes and binds) mounted in the thread's private mount namespace.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::archive::CpError;

/// How to reach a container's filesystem.
#[derive(Debug, Clone)]
pub enum RootAccess {
    /// The container runs: its init process's root.
    Running { pid: i64 },
    /// The container is stopped: its overlay layers, mounted privately at `mountpoint`
    /// (an empty host directory the caller created and removes).
    Stopped {
        upper: PathBuf,
        work: PathBuf,
        /// The image's layers, top first (none: `upper` alone is the root).
        lowers: Vec<PathBuf>,
        mountpoint: PathBuf,
        /// The container's volumes and binds, mounted over the rootfs as at start.
        binds: Vec<BindMount>,
        /// A container under `--userns-remap`: its image layers are mounted idmapped
        /// as at start, so that the whole tree holds host ids.
        idmap: Option<berth_runtime::userns::UserNamespace>,
    },
}

/// A volume or bind of a stopped container, mounted for `cp` as moby's `mountVolumes`.
#[derive(Debug, Clone)]
pub struct BindMount {
    /// The absolute path in the container.
    pub destination: String,
    /// The host path (a volume's `_data`, a bind's source).
    pub source: PathBuf,
    pub rw: bool,
}

/// One overlay of a stopped container at a time: overlayfs refuses a second mount
/// sharing a work directory.
static STOPPED_MOUNTS: Mutex<()> = Mutex::new(());

/// Runs `f` on a new thread whose root is the container's filesystem and returns its
/// result. `f` sees the container's paths as absolute paths.
pub fn in_container_root<T: Send>(
    access: &RootAccess,
    f: impl FnOnce() -> Result<T, CpError> + Send,
) -> Result<T, CpError> {
    let _guard = match access {
        RootAccess::Stopped { .. } => {
            Some(STOPPED_MOUNTS.lock().unwrap_or_else(|p| p.into_inner()))
        }
        RootAccess::Running { .. } => None,
    };
    std::thread::scope(|s| {
        s.spawn(|| match access {
            RootAccess::Running { pid } => {
                unshare(CloneFlags::CLONE_FS).map_err(|e| CpError::io("unshare", e))?;
                let root = format!("/proc/{pid}/root");
                nix::unistd::chroot(root.as_str()).map_err(|e| CpError::io("chroot", e))?;
                std::env::set_current_dir("/").map_err(|e| CpError::io("chdir", e))?;
                f()
            }
            RootAccess::Stopped {
                upper,
                work,
                lowers,
                mountpoint,
                binds,
                idmap,
            } => {
                unshare(CloneFlags::CLONE_NEWNS).map_err(|e| CpError::io("unshare", e))?;
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .map_err(|e| CpError::io("making mounts private", e))?;
                match idmap {
                    Some(ns) => mount_idmapped_layers(ns, upper, work, lowers, mountpoint)?,
                    None => mount_layers(upper, work, lowers, mountpoint)?,
                }
                for b in binds {
                    mount_bind(mountpoint, b)?;
                }
                let result = chrooted(mountpoint, f);
                let _ = umount2(mountpoint, MntFlags::MNT_DETACH);
                result
            }
        })
        .join()
        .map_err(|_| CpError::Failed("container filesystem task panicked".into()))?
    })
}

fn mount_layers(upper: &Path, work: &Path, lowers: &[PathBuf], at: &Path) -> Result<(), CpError> {
    let r = if lowers.is_empty() {
        mount(
            Some(upper),
            at,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
    } else {
        let data = berth_runtime::mounts::overlay_options(lowers, upper, work);
        mount(
            Some("overlay"),
            at,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
    };
    r.map_err(|e| CpError::io("mounting the container's filesystem", e))
}

/// The overlay of a remapped container's layers as its init sees it: idmapped through a
/// user namespace with its maps, held by a short-lived `sleep` for as long as it takes to
/// make the mounts.
fn mount_idmapped_layers(
    ns: &berth_runtime::userns::UserNamespace,
    upper: &Path,
    work: &Path,
    lowers: &[PathBuf],
    at: &Path,
) -> Result<(), CpError> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("60")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and makes one raw
    // syscall (unshare), which is async-signal-safe; it touches no lock or allocation.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                return Err(io_last());
            }
            Ok(())
        });
    }
    let mut holder = cmd
        .spawn()
        .map_err(|e| CpError::io("starting a user namespace holder", e))?;
    let pid = holder.id() as i32;
    let made = berth_runtime::userns::write_maps(pid, ns)
        .and_then(|_| {
            let ns = PathBuf::from(format!("/proc/{pid}/ns/user"));
            berth_runtime::userns::detached_rootfs(&ns, lowers, upper, work)
        })
        .and_then(|tree| berth_runtime::userns::attach(tree.as_raw_fd(), at));
    let _ = holder.kill();
    let _ = holder.wait();
    made.map_err(|e| CpError::io("mounting the container's filesystem", e))
}

fn io_last() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Bind-mounts `b` at its destination under `root` (resolved inside it), creating the
/// mount point (a directory, or an empty file for a file source) as the runtime does.
fn mount_bind(root: &Path, b: &BindMount) -> Result<(), CpError> {
    let target = berth_runtime::securejoin::resolve_in_root(root, &b.destination)
        .map_err(|e| CpError::io("resolving a mount point", e))?;
    let src_is_dir = fs::metadata(&b.source).map(|m| m.is_dir()).unwrap_or(true);
    if fs::symlink_metadata(&target).is_err() {
        let made = if src_is_dir {
            fs::create_dir_all(&target)
        } else {
            target
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|_| fs::File::create(&target).map(|_| ()))
        };
        made.map_err(|e| CpError::io(&format!("creating mount point {}", b.destination), e))?;
    }
    let err = |e| CpError::io(&format!("mounting {}", b.destination), e);
    mount(
        Some(&b.source),
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(err)?;
    if !b.rw {
        mount(
            None::<&str>,
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(err)?;
    }
    Ok(())
}

/// `chroot`s into `root`, runs `f`, then returns to the old root (so the caller can
/// unmount by its host path).
fn chrooted<T>(root: &Path, f: impl FnOnce() -> Result<T, CpError>) -> Result<T, CpError> {
    let old_root = fs::File::open("/").map_err(|e| CpError::io("opening /", e))?;
    nix::unistd::chroot(root).map_err(|e| CpError::io("chroot", e))?;
    std::env::set_current_dir("/").map_err(|e| CpError::io("chdir", e))?;
    let result = f();
    let back = nix::unistd::fchdir(&old_root)
        .and_then(|_| nix::unistd::chroot("."))
        .map_err(|e| CpError::io("leaving the container root", e));
    back?;
    result
}
