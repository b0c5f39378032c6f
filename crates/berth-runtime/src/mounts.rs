//! The container's filesystem: the mount plan (Docker's default mounts, then the
//! spec's), and carrying it out ([`apply`]) through a [`Syscall`] so the logic is testable
//! without root. Mount destinations are resolved inside the rootfs
//! ([`crate::securejoin::resolve_in_root`]) at the moment they are mounted, after the
//! mounts before them.

use crate::cgroup::CgroupPaths;
use crate::defaults::{DEFAULT_DEVICES, DEFAULT_SHM_SIZE, DEV_SYMLINKS};
use crate::spec::{ContainerSpec, IpcMode};
use nix::mount::MsFlags;
use std::path::{Path, PathBuf};

pub use crate::syscall::{Kernel, Syscall};

mod apply;
pub(crate) use apply::create_target;
pub use apply::{
    execute, has_shared_bind, make_parent_private, mask_and_protect, masked_paths, mount_rootfs,
    readonly_paths,
};

/// The data of an overlay mount of `lowers` (top first) under `upper` with `work`.
pub fn overlay_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    )
}

/// crun-style diagnostics: when the kernel says ENOENT or EINVAL, find which
/// precondition failed.
pub(crate) fn diagnose(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    data: Option<&str>,
    errno: nix::errno::Errno,
) -> Option<String> {
    use nix::errno::Errno;
    if !target.exists() {
        return Some(format!("target {} does not exist", target.display()));
    }
    if let (Some(src), None) = (source, fstype) {
        if !src.exists() {
            return Some(format!("source {} does not exist", src.display()));
        }
    }
    if fstype == Some("overlay") && (errno == Errno::EINVAL || errno == Errno::ENOENT) {
        for opt in data.unwrap_or("").split(',') {
            let Some((k, v)) = opt.split_once('=') else {
                continue;
            };
            let dirs: Vec<&str> = if k == "lowerdir" {
                v.split(':').collect()
            } else {
                vec![v]
            };
            for d in dirs {
                if matches!(k, "lowerdir" | "upperdir" | "workdir") && !Path::new(d).is_dir() {
                    return Some(format!("{k} {d} is not a directory"));
                }
            }
        }
        return Some("overlayfs refused the layers (upperdir and workdir must be on the same filesystem, and not overlayfs themselves)".into());
    }
    None
}

/// What to create at a mount's target before mounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Dir,
    File,
}

/// One step of the container's filesystem set-up; paths are inside the container.
#[derive(Debug, Clone, PartialEq)]
pub enum MountOp {
    Mount {
        source: Option<PathBuf>,
        destination: String,
        fstype: Option<String>,
        flags: MsFlags,
        data: String,
        kind: TargetKind,
        /// Flags for a second `MS_REMOUNT|MS_BIND` (bind mounts can only become
        /// read-only, nosuid, … by a remount).
        remount: Option<MsFlags>,
        /// Propagation to set afterwards (MS_PRIVATE, MS_SLAVE, … with MS_REC).
        propagation: Option<MsFlags>,
    },
    Symlink {
        target: String,
        link: String,
    },
    /// Remount an existing mount with these flags (used to make a tmpfs read-only).
    Remount {
        destination: String,
        flags: MsFlags,
    },
    /// A copy of the mount at `source` in another mount namespace (`--ipc container:`'s
    /// `/dev/shm`), see [`Syscall::attach_foreign_tree`].
    Foreign {
        mnt_ns: PathBuf,
        source: PathBuf,
        destination: String,
    },
    /// A device node (`--device`, `--privileged`) at `path` inside the container.
    Device(crate::devices::DeviceSpec),
    /// An image's layers, read-only, at `destination` (see [`crate::image_volume`]).
    Image {
        layers: Vec<PathBuf>,
        subpath: String,
        destination: String,
    },
}

fn plain(
    source: Option<&str>,
    destination: &str,
    fstype: &str,
    flags: MsFlags,
    data: &str,
) -> MountOp {
    MountOp::Mount {
        source: source.map(PathBuf::from),
        destination: destination.to_string(),
        fstype: Some(fstype.to_string()),
        flags,
        data: data.to_string(),
        kind: TargetKind::Dir,
        remount: None,
        propagation: None,
    }
}

/// Mount options parsed into flags, propagation and filesystem data.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub propagation: Option<MsFlags>,
    pub data: Vec<String>,
    pub recursive_bind: bool,
}

