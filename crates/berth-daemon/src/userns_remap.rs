//! `--userns-remap` (daemon.json `userns-remap`): the user and group whose subordinate
//! ids (`/etc/subuid`, `/etc/subgid`) containers' ids map onto, resolved as dockerd 20.10
//! does (moby `daemon/daemon_unix.go` `parseRemappedRoot`, `setupRemappedRoot`;
//! `pkg/idtools`), and the ownership and permission work the daemon does for it.
//!
//! `default` is the user and group `dockremap`, created (`useradd`/`adduser`) with a free
//! 65536-id range in each file when missing, as Docker does; only then does the daemon
//! change the host's users. The hidden daemon flags `--subuid-file` and `--subgid-file`
//! name other files than `/etc/subuid` and `/etc/subgid` (for tests, which never edit the
//! host's).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use berth_runtime::userns::{IdMapping, UserNamespace};
use nix::unistd::{Group, User};

const DEFAULT_SPECIFIER: &str = "default";
const DEFAULT_REMAPPED_ID: &str = "dockremap";
const DEFAULT_RANGE_START: u64 = 100_000;
const DEFAULT_RANGE_LEN: u64 = 65_536;

/// The daemon's remapping: who, and the maps every remapped container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remap {
    /// `user:group` as resolved (Docker rewrites its setting to this).
    pub name: String,
    pub ns: UserNamespace,
}

impl Remap {
    /// The host uid and gid of the containers' root.
    pub fn root(&self) -> (u32, u32) {
        self.ns.root()
    }
}

/// Where the subordinate ids are read (and, for `default`, added).
#[derive(Debug, Clone)]
pub struct SubIdFiles {
    pub uid: PathBuf,
    pub gid: PathBuf,
}

/// Resolves the setting; None when it is empty or names root (Docker: "root cannot be
/// remapped with itself; user namespaces are OFF").
pub fn setup(setting: &str, files: &SubIdFiles) -> anyhow::Result<Option<Remap>> {
    if setting.is_empty() {
        return Ok(None);
    }
    let (user, group) = parse_remapped_root(setting, files)?;
    if user == "root" {
        tracing::warn!(
            "User namespaces: root cannot be remapped with itself; user namespaces are OFF"
        );
        return Ok(None);
    }
    let u = User::from_name(&user)
        .ok()
        .flatten()
        .ok_or_else(|| anyhow!("Error during uid lookup for {user:?}: user not found"))?;
    let uid = u.uid.as_raw().to_string();
    let read = |p: &Path| {
        std::fs::read_to_string(p).or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(String::new())
            } else {
                Err(e).with_context(|| format!("reading {}", p.display()))
            }
        })
    };
    let uid_map = id_map(&read(&files.uid)?, &user, &uid);
    let gid_map = id_map(&read(&files.gid)?, &user, &uid);
    if uid_map.is_empty() {
        bail!("Can't create ID mappings: No subuid ranges found for user {user:?}");
    }
    if gid_map.is_empty() {
        bail!("Can't create ID mappings: No subgid ranges found for group {user:?}");
    }
    tracing::info!("User namespaces: ID ranges will be mapped to subuid/subgid ranges of: {user}");
    Ok(Some(Remap {
        name: format!("{user}:{group}"),
        ns: UserNamespace { uid_map, gid_map },
    }))
}

