//! Flag values turned into what the API wants: env files, filters, labels, ports, mounts,
//! memory sizes, CPUs and restart policies.

use std::collections::BTreeMap;

use berth_api::{PortBinding, RestartPolicy};
use serde_json::{json, Map, Value as Json};

use crate::units::ram_in_bytes;

/// A flag error, printed as Docker prints it and exiting 125.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FlagError(pub String);

fn flag_err(value: &str, flag: &str, why: impl std::fmt::Display) -> FlagError {
    FlagError(format!(
        "invalid argument \"{value}\" for \"{flag}\" flag: {why}"
    ))
}

/// `-e KEY=VAL` or bare `-e KEY` (taken from the environment when set).
pub fn env_value(v: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, FlagError> {
    let (k, has_value) = match v.split_once('=') {
        Some((k, _)) => (k, true),
        None => (v, false),
    };
    if k.is_empty() {
        return Err(FlagError(format!(
            "invalid argument \"{v}\" for \"-e, --env\" flag: invalid environment variable: {v}"
        )));
    }
    if has_value {
        return Ok(v.to_string());
    }
    Ok(lookup(k)
        .map(|val| format!("{k}={val}"))
        .unwrap_or_else(|| v.to_string()))
}

/// Docker's env-file format: `#` comments and blank lines skipped, `KEY=VAL` kept as is,
/// bare `KEY` taken from the environment (dropped when unset).
pub fn parse_env_file(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, FlagError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = if n == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (var, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if var.is_empty() {
            return Err(FlagError(format!("no variable name on line '{line}'")));
        }
        if var.contains(char::is_whitespace) {
            return Err(FlagError(format!("variable '{var}' contains whitespaces")));
        }
        match value {
            Some(v) => out.push(format!("{var}={v}")),
            None => {
                if let Some(v) = lookup(var) {
                    out.push(format!("{var}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// `--filter key=value` flags → the `filters` query JSON, `{"key":{"value":true}}`.
pub fn filters_json(filters: &[String]) -> Result<Option<String>, FlagError> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut map: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            return Err(FlagError(format!("invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)")));
        };
        map.entry(k.trim().to_lowercase())
            .or_default()
            .insert(v.trim().to_string(), true);
    }
    Ok(Some(serde_json::to_string(&map).unwrap_or_default()))
}

/// `-l key=value` (a bare key gets an empty value).
pub fn labels(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn port_key(spec: &str) -> String {
    if spec.contains('/') {
        spec.to_string()
    } else {
        format!("{spec}/tcp")
    }
}

/// `-p [ip:][hostPort:]containerPort[/proto]` → (exposed port key, binding).
pub fn parse_publish(spec: &str) -> Result<(String, PortBinding), FlagError> {
    let (addr, proto) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = if addr.starts_with('[') {
        // [::1]:8080:80
        let close = addr.find(']').unwrap_or(0);
        let ip = &addr[1..close];
        let rest: Vec<&str> = addr[close + 1..]
            .trim_start_matches(':')
            .split(':')
            .collect();
        std::iter::once(ip).chain(rest).collect()
    } else {
        addr.split(':').collect()
    };
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [ip, h, c] => (*ip, *h, *c),
        _ => {
            return Err(flag_err(
                spec,
                "-p, --publish",
                format!("invalid proxy address: {spec}"),
            ))
        }
    };
    if container.is_empty() || !container.chars().all(|c| c.is_ascii_digit() || c == '-') {
        return Err(FlagError(format!("invalid containerPort: {container}")));
    }
    Ok((
        format!("{container}/{proto}"),
        PortBinding {
            host_ip: ip.to_string(),
            host_port: host.to_string(),
        },
    ))
}

/// `--mount type=bind,source=/a,target=/b,readonly` → a `Mounts` entry.
pub fn parse_mount(spec: &str) -> Result<Json, FlagError> {
    let mut m = Map::new();
    let mut bind = Map::new();
    let mut volume = Map::new();
    let mut tmpfs = Map::new();
    let mut image = Map::new();
    m.insert("Type".into(), json!("volume"));
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, "true"));
        match k.to_lowercase().as_str() {
            "type" => {
                m.insert("Type".into(), json!(v));
            }
            "source" | "src" => {
                m.insert("Source".into(), json!(v));
            }
            "target" | "destination" | "dst" => {
                m.insert("Target".into(), json!(v));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(v == "true" || v == "1"));
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(v));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(v));
            }
            "volume-nocopy" => {
                volume.insert("NoCopy".into(), json!(v == "true" || v == "1"));
            }
            "volume-opt" => {
                let (ok, ov) = v.split_once('=').ok_or_else(|| FlagError(format!("invalid argument \"{spec}\" for \"--mount\" flag: invalid volume-opt '{v}'")))?;
                let driver = volume.entry("DriverConfig").or_insert_with(|| json!({}));
                let opts = driver.as_object_mut().map(|d| d.entry("Options").or_insert_with(|| json!({}))).and_then(Json::as_object_mut);
                if let Some(o) = opts {
                    o.insert(ok.to_string(), json!(ov));
                }
            }
            "volume-driver" => {
                let driver = volume.entry("DriverConfig").or_insert_with(|| json!({}));
                if let Some(d) = driver.as_object_mut() {
                    d.insert("Name".into(), json!(v));
                }
            }
            "volume-label" => {
                let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
                let labels = volume.entry("Labels").or_insert_with(|| json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert(lk.to_string(), json!(lv));
                }
            }
            "tmpfs-size" => {
                let n = ram_in_bytes(v).map_err(|e| FlagError(format!("invalid value for {k}: {e}")))?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let n = u32::from_str_radix(v, 8).map_err(|_| FlagError(format!("invalid value for {k}: {v}")))?;
                tmpfs.insert("Mode".into(), json!(n));
            }
            "image-subpath" => {
                image.insert("Subpath".into(), json!(v));
            }
            _ => return Err(FlagError(format!("invalid argument \"{spec}\" for \"--mount\" flag: unexpected key '{k}' in '{field}'"))),
        }
    }
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Json::Object(bind));
    }
    if !volume.is_empty() {
        m.insert("VolumeOptions".into(), Json::Object(volume));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Json::Object(tmpfs));
    }
    if !image.is_empty() {
        m.insert("ImageOptions".into(), Json::Object(image));
    }
    Ok(Json::Object(m))
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn restart_policy(flag: &str) -> Result<RestartPolicy, FlagError> {
    let (name, count) = flag.split_once(':').unwrap_or((flag, "0"));
    if flag.contains(':') && name.is_empty() {
        return Err(FlagError(
            "invalid restart policy format: no policy provided before colon".to_string(),
        ));
    }
    let count: i64 = count.parse().map_err(|_| {
        FlagError(
            "invalid restart policy format: maximum retry count must be an integer".to_string(),
        )
    })?;
    Ok(RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: count,
    })
}

