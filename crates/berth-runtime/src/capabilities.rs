//! The container's capability set: Docker's defaults, `--cap-add`, `--cap-drop`,
//! `ALL`, and `--privileged` (moby `oci/caps.TweakCapabilities`).

use crate::defaults::DEFAULT_CAPS;
use crate::error::{Result, RuntimeError};
use caps::{CapSet, Capability, CapsHashSet};
use std::str::FromStr;

/// Docker's spelling normalised: upper case with the `CAP_` prefix; `ALL` stays `ALL`.
fn normalize(names: &[String]) -> Result<Vec<String>> {
    names
        .iter()
        .map(|n| {
            let up = n.trim().to_ascii_uppercase();
            if up == "ALL" {
                return Ok(up);
            }
            let full = if up.starts_with("CAP_") {
                up
            } else {
                format!("CAP_{up}")
            };
            Capability::from_str(&full)
                .map(|_| full.clone())
                .map_err(|_| RuntimeError::InvalidArgument(format!("unknown capability: {full:?}")))
        })
        .collect()
}

/// Checks `--cap-add` and `--cap-drop` names at create, with dockerd's words
/// (`invalid CapAdd: unknown capability: "CAP_FOO"`).
pub fn validate(cap_add: &[String], cap_drop: &[String]) -> Result<()> {
    for (what, names) in [("CapAdd", cap_add), ("CapDrop", cap_drop)] {
        normalize(names)
            .map_err(|e| RuntimeError::InvalidArgument(format!("invalid {what}: {e}")))?;
    }
    Ok(())
}

/// Computes the capability set of a container process.
pub fn compute(privileged: bool, cap_add: &[String], cap_drop: &[String]) -> Result<CapsHashSet> {
    if privileged {
        return Ok(caps::all());
    }
    let add = normalize(cap_add)?;
    let drop = normalize(cap_drop)?;
    let parse = |n: &str| Capability::from_str(n).ok();
    let set: CapsHashSet = if add.iter().any(|c| c == "ALL") {
        caps::all()
            .into_iter()
            .filter(|c| !drop.contains(&c.to_string()))
            .collect()
    } else if drop.iter().any(|c| c == "ALL") {
        add.iter().filter_map(|c| parse(c)).collect()
    } else {
        DEFAULT_CAPS
            .iter()
            .filter(|c| !drop.iter().any(|d| d == *c))
            .map(|c| c.to_string())
            .chain(add.iter().cloned())
            .filter_map(|c| parse(&c))
            .collect()
    };
    Ok(set)
}

/// The set as the hex mask `/proc/<pid>/status` shows.
pub fn mask(set: &CapsHashSet) -> u64 {
    set.iter().fold(0u64, |m, c| m | c.bitmask())
}

/// Drops every capability outside `set` from the bounding set. Call while still root
/// and holding CAP_SETPCAP, before changing uid.
pub fn limit_bounding(set: &CapsHashSet) -> Result<()> {
    for cap in caps::all() {
        if !set.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                RuntimeError::Internal(format!("dropping {cap} from the bounding set: {e}"))
            })?;
        }
    }
    Ok(())
}

/// Sets permitted and effective to `set` (limited to what the process still holds) and
/// clears inheritable and ambient. Call after changing uid (with keep-caps set).
pub fn apply(set: &CapsHashSet) -> Result<()> {
    let bounding = caps::read(None, CapSet::Bounding).unwrap_or_default();
    let wanted: CapsHashSet = set.intersection(&bounding).copied().collect();
    let err = |what: &str, e: caps::errors::CapsError| {
        RuntimeError::Internal(format!("setting the {what} capabilities: {e}"))
    };
    caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| err("inheritable", e))?;
    caps::set(None, CapSet::Effective, &wanted).map_err(|e| err("effective", e))?;
    caps::set(None, CapSet::Permitted, &wanted).map_err(|e| err("permitted", e))?;
    caps::set(None, CapSet::Effective, &wanted).map_err(|e| err("effective", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_set_is_dockers_14() {
        let set = compute(false, &[], &[]).unwrap();
        assert_eq!(set.len(), 14);
        assert_eq!(mask(&set), 0x00000000a80425fb);
    }

    #[test]
    fn add_and_drop_in_any_spelling() {
        let set = compute(false, &s(&["net_admin"]), &s(&["CAP_CHOWN", "kill"])).unwrap();
        assert!(set.contains(&Capability::CAP_NET_ADMIN));
        assert!(!set.contains(&Capability::CAP_CHOWN));
        assert!(!set.contains(&Capability::CAP_KILL));
        assert_eq!(set.len(), 13);
    }

    #[test]
    fn all_keyword() {
        let set = compute(false, &s(&["ALL"]), &s(&["SYS_ADMIN"])).unwrap();
        assert_eq!(set.len(), caps::all().len() - 1);
        assert!(!set.contains(&Capability::CAP_SYS_ADMIN));
        let set = compute(false, &s(&["CHOWN"]), &s(&["all"])).unwrap();
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            vec![Capability::CAP_CHOWN]
        );
    }

    #[test]
    fn privileged_gets_everything() {
        assert_eq!(compute(true, &[], &s(&["CHOWN"])).unwrap(), caps::all());
    }

    #[test]
    fn unknown_capability_is_rejected() {
        let e = compute(false, &s(&["FOO"]), &[]).unwrap_err();
        assert_eq!(e.to_string(), "unknown capability: \"CAP_FOO\"");
        let e = |a: &[&str], d: &[&str]| validate(&s(a), &s(d)).unwrap_err().to_string();
        assert_eq!(
            e(&["foo"], &[]),
            "invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
        assert_eq!(
            e(&["ALL"], &["bar"]),
            "invalid CapDrop: unknown capability: \"CAP_BAR\""
        );
        assert_eq!(
            e(&["CAP_ALL"], &[]),
            "invalid CapAdd: unknown capability: \"CAP_ALL\""
        );
        assert_eq!(
            e(&[""], &[]),
            "invalid CapAdd: unknown capability: \"CAP_\""
        );
        assert!(validate(&s(&["all", "net_admin", "CAP_SYS_TIME"]), &s(&["chown"])).is_ok());
    }
}
