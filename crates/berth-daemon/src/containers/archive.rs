//! `docker cp`: the container archive endpoints (stat, archive, extract).
//!
//! Reading and writing a container's files happens on a short-lived thread whose root
//! directory is the container's merged filesystem, as moby's `chrootarchive` does, so
//! every path and symlink (absolute or `..`) resolves inside the container and can
//! never reach the host:
//! - a running container: the thread unshares its filesystem attributes and `chroot`s
//!   into `/proc/<init pid>/root` (the container's own mount view: volumes and bind
//!   mounts included);
//! - a stopped one: the thread unshares its mount namespace (made private), mounts the
//!   container's overlay there (never visible on the host) and `chroot`s into it;
//!   writes go through overlayfs, so copy-up and whiteouts are the kernel's. The
//!   thread unmounts before it ends. Volumes of a stopped container are not mounted.
//!
//! Entering the container's root is [`super::cp_root`]; `docker diff` is [`super::changes`].

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use berth_runtime::userns::UserNamespace;
use serde::Serialize;

/// What went wrong, in moby's words; the route maps the variants to HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum CpError {
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 400.
    #[error("{0}")]
    Invalid(String),
    /// 500.
    #[error("{0}")]
    Failed(String),
}

impl CpError {
    pub(super) fn io(what: &str, e: impl std::fmt::Display) -> Self {
        CpError::Failed(format!("{what}: {e}"))
    }
}

// ---------------------------------------------------------------- paths and stat

/// `X-Docker-Container-Path-Stat`: moby's `container.PathStat`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go `os.FileMode` bits.
    pub mode: u32,
    /// RFC 3339 with nanoseconds, as Go's `time.Time` marshals.
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// The header value: base64 of the JSON.
    pub fn header_value(&self) -> String {
        use base64::Engine;
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }
}

/// The absolute path in the container as moby's `ResolvePath` keeps it: joined to `/`
/// and cleaned, but a trailing `/` or `/.` of the request preserved (it makes the
/// kernel follow a final symlink).
pub fn abs_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().unwrap_or("")),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let mut abs = format!("/{}", parts.join("/"));
    if path.ends_with("/.") && abs != "/" {
        abs.push_str("/.");
    } else if path.ends_with('/') && abs != "/" {
        abs.push('/');
    }
    abs
}

/// Go's `filepath.Base`.
pub fn base_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() {
            ".".into()
        } else {
            "/".into()
        };
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Go's `os.FileMode` for a Unix `st_mode`.
pub fn go_file_mode(st_mode: u32) -> u32 {
    const MODE_DIR: u32 = 1 << 31;
    const MODE_SYMLINK: u32 = 1 << 27;
    const MODE_DEVICE: u32 = 1 << 26;
    const MODE_NAMED_PIPE: u32 = 1 << 25;
    const MODE_SOCKET: u32 = 1 << 24;
    const MODE_SETUID: u32 = 1 << 23;
    const MODE_SETGID: u32 = 1 << 22;
    const MODE_CHAR_DEVICE: u32 = 1 << 21;
    const MODE_STICKY: u32 = 1 << 20;
    let mut m = st_mode & 0o777;
    m |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => MODE_DIR,
        libc::S_IFLNK => MODE_SYMLINK,
        libc::S_IFBLK => MODE_DEVICE,
        libc::S_IFCHR => MODE_DEVICE | MODE_CHAR_DEVICE,
        libc::S_IFIFO => MODE_NAMED_PIPE,
        libc::S_IFSOCK => MODE_SOCKET,
        _ => 0,
    };
    if st_mode & libc::S_ISUID != 0 {
        m |= MODE_SETUID;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= MODE_SETGID;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= MODE_STICKY;
    }
    m
}

/// A time as Go's `time.Time` marshals it in UTC (RFC 3339, nanoseconds without
/// trailing zeros).
pub fn go_time(secs: i64, nanos: i64) -> String {
    let t = chrono::DateTime::from_timestamp(secs, nanos.clamp(0, 999_999_999) as u32)
        .unwrap_or_default();
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

fn not_found(path: &str, container: &str) -> CpError {
    CpError::NotFound(format!(
        "Could not find the file {path} in container {container}"
    ))
}

fn lstat(abs: &str, path: &str, container: &str) -> Result<fs::Metadata, CpError> {
    fs::symlink_metadata(abs).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => not_found(path, container),
        _ => CpError::io(&format!("lstat {abs}"), e),
    })
}

