//! The kernel calls the container's set-up makes: mounts, the switch of root,
//! namespaces, names, ids and capabilities. They sit behind one trait so that the init
//! sequence runs against a recording fake in unit tests (youki's `Syscall`), and
//! [`Kernel`] is the only place that calls them for real.

use crate::capabilities;
use crate::error::{Result, RuntimeError};
use caps::CapsHashSet;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

pub trait Syscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()>;
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()>;
    fn chdir(&self, path: &Path) -> Result<()>;
    /// Changes to the directory `dir` is open on (the old root after `pivot_root`).
    fn fchdir(&self, dir: BorrowedFd<'_>) -> Result<()>;
    fn unshare(&self, flags: CloneFlags) -> Result<()>;
    /// Joins the namespace `ns` (an nsfs file) of type `flags`.
    fn setns(&self, ns: BorrowedFd<'_>, flags: CloneFlags) -> Result<()>;
    /// Attaches at `target` a copy of the mount at `source` as the mount namespace
    /// `mnt_ns` sees it (another container's `/dev/shm`): a bind mount cannot cross mount
    /// namespaces, so the copy is made inside `mnt_ns` (`open_tree(OPEN_TREE_CLONE)`) and
    /// moved here (`move_mount`). Only for a single-threaded process (`setns` of a mount
    /// namespace).
    fn attach_foreign_tree(&self, mnt_ns: &Path, source: &Path, target: &Path) -> Result<()>;
    /// A detached copy of the mount at `source` (`open_tree(OPEN_TREE_CLONE)`; a
    /// directory below a mount's root gives a copy rooted there, as a bind would).
    fn clone_tree(&self, source: &Path) -> Result<std::os::fd::OwnedFd>;
    /// Attaches the detached mount `tree` (an fd from `open_tree`/`fsmount`) at `target`.
    fn attach_detached(&self, tree: std::os::fd::RawFd, target: &Path) -> Result<()>;
    /// Brings `lo` up in the current network namespace.
    fn loopback_up(&self) -> Result<()>;
    fn sethostname(&self, name: &str) -> Result<()>;
    fn setdomainname(&self, name: &str) -> Result<()>;
    /// Drops every capability outside `keep` from the bounding set (still root).
    fn limit_bounding(&self, keep: &CapsHashSet) -> Result<()>;
    /// Supplementary groups, gid, uid, keeping the permitted capabilities across the
    /// change; the process stays non-dumpable.
    fn set_ids(&self, uid: u32, gid: u32, groups: &[u32]) -> Result<()>;
    /// Permitted and effective to `caps`; inheritable and ambient cleared.
    fn set_capabilities(&self, caps: &CapsHashSet) -> Result<()>;
    /// Creates the device node `dev` at `path` with its mode and owner.
    fn mknod(&self, path: &Path, dev: &crate::devices::DeviceSpec) -> Result<()>;
}

/// The real kernel.
pub struct Kernel;

fn sys(what: &str) -> impl FnOnce(Errno) -> RuntimeError + '_ {
    move |e| RuntimeError::sys(what, e)
}

