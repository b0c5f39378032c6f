//! System routes: `/_ping`, `/version`, `/info`, `/system/df` and `/system/check`
//! (their handlers in [`super::system_df`]).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use berth_api::{Component, Info, Platform, Version, API_VERSION, MIN_API_VERSION};
use http::HeaderValue;
use serde_json::json;

use crate::state::Daemon;

pub fn routes() -> Router<Daemon> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/system/df", get(super::system_df::disk_usage))
        .route("/system/check", get(super::system_df::check))
}

async fn ping() -> Response {
    let mut resp = "OK".into_response();
    let h = resp.headers_mut();
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    resp
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub const BERTH_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `info` label that shows the default log driver's rotation (`max-file=5,max-size=10m`).
pub const LOG_ROTATION_LABEL: &str = "berth.log-rotation";

async fn version() -> Json<Version> {
    let kernel = kernel_version();
    Json(Version {
        platform: Platform {
            name: "Berth Engine".into(),
        },
        components: vec![Component {
            name: "Engine".into(),
            version: BERTH_VERSION.into(),
            details: json!({
                "ApiVersion": API_VERSION,
                "Arch": arch(),
                "BuildTime": "",
                "Experimental": "false",
                "GitCommit": "",
                "GoVersion": "n/a (rust)",
                "KernelVersion": kernel,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
            }),
        }],
        version: BERTH_VERSION.into(),
        api_version: API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        git_commit: String::new(),
        go_version: "n/a (rust)".into(),
        os: "linux".into(),
        arch: arch().into(),
        kernel_version: kernel,
        build_time: String::new(),
    })
}

fn os_release_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

async fn info(State(d): State<Daemon>) -> Json<Info> {
    let counts = d.container_counts();
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    Json(Info {
        id: d.daemon_id.clone(),
        containers: counts.total,
        containers_running: counts.running,
        containers_paused: counts.paused,
        containers_stopped: counts.total - counts.running - counts.paused,
        images: d.image_count(),
        driver: "overlay2".into(),
        driver_status: vec![
            vec!["Backing Filesystem".into(), "extfs".into()],
            vec!["Supports d_type".into(), "true".into()],
        ],
        memory_limit: true,
        swap_limit: true,
        cpu_cfs_period: true,
        cpu_cfs_quota: true,
        cpu_shares: true,
        cpu_set: true,
        pids_limit: true,
        ipv4_forwarding: true,
        debug: d.config.debug,
        n_fd: std::fs::read_dir("/proc/self/fd")
            .map(|r| r.count() as i64)
            .unwrap_or(0),
        n_goroutines: 0,
        system_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        logging_driver: d.config.log.driver.clone(),
        cgroup_driver: "cgroupfs".into(),
        cgroup_version: cgroup_version.into(),
        n_events_listener: 0,
        kernel_version: kernel_version(),
        operating_system: os_release_name(),
        os_version: String::new(),
        os_type: "linux".into(),
        architecture: std::env::consts::ARCH.into(),
        ncpu: std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1),
        mem_total: mem_total(),
        index_server_address: "https://index.docker.io/v1/".into(),
        registry_config: json!({"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []}),
        docker_root_dir: d.config.root.display().to_string(),
        name: hostname,
        // Beyond Docker: logs rotate by default; the label shows how (in `docker info`).
        labels: d
            .config
            .log
            .describe()
            .map(|r| format!("{LOG_ROTATION_LABEL}={r}"))
            .into_iter()
            .collect(),
        experimental_build: false,
        server_version: BERTH_VERSION.into(),
        runtimes: json!({"berth": {"path": "berth"}, "runc": {"path": "berth"}}),
        default_runtime: "berth".into(),
        swarm: json!({"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null}),
        live_restore_enabled: true,
        isolation: String::new(),
        init_binary: berth_runtime::tiny_init::INIT_NAME.into(),
        // dockerd's order: seccomp, userns (a remapped root), cgroupns
        security_options: [
            Some(d.config.security.info_security_option()),
            d.config
                .userns_remap
                .is_some()
                .then(|| "name=userns".to_string()),
            Some("name=cgroupns".into()),
        ]
        .into_iter()
        .flatten()
        .collect(),
        warnings: None,
        plugins: json!({"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": ["json-file"]}),
    })
}
