//! Pseudo-terminals, shared by the container init (`run -t`), the exec helper
//! (`exec -t`), the shim and the daemon: open a pair in the current mount namespace's
//! devpts, make the slave a process's controlling terminal, pass the master over a
//! unix socket (SCM_RIGHTS), set the window size.

use crate::error::{Result, RuntimeError};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A pty pair; both fds are close-on-exec.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    /// The slave's path in the devpts it was opened from, e.g. `/dev/pts/0`.
    pub slave_path: String,
}

fn open_cloexec(path: &CString, what: &str) -> Result<OwnedFd> {
    use nix::fcntl::OFlag;
    nix::fcntl::open(
        path.as_c_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| RuntimeError::sys(what, e))
}

/// Opens a pty pair through `/dev/ptmx` of the current mount namespace (inside a
/// container: its own devpts, so `tty` there prints `/dev/pts/N`), sized `size`
/// (rows, columns) when given.
pub fn open(size: Option<(u16, u16)>) -> Result<Pty> {
    let master = open_cloexec(
        &CString::from(c"/dev/ptmx"),
        "opening /dev/ptmx in the container",
    )?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through a pointer valid for the call.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })
        .map_err(|e| RuntimeError::sys("unlocking the pty (TIOCSPTLCK)", e))?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through a pointer valid for the call.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })
        .map_err(|e| RuntimeError::sys("reading the pty number (TIOCGPTN)", e))?;
    let slave_path = format!("/dev/pts/{n}");
    let cpath =
        CString::new(slave_path.clone()).map_err(|_| RuntimeError::Internal("pty path".into()))?;
    let slave = open_cloexec(&cpath, &format!("opening {slave_path}"))?;
    if let Some((rows, cols)) = size {
        // A size of 0x0 (clients without a terminal send it) leaves the default.
        if rows > 0 && cols > 0 {
            set_size(master.as_raw_fd(), rows, cols)?;
        }
    }
    Ok(Pty {
        master,
        slave,
        slave_path,
    })
}

/// Sets the window size of the pty behind `fd` (master or slave); the foreground
/// process group gets SIGWINCH.
pub fn set_size(fd: RawFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through a pointer valid for the call.
    Errno::result(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) })
        .map(drop)
        .map_err(|e| RuntimeError::sys("resize", e))
}

/// In a process that just called `setsid`: makes `slave` its controlling terminal and
/// its stdin, stdout and stderr.
pub fn make_controlling(slave: RawFd) -> Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument, no memory.
    Errno::result(unsafe { libc::ioctl(slave, libc::TIOCSCTTY as _, 0) })
        .map_err(|e| RuntimeError::sys("making the pty the controlling terminal (TIOCSCTTY)", e))?;
    for target in 0..3 {
        if slave != target {
            // SAFETY: dup2 only changes this process's fd table.
            Errno::result(unsafe { libc::dup2(slave, target) })
                .map_err(|e| RuntimeError::sys("dup2 of the pty", e))?;
        }
    }
    Ok(())
}

/// Sends `fd` (a pty master) over the unix socket `socket` with one byte `m`.
pub fn send_master(socket: RawFd, fd: RawFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [fd];
    sendmsg::<()>(
        socket,
        &[std::io::IoSlice::new(b"m")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
    .map_err(|e| RuntimeError::sys("sending the pty master", e))
}

/// Receives the pty master [`send_master`] sent (close-on-exec here). EOF before it
/// (the sender failed first) is an error.
pub fn recv_master(socket: RawFd) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = loop {
        match recvmsg::<()>(
            socket,
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            r => break r.map_err(|e| RuntimeError::sys("receiving the pty master", e))?,
        }
    };
    let mut received: Option<OwnedFd> = None;
    for c in msg
        .cmsgs()
        .map_err(|e| RuntimeError::sys("reading the pty master message", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // Keep the first, close any extra.
                // SAFETY: SCM_RIGHTS installed this fd in our table for us alone.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if received.is_none() {
                    received = Some(owned);
                }
            }
        }
    }
    received.ok_or_else(|| RuntimeError::Internal("no pty master was sent".into()))
}

/// Before switching to `uid`: stdin, stdout and stderr that are pty slaves become
/// owned by `uid` (group kept), so the process can reopen its terminal (`ttyname`), as
/// runc's `fixStdioPermissions` does. Other fds are left alone; a refusal is ignored.
pub(crate) fn own_stdio_terminals(uid: u32) {
    for fd in 0..3 {
        // SAFETY: `stat` is a plain C struct for which all-zero bytes is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes one `stat` through a pointer valid for the call.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            continue;
        }
        let is_pty_slave = st.st_mode & libc::S_IFMT == libc::S_IFCHR
            && is_pty_slave_major(libc::major(st.st_rdev));
        if is_pty_slave && st.st_uid != uid {
            // SAFETY: fchown takes integers only; -1 keeps the group.
            unsafe { libc::fchown(fd, uid, u32::MAX) };
        }
    }
}

/// Unix98 pty slaves: majors 136-143.
fn is_pty_slave_major(major: u32) -> bool {
    (136..=143).contains(&major)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size_of(fd: RawFd) -> (u16, u16) {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one `winsize` through a pointer valid for the call.
        assert_eq!(unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) }, 0);
        (ws.ws_row, ws.ws_col)
    }

    #[test]
    fn open_sizes_and_resizes() {
        let pty = open(Some((33, 101))).expect("pty");
        assert!(pty.slave_path.starts_with("/dev/pts/"));
        assert_eq!(size_of(pty.slave.as_raw_fd()), (33, 101));
        set_size(pty.master.as_raw_fd(), 10, 20).expect("resize");
        assert_eq!(size_of(pty.slave.as_raw_fd()), (10, 20));
        // 0x0 leaves the kernel's default.
        let pty = open(Some((0, 0))).expect("pty");
        assert_eq!(size_of(pty.slave.as_raw_fd()), (0, 0));
    }

    #[test]
    fn pty_slaves_are_told_apart_from_other_devices() {
        let pty = open(None).expect("pty");
        // SAFETY: `stat` is a plain C struct for which all-zero bytes is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes one `stat` through a pointer valid for the call.
        assert_eq!(unsafe { libc::fstat(pty.slave.as_raw_fd(), &mut st) }, 0);
        assert!(is_pty_slave_major(libc::major(st.st_rdev)));
        assert!(!is_pty_slave_major(1)); // /dev/null, /dev/zero
        assert!(!is_pty_slave_major(5)); // /dev/tty, /dev/ptmx
    }

    #[test]
    fn master_travels_over_a_socket() {
        let (a, b) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        let pty = open(None).expect("pty");
        send_master(a.as_raw_fd(), pty.master.as_raw_fd()).expect("send");
        let got = recv_master(b.as_raw_fd()).expect("recv");
        // The received fd is the same master: a size set through it shows on the slave.
        set_size(got.as_raw_fd(), 7, 9).expect("resize");
        assert_eq!(size_of(pty.slave.as_raw_fd()), (7, 9));
        // EOF without a master is an error.
        drop(a);
        assert!(recv_master(b.as_raw_fd()).is_err());
    }
}