impl Syscall for Kernel {
    fn mknod(&self, path: &Path, dev: &crate::devices::DeviceSpec) -> Result<()> {
        use nix::sys::stat::{makedev, Mode, SFlag};
        let kind = if dev.kind == "b" {
            SFlag::S_IFBLK
        } else {
            SFlag::S_IFCHR
        };
        let what = || {
            format!(
                "creating device {} ({} {}:{})",
                path.display(),
                dev.kind,
                dev.major,
                dev.minor
            )
        };
        let mode = Mode::from_bits_truncate(dev.file_mode);
        nix::sys::stat::mknod(path, kind, mode, makedev(dev.major, dev.minor))
            .map_err(|e| RuntimeError::sys(what(), e))?;
        // the umask may have cut bits off the mode
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            path,
            mode,
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| RuntimeError::sys(what(), e))?;
        nix::unistd::chown(
            path,
            Some(Uid::from_raw(dev.uid)),
            Some(Gid::from_raw(dev.gid)),
        )
        .map_err(|e| RuntimeError::sys(what(), e))
    }

    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        nix::mount::mount(source, target, fstype, flags, data).map_err(|errno| {
            let mut msg = format!(
                "mount `{}` to `{}`",
                source
                    .map(|s| s.display().to_string())
                    .unwrap_or_else(|| fstype.unwrap_or("none").to_string()),
                target.display()
            );
            if let Some(t) = fstype {
                msg.push_str(&format!(" (type {t}"));
                if let Some(d) = data.filter(|d| !d.is_empty()) {
                    msg.push_str(&format!(", options {d}"));
                }
                msg.push(')');
            }
            if let Some(why) = crate::mounts::diagnose(source, target, fstype, data, errno) {
                msg.push_str(&format!(": {why}"));
            }
            RuntimeError::sys(msg, errno)
        })
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<()> {
        nix::mount::umount2(target, flags)
            .map_err(|e| RuntimeError::sys(format!("unmounting {}", target.display()), e))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        nix::unistd::pivot_root(new_root, put_old).map_err(sys("pivot_root"))
    }

    fn chdir(&self, path: &Path) -> Result<()> {
        nix::unistd::chdir(path)
            .map_err(|e| RuntimeError::sys(format!("chdir to {}", path.display()), e))
    }

    fn fchdir(&self, dir: BorrowedFd<'_>) -> Result<()> {
        nix::unistd::fchdir(dir).map_err(|e| RuntimeError::sys("fchdir", e))
    }

    fn unshare(&self, flags: CloneFlags) -> Result<()> {
        nix::sched::unshare(flags).map_err(|e| RuntimeError::sys(format!("unshare({flags:?})"), e))
    }

    fn setns(&self, ns: BorrowedFd<'_>, flags: CloneFlags) -> Result<()> {
        nix::sched::setns(ns, flags).map_err(|e| RuntimeError::sys(format!("setns({flags:?})"), e))
    }

    fn attach_foreign_tree(&self, mnt_ns: &Path, source: &Path, target: &Path) -> Result<()> {
        use std::ffi::CString;
        use std::os::fd::{AsFd, FromRawFd, OwnedFd};
        use std::os::unix::ffi::OsStrExt;
        let open = |p: &Path| {
            std::fs::File::open(p).map_err(|e| RuntimeError::io("opening a mount namespace", p, e))
        };
        let cstr = |p: &Path| {
            CString::new(p.as_os_str().as_bytes()).map_err(|_| {
                RuntimeError::sys(
                    format!("path {} has a NUL byte", p.display()),
                    Errno::EINVAL,
                )
            })
        };
        let (src, dst) = (cstr(source)?, cstr(target)?);
        let own = open(Path::new("/proc/self/ns/mnt"))?;
        let foreign = open(mnt_ns)?;
        self.setns(foreign.as_fd(), CloneFlags::CLONE_NEWNS)?;
        // SAFETY: open_tree takes a dirfd, a NUL-terminated path that outlives the call,
        // and flags; it returns a new fd or -1.
        let tree = unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                src.as_ptr(),
                (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint,
            )
        };
        let tree_errno = Errno::last();
        // back home first, whatever open_tree did
        self.setns(own.as_fd(), CloneFlags::CLONE_NEWNS)?;
        if tree < 0 {
            return Err(RuntimeError::sys(
                format!("open_tree of {} in {}", source.display(), mnt_ns.display()),
                tree_errno,
            ));
        }
        // SAFETY: open_tree returned a new fd that nothing else owns.
        let tree = unsafe { OwnedFd::from_raw_fd(tree as libc::c_int) };
        let empty = c"";
        // SAFETY: move_mount takes the detached tree's fd with an empty path
        // (MOVE_MOUNT_F_EMPTY_PATH) and a NUL-terminated target valid for the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                dst.as_ptr(),
                libc::MOVE_MOUNT_F_EMPTY_PATH as libc::c_uint,
            )
        };
        Errno::result(r)
            .map(drop)
            .map_err(|e| RuntimeError::sys(format!("move_mount to {}", target.display()), e))
    }

    fn clone_tree(&self, source: &Path) -> Result<std::os::fd::OwnedFd> {
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::ffi::OsStrExt;
        let src = std::ffi::CString::new(source.as_os_str().as_bytes()).map_err(|_| {
            RuntimeError::sys(
                format!("path {} has a NUL byte", source.display()),
                Errno::EINVAL,
            )
        })?;
        // SAFETY: open_tree takes a dirfd, a NUL-terminated path that outlives the call,
        // and flags; it returns a new fd or -1.
        let tree = unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                src.as_ptr(),
                (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint,
            )
        };
        if tree < 0 {
            return Err(RuntimeError::sys(
                format!("open_tree of {}", source.display()),
                Errno::last(),
            ));
        }
        // SAFETY: open_tree returned a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(tree as libc::c_int) })
    }

    fn attach_detached(&self, tree: std::os::fd::RawFd, target: &Path) -> Result<()> {
        crate::userns::attach(tree, target)
    }

    /// `ioctl(SIOCGIFFLAGS)` then `SIOCSIFFLAGS` with IFF_UP|IFF_RUNNING on `lo`.
    fn loopback_up(&self) -> Result<()> {
        let sock = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(sys("socket for bringing up lo"))?;
        // SAFETY: `ifreq` is a plain C struct for which all-zero bytes is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS reads and writes one `ifreq`, which `ifr` is, through a
        // pointer valid for the call; `sock` is an open socket.
        let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) };
        Errno::result(r).map_err(sys("SIOCGIFFLAGS on lo"))?;
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        unsafe { ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
        // SAFETY: SIOCSIFFLAGS reads one `ifreq` through a pointer valid for the call.
        let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &ifr) };
        Errno::result(r).map_err(sys("bringing up lo (SIOCSIFFLAGS)"))?;
        Ok(())
    }

    fn sethostname(&self, name: &str) -> Result<()> {
        nix::unistd::sethostname(name).map_err(sys("sethostname"))
    }

    fn setdomainname(&self, name: &str) -> Result<()> {
        // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call;
        // the kernel copies them and needs no NUL terminator. nix has no wrapper.
        let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
        Errno::result(r).map(drop).map_err(sys("setdomainname"))
    }

    fn limit_bounding(&self, keep: &CapsHashSet) -> Result<()> {
        capabilities::limit_bounding(keep)
    }

    fn set_ids(&self, uid: u32, gid: u32, groups: &[u32]) -> Result<()> {
        nix::sys::prctl::set_keepcaps(true).map_err(sys("prctl(PR_SET_KEEPCAPS)"))?;
        let gids: Vec<Gid> = groups.iter().copied().map(Gid::from_raw).collect();
        nix::unistd::setgroups(&gids)
            .map_err(|e| RuntimeError::sys(format!("setgroups {groups:?}"), e))?;
        let g = Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g)
            .map_err(|e| RuntimeError::sys(format!("setgid {gid}"), e))?;
        let u = Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u)
            .map_err(|e| RuntimeError::sys(format!("setuid {uid}"), e))?;
        nix::sys::prctl::set_keepcaps(false).map_err(sys("prctl(PR_SET_KEEPCAPS)"))?;
        // A uid change makes the process dumpable again; keep it off until exec.
        nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE)"))
    }

    fn set_capabilities(&self, caps: &CapsHashSet) -> Result<()> {
        capabilities::apply(caps)
    }
}

