//! COPY and ADD on the filesystem (moby `builder/dockerfile/copy.go`): sources resolved
//! in a root (the build context, or a stage's image extracted), wildcards, the content
//! hash the cache key uses (`file:`, `dir:`, `multi:`; contents and modes, never mtimes),
//! and the copy into a container's mounted root with Docker's destination rules.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::dockerignore::clean;
pub use crate::link::Linker;
use crate::BuildError;

/// One resolved source.
#[derive(Debug, Clone)]
pub struct Source {
    /// As the user wrote it (for messages), or the matched path for wildcards.
    pub rel: String,
    /// Where it is on the host.
    pub host: PathBuf,
    pub is_dir: bool,
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `root` joined with `path`, symlinks followed but never above `root` (a link's absolute
/// target is taken relative to `root`, `..` stops at it). The last element is followed
/// too when `follow_last`.
pub fn scoped_join(root: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    let mut parts: Vec<String> = Vec::new();
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .rev()
        .map(str::to_string)
        .collect();
    let mut links = 0;
    while let Some(p) = pending.pop() {
        if p == ".." {
            parts.pop();
            continue;
        }
        let candidate: PathBuf = root.join(parts.join("/")).join(&p);
        let is_last = pending.is_empty();
        match fs::symlink_metadata(&candidate) {
            Ok(md) if md.file_type().is_symlink() && (!is_last || follow_last) => {
                links += 1;
                if links > 255 {
                    return Err(io::Error::other("too many levels of symbolic links"));
                }
                let target = fs::read_link(&candidate)?;
                let target = target.to_string_lossy().to_string();
                if target.starts_with('/') {
                    parts.clear();
                }
                for t in target
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .rev()
                {
                    pending.push(t.to_string());
                }
            }
            _ => parts.push(p),
        }
    }
    Ok(root.join(parts.join("/")))
}

/// Go's `filepath.Match` for one path (`*`, `?` and classes never cross `/`).
fn glob_match(pattern: &str, name: &str) -> bool {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => match chars[i..].iter().position(|&c| c == ']') {
                Some(end) => {
                    let class: String = chars[i + 1..i + end].iter().collect();
                    let class = class
                        .strip_prefix('^')
                        .map(|c| format!("^{c}"))
                        .unwrap_or(class);
                    re.push('[');
                    re.push_str(&class.replace('\\', "\\\\"));
                    re.push(']');
                    i += end;
                }
                None => return false,
            },
            '\\' if i + 1 < chars.len() => {
                i += 1;
                re.push_str(&regex::escape(&chars[i].to_string()));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(name))
}

fn walk_matches(root: &Path, dir_rel: &str, comps: &[&str], out: &mut Vec<String>) {
    let Some((first, rest)) = comps.split_first() else {
        return;
    };
    let dir = if dir_rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(dir_rel)
    };
    let Ok(rd) = fs::read_dir(&dir) else { return };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    for name in names {
        if !glob_match(first, &name) {
            continue;
        }
        let rel = if dir_rel.is_empty() {
            name.clone()
        } else {
            format!("{dir_rel}/{name}")
        };
        if rest.is_empty() {
            out.push(rel);
        } else if root.join(&rel).is_dir() {
            walk_matches(root, &rel, rest, out);
        }
    }
}

/// Resolves COPY/ADD sources in `root`. `op` is `COPY` or `ADD` (for messages).
pub fn resolve_sources(
    root: &Path,
    patterns: &[String],
    op: &str,
) -> Result<Vec<Source>, BuildError> {
    let mut out = Vec::new();
    for orig in patterns {
        let cleaned = clean(orig.trim_start_matches('/'));
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(BuildError::invalid(format!(
                "{op} failed: forbidden path outside the build context: {orig} ()"
            )));
        }
        let rel = if cleaned == "." {
            String::new()
        } else {
            cleaned
        };
        if has_wildcard(&rel) {
            let comps: Vec<&str> = rel.split('/').collect();
            let mut matches = Vec::new();
            walk_matches(root, "", &comps, &mut matches);
            for m in matches {
                let host = scoped_join(root, &m, true)?;
                let is_dir = host.is_dir();
                out.push(Source {
                    rel: m,
                    host,
                    is_dir,
                });
            }
            continue;
        }
        let host = scoped_join(root, &rel, true)?;
        match fs::metadata(&host) {
            Ok(md) => out.push(Source {
                rel: if rel.is_empty() { ".".into() } else { rel },
                host,
                is_dir: md.is_dir(),
            }),
            Err(_) => {
                return Err(BuildError::invalid(format!(
                    "{op} failed: file not found in build context or excluded by .dockerignore: stat {orig}: file does not exist"
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(BuildError::invalid(format!(
            "{op} failed: no source files were specified"
        )));
    }
    Ok(out)
}

fn hash_entry(h: &mut Sha256, rel: &str, path: &Path) -> io::Result<()> {
    let md = fs::symlink_metadata(path)?;
    h.update(rel.as_bytes());
    h.update([0]);
    h.update(md.mode().to_le_bytes());
    if md.file_type().is_symlink() {
        h.update(fs::read_link(path)?.to_string_lossy().as_bytes());
    } else if md.is_file() {
        h.update(md.len().to_le_bytes());
        let mut f = fs::File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    h.update([0xff]);
    Ok(())
}

fn hash_tree(h: &mut Sha256, base: &Path, rel: &str) -> io::Result<()> {
    let path = if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    };
    hash_entry(h, rel, &path)?;
    if fs::symlink_metadata(&path)?.is_dir() {
        let mut names: Vec<String> = fs::read_dir(&path)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        for n in names {
            let child = if rel.is_empty() {
                n
            } else {
                format!("{rel}/{n}")
            };
            hash_tree(h, base, &child)?;
        }
    }
    Ok(())
}

/// The sources' checksum as the cache key and history show it: `file:<hex>` for one
/// file, `dir:<hex>` for one directory, `multi:<hex>` for several. Contents, names,
/// modes and link targets count; mtimes and owners do not.
pub fn hash_sources(sources: &[Source]) -> Result<String, BuildError> {
    let one = |s: &Source| -> io::Result<String> {
        let mut h = Sha256::new();
        if s.is_dir {
            hash_tree(&mut h, &s.host, "")?;
        } else {
            let name = s.rel.rsplit('/').next().unwrap_or_default().to_string();
            hash_entry(&mut h, &name, &s.host)?;
        }
        Ok(hex::encode(h.finalize()))
    };
    if let [s] = sources {
        let kind = if s.is_dir { "dir" } else { "file" };
        return Ok(format!("{kind}:{}", one(s)?));
    }
    let mut h = Sha256::new();
    for s in sources {
        h.update(one(s)?.as_bytes());
    }
    Ok(format!("multi:{}", hex::encode(h.finalize())))
}

/// Where and how to copy.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    pub sources: Vec<Source>,
    /// Absolute path in the container (WORKDIR applied), its trailing `/` kept.
    pub dest: String,
    /// `--chown` resolved; None: root.
    pub owner: Option<(u32, u32)>,
    /// ADD: local tar archives are extracted.
    pub extract_archives: bool,
    /// `COPY` or `ADD`.
    pub op: String,
    /// `--chmod`: the mode of every copied file and directory.
    pub chmod: Option<u32>,
    /// `--exclude`: patterns (`.dockerignore` syntax) matched against paths relative to
    /// each source directory, or a file source's name.
    pub exclude: Option<crate::dockerignore::DockerIgnore>,
}

/// What [`copy_entry`] applies on the way down.
struct EntryRules<'a> {
    chmod: Option<u32>,
    exclude: Option<&'a crate::dockerignore::DockerIgnore>,
}

impl EntryRules<'_> {
    fn skip(&self, rel: &str) -> bool {
        self.exclude.is_some_and(|e| e.excluded(rel))
    }
    fn mode(&self, md: &fs::Metadata) -> u32 {
        self.chmod.unwrap_or(md.mode() & 0o7777)
    }
}

fn mkdir_all(root: &Path, abs: &str, owner: (u32, u32)) -> io::Result<PathBuf> {
    let mut cur = String::new();
    for comp in abs.split('/').filter(|s| !s.is_empty()) {
        cur.push('/');
        cur.push_str(comp);
        let p = scoped_join(root, &cur, true)?;
        match fs::symlink_metadata(&p) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!("mkdir {cur}: not a directory")));
            }
            Err(_) => {
                fs::create_dir(&p)?;
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
                std::os::unix::fs::lchown(&p, Some(owner.0), Some(owner.1))?;
            }
        }
    }
    scoped_join(root, abs, true)
}

