//! A container's log driver: the daemon's defaults merged in at create (moby
//! `daemon/logs.go` `mergeAndVerifyLogConfig`), the options checked, and the
//! [`LogSpec`] the shim writes with.
//!
//! Drivers: `json-file` (the default; Berth rotates it by default, see
//! [`berth_runtime::logspec`]), `local` and `none`. Docker's other drivers are refused.
//! Containers made through CRI get [`CRI_DRIVER`], which no Docker client can ask for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_api::{ContainerConfig, HostConfig, LogConfig};
use berth_runtime::logspec::{LogFormat, LogSpec};

use crate::error::ApiError;

/// The daemon's `--log-driver` / `--log-opt` (or daemon.json `log-driver`, `log-opts`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogDefaults {
    pub driver: String,
    pub opts: BTreeMap<String, String>,
}

impl Default for LogDefaults {
    fn default() -> Self {
        LogDefaults {
            driver: "json-file".into(),
            opts: BTreeMap::new(),
        }
    }
}

impl LogDefaults {
    /// dockerd's check at start: the default driver exists and takes these options.
    pub fn validate(&self) -> Result<(), String> {
        let lc = LogConfig {
            kind: self.driver.clone(),
            config: self.opts.clone(),
        };
        validate(&lc).map_err(|e| e.to_string())
    }

    /// The rotation the default driver applies, for `info` (Berth's defaults included).
    pub fn describe(&self) -> Option<String> {
        let spec = LogSpec::from_options(&self.driver, &self.opts).ok()?;
        let size = match spec.max_size {
            None => "-1".to_string(),
            Some(n) if n % (1 << 20) == 0 => format!("{}m", n >> 20),
            Some(n) if n % (1 << 10) == 0 => format!("{}k", n >> 10),
            Some(n) => n.to_string(),
        };
        Some(format!(
            "max-file={},max-size={size}{}",
            spec.max_file,
            if spec.compress { ",compress=true" } else { "" }
        ))
    }
}

/// The driver of CRI containers: the CRI log format at the kubelet's path, rotated by the
/// kubelet (set by [`super::ContainerService::set_cri_log`], never from a create request).
pub const CRI_DRIVER: &str = "cri";

