//! The local terminal: raw mode for `-it` (restored on drop) and the size sent to `resize`.

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::termios::{self, SetArg, Termios};

use crate::client::{query, Client, NO_BODY};

/// Whether stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    nix::unistd::isatty(std::io::stdin().as_fd()).unwrap_or(false)
}

/// The terminal in raw mode; the saved settings come back when this is dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode; `None` when stdin is not a terminal.
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        if !nix::unistd::isatty(fd).unwrap_or(false) {
            return None;
        }
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    use std::os::fd::AsRawFd;
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Whether `fd` is a terminal.
pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// The width of the terminal on `fd`, if it is one.
pub fn columns(fd: BorrowedFd<'_>) -> Option<u16> {
    window_size(fd).map(|(_, w)| w)
}

/// Turns off echo on stdin's terminal until the guard is dropped (password prompts).
pub struct NoEcho {
    saved: Option<Termios>,
}

impl NoEcho {
    pub fn enter() -> NoEcho {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        let Ok(saved) = termios::tcgetattr(fd) else {
            return NoEcho { saved: None };
        };
        let mut t = saved.clone();
        t.local_flags.remove(termios::LocalFlags::ECHO);
        if termios::tcsetattr(fd, SetArg::TCSANOW, &t).is_err() {
            return NoEcho { saved: None };
        }
        NoEcho { saved: Some(saved) }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// The local terminal's size as (rows, columns), if stdout or stdin is a terminal.
pub fn size() -> Option<(u16, u16)> {
    window_size(std::io::stdout().as_fd()).or_else(|| window_size(std::io::stdin().as_fd()))
}

/// Sends the local terminal's size to `path` (`…/resize`), when there is a terminal.
pub async fn send_resize(c: &Client, path: &str) {
    if let Some((h, w)) = size() {
        let _ = c
            .call(
                http::Method::POST,
                &format!(
                    "{path}{}",
                    query(&[("h", h.to_string()), ("w", w.to_string())])
                ),
                NO_BODY,
            )
            .await;
    }
}

/// Sends the size now, then again on every SIGWINCH until the returned task is aborted.
pub async fn track_size(c: &Client, path: String) -> tokio::task::JoinHandle<()> {
    send_resize(c, &path).await;
    let c = c.clone();
    tokio::spawn(async move {
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            send_resize(&c, &path).await;
        }
    })
}
