//! Healthchecks, the pure part (moby `daemon/health.go` and the healthcheck bits of
//! `daemon/commit.go` and `daemon/container.go`): the config's validation and its merge
//! over the image's, the probe's command, the state machine a probe result drives, the
//! probe schedule and the capped output. The monitor tasks that run probes are in
//! [`super::health_monitor`].

use std::time::Duration;

use berth_api::units::go_duration;
use berth_api::{Health, HealthConfig, HealthcheckResult};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::record::rfc3339_nanos;

/// Longest probe output kept; longer output is cut and ends with `...`.
pub const MAX_OUTPUT_LEN: usize = 4096;
/// Results kept in `State.Health.Log`.
pub const MAX_LOG_ENTRIES: usize = 5;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// moby `container.MinimumDuration`.
const MINIMUM_DURATION_NS: i64 = 1_000_000;

/// `State.Health.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// The suffix of `ps`'s status column: `Up 5 seconds (health: starting)`.
    pub fn ps_text(self) -> &'static str {
        match self {
            HealthStatus::Starting => "health: starting",
            other => other.as_str(),
        }
    }
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The probe's exit code; -1 when it timed out or could not run.
    pub exit_code: i64,
    pub output: String,
}

/// A container's health, as persisted in its record (`State.Health`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthState {
    pub status: HealthStatus,
    pub failing_streak: i64,
    pub log: Vec<ProbeResult>,
}

impl HealthState {
    pub fn to_api(&self) -> Health {
        Health {
            status: self.status.as_str().to_string(),
            failing_streak: self.failing_streak,
            log: self
                .log
                .iter()
                .map(|r| HealthcheckResult {
                    start: rfc3339_nanos(&r.start),
                    end: rfc3339_nanos(&r.end),
                    exit_code: r.exit_code,
                    output: r.output.clone(),
                })
                .collect(),
        }
    }
}

/// `Config.Healthcheck` of a request or an image config; `None` for absent or `null`.
pub fn parse_config(v: Option<&Value>) -> Result<Option<HealthConfig>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| format!("invalid Healthcheck: {e}")),
    }
}

/// moby `validateHealthCheck`, in Docker's words.
pub fn validate(h: &HealthConfig) -> Result<(), String> {
    let min = go_duration(MINIMUM_DURATION_NS);
    let too_short = |ns: i64| ns != 0 && ns < MINIMUM_DURATION_NS;
    if too_short(h.interval) {
        return Err(format!("Interval in Healthcheck cannot be less than {min}"));
    }
    if too_short(h.timeout) {
        return Err(format!("Timeout in Healthcheck cannot be less than {min}"));
    }
    if h.retries < 0 {
        return Err("Retries in Healthcheck cannot be negative".into());
    }
    if too_short(h.start_period) {
        return Err(format!(
            "StartPeriod in Healthcheck cannot be less than {min}"
        ));
    }
    if too_short(h.start_interval) {
        return Err(format!(
            "StartInterval in Healthcheck cannot be less than {min}"
        ));
    }
    Ok(())
}

/// The container's healthcheck over the image's (moby `merge`): a field left zero (or an
/// empty `Test`) inherits the image's.
pub fn merge(user: Option<HealthConfig>, image: Option<HealthConfig>) -> Option<HealthConfig> {
    let Some(image) = image else { return user };
    let Some(mut user) = user else {
        return Some(image);
    };
    if user.test.is_empty() {
        user.test = image.test;
    }
    let inherit = |mine: &mut i64, theirs: i64| {
        if *mine == 0 {
            *mine = theirs;
        }
    };
    inherit(&mut user.interval, image.interval);
    inherit(&mut user.timeout, image.timeout);
    inherit(&mut user.start_period, image.start_period);
    inherit(&mut user.start_interval, image.start_interval);
    inherit(&mut user.retries, image.retries);
    Some(user)
}

/// The probe's argv (moby `getProbe` and `cmdProbe`): `CMD` runs its arguments, `CMD-SHELL`
/// runs its command with the container's shell (default `/bin/sh -c`). `None` when the
/// container has no healthcheck (none set, `NONE`, or a type Docker does not know).
pub fn probe_command(h: &HealthConfig, shell: Option<&[String]>) -> Option<Vec<String>> {
    let (kind, args) = h.test.split_first()?;
    match kind.as_str() {
        "CMD" => Some(args.to_vec()),
        "CMD-SHELL" => {
            let mut argv = match shell.filter(|s| !s.is_empty()) {
                Some(s) => s.to_vec(),
                None => vec!["/bin/sh".to_string(), "-c".to_string()],
            };
            argv.extend(args.iter().cloned());
            Some(argv)
        }
        "NONE" => None,
        other => {
            tracing::warn!(kind = other, "unknown healthcheck type (expected CMD)");
            None
        }
    }
}

