//! The daemon's configuration file (`--config-file`, Docker's `daemon.json` format) merged
//! with its flags, by dockerd's rules: a key the daemon does not know is an error, and so is
//! a setting given both as a flag and in the file. A missing file is fine only at the
//! default path.
//!
//! Keys read: `registry-mirrors`, `insecure-registries`, `registry-config-dir`, `debug`, `data-root`, `exec-root`,
//! `cgroup-parent`, `bip`, `default-address-pools` (`[{"base": CIDR, "size": N}]`),
//! `hosts` (one `unix://` socket), `group` (the socket's group), `no-new-privileges`,
//! `seccomp-profile`, `userns-remap`, `log-driver`, `log-opts`, `dns`, `dns-search`, `dns-opts`,
//! `host-gateway-ip`, `init`, `default-ulimits`, `cri-socket` (Berth's: the CRI socket, "" off).

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use serde_json::Value;

use crate::config::DaemonArgs;

/// Parses `berth daemon` flags and merges the configuration file into them. `--help` and
/// flag errors print clap's text and exit, as any command does.
pub fn parse_daemon_args(argv: Vec<OsString>) -> anyhow::Result<DaemonArgs> {
    let matches = DaemonArgs::command()
        .try_get_matches_from(argv)
        .unwrap_or_else(|e| e.exit());
    let mut args = DaemonArgs::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let explicit = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let path = args.config_file.clone();
    let text = match std::fs::read(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit("config_file") => None,
        Err(e) => {
            return Err(anyhow!(
                "unable to configure the Docker daemon with file {}: {e}",
                path.display()
            ))
        }
    };
    if let Some(text) = text {
        merge_file(&mut args, &text, &explicit).map_err(|e| {
            anyhow!(
                "unable to configure the Docker daemon with file {}: {e}",
                path.display()
            )
        })?;
    }
    validate_registry_settings(&args)?;
    Ok(args)
}

/// Stores a key's parsed value in its flag's slot.
fn set<T>(slot: &mut T, value: T) -> Result<(), String> {
    *slot = value;
    Ok(())
}

/// One key of the file: the flag it stands for and how to apply its value.
struct Directive {
    key: &'static str,
    arg_id: &'static str,
    apply: fn(&mut DaemonArgs, &Value) -> Result<(), String>,
}

const DIRECTIVES: &[Directive] = &[
    Directive {
        key: "registry-mirrors",
        arg_id: "registry_mirror",
        apply: |a, v| set(&mut a.registry_mirror, strings(v)?),
    },
    Directive {
        key: "insecure-registries",
        arg_id: "insecure_registry",
        apply: |a, v| set(&mut a.insecure_registry, strings(v)?),
    },
    Directive {
        key: "registry-config-dir",
        arg_id: "registry_config_dir",
        apply: |a, v| set(&mut a.registry_config_dir, PathBuf::from(string(v)?)),
    },
    Directive {
        key: "debug",
        arg_id: "debug",
        apply: |a, v| set(&mut a.debug, v.as_bool().ok_or("debug must be a boolean")?),
    },
    Directive {
        key: "data-root",
        arg_id: "root",
        apply: |a, v| set(&mut a.root, PathBuf::from(string(v)?)),
    },
    Directive {
        key: "exec-root",
        arg_id: "exec_root",
        apply: |a, v| set(&mut a.exec_root, PathBuf::from(string(v)?)),
    },
    Directive {
        key: "cgroup-parent",
        arg_id: "cgroup_parent",
        apply: |a, v| set(&mut a.cgroup_parent, string(v)?),
    },
    Directive {
        key: "bip",
        arg_id: "bip",
        apply: |a, v| set(&mut a.bip, string(v)?),
    },
    Directive {
        key: "default-address-pools",
        arg_id: "default_address_pool",
        apply: apply_address_pools,
    },
    Directive {
        key: "no-new-privileges",
        arg_id: "no_new_privileges",
        apply: |a, v| {
            let value = v.as_bool().ok_or("no-new-privileges must be a boolean")?;
            set(&mut a.no_new_privileges, value)
        },
    },
    Directive {
        key: "seccomp-profile",
        arg_id: "seccomp_profile",
        apply: |a, v| set(&mut a.seccomp_profile, Some(string(v)?)),
    },
    Directive {
        key: "userns-remap",
        arg_id: "userns_remap",
        apply: |a, v| set(&mut a.userns_remap, string(v)?),
    },
    Directive {
        key: "group",
        arg_id: "group",
        apply: |a, v| set(&mut a.group, string(v)?),
    },
    Directive {
        key: "hosts",
        arg_id: "host",
        apply: apply_hosts,
    },
    Directive {
        key: "log-driver",
        arg_id: "log_driver",
        apply: |a, v| set(&mut a.log_driver, string(v)?),
    },
    Directive {
        key: "log-opts",
        arg_id: "log_opt",
        apply: apply_log_opts,
    },
    Directive {
        key: "dns",
        arg_id: "dns",
        apply: |a, v| set(&mut a.dns, strings(v)?),
    },
    Directive {
        key: "dns-search",
        arg_id: "dns_search",
        apply: |a, v| set(&mut a.dns_search, strings(v)?),
    },
    Directive {
        key: "dns-opts",
        arg_id: "dns_opt",
        apply: |a, v| set(&mut a.dns_opt, strings(v)?),
    },
    Directive {
        key: "host-gateway-ip",
        arg_id: "host_gateway_ip",
        apply: |a, v| {
            let s = string(v)?;
            a.host_gateway_ip = Some(s.parse().map_err(|_| format!("invalid IP address: {s}"))?);
            Ok(())
        },
    },
    Directive {
        key: "init",
        arg_id: "init",
        apply: |a, v| set(&mut a.init, v.as_bool().ok_or("init must be a boolean")?),
    },
    Directive {
        key: "cri-socket",
        arg_id: "cri_socket",
        apply: |a, v| set(&mut a.cri_socket, string(v)?),
    },
    Directive {
        key: "builder",
        arg_id: "builder_gc_keep_storage",
        apply: apply_builder,
    },
    Directive {
        key: "default-ulimits",
        arg_id: "default_ulimit",
        apply: apply_default_ulimits,
    },
];

