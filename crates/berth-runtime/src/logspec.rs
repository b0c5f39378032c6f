//! What a container's log driver is configured to do, decided from Docker's `--log-opt`s.
//!
//! Two drivers write files: `json-file` (moby `daemon/logger/jsonfilelog`) and `local`
//! (moby `daemon/logger/local`, protobuf frames). Both rotate the same way (moby
//! `daemon/logger/loggerutils`): the live file `NAME`, then `NAME.1` (newest) …
//! `NAME.<max-file - 1>`, each `.gz` when compressed. Beyond Docker, `json-file` rotates
//! by default ([`DEFAULT_JSON_MAX_SIZE`] × [`DEFAULT_JSON_MAX_FILE`]); `max-size=-1`
//! turns rotation off.
//!
//! The daemon decides a [`LogSpec`] at create (refusing bad values with Docker's words)
//! and hands it to the shim in `spec.json`; the shim's writer and the daemon's reader
//! agree on the names through [`rotated_path`] and [`list_files`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Berth's default for `json-file` when `max-size` is not configured (Docker: unbounded).
pub const DEFAULT_JSON_MAX_SIZE: &str = "10m";
/// Berth's default for `json-file` when `max-file` is not configured (Docker: 1).
pub const DEFAULT_JSON_MAX_FILE: u32 = 5;
/// Docker's defaults for the `local` driver.
pub const DEFAULT_LOCAL_MAX_SIZE: u64 = 20 * 1024 * 1024;
pub const DEFAULT_LOCAL_MAX_FILE: u32 = 5;

/// The options each driver takes (moby's `ValidateLogOpt`s). `tag` is accepted by Docker's
/// json-file driver but has no effect there, so Berth refuses it rather than ignore it.
pub const JSON_FILE_OPTS: &[&str] = &[
    "max-file",
    "max-size",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
];
pub const LOCAL_OPTS: &[&str] = &["max-file", "max-size", "compress"];

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    JsonFile,
    /// Docker's `local` driver: length-framed protobuf `LogEntry` messages.
    Local,
    /// The Kubernetes CRI format, for containers made through CRI (at the path the
    /// kubelet gives, rotated by the kubelet): `<RFC 3339 time> <stream> <F|P> <line>`.
    Cri,
}

/// How the shim writes a container's log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LogSpec {
    pub format: LogFormat,
    /// Rotate before a write would make the live file larger than this; None: never.
    pub max_size: Option<u64>,
    /// Files kept, the live one included (1: the live file is started afresh).
    pub max_file: u32,
    /// gzip rotated files (`NAME.1.gz` …).
    pub compress: bool,
    /// json-file `attrs` of every entry (`--log-opt labels=…`, `env=…`).
    pub attrs: BTreeMap<String, String>,
}

impl Default for LogSpec {
    /// What a spec written before rotation existed means: one file, never rotated.
    fn default() -> Self {
        LogSpec {
            format: LogFormat::JsonFile,
            max_size: None,
            max_file: 1,
            compress: false,
            attrs: BTreeMap::new(),
        }
    }
}

/// Docker's text for a log option the driver does not take.
pub fn unknown_opt(driver: &str, opt: &str) -> String {
    match driver {
        "json-file" => format!("unknown log opt '{opt}' for json-file log driver"),
        _ => format!("unknown log opt '{opt}' for log driver {driver}"),
    }
}

impl LogSpec {
    /// Checks the options of `driver` (`json-file` or `local`) and decides the spec, with
    /// Docker's error texts (without the daemon's "failed to initialize logging driver: ").
    /// `attrs` are left empty: the daemon fills them from the container's labels and env.
    pub fn from_options(driver: &str, opts: &BTreeMap<String, String>) -> Result<LogSpec, String> {
        let (format, allowed) = match driver {
            "json-file" => (LogFormat::JsonFile, JSON_FILE_OPTS),
            "local" => (LogFormat::Local, LOCAL_OPTS),
            other => return Err(format!("the {other} log driver does not write files")),
        };
        if let Some(k) = opts.keys().find(|k| !allowed.contains(&k.as_str())) {
            if k == "tag" && format == LogFormat::JsonFile {
                return Err(
                    "the tag log option has no effect with the json-file log driver; Berth refuses it rather than ignore it"
                        .into(),
                );
            }
            return Err(unknown_opt(driver, k));
        }
        match format {
            LogFormat::Local => local(opts),
            _ => json_file(opts),
        }
    }
}