/// The propagation flags a mount(8) propagation option names (`private`, `rshared`, …).
fn propagation_flags(name: &str) -> Option<MsFlags> {
    let (base, recursive) = match name.strip_prefix('r') {
        Some(rest) => (rest, true),
        None => (name, false),
    };
    let flag = match base {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(if recursive {
        flag | MsFlags::MS_REC
    } else {
        flag
    })
}

/// Parses mount(8)-style options.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        propagation: None,
        data: Vec::new(),
        recursive_bind: false,
    };
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => {
                o.recursive_bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            name if propagation_flags(name).is_some() => {
                o.propagation = propagation_flags(name);
                continue;
            }
            "defaults" | "" => continue,
            other => {
                o.data.push(other.to_string());
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
    }
    o
}

/// A bind of the host directory `source`, made read-only (`--cgroupns host`).
fn ro_bind(source: &Path, destination: &str) -> MountOp {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    MountOp::Mount {
        source: Some(source.to_path_buf()),
        destination: destination.to_string(),
        fstype: None,
        flags: MsFlags::MS_BIND | MsFlags::MS_REC,
        data: String::new(),
        kind: TargetKind::Dir,
        remount: Some(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | nosuid),
        propagation: None,
    }
}

/// How `/sys/fs/cgroup` looks inside the container: cgroup filesystems seen through its
/// own cgroup namespace, or with `host_ns` (`--cgroupns host`) its cgroup directories
/// bind-mounted (a cgroup filesystem there would show the host's whole tree).
fn cgroup_mounts(cgroups: &CgroupPaths, host_ns: bool) -> Vec<MountOp> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let ro = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | nosuid;
    if cgroups.is_pure_v2() {
        if let (true, Some(dir)) = (host_ns, &cgroups.unified) {
            return vec![ro_bind(dir, "/sys/fs/cgroup")];
        }
        return vec![plain(
            Some("cgroup"),
            "/sys/fs/cgroup",
            "cgroup2",
            nosuid | MsFlags::MS_RDONLY,
            "",
        )];
    }
    let mut ops = vec![plain(
        Some("tmpfs"),
        "/sys/fs/cgroup",
        "tmpfs",
        nosuid,
        "mode=755",
    )];
    // One mount per v1 hierarchy: the container's own cgroup, seen through its cgroup ns.
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut hier: Vec<(String, PathBuf)> = Vec::new();
    for (ctrl, dir) in &cgroups.v1 {
        if let Some(i) = seen.iter().position(|d| d == dir) {
            hier[i].0.push(',');
            hier[i].0.push_str(ctrl);
        } else {
            seen.push(dir.clone());
            hier.push((ctrl.clone(), dir.clone()));
        }
    }
    for (ctrls, dir) in &hier {
        let dest = format!("/sys/fs/cgroup/{ctrls}");
        if host_ns {
            ops.push(ro_bind(dir, &dest));
        } else {
            let mut m = plain(Some("cgroup"), &dest, "cgroup", nosuid, ctrls);
            if let MountOp::Mount { remount, .. } = &mut m {
                *remount = Some(ro);
            }
            ops.push(m);
        }
        if ctrls.contains(',') {
            for c in ctrls.split(',') {
                ops.push(MountOp::Symlink {
                    target: ctrls.clone(),
                    link: format!("/sys/fs/cgroup/{c}"),
                });
            }
        }
    }
    if let (true, Some(dir)) = (host_ns, &cgroups.unified) {
        ops.push(ro_bind(dir, "/sys/fs/cgroup/unified"));
    } else if cgroups.unified.is_some() {
        let mut m = plain(
            Some("cgroup"),
            "/sys/fs/cgroup/unified",
            "cgroup2",
            nosuid,
            "",
        );
        if let MountOp::Mount { remount, .. } = &mut m {
            *remount = Some(ro);
        }
        ops.push(m);
    }
    ops.push(MountOp::Remount {
        destination: "/sys/fs/cgroup".into(),
        flags: MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | nosuid,
    });
    ops
}