/// `--cpus 1.5` → NanoCPUs.
pub fn parse_cpus(v: &str) -> Result<i64, FlagError> {
    let f: f64 = v.parse().map_err(|_| {
        flag_err(
            v,
            "--cpus",
            format!("failed to parse {v} as a rational number"),
        )
    })?;
    let nano = f * 1e9;
    if nano.fract() != 0.0 && (nano - nano.round()).abs() > 1e-6 {
        return Err(flag_err(v, "--cpus", "value is too precise"));
    }
    Ok(nano.round() as i64)
}

/// Memory flags: `-m 64m`.
pub fn parse_memory(v: &str, flag: &str) -> Result<i64, FlagError> {
    ram_in_bytes(v).map_err(|e| flag_err(v, flag, e))
}

/// A flag that may be absent: its parsed value, else the API's zero ("not set").
pub fn optional<T: Default>(
    v: Option<&str>,
    parse: impl Fn(&str) -> Result<T, FlagError>,
) -> Result<T, FlagError> {
    Ok(v.map(parse).transpose()?.unwrap_or_default())
}

/// A memory flag that may be absent: 0 (the API's "not set") then.
pub fn optional_memory(v: Option<&str>, flag: &str) -> Result<i64, FlagError> {
    optional(v, |m| parse_memory(m, flag))
}

/// `--memory-swap` also takes `-1` (unlimited).
pub fn parse_memory_swap(v: &str) -> Result<i64, FlagError> {
    if v == "-1" {
        return Ok(-1);
    }
    parse_memory(v, "--memory-swap")
}

/// Docker's normalization of a repository name as `tag` sends it: `mytag` →
/// `docker.io/library/mytag`, `me/app` → `docker.io/me/app`, `host:5000/app` unchanged.
pub fn normalize_repo(repo: &str) -> String {
    match repo.split_once('/') {
        None => format!("docker.io/library/{repo}"),
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            repo.to_string()
        }
        Some(_) => format!("docker.io/{repo}"),
    }
}

/// Splits `name[:tag]` (a `:` after the last `/` is the tag) and drops any `@digest`.
pub fn split_ref(r: &str) -> (String, Option<String>) {
    let r = r.split('@').next().unwrap_or(r);
    let slash = r.rfind('/').map(|i| i + 1).unwrap_or(0);
    match r[slash..].rfind(':') {
        Some(i) => (
            r[..slash + i].to_string(),
            Some(r[slash + i + 1..].to_string()),
        ),
        None => (r.to_string(), None),
    }
}

/// The familiar `name:tag` Docker prints in "Unable to find image '…' locally".
pub fn familiar_tagged(image: &str) -> String {
    if image.contains('@') {
        return crate::formatters::familiar_image(image);
    }
    let (name, tag) = split_ref(image);
    format!(
        "{}:{}",
        crate::formatters::familiar_image(&name),
        tag.unwrap_or_else(|| "latest".into())
    )
}

/// `ExposedPorts` and `PortBindings` of a create body.
pub type PortMaps = (
    BTreeMap<String, Json>,
    BTreeMap<String, Option<Vec<PortBinding>>>,
);

