//! User namespaces (`--userns-remap`): the container's ids mapped onto a subordinate
//! range of the host, so that its root is an unprivileged host uid.
//!
//! Who does what, in order (the shim is host root, the init is its clone):
//! 1. the shim joins the network and IPC namespaces the container shares (owned by the
//!    host's user namespace, which the init could not `setns` into once inside its own),
//!    writes the network sysctls there, clones the init with `CLONE_NEWUSER` and the
//!    other namespaces (then owned by the new user namespace), and goes back home;
//! 2. the shim writes the init's `uid_map` and `gid_map` ([`write_maps`]);
//! 3. the shim builds the rootfs as a detached mount ([`detached_rootfs`]): each image
//!    layer is an idmapped mount (`open_tree` + `mount_setattr(MOUNT_ATTR_IDMAP)` with the
//!    init's user namespace), so a file owned by 0 in the shared layer store shows as the
//!    remapped root's; the overlay on top of them is made by host root (`fsopen`), so its
//!    `trusted.overlay.*` attributes (whiteouts, opaque directories) keep working; the fd
//!    goes to the init over a socket;
//! 4. the init becomes root of its namespace ([`become_root`]), attaches the rootfs
//!    (`move_mount`) and goes on as without a user namespace.

use crate::error::{Result, RuntimeError};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One line of `uid_map`/`gid_map`: `size` ids from `container_id` on are `host_id` on.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// The mappings of a remapped container (Docker's `IdentityMapping`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct UserNamespace {
    pub uid_map: Vec<IdMapping>,
    pub gid_map: Vec<IdMapping>,
}

fn to_host(map: &[IdMapping], id: u32) -> Option<u32> {
    map.iter().find_map(|m| {
        (id >= m.container_id && id - m.container_id < m.size)
            .then(|| m.host_id + (id - m.container_id))
    })
}

impl UserNamespace {
    /// The host uid of container uid `id` (None: not mapped).
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        to_host(&self.uid_map, id)
    }
    pub fn host_gid(&self, id: u32) -> Option<u32> {
        to_host(&self.gid_map, id)
    }
    /// The remapped root: the host ids that container root is.
    pub fn root(&self) -> (u32, u32) {
        (self.host_uid(0).unwrap_or(0), self.host_gid(0).unwrap_or(0))
    }
}

/// The text of a `uid_map`/`gid_map` file.
pub fn map_text(map: &[IdMapping]) -> String {
    map.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// Writes the maps of the process `pid` (a fresh user namespace; host root may write any
/// range, and `setgroups` stays allowed).
pub fn write_maps(pid: i32, ns: &UserNamespace) -> Result<()> {
    for (file, map) in [("uid_map", &ns.uid_map), ("gid_map", &ns.gid_map)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, map_text(map))
            .map_err(|e| RuntimeError::io("writing the user namespace map", &path, e))?;
    }
    Ok(())
}

/// In the init of a container that shares another's PID namespace: that container's user
/// namespace, then its own other namespaces, owned by it (a clone could only have made
/// them owned by the host's).
pub fn join(path: &Path, own: nix::sched::CloneFlags) -> Result<()> {
    use std::os::fd::AsFd;
    let f = std::fs::File::open(path)
        .map_err(|e| RuntimeError::io("opening a user namespace to join", path, e))?;
    nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(|e| RuntimeError::sys(format!("joining user namespace {}", path.display()), e))?;
    become_root()?;
    nix::sched::unshare(own).map_err(|e| RuntimeError::sys(format!("unshare({own:?})"), e))
}

/// In the init, once its maps are written: uid and gid 0 of its namespace (it was still
/// host root, an id the namespace does not map), no supplementary groups. The
/// capabilities stay: the namespace's creator holds all of them inside it.
pub fn become_root() -> Result<()> {
    let zero_g = nix::unistd::Gid::from_raw(0);
    let zero_u = nix::unistd::Uid::from_raw(0);
    nix::unistd::setgroups(&[])
        .map_err(|e| RuntimeError::sys("setgroups in the user namespace", e))?;
    nix::unistd::setresgid(zero_g, zero_g, zero_g)
        .map_err(|e| RuntimeError::sys("setresgid(0) in the user namespace", e))?;
    nix::unistd::setresuid(zero_u, zero_u, zero_u)
        .map_err(|e| RuntimeError::sys("setresuid(0) in the user namespace", e))?;
    // A credential change makes the process dumpable again.
    nix::sys::prctl::set_dumpable(false).map_err(|e| RuntimeError::sys("prctl(PR_SET_DUMPABLE)", e))
}

