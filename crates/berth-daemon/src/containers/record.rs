//! The persisted container record and the derived views: Docker's `Status` strings,
//! `State` for inspect, list summaries.

use std::path::PathBuf;

use berth_api::units::human_duration;
use berth_api::{ContainerConfig, ContainerState, HostConfig};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Docker's container lifecycle states (`State.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "restarting" => Status::Restarting,
            "removing" => Status::Removing,
            "exited" => Status::Exited,
            "dead" => Status::Dead,
            _ => return None,
        })
    }

    /// Running in Docker's sense: the process exists (paused containers are running), or
    /// the restart policy is about to start it again (Docker's `Restarting` counts as
    /// running for stop, kill, rm and start).
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// The mutable part of a container.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StateRecord {
    pub status: Status,
    /// Host pid of the container's init process while running, else 0.
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Set when a container with a healthcheck starts ([`super::health`]).
    pub health: Option<super::health::HealthState>,
}

/// One container, as stored (JSON) in the `containers` table of `meta.db`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerRecord {
    /// 64 hex.
    pub id: String,
    /// With Docker's leading `/`.
    pub name: String,
    /// The image as the client named it (`busybox`).
    pub image: String,
    /// `sha256:<hex>`.
    pub image_id: String,
    pub created: DateTime<Utc>,
    /// The process: `path` + `args` (entrypoint and command merged).
    pub path: String,
    pub args: Vec<String>,
    /// The merged configuration (create request + image defaults).
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: StateRecord,
    pub restart_count: i64,
    /// Stopped or killed by the user since the last start (moby's
    /// `HasBeenManuallyStopped`): `unless-stopped` is then not started at daemon start.
    pub has_been_manually_stopped: bool,
    pub log_path: PathBuf,
    /// Exec IDs started in this container (inspect's `ExecIDs`); execs live in memory
    /// only, so these are not persisted.
    #[serde(skip)]
    pub exec_ids: Vec<String>,
    /// Volumes, binds and `--mount` tmpfs mounts, resolved at create (see
    /// [`super::mounts`]).
    pub mount_points: Vec<super::mounts::MountPoint>,
    /// A start is in progress: written before the shim is spawned and cleared with the
    /// start's outcome, so that a daemon killed in between finds the shim again at its
    /// next start ([`super::reconcile`]) and adopts or removes it. Not in inspect.
    #[serde(skip_serializing_if = "is_false")]
    pub start_pending: bool,
    /// Options only Berth's own services set (the CRI server), never the Engine API.
    #[serde(skip_serializing_if = "InternalOptions::is_default")]
    pub internal: InternalOptions,
}

/// What the Engine API cannot ask for, set by [`super::ContainerService::create_internal`]
/// for the CRI server's pods and containers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct InternalOptions {
    /// A CRI pod sandbox: no image (an empty rootfs), and PID 1 is Berth's pause
    /// (`berth_runtime::pause`) holding the pod's namespaces.
    #[serde(skip_serializing_if = "is_false")]
    pub pause: bool,
    /// Join the UTS namespace (hostname) of this container (a full ID), which must run
    /// when this one starts: a CRI container shares its pod sandbox's. Docker's
    /// `UTSMode` has no `container:` form, so this is not in `HostConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uts_from: Option<String>,
    /// A CRI container's log file (the kubelet's path): the container logs there in the
    /// CRI format ([`super::log_config::CRI_DRIVER`]). Taken by create, which writes it
    /// into `log_path` and `HostConfig.LogConfig` of the record's one first write (never a
    /// second write after create, which a crash could miss); not kept here.
    #[serde(skip)]
    pub cri_log: Option<PathBuf>,
}