/// A [`Syscall`] that records every call and does nothing, for unit tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::cell::RefCell;
    use std::path::PathBuf;

    #[derive(Debug, Clone, PartialEq)]
    pub(crate) enum Call {
        Mount {
            source: Option<PathBuf>,
            target: PathBuf,
            fstype: Option<String>,
            flags: MsFlags,
            data: Option<String>,
        },
        Umount2(PathBuf, MntFlags),
        PivotRoot(PathBuf, PathBuf),
        Chdir(PathBuf),
        Fchdir,
        Unshare(CloneFlags),
        Setns(CloneFlags),
        AttachForeignTree {
            mnt_ns: PathBuf,
            source: PathBuf,
            target: PathBuf,
        },
        AttachDetached(PathBuf),
        CloneTree(PathBuf),
        LoopbackUp,
        Sethostname(String),
        Setdomainname(String),
        /// The capability mask kept.
        LimitBounding(u64),
        SetIds {
            uid: u32,
            gid: u32,
            groups: Vec<u32>,
        },
        SetCapabilities(u64),
        Mknod(PathBuf, String),
    }

    #[derive(Default)]
    pub(crate) struct Recording(RefCell<Vec<Call>>);

    pub(crate) type MountCall = (
        Option<PathBuf>,
        PathBuf,
        Option<String>,
        MsFlags,
        Option<String>,
    );

    impl Recording {
        pub(crate) fn calls(&self) -> Vec<Call> {
            self.0.borrow().clone()
        }

        /// Only the mounts, as tuples.
        pub(crate) fn mounts(&self) -> Vec<MountCall> {
            self.0
                .borrow()
                .iter()
                .filter_map(|c| match c {
                    Call::Mount {
                        source,
                        target,
                        fstype,
                        flags,
                        data,
                    } => Some((
                        source.clone(),
                        target.clone(),
                        fstype.clone(),
                        *flags,
                        data.clone(),
                    )),
                    _ => None,
                })
                .collect()
        }

        fn push(&self, c: Call) -> Result<()> {
            self.0.borrow_mut().push(c);
            Ok(())
        }
    }

    impl Syscall for Recording {
        fn mount(
            &self,
            source: Option<&Path>,
            target: &Path,
            fstype: Option<&str>,
            flags: MsFlags,
            data: Option<&str>,
        ) -> Result<()> {
            self.push(Call::Mount {
                source: source.map(Path::to_path_buf),
                target: target.to_path_buf(),
                fstype: fstype.map(String::from),
                flags,
                data: data.map(String::from),
            })
        }
        fn umount2(&self, target: &Path, flags: MntFlags) -> Result<()> {
            self.push(Call::Umount2(target.to_path_buf(), flags))
        }
        fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
            self.push(Call::PivotRoot(
                new_root.to_path_buf(),
                put_old.to_path_buf(),
            ))
        }
        fn chdir(&self, path: &Path) -> Result<()> {
            self.push(Call::Chdir(path.to_path_buf()))
        }
        fn fchdir(&self, _dir: BorrowedFd<'_>) -> Result<()> {
            self.push(Call::Fchdir)
        }
        fn unshare(&self, flags: CloneFlags) -> Result<()> {
            self.push(Call::Unshare(flags))
        }
        fn setns(&self, _ns: BorrowedFd<'_>, flags: CloneFlags) -> Result<()> {
            self.push(Call::Setns(flags))
        }
        fn attach_foreign_tree(&self, mnt_ns: &Path, source: &Path, target: &Path) -> Result<()> {
            self.push(Call::AttachForeignTree {
                mnt_ns: mnt_ns.to_path_buf(),
                source: source.to_path_buf(),
                target: target.to_path_buf(),
            })
        }
        fn clone_tree(&self, source: &Path) -> Result<std::os::fd::OwnedFd> {
            self.push(Call::CloneTree(source.to_path_buf()))?;
            std::fs::File::open("/dev/null")
                .map(Into::into)
                .map_err(|e| RuntimeError::io("open", "/dev/null", e))
        }
        fn attach_detached(&self, _tree: std::os::fd::RawFd, target: &Path) -> Result<()> {
            self.push(Call::AttachDetached(target.to_path_buf()))
        }
        fn loopback_up(&self) -> Result<()> {
            self.push(Call::LoopbackUp)
        }
        fn sethostname(&self, name: &str) -> Result<()> {
            self.push(Call::Sethostname(name.into()))
        }
        fn setdomainname(&self, name: &str) -> Result<()> {
            self.push(Call::Setdomainname(name.into()))
        }
        fn limit_bounding(&self, keep: &CapsHashSet) -> Result<()> {
            self.push(Call::LimitBounding(capabilities::mask(keep)))
        }
        fn set_ids(&self, uid: u32, gid: u32, groups: &[u32]) -> Result<()> {
            self.push(Call::SetIds {
                uid,
                gid,
                groups: groups.to_vec(),
            })
        }
        fn mknod(&self, path: &Path, dev: &crate::devices::DeviceSpec) -> Result<()> {
            self.push(Call::Mknod(path.to_path_buf(), dev.cgroup_rule()))
        }
        fn set_capabilities(&self, caps: &CapsHashSet) -> Result<()> {
            self.push(Call::SetCapabilities(capabilities::mask(caps)))
        }
    }
}