/// Stats `path` (run inside the container's root): moby's `statPath`. `container` is
/// the name the client used, for the not-found message.
pub fn stat_path(path: &str, container: &str) -> Result<PathStat, CpError> {
    let abs = abs_path(path);
    let md = lstat(&abs, path, container)?;
    let link_target = if md.file_type().is_symlink() {
        berth_runtime::securejoin::resolve_in_root(Path::new("/"), &abs)
            .map(|p| p.display().to_string())
            .map_err(|e| CpError::io("resolving symlink", e))?
    } else {
        String::new()
    };
    Ok(PathStat {
        name: base_name(&abs),
        size: md.size() as i64,
        mode: go_file_mode(md.mode()),
        mtime: go_time(md.mtime(), md.mtime_nsec()),
        link_target,
    })
}

// ---------------------------------------------------------------- GET archive

/// Writes a tar of `path` (run inside the container's root) to `out`: a directory with
/// everything below it, or the file (a final symlink not followed unless the path ends
/// in `/` or `/.`). Entries are named from the requested path's base name (`etc/…`,
/// or `./…` for `/etc/.`), as moby's `TarResourceRebaseOpts`.
pub fn archive_path(path: &str, container: &str, out: &mut dyn Write) -> Result<(), CpError> {
    archive_path_unmapped(path, container, out, None)
}

/// [`archive_path`] of a container under `--userns-remap`: the entries carry the
/// container's ids (its files are stored with host ids), as moby's `ToContainer`.
pub fn archive_path_unmapped(
    path: &str,
    container: &str,
    out: &mut dyn Write,
    unmap: Option<&UserNamespace>,
) -> Result<(), CpError> {
    let abs = abs_path(path);
    let md = lstat(&abs, path, container)?;
    // `/`: moby names the entries `/`, `/bin`, … (the Docker CLI then prepends the
    // destination's name).
    let name = base_name(&abs);
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.preserve_absolute(name == "/");
    append_tree(&mut b, Path::new(&abs), Path::new(&name), &md, unmap)
        .map_err(|e| CpError::io("archiving", e))?;
    b.finish().map_err(|e| CpError::io("archiving", e))
}

/// The container's uid and gid of a file stored with host ids.
fn container_ids(unmap: &UserNamespace, md: &fs::Metadata) -> (u64, u64) {
    let back = |map: &[berth_runtime::userns::IdMapping], id: u32| {
        map.iter()
            .find_map(|m| {
                (id >= m.host_id && id - m.host_id < m.size)
                    .then(|| m.container_id + (id - m.host_id))
            })
            // not mapped: the kernel's overflow id, what the container sees
            .unwrap_or(65534)
    };
    (
        back(&unmap.uid_map, md.uid()) as u64,
        back(&unmap.gid_map, md.gid()) as u64,
    )
}

fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    src: &Path,
    name: &Path,
    md: &fs::Metadata,
    unmap: Option<&UserNamespace>,
) -> io::Result<()> {
    let ft = md.file_type();
    if ft.is_socket() {
        return Ok(()); // not archived (as in Docker)
    }
    if ft.is_file() {
        return append_regular(b, src, name, unmap);
    }
    if let Some(unmap) = unmap {
        // the entry as the tar crate would make it, with the container's ids
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(md, tar::HeaderMode::Complete);
        let (uid, gid) = container_ids(unmap, md);
        h.set_uid(uid);
        h.set_gid(gid);
        if ft.is_symlink() {
            b.append_link(&mut h, name, fs::read_link(src)?)?;
            return Ok(());
        }
        h.set_size(0);
        b.append_data(&mut h, name, io::empty())?;
        if !ft.is_dir() {
            return Ok(());
        }
    } else if !ft.is_dir() {
        return b.append_path_with_name(src, name);
    } else {
        b.append_dir(name, src)?;
    }
    if is_pseudo_fs(src) {
        return Ok(()); // the kernel's views, not the container's files
    }
    let mut entries: Vec<_> = fs::read_dir(src)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    entries.sort();
    for child in entries {
        let p = src.join(&child);
        let Ok(cmd) = fs::symlink_metadata(&p) else {
            continue; // vanished while we walked
        };
        append_tree(b, &p, &name.join(&child), &cmd, unmap)?;
    }
    Ok(())
}

