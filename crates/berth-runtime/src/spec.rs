//! The container spec: everything the shim needs to run one container.
//!
//! The daemon writes it as `spec.json` into the container's runtime directory
//! (`<exec-root>/containers/<id>/`) and starts `berth shim <that dir>`. All paths are
//! absolute host paths. Image configuration (Cmd, Entrypoint, Env, WorkingDir, User) is
//! already merged with the create request by the daemon: the shim runs exactly `process`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use crate::security::{SeccompSpec, SecuritySpec};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContainerSpec {
    /// 64-hex container ID.
    pub id: String,
    /// Read-only image layer directories, top-most first (overlayfs `lowerdir` order).
    /// Empty for an image with no layers (`scratch`): then `upper_dir` alone is the rootfs.
    pub lower_dirs: Vec<PathBuf>,
    /// The container's writable layer (overlayfs `upperdir`), kept until `rm`.
    pub upper_dir: PathBuf,
    /// overlayfs `workdir`, on the same filesystem as `upper_dir`.
    pub work_dir: PathBuf,
    /// Where the merged rootfs is mounted. The overlay mount is made inside the
    /// container's own mount namespace only, so it vanishes with the container and never
    /// shows in the host's mount table.
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    pub process: ProcessSpec,
    /// Hostname inside the UTS namespace (Docker: the first 12 hex of the ID).
    pub hostname: String,
    pub domainname: String,
    /// Extra mounts, applied in order after Docker's default mounts.
    pub mounts: Vec<MountSpec>,
    /// `--privileged`: all capabilities, no masked or read-only paths, all devices.
    pub privileged: bool,
    /// Capability names as Docker accepts them (`NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub resources: Resources,
    /// Cgroup parent, relative to each hierarchy's root (`/berth` style, leading `/`
    /// optional). Empty: nest under the cgroup of the process that starts the shim, per
    /// controller, as read from `/proc/self/cgroup` (the daemon's own cgroup).
    pub cgroup_parent: String,
    pub network: NetworkMode,
    /// Size of `/dev/shm` in bytes; 0 means Docker's default of 64 MiB.
    pub shm_size: u64,
    pub sysctls: Vec<(String, String)>,
    /// `--init`: the container's PID 1 stays Berth's init (`docker-init`), which starts
    /// the process, forwards signals to it and reaps zombies.
    pub init: bool,
    /// A CRI pod sandbox: the init runs Berth's pause ([`crate::pause`]) in place of
    /// `process.args` (no image needed: the rootfs may be empty).
    pub pause: bool,
    /// Which namespaces are the host's (`--pid host`, `--ipc host|none`, `--uts host`).
    pub namespaces: Namespaces,
    /// `--ulimit`s, set on the init before it runs the process; the others are inherited.
    pub rlimits: Vec<Rlimit>,
    /// no_new_privs and seccomp (`--security-opt`, the daemon's defaults).
    pub security: SecuritySpec,
    /// Where the shim writes the log (`<root>/containers/<id>/<id>-json.log`, or
    /// `local-logs/container.log` with the local driver); empty: no log (`none`).
    pub log_path: PathBuf,
    /// The restart policy the shim applies itself when the container exits (see
    /// [`crate::restart`]); it also restarts while the daemon is down.
    pub restart: crate::restart::RestartPolicy,
    /// `RestartCount` when this start began (the shim counts on from it).
    pub restart_count: i64,
    /// The log's format and rotation.
    pub log: crate::logspec::LogSpec,
    /// `--userns-remap`: a user namespace with these maps (see [`crate::userns`]);
    /// None: the host's user namespace.
    pub userns: Option<crate::userns::UserNamespace>,
    /// With `userns`: join this user namespace (`/proc/<pid>/ns/user` of the container
    /// whose PID namespace is joined, `--pid container:`) instead of making one; its maps
    /// are `userns`.
    pub userns_join: Option<PathBuf>,
    /// `--device`s (and with `privileged`, the host's devices): nodes created in the
    /// container's `/dev`; the device cgroup allows the `--device`s.
    pub devices: Vec<crate::devices::DeviceSpec>,
    /// `--oom-score-adj`, written to the init's `/proc/self/oom_score_adj`.
    pub oom_score_adj: Option<i32>,
    /// `HostConfig.MaskedPaths`; `None`: the runtime's defaults (ignored when privileged).
    pub masked_paths: Option<Vec<String>>,
    /// `HostConfig.ReadonlyPaths`; `None`: the runtime's defaults.
    pub readonly_paths: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProcessSpec {
    /// argv; `args[0]` is looked up in `PATH` from `env` inside the container.
    pub args: Vec<String>,
    /// `KEY=value` entries; the daemon adds `PATH` and `HOSTNAME` as Docker does.
    pub env: Vec<String>,
    /// Working directory inside the container; created if missing, as Docker does.
    pub cwd: String,
    /// Docker's `-u`: `user`, `uid`, `user:group`, `uid:gid`; empty means root.
    /// Names are resolved from the container's `/etc/passwd` and `/etc/group`.
    pub user: String,
    pub tty: bool,
    /// Keep stdin open (`-i`). Without it the process gets `/dev/null` as stdin.
    pub open_stdin: bool,
    /// Close the process's stdin when the first attached client detaches.
    pub stdin_once: bool,
    /// Initial terminal size (rows, cols) when `tty`.
    pub console_size: Option<(u16, u16)>,
    /// `--group-add`: group names (from the container's `/etc/group`) or gids.
    pub additional_groups: Vec<String>,
}

