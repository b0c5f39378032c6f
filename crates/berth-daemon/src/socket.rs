//! The API socket as dockerd makes it: mode 0660, group `docker` when that group exists
//! (`-G/--group`, daemon.json `group`; a name or a number; an empty name keeps the
//! daemon's own group).
//!
//! The socket is bound with the umask set so that `bind` creates it with its final mode,
//! 0660 (no chmod afterwards, so no moment with a wider mode), then given its group.

use std::path::Path;

use anyhow::{anyhow, Context};
use nix::sys::stat::{umask, Mode};

/// dockerd's default socket group.
pub const DEFAULT_SOCKET_GROUP: &str = "docker";

/// The group the socket gets: `None` keeps the daemon's own. A missing `docker` group
/// (the default) is only a warning, as with dockerd; any other missing group an error in
/// dockerd's words.
pub fn socket_gid(group: &str) -> anyhow::Result<Option<u32>> {
    if group.is_empty() {
        return Ok(None);
    }
    if let Ok(Some(g)) = nix::unistd::Group::from_name(group) {
        return Ok(Some(g.gid.as_raw()));
    }
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(Some(gid));
    }
    if group == DEFAULT_SOCKET_GROUP {
        tracing::warn!("could not change group of the socket to {group}: group {group} not found");
        return Ok(None);
    }
    Err(anyhow!("group {group} not found"))
}

/// Restores the umask when dropped.
struct UmaskGuard(Mode);

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        umask(self.0);
    }
}

/// Binds `socket` (replacing a stale socket file) with mode 0660 and group `gid`.
pub fn bind_std(
    socket: &Path,
    gid: Option<u32>,
) -> anyhow::Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing stale {}", socket.display())),
    }
    let listener = {
        // The socket is born 0660: there is no moment with a wider mode to race.
        let _restore = UmaskGuard(umask(Mode::from_bits_truncate(0o117)));
        std::os::unix::net::UnixListener::bind(socket)
            .with_context(|| format!("listening on {}", socket.display()))?
    };
    if let Some(gid) = gid {
        if let Err(e) = std::os::unix::fs::lchown(socket, None, Some(gid)) {
            let _ = std::fs::remove_file(socket);
            return Err(e)
                .with_context(|| format!("can't create unix socket {}", socket.display()));
        }
    }
    Ok(listener)
}

/// [`bind_std`] for tokio.
pub fn bind(socket: &Path, gid: Option<u32>) -> anyhow::Result<tokio::net::UnixListener> {
    let l = bind_std(socket, gid)?;
    l.set_nonblocking(true)?;
    Ok(tokio::net::UnixListener::from_std(l)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    #[test]
    fn the_socket_is_0660_with_its_group_and_leaves_nothing_else() {
        let t = tempfile::tempdir().unwrap();
        let sock = t.path().join("run/api.sock");
        // A stale socket file is replaced.
        std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
        std::fs::write(&sock, "stale").unwrap();
        let before = umask(Mode::from_bits_truncate(0o022));
        umask(before);
        let l = bind_std(&sock, Some(65534)).unwrap();
        let m = std::fs::symlink_metadata(&sock).unwrap();
        assert!(m.file_type().is_socket());
        assert_eq!(m.mode() & 0o7777, 0o660);
        assert_eq!(m.gid(), 65534);
        assert_eq!(m.uid(), nix::unistd::getuid().as_raw());
        // The umask is back as it was.
        let now = umask(before);
        assert_eq!(now, before);
        // Only the socket is in its directory.
        let names: Vec<_> = std::fs::read_dir(sock.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("api.sock")]);
        // It answers at its final path.
        std::os::unix::net::UnixStream::connect(&sock).unwrap();
        drop(l);
    }

    #[test]
    fn groups_resolve_as_dockerd_does() {
        assert_eq!(socket_gid("").unwrap(), None);
        assert_eq!(socket_gid("0").unwrap(), Some(0));
        assert_eq!(socket_gid("root").unwrap(), Some(0));
        assert_eq!(socket_gid("4321").unwrap(), Some(4321));
        assert_eq!(
            socket_gid("no-such-group-berth").unwrap_err().to_string(),
            "group no-such-group-berth not found"
        );
        // The default group: its gid where it exists, else the daemon's own group.
        let want = nix::unistd::Group::from_name("docker")
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw());
        assert_eq!(socket_gid(DEFAULT_SOCKET_GROUP).unwrap(), want);
    }
}