fn string(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{v} is not a string"))
}

fn strings(v: &Value) -> Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| format!("{v} is not a list of strings"))?
        .iter()
        .map(string)
        .collect()
}

fn apply_address_pools(args: &mut DaemonArgs, v: &Value) -> Result<(), String> {
    let pools = v.as_array().ok_or("default-address-pools must be a list")?;
    args.default_address_pool = pools
        .iter()
        .map(|p| {
            let base = p
                .get("base")
                .and_then(Value::as_str)
                .ok_or("default-address-pools: base is required")?;
            let size = p
                .get("size")
                .and_then(Value::as_u64)
                .ok_or("default-address-pools: size is required")?;
            format!("base={base},size={size}")
                .parse()
                .map_err(|e: berth_net::NetError| e.to_string())
        })
        .collect::<Result<_, String>>()?;
    Ok(())
}

fn apply_log_opts(args: &mut DaemonArgs, v: &Value) -> Result<(), String> {
    let obj = v
        .as_object()
        .ok_or("log-opts must be an object of strings")?;
    args.log_opt = obj
        .iter()
        .map(|(k, v)| Ok((k.clone(), string(v)?)))
        .collect::<Result<_, String>>()?;
    Ok(())
}

/// `{"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}}` (dockerd's format).
fn apply_default_ulimits(args: &mut DaemonArgs, v: &Value) -> Result<(), String> {
    let obj = v.as_object().ok_or("default-ulimits must be an object")?;
    args.default_ulimit = obj
        .iter()
        .map(|(name, u)| {
            let mut u: berth_api::Ulimit =
                serde_json::from_value(u.clone()).map_err(|e| format!("{name}: {e}"))?;
            if u.name.is_empty() {
                u.name = name.clone();
            }
            crate::containers::daemon_defaults::parse_ulimit(&format!(
                "{}={}:{}",
                u.name, u.soft, u.hard
            ))
        })
        .collect::<Result<_, String>>()?;
    Ok(())
}

