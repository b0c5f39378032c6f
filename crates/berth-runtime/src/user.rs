//! Docker's `-u user[:group]` resolved against the container's `/etc/passwd` and
//! `/etc/group` (the rules of moby/sys/user `GetExecUser`).

use crate::error::{Result, RuntimeError};

/// The identity a container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (from `/etc/group` membership when no group was named).
    pub sgids: Vec<u32>,
    pub home: String,
}

impl ExecUser {
    /// The groups passed to `setgroups`: the primary group first, then the
    /// supplementary ones (moby adds the primary group since CVE-2022-36109).
    pub fn additional_gids(&self) -> Vec<u32> {
        std::iter::once(self.gid)
            .chain(self.sgids.iter().copied())
            .collect()
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry<'_>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?,
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).copied().unwrap_or(""),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry<'_>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?,
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_id(s: &str) -> Option<u32> {
    s.parse::<u32>().ok().filter(|v| *v <= i32::MAX as u32)
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, …). `passwd` and
/// `group` are the files' contents (empty when the image lacks them).
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ExecUser> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (spec, ""),
    };
    if !user_arg.is_empty()
        && user_arg.bytes().all(|c| c.is_ascii_digit())
        && parse_id(user_arg).is_none()
    {
        return Err(RuntimeError::InvalidArgument(format!(
            "uid {user_arg} out of range"
        )));
    }
    let mut out = ExecUser {
        uid: 0,
        gid: 0,
        sgids: Vec::new(),
        home: "/".to_string(),
    };
    let users = parse_passwd(passwd);
    let found = if user_arg.is_empty() {
        users.iter().find(|u| u.uid == 0)
    } else if let Some(uid) = parse_id(user_arg) {
        out.uid = uid;
        users.iter().find(|u| u.uid == uid)
    } else {
        match users.iter().find(|u| u.name == user_arg) {
            Some(u) => Some(u),
            None => {
                return Err(RuntimeError::NotFound(format!(
                    "unable to find user {user_arg}: no matching entries in passwd file"
                )))
            }
        }
    };
    let mut user_name = None;
    if let Some(u) = found {
        out.uid = u.uid;
        out.gid = u.gid;
        if !u.home.is_empty() {
            out.home = u.home.to_string();
        }
        user_name = Some(u.name);
    }

    let groups = parse_group(group);
    if !group_arg.is_empty() {
        if let Some(gid) = parse_id(group_arg) {
            out.gid = gid;
        } else {
            match groups.iter().find(|g| g.name == group_arg) {
                Some(g) => out.gid = g.gid,
                None => {
                    return Err(RuntimeError::NotFound(format!(
                        "unable to find group {group_arg}: no matching entries in group file"
                    )))
                }
            }
        }
    } else if let Some(name) = user_name {
        out.sgids = groups
            .iter()
            .filter(|g| g.members.contains(&name))
            .map(|g| g.gid)
            .collect();
    }
    Ok(out)
}

/// `--group-add`: names resolved in the container's `/etc/group`, numbers as they are,
/// added to the supplementary groups (moby/sys/user `GetAdditionalGroups`).
pub fn add_groups(user: &mut ExecUser, extra: &[String], group: &str) -> Result<()> {
    let groups = parse_group(group);
    for g in extra {
        let gid = match groups.iter().find(|e| e.name == g.as_str()) {
            Some(e) => e.gid,
            None => parse_id(g).ok_or_else(|| {
                RuntimeError::NotFound(format!(
                    "Unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
        if !user.sgids.contains(&gid) {
            user.sgids.push(gid);
        }
    }
    Ok(())
}

/// Adds `HOME` from the resolved user when `env` lacks it.
pub fn add_home(env: &mut Vec<String>, user: &ExecUser) {
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        postgres:x:70:70::/var/lib/postgresql:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnobody:x:65534:\npostgres:x:70:\nwheel:x:10:postgres,root\naudio:x:29:postgres\n";

    #[test]
    fn group_add_by_name_and_number() {
        let mut u = resolve("postgres", PASSWD, GROUP).unwrap();
        add_groups(
            &mut u,
            &["audio".into(), "1234".into(), "wheel".into()],
            GROUP,
        )
        .unwrap();
        assert_eq!(u.sgids, vec![10, 29, 1234]);
        assert_eq!(
            add_groups(&mut u, &["nope".into()], GROUP)
                .unwrap_err()
                .to_string(),
            "Unable to find group nope: no matching entries in group file"
        );
    }

    #[test]
    fn default_is_root() {
        let u = resolve("", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.sgids, vec![10]);
        let u = resolve("", "", "").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/"));
    }

    #[test]
    fn by_name_with_supplementary_groups() {
        let u = resolve("postgres", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (70, 70));
        assert_eq!(u.home, "/var/lib/postgresql");
        assert_eq!(u.sgids, vec![10, 29]);
    }

    #[test]
    fn numeric_uid_known_and_unknown() {
        let u = resolve("65534", PASSWD, GROUP).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.home.as_str()),
            (65534, 65534, "/nonexistent")
        );
        let u = resolve("1234", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1234, 0, "/"));
        assert!(u.sgids.is_empty());
    }

    #[test]
    fn explicit_group_by_name_and_number() {
        let u = resolve("postgres:wheel", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (70, 10));
        assert!(u.sgids.is_empty());
        let u = resolve("1000:1000", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
    }

    #[test]
    fn unknown_names_use_docker_words() {
        let e = resolve("nosuch", PASSWD, GROUP).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find user nosuch: no matching entries in passwd file"
        );
        let e = resolve("root:nogroup", PASSWD, GROUP).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
        assert!(resolve("99999999999", PASSWD, GROUP).is_err());
    }

    #[test]
    fn primary_group_is_also_supplementary() {
        let u = resolve("postgres", PASSWD, GROUP).unwrap();
        assert_eq!(u.additional_gids(), vec![70, 10, 29]);
        assert_eq!(
            resolve("1000:1000", PASSWD, GROUP)
                .unwrap()
                .additional_gids(),
            vec![1000]
        );
    }

    #[test]
    fn home_added_only_when_missing() {
        let u = resolve("postgres", PASSWD, GROUP).unwrap();
        let mut env = vec!["PATH=/bin".to_string()];
        add_home(&mut env, &u);
        assert_eq!(env[1], "HOME=/var/lib/postgresql");
        let mut env = vec!["HOME=/x".to_string()];
        add_home(&mut env, &u);
        assert_eq!(env, vec!["HOME=/x".to_string()]);
    }
}
