//! `--cgroup-parent`: where a container's cgroup goes, and the parent directories Berth
//! makes for it and removes again after the last container in them went.
//!
//! Paths follow Docker's cgroupfs driver: an absolute parent is taken from each
//! hierarchy's root (`/sys/fs/cgroup/<ctl>/<parent>/<id>`), a relative one from the
//! daemon's own cgroup in that hierarchy. Without a parent, containers go in
//! `<own cgroup>/berth/<id>`.
//!
//! Every directory Berth creates on the way is set up so that a task can join below it
//! (v1 cpuset: `cpuset.cpus` and `cpuset.mems` copied from the nearest ancestor that has
//! them; v2: the controllers enabled in `cgroup.subtree_control`, best effort) and noted
//! in a registry file (`<exec-root>/cgroup-parents.json`, under `flock`), so that the
//! removal of the last container below one of them removes it too, whichever container
//! created it: the host's cgroup tree is left as it was found.

use crate::error::{Result, RuntimeError};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The registry's file name in the exec-root.
pub const REGISTRY_FILE: &str = "cgroup-parents.json";

/// A `--cgroup-parent` value cleaned lexically, as runc does: `.` and empty parts go,
/// `..` removes the part before it and never climbs above the start (so a parent never
/// leaves its hierarchy). Absolute stays absolute.
pub fn clean(cgroup_parent: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in cgroup_parent.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if cgroup_parent.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// The container's cgroup directory in the hierarchy mounted at `mount`, where the
/// calling process is in `own` (relative to that hierarchy's root).
pub fn container_dir(mount: &Path, own: &str, cgroup_parent: &str, id: &str) -> PathBuf {
    let rel = |p: &str| p.trim_start_matches('/').to_string();
    let cgroup_parent = &clean(cgroup_parent);
    if cgroup_parent.is_empty() {
        mount.join(rel(own)).join("berth").join(id)
    } else if cgroup_parent.starts_with('/') {
        mount.join(rel(cgroup_parent)).join(id)
    } else {
        mount.join(rel(own)).join(cgroup_parent).join(id)
    }
}

/// The registry of parent directories Berth created, locked for the life of the value.
pub struct Registry {
    file: File,
    dirs: BTreeSet<PathBuf>,
}

impl Registry {
    /// Opens and locks (exclusive `flock`, waits) the registry at `path`.
    pub fn lock(path: &Path) -> Result<Registry> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| RuntimeError::io("open", path, e))?;
        loop {
            // SAFETY: flock takes the fd of `file`, open for the call, and a flag.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break;
            }
            let e = nix::errno::Errno::last();
            if e != nix::errno::Errno::EINTR {
                return Err(RuntimeError::sys("locking the cgroup parent registry", e));
            }
        }
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        // A torn write (crash) only forgets which parents Berth made: they stay.
        let dirs = serde_json::from_str(&text).unwrap_or_default();
        Ok(Registry { file, dirs })
    }

    fn save(&mut self) {
        let Ok(data) = serde_json::to_vec(&self.dirs) else {
            return;
        };
        let _ = self.file.set_len(0);
        let _ = self.file.rewind();
        let _ = self.file.write_all(&data);
    }

    /// Creates `dir` and its missing ancestors (top-down), noting the ancestors made
    /// here. Returns the directories made (the container's own last) and every
    /// Berth-made ancestor of `dir`, deepest first (what [`Self::remove_parents`] tries).
    pub fn create(&mut self, dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
        let mut missing = Vec::new();
        let mut d = dir;
        while !d.exists() {
            missing.push(d.to_path_buf());
            match d.parent() {
                Some(p) => d = p,
                None => break,
            }
        }
        missing.reverse();
        // Entries whose directory is gone (removed behind our back) are forgotten.
        self.dirs.retain(|p| p.exists() || missing.contains(p));
        let mut made = Vec::new();
        for m in &missing {
            match std::fs::create_dir(m) {
                Ok(()) => made.push(m.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    let parents: Vec<PathBuf> = made.iter().rev().cloned().collect();
                    let _ = std::fs::remove_dir(dir);
                    remove_all(&parents);
                    return Err(RuntimeError::io("creating cgroup", m, e));
                }
            }
            if m != dir {
                self.dirs.insert(m.clone());
            }
        }
        self.save();
        let parents = dir
            .ancestors()
            .skip(1)
            .filter(|a| self.dirs.contains(*a))
            .map(Path::to_path_buf)
            .collect();
        Ok((made, parents))
    }

    /// Removes the Berth-made parents that are empty now, deepest first.
    pub fn remove_parents(&mut self, parents: &[PathBuf]) {
        let mut sorted: Vec<&PathBuf> = parents.iter().collect();
        sorted.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        let mut changed = false;
        for p in sorted {
            if !self.dirs.contains(p) {
                continue;
            }
            match std::fs::remove_dir(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // Still in use by another container (EBUSY / ENOTEMPTY): it stays.
                Err(_) => continue,
            }
            self.dirs.remove(p);
            changed = true;
        }
        if changed {
            self.save();
        }
    }
}