/// moby `parseRemappedRoot`: `user`, `user:group`, `uid`, `uid:gid`, or `default`.
fn parse_remapped_root(spec: &str, files: &SubIdFiles) -> anyhow::Result<(String, String)> {
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() > 2 {
        bail!("Invalid user/group specification in --userns-remap: {spec:?}");
    }
    let mut group = None;
    let user = if let Ok(uid) = parts[0].parse::<u32>() {
        let u = User::from_uid(uid.into())
            .ok()
            .flatten()
            .ok_or_else(|| anyhow!("Uid {uid} has no entry in /etc/passwd: user not found"))?;
        if parts.len() == 1 {
            let g = Group::from_gid(uid.into())
                .ok()
                .flatten()
                .ok_or_else(|| anyhow!("Gid {uid} has no entry in /etc/group: group not found"))?;
            group = Some(g.name);
        }
        u.name
    } else {
        let lookup = if parts[0] == DEFAULT_SPECIFIER {
            DEFAULT_REMAPPED_ID
        } else {
            parts[0]
        };
        match User::from_name(lookup).ok().flatten() {
            Some(u) => {
                if parts.len() == 1 {
                    let g = Group::from_name(lookup).ok().flatten().ok_or_else(|| {
                        anyhow!("Error during gid lookup for {lookup:?}: group not found")
                    })?;
                    group = Some(g.name);
                }
                u.name
            }
            None if parts[0] != DEFAULT_SPECIFIER => {
                bail!("Error during uid lookup for {lookup:?}: user: unknown user {lookup}")
            }
            None => {
                add_namespace_ranges_user(DEFAULT_REMAPPED_ID, files).map_err(|e| {
                    anyhow!("Error during {DEFAULT_REMAPPED_ID:?} user creation: {e}")
                })?;
                return Ok((DEFAULT_REMAPPED_ID.into(), DEFAULT_REMAPPED_ID.into()));
            }
        }
    };
    if parts.len() == 2 {
        group = Some(if let Ok(gid) = parts[1].parse::<u32>() {
            Group::from_gid(gid.into())
                .ok()
                .flatten()
                .ok_or_else(|| anyhow!("Gid {gid} has no entry in /etc/passwd: group not found"))?
                .name
        } else {
            Group::from_name(parts[1]).ok().flatten().ok_or_else(|| {
                anyhow!(
                    "Error during groupname lookup for {:?}: group: unknown group {}",
                    parts[1],
                    parts[1]
                )
            })?;
            parts[1].to_string()
        });
    }
    Ok((user, group.unwrap_or_default()))
}

/// One `name:start:count` line of a subordinate id file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SubId {
    name: String,
    start: u64,
    count: u64,
}

fn parse_subids(text: &str) -> Vec<SubId> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                return None;
            }
            let mut f = l.split(':');
            let (name, start, count) = (f.next()?, f.next()?, f.next()?);
            Some(SubId {
                name: name.to_string(),
                start: start.trim().parse().ok()?,
                count: count.trim().parse().ok()?,
            })
        })
        .collect()
}

/// pkg/idtools `createIDMap`: the user's ranges (by name or uid), sorted, mapped onto
/// container ids from 0 on.
fn id_map(text: &str, name: &str, uid: &str) -> Vec<IdMapping> {
    let mut ranges: Vec<SubId> = parse_subids(text)
        .into_iter()
        .filter(|s| s.name == name || s.name == uid)
        .filter(|s| s.count > 0 && s.start + s.count <= u32::MAX as u64)
        .collect();
    ranges.sort_by_key(|s| s.start);
    let mut next = 0u64;
    let mut out = Vec::new();
    for r in ranges {
        if next + r.count > u32::MAX as u64 {
            break;
        }
        out.push(IdMapping {
            container_id: next as u32,
            host_id: r.start as u32,
            size: r.count as u32,
        });
        next += r.count;
    }
    out
}

/// The first start at or above 100000 that no existing range overlaps.
fn next_range_start(text: &str) -> u64 {
    let mut ranges = parse_subids(text);
    ranges.sort_by_key(|s| s.start);
    let mut start = DEFAULT_RANGE_START;
    for r in ranges {
        let overlaps = start + DEFAULT_RANGE_LEN > r.start && start < r.start + r.count;
        if overlaps {
            start = r.start + r.count;
        }
    }
    start
}

/// Creates `name` (a system user and group) and gives it a 65536-id range in each
/// subordinate file that has none for it (moby `AddNamespaceRangesUser`).
fn add_namespace_ranges_user(name: &str, files: &SubIdFiles) -> anyhow::Result<()> {
    let have = |bin: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
    };
    let (cmd, args): (&str, Vec<&str>) = if have("adduser") {
        (
            "adduser",
            vec![
                "--system",
                "--shell",
                "/bin/false",
                "--no-create-home",
                "--disabled-login",
                "--disabled-password",
                "--group",
                name,
            ],
        )
    } else if have("useradd") {
        ("useradd", vec!["-r", "-s", "/bin/false", name])
    } else {
        bail!("error adding user {name:?}: cannot add user; no useradd/adduser binary found");
    };
    let out = std::process::Command::new(cmd)
        .args(&args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!(
            "error adding user {name:?}: failed to add user with error: {}; output: {:?}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for path in [&files.uid, &files.gid] {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if parse_subids(&text).iter().any(|s| s.name == name) {
            continue;
        }
        let start = next_range_start(&text);
        let mut new = text;
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        new.push_str(&format!("{name}:{start}:{DEFAULT_RANGE_LEN}\n"));
        let tmp = path.with_extension("berth-tmp");
        std::fs::write(&tmp, new.as_bytes())
            .and_then(|_| std::fs::rename(&tmp, path))
            .with_context(|| {
                format!(
                    "couldn't create subordinate ID ranges in {}",
                    path.display()
                )
            })?;
    }
    Ok(())
}

