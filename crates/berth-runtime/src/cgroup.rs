//! Container cgroups on cgroup v1, v2 and the hybrid of both.
//!
//! A container's cgroup is in every v1 hierarchy that has one of the controllers Berth
//! uses and in the v2 tree: `<own>/berth/<id>` without a parent, where `<own>` is the
//! shim's own cgroup in that hierarchy (from `/proc/self/cgroup`, so containers nest
//! under the daemon's cgroup, per controller); with `spec.cgroup_parent`, Docker's
//! cgroupfs paths `<parent>/<id>` (a relative parent under `<own>`), the parent
//! directories made as [`crate::cgroup_parent`] says. The paths are saved in
//! `<state-dir>/cgroups.json` ([`CgroupPaths`]); the daemon uses [`set_frozen`] and
//! [`pids`] on them from its own process. The limits written into them are
//! [`crate::cgroup_limits`]'s.

use crate::cgroup_limits::apply_limits;
use crate::error::{Result, RuntimeError};
use crate::spec::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// File in the state dir holding the container's cgroup paths.
pub const CGROUPS_FILE: &str = "cgroups.json";

/// v1 controllers a container gets a cgroup in.
const V1_CONTROLLERS: &[&str] = &[
    "memory", "cpu", "cpuacct", "pids", "cpuset", "freezer", "devices", "blkio",
];
/// v2 controllers enabled for the container's subtree when available.
const V2_CONTROLLERS: &[&str] = &["cpu", "cpuset", "memory", "pids", "io"];

/// Where a container's cgroups are (host paths).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CgroupPaths {
    /// v1 controller name → the container's cgroup directory in that hierarchy.
    pub v1: BTreeMap<String, PathBuf>,
    /// The container's cgroup directory in the v2 tree (pure v2 or hybrid `unified`).
    pub unified: Option<PathBuf>,
    /// Parent directories Berth made for containers (`--cgroup-parent`), deepest first:
    /// [`remove`] removes those left empty ([`crate::cgroup_parent`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<PathBuf>,
    /// The registry of Berth-made parents ([`crate::cgroup_parent::Registry`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<PathBuf>,
}

impl CgroupPaths {
    /// Every distinct directory, v1 first.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for p in self.v1.values().chain(self.unified.iter()) {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }

    /// True when there is no v1 hierarchy (pure cgroup v2).
    pub fn is_pure_v2(&self) -> bool {
        self.v1.is_empty() && self.unified.is_some()
    }

    /// The directory to use for `controller`: its v1 hierarchy, else the v2 tree when
    /// the controller is enabled there.
    pub(crate) fn dir_for(&self, controller: &str) -> Option<(PathBuf, bool)> {
        if let Some(p) = self.v1.get(controller) {
            return Some((p.clone(), false));
        }
        let u = self.unified.as_ref()?;
        let ctrls = std::fs::read_to_string(u.join("cgroup.controllers")).unwrap_or_default();
        ctrls
            .split_whitespace()
            .any(|c| c == controller)
            .then(|| (u.clone(), true))
    }

    pub fn save(&self, state_dir: &Path) -> Result<()> {
        let data =
            serde_json::to_vec_pretty(self).map_err(|e| RuntimeError::Internal(e.to_string()))?;
        crate::fsutil::write_atomic(&state_dir.join(CGROUPS_FILE), &data)
    }

