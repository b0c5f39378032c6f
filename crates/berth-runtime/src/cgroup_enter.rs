//! How a new container init enters its cgroups without the kernel's grace period.
//!
//! Moving a process by writing its pid to a `cgroup.procs` file takes the kernel's
//! global threadgroup lock for writing, and taking it waits for an RCU grace period:
//! 5-25 ms on every container start (runc pays it too). Two moves skip that lock:
//! - a `clone3` straight into a cgroup v2 directory (`CLONE_INTO_CGROUP`), for the v2
//!   tree (pure v2, or the hybrid `unified` one);
//! - a single thread moving itself (`0` written to a v1 hierarchy's `tasks` file),
//!   which moves the whole init since it runs one thread.
//!
//! Neither is used with a user namespace (the init's writes would be those of the new
//! namespace's root; there the shim moves it through `cgroup.procs`, as before), and
//! whatever the clone could not place (a kernel without `clone3`) the shim moves too.
//! `exec` places its process the same way ([`join_cgroups_of`], [`clone_process`]).

use crate::cgroup::{self, CgroupPaths};
use crate::error::{Result, RuntimeError};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// `CLONE_INTO_CGROUP` (linux/sched.h; not in the libc crate for this target).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of linux/sched.h, up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone(flags | SIGCHLD)` with the child placed in the cgroup v2 directory open as
/// `cgroup` (`clone3` with `CLONE_INTO_CGROUP`): the raw result (child pid, 0 in the
/// child, -1 with errno set, e.g. ENOSYS before Linux 5.7).
///
/// # Safety
/// As a raw `clone` without `CLONE_VM`: the caller is single-threaded, and the child only
/// runs code that is safe after a fork.
pub unsafe fn clone_into_cgroup(flags: libc::c_int, cgroup: RawFd) -> libc::c_long {
    let mut args = CloneArgs {
        flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        ..Default::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed, alive for the call;
    // without CLONE_VM and a stack the child runs on a copy of ours, as after fork (the
    // caller's contract).
    unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    }
}

/// How the init gets into its cgroups: what the clone places it in, what it moves
/// itself into, and what the shim moves it into after the clone.
pub struct Entry<'a> {
    /// The container's cgroups.
    pub paths: &'a CgroupPaths,
    /// The v2 directory, open for `CLONE_INTO_CGROUP`.
    clone_into: Option<OwnedFd>,
    /// The init writes `0` to these v1 directories' `tasks` itself.
    pub self_v1: Vec<PathBuf>,
    /// The shim writes the init's pid to these directories' `cgroup.procs`.
    pub by_shim: Vec<PathBuf>,
}

impl<'a> Entry<'a> {
    /// The plan for an init with (`remapped`) or without a user namespace.
    pub fn plan(paths: &'a CgroupPaths, remapped: bool) -> Entry<'a> {
        if remapped {
            return Entry {
                paths,
                clone_into: None,
                self_v1: Vec::new(),
                by_shim: paths.dirs(),
            };
        }
        let self_v1: Vec<PathBuf> = paths
            .dirs()
            .into_iter()
            .filter(|d| Some(d) != paths.unified.as_ref())
            .collect();
        let clone_into = paths
            .unified
            .as_ref()
            .and_then(|dir| std::fs::File::open(dir).map(OwnedFd::from).ok());
        // A v2 directory that could not be opened is moved into by the shim.
        let by_shim = match (&paths.unified, &clone_into) {
            (Some(dir), None) => vec![dir.clone()],
            _ => Vec::new(),
        };
        Entry {
            paths,
            clone_into,
            self_v1,
            by_shim,
        }
    }

    /// Clones like `clone(flags | SIGCHLD)`, into the v2 cgroup when there is one:
    /// the raw result (child pid, 0 in the child, -1 with errno set). When `clone3`
    /// cannot place the child (an older kernel, a filter), falls back to `clone` and
    /// leaves the v2 directory to the shim.
    ///
    /// # Safety
    /// As a raw `clone` without `CLONE_VM`: the caller is single-threaded, and the child
    /// only runs code that is safe after a fork.
    pub unsafe fn clone(&mut self, flags: libc::c_int) -> libc::c_long {
        if let Some(fd) = &self.clone_into {
            // SAFETY: the caller's contract.
            let ret = unsafe { clone_into_cgroup(flags, fd.as_raw_fd()) };
            if ret >= 0 {
                return ret;
            }
            self.by_shim.extend(self.paths.unified.iter().cloned());
            self.clone_into = None;
        }
        // SAFETY: the caller's contract; no pointers are passed.
        unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        }
    }

    /// In the child: the v2 directory's fd is the shim's (a pause never execs, which
    /// would close it).
    pub fn close_in_child(&mut self) {
        self.clone_into = None;
    }

    /// In the init (one thread): moves itself into its v1 cgroups.
    pub fn enter_v1(&self) -> Result<()> {
        for dir in &self.self_v1 {
            let tasks = dir.join("tasks");
            std::fs::write(&tasks, "0").map_err(|e| {
                RuntimeError::Internal(format!(
                    "moving the container init into {}: {e}",
                    dir.display()
                ))
            })?;
        }
        Ok(())
    }
}

