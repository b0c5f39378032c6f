//! The binary Berth runs inside containers' namespaces, sealed (CVE-2019-5736; runc
//! `libcontainer/exeseal`).
//!
//! The daemon spawns every shim (whose clone becomes the container's init) and every
//! exec helper from one [`SealedExe`], made once at start-up, so `/proc/<pid>/exe` of
//! those processes never names the host's `berth` file:
//!
//! 1. preferred, zero-copy: a read-only overlayfs of the binary's directory, created with
//!    `fsopen`/`fsmount` as a detached mount that is attached nowhere (runc's
//!    `overlayfs_linux.go`); opening the file through it for writing fails with EROFS;
//! 2. else a copy in a memfd sealed with `F_SEAL_SEAL|SHRINK|GROW|WRITE` (and
//!    `F_SEAL_EXEC` where the kernel has it), as runc's `cloned_binary_linux.go`.
//!
//! Spawning from it costs nothing per start: the child execs `/proc/self/fd/N`.

use crate::error::{Result, RuntimeError};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SealFlag};
use nix::sys::stat::Mode;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// How the binary was sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// Read-only detached overlay mount of the binary's directory.
    Overlay,
    /// Sealed memfd copy.
    Memfd,
}

/// An fd of the sealed binary, kept open for the daemon's lifetime.
#[derive(Debug)]
pub struct SealedExe {
    fd: OwnedFd,
    pub seal: Seal,
}

const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;

fn sys(what: &str) -> impl FnOnce(Errno) -> RuntimeError + '_ {
    move |e| RuntimeError::sys(what, e)
}

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| RuntimeError::InvalidArgument(format!("NUL byte in {s:?}")))
}

/// Turns a syscall's fd result into an owned fd.
fn owned(r: libc::c_long, what: &str) -> Result<OwnedFd> {
    let fd = Errno::result(r).map_err(sys(what))?;
    // SAFETY: a successful fsopen/fsmount returns a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

impl SealedExe {
    /// Seals the binary this process runs. `scratch` is a directory the daemon owns
    /// (under its exec-root), where an empty directory is made as the overlay's second
    /// lower layer.
    pub fn of_current_exe(scratch: &Path) -> Result<SealedExe> {
        match overlay(scratch) {
            Ok(fd) => Ok(SealedExe {
                fd,
                seal: Seal::Overlay,
            }),
            Err(_) => Ok(SealedExe {
                fd: memfd_copy()?,
                seal: Seal::Memfd,
            }),
        }
    }

    /// A sealed memfd copy, whatever the overlay would do (for tests and fallbacks).
    pub fn memfd() -> Result<SealedExe> {
        Ok(SealedExe {
            fd: memfd_copy()?,
            seal: Seal::Memfd,
        })
    }

    /// The path a child of this process execs: `/proc/self/fd/N` (the fd is CLOEXEC;
    /// the kernel resolves the path before it closes it).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// `fsopen("overlay")` with `lowerdir=<binary's dir>:<empty dir>`, mounted detached and
/// read-only, and the binary opened through it with O_PATH.
fn overlay(scratch: &Path) -> Result<OwnedFd> {
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| RuntimeError::io("reading", "/proc/self/exe", e))?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(RuntimeError::Internal(format!(
            "odd binary path {}",
            exe.display()
        )));
    };
    if !exe.is_file() {
        // Deleted or replaced since we started: only a copy can be trusted.
        return Err(RuntimeError::Internal(format!("{} is gone", exe.display())));
    }
    let empty = scratch.join("exe-seal-empty");
    std::fs::create_dir_all(&empty).map_err(|e| RuntimeError::io("creating", &empty, e))?;
    let (dir_s, empty_s) = (dir.to_string_lossy(), empty.to_string_lossy());
    if [&dir_s, &empty_s]
        .iter()
        .any(|p| p.contains([':', ',', '\\']))
    {
        return Err(RuntimeError::Internal(
            "path not usable as an overlay layer".into(),
        ));
    }
    let fstype = cstr("overlay")?;
    // SAFETY: fsopen takes a NUL-terminated string valid for the call and flags.
    let fs = owned(
        unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) },
        "fsopen(overlay)",
    )?;
    let key = cstr("lowerdir")?;
    let value = cstr(&format!("{dir_s}:{empty_s}"))?;
    // SAFETY: fsconfig reads two NUL-terminated strings valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    Errno::result(r).map_err(sys("fsconfig(lowerdir)"))?;
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value pointers.
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
    Errno::result(r).map_err(sys("fsconfig(create)"))?;
    // SAFETY: fsmount takes an fd and flags; no memory is passed.
    let mnt = owned(
        unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                fs.as_raw_fd(),
                FSMOUNT_CLOEXEC,
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            )
        },
        "fsmount(overlay)",
    )?;
    let fd = nix::fcntl::openat(
        mnt.as_fd(),
        name,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("opening the binary in the sealed overlay"))?;
    Ok(fd)
}

/// A copy of `/proc/self/exe` in a memfd, sealed against every change.
fn memfd_copy() -> Result<OwnedFd> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let fd = memfd_create(
        c"berth",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(sys("memfd_create"))?;
    let mut src = File::open("/proc/self/exe")
        .map_err(|e| RuntimeError::io("opening", "/proc/self/exe", e))?;
    let mut dst = File::from(fd);
    std::io::copy(&mut src, &mut dst)
        .map_err(|e| RuntimeError::io("copying", "/proc/self/exe", e))?;
    let fd = OwnedFd::from(dst);
    let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE;
    nix::fcntl::fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).map_err(sys("sealing the binary copy"))?;
    // F_SEAL_EXEC (Linux 6.3) keeps the mode from changing; older kernels lack it.
    let _ = nix::fcntl::fcntl(
        &fd,
        FcntlArg::F_ADD_SEALS(SealFlag::from_bits_retain(libc::F_SEAL_EXEC)),
    );
    nix::fcntl::fcntl(&fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SEAL))
        .map_err(sys("sealing the binary copy"))?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    fn host_binary() -> std::fs::Metadata {
        std::fs::metadata("/proc/self/exe").unwrap()
    }

    fn write_refused(sealed: &SealedExe) {
        let path = sealed.path();
        let md = std::fs::metadata(&path).unwrap();
        let host = host_binary();
        assert_ne!(
            (md.dev(), md.ino()),
            (host.dev(), host.ino()),
            "{:?}",
            sealed.seal
        );
        assert_eq!(md.len(), host.len());
        match std::fs::OpenOptions::new().write(true).open(&path) {
            Err(_) => {}
            Ok(mut f) => assert!(
                f.write_all(b"x").is_err(),
                "{:?}: write went through",
                sealed.seal
            ),
        }
        assert!(std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"x"))
            .is_err());
    }

    #[test]
    fn both_seals_refuse_writes_and_keep_the_content() {
        let d = tempfile::tempdir().unwrap();
        let sealed = SealedExe::of_current_exe(d.path()).unwrap();
        eprintln!("sealed with {:?}", sealed.seal);
        write_refused(&sealed);
        let copy = SealedExe::memfd().unwrap();
        write_refused(&copy);
        let a = std::fs::read(copy.path()).unwrap();
        assert_eq!(a, std::fs::read("/proc/self/exe").unwrap());
    }
}