    pub fn load(state_dir: &Path) -> Result<Self> {
        let path = state_dir.join(CGROUPS_FILE);
        let data = std::fs::read(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
        serde_json::from_slice(&data)
            .map_err(|e| RuntimeError::Internal(format!("{}: {e}", path.display())))
    }
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchy {
    /// v1 controllers (e.g. `["cpu","cpuacct"]`, or `["name=systemd"]`); empty for v2.
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    pub v2: bool,
}

/// Parses `/proc/self/mountinfo` text for cgroup mounts.
pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (Some(mountpoint), Some(fstype)) = (pre.get(4), post.first()) else {
            continue;
        };
        let mountpoint = PathBuf::from(unescape_mount(mountpoint));
        match *fstype {
            "cgroup2" => out.push(Hierarchy {
                controllers: vec![],
                mountpoint,
                v2: true,
            }),
            "cgroup" => {
                let opts = post.get(2).copied().unwrap_or("");
                let controllers: Vec<String> = opts
                    .split(',')
                    .filter(|o| *o != "rw" && *o != "ro")
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .map(String::from)
                    .collect();
                if !controllers.is_empty()
                    && !out.iter().any(|h: &Hierarchy| h.controllers == controllers)
                {
                    out.push(Hierarchy {
                        controllers,
                        mountpoint,
                        v2: false,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Parses `/proc/<pid>/cgroup`: controller list (`""` for v2) → path.
pub fn parse_proc_cgroup(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            Some((ctrls.to_string(), path.to_string()))
        })
        .collect()
}

pub(crate) fn hierarchies() -> Result<Vec<Hierarchy>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RuntimeError::io("read", "/proc/self/mountinfo", e))?;
    Ok(parse_mountinfo(&text))
}

pub(crate) fn write_file(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| {
        RuntimeError::Internal(format!("writing {value:?} to {}: {e}", path.display()))
    })
}

/// The calling process's own cgroup (relative to the hierarchy's root) for `key`.
fn own_for<'a>(key: &str, own: &'a BTreeMap<String, String>) -> &'a str {
    own.get(key).map_or("/", String::as_str)
}

pub(crate) fn join_rel(base: &Path, rel: &str) -> PathBuf {
    base.join(rel.trim_start_matches('/'))
}

/// Creates the container's cgroups and applies the limits. On failure nothing is left.
pub fn create(
    id: &str,
    cgroup_parent: &str,
    res: &Resources,
    privileged: bool,
) -> Result<CgroupPaths> {
    create_noting_parents(id, cgroup_parent, res, privileged, None)
}

/// [`create`], noting the parent directories made in `registry` (see
/// [`crate::cgroup_parent`]) so they are removed after the last container in them.
pub fn create_noting_parents(
    id: &str,
    cgroup_parent: &str,
    res: &Resources,
    privileged: bool,
    registry: Option<&Path>,
) -> Result<CgroupPaths> {
    let own_text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| RuntimeError::io("read", "/proc/self/cgroup", e))?;
    let own = parse_proc_cgroup(&own_text);
    let mut paths = CgroupPaths::default();
    let mut reg = match (registry, cgroup_parent.is_empty()) {
        (Some(r), false) => {
            paths.registry = Some(r.to_path_buf());
            Some(crate::cgroup_parent::Registry::lock(r)?)
        }
        _ => None,
    };
    // Makes `dir` and its ancestors; returns those made, top-down.
    let mut make = |dir: &Path, paths: &mut CgroupPaths| -> Result<Vec<PathBuf>> {
        match reg.as_mut() {
            Some(reg) => {
                let (made, parents) = reg.create(dir)?;
                for p in parents {
                    if !paths.parents.contains(&p) {
                        paths.parents.push(p);
                    }
                }
                Ok(made)
            }
            None => {
                let mut missing: Vec<PathBuf> = dir
                    .ancestors()
                    .take_while(|a| !a.exists())
                    .map(Path::to_path_buf)
                    .collect();
                missing.reverse();
                std::fs::create_dir_all(dir)
                    .map_err(|e| RuntimeError::io("creating cgroup", dir, e))?;
                Ok(missing)
            }
        }
    };
    let result = (|| {
        for h in hierarchies()? {
            if h.v2 {
                let own_rel = own_for("", &own);
                let dir =
                    crate::cgroup_parent::container_dir(&h.mountpoint, own_rel, cgroup_parent, id);
                make(&dir, &mut paths)?;
                paths.unified = Some(dir.clone());
                // Enable the controllers the container needs along the way (best effort:
                // a cgroup with processes refuses, and then the limit write reports it).
                let mut chain: Vec<&Path> = dir
                    .ancestors()
                    .skip(1)
                    .take_while(|a| a.starts_with(&h.mountpoint))
                    .collect();
                chain.reverse();
                for d in chain {
                    let avail =
                        std::fs::read_to_string(d.join("cgroup.controllers")).unwrap_or_default();
                    for c in avail
                        .split_whitespace()
                        .filter(|c| V2_CONTROLLERS.contains(c))
                    {
                        let _ = std::fs::write(d.join("cgroup.subtree_control"), format!("+{c}"));
                    }
                }
            } else {
                if h.controllers.iter().all(|c| c.starts_with("name=")) {
                    continue;
                }
                let key = h.controllers.join(",");
                let own_rel = own_for(&key, &own);
                let dir =
                    crate::cgroup_parent::container_dir(&h.mountpoint, own_rel, cgroup_parent, id);
                make(&dir, &mut paths)?;
                for c in &h.controllers {
                    paths.v1.insert(c.clone(), dir.clone());
                }
                if h.controllers.iter().any(|c| c == "cpuset") {
                    // Every directory on the way needs its cpus and mems (top-down; a
                    // parent made by someone else with `mkdir` has none either).
                    let mut chain: Vec<&Path> = dir
                        .ancestors()
                        .take_while(|a| a.starts_with(&h.mountpoint) && *a != h.mountpoint)
                        .collect();
                    chain.reverse();
                    for d in chain {
                        crate::cgroup_parent::init_cpuset(d)?;
                    }
                }
            }
        }
        apply_limits(&paths, res, privileged)
    })();
    drop(reg);
    match result {
        Ok(()) => Ok(paths),
        Err(e) => {
            let _ = remove(&paths);
            Err(e)
        }
    }
}