/// Puts an exec into the cgroups of process `pid` (the container's init), as the init
/// entered them (the init): the calling helper (one thread) moves itself
/// into the v1 ones (`0` to `tasks`: no grace period), and the v2 one is returned open,
/// for the clone of the process ([`clone_process`]). With `remapped` (the container has a
/// user namespace, which the helper joins later, losing host root) it joins every one
/// through `cgroup.procs` now, as does a v2 directory that cannot be opened.
pub fn join_cgroups_of(pid: i32, remapped: bool) -> Result<Option<OwnedFd>> {
    let file = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&file).map_err(|e| RuntimeError::io("read", &file, e))?;
    let theirs = cgroup::parse_proc_cgroup(&text);
    let me = std::process::id().to_string();
    let mut v2 = None;
    for h in cgroup::hierarchies()? {
        let key = if h.v2 {
            String::new()
        } else {
            h.controllers.join(",")
        };
        let Some(rel) = theirs.get(&key) else {
            continue;
        };
        let dir = cgroup::join_rel(&h.mountpoint, rel);
        if h.v2 && !remapped {
            if let Ok(f) = std::fs::File::open(&dir) {
                v2 = Some(OwnedFd::from(f));
                continue;
            }
        }
        let (file, value) = if h.v2 || remapped {
            ("cgroup.procs", me.as_str())
        } else {
            ("tasks", "0")
        };
        let path = dir.join(file);
        // A hierarchy Berth did not put the container in (name=…) may refuse; only
        // ours matter.
        if let Err(e) = std::fs::write(&path, value) {
            if h.v2 || h.controllers.iter().any(|c| !c.starts_with("name=")) {
                return Err(RuntimeError::io("joining cgroup", &path, e));
            }
        }
    }
    Ok(v2)
}

/// Forks the exec's process into the v2 cgroup `v2` (from [`join_cgroups_of`]): a
/// `clone3` into it, or where the kernel has none, the helper joining it through the
/// open directory (it is in the container's mount namespace by now) and a fork. Returns
/// as `fork` does.
///
/// # Safety
/// As `fork`: the caller is single-threaded, and the child only runs code that is safe
/// after a fork.
pub unsafe fn clone_process(v2: Option<&OwnedFd>) -> Result<libc::pid_t> {
    if let Some(dir) = v2 {
        // SAFETY: the caller's contract.
        let ret = unsafe { clone_into_cgroup(0, dir.as_raw_fd()) };
        if ret >= 0 {
            return Ok(ret as libc::pid_t);
        }
        // SAFETY: openat takes the directory fd we own and a NUL-terminated literal.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c"cgroup.procs".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(RuntimeError::sys(
                "opening the container's cgroup.procs",
                Errno::last(),
            ));
        }
        // SAFETY: a non-negative openat result is a new fd that nothing else owns.
        let procs = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        std::io::Write::write_all(&mut &procs, std::process::id().to_string().as_bytes())
            .map_err(|e| RuntimeError::io("joining", "the container's v2 cgroup", e))?;
    }
    // SAFETY: the caller's contract.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(RuntimeError::sys("fork", Errno::last()));
    }
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn paths() -> CgroupPaths {
        CgroupPaths {
            v1: BTreeMap::from([
                (
                    "cpu".to_string(),
                    PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/berth/x"),
                ),
                (
                    "cpuacct".to_string(),
                    PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/berth/x"),
                ),
                (
                    "memory".to_string(),
                    PathBuf::from("/sys/fs/cgroup/memory/berth/x"),
                ),
            ]),
            unified: Some(PathBuf::from("/nonexistent/unified/berth/x")),
            ..Default::default()
        }
    }

    #[test]
    fn without_a_user_namespace_the_init_enters_each_v1_hierarchy_once_itself() {
        let p = paths();
        let e = Entry::plan(&p, false);
        assert_eq!(
            e.self_v1,
            [
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/berth/x"),
                PathBuf::from("/sys/fs/cgroup/memory/berth/x"),
            ]
        );
        // a v2 directory that cannot be opened for clone3 is left to the shim
        assert_eq!(e.by_shim, [PathBuf::from("/nonexistent/unified/berth/x")]);
    }

    #[test]
    fn with_a_user_namespace_the_shim_moves_the_init_everywhere() {
        let p = paths();
        let e = Entry::plan(&p, true);
        assert!(e.self_v1.is_empty());
        assert_eq!(e.by_shim, paths().dirs());
    }

    #[test]
    fn an_openable_v2_directory_is_the_clones() {
        let d = tempfile::tempdir().unwrap();
        let p = CgroupPaths {
            unified: Some(d.path().to_path_buf()),
            ..Default::default()
        };
        let e = Entry::plan(&p, false);
        assert!(e.by_shim.is_empty() && e.self_v1.is_empty());
        assert!(e.clone_into.is_some());
    }
}