/// Appends the regular file `src`, opened without following a symlink and without
/// blocking (a file swapped for a FIFO or a device between the walk's `lstat` and the
/// open is never read: it is skipped), with exactly the size `fstat` gave.
fn append_regular<W: Write>(
    b: &mut tar::Builder<W>,
    src: &Path,
    name: &Path,
    unmap: Option<&UserNamespace>,
) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(src)
    {
        Ok(f) => f,
        // Replaced by a symlink or gone since the walk saw it.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) || e.kind() == io::ErrorKind::NotFound => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    let md = f.metadata()?;
    if !md.is_file() {
        return Ok(());
    }
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
    if let Some(unmap) = unmap {
        let (uid, gid) = container_ids(unmap, &md);
        h.set_uid(uid);
        h.set_gid(gid);
    }
    let size = md.len();
    // A file that grows or shrinks meanwhile still fills exactly its header's size.
    let data = io::Read::take(
        io::Read::chain(io::Read::take(f, size), io::repeat(0)),
        size,
    );
    b.append_data(&mut h, name, data)
}

/// `dir` is on a kernel pseudo filesystem (a running container's `/proc`, `/sys`,
/// `/dev/pts`, …): its content is not archived, as moby's view of a container's
/// rootfs never has these mounts.
fn is_pseudo_fs(dir: &Path) -> bool {
    const PSEUDO: &[i64] = &[
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x1cd1,      // devpts
        0x1980_0202, // mqueue
        0x0027_e0eb, // cgroup
        0x6367_7270, // cgroup2
        0x7363_6673, // securityfs
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0xcafe_4a11, // bpf
    ];
    nix::sys::statfs::statfs(dir)
        // The field's type differs between targets.
        .map(|s| {
            #[allow(clippy::unnecessary_cast)]
            let t = s.filesystem_type().0 as i64;
            PSEUDO.contains(&t)
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------- PUT archive

/// Options of `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    pub no_overwrite_dir_non_dir: bool,
    /// Owner for every extracted entry (`copyUIDGID` with a container `User`).
    pub chown: Option<(u32, u32)>,
    /// A container under `--userns-remap`: every entry's owner (the tar's, or `chown`)
    /// taken to its host id, as moby's `ToHost`.
    pub idmap: Option<UserNamespace>,
}

/// Resolves the container's `User` (run inside its root) to the owner `copyUIDGID`
/// gives copied files; `None` when the container has no user (the tar's owners stay).
pub fn copy_owner(user: &str) -> Result<Option<(u32, u32)>, CpError> {
    if user.is_empty() {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    let u = berth_runtime::user::resolve(user, &passwd, &group)
        .map_err(|e| CpError::Invalid(e.to_string()))?;
    Ok(Some((u.uid, u.gid)))
}

/// The deepest entry name `extract_to_dir` takes.
pub const MAX_EXTRACT_DEPTH: usize = 128;

/// Extracts the tar `body` into the directory `path` (run inside the container's
/// root), as moby's `extractToDir`: the path must exist and be a directory; an entry
/// replaces what is there (a directory by a non-directory too, unless
/// `no_overwrite_dir_non_dir`, which refuses both directions); `..` never leaves `path`.
pub fn extract_to_dir(
    body: impl Read,
    path: &str,
    container: &str,
    opts: &ExtractOptions,
) -> Result<(), CpError> {
    let abs = abs_path(path);
    // A final symlink is followed (moby's `GetResourcePath`): extracting to a link to
    // a directory extracts into that directory.
    let md = fs::metadata(&abs).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => not_found(path, container),
        _ => CpError::io(&format!("stat {abs}"), e),
    })?;
    if !md.is_dir() {
        return Err(CpError::Invalid(
            "extraction point is not a directory".into(),
        ));
    }
    let dest = fs::canonicalize(&abs).map_err(|e| CpError::io("resolving", e))?;
    // The guard refuses what would make the tar reader hold unbounded memory.
    let mut ar = tar::Archive::new(berth_image::targuard::TarGuard::new(body));
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(true);
    ar.set_unpack_xattrs(false);
    ar.set_overwrite(true);
    let bad = |e: io::Error| CpError::io("extracting", chain(&e));
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let rel = entry.path().map_err(bad)?.into_owned();
        // The tar crate checks every new parent directory with a `canonicalize`: its cost
        // grows with the cube of the depth, so very deep names are refused.
        if rel.components().count() > MAX_EXTRACT_DEPTH {
            return Err(CpError::Invalid(format!(
                "invalid tar header: {} is nested more than {MAX_EXTRACT_DEPTH} directories deep",
                rel.display()
                    .to_string()
                    .chars()
                    .take(200)
                    .collect::<String>()
            )));
        }
        let Some(rel) = inside(&rel) else {
            return Err(CpError::Failed(format!(
                "invalid tar header: {} is outside of {}",
                rel.display(),
                dest.display()
            )));
        };
        let target = dest.join(&rel);
        let entry_is_dir = entry.header().entry_type().is_dir();
        if let Ok(existing) = fs::symlink_metadata(&target) {
            if opts.no_overwrite_dir_non_dir && existing.is_dir() && !entry_is_dir {
                return Err(CpError::Failed(format!(
                    "cannot overwrite directory {:?} with non-directory {:?}",
                    target.display().to_string(),
                    dest.display().to_string()
                )));
            }
            if opts.no_overwrite_dir_non_dir && !existing.is_dir() && entry_is_dir {
                return Err(CpError::Failed(format!(
                    "cannot overwrite non-directory {:?} with directory {:?}",
                    target.display().to_string(),
                    dest.display().to_string()
                )));
            }
            if existing.is_dir() && !entry_is_dir && rel.as_os_str() != "" {
                fs::remove_dir_all(&target).map_err(bad)?;
            }
        }
        let et = entry.header().entry_type();
        if et.is_character_special() || et.is_block_special() || et.is_fifo() {
            // The tar crate would write these as empty files: they stay what they
            // are, as with dockerd.
            make_special(&target, entry.header()).map_err(bad)?;
        } else {
            entry.unpack_in(&dest).map_err(bad)?;
        }
        if let Some(map) = &opts.idmap {
            let h = entry.header();
            let (uid, gid) = opts
                .chown
                .unwrap_or((h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32));
            let host = |id: u32, to: Option<u32>| {
                to.ok_or_else(|| {
                    CpError::Failed(format!("Container ID {id} cannot be mapped to a host ID"))
                })
            };
            let (hu, hg) = (host(uid, map.host_uid(uid))?, host(gid, map.host_gid(gid))?);
            std::os::unix::fs::lchown(&target, Some(hu), Some(hg)).map_err(bad)?;
        } else if let Some((uid, gid)) = opts.chown {
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid)).map_err(bad)?;
        }
    }
    Ok(())
}