fn remove_all(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

/// v1 cpuset: a new cgroup needs `cpuset.cpus` and `cpuset.mems` before a task joins
/// below it; each empty one is copied from the nearest ancestor that has it.
pub fn init_cpuset(dir: &Path) -> Result<()> {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        if !cur.trim().is_empty() {
            continue;
        }
        let val = dir
            .ancestors()
            .skip(1)
            .map(|a| std::fs::read_to_string(a.join(f)).unwrap_or_default())
            .find(|v| !v.trim().is_empty())
            .unwrap_or_default();
        std::fs::write(dir.join(f), val.trim()).map_err(|e| {
            RuntimeError::Internal(format!(
                "writing {:?} to {}: {e}",
                val.trim(),
                dir.join(f).display()
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_paths() {
        let m = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            container_dir(m, "/own", "", "c1"),
            PathBuf::from("/sys/fs/cgroup/memory/own/berth/c1")
        );
        assert_eq!(
            container_dir(m, "/own", "/a/b", "c1"),
            PathBuf::from("/sys/fs/cgroup/memory/a/b/c1")
        );
        assert_eq!(
            container_dir(m, "/own", "rel", "c1"),
            PathBuf::from("/sys/fs/cgroup/memory/own/rel/c1")
        );
        assert_eq!(
            container_dir(m, "/", "rel", "c1"),
            PathBuf::from("/sys/fs/cgroup/memory/rel/c1")
        );
        assert_eq!(clean("/a/../b"), "/b");
        assert_eq!(clean("/../../b/./c/"), "/b/c");
        assert_eq!(clean("../x"), "x");
        assert_eq!(clean("a//b"), "a/b");
        assert_eq!(
            container_dir(m, "/own", "../../../etc", "c1"),
            PathBuf::from("/sys/fs/cgroup/memory/own/etc/c1")
        );
    }

    #[test]
    fn parents_are_removed_after_the_last_user_only() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = tmp.path().join(REGISTRY_FILE);
        let pre = tmp.path().join("pre");
        std::fs::create_dir(&pre).unwrap();
        let a = pre.join("x/y/a");
        let b = pre.join("x/y/b");
        let (made_a, parents_a) = Registry::lock(&reg).unwrap().create(&a).unwrap();
        assert_eq!(made_a, vec![pre.join("x"), pre.join("x/y"), a.clone()]);
        assert_eq!(parents_a, vec![pre.join("x/y"), pre.join("x")]);
        let (made_b, parents_b) = Registry::lock(&reg).unwrap().create(&b).unwrap();
        assert_eq!(made_b, vec![b.clone()]);
        assert_eq!(parents_b, parents_a);
        // a goes first: the parents stay for b.
        std::fs::remove_dir(&a).unwrap();
        Registry::lock(&reg).unwrap().remove_parents(&parents_a);
        assert!(pre.join("x/y").is_dir());
        std::fs::remove_dir(&b).unwrap();
        Registry::lock(&reg).unwrap().remove_parents(&parents_b);
        assert!(!pre.join("x").exists());
        assert!(pre.is_dir(), "a directory Berth did not make is left");
    }
}