/// `-p`/`--expose` maps: (ExposedPorts, PortBindings).
pub fn ports(publish: &[String], expose: &[String]) -> Result<PortMaps, FlagError> {
    let mut exposed = BTreeMap::new();
    let mut bindings: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
    for p in publish {
        let (key, binding) = parse_publish(p)?;
        exposed.insert(key.clone(), json!({}));
        bindings
            .entry(key)
            .or_default()
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    for e in expose {
        exposed.insert(port_key(e), json!({}));
    }
    Ok((exposed, bindings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "HOME_X").then(|| "/root".to_string())
    }

    #[test]
    fn restart_policies_parse_as_dockers_cli() {
        let p = restart_policy("on-failure:3").unwrap();
        assert_eq!((p.name.as_str(), p.maximum_retry_count), ("on-failure", 3));
        let p = restart_policy("always").unwrap();
        assert_eq!((p.name.as_str(), p.maximum_retry_count), ("always", 0));
        assert_eq!(
            restart_policy(":3").unwrap_err().0,
            "invalid restart policy format: no policy provided before colon"
        );
        assert_eq!(
            restart_policy("on-failure:x").unwrap_err().0,
            "invalid restart policy format: maximum retry count must be an integer"
        );
    }

    #[test]
    fn env_file_format() {
        let text = "\u{feff}# comment\n\nA=1\n  B=two words \nHOME_X\nUNSET_Y\nC=\n";
        assert_eq!(
            parse_env_file(text, &env).unwrap(),
            vec!["A=1", "B=two words ", "HOME_X=/root", "C="]
        );
        assert!(parse_env_file("BAD KEY=1\n", &env)
            .unwrap_err()
            .0
            .contains("contains whitespaces"));
        assert!(parse_env_file("=1\n", &env).is_err());
    }

    #[test]
    fn env_flags() {
        assert_eq!(env_value("A=1", &env).unwrap(), "A=1");
        assert_eq!(env_value("HOME_X", &env).unwrap(), "HOME_X=/root");
        assert_eq!(env_value("NOPE", &env).unwrap(), "NOPE");
        assert!(env_value("=x", &env).is_err());
    }

    #[test]
    fn filters_to_query_json() {
        let f = vec![
            "status=running".to_string(),
            "label=a=b".into(),
            "status=exited".into(),
        ];
        assert_eq!(
            filters_json(&f).unwrap().unwrap(),
            r#"{"label":{"a=b":true},"status":{"exited":true,"running":true}}"#
        );
        assert_eq!(filters_json(&[]).unwrap(), None);
        assert!(filters_json(&["nope".into()]).is_err());
    }

    #[test]
    fn publish_specs() {
        let binding = |ip: &str, port: &str| PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        };
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            ("80/tcp".to_string(), binding("", "8080"))
        );
        assert_eq!(
            parse_publish("127.0.0.1:53:53/udp").unwrap(),
            ("53/udp".to_string(), binding("127.0.0.1", "53"))
        );
        assert_eq!(parse_publish("80").unwrap().1, binding("", ""));
        assert!(parse_publish("a:b").is_err());
    }

    #[test]
    fn cpus_and_memory() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1_500_000_000);
        assert!(parse_cpus("x").is_err());
        assert_eq!(parse_memory("64m", "-m, --memory").unwrap(), 67_108_864);
        assert_eq!(
            parse_memory("lots", "-m, --memory").unwrap_err().0,
            "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'"
        );
        assert_eq!(parse_memory_swap("-1").unwrap(), -1);
    }

    #[test]
    fn references() {
        assert_eq!(normalize_repo("mytag"), "docker.io/library/mytag");
        assert_eq!(normalize_repo("me/app"), "docker.io/me/app");
        assert_eq!(normalize_repo("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(
            split_ref("localhost:5000/app:v1"),
            ("localhost:5000/app".into(), Some("v1".into()))
        );
        assert_eq!(split_ref("busybox"), ("busybox".into(), None));
        assert_eq!(familiar_tagged("busybox"), "busybox:latest");
        assert_eq!(
            familiar_tagged("docker.io/library/busybox:1.36"),
            "busybox:1.36"
        );
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=bind,source=/a,target=/b,readonly").unwrap();
        assert_eq!(
            m,
            json!({"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true})
        );
        assert!(parse_mount("type=tmpfs,bogus=1").is_err());
        let m = parse_mount("type=volume,src=v,dst=/d,volume-opt=type=tmpfs,volume-opt=o=size=1m,volume-label=a=b,volume-nocopy").unwrap();
        assert_eq!(
            m,
            json!({"Type": "volume", "Source": "v", "Target": "/d", "VolumeOptions": {
                "DriverConfig": {"Options": {"type": "tmpfs", "o": "size=1m"}}, "Labels": {"a": "b"}, "NoCopy": true}})
        );
        let m = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=700").unwrap();
        assert_eq!(
            m,
            json!({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 448}})
        );
        assert!(parse_mount("type=volume,target=/d,volume-opt=x").is_err());
        let m = parse_mount("type=image,source=alpine,target=/i,image-subpath=etc").unwrap();
        assert_eq!(
            m,
            json!({"Type": "image", "Source": "alpine", "Target": "/i", "ImageOptions": {"Subpath": "etc"}})
        );
    }
}