fn copy_entry(
    src: &Path,
    dst: &Path,
    owner: (u32, u32),
    mut linker: Option<&mut Linker>,
    rules: &EntryRules<'_>,
    rel: &str,
) -> io::Result<()> {
    if !rel.is_empty() && rules.skip(rel) {
        return Ok(());
    }
    let md = fs::symlink_metadata(src)?;
    let ft = md.file_type();
    match fs::symlink_metadata(dst) {
        Ok(existing) => {
            if !(existing.is_dir() && ft.is_dir()) {
                if existing.is_dir() {
                    fs::remove_dir_all(dst)?;
                } else {
                    fs::remove_file(dst)?;
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A new name: the file may be linked rather than copied.
            if let Some(l) = linker.as_deref_mut() {
                if l.take(src, &md, dst, owner) {
                    return Ok(());
                }
            }
        }
        Err(_) => {}
    }
    let mtime = filetime::FileTime::from_last_modification_time(&md);
    if ft.is_dir() {
        if !dst.is_dir() {
            fs::create_dir(dst)?;
        }
        let mut names: Vec<_> = fs::read_dir(src)?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            let child = if rel.is_empty() {
                n.to_string_lossy().to_string()
            } else {
                format!("{rel}/{}", n.to_string_lossy())
            };
            copy_entry(
                &src.join(&n),
                &dst.join(&n),
                owner,
                linker.as_deref_mut(),
                rules,
                &child,
            )?;
        }
        fs::set_permissions(dst, fs::Permissions::from_mode(rules.mode(&md)))?;
        if let Some(l) = linker {
            l.keep_mtime(dst, mtime);
        }
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, dst)?;
    } else if ft.is_file() {
        fs::copy(src, dst)?;
        fs::set_permissions(dst, fs::Permissions::from_mode(rules.mode(&md)))?;
    } else {
        // Devices, fifos and sockets are not copied (Docker's context cannot hold them).
        return Ok(());
    }
    std::os::unix::fs::lchown(dst, Some(owner.0), Some(owner.1))?;
    filetime::set_symlink_file_times(dst, mtime, mtime)?;
    Ok(())
}