/// Docker's drivers that Berth does not have.
const OTHER_DOCKER_DRIVERS: &[&str] = &[
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

/// The driver named in a create request (empty: the daemon's default), before merging.
pub fn validate_driver(kind: &str) -> Result<(), ApiError> {
    match kind {
        "" | "json-file" | "none" | "local" => Ok(()),
        k if OTHER_DOCKER_DRIVERS.contains(&k) => Err(ApiError::invalid(format!(
            "the {k} log driver is not supported by Berth (drivers: json-file, local, none)"
        ))),
        k => Err(ApiError::invalid(format!(
            "logger: no log driver named '{k}' is registered"
        ))),
    }
}

/// At create: the daemon's driver when none is named, and its options under the ones
/// given when the driver is the daemon's (as dockerd does); then everything checked.
pub fn resolve(hc: &mut HostConfig, defaults: &LogDefaults) -> Result<(), ApiError> {
    let lc = &mut hc.log_config;
    if lc.kind.is_empty() {
        lc.kind = defaults.driver.clone();
    }
    if lc.kind == defaults.driver {
        for (k, v) in &defaults.opts {
            lc.config.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    validate(lc)
}

fn validate(lc: &LogConfig) -> Result<(), ApiError> {
    validate_driver(&lc.kind)?;
    match lc.kind.as_str() {
        "none" => {
            if lc.config.is_empty() {
                Ok(())
            } else {
                Err(ApiError::invalid("invalid logging opts for driver none"))
            }
        }
        driver => {
            for k in lc.config.keys() {
                let allowed = match driver {
                    "local" => berth_runtime::logspec::LOCAL_OPTS,
                    _ => berth_runtime::logspec::JSON_FILE_OPTS,
                };
                let json_tag = k == "tag" && driver == "json-file"; // refused below, with why
                if !allowed.contains(&k.as_str()) && !json_tag {
                    return Err(ApiError::invalid(berth_runtime::logspec::unknown_opt(
                        driver, k,
                    )));
                }
            }
            LogSpec::from_options(driver, &lc.config).map_err(failed)?;
            for k in ["labels-regex", "env-regex"] {
                if let Some(re) = lc.config.get(k) {
                    regex::Regex::new(re).map_err(|e| regex_error(re, e))?;
                }
            }
            Ok(())
        }
    }
}

/// Go's shape, `error parsing regexp: WHY: `RE``, on one line (the regex crate's text
/// draws the pattern over several).
fn regex_error(re: &str, e: regex::Error) -> ApiError {
    let text = e.to_string();
    let why = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.trim());
    failed(format!("error parsing regexp: {why}: `{re}`"))
}

fn failed(e: String) -> ApiError {
    ApiError::invalid(format!("failed to initialize logging driver: {e}"))
}

/// Where the shim writes the log, for the record (`LogPath` of inspect is empty for
/// `local` and `none`, as in Docker).
pub fn log_path(container_dir: &Path, id: &str, kind: &str) -> PathBuf {
    match kind {
        "none" => PathBuf::new(),
        "local" => container_dir.join("local-logs").join("container.log"),
        _ => container_dir.join(format!("{id}-json.log")),
    }
}

/// The format of a container's log file.
pub fn format(hc: &HostConfig) -> LogFormat {
    match hc.log_config.kind.as_str() {
        "local" => LogFormat::Local,
        CRI_DRIVER => LogFormat::Cri,
        _ => LogFormat::JsonFile,
    }
}

/// The spec the shim writes with: the options (checked at create) plus the json-file
/// `attrs` from `labels`, `labels-regex`, `env` and `env-regex` (moby
/// `daemon/logger/loginfo.go` `ExtraAttributes`).
pub fn spec(hc: &HostConfig, config: &ContainerConfig) -> Result<LogSpec, ApiError> {
    let opts = &hc.log_config.config;
    match hc.log_config.kind.as_str() {
        "none" => return Ok(LogSpec::default()),
        "local" => return LogSpec::from_options("local", opts).map_err(failed),
        // One file that the kubelet rotates (it renames it, then has the shim reopen it).
        CRI_DRIVER => {
            return Ok(LogSpec {
                format: LogFormat::Cri,
                ..LogSpec::default()
            })
        }
        _ => {}
    }
    let mut spec = LogSpec::from_options("json-file", opts).map_err(failed)?;
    let names = |k: &str| -> Vec<String> {
        opts.get(k)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let regex = |k: &str| -> Result<Option<regex::Regex>, ApiError> {
        opts.get(k)
            .map(|re| regex::Regex::new(re).map_err(|e| regex_error(re, e)))
            .transpose()
    };
    let labels = &config.labels;
    for l in names("labels") {
        if let Some(v) = labels.get(&l) {
            spec.attrs.insert(l, v.clone());
        }
    }
    if let Some(re) = regex("labels-regex")? {
        for (k, v) in labels.iter().filter(|(k, _)| re.is_match(k)) {
            spec.attrs.insert(k.clone(), v.clone());
        }
    }
    let env: BTreeMap<&str, &str> = config
        .env
        .iter()
        .filter_map(|e| e.split_once('='))
        .collect();
    for e in names("env") {
        if let Some(v) = env.get(e.as_str()) {
            spec.attrs.insert(e, v.to_string());
        }
    }
    if let Some(re) = regex("env-regex")? {
        for (k, v) in env.iter().filter(|(k, _)| re.is_match(k)) {
            spec.attrs.insert(k.to_string(), v.to_string());
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(kind: &str, kv: &[(&str, &str)]) -> HostConfig {
        let mut hc = HostConfig::default();
        hc.log_config.kind = kind.into();
        hc.log_config.config = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        hc
    }

    #[test]
    fn daemon_defaults_merge_as_dockerd_does() {
        let d = LogDefaults {
            driver: "json-file".into(),
            opts: [("max-size".to_string(), "1m".to_string())].into(),
        };
        let mut h = hc("", &[("max-file", "2")]);
        resolve(&mut h, &d).unwrap();
        assert_eq!(h.log_config.kind, "json-file");
        assert_eq!(h.log_config.config.len(), 2);
        // Another driver does not get the default driver's options.
        let mut h = hc("local", &[]);
        resolve(&mut h, &d).unwrap();
        assert!(h.log_config.config.is_empty());
        // The container's own value wins.
        let mut h = hc("json-file", &[("max-size", "5k")]);
        resolve(&mut h, &d).unwrap();
        assert_eq!(h.log_config.config["max-size"], "5k");
    }

    #[test]
    fn refusals_in_dockers_words() {
        let d = LogDefaults::default();
        let err = |mut h: HostConfig| resolve(&mut h, &d).unwrap_err().to_string();
        assert_eq!(
            err(hc("", &[("x", "1")])),
            "unknown log opt 'x' for json-file log driver"
        );
        assert_eq!(
            err(hc("json-file", &[("max-size", "1x")])),
            "failed to initialize logging driver: invalid size: '1x'"
        );
        assert_eq!(
            err(hc("none", &[("max-size", "1k")])),
            "invalid logging opts for driver none"
        );
        assert!(err(hc("syslog", &[])).contains("syslog log driver is not supported"));
        assert_eq!(
            err(hc("foo", &[])),
            "logger: no log driver named 'foo' is registered"
        );
        assert_eq!(
            err(hc("", &[("labels-regex", "[")])),
            "failed to initialize logging driver: error parsing regexp: unclosed character class: `[`"
        );
        assert!(err(hc("", &[("tag", "x")])).contains("tag"));
    }

    #[test]
    fn attrs_from_labels_and_env() {
        let h = hc(
            "json-file",
            &[("labels", "a,missing"), ("env-regex", "^X"), ("env", "B")],
        );
        let c = ContainerConfig {
            labels: [("a", "1"), ("b", "2")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env: vec!["XA=3".into(), "B=4".into(), "C=5".into()],
            ..Default::default()
        };
        let s = spec(&h, &c).unwrap();
        let want: BTreeMap<String, String> = [("a", "1"), ("XA", "3"), ("B", "4")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(s.attrs, want);
    }

    #[test]
    fn info_describes_the_default_rotation() {
        assert_eq!(
            LogDefaults::default().describe().unwrap(),
            "max-file=5,max-size=10m"
        );
        let d = LogDefaults {
            driver: "local".into(),
            opts: BTreeMap::new(),
        };
        assert_eq!(
            d.describe().unwrap(),
            "max-file=5,max-size=20m,compress=true"
        );
    }
}
