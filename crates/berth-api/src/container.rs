//! Container models: the create body, inspect, list summaries, wait.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `Config` in create bodies and in inspect output (moby `container.Config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "string_or_vec")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    pub working_dir: String,
    #[serde(deserialize_with = "string_or_vec")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Always written (`null` when unset), as Docker's `OnBuild`.
    pub on_build: Option<Vec<String>>,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// `HostConfig` (moby `container.HostConfig`): the subset Berth acts on, plus the rest
/// kept verbatim in `extra` so that inspect returns what the client sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    #[serde(deserialize_with = "null_as_default", serialize_with = "empty_as_null")]
    pub binds: Vec<String>,
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    pub log_config: LogConfig,
    pub network_mode: String,
    #[serde(deserialize_with = "null_as_default")]
    pub port_bindings: BTreeMap<String, Option<Vec<PortBinding>>>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub volume_driver: String,
    #[serde(deserialize_with = "null_as_default", serialize_with = "empty_as_null")]
    pub volumes_from: Vec<String>,
    #[serde(deserialize_with = "null_as_default", serialize_with = "empty_as_null")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "null_as_default", serialize_with = "empty_as_null")]
    pub cap_drop: Vec<String>,
    pub cgroupns_mode: String,
    #[serde(deserialize_with = "null_as_default")]
    pub dns: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub dns_options: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub dns_search: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub extra_hosts: Vec<String>,
    #[serde(deserialize_with = "null_as_default", serialize_with = "empty_as_null")]
    pub group_add: Vec<String>,
    pub ipc_mode: String,
    pub cgroup: String,
    #[serde(deserialize_with = "null_as_default", serialize_with = "empty_as_null")]
    pub links: Vec<String>,
    pub oom_score_adj: i64,
    pub pid_mode: String,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "null_as_default", serialize_with = "empty_as_null")]
    pub security_opt: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub userns_mode: String,
    pub shm_size: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub sysctls: BTreeMap<String, String>,
    pub runtime: String,
    /// The initial terminal size (rows, columns) the client asks for (API 1.42+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u32; 2]>,
    pub isolation: String,
    // Resources
    pub cpu_shares: i64,
    pub memory: i64,
    pub nano_cpus: i64,
    pub cgroup_parent: String,
    pub blkio_weight: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    #[serde(deserialize_with = "null_as_default")]
    pub devices: Vec<DeviceMapping>,
    /// `--gpus`: device requests (Docker's `null` when there are none).
    pub device_requests: Option<Vec<Value>>,
    #[serde(deserialize_with = "null_as_default", serialize_with = "empty_as_null")]
    pub device_cgroup_rules: Vec<String>,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swappiness: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_kill_disable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(deserialize_with = "null_as_default")]
    pub ulimits: Vec<Ulimit>,
    /// Omitted when empty, as Docker.
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mounts: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// `null` for a privileged container (nothing masked), else the paths the runtime
    /// masks (filled in at create when the client sent none).
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    /// `--storage-opt` (omitted when empty, as Docker).
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub storage_opt: BTreeMap<String, String>,
    /// Windows-only in Docker.
    pub cpu_count: i64,
    pub cpu_percent: i64,
    /// Per-device block I/O limits (Berth refuses them: not applied yet).
    #[serde(deserialize_with = "null_as_default")]
    pub blkio_weight_device: Vec<Value>,
    #[serde(deserialize_with = "null_as_default")]
    pub blkio_device_read_bps: Vec<Value>,
    #[serde(deserialize_with = "null_as_default")]
    pub blkio_device_write_bps: Vec<Value>,
    #[serde(rename = "BlkioDeviceReadIOps", deserialize_with = "null_as_default")]
    pub blkio_device_read_iops: Vec<Value>,
    #[serde(rename = "BlkioDeviceWriteIOps", deserialize_with = "null_as_default")]
    pub blkio_device_write_iops: Vec<Value>,
    pub kernel_memory: i64,
    #[serde(rename = "KernelMemoryTCP")]
    pub kernel_memory_tcp: i64,
    /// Windows-only in Docker.
    #[serde(rename = "IOMaximumIOps")]
    pub io_maximum_iops: u64,
    #[serde(rename = "IOMaximumBandwidth")]
    pub io_maximum_bandwidth: u64,
}

/// One `--device` (moby `container.DeviceMapping`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(deserialize_with = "null_as_default")]
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PortBinding {
    #[serde(rename = "HostIp")]
    pub host_ip: String,
    #[serde(rename = "HostPort")]
    pub host_port: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub hard: i64,
    pub soft: i64,
}

/// The body of `POST /containers/create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreateBody {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_config: Option<HostConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking_config: Option<crate::network::NetworkingConfig>,
}

/// `State` in inspect output.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    /// created, running, paused, restarting, removing, exited, dead
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// Present once a container with a healthcheck has started (moby `Health`, omitempty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// `Config.Healthcheck` (moby `container.HealthConfig`): durations in nanoseconds, zero
/// meaning "inherit" (from the image, else Docker's default); every field is omitted
/// when zero, as in Docker's JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disabled, `["CMD", arg…]` or `["CMD-SHELL", command]`.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
    pub start_interval: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `State.Health` in inspect output.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    /// starting, healthy or unhealthy
    pub status: String,
    pub failing_streak: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub log: Vec<HealthcheckResult>,
}