/// The timings and retries of a healthcheck, Docker's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: i64,
}

fn or_default(ns: i64, default: Duration) -> Duration {
    if ns <= 0 {
        default
    } else {
        Duration::from_nanos(ns as u64)
    }
}

impl Policy {
    pub fn of(h: &HealthConfig) -> Policy {
        Policy {
            interval: or_default(h.interval, DEFAULT_INTERVAL),
            timeout: or_default(h.timeout, DEFAULT_TIMEOUT),
            start_period: or_default(h.start_period, Duration::ZERO),
            start_interval: or_default(h.start_interval, DEFAULT_START_INTERVAL),
            retries: if h.retries <= 0 {
                DEFAULT_RETRIES
            } else {
                h.retries
            },
        }
    }
}

/// The wait before the next probe, `elapsed` after the container started (moby
/// `monitor`'s `getInterval`): the interval; during the start period, while the container
/// is still starting, the start interval, but never past the end of the start period.
pub fn next_delay(elapsed: Duration, policy: &Policy, status: HealthStatus) -> Duration {
    if elapsed >= policy.start_period {
        return policy.interval;
    }
    let remaining = policy.start_period - elapsed;
    if remaining < policy.interval {
        return remaining;
    }
    if status == HealthStatus::Starting {
        policy.start_interval
    } else {
        policy.interval
    }
}

/// A (re)started or restored container: `starting` again with no failures; the log of
/// earlier runs stays (moby `initHealthMonitor`).
pub fn begin(previous: Option<HealthState>) -> HealthState {
    let mut h = previous.unwrap_or_default();
    h.status = HealthStatus::Starting;
    h.failing_streak = 0;
    h
}

/// The monitor stopped (the container stopped or was paused): Docker reports
/// `unhealthy` from then on (moby `CloseMonitorChannel`).
pub fn monitor_stopped(h: &mut HealthState) {
    h.status = HealthStatus::Unhealthy;
}

/// Records one probe result (moby `handleProbeResult`) and returns the new status when
/// it changed. A failure during the start period does not count while the container
/// has never been healthy; `retries` failures in a row make it unhealthy.
pub fn record_result(
    h: &mut HealthState,
    result: ProbeResult,
    started_at: DateTime<Utc>,
    policy: &Policy,
) -> Option<HealthStatus> {
    let old = h.status;
    let success = result.exit_code == 0;
    let in_start_period = (result.start - started_at)
        .to_std()
        .map(|since| since < policy.start_period)
        .unwrap_or(true);
    if h.log.len() >= MAX_LOG_ENTRIES {
        let drop = h.log.len() + 1 - MAX_LOG_ENTRIES;
        h.log.drain(..drop);
    }
    h.log.push(result);
    if success {
        h.failing_streak = 0;
        h.status = HealthStatus::Healthy;
    } else if !(h.status == HealthStatus::Starting && in_start_period) {
        h.failing_streak += 1;
        if h.failing_streak >= policy.retries {
            h.status = HealthStatus::Unhealthy;
        }
    }
    (h.status != old).then_some(h.status)
}

/// The output of a probe that ran past its timeout.
pub fn timeout_output(timeout: Duration) -> String {
    let ns = i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX);
    format!("Health check exceeded timeout ({})", go_duration(ns))
}

/// Keeps the first [`MAX_OUTPUT_LEN`] bytes written (moby `limitedBuffer`).
#[derive(Debug, Default)]
pub struct LimitedBuffer {
    buf: Vec<u8>,
    truncated: bool,
}