fn json_file(opts: &BTreeMap<String, String>) -> Result<LogSpec, String> {
    let size = opts
        .get("max-size")
        .map_or(DEFAULT_JSON_MAX_SIZE, |s| s.as_str());
    let max_size = if size.trim() == "-1" {
        None
    } else {
        let n = parse_size(size)?;
        if n <= 0 {
            return Err("max-size must be a positive number".into());
        }
        Some(n as u64)
    };
    let max_file = match opts.get("max-file") {
        None => DEFAULT_JSON_MAX_FILE,
        Some(s) => {
            let n = go_atoi(s)?;
            if n < 1 {
                return Err("max-file cannot be less than 1".into());
            }
            n as u32
        }
    };
    let compress = match opts.get("compress") {
        None => false,
        Some(s) => go_parse_bool(s)?,
    };
    if compress && (max_file < 2 || max_size.is_none()) {
        return Err(
            "compress cannot be true when max-file is less than 2 or max-size is not set".into(),
        );
    }
    Ok(LogSpec {
        format: LogFormat::JsonFile,
        max_size,
        max_file,
        compress,
        attrs: BTreeMap::new(),
    })
}

fn local(opts: &BTreeMap<String, String>) -> Result<LogSpec, String> {
    let max_size = match opts.get("max-size").map(|s| s.trim()) {
        None => Some(DEFAULT_LOCAL_MAX_SIZE),
        Some("-1") => None,
        Some(s) => {
            let n = parse_size(s).map_err(|e| format!("invalid value for max-size: {s}: {e}"))?;
            // Docker's local driver: 0 means no limit.
            (n > 0).then_some(n as u64)
        }
    };
    let max_file = match opts.get("max-file") {
        None => DEFAULT_LOCAL_MAX_FILE,
        Some(s) => {
            let n = go_atoi(s).map_err(|e| format!("invalid value for max-file: {s}: {e}"))?;
            if n < 0 {
                return Err("max file count cannot be less than 0".into());
            }
            n.max(1) as u32
        }
    };
    let compress = match opts.get("compress") {
        None => true,
        Some(s) => {
            go_parse_bool(s).map_err(|e| format!("error reading compress log option: {e}"))?
        }
    };
    if compress && max_file == 1 {
        return Err("compression cannot be enabled when max file count is 1".into());
    }
    Ok(LogSpec {
        format: LogFormat::Local,
        max_size,
        max_file,
        // Nothing is ever rotated without a size limit.
        compress: compress && max_size.is_some(),
        attrs: BTreeMap::new(),
    })
}

/// go-units `RAMInBytes`: `10`, `10k`, `1.5m`, `1kb`, `1KiB`, `2 g` (binary multiples).
pub fn parse_size(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(num_end);
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) || num.ends_with('.') {
        return Err(bad());
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let mult: f64 = match chars.peek().map(|c| c.to_ascii_lowercase()) {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            chars.next();
            let exp = "kmgtp".find(c).map_or(0, |i| i as i32 + 1);
            1024f64.powi(exp)
        }
        _ => 1.0,
    };
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    Ok((value * mult) as i64)
}

/// Go's `strconv.Atoi`, with its error text.
pub fn go_atoi(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: invalid syntax"))
}