/// Docker's `"builder": {"gc": {"enabled": …, "defaultKeepStorage": "10GB"}}`; what
/// Berth does not apply (GC `policy` lists, `entitlements`) is refused.
fn apply_builder(args: &mut DaemonArgs, v: &Value) -> Result<(), String> {
    let obj = v.as_object().ok_or("builder must be an object")?;
    if let Some(k) = obj.keys().find(|k| k.as_str() != "gc") {
        return Err(format!("Berth does not support builder.{k}"));
    }
    let Some(gc) = obj.get("gc") else {
        return Ok(());
    };
    let gc = gc.as_object().ok_or("builder.gc must be an object")?;
    for (k, v) in gc {
        match k.as_str() {
            "enabled" => {
                args.builder_gc_enabled =
                    v.as_bool().ok_or("builder.gc.enabled must be a boolean")?
            }
            "defaultKeepStorage" => {
                let s = string(v)?;
                crate::builds::gc::parse_keep_storage(&s)?;
                args.builder_gc_keep_storage = Some(s);
            }
            other => return Err(format!("Berth does not support builder.gc.{other}")),
        }
    }
    Ok(())
}

fn apply_hosts(args: &mut DaemonArgs, v: &Value) -> Result<(), String> {
    match strings(v)?.as_slice() {
        [one] => set(&mut args.host, one.clone()),
        _ => Err("hosts: exactly one unix:// socket is supported".into()),
    }
}

