//! Async I/O on a pty master the exec helper sent (see [`berth_runtime::pty`]).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A pty master as an async stream. Reading ends (EOF) once every slave fd is closed:
/// Linux reports that as EIO, turned into EOF here. Clones share the fd.
#[derive(Clone)]
pub struct PtyMaster {
    fd: Arc<AsyncFd<OwnedFd>>,
}

impl PtyMaster {
    /// Takes `fd` (a pty master), made non-blocking.
    pub fn new(fd: OwnedFd) -> io::Result<PtyMaster> {
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl on an fd we own.
        unsafe {
            let flags = libc::fcntl(raw, libc::F_GETFL);
            if flags < 0 || libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: an OwnedFd stays open and the same fd while the AsyncFd owns it.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(PtyMaster { fd: Arc::new(fd) })
    }

    /// Sets the terminal's size (rows, columns).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), berth_runtime::RuntimeError> {
        berth_runtime::pty::set_size(self.fd.get_ref().as_raw_fd(), rows, cols)
    }
}

impl AsyncRead for PtyMaster {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let r = guard.try_io(|inner| {
                // SAFETY: read into the buffer we were lent.
                let n = unsafe {
                    libc::read(
                        inner.get_ref().as_raw_fd(),
                        unfilled.as_mut_ptr().cast(),
                        unfilled.len(),
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyMaster {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            let r = guard.try_io(|inner| {
                // SAFETY: write from the slice we were lent.
                let n = unsafe {
                    libc::write(
                        inner.get_ref().as_raw_fd(),
                        data.as_ptr().cast(),
                        data.len(),
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn relays_both_ways_and_ends_when_the_slave_closes() {
        let pty = berth_runtime::pty::open(None).expect("pty");
        let mut master = PtyMaster::new(pty.master).expect("master");
        let slave = std::fs::File::from(pty.slave);
        // Raw slave: no echo or newline translation in the way of the check.
        let mut t = nix::sys::termios::tcgetattr(&slave).expect("tcgetattr");
        nix::sys::termios::cfmakeraw(&mut t);
        nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &t)
            .expect("tcsetattr");
        master.write_all(b"in").await.expect("write");
        let mut got = [0u8; 2];
        use std::io::{Read, Write};
        (&slave).read_exact(&mut got).expect("slave read");
        assert_eq!(&got, b"in");
        (&slave).write_all(b"out").expect("slave write");
        drop(slave);
        let mut out = Vec::new();
        master.read_to_end(&mut out).await.expect("read to EOF");
        assert_eq!(out, b"out");
        master.resize(5, 6).expect("resize");
    }
}
