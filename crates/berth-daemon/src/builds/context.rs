//! The build context: the request body (a tar, plain or gzip/bzip2/xz, or a bare
//! Dockerfile) unpacked entry by entry into a private directory, never held in memory.
//! Entries with `..`, absolute names, devices, or hard links that leave the context are
//! refused; symlinks are kept as they are (COPY resolves them inside the context). Then
//! the Dockerfile is read (`dockerfile=`, default `Dockerfile`), and `.dockerignore` is
//! applied to the Dockerfile and itself as moby's `removeDockerfile` does.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use berth_build::dockerignore::DockerIgnore;

use crate::error::{ApiError, ApiResult};

/// Most a context may hold once unpacked (Docker has no limit; a full disk is worse).
/// Contexts are streamed to disk, so a large one costs disk, not memory.
pub const MAX_CONTEXT_BYTES: u64 = 32 << 30;

/// The deepest entry name a context may have.
pub const MAX_CONTEXT_DEPTH: usize = 128;

fn safe_rel(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Unpacks the (decompressed) tar `r` into `dir`.
fn unpack(r: impl Read, dir: &Path) -> ApiResult<()> {
    // The guard bounds long names and PAX headers (the tar reader keeps them whole).
    let mut ar = tar::Archive::new(berth_image::targuard::TarGuard::new(r));
    let bad = |e: io::Error| ApiError::invalid(format!("Error processing tar file({e}): "));
    let mut total: u64 = 0;
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = safe_rel(&path) else {
            return Err(ApiError::invalid(format!(
                "Error processing tar file(invalid tar header: {} is outside of the build context): ",
                path.display()
            )));
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        // The tar reader checks every new parent with a `canonicalize`, at a cost that
        // grows with the cube of the depth: very deep names are refused.
        if rel.components().count() > MAX_CONTEXT_DEPTH {
            return Err(ApiError::invalid(format!(
                "Error processing tar file(invalid tar header: {} is nested more than {MAX_CONTEXT_DEPTH} directories deep): ",
                path.display().to_string().chars().take(200).collect::<String>()
            )));
        }
        let kind = entry.header().entry_type();
        if kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(bad)?
                .unwrap_or_default()
                .into_owned();
            if safe_rel(&target).is_none() {
                return Err(ApiError::invalid(format!(
                    "Error processing tar file(invalid hardlink {:?} -> {:?}): ",
                    path.display().to_string(),
                    target.display().to_string()
                )));
            }
        }
        if kind.is_block_special() || kind.is_character_special() {
            continue;
        }
        // The file's size, not its bytes in the stream: a sparse entry unpacks to its
        // whole size (its holes cost no disk, but COPY reads and packs them).
        total = total.saturating_add(entry.size());
        if total > MAX_CONTEXT_BYTES {
            return Err(ApiError::invalid(format!(
                "the build context is larger than {} GB: use a .dockerignore file to leave files out",
                MAX_CONTEXT_BYTES >> 30
            )));
        }
        entry.set_preserve_mtime(true);
        entry.set_unpack_xattrs(false);
        entry.set_preserve_permissions(true);
        entry.unpack_in(dir).map_err(bad)?;
    }
    Ok(())
}

/// A tar header checksum check on the first block (moby `IsArchive` after decompression).
fn looks_like_tar(head: &[u8]) -> bool {
    if head.len() < 512 {
        return false;
    }
    if &head[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&head[148..156])
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok());
    let sum: u64 = head[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u64
            }
        })
        .sum();
    stored == Some(sum)
}

/// Receives the body into `dir`. A body that is not an archive is taken as the
/// Dockerfile itself (`docker build - < Dockerfile` through the API).
pub fn receive(body: impl Read, dir: &Path) -> ApiResult<()> {
    let (_, mut r) = berth_build::archive::decompressed(body)
        .map_err(|e| ApiError::invalid(format!("Error processing tar file({e}): ")))?;
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < 512 {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => {
                return Err(ApiError::invalid(format!(
                    "Error processing tar file({e}): "
                )))
            }
        }
    }
    head.truncate(n);
    if n == 0 {
        return Ok(());
    }
    if looks_like_tar(&head) {
        return unpack(io::Cursor::new(head).chain(r), dir);
    }
    // A bare Dockerfile.
    let mut text = head;
    r.take(16 << 20)
        .read_to_end(&mut text)
        .map_err(|e| ApiError::invalid(format!("Error processing tar file({e}): ")))?;
    fs::write(dir.join("Dockerfile"), text)?;
    Ok(())
}