/// Where the cgroup v1 hierarchy of `controller` is mounted on this host, if it has one.
pub fn v1_root(controller: &str) -> Option<PathBuf> {
    hierarchies()
        .unwrap_or_default()
        .into_iter()
        .find(|h| !h.v2 && h.controllers.iter().any(|c| c == controller))
        .map(|h| h.mountpoint)
}

/// True when the host can set a block I/O weight (v1 `blkio.weight` or the v2 `io`
/// controller).
pub fn blkio_weight_supported() -> bool {
    hierarchies().unwrap_or_default().iter().any(|h| {
        if h.v2 {
            std::fs::read_to_string(h.mountpoint.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .any(|c| c == "io")
        } else {
            h.controllers.iter().any(|c| c == "blkio")
                && (h.mountpoint.join("blkio.weight").exists()
                    || h.mountpoint.join("blkio.bfq.weight").exists())
        }
    })
}

/// Moves `pid` into the cgroups `dirs` (through `cgroup.procs`).
pub fn add_process(dirs: &[PathBuf], pid: i32) -> Result<()> {
    for dir in dirs {
        write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
    }
    Ok(())
}

/// True when the kernel's OOM killer killed a process of the container.
pub fn oom_killed(paths: &CgroupPaths) -> bool {
    let Some((dir, v2)) = paths.dir_for("memory") else {
        return false;
    };
    let file = if v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    text.lines().any(|l| {
        let mut it = l.split_whitespace();
        it.next() == Some("oom_kill")
            && it.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) > 0
    })
}

/// Removes the container's cgroup directories, waiting up to 2 s for them to empty.
pub fn remove(paths: &CgroupPaths) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut last = Ok(());
    for dir in paths.dirs() {
        loop {
            match std::fs::remove_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => {
                    last = Err(RuntimeError::io("removing cgroup", &dir, e));
                    break;
                }
            }
        }
    }
    if let (Some(reg), false) = (&paths.registry, paths.parents.is_empty()) {
        match crate::cgroup_parent::Registry::lock(reg) {
            Ok(mut reg) => reg.remove_parents(&paths.parents),
            Err(e) => last = last.and(Err(e)),
        }
    }
    last
}

