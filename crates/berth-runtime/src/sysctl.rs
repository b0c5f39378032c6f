//! Sysctls a container may set, and writing them inside its own namespaces.
//!
//! `/proc/sys` is only partly namespaced: a write to `vm.swappiness` or
//! `kernel.core_pattern` from inside a container changes the host. Only the sysctls that
//! live in a namespace the container owns are accepted, with runc's rules and words
//! (libcontainer/configs/validate `sysctl`, which is what Docker answers with):
//!
//! - `kernel.msgmax`, `kernel.msgmnb`, `kernel.msgmni`, `kernel.sem`, `kernel.shmall`,
//!   `kernel.shmmax`, `kernel.shmmni`, `kernel.shm_rmid_forced` and `fs.mqueue.*` with a
//!   private IPC namespace;
//! - `net.*` with a network namespace that is not the host's;
//! - `kernel.domainname` with a private UTS namespace (`kernel.hostname` is refused
//!   there as conflicting with the hostname field, as runc does).
//!
//! The daemon checks at create ([`validate`]); the init checks again right before it
//! writes, after `pivot_root`, through its own `/proc` ([`write`]).

use crate::defaults::NETNS_SYSCTLS;
use crate::error::{Result, RuntimeError};
use crate::spec::{ContainerSpec, IpcMode, NetworkMode};
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The kernel IPC sysctls (namespaced with CLONE_NEWIPC).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Which namespaces of the container are its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Namespaces {
    /// A network namespace that is not the host's.
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
}

/// Checks one sysctl name against the container's namespaces.
pub fn validate(key: &str, ns: Namespaces) -> Result<()> {
    let invalid = |msg: String| Err(RuntimeError::InvalidArgument(msg));
    // A name is dot-separated words: no `/`, no empty component, so no way out of
    // /proc/sys when the dots become slashes.
    if key.is_empty()
        || key
            .split('.')
            .any(|c| c.is_empty() || c.contains(['/', '\0']))
    {
        return invalid(format!(
            "sysctl {key:?} is not in a separate kernel namespace"
        ));
    }
    if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        if ns.ipc {
            return Ok(());
        }
        return invalid(format!(
            "sysctl {key:?} is not allowed in the hosts ipc namespace"
        ));
    }
    if key.starts_with("net.") {
        if ns.net {
            return Ok(());
        }
        return invalid(format!(
            "sysctl {key:?} not allowed in host network namespace"
        ));
    }
    if ns.uts {
        match key {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => {
                return invalid(format!(
                    "sysctl {key:?} is not allowed as it conflicts with the OCI \"hostname\" field"
                ))
            }
            _ => {}
        }
    }
    invalid(format!(
        "sysctl {key:?} is not in a separate kernel namespace"
    ))
}

/// Checks every name, in order; the first refusal is the error.
pub fn validate_all<'a>(keys: impl IntoIterator<Item = &'a str>, ns: Namespaces) -> Result<()> {
    keys.into_iter().try_for_each(|k| validate(k, ns))
}

/// Whether the network namespace of `mode` is not the one this process runs in (the
/// host's, for the shim). A joined namespace is compared by its nsfs inode, as runc does.
pub fn private_netns(mode: &NetworkMode) -> Result<bool> {
    match mode {
        NetworkMode::Loopback => Ok(true),
        NetworkMode::Host => Ok(false),
        NetworkMode::Join(path) => {
            let ours = std::fs::metadata("/proc/self/ns/net")
                .map_err(|e| RuntimeError::io("stat", "/proc/self/ns/net", e))?;
            let theirs = std::fs::metadata(path)
                .map_err(|e| RuntimeError::io("invalid netns path: stat", path, e))?;
            Ok((ours.dev(), ours.ino()) != (theirs.dev(), theirs.ino()))
        }
    }
}

/// Writes `value` to the sysctl `key` through the procfs mounted at `proc` (the
/// container's own `/proc`, after `pivot_root`). Every component is opened with
/// `O_NOFOLLOW` below a directory that must be on procfs.
pub(crate) fn write(proc: &Path, key: &str, value: &str) -> Result<()> {
    let dir_flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let path = proc.join("sys").join(key.replace('.', "/"));
    let err = |e: nix::errno::Errno| RuntimeError::sys(format!("setting sysctl {key}"), e);
    let mut dir: OwnedFd =
        nix::fcntl::open(&proc.join("sys"), dir_flags, Mode::empty()).map_err(err)?;
    let fs = nix::sys::statfs::fstatfs(&dir).map_err(err)?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(RuntimeError::Internal(format!(
            "setting sysctl {key}: {} is not procfs",
            proc.join("sys").display()
        )));
    }
    let parts: Vec<&str> = key.split('.').collect();
    let (last, dirs) = parts
        .split_last()
        .ok_or_else(|| RuntimeError::InvalidArgument(format!("invalid sysctl name {key:?}")))?;
    for part in dirs {
        dir = openat(dir.as_fd(), *part, dir_flags, Mode::empty()).map_err(err)?;
    }
    let fd = openat(
        dir.as_fd(),
        *last,
        OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_TRUNC,
        Mode::empty(),
    )
    .map_err(|e| RuntimeError::sys(format!("open {}", path.display()), e))?;
    let mut data = value.as_bytes();
    while !data.is_empty() {
        match nix::unistd::write(&fd, data) {
            Ok(0) => break,
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(RuntimeError::sys(format!("write {}", path.display()), e)),
        }
    }
    Ok(())
}