// The new mount API's constants (linux/mount.h); stable kernel ABI.
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| {
        RuntimeError::sys(
            format!("path {} has a NUL byte", p.display()),
            Errno::EINVAL,
        )
    })
}

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| RuntimeError::sys(format!("{s:?} has a NUL byte"), Errno::EINVAL))
}

/// Wraps a raw syscall result that is a new fd.
fn new_fd(ret: libc::c_long, what: impl FnOnce() -> String) -> Result<OwnedFd> {
    if ret < 0 {
        return Err(RuntimeError::sys(what(), Errno::last()));
    }
    // SAFETY: a non-negative result of these syscalls is a new fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// A detached copy of the mount tree at `path` (`open_tree(OPEN_TREE_CLONE)`).
fn clone_tree(path: &Path, recursive: bool) -> Result<OwnedFd> {
    let c = cpath(path)?;
    let mut flags = (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: open_tree takes a dirfd, a NUL-terminated path valid for the call and flags.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    new_fd(r, || format!("open_tree of {}", path.display()))
}

/// A detached mount of `dir` whose ids are shifted by the user namespace `userns`.
fn idmapped(dir: &Path, userns: &OwnedFd) -> Result<OwnedFd> {
    let tree = clone_tree(dir, false)?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: mount_setattr reads `size_of::<MountAttr>()` bytes of `attr`, which lives
    // through the call; the path is empty (AT_EMPTY_PATH) and NUL-terminated.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        let errno = Errno::last();
        return Err(RuntimeError::sys(
            format!(
                "idmapped mount of layer {} (mount_setattr MOUNT_ATTR_IDMAP; the kernel or the filesystem may not support idmapped mounts)",
                dir.display()
            ),
            errno,
        ));
    }
    Ok(tree)
}

fn fsconfig_string(fs: &OwnedFd, key: &str, value: &str) -> Result<()> {
    let (k, v) = (cstr(key)?, cstr(value)?);
    // SAFETY: fsconfig reads the NUL-terminated key and value, valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            k.as_ptr(),
            v.as_ptr(),
            0,
        )
    };
    Errno::result(r)
        .map(drop)
        .map_err(|e| RuntimeError::sys(format!("overlay option {key}={value}"), e))
}

/// The container's rootfs as a detached mount for the user namespace at `ns_path`
/// (`/proc/<pid>/ns/user`): the overlay of image layers idmapped through it under
/// `upper`, or (no layers) `upper` alone.
pub fn detached_rootfs(
    ns_path: &Path,
    lower: &[std::path::PathBuf],
    upper: &Path,
    work: &Path,
) -> Result<OwnedFd> {
    if lower.is_empty() {
        return clone_tree(upper, true);
    }
    let userns: OwnedFd = std::fs::File::open(ns_path)
        .map_err(|e| RuntimeError::io("opening the container's user namespace", ns_path, e))?
        .into();
    let layers = lower
        .iter()
        .map(|d| idmapped(d, &userns))
        .collect::<Result<Vec<OwnedFd>>>()?;
    let fstype = c"overlay";
    // SAFETY: fsopen takes a NUL-terminated filesystem name valid for the call and flags.
    let r = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    let fs = new_fd(r, || "fsopen(overlay)".into())?;
    // The layers by fd, through /proc/self/fd (short, and each resolves to its detached
    // idmapped mount).
    let lowerdir = layers
        .iter()
        .map(|l| format!("/proc/self/fd/{}", l.as_raw_fd()))
        .collect::<Vec<_>>()
        .join(":");
    fsconfig_string(&fs, "lowerdir", &lowerdir)?;
    fsconfig_string(&fs, "upperdir", &upper.display().to_string())?;
    fsconfig_string(&fs, "workdir", &work.display().to_string())?;
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value (null pointers are what it expects).
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(r).map_err(|e| {
        RuntimeError::sys(
            format!(
                "creating the overlay of idmapped layers (lowerdir={}, upperdir={})",
                lower
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
                upper.display()
            ),
            e,
        )
    })?;
    // SAFETY: fsmount takes the configured fs context fd and flags; no memory is passed.
    let r = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    new_fd(r, || "fsmount of the overlay".into())
}