/// Extracts a (possibly compressed) local archive into `dir` (ADD); owners kept, `..`
/// and absolute entries refused by the tar reader.
fn extract_archive(archive: &Path, dir: &Path) -> io::Result<()> {
    let f = fs::File::open(archive)?;
    let (_, r) = crate::archive::decompressed(f)?;
    // The guard bounds long names and PAX headers (the tar reader keeps them whole).
    let mut ar = tar::Archive::new(berth_image::targuard::TarGuard::new(r));
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    ar.unpack(dir)
}

/// Copies the plan's sources into `root` (a container's mounted filesystem).
pub fn copy_into(root: &Path, plan: &CopyPlan) -> Result<(), BuildError> {
    copy_into_linking(root, plan, None)
}

/// [`copy_into`], leaving to `linker` the files it can link instead of copying (the
/// caller makes the links with [`Linker::finish`] once `root` is unmounted).
pub fn copy_into_linking(
    root: &Path,
    plan: &CopyPlan,
    mut linker: Option<&mut Linker>,
) -> Result<(), BuildError> {
    if plan.chmod.is_some() {
        // A link would share (and re-mode) the source's inode.
        linker = None;
    }
    let rules = EntryRules {
        chmod: plan.chmod,
        exclude: plan.exclude.as_ref(),
    };
    let owner = plan.owner.unwrap_or((0, 0));
    let ends_slash = plan.dest.ends_with('/');
    if plan.sources.len() > 1 && !ends_slash {
        return Err(BuildError::invalid(format!(
            "When using {} with more than one source file, the destination must be a directory and end with a /",
            plan.op
        )));
    }
    let fail = |e: io::Error| {
        let mut msg = e.to_string();
        let mut cur = std::error::Error::source(&e);
        while let Some(c) = cur {
            msg.push_str(&format!(": {c}"));
            cur = c.source();
        }
        BuildError::failed(format!("failed to copy files: {msg}"))
    };
    let dest_exists_as_dir = scoped_join(root, &plan.dest, true)
        .map(|p| p.is_dir())
        .unwrap_or(false);
    for s in &plan.sources {
        if s.is_dir {
            let target = mkdir_all(root, &plan.dest, owner).map_err(fail)?;
            if let Some(l) = linker.as_deref_mut() {
                l.ensure_upper_dir(&target).map_err(fail)?;
            }
            let mut names: Vec<_> = fs::read_dir(&s.host)
                .map_err(fail)?
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for n in names {
                copy_entry(
                    &s.host.join(&n),
                    &target.join(&n),
                    owner,
                    linker.as_deref_mut(),
                    &rules,
                    &n.to_string_lossy(),
                )
                .map_err(fail)?;
            }
            continue;
        }
        let base = s.rel.rsplit('/').next().unwrap_or_default();
        if rules.skip(&s.rel) || rules.skip(base) {
            continue;
        }
        if plan.extract_archives && crate::archive::is_archive(&s.host) {
            let target = mkdir_all(root, &plan.dest, owner).map_err(fail)?;
            extract_archive(&s.host, &target).map_err(fail)?;
            continue;
        }
        let name = s
            .host
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let target_abs = if ends_slash || dest_exists_as_dir {
            format!("{}/{}", plan.dest.trim_end_matches('/'), name)
        } else {
            plan.dest.clone()
        };
        let parent = Path::new(&target_abs)
            .parent()
            .map(|p| p.to_string_lossy().to_string())
            .unwrap_or_else(|| "/".into());
        let parent_dir = mkdir_all(root, &parent, owner).map_err(fail)?;
        if let Some(l) = linker.as_deref_mut() {
            l.ensure_upper_dir(&parent_dir).map_err(fail)?;
        }
        let leaf = Path::new(&target_abs)
            .components()
            .next_back()
            .and_then(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .ok_or_else(|| BuildError::failed(format!("invalid destination {target_abs}")))?;
        copy_entry(
            &s.host,
            &parent_dir.join(leaf),
            owner,
            linker.as_deref_mut(),
            &rules,
            "",
        )
        .map_err(fail)?;
    }
    Ok(())
}

fn lookup_id(file: &str, name: &str) -> Option<u32> {
    file.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// `--chown=user[:group]` resolved with the image's `/etc/passwd` and `/etc/group`
/// (moby `parseChownFlag`: without a group, the group has the user's name or number).
pub fn resolve_chown(root: &Path, spec: &str) -> Result<(u32, u32), BuildError> {
    let (user, group) = spec.split_once(':').unwrap_or((spec, spec));
    let read = |p: &str| {
        scoped_join(root, p, true)
            .and_then(fs::read_to_string)
            .unwrap_or_default()
    };
    let uid = if user.parse::<u32>().is_ok() {
        user.parse().unwrap_or(0)
    } else {
        lookup_id(&read("/etc/passwd"), user).ok_or_else(|| {
            BuildError::invalid(format!(
                "unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"
            ))
        })?
    };
    let gid = if group.parse::<u32>().is_ok() {
        group.parse().unwrap_or(0)
    } else {
        lookup_id(&read("/etc/group"), group).ok_or_else(|| {
            BuildError::invalid(format!(
                "unable to convert uid/gid chown string to host mapping: can't find gid for group {group}: no such group: {group}"
            ))
        })?
    };
    Ok((uid, gid))
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