impl LimitedBuffer {
    pub fn write(&mut self, data: &[u8]) {
        let keep = (MAX_OUTPUT_LEN - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    /// The output, invalid UTF-8 replaced (as Go's JSON does), `...` when cut.
    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn cfg(json: &str) -> HealthConfig {
        serde_json::from_str(json).unwrap()
    }

    fn result(started: DateTime<Utc>, after_secs: i64, code: i64) -> ProbeResult {
        let start = started + TimeDelta::seconds(after_secs);
        ProbeResult {
            start,
            end: start + TimeDelta::milliseconds(50),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn validation_uses_dockers_words() {
        let err = |json: &str| validate(&cfg(json)).unwrap_err();
        assert_eq!(
            err(r#"{"Interval":100}"#),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            err(r#"{"Interval":-5}"#),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            err(r#"{"Timeout":999999}"#),
            "Timeout in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            err(r#"{"Retries":-1}"#),
            "Retries in Healthcheck cannot be negative"
        );
        assert_eq!(
            err(r#"{"StartPeriod":1}"#),
            "StartPeriod in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            err(r#"{"StartInterval":1}"#),
            "StartInterval in Healthcheck cannot be less than 1ms"
        );
        assert!(validate(&cfg(r#"{"Test":["CMD","true"],"Interval":1000000}"#)).is_ok());
        assert!(validate(&HealthConfig::default()).is_ok());
    }

    #[test]
    fn json_omits_zero_fields_as_docker_does() {
        let h = cfg(r#"{"Test":["CMD-SHELL","echo hi"],"Interval":1000000000,"Retries":0}"#);
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"Test":["CMD-SHELL","echo hi"],"Interval":1000000000}"#
        );
        assert_eq!(parse_config(Some(&Value::Null)).unwrap(), None);
        // docker-compose sends null for what it leaves unset; Go reads null as zero.
        let c = parse_config(Some(
            &serde_json::json!({"Test": ["CMD", "true"], "Timeout": null, "Retries": null}),
        ));
        assert_eq!(c.unwrap().unwrap().timeout, 0);
        assert!(parse_config(Some(&serde_json::json!({"Test": "x"}))).is_err());
    }

    #[test]
    fn container_settings_override_the_image_field_by_field() {
        let image = cfg(r#"{"Test":["CMD","img"],"Interval":5,"Timeout":6,"Retries":7}"#);
        let user = cfg(r#"{"Interval":9}"#);
        let m = merge(Some(user), Some(image.clone())).unwrap();
        assert_eq!(m.test, vec!["CMD", "img"]);
        assert_eq!((m.interval, m.timeout, m.retries), (9, 6, 7));
        let none = cfg(r#"{"Test":["NONE"]}"#);
        assert_eq!(
            merge(Some(none.clone()), Some(image.clone())).unwrap().test,
            vec!["NONE"]
        );
        assert_eq!(merge(None, Some(image.clone())), Some(image));
        assert_eq!(merge(Some(none.clone()), None), Some(none));
        assert_eq!(merge(None, None), None);
    }

    #[test]
    fn probe_commands() {
        let argv = |json: &str| probe_command(&cfg(json), None);
        assert_eq!(
            argv(r#"{"Test":["CMD","true","x"]}"#),
            Some(vec!["true".into(), "x".into()])
        );
        assert_eq!(
            argv(r#"{"Test":["CMD-SHELL","exit 3"]}"#),
            Some(vec!["/bin/sh".into(), "-c".into(), "exit 3".into()])
        );
        assert_eq!(argv(r#"{"Test":["NONE"]}"#), None);
        assert_eq!(argv(r#"{"Test":[]}"#), None);
        assert_eq!(argv(r#"{"Test":["BOGUS","x"]}"#), None);
        let shell = vec!["/bin/ash".to_string(), "-ec".to_string()];
        assert_eq!(
            probe_command(&cfg(r#"{"Test":["CMD-SHELL","x"]}"#), Some(&shell)),
            Some(vec!["/bin/ash".into(), "-ec".into(), "x".into()])
        );
    }

    #[test]
    fn defaults_fill_in() {
        let p = Policy::of(&HealthConfig::default());
        assert_eq!(p.interval, Duration::from_secs(30));
        assert_eq!(p.timeout, Duration::from_secs(30));
        assert_eq!(p.start_period, Duration::ZERO);
        assert_eq!(p.start_interval, Duration::from_secs(5));
        assert_eq!(p.retries, 3);
    }

    #[test]
    fn retries_failures_in_a_row_make_it_unhealthy() {
        let started = Utc::now();
        let p = Policy::of(&cfg(r#"{"Retries":2}"#));
        let mut h = begin(None);
        assert_eq!(h.status, HealthStatus::Starting);
        assert_eq!(
            record_result(&mut h, result(started, 1, 1), started, &p),
            None
        );
        assert_eq!(h.failing_streak, 1);
        assert_eq!(
            record_result(&mut h, result(started, 2, 1), started, &p),
            Some(HealthStatus::Unhealthy)
        );
        assert_eq!(
            record_result(&mut h, result(started, 3, 7), started, &p),
            None
        );
        assert_eq!(h.failing_streak, 3);
        assert_eq!(
            record_result(&mut h, result(started, 4, 0), started, &p),
            Some(HealthStatus::Healthy)
        );
        assert_eq!(h.failing_streak, 0);
        assert_eq!(
            record_result(&mut h, result(started, 5, 0), started, &p),
            None
        );
        // A healthy container needs `retries` failures again.
        assert_eq!(
            record_result(&mut h, result(started, 6, 1), started, &p),
            None
        );
        assert_eq!(h.status, HealthStatus::Healthy);
    }

    #[test]
    fn the_log_keeps_the_last_five() {
        let started = Utc::now();
        let p = Policy::of(&HealthConfig::default());
        let mut h = begin(None);
        for i in 0..8 {
            record_result(&mut h, result(started, i, i), started, &p);
        }
        let codes: Vec<i64> = h.log.iter().map(|r| r.exit_code).collect();
        assert_eq!(codes, vec![3, 4, 5, 6, 7]);
        let api = h.to_api();
        assert_eq!(api.log.len(), 5);
        assert_eq!(api.status, "unhealthy");
        // A restart keeps the log, resets the status and the streak.
        let again = begin(Some(h));
        assert_eq!(
            (again.status, again.failing_streak, again.log.len()),
            (HealthStatus::Starting, 0, 5)
        );
    }

    #[test]
    fn start_period_failures_do_not_count_until_healthy() {
        let started = Utc::now();
        let p = Policy::of(&cfg(r#"{"Retries":1,"StartPeriod":10000000000}"#));
        let mut h = begin(None);
        assert_eq!(
            record_result(&mut h, result(started, 1, 1), started, &p),
            None
        );
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        assert_eq!(h.log.len(), 1);
        // Healthy once: later failures count even inside the start period.
        assert_eq!(
            record_result(&mut h, result(started, 2, 0), started, &p),
            Some(HealthStatus::Healthy)
        );
        assert_eq!(
            record_result(&mut h, result(started, 3, 1), started, &p),
            Some(HealthStatus::Unhealthy)
        );
        // After the start period failures count.
        let mut h = begin(None);
        assert_eq!(
            record_result(&mut h, result(started, 11, 1), started, &p),
            Some(HealthStatus::Unhealthy)
        );
    }

    #[test]
    fn probe_schedule() {
        let s = Duration::from_secs;
        let p = Policy::of(&cfg(r#"{"Interval":30000000000}"#));
        assert_eq!(next_delay(s(0), &p, HealthStatus::Starting), s(30));
        // Start period 60s, start interval 2s: every 2s while starting.
        let p = Policy::of(&cfg(
            r#"{"Interval":30000000000,"StartPeriod":60000000000,"StartInterval":2000000000}"#,
        ));
        assert_eq!(next_delay(s(0), &p, HealthStatus::Starting), s(2));
        assert_eq!(next_delay(s(10), &p, HealthStatus::Healthy), s(30));
        // Less of the start period left than an interval: probe when it ends.
        assert_eq!(next_delay(s(50), &p, HealthStatus::Healthy), s(10));
        assert_eq!(next_delay(s(61), &p, HealthStatus::Starting), s(30));
        // A start period shorter than the interval.
        let p = Policy::of(&cfg(r#"{"Interval":1000000000,"StartPeriod":3000000000}"#));
        assert_eq!(next_delay(s(0), &p, HealthStatus::Starting), s(5));
        assert_eq!(
            next_delay(Duration::from_millis(2500), &p, HealthStatus::Starting),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn output_is_capped() {
        let mut b = LimitedBuffer::default();
        b.write(b"hello ");
        b.write(b"world\n");
        assert_eq!(b.text(), "hello world\n");
        let mut b = LimitedBuffer::default();
        b.write(&[b'a'; 4000]);
        b.write(&[b'b'; 200]);
        let t = b.text();
        assert_eq!(t.len(), MAX_OUTPUT_LEN + 3);
        assert!(t.ends_with("bbb..."));
        assert_eq!(
            timeout_output(Duration::from_millis(500)),
            "Health check exceeded timeout (500ms)"
        );
        assert_eq!(
            timeout_output(Duration::from_secs(30)),
            "Health check exceeded timeout (30s)"
        );
    }

    #[test]
    fn ps_texts() {
        assert_eq!(HealthStatus::Starting.ps_text(), "health: starting");
        assert_eq!(HealthStatus::Healthy.ps_text(), "healthy");
        assert_eq!(HealthStatus::Unhealthy.ps_text(), "unhealthy");
    }
}