/// Creates the device node or FIFO `header` describes at `target` (replacing a
/// non-directory there), with its owner, mode and mtime.
fn make_special(target: &Path, header: &tar::Header) -> io::Result<()> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    let et = header.entry_type();
    let kind = if et.is_character_special() {
        SFlag::S_IFCHR
    } else if et.is_block_special() {
        SFlag::S_IFBLK
    } else {
        SFlag::S_IFIFO
    };
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::symlink_metadata(target) {
        Ok(m) if !m.is_dir() => fs::remove_file(target)?,
        _ => {}
    }
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    let mode = header.mode().unwrap_or(0o644) & 0o7777;
    mknod(
        target,
        kind,
        Mode::from_bits_truncate(mode as _),
        nix::sys::stat::makedev(major as u64, minor as u64),
    )
    .map_err(io::Error::from)?;
    std::os::unix::fs::lchown(
        target,
        header.uid().ok().map(|u| u as u32),
        header.gid().ok().map(|g| g as u32),
    )?;
    // mknod applied the umask: the tar's bits (setuid included) as they are.
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        target,
        Mode::from_bits_truncate(mode as _),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(io::Error::from)?;
    let mtime = header.mtime().unwrap_or(0) as i64;
    let ts = nix::sys::time::TimeSpec::new(mtime, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        target,
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// An error with its causes (the tar crate wraps the OS error).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// `rel` without `.` components, or `None` when `..` would climb above its start.
fn inside(rel: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir if !out.pop() => return None,
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abs_path_keeps_trailing_dot_and_slash() {
        assert_eq!(abs_path("etc"), "/etc");
        assert_eq!(abs_path("/etc/"), "/etc/");
        assert_eq!(abs_path("/etc/."), "/etc/.");
        assert_eq!(abs_path("/a/../../b"), "/b");
        assert_eq!(abs_path("/"), "/");
        assert_eq!(abs_path("/."), "/");
    }

    #[test]
    fn base_name_as_go() {
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/etc/."), ".");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name("/a/b"), "b");
    }

    #[test]
    fn go_modes() {
        assert_eq!(go_file_mode(libc::S_IFREG | 0o644), 0o644);
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(
            go_file_mode(libc::S_IFCHR | 0o666),
            (1 << 26) | (1 << 21) | 0o666
        );
        assert_eq!(
            go_file_mode(libc::S_IFDIR | libc::S_ISVTX | 0o777),
            (1 << 31) | (1 << 20) | 0o777
        );
        assert_eq!(
            go_file_mode(libc::S_IFREG | libc::S_ISUID | 0o755),
            (1 << 23) | 0o755
        );
    }

    #[test]
    fn go_times_trim_zeros() {
        assert_eq!(go_time(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(go_time(1, 500_000_000), "1970-01-01T00:00:01.5Z");
        assert_eq!(go_time(1, 123), "1970-01-01T00:00:01.000000123Z");
    }

    #[test]
    fn stat_header_is_base64_json() {
        let s = PathStat {
            name: "x".into(),
            size: 3,
            mode: 0o644,
            mtime: "1970-01-01T00:00:00Z".into(),
            link_target: String::new(),
        };
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(s.header_value())
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["name"], "x");
        assert_eq!(v["mode"], 420);
        assert_eq!(v["linkTarget"], "");
    }

    #[test]
    fn inside_refuses_climbing_out() {
        assert_eq!(inside(Path::new("a/../b")), Some(PathBuf::from("b")));
        assert_eq!(inside(Path::new("./a")), Some(PathBuf::from("a")));
        assert_eq!(inside(Path::new("../x")), None);
    }

    #[test]
    fn a_file_swapped_for_a_fifo_or_symlink_is_never_read() {
        // What append_tree meets when the file it saw changed before the open: it must
        // neither block on the FIFO nor follow the link.
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        append_regular(&mut b, &fifo, Path::new("fifo"), None).unwrap();
        append_regular(&mut b, &link, Path::new("link"), None).unwrap();
        let file = t.path().join("f");
        fs::write(&file, "hello").unwrap();
        append_regular(&mut b, &file, Path::new("f"), None).unwrap();
        let tar = b.into_inner().unwrap();
        let mut ar = tar::Archive::new(&tar[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["f"]);
    }

    #[test]
    fn very_deep_names_are_refused_before_any_work() {
        let t = tempfile::tempdir().unwrap();
        let name = format!("{}f", "d/".repeat(MAX_EXTRACT_DEPTH));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, &name, &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let e = extract_to_dir(
            &tar[..],
            t.path().to_str().unwrap(),
            "c",
            &Default::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("nested more than 128"), "{e}");
        assert!(!t.path().join("d").exists());
    }

    #[test]
    fn archive_and_extract_round_trip_in_a_directory() {
        // Run against the host root's view of a temp dir: the functions take absolute
        // paths, which in the daemon are the container's.
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/f"), "hello").unwrap();
        let mut tar = Vec::new();
        archive_path(src.to_str().unwrap(), "c", &mut tar).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, vec!["src", "src/sub", "src/sub/f"]);
        let dst = t.path().join("dst");
        fs::create_dir(&dst).unwrap();
        extract_to_dir(
            &tar[..],
            dst.to_str().unwrap(),
            "c",
            &ExtractOptions::default(),
        )
        .unwrap();
        assert_eq!(fs::read_to_string(dst.join("src/sub/f")).unwrap(), "hello");
        // noOverwriteDirNonDir: a file over the directory `src` is refused.
        let mut h = tar::Header::new_gnu();
        h.set_path("src").unwrap();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b"x"[..]).unwrap();
        let file_tar = b.into_inner().unwrap();
        let opts = ExtractOptions {
            no_overwrite_dir_non_dir: true,
            chown: None,
            idmap: None,
        };
        let err = extract_to_dir(&file_tar[..], dst.to_str().unwrap(), "c", &opts).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot overwrite directory"),
            "{err}"
        );
        let missing = extract_to_dir(&file_tar[..], "/nonexistent-cp-dir", "c1", &opts);
        assert_eq!(
            missing.unwrap_err().to_string(),
            "Could not find the file /nonexistent-cp-dir in container c1"
        );
    }
}
