//! ContainerStatus `user`: the identity the container's first process gets — its uid,
//! primary gid and supplementary groups — as containerd reports it from the spec it made
//! at create: the container's user (run_as_user/run_as_group or the image's `USER`)
//! looked up in the image's `/etc/passwd` and `/etc/group`, with the pod's supplemental
//! groups added. Resolved by the rules the runtime applies at start
//! ([`berth_runtime::user`]), so the status says what `id` in the container says.

use std::path::PathBuf;

use berth_cri_api::v1::{ContainerUser, LinuxContainerUser};

use crate::containers::record::ContainerRecord;
use crate::volumes::copyup;

/// The user of `rec`, read in its image's layers (top first). Empty, as containerd's
/// answer when it cannot tell, if the image is gone or the user is not in it.
pub fn container_user(layers: Option<&[PathBuf]>, rec: &ContainerRecord) -> ContainerUser {
    let read = |path: &str| {
        layers
            .and_then(|l| copyup::read_file(l, path))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    match linux_user(
        &rec.config.user,
        &rec.host_config.group_add,
        &read("/etc/passwd"),
        &read("/etc/group"),
    ) {
        Some(linux) if layers.is_some() => ContainerUser { linux: Some(linux) },
        _ => ContainerUser::default(),
    }
}

/// `user` (`name`, `uid`, `uid:gid`, …) and the extra groups resolved in `passwd` and
/// `group`: the primary group first, then the supplementary ones, each once.
fn linux_user(
    user: &str,
    group_add: &[String],
    passwd: &str,
    group: &str,
) -> Option<LinuxContainerUser> {
    let mut u = berth_runtime::user::resolve(user, passwd, group).ok()?;
    berth_runtime::user::add_groups(&mut u, group_add, group).ok()?;
    let mut groups: Vec<i64> = Vec::new();
    for g in u.additional_gids() {
        if !groups.contains(&i64::from(g)) {
            groups.push(i64::from(g));
        }
    }
    Some(LinuxContainerUser {
        uid: i64::from(u.uid),
        gid: i64::from(u.gid),
        supplemental_groups: groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:root\napp:x:1000:\nextra:x:50000:app\n";

    fn user(uid: i64, gid: i64, groups: &[i64]) -> LinuxContainerUser {
        LinuxContainerUser {
            uid,
            gid,
            supplemental_groups: groups.to_vec(),
        }
    }

    #[test]
    fn users_resolve_as_the_runtime_resolves_them() {
        // the image's default user: root, with its /etc/group memberships
        assert_eq!(
            linux_user("", &[], PASSWD, GROUP),
            Some(user(0, 0, &[0, 10]))
        );
        // a name, its primary group and the groups listing it, then the pod's
        let pod = ["1234".to_string()];
        assert_eq!(
            linux_user("app", &pod, PASSWD, GROUP),
            Some(user(1000, 1000, &[1000, 50000, 1234]))
        );
        // a uid the image knows takes its primary group
        assert_eq!(
            linux_user("1000", &[], PASSWD, GROUP),
            Some(user(1000, 1000, &[1000, 50000]))
        );
        // uid:gid as given (no memberships looked up), each group once
        let again = ["55".to_string(), "77".to_string()];
        assert_eq!(
            linux_user("1234:55", &again, PASSWD, GROUP),
            Some(user(1234, 55, &[55, 77]))
        );
        // an unknown uid without passwd entry runs as gid 0
        assert_eq!(linux_user("4321", &[], "", ""), Some(user(4321, 0, &[0])));
        // a name the image lacks: no user (the start fails)
        assert_eq!(linux_user("ghost", &[], PASSWD, GROUP), None);
    }

    #[test]
    fn the_status_reads_the_image_layers() {
        let t = tempfile::tempdir().unwrap();
        let (top, low) = (t.path().join("top"), t.path().join("low"));
        std::fs::create_dir_all(low.join("etc")).unwrap();
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::fs::write(low.join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(low.join("etc/group"), "app:x:1000:\n").unwrap();
        // the top layer's group file replaces the lower one
        std::fs::write(top.join("etc/group"), GROUP).unwrap();
        let mut rec = ContainerRecord::default();
        rec.config.user = "app".into();
        let layers = vec![top, low];
        let got = container_user(Some(&layers), &rec);
        assert_eq!(got.linux, Some(user(1000, 1000, &[1000, 50000])));
        // no image: an empty user, as containerd when it cannot tell
        assert_eq!(container_user(None, &rec), ContainerUser::default());
        rec.config.user = "ghost".into();
        assert_eq!(
            container_user(Some(&layers), &rec),
            ContainerUser::default()
        );
    }
}