impl InternalOptions {
    pub fn is_default(&self) -> bool {
        *self == InternalOptions::default()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Docker's answer to exec, top, pause or attach while the restart policy restarts
/// the container.
pub fn restarting_error(id: &str) -> crate::error::ApiError {
    crate::error::ApiError::conflict(format!(
        "Container {id} is restarting, wait until the container is running"
    ))
}

/// Go's zero time as Docker prints it.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub fn rfc3339_nanos(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn time_or_zero(t: &Option<DateTime<Utc>>) -> String {
    t.as_ref()
        .map(rfc3339_nanos)
        .unwrap_or_else(|| ZERO_TIME.to_string())
}

impl ContainerRecord {
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    /// `State` as inspect shows it.
    pub fn api_state(&self) -> ContainerState {
        let s = &self.state;
        ContainerState {
            status: s.status.as_str().to_string(),
            running: s.status.is_running(),
            paused: s.status == Status::Paused,
            restarting: s.status == Status::Restarting,
            oom_killed: s.oom_killed,
            dead: s.status == Status::Dead,
            pid: if s.status.is_running() { s.pid } else { 0 },
            exit_code: s.exit_code,
            error: s.error.clone(),
            started_at: time_or_zero(&s.started_at),
            finished_at: time_or_zero(&s.finished_at),
            health: s.health.as_ref().map(|h| h.to_api()),
        }
    }

    /// `Command` in list output: path and args joined by spaces, args that contain a
    /// space in single quotes (as moby shows them).
    pub fn command_line(&self) -> String {
        let mut out = self.path.clone();
        for arg in &self.args {
            out.push(' ');
            if arg.contains(' ') {
                out.push('\'');
                out.push_str(arg);
                out.push('\'');
            } else {
                out.push_str(arg);
            }
        }
        out
    }

    /// Docker's human `Status` column (moby `container.State.String`).
    pub fn status_string(&self, now: DateTime<Utc>) -> String {
        let s = &self.state;
        match s.status {
            Status::Running | Status::Paused => {
                let since = s.started_at.map(|t| now - t).unwrap_or_default();
                let up = format!("Up {}", human_duration(since));
                match &s.health {
                    _ if s.status == Status::Paused => format!("{up} (Paused)"),
                    Some(h) => format!("{up} ({})", h.status.ps_text()),
                    None => up,
                }
            }
            Status::Restarting => {
                let ago = s.finished_at.map(|t| now - t).unwrap_or_default();
                format!("Restarting ({}) {} ago", s.exit_code, human_duration(ago))
            }
            Status::Removing => "Removal In Progress".to_string(),
            Status::Dead => "Dead".to_string(),
            Status::Created | Status::Exited => {
                if s.started_at.is_none() {
                    return "Created".to_string();
                }
                match s.finished_at {
                    None => String::new(),
                    Some(f) => {
                        format!("Exited ({}) {} ago", s.exit_code, human_duration(now - f))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn record(status: Status) -> ContainerRecord {
        ContainerRecord {
            id: "a".repeat(64),
            state: StateRecord {
                status,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn status_strings_follow_docker() {
        let now = Utc::now();
        assert_eq!(record(Status::Created).status_string(now), "Created");
        let mut r = record(Status::Running);
        r.state.started_at = Some(now - TimeDelta::seconds(3));
        assert_eq!(r.status_string(now), "Up 3 seconds");
        r.state.health = Some(Default::default());
        assert_eq!(r.status_string(now), "Up 3 seconds (health: starting)");
        r.state.health.as_mut().unwrap().status = super::super::health::HealthStatus::Unhealthy;
        assert_eq!(r.status_string(now), "Up 3 seconds (unhealthy)");
        r.state.status = Status::Paused;
        r.state.started_at = Some(now - TimeDelta::minutes(2));
        assert_eq!(r.status_string(now), "Up 2 minutes (Paused)");
        r.state.status = Status::Exited;
        r.state.finished_at = Some(now - TimeDelta::seconds(5));
        r.state.exit_code = 0;
        assert_eq!(r.status_string(now), "Exited (0) 5 seconds ago");
        // A start that failed never set StartedAt: Docker still says Created.
        let mut failed = record(Status::Exited);
        failed.state.exit_code = 127;
        assert_eq!(failed.status_string(now), "Created");
    }

    #[test]
    fn command_line_quotes_args_with_spaces() {
        let mut r = record(Status::Created);
        r.path = "sh".into();
        r.args = vec!["-c".into(), "exit 3".into()];
        assert_eq!(r.command_line(), "sh -c 'exit 3'");
        r.args.clear();
        assert_eq!(r.command_line(), "sh");
    }

    #[test]
    fn api_state_uses_go_zero_time() {
        let s = record(Status::Created).api_state();
        assert_eq!(s.started_at, ZERO_TIME);
        assert_eq!(s.status, "created");
        assert!(!s.running);
    }
}