/// Reads the Dockerfile named `name` in the context, then removes it and `.dockerignore`
/// from the context when `.dockerignore` excludes them.
pub fn take_dockerfile(dir: &Path, name: &str) -> ApiResult<String> {
    let name = if name.is_empty() { "Dockerfile" } else { name };
    let rel = berth_build::dockerignore::clean(name.trim_start_matches('/'));
    let path = berth_build::copy::scoped_join(dir, &rel, true)?;
    let text = match fs::read(&path) {
        Ok(b) => String::from_utf8_lossy(&b).to_string(),
        Err(_) if name == "Dockerfile" => {
            // moby also accepts the lower-case name.
            match fs::read(dir.join("dockerfile")) {
                Ok(b) => String::from_utf8_lossy(&b).to_string(),
                Err(_) => {
                    return Err(ApiError::internal(format!(
                        "Cannot locate specified Dockerfile: {name}"
                    )))
                }
            }
        }
        Err(_) => {
            return Err(ApiError::internal(format!(
                "Cannot locate specified Dockerfile: {name}"
            )))
        }
    };
    if let Ok(ignore) = fs::read_to_string(dir.join(".dockerignore")) {
        let di = DockerIgnore::parse(&ignore).map_err(|e| ApiError::invalid(e.to_string()))?;
        if di.excluded(".dockerignore") {
            let _ = fs::remove_file(dir.join(".dockerignore"));
        }
        if di.excluded(&rel) {
            let _ = fs::remove_file(&path);
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn tar_and_bare_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        let t = tar_with(&[("Dockerfile", b"FROM busybox\n"), ("sub/a", b"a")]);
        receive(&t[..], d.path()).unwrap();
        assert!(d.path().join("sub/a").is_file());
        assert_eq!(take_dockerfile(d.path(), "").unwrap(), "FROM busybox\n");
        let e = take_dockerfile(d.path(), "nope").unwrap_err();
        assert_eq!(e.message, "Cannot locate specified Dockerfile: nope");
        let d2 = tempfile::tempdir().unwrap();
        receive(&b"FROM busybox\nRUN true\n"[..], d2.path()).unwrap();
        assert_eq!(
            take_dockerfile(d2.path(), "Dockerfile").unwrap(),
            "FROM busybox\nRUN true\n"
        );
    }

    #[test]
    fn escaping_entries_are_refused() {
        let mut raw = tar_with(&[("x", b"x")]);
        // Rename the entry to ../evil in place (the tar builder refuses to write it).
        raw[..100].fill(0);
        raw[..7].copy_from_slice(b"../evil");
        let mut h = tar::Header::from_byte_slice(&raw[..512]).clone();
        h.set_cksum();
        raw[..512].copy_from_slice(h.as_bytes());
        let d = tempfile::tempdir().unwrap();
        let e = receive(&raw[..], d.path()).unwrap_err();
        assert!(
            e.message.contains("outside of the build context"),
            "{}",
            e.message
        );
    }

    #[test]
    fn huge_headers_and_deep_names_are_refused_early() {
        // A PAX header claiming 4 GiB: refused from its header alone.
        let mut h = tar::Header::new_ustar();
        h.set_path("PaxHeaders/x").unwrap();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(4 << 30);
        h.set_cksum();
        let mut raw = h.as_bytes().to_vec();
        raw.extend(std::iter::repeat_n(b'a', 4096));
        let d = tempfile::tempdir().unwrap();
        let e = receive(&raw[..], d.path()).unwrap_err();
        assert!(
            e.message.contains("archive/tar: header field too long"),
            "{}",
            e.message
        );
        let deep = format!("{}f", "d/".repeat(MAX_CONTEXT_DEPTH + 1));
        let t = tar_with(&[(deep.as_str(), b"x")]);
        let e = receive(&t[..], d.path()).unwrap_err();
        assert!(e.message.contains("nested more than"), "{}", e.message);
    }

    #[test]
    fn dockerignore_can_hide_the_dockerfile_yet_it_is_used() {
        let d = tempfile::tempdir().unwrap();
        let t = tar_with(&[
            ("Dockerfile", b"FROM busybox\n"),
            (".dockerignore", b"Dockerfile\n.dockerignore\n"),
        ]);
        receive(&t[..], d.path()).unwrap();
        assert_eq!(
            take_dockerfile(d.path(), "Dockerfile").unwrap(),
            "FROM busybox\n"
        );
        assert!(!d.path().join("Dockerfile").exists());
        assert!(!d.path().join(".dockerignore").exists());
    }
}