/// Freezes (`pause`) or thaws (`unpause`) the container whose state dir is given:
/// v1 `freezer.state` or v2 `cgroup.freeze`. Returns once the state is reached.
pub fn set_frozen(state_dir: &Path, frozen: bool) -> Result<()> {
    let paths = CgroupPaths::load(state_dir)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    if let Some(dir) = paths.v1.get("freezer") {
        let want = if frozen { "FROZEN" } else { "THAWED" };
        loop {
            write_file(&dir.join("freezer.state"), want)?;
            let now = std::fs::read_to_string(dir.join("freezer.state")).unwrap_or_default();
            if now.trim() == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(RuntimeError::Internal(format!(
                    "{}: freezer state is {} instead of {want}",
                    dir.display(),
                    now.trim()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let Some(dir) = paths.unified else {
        return Err(RuntimeError::Internal(
            "the container has no freezer cgroup".into(),
        ));
    };
    write_file(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    loop {
        let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
        if events.lines().any(|l| l.trim() == want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(RuntimeError::Internal(format!(
                "{}: timed out waiting for {want}",
                dir.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Host pids of every process in the container (for `top`), sorted.
pub fn pids(state_dir: &Path) -> Result<Vec<i32>> {
    let paths = CgroupPaths::load(state_dir)?;
    let dir = paths
        .unified
        .clone()
        .or_else(|| {
            paths
                .v1
                .get("pids")
                .or_else(|| paths.v1.values().next())
                .cloned()
        })
        .ok_or_else(|| RuntimeError::Internal("the container has no cgroup".into()))?;
    let file = dir.join("cgroup.procs");
    let text = std::fs::read_to_string(&file).map_err(|e| RuntimeError::io("read", &file, e))?;
    let mut v: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    v.sort_unstable();
    Ok(v)
}

/// Kills whatever is left in the container's cgroups and removes them, using
/// `<state-dir>/cgroups.json`. For the daemon, when a shim died without cleaning up.
/// A missing `cgroups.json` means there is nothing to do.
pub fn destroy(state_dir: &Path) -> Result<()> {
    let paths = match CgroupPaths::load(state_dir) {
        Ok(p) => p,
        Err(RuntimeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut any = false;
        for dir in paths.dirs() {
            let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                any = true;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if !any || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    remove(&paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";

    #[test]
    fn finds_hierarchies() {
        let h = parse_mountinfo(MOUNTINFO);
        assert_eq!(h.len(), 4);
        assert!(h[0].v2);
        assert_eq!(h[0].mountpoint, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(h[1].controllers, vec!["name=systemd"]);
        assert_eq!(h[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(h[3].controllers, vec!["memory"]);
    }

    #[test]
    fn own_cgroup_per_controller() {
        let own = parse_proc_cgroup("4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/\n");
        assert_eq!(own_for("memory", &own), "/process_api/abc");
        assert_eq!(own_for("cpu,cpuacct", &own), "/");
        assert_eq!(own_for("", &own), "/");
        assert_eq!(own_for("blkio", &own), "/");
        assert_eq!(
            join_rel(Path::new("/sys/fs/cgroup/memory"), "/process_api/abc"),
            PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")
        );
    }

    #[test]
    fn paths_roundtrip_and_dedup() {
        let d = tempfile::tempdir().unwrap();
        let mut p = CgroupPaths::default();
        p.v1.insert("cpu".into(), "/x/cpu,cpuacct/berth/1".into());
        p.v1.insert("cpuacct".into(), "/x/cpu,cpuacct/berth/1".into());
        p.unified = Some("/x/unified/berth/1".into());
        assert_eq!(p.dirs().len(), 2);
        p.save(d.path()).unwrap();
        assert_eq!(CgroupPaths::load(d.path()).unwrap(), p);
    }
}