/// One probe's result (moby `HealthcheckResult`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthcheckResult {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: GraphDriver,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub mounts: Vec<Value>,
    pub config: ContainerConfig,
    pub network_settings: crate::network::NetworkSettings,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GraphDriver {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

/// One row of `GET /containers/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<Port>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: SummaryHostConfig,
    pub network_settings: crate::network::SummaryNetworkSettings,
    pub mounts: Vec<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SummaryHostConfig {
    pub network_mode: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Port {
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    #[serde(rename = "PublicPort", skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    #[serde(rename = "Type")]
    pub kind: String,
}

/// `POST /containers/{id}/wait` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitResponse {
    pub status_code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitError>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitError {
    pub message: String,
}

/// One row of `GET /containers/{id}/top`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TopResponse {
    #[serde(deserialize_with = "null_as_default")]
    pub titles: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub processes: Vec<Vec<String>>,
}

/// `POST /containers/prune` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerPruneResponse {
    pub containers_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}

/// Writes an empty list as `null`, as Docker shows the lists its CLI leaves unset.
pub fn empty_as_null<S, T>(v: &[T], s: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    T: Serialize,
{
    if v.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(v)
    }
}

/// Accepts `null` where a collection is expected (Docker clients send `"Env": null`).
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Accepts `"echo hi"`, `["echo","hi"]` or `null` for `Cmd` and `Entrypoint`; `null`
/// (use the image's value) stays distinct from `[]`.
pub fn string_or_vec<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_accepts_nulls_and_string_cmd() {
        let body: ContainerCreateBody = serde_json::from_str(
            r#"{"Image":"busybox","Cmd":"echo hi","Env":null,"Entrypoint":null,
                "HostConfig":{"Binds":null,"Memory":1024},"Unknown":1}"#,
        )
        .unwrap();
        assert_eq!(body.config.image, "busybox");
        assert_eq!(body.config.cmd, Some(vec!["echo hi".to_string()]));
        assert_eq!(body.config.entrypoint, None);
        assert!(body.config.env.is_empty());
        assert_eq!(body.host_config.unwrap().memory, 1024);
    }

    /// What the Docker CLI 28 sends for `create --name typedrefc2 -e A=1 -p 8080:80 -v /data
    /// -v /tmp:/c:ro -l x=y --memory 64m --restart on-failure:2 --network typedref1
    /// typedref echo hi` (captured on its way to dockerd 20.10).
    const DOCKER_CLI_CREATE: &str = include_str!("../testdata/docker-cli-create.json");

    #[test]
    fn create_body_reads_the_docker_clis_body_and_survives_a_round_trip() {
        let body: ContainerCreateBody = serde_json::from_str(DOCKER_CLI_CREATE).unwrap();
        assert_eq!(body.config.cmd, Some(vec!["echo".into(), "hi".into()]));
        assert_eq!(body.config.labels["x"], "y");
        let hc = body.host_config.clone().unwrap();
        assert_eq!(hc.binds, ["/tmp:/c:ro"]);
        assert_eq!(hc.network_mode, "typedref1");
        assert_eq!(
            hc.port_bindings["80/tcp"].as_ref().unwrap()[0].host_port,
            "8080"
        );
        assert_eq!(hc.restart_policy.maximum_retry_count, 2);
        assert_eq!(hc.console_size, Some([0, 0]));
        assert_eq!(hc.memory_swappiness, Some(-1));
        assert!(body
            .networking_config
            .as_ref()
            .unwrap()
            .endpoints_config
            .is_empty());
        // What Berth's CLI sends from the typed body, the daemon reads back the same.
        let again: ContainerCreateBody =
            serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
        assert_eq!(again.config, body.config);
        assert_eq!(again.host_config, body.host_config);
        assert_eq!(again.networking_config, body.networking_config);
    }

    #[test]
    fn host_config_uses_dockers_acronym_field_names() {
        let hc: HostConfig = serde_json::from_str(
            r#"{"UTSMode":"host","ContainerIDFile":"/x","DeviceCgroupRules":["c 1:3 r"]}"#,
        )
        .unwrap();
        assert_eq!(hc.uts_mode, "host");
        assert_eq!(hc.container_id_file, "/x");
        let v = serde_json::to_value(&hc).unwrap();
        for key in ["UTSMode", "ContainerIDFile", "DeviceCgroupRules"] {
            assert!(v.get(key).is_some(), "{key} missing from {v}");
        }
    }
}

/// The body of `POST /containers/{id}/update` (moby `container.UpdateConfig`): the
/// resource fields, where 0 / empty / absent means "leave as it is", plus a restart
/// policy (an empty name leaves it as it is).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerUpdateBody {
    #[serde(deserialize_with = "null_as_default")]
    pub blkio_weight: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_shares: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub memory: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub nano_cpus: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_period: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_quota: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_realtime_period: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_realtime_runtime: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpuset_cpus: String,
    #[serde(deserialize_with = "null_as_default")]
    pub cpuset_mems: String,
    #[serde(deserialize_with = "null_as_default")]
    pub memory_reservation: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub memory_swap: i64,
    /// Ignored, as moby 20.10+ does, with a warning.
    #[serde(deserialize_with = "null_as_default")]
    pub kernel_memory: i64,
    /// `None` leaves the limit as it is; `Some(≤ 0)` lifts it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(deserialize_with = "null_as_default")]
    pub restart_policy: RestartPolicy,
}

/// The answer of `POST /containers/{id}/update`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerUpdateResponse {
    /// `null` when there is nothing to warn about (as moby).
    pub warnings: Option<Vec<String>>,
}