/// Go's `strconv.ParseBool`, with its error text.
pub fn go_parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// `NAME.<index>` or `NAME.<index>.gz`.
pub fn rotated_path(live: &Path, index: u32, gz: bool) -> PathBuf {
    let mut name = live.as_os_str().to_os_string();
    name.push(format!(".{index}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(name)
}

/// One rotated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub index: u32,
    pub path: PathBuf,
    pub gz: bool,
}

/// The rotated files beside `live`, newest (`.1`) first. When a file is there both plain
/// and compressed (for an instant while it is compressed) the plain one is listed.
pub fn list_rotated(live: &Path) -> Vec<Rotated> {
    let (Some(dir), Some(base)) = (live.parent(), live.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: BTreeMap<u32, bool> = BTreeMap::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix(base))
            .and_then(|r| r.strip_prefix('.'))
        else {
            continue;
        };
        let (digits, gz) = match rest.strip_suffix(".gz") {
            Some(d) => (d, true),
            None => (rest, false),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(index) = digits.parse::<u32>() else {
            continue;
        };
        if index == 0 {
            continue;
        }
        let slot = found.entry(index).or_insert(gz);
        *slot = *slot && gz;
    }
    found
        .into_iter()
        .map(|(index, gz)| Rotated {
            index,
            path: rotated_path(live, index, gz),
            gz,
        })
        .collect()
}

/// Every file of the log, oldest first, the live one last (whether or not it exists).
pub fn list_files(live: &Path) -> Vec<Rotated> {
    let mut files = list_rotated(live);
    files.reverse();
    files.push(Rotated {
        index: 0,
        path: live.to_path_buf(),
        gz: false,
    });
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sizes_as_docker_reads_them() {
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("1kb"), Ok(1024));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("1.5m"), Ok(1536 * 1024));
        assert_eq!(parse_size("2 g"), Ok(2 << 30));
        assert_eq!(parse_size("1x"), Err("invalid size: '1x'".into()));
        assert_eq!(parse_size("-1"), Err("invalid size: '-1'".into()));
        assert!(parse_size("").is_err());
        assert!(parse_size("k").is_err());
        assert!(parse_size("1.2.3").is_err());
    }

    #[test]
    fn json_file_defaults_rotate() {
        let s = LogSpec::from_options("json-file", &opts(&[])).unwrap();
        assert_eq!(s.max_size, Some(10 << 20));
        assert_eq!(s.max_file, 5);
        assert!(!s.compress);
        let s = LogSpec::from_options("json-file", &opts(&[("max-size", "-1")])).unwrap();
        assert_eq!(s.max_size, None);
        let s = LogSpec::from_options(
            "json-file",
            &opts(&[("max-size", "1k"), ("max-file", "2"), ("compress", "true")]),
        )
        .unwrap();
        assert_eq!((s.max_size, s.max_file, s.compress), (Some(1024), 2, true));
    }

    #[test]
    fn json_file_errors_in_dockers_words() {
        let err = |kv: &[(&str, &str)]| LogSpec::from_options("json-file", &opts(kv)).unwrap_err();
        assert_eq!(
            err(&[("x", "1")]),
            "unknown log opt 'x' for json-file log driver"
        );
        assert_eq!(err(&[("max-size", "1x")]), "invalid size: '1x'");
        assert_eq!(
            err(&[("max-size", "0")]),
            "max-size must be a positive number"
        );
        assert_eq!(err(&[("max-file", "0")]), "max-file cannot be less than 1");
        assert_eq!(
            err(&[("max-file", "x")]),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            err(&[("compress", "maybe")]),
            "strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        assert_eq!(
            err(&[("compress", "true"), ("max-file", "1")]),
            "compress cannot be true when max-file is less than 2 or max-size is not set"
        );
        assert_eq!(
            err(&[("compress", "true"), ("max-size", "-1")]),
            "compress cannot be true when max-file is less than 2 or max-size is not set"
        );
        assert!(err(&[("tag", "x")]).contains("tag"));
    }

    #[test]
    fn local_driver_options() {
        let s = LogSpec::from_options("local", &opts(&[])).unwrap();
        assert_eq!(
            (s.max_size, s.max_file, s.compress),
            (Some(20 << 20), 5, true)
        );
        let err = |kv: &[(&str, &str)]| LogSpec::from_options("local", &opts(kv)).unwrap_err();
        assert_eq!(
            err(&[("tag", "x")]),
            "unknown log opt 'tag' for log driver local"
        );
        assert_eq!(
            err(&[("max-size", "1x")]),
            "invalid value for max-size: 1x: invalid size: '1x'"
        );
        assert_eq!(
            err(&[("max-file", "1")]),
            "compression cannot be enabled when max file count is 1"
        );
        assert_eq!(
            err(&[("max-file", "-1")]),
            "max file count cannot be less than 0"
        );
        assert_eq!(
            err(&[("compress", "x")]),
            "error reading compress log option: strconv.ParseBool: parsing \"x\": invalid syntax"
        );
        let s = LogSpec::from_options("local", &opts(&[("max-file", "1"), ("compress", "false")]))
            .unwrap();
        assert_eq!(s.max_file, 1);
    }

    #[test]
    fn rotated_names_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("c-json.log");
        assert_eq!(
            rotated_path(&live, 2, true),
            dir.path().join("c-json.log.2.gz")
        );
        for n in [
            "c-json.log",
            "c-json.log.1",
            "c-json.log.2.gz",
            "c-json.log.3.gz",
            "c-json.log.3",
            "c-json.log.x",
            "c-json.log.1.gz.tmp",
            "other.log.1",
        ] {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        let r = list_rotated(&live);
        assert_eq!(
            r.iter().map(|r| (r.index, r.gz)).collect::<Vec<_>>(),
            [(1, false), (2, true), (3, false)]
        );
        let all = list_files(&live);
        assert_eq!(all.first().unwrap().index, 3);
        assert_eq!(all.last().unwrap().path, live);
    }
}