/// Checks the container's sysctls against its namespaces (in the shim's or the init's,
/// before either joins any); true when the network namespace is not the host's.
/// `net_private`: the caller already knows it is not (the shim joined it and checked).
pub(crate) fn validate_sysctls(spec: &ContainerSpec, net_private: bool) -> Result<bool> {
    let own_ns = Namespaces {
        net: net_private || private_netns(&spec.network)?,
        ipc: matches!(spec.namespaces.ipc, IpcMode::Private | IpcMode::None),
        uts: !spec.namespaces.uts_host && spec.namespaces.uts_join.is_none(),
    };
    validate_all(spec.sysctls.iter().map(|(k, _)| k.as_str()), own_ns)?;
    Ok(own_ns.net)
}

/// The `net.*` sysctls (Docker's defaults and the container's) of a joined network
/// namespace, written by the shim while it is in that namespace.
pub(crate) fn write_joined_net_sysctls(spec: &ContainerSpec, own_net: bool) -> Result<()> {
    for (key, value) in all_sysctls(spec, own_net) {
        if key.starts_with("net.") {
            write(Path::new("/proc"), &key, &value)?;
        }
    }
    Ok(())
}

/// Docker's network sysctls (in a private network namespace) then the container's own.
pub(crate) fn all_sysctls(spec: &ContainerSpec, own_net: bool) -> Vec<(String, String)> {
    let mut sysctls: Vec<(String, String)> = Vec::new();
    if own_net {
        for (k, v) in NETNS_SYSCTLS {
            // "We cannot set up ping socket support in a user namespace" (moby
            // oci_linux.go): its gids are not all mapped there.
            if spec.userns.is_some() && *k == "net.ipv4.ping_group_range" {
                continue;
            }
            if !spec.sysctls.iter().any(|(sk, _)| sk == k) {
                sysctls.push((k.to_string(), v.to_string()));
            }
        }
    }
    sysctls.extend(spec.sysctls.iter().cloned());
    sysctls
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIVATE: Namespaces = Namespaces {
        net: true,
        ipc: true,
        uts: true,
    };

    fn msg(key: &str, ns: Namespaces) -> String {
        validate(key, ns).unwrap_err().to_string()
    }

    #[test]
    fn namespaced_sysctls_pass() {
        for k in [
            "net.ipv4.ip_forward",
            "net.core.somaxconn",
            "kernel.shmmax",
            "kernel.shm_rmid_forced",
            "kernel.msgmax",
            "kernel.sem",
            "fs.mqueue.msg_max",
            "kernel.domainname",
        ] {
            assert!(validate(k, PRIVATE).is_ok(), "{k}");
        }
    }

    #[test]
    fn host_wide_sysctls_get_runcs_words() {
        for k in [
            "vm.swappiness",
            "kernel.core_pattern",
            "kernel.shm_next_id_x",
            "fs.file-max",
            "kernel",
            "foo",
        ] {
            assert_eq!(
                msg(k, PRIVATE),
                format!("sysctl \"{k}\" is not in a separate kernel namespace")
            );
        }
        assert_eq!(
            msg("kernel.hostname", PRIVATE),
            "sysctl \"kernel.hostname\" is not allowed as it conflicts with the OCI \"hostname\" field"
        );
    }

    #[test]
    fn names_that_could_walk_out_of_proc_sys_are_refused() {
        for k in [
            "",
            "net..ipv4",
            "net./../vm/swappiness",
            "net.ipv4.",
            ".net",
            "net.a\0b",
        ] {
            assert!(validate(k, PRIVATE).is_err(), "{k:?}");
        }
    }

    #[test]
    fn shared_namespaces_refuse_their_sysctls() {
        let host_net = Namespaces {
            net: false,
            ..PRIVATE
        };
        assert_eq!(
            msg("net.ipv4.ip_forward", host_net),
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
        let host_ipc = Namespaces {
            ipc: false,
            ..PRIVATE
        };
        assert_eq!(
            msg("fs.mqueue.msg_max", host_ipc),
            "sysctl \"fs.mqueue.msg_max\" is not allowed in the hosts ipc namespace"
        );
        let host_uts = Namespaces {
            uts: false,
            ..PRIVATE
        };
        assert_eq!(
            msg("kernel.domainname", host_uts),
            "sysctl \"kernel.domainname\" is not in a separate kernel namespace"
        );
        assert!(validate_all(["kernel.sem", "vm.swappiness"], PRIVATE).is_err());
    }

    #[test]
    fn netns_identity() {
        assert!(private_netns(&NetworkMode::Loopback).unwrap());
        assert!(!private_netns(&NetworkMode::Host).unwrap());
        let own = NetworkMode::Join("/proc/self/ns/net".into());
        assert!(!private_netns(&own).unwrap());
        assert!(private_netns(&NetworkMode::Join("/nonexistent".into())).is_err());
    }

    #[test]
    fn write_refuses_a_directory_that_is_not_procfs() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sys/vm")).unwrap();
        std::fs::write(d.path().join("sys/vm/swappiness"), "60").unwrap();
        let e = write(d.path(), "vm.swappiness", "1").unwrap_err();
        assert!(e.to_string().contains("is not procfs"), "{e}");
        assert_eq!(
            std::fs::read_to_string(d.path().join("sys/vm/swappiness")).unwrap(),
            "60"
        );
    }
}