/// Docker's default mounts followed by the spec's own, in order.
pub fn plan(spec: &ContainerSpec, cgroups: &CgroupPaths) -> Vec<MountOp> {
    let nse = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let shm = if spec.shm_size == 0 {
        DEFAULT_SHM_SIZE
    } else {
        spec.shm_size
    };
    let mut ops = vec![
        plain(Some("proc"), "/proc", "proc", nse, ""),
        plain(
            Some("tmpfs"),
            "/dev",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            "mode=755,size=65536k",
        ),
    ];
    for dev in DEFAULT_DEVICES {
        ops.push(MountOp::Mount {
            source: Some(PathBuf::from(format!("/dev/{dev}"))),
            destination: format!("/dev/{dev}"),
            fstype: None,
            flags: MsFlags::MS_BIND,
            data: String::new(),
            kind: TargetKind::File,
            remount: None,
            propagation: None,
        });
    }
    for d in &spec.devices {
        // the default devices are bound above (a privileged container's host list has
        // them too); /dev/ptmx is the devpts one
        let taken = DEFAULT_DEVICES
            .iter()
            .any(|n| d.path == format!("/dev/{n}"))
            || d.path == "/dev/ptmx";
        if !taken {
            ops.push(MountOp::Device(d.clone()));
        }
    }
    ops.push(plain(
        Some("devpts"),
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    ));
    match &spec.namespaces.ipc {
        IpcMode::Private => ops.push(plain(
            Some("shm"),
            "/dev/shm",
            "tmpfs",
            nse,
            &format!("mode=1777,size={shm}"),
        )),
        IpcMode::Join { mnt_ns, .. } => ops.push(MountOp::Foreign {
            mnt_ns: mnt_ns.clone(),
            source: PathBuf::from("/dev/shm"),
            destination: "/dev/shm".into(),
        }),
        IpcMode::Host => ops.push(MountOp::Mount {
            source: Some(PathBuf::from("/dev/shm")),
            destination: "/dev/shm".into(),
            fstype: None,
            flags: MsFlags::MS_BIND | MsFlags::MS_REC,
            data: String::new(),
            kind: TargetKind::Dir,
            remount: None,
            propagation: None,
        }),
        IpcMode::None => {}
    }
    if spec.userns.is_some() && spec.namespaces.ipc == IpcMode::Host {
        // mqueue may be mounted only by the IPC namespace's owner, here the host's user
        // namespace: the host's own mount, bound, as rootless Docker does (a host with
        // none has no queue view to show; the queues themselves are shared anyway).
        if Path::new("/dev/mqueue").is_dir() {
            ops.push(MountOp::Mount {
                source: Some(PathBuf::from("/dev/mqueue")),
                destination: "/dev/mqueue".into(),
                fstype: None,
                flags: MsFlags::MS_BIND | MsFlags::MS_REC,
                data: String::new(),
                kind: TargetKind::Dir,
                remount: None,
                propagation: None,
            });
        }
    } else {
        ops.push(plain(Some("mqueue"), "/dev/mqueue", "mqueue", nse, ""));
    }
    for (link, target) in DEV_SYMLINKS {
        // runc links /dev/core only where the kernel has /proc/kcore
        if *link == "core" && !Path::new(target).exists() {
            continue;
        }
        ops.push(MountOp::Symlink {
            target: target.to_string(),
            link: format!("/dev/{link}"),
        });
    }
    if spec.userns.is_some() && matches!(spec.network, crate::spec::NetworkMode::Join(_)) {
        // sysfs may be mounted only by the owner of the network namespace, here the
        // host's user namespace: the host's /sys, read-only, as runc does.
        ops.push(MountOp::Mount {
            source: Some(PathBuf::from("/sys")),
            destination: "/sys".into(),
            fstype: None,
            flags: MsFlags::MS_BIND | MsFlags::MS_REC,
            data: String::new(),
            kind: TargetKind::Dir,
            remount: Some(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | nse),
            propagation: Some(MsFlags::MS_SLAVE | MsFlags::MS_REC),
        });
    } else {
        ops.push(plain(
            Some("sysfs"),
            "/sys",
            "sysfs",
            nse | MsFlags::MS_RDONLY,
            "",
        ));
    }
    ops.extend(cgroup_mounts(cgroups, spec.namespaces.cgroup_host));
    for m in &spec.mounts {
        let o = parse_options(&m.options);
        if m.kind == "image" {
            ops.push(MountOp::Image {
                layers: m.layers.clone(),
                subpath: m.subpath.clone(),
                destination: m.destination.clone(),
            });
        } else if m.kind == "bind" {
            let mut flags = MsFlags::MS_BIND;
            if o.recursive_bind || !m.options.iter().any(|x| x == "bind") {
                flags |= MsFlags::MS_REC;
            }
            let extra = o.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
            let kind = if m.source.is_dir() || !m.source.exists() {
                TargetKind::Dir
            } else {
                TargetKind::File
            };
            ops.push(MountOp::Mount {
                source: Some(m.source.clone()),
                destination: m.destination.clone(),
                fstype: None,
                flags,
                data: String::new(),
                kind,
                remount: (!extra.is_empty())
                    .then(|| MsFlags::MS_REMOUNT | MsFlags::MS_BIND | extra),
                propagation: Some(
                    o.propagation
                        .unwrap_or(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
                ),
            });
        } else {
            ops.push(MountOp::Mount {
                source: Some(PathBuf::from(if m.kind.is_empty() {
                    "none"
                } else {
                    m.kind.as_str()
                })),
                destination: m.destination.clone(),
                fstype: Some(if m.kind.is_empty() {
                    "tmpfs".into()
                } else {
                    m.kind.clone()
                }),
                flags: o.flags,
                data: o.data.join(","),
                kind: TargetKind::Dir,
                remount: None,
                propagation: o.propagation,
            });
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::MountSpec;

    use crate::syscall::fake::Recording as Recorder;

    fn opts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_become_flags_and_data() {
        let o = parse_options(&opts(&[
            "ro",
            "nosuid",
            "size=65536k",
            "mode=1777",
            "rprivate",
        ]));
        assert_eq!(o.flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(o.data, vec!["size=65536k", "mode=1777"]);
        assert_eq!(o.propagation, Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC));
        let o = parse_options(&opts(&["ro", "rw"]));
        assert!(o.flags.is_empty());
    }

    #[test]
    fn default_plan_has_dockers_mounts() {
        let spec = ContainerSpec {
            shm_size: 0,
            ..Default::default()
        };
        let ops = plan(
            &spec,
            &CgroupPaths {
                unified: Some("/u".into()),
                ..Default::default()
            },
        );
        let find = |d: &str| {
            ops.iter().find_map(|o| match o {
                MountOp::Mount {
                    destination,
                    fstype,
                    flags,
                    data,
                    ..
                } if destination == d => Some((fstype.clone(), *flags, data.clone())),
                _ => None,
            })
        };
        let (t, f, _) = find("/proc").unwrap();
        assert_eq!(t.as_deref(), Some("proc"));
        assert!(f.contains(MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV));
        assert_eq!(find("/dev/shm").unwrap().2, "mode=1777,size=67108864");
        assert!(find("/sys").unwrap().1.contains(MsFlags::MS_RDONLY));
        assert_eq!(
            find("/dev/pts").unwrap().2,
            "newinstance,ptmxmode=0666,mode=0620,gid=5"
        );
        assert_eq!(
            find("/sys/fs/cgroup").unwrap().0.as_deref(),
            Some("cgroup2")
        );
        assert!(find("/dev/null").is_some());
        assert!(ops.contains(&MountOp::Symlink {
            target: "pts/ptmx".into(),
            link: "/dev/ptmx".into()
        }));
        // runc links /dev/core only where /proc/kcore exists
        let core = ops
            .iter()
            .any(|o| matches!(o, MountOp::Symlink { link, .. } if link == "/dev/core"));
        assert_eq!(core, Path::new("/proc/kcore").exists());
    }

    #[test]
    fn devices_are_created_except_over_the_default_ones() {
        let dev = |path: &str| crate::devices::DeviceSpec {
            path: path.into(),
            host_path: "/dev/fuse".into(),
            kind: "c".into(),
            major: 10,
            minor: 229,
            file_mode: 0o600,
            permissions: "rwm".into(),
            ..Default::default()
        };
        let spec = ContainerSpec {
            devices: vec![
                dev("/dev/fuse"),
                dev("/dev/null"),
                dev("/dev/ptmx"),
                dev("/dev/net/tun"),
            ],
            ..Default::default()
        };
        let ops = plan(&spec, &CgroupPaths::default());
        let made: Vec<&str> = ops
            .iter()
            .filter_map(|o| match o {
                MountOp::Device(d) => Some(d.path.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(made, ["/dev/fuse", "/dev/net/tun"]);
        let root = tempfile::tempdir().unwrap();
        let k = Recorder::default();
        execute(&k, root.path(), &[MountOp::Device(dev("/dev/net/tun"))]).unwrap();
        assert_eq!(
            k.calls(),
            [crate::syscall::fake::Call::Mknod(
                root.path().join("dev/net/tun"),
                "c 10:229 rwm".into()
            )]
        );
        assert!(root.path().join("dev/net").is_dir());
    }

    #[test]
    fn hybrid_cgroup_view_is_read_only() {
        let mut cg = CgroupPaths {
            unified: Some("/u/x".into()),
            ..Default::default()
        };
        cg.v1.insert("cpu".into(), "/c/x".into());
        cg.v1.insert("cpuacct".into(), "/c/x".into());
        cg.v1.insert("memory".into(), "/m/x".into());
        let ops = cgroup_mounts(&cg, false);
        assert!(ops.iter().any(|o| matches!(o, MountOp::Mount { destination, data, .. } if destination == "/sys/fs/cgroup/cpu,cpuacct" && data == "cpu,cpuacct")));
        // --cgroupns host: the container's own directories, bound read-only
        let host = cgroup_mounts(&cg, true);
        assert!(host.iter().any(|o| matches!(o, MountOp::Mount { source, destination, fstype: None, remount: Some(r), .. }
            if destination == "/sys/fs/cgroup/memory" && source.as_deref() == Some(Path::new("/m/x")) && r.contains(MsFlags::MS_RDONLY))));
        assert!(host.iter().any(|o| matches!(o, MountOp::Mount { source, destination, .. }
            if destination == "/sys/fs/cgroup/unified" && source.as_deref() == Some(Path::new("/u/x")))));
        assert!(!host.iter().any(
            |o| matches!(o, MountOp::Mount { fstype: Some(t), .. } if t.starts_with("cgroup"))
        ));
        assert!(ops.contains(&MountOp::Symlink {
            target: "cpu,cpuacct".into(),
            link: "/sys/fs/cgroup/cpu".into()
        }));
        assert!(
            matches!(ops.last(), Some(MountOp::Remount { flags, .. }) if flags.contains(MsFlags::MS_RDONLY))
        );
    }

    #[test]
    fn bind_mount_through_escaping_symlink_stays_in_rootfs() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("rootfs");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink("/../../../../etc", root.join("data")).unwrap();
        let src = d.path().join("vol");
        std::fs::create_dir(&src).unwrap();
        let spec = ContainerSpec {
            mounts: vec![MountSpec {
                destination: "/data/sub".into(),
                kind: "bind".into(),
                source: src.clone(),
                options: opts(&["ro"]),
                ..Default::default()
            }],
            ..Default::default()
        };
        let ops: Vec<MountOp> = plan(&spec, &CgroupPaths::default())
            .into_iter()
            .filter(
                |o| matches!(o, MountOp::Mount { destination, .. } if destination == "/data/sub"),
            )
            .collect();
        let rec = Recorder::default();
        execute(&rec, &root, &ops).unwrap();
        let calls = rec.mounts();
        assert_eq!(calls[0].0.as_deref(), Some(src.as_path()));
        assert_eq!(calls[0].1, root.join("etc/sub"));
        assert!(root.join("etc/sub").is_dir());
        assert_eq!(calls[0].3, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(
            calls[1].3,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY
        );
        assert_eq!(calls[2].3, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
    }

    #[test]
    fn overlay_options_join_lower_dirs() {
        let d = tempfile::tempdir().unwrap();
        let spec = ContainerSpec {
            lower_dirs: vec!["/l/top".into(), "/l/base".into()],
            upper_dir: "/c/upper".into(),
            work_dir: "/c/work".into(),
            rootfs: d.path().join("merged"),
            ..Default::default()
        };
        let rec = Recorder::default();
        mount_rootfs(&rec, &spec, None).unwrap();
        let calls = rec.mounts();
        assert_eq!(
            calls[0].4.as_deref(),
            Some("lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work")
        );
        let spec = ContainerSpec {
            lower_dirs: vec![],
            ..spec.clone()
        };
        let rec = Recorder::default();
        mount_rootfs(&rec, &spec, None).unwrap();
        assert_eq!(rec.mounts()[0].0.as_deref(), Some(Path::new("/c/upper")));
    }

    #[test]
    fn every_propagation_option_and_its_recursive_form() {
        for (name, flag) in [
            ("private", MsFlags::MS_PRIVATE),
            ("shared", MsFlags::MS_SHARED),
            ("slave", MsFlags::MS_SLAVE),
            ("unbindable", MsFlags::MS_UNBINDABLE),
        ] {
            assert_eq!(
                parse_options(&[name.to_string()]).propagation,
                Some(flag),
                "{name}"
            );
            let r = format!("r{name}");
            assert_eq!(
                parse_options(std::slice::from_ref(&r)).propagation,
                Some(flag | MsFlags::MS_REC),
                "{r}"
            );
        }
        let o = parse_options(&["ro".into(), "rbind".into()]);
        assert_eq!(o.propagation, None);
        assert!(o.recursive_bind && o.flags.contains(MsFlags::MS_RDONLY));
    }
}