/// The namespaces a container shares with the host; the others are its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Namespaces {
    pub pid_host: bool,
    /// `--pid container:NAME`: the other container's pid namespace
    /// (`/proc/<its init>/ns/pid`), joined instead of a new one.
    pub pid_join: Option<PathBuf>,
    pub ipc: IpcMode,
    pub uts_host: bool,
    /// The other container's UTS namespace (`/proc/<its init>/ns/uts`), joined instead
    /// of a new one (a CRI container shares its pod sandbox's hostname); its hostname is
    /// kept.
    pub uts_join: Option<PathBuf>,
    /// `--cgroupns host`: no cgroup namespace of its own; `/sys/fs/cgroup` shows the
    /// container's cgroups bind-mounted.
    pub cgroup_host: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IpcMode {
    /// Its own IPC namespace and `/dev/shm` (`private`, `shareable`).
    #[default]
    Private,
    /// The host's IPC namespace and `/dev/shm`.
    Host,
    /// Its own IPC namespace without `/dev/shm`.
    None,
    /// `--ipc container:NAME`: the other container's IPC namespace (`ns`, its
    /// `/proc/<init>/ns/ipc`) and its `/dev/shm`, found in its mount namespace `mnt_ns`.
    Join { ns: PathBuf, mnt_ns: PathBuf },
}

/// One `--ulimit`: `name` as go-units knows it (`nofile`, `nproc`, …); -1 = unlimited.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Rlimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MountSpec {
    /// Absolute path inside the container, resolved inside the rootfs (a symlink in the
    /// image never takes a mount outside it).
    pub destination: String,
    /// `bind`, `tmpfs` (or another filesystem type), or `image`: an image's layers
    /// (`layers`), mounted read-only.
    pub kind: String,
    /// Host path for `bind`; ignored for `tmpfs`.
    pub source: PathBuf,
    /// mount(8)-style options: `ro`, `rbind`, `nosuid`, `size=65536k`, `mode=1777`,
    /// `rprivate`, `rshared`, `rslave`, …
    pub options: Vec<String>,
    /// `image`: the image's layer directories, top-most first (overlayfs `lowerdir`).
    pub layers: Vec<PathBuf>,
    /// `image`: the directory of the image to mount instead of its root, relative to it
    /// (resolved inside the image: its symlinks never lead out of it).
    pub subpath: String,
}

/// Resource limits, with Docker's meaning for 0 ("no limit").
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Resources {
    /// Bytes; 0 = unlimited.
    pub memory: i64,
    /// Bytes of memory+swap; 0 = default (twice `memory` when that is set), -1 = unlimited.
    pub memory_swap: i64,
    /// `--cpus` × 1e9; converted to a CFS quota over a 100 ms period.
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub cpuset_cpus: String,
    /// Memory nodes (`--cpuset-mems`); empty = the parent's.
    pub cpuset_mems: String,
    /// Soft limit in bytes (`--memory-reservation`); 0 = none.
    pub memory_reservation: i64,
    /// None or ≤ 0 = unlimited.
    pub pids_limit: Option<i64>,
    /// More v1 `devices.allow` rules after the defaults (`--device`,
    /// `--device-cgroup-rule`: `c 10:229 rwm`).
    pub device_rules: Vec<String>,
    /// `--oom-kill-disable` (v1 `memory.oom_control`).
    pub oom_kill_disable: bool,
    /// `--cpu-rt-runtime` / `--cpu-rt-period` in microseconds; 0 = not set.
    pub cpu_rt_runtime: i64,
    pub cpu_rt_period: i64,
    /// `--memory-swappiness` 0-100 (v1 `memory.swappiness`); None = the parent's.
    pub memory_swappiness: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// A new network namespace with only loopback, brought up.
    #[default]
    Loopback,
    /// The host's network namespace (`--network host`).
    Host,
    /// Join an existing network namespace (a bind-mounted nsfs file or `/proc/<pid>/ns/net`).
    Join(PathBuf),
}

/// What `berth exec-helper` runs inside an existing container.
///
/// The daemon starts `berth exec-helper '<ExecSpec as JSON>'` with the exec's stdin,
/// stdout and stderr as the helper's own (pipes), and a status pipe as fd 3. The helper
/// joins the namespaces and cgroups of `init_pid`, forks, and the child sets user, env,
/// cwd and capabilities and execs `process.args`. On fd 3 the helper writes JSON lines:
/// `{"pid":N}` once the process runs, or `{"error":"...","exit_code":126|127}` when it
/// could not start. The helper exits with the process's exit code (128 + signal when it
/// was killed by one).
///
/// With `process.tty` the daemon also passes a unix socket as fd 4: the process runs on a
/// pty from the container's devpts (its controlling terminal and stdio; the helper's own
/// stdio is unused) and the helper sends the pty master on fd 4 (SCM_RIGHTS, see
/// [`crate::pty::recv_master`]) before its status line; fd 4 closes without one when
/// the set-up failed first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ExecSpec {
    /// Host pid of the container's init process.
    pub init_pid: i32,
    pub process: ProcessSpec,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// The container's: an exec gets the container's seccomp profile (computed from the
    /// container's capabilities, `cap_add`/`cap_drop` without `privileged`) and its
    /// no_new_privs.
    pub security: SecuritySpec,
    /// The container's `--ulimit`s and `--oom-score-adj`, which Docker's execs get too.
    pub rlimits: Vec<Rlimit>,
    pub oom_score_adj: Option<i32>,
}