/// How a flag's value reads in dockerd's conflict message.
fn flag_value(args: &DaemonArgs, arg_id: &str) -> String {
    let list = |v: &[String]| format!("[{}]", v.join(" "));
    match arg_id {
        "registry_mirror" => list(&args.registry_mirror),
        "insecure_registry" => list(&args.insecure_registry),
        "registry_config_dir" => args.registry_config_dir.display().to_string(),
        "debug" => args.debug.to_string(),
        "root" => args.root.display().to_string(),
        "exec_root" => args.exec_root.display().to_string(),
        "cgroup_parent" => args.cgroup_parent.clone(),
        "bip" => args.bip.clone(),
        "host" => args.host.clone(),
        "cri_socket" => args.cri_socket.clone(),
        "no_new_privileges" => args.no_new_privileges.to_string(),
        "seccomp_profile" => args.seccomp_profile.clone().unwrap_or_default(),
        "group" => args.group.clone(),
        "userns_remap" => args.userns_remap.clone(),
        "log_driver" => args.log_driver.clone(),
        "dns" => list(&args.dns),
        "dns_search" => list(&args.dns_search),
        "dns_opt" => list(&args.dns_opt),
        "host_gateway_ip" => args
            .host_gateway_ip
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        "init" => args.init.to_string(),
        "builder_gc_keep_storage" => args.builder_gc_keep_storage.clone().unwrap_or_default(),
        "log_opt" => format!(
            "map[{}]",
            args.log_opt
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        _ => String::new(),
    }
}

fn file_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(file_value).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => format!(
            "map[{}]",
            map.iter()
                .map(|(k, v)| format!("{k}:{}", file_value(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// Applies the file's settings to `args`; `explicit(arg_id)` tells whether a flag was given.
pub(crate) fn merge_file(
    args: &mut DaemonArgs,
    text: &[u8],
    explicit: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    let text = String::from_utf8_lossy(text);
    if text.trim().is_empty() {
        return Ok(());
    }
    let obj: serde_json::Map<String, Value> =
        serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let unknown: Vec<&str> = obj
        .keys()
        .filter(|k| !DIRECTIVES.iter().any(|d| d.key == k.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "the following directives don't match any configuration option: {}",
            unknown.join(", ")
        ));
    }
    let conflicts: Vec<String> = DIRECTIVES
        .iter()
        .filter(|d| explicit(d.arg_id))
        .filter_map(|d| {
            obj.get(d.key).map(|v| {
                format!(
                    "{}: (from flag: {}, from file: {})",
                    d.key,
                    flag_value(args, d.arg_id),
                    file_value(v)
                )
            })
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(format!(
            "the following directives are specified both as a flag and in the configuration file: {}",
            conflicts.join(", ")
        ));
    }
    for d in DIRECTIVES {
        if let Some(v) = obj.get(d.key) {
            (d.apply)(args, v).map_err(|e| format!("{}: {e}", d.key))?;
        }
    }
    Ok(())
}

/// dockerd's checks of `--registry-mirror` and `--insecure-registry` values.
fn validate_registry_settings(args: &DaemonArgs) -> anyhow::Result<()> {
    for mirror in &args.registry_mirror {
        validate_mirror(mirror)?;
    }
    for reg in &args.insecure_registry {
        if reg.contains("://") {
            anyhow::bail!("insecure registry {reg} should not contain '://'");
        }
    }
    Ok(())
}

/// moby `registry.ValidateMirror`: an http(s) URL with a host and nothing after it.
pub fn validate_mirror(mirror: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(mirror)
        .with_context(|| format!("invalid mirror: {mirror:?} is not a valid URI"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        anyhow::bail!(
            "invalid mirror: unsupported scheme {:?} in {:?}",
            url.scheme(),
            mirror
        );
    }
    if url.host_str().unwrap_or("").is_empty() {
        anyhow::bail!("invalid mirror: no host in {mirror:?}");
    }
    if (url.path() != "/" && !url.path().is_empty())
        || url.query().is_some()
        || url.fragment().is_some()
    {
        anyhow::bail!("invalid mirror: path, query, or fragment at end of the URI {mirror:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(flags: &[&str]) -> DaemonArgs {
        DaemonArgs::parse_from(std::iter::once("berth daemon").chain(flags.iter().copied()))
    }

    #[test]
    fn the_cri_socket_comes_from_the_flag_or_the_file_and_empty_turns_it_off() {
        let a = args(&[]);
        assert_eq!(
            a.cri_socket_path().as_deref(),
            Some(std::path::Path::new("/run/berth/cri.sock"))
        );
        let a = args(&["--cri-socket", "unix:///tmp/k.sock"]);
        assert_eq!(
            a.cri_socket_path().as_deref(),
            Some(std::path::Path::new("/tmp/k.sock"))
        );
        assert_eq!(args(&["--cri-socket", ""]).cri_socket_path(), None);
        let mut a = args(&[]);
        merge_file(&mut a, br#"{"cri-socket": ""}"#, &|_| false).unwrap();
        assert_eq!(a.cri_socket_path(), None);
        let mut a = args(&["--cri-socket", "/tmp/a.sock"]);
        let err = merge_file(&mut a, br#"{"cri-socket": "/tmp/b.sock"}"#, &|id| {
            id == "cri_socket"
        })
        .unwrap_err();
        assert!(err.to_string().contains("cri-socket"), "{err}");
    }

    #[test]
    fn file_settings_apply() {
        let mut a = args(&[]);
        let json = br#"{"registry-mirrors": ["http://127.0.0.1:5000"], "insecure-registries": ["10.0.0.0/8", "reg:5000"],
            "debug": true, "data-root": "/tmp/x", "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}]}"#;
        merge_file(&mut a, json, &|_| false).unwrap();
        assert_eq!(a.registry_mirror, vec!["http://127.0.0.1:5000"]);
        assert_eq!(a.insecure_registry, vec!["10.0.0.0/8", "reg:5000"]);
        assert!(a.debug);
        assert_eq!(a.root, PathBuf::from("/tmp/x"));
        assert_eq!(a.default_address_pool.len(), 1);
    }

    #[test]
    fn the_socket_group_comes_from_the_file_or_the_flag_not_both() {
        assert_eq!(args(&[]).group, "docker");
        assert_eq!(args(&["-G", "staff"]).group, "staff");
        let mut a = args(&[]);
        merge_file(&mut a, br#"{"group": "nogroup"}"#, &|_| false).unwrap();
        assert_eq!(a.group, "nogroup");
        let mut a = args(&["--group", "staff"]);
        let e = merge_file(&mut a, br#"{"group": "nogroup"}"#, &|id| id == "group").unwrap_err();
        assert!(
            e.contains("group: (from flag: staff, from file: nogroup)"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_and_conflicts_are_refused_in_dockerds_words() {
        let mut a = args(&[]);
        let e = merge_file(&mut a, br#"{"foo": 1, "debug": true}"#, &|_| false).unwrap_err();
        assert_eq!(
            e,
            "the following directives don't match any configuration option: foo"
        );
        let mut a = args(&["--registry-mirror", "http://a:1"]);
        let e = merge_file(&mut a, br#"{"registry-mirrors": ["http://b:2"]}"#, &|id| {
            id == "registry_mirror"
        })
        .unwrap_err();
        assert_eq!(
            e,
            "the following directives are specified both as a flag and in the configuration file: registry-mirrors: (from flag: [http://a:1], from file: [http://b:2])"
        );
        assert!(merge_file(&mut a, b"{not json", &|_| false).is_err());
        assert!(merge_file(&mut a, br#"{"debug": "yes"}"#, &|_| false).is_err());
    }

    #[test]
    fn log_driver_and_opts_come_from_the_file_or_the_flags() {
        let mut a = args(&[]);
        assert_eq!(a.log_driver, "json-file");
        merge_file(
            &mut a,
            br#"{"log-driver": "local", "log-opts": {"max-size": "1m", "max-file": "3"}}"#,
            &|_| false,
        )
        .unwrap();
        assert_eq!(a.log_driver, "local");
        let opts: std::collections::BTreeMap<_, _> = a.log_opt.iter().cloned().collect();
        assert_eq!(opts.len(), 2);
        assert_eq!(opts["max-size"], "1m");
        let a = args(&["--log-opt", "max-size=2k", "--log-opt", "compress=true"]);
        assert_eq!(a.log_opt[0], ("max-size".into(), "2k".into()));
        let mut a = args(&["--log-opt", "max-size=2k"]);
        let e = merge_file(&mut a, br#"{"log-opts": {"max-size": "1m"}}"#, &|id| {
            id == "log_opt"
        })
        .unwrap_err();
        assert!(
            e.ends_with("log-opts: (from flag: map[max-size:2k], from file: map[max-size:1m])"),
            "{e}"
        );
        let mut a = args(&[]);
        assert!(merge_file(&mut a, br#"{"log-opts": {"max-file": 3}}"#, &|_| false).is_err());
    }

    #[test]
    fn container_defaults_from_the_file() {
        let mut a = args(&[]);
        merge_file(
            &mut a,
            br#"{"dns": ["10.1.2.3"], "dns-search": ["corp.example"], "dns-opts": ["ndots:2"],
                "host-gateway-ip": "10.9.9.9", "init": true,
                "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}}}"#,
            &|_| false,
        )
        .unwrap();
        assert_eq!(a.dns, ["10.1.2.3"]);
        assert_eq!(a.dns_search, ["corp.example"]);
        assert_eq!(a.dns_opt, ["ndots:2"]);
        assert_eq!(a.host_gateway_ip, Some("10.9.9.9".parse().unwrap()));
        assert!(a.init);
        assert_eq!(
            (a.default_ulimit[0].soft, a.default_ulimit[0].hard),
            (1024, 2048)
        );
        let mut a = args(&["--dns", "1.1.1.1"]);
        let e = merge_file(&mut a, br#"{"dns": ["8.8.8.8"]}"#, &|id| id == "dns").unwrap_err();
        assert!(
            e.ends_with("dns: (from flag: [1.1.1.1], from file: [8.8.8.8])"),
            "{e}"
        );
        let mut a = args(&[]);
        let e = merge_file(
            &mut a,
            br#"{"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 1, "Soft": 2}}}"#,
            &|_| false,
        )
        .unwrap_err();
        assert!(
            e.contains("soft limit must be less than or equal to hard limit"),
            "{e}"
        );
        let a = args(&[
            "--default-ulimit",
            "nproc=10:20",
            "--init",
            "--host-gateway-ip",
            "10.0.0.1",
        ]);
        assert_eq!(a.default_ulimit[0].name, "nproc");
        assert!(a.init);
    }

    #[test]
    fn mirrors_are_validated_like_dockerd() {
        assert!(validate_mirror("http://127.0.0.1:5000").is_ok());
        assert!(validate_mirror("https://mirror.example/").is_ok());
        assert_eq!(
            validate_mirror("ftp://x").unwrap_err().to_string(),
            "invalid mirror: unsupported scheme \"ftp\" in \"ftp://x\""
        );
        assert_eq!(
            validate_mirror("http://x/path").unwrap_err().to_string(),
            "invalid mirror: path, query, or fragment at end of the URI \"http://x/path\""
        );
    }

    #[test]
    fn missing_default_file_is_fine_but_a_named_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let e = parse_daemon_args(vec![
            "berth daemon".into(),
            "--config-file".into(),
            missing.clone().into(),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(&format!(
                "unable to configure the Docker daemon with file {}",
                missing.display()
            )),
            "{e}"
        );
        let file = dir.path().join("daemon.json");
        std::fs::write(&file, r#"{"insecure-registries": ["http://x"]}"#).unwrap();
        let e = parse_daemon_args(vec![
            "berth daemon".into(),
            "--config-file".into(),
            file.into(),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "insecure registry http://x should not contain '://'"
        );
    }
}