/// Docker's `setupDaemonRoot` for a remapped daemon: the root and exec-root 0711 (the
/// remapped root must traverse them to the container's files), and every directory above
/// them searchable by it.
pub fn prepare_roots(remap: &Remap, dirs: &[&Path]) -> anyhow::Result<()> {
    let (uid, gid) = remap.root();
    for dir in dirs {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
            .with_context(|| format!("chmod {}", dir.display()))?;
        let mut d = dir.to_path_buf();
        while let Some(parent) = d.parent() {
            if parent == Path::new("/") || parent.as_os_str().is_empty() {
                break;
            }
            if !can_access(parent, uid, gid) {
                bail!(
                    "a subdirectory in your graphroot path ({}) restricts access to the remapped root uid/gid; please fix by allowing 'o+x' permissions on existing directories",
                    dir.display()
                );
            }
            d = parent.to_path_buf();
        }
    }
    Ok(())
}

fn can_access(path: &Path, uid: u32, gid: u32) -> bool {
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    let mode = m.mode();
    mode & 0o001 != 0
        || (m.uid() == uid && mode & 0o100 != 0)
        || (m.gid() == gid && mode & 0o010 != 0)
}

/// A directory of a remapped container that its root must traverse but not list or
/// write: `root:<remapped gid>`, 0710 (Docker's mode for its remapped roots).
pub fn share_dir(ns: &UserNamespace, dir: &Path) -> std::io::Result<()> {
    std::os::unix::fs::chown(dir, Some(0), Some(ns.root().1))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o710))
}

/// Owned by the containers' root (the writable layer's top, /etc/hosts and friends,
/// volumes created for them).
pub fn give_to_root(ns: &UserNamespace, path: &Path) -> std::io::Result<()> {
    let (uid, gid) = ns.root();
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// Shifts the ownership of every file under `dir` (itself included) from container ids
/// to host ids: content copied from an image layer (stored unshifted) into a volume.
pub fn shift_tree(ns: &UserNamespace, dir: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let uid = ns.host_uid(meta.uid()).unwrap_or(meta.uid());
    let gid = ns.host_gid(meta.gid()).unwrap_or(meta.gid());
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    if meta.is_dir() {
        for e in std::fs::read_dir(dir)? {
            shift_tree(ns, &e?.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_follow_the_users_ranges_sorted_from_container_id_0() {
        let text = "# comment\nother:100000:65536\nme:300000:10\n1234:200000:5\nbad line\nme:x:1\n";
        let m = id_map(text, "me", "1234");
        assert_eq!(
            m,
            vec![
                IdMapping {
                    container_id: 0,
                    host_id: 200000,
                    size: 5
                },
                IdMapping {
                    container_id: 5,
                    host_id: 300000,
                    size: 10
                },
            ]
        );
        assert!(id_map(text, "nobody-here", "99999").is_empty());
    }

    #[test]
    fn a_new_range_starts_after_those_it_would_overlap() {
        assert_eq!(next_range_start(""), 100000);
        assert_eq!(next_range_start("a:100000:65536\n"), 165536);
        assert_eq!(next_range_start("a:100000:65536\nb:165536:65536\n"), 231072);
        // a range far above leaves the default free
        assert_eq!(next_range_start("a:500000:65536\n"), 100000);
    }

    fn files() -> SubIdFiles {
        SubIdFiles {
            uid: "/nonexistent/subuid".into(),
            gid: "/nonexistent/subgid".into(),
        }
    }

    #[test]
    fn remapped_root_specs_in_dockers_words() {
        let parse_remapped_root = |s: &str| super::parse_remapped_root(s, &files());
        assert_eq!(
            parse_remapped_root("a:b:c").unwrap_err().to_string(),
            "Invalid user/group specification in --userns-remap: \"a:b:c\""
        );
        assert_eq!(
            parse_remapped_root("root").unwrap(),
            ("root".to_string(), "root".to_string())
        );
        assert_eq!(
            parse_remapped_root("0:0").unwrap(),
            ("root".to_string(), "root".to_string())
        );
        let e = parse_remapped_root("no-such-user-here")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Error during uid lookup for \"no-such-user-here\""),
            "{e}"
        );
        let e = parse_remapped_root("root:no-such-group-here")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Error during groupname lookup for \"no-such-group-here\""),
            "{e}"
        );
    }
}