/// Attaches the detached mount `tree` at `target` (`move_mount`).
pub fn attach(tree: RawFd, target: &Path) -> Result<()> {
    let dst = cpath(target)?;
    let empty = c"";
    // SAFETY: move_mount takes the detached tree's fd with an empty path
    // (MOVE_MOUNT_F_EMPTY_PATH) and a NUL-terminated target valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            empty.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH as libc::c_uint,
        )
    };
    Errno::result(r).map(drop).map_err(|e| {
        RuntimeError::sys(
            format!("move_mount of the rootfs to {}", target.display()),
            e,
        )
    })
}

/// Namespaces the shim joined for a clone, and its own to go back to.
pub type Joined = Vec<(std::fs::File, nix::sched::CloneFlags)>;

/// Puts the shim in the network and IPC namespaces the container joins (so that a clone
/// made next starts in them); [`restore`] takes it back to its own.
pub fn enter_joined(net: Option<&Path>, ipc: Option<&Path>, uts: Option<&Path>) -> Result<Joined> {
    use nix::sched::CloneFlags;
    use std::os::fd::AsFd;
    let open = |p: &Path| {
        std::fs::File::open(p).map_err(|e| RuntimeError::io("opening a namespace to join", p, e))
    };
    let mut back = Vec::new();
    for (path, own, flag, what) in [
        (
            net,
            "/proc/self/ns/net",
            CloneFlags::CLONE_NEWNET,
            "network",
        ),
        (ipc, "/proc/self/ns/ipc", CloneFlags::CLONE_NEWIPC, "IPC"),
        (uts, "/proc/self/ns/uts", CloneFlags::CLONE_NEWUTS, "UTS"),
    ] {
        let Some(path) = path else { continue };
        let joined = open(Path::new(own)).and_then(|home| {
            let target = open(path)?;
            nix::sched::setns(target.as_fd(), flag).map_err(|e| {
                RuntimeError::sys(format!("joining {what} namespace {}", path.display()), e)
            })?;
            Ok(home)
        });
        match joined {
            Ok(home) => back.push((home, flag)),
            Err(e) => {
                restore(&back);
                return Err(e);
            }
        }
    }
    Ok(back)
}

/// Back to the shim's own namespaces after [`enter_joined`].
pub fn restore(back: &Joined) {
    use std::os::fd::AsFd;
    for (home, flag) in back.iter().rev() {
        if let Err(e) = nix::sched::setns(home.as_fd(), *flag) {
            // The shim cannot go on in a container's namespace.
            eprintln!("berth shim: returning to its own namespace ({flag:?}): {e}");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> UserNamespace {
        UserNamespace {
            uid_map: vec![
                IdMapping {
                    container_id: 0,
                    host_id: 200000,
                    size: 1000,
                },
                IdMapping {
                    container_id: 1000,
                    host_id: 300000,
                    size: 65536,
                },
            ],
            gid_map: vec![IdMapping {
                container_id: 0,
                host_id: 400000,
                size: 65536,
            }],
        }
    }

    #[test]
    fn ids_map_through_every_range() {
        let n = ns();
        assert_eq!(n.root(), (200000, 400000));
        assert_eq!(n.host_uid(999), Some(200999));
        assert_eq!(n.host_uid(1000), Some(300000));
        assert_eq!(n.host_uid(66536), None);
        assert_eq!(n.host_gid(65535), Some(465535));
        assert_eq!(n.host_gid(65536), None);
        assert_eq!(map_text(&n.uid_map), "0 200000 1000\n1000 300000 65536\n");
    }
}
