//! A container's mounts: from `-v`/`Binds`, `--mount`/`Mounts`, `--tmpfs`/`Tmpfs`,
//! `--volumes-from` and the image's `VOLUME`s to the mount points stored with the
//! container, the runtime's [`berth_runtime::MountSpec`]s and inspect's `Mounts` (moby
//! `daemon/volumes.go registerMountPoints`, `volume/mounts/linux_parser.go`).
//!
//! Mount points are resolved once, at create: named volumes that do not exist yet are
//! created, anonymous ones get a 64-hex name, a missing bind source of `-v` is created
//! as a directory (a missing `--mount type=bind` source is an error), and an empty
//! volume over an image path with content is filled with it (copy-up, unless
//! `nocopy`). Later sources override earlier ones at the same destination: image
//! volumes, then `--volumes-from`, then `-v` and `--mount` (which must not repeat a
//! destination among themselves: "Duplicate mount point").

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// One mount of a container, as stored in its record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MountPoint {
    /// `volume`, `bind` or `tmpfs`.
    pub kind: String,
    /// The volume's name (`volume` only).
    pub name: String,
    /// The host path of a bind.
    pub source: String,
    pub destination: String,
    /// `local` for volumes.
    pub driver: String,
    /// The mode as Docker shows it (`z`, `ro`, `ro,Z`, …).
    pub mode: String,
    pub rw: bool,
    /// Bind propagation (`rprivate` by default); empty for volumes and tmpfs.
    pub propagation: String,
    /// Fill an empty volume with the image's content (off with `nocopy`).
    pub copy_data: bool,
    /// The volume was created for this container (removed by `rm -v` and `--rm`).
    pub anonymous: bool,
    /// tmpfs options (`size=…`, `mode=…`) for `--mount type=tmpfs`.
    pub tmpfs_options: Vec<String>,
    /// `image` mounts: the directory of the image mounted (`ImageOptions.Subpath`),
    /// relative to its root; empty: the whole image.
    pub subpath: String,
}

/// A parsed mount plus what creating its volume needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub point: MountPoint,
    pub volume_options: BTreeMap<String, String>,
    pub volume_labels: BTreeMap<String, String>,
    pub volume_driver: String,
    /// A `-v` bind whose source may be created when missing.
    pub create_source: bool,
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// Whether `mode` is a valid `-v` mode list (moby `ValidMountMode`).
pub fn valid_mode(mode: &str) -> bool {
    let (mut rw, mut label, mut prop, mut copy) = (0, 0, 0, 0);
    for m in mode.split(',') {
        match m {
            "rw" | "ro" => rw += 1,
            "z" | "Z" => label += 1,
            "nocopy" => copy += 1,
            p if PROPAGATIONS.contains(&p) => prop += 1,
            _ => return false,
        }
    }
    rw <= 1 && label <= 1 && prop <= 1 && copy <= 1
}

pub(super) fn mount_error(kind: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("invalid mount config for type \"{kind}\": {why}"))
}

pub(super) fn check_target(kind: &str, target: &str) -> ApiResult<()> {
    if target.is_empty() {
        return Err(mount_error(kind, "field Target must not be empty"));
    }
    if !target.starts_with('/') {
        return Err(mount_error(
            kind,
            format!("invalid mount path: '{target}' mount path must be absolute"),
        ));
    }
    if Path::new(target).components().count() == 1 {
        return Err(ApiError::invalid(
            "invalid specification: destination can't be '/'",
        ));
    }
    Ok(())
}

/// Normalizes a container path: no trailing `/`, no `.` components.
pub(super) fn clean(path: &str) -> String {
    let mut out = String::new();
    for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() {
        "/".into()
    } else {
        out
    }
}

/// Parses one `Binds` entry (`-v`): `/dst`, `name:/dst[:mode]`, `/host:/dst[:mode]`.
pub fn parse_bind(spec: &str) -> ApiResult<Parsed> {
    let invalid = || ApiError::invalid(format!("invalid volume specification: '{spec}'"));
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(invalid());
    }
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [d, m] if valid_mode(m) => ("", *d, *m),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid()),
    };
    if !mode.is_empty() && !valid_mode(mode) {
        return Err(ApiError::invalid(format!("invalid mode: {mode}")));
    }
    let is_bind = src.starts_with('/');
    let kind = if is_bind { "bind" } else { "volume" };
    check_target(kind, dst).map_err(|e| {
        if e.message.starts_with("invalid mount config") {
            ApiError::invalid(format!(
                "invalid volume specification: '{spec}': {}",
                e.message
            ))
        } else {
            e
        }
    })?;
    if !is_bind && !src.is_empty() {
        crate::volumes::validate_name(src)?;
    }
    let modes: Vec<&str> = mode.split(',').filter(|m| !m.is_empty()).collect();
    let rw = !modes.contains(&"ro");
    let propagation = modes
        .iter()
        .find(|m| PROPAGATIONS.contains(m))
        .map(|s| s.to_string());
    if !is_bind && propagation.is_some() {
        return Err(ApiError::invalid(format!(
            "invalid volume specification: '{spec}': propagation is only valid for bind mounts"
        )));
    }
    if is_bind && modes.contains(&"nocopy") {
        return Err(ApiError::invalid(format!(
            "invalid volume specification: '{spec}': nocopy is only valid for volumes"
        )));
    }
    let point = MountPoint {
        kind: kind.into(),
        name: if is_bind {
            String::new()
        } else {
            src.to_string()
        },
        source: if is_bind { clean(src) } else { String::new() },
        destination: clean(dst),
        driver: if is_bind {
            String::new()
        } else {
            "local".into()
        },
        mode: if is_bind || !mode.is_empty() {
            mode.to_string()
        } else {
            "z".into()
        },
        rw,
        propagation: if is_bind {
            propagation.unwrap_or_else(|| "rprivate".into())
        } else {
            String::new()
        },
        copy_data: !is_bind && !modes.contains(&"nocopy"),
        anonymous: !is_bind && src.is_empty(),
        tmpfs_options: Vec::new(),
        ..Default::default()
    };
    Ok(Parsed {
        point,
        create_source: is_bind,
        ..Default::default()
    })
}

pub(super) fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn is_set(v: Option<&Value>) -> bool {
    v.is_some_and(|v| !v.is_null())
}

/// Parses one `HostConfig.Mounts` entry (`--mount`), with Docker's validation.
pub fn parse_api_mount(m: &Value) -> ApiResult<Parsed> {
    let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let kind = s("Type");
    let source = s("Source");
    let target = s("Target");
    let readonly = m.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false);
    match kind.as_str() {
        "bind" | "volume" | "tmpfs" | "image" => {}
        other => return Err(mount_error(other, "mount type unknown")),
    }
    for (field, owner) in [
        ("BindOptions", "bind"),
        ("VolumeOptions", "volume"),
        ("TmpfsOptions", "tmpfs"),
        ("ImageOptions", "image"),
    ] {
        if owner != kind && is_set(m.get(field)) {
            return Err(mount_error(
                &kind,
                format!("field {field} must not be specified"),
            ));
        }
    }
    check_target(&kind, &target)?;
    let mut parsed = Parsed::default();
    let mut point = MountPoint {
        kind: kind.clone(),
        destination: clean(&target),
        rw: !readonly,
        mode: if readonly { "ro".into() } else { String::new() },
        ..Default::default()
    };
    match kind.as_str() {
        "bind" => {
            if source.is_empty() {
                return Err(mount_error("bind", "field Source must not be empty"));
            }
            if !source.starts_with('/') {
                return Err(mount_error(
                    "bind",
                    format!("invalid mount path: '{source}' mount path must be absolute"),
                ));
            }
            if !Path::new(&source).exists() {
                return Err(mount_error(
                    "bind",
                    format!("bind source path does not exist: {source}"),
                ));
            }
            let prop = m
                .pointer("/BindOptions/Propagation")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !prop.is_empty() && !PROPAGATIONS.contains(&prop) {
                return Err(mount_error(
                    "bind",
                    format!("invalid propagation mode: {prop}"),
                ));
            }
            point.source = clean(&source);
            point.propagation = if prop.is_empty() {
                "rprivate".into()
            } else {
                prop.into()
            };
        }
        "volume" => {
            if !source.is_empty() {
                crate::volumes::validate_name(&source)?;
            }
            point.name = source.clone();
            point.driver = "local".into();
            point.mode = if readonly { "ro".into() } else { "z".into() };
            point.anonymous = source.is_empty();
            point.copy_data = !m
                .pointer("/VolumeOptions/NoCopy")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            parsed.volume_labels = str_map(m.pointer("/VolumeOptions/Labels"));
            parsed.volume_options = str_map(m.pointer("/VolumeOptions/DriverConfig/Options"));
            parsed.volume_driver = m
                .pointer("/VolumeOptions/DriverConfig/Name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
        }
        "image" => {
            // Docker 28's image mount: the image's content, always read-only.
            if source.is_empty() {
                return Err(mount_error("image", "field Source must not be empty"));
            }
            let sub = m
                .pointer("/ImageOptions/Subpath")
                .and_then(Value::as_str)
                .unwrap_or("");
            let local = Path::new(sub).components().all(|c| {
                matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            });
            if !local {
                return Err(mount_error(
                    "image",
                    format!("subpath must be a relative path within the image: {sub}"),
                ));
            }
            point.source = source.clone();
            point.subpath = sub.trim_end_matches('/').to_string();
            point.rw = false;
            point.mode = "ro".into();
        }
        _ => {
            if !source.is_empty() {
                return Err(mount_error("tmpfs", "field Source must not be specified"));
            }
            if let Some(size) = m.pointer("/TmpfsOptions/SizeBytes").and_then(Value::as_i64) {
                if size < 0 {
                    return Err(mount_error("tmpfs", format!("invalid tmpfs size: {size}")));
                }
                if size > 0 {
                    point.tmpfs_options.push(format!("size={size}"));
                }
            }
            if let Some(mode) = m.pointer("/TmpfsOptions/Mode").and_then(Value::as_u64) {
                point
                    .tmpfs_options
                    .push(format!("mode={:o}", mode & 0o7777));
            }
        }
    }
    parsed.point = point;
    Ok(parsed)
}

/// `--volumes-from container[:ro|rw]` → (container, rw override).
pub fn parse_volumes_from(spec: &str) -> ApiResult<(String, Option<bool>)> {
    match spec.split_once(':') {
        None => Ok((spec.to_string(), None)),
        Some((c, "rw")) => Ok((c.to_string(), Some(true))),
        Some((c, "ro")) => Ok((c.to_string(), Some(false))),
        Some((c, m)) if !c.is_empty() && valid_mode(m) => {
            Ok((c.to_string(), Some(!m.split(',').any(|x| x == "ro"))))
        }
        Some(_) => Err(ApiError::invalid(format!(
            "invalid mode for volumes-from: {spec}"
        ))),
    }
}

/// Tmpfs options as the runtime mounts them: Docker's `noexec,nosuid,nodev` defaults
/// followed by the user's (a later option wins).
pub fn tmpfs_options(user: &str) -> Vec<String> {
    let mut opts: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    opts.extend(user.split(',').filter(|s| !s.is_empty()).map(String::from));
    opts
}

/// The inspect/list `Mounts` entry of a mount point (moby `types.MountPoint`).
pub fn api_mount(p: &MountPoint, volumes_dir: &Path) -> Value {
    let source = if p.kind == "volume" {
        volumes_dir
            .join(&p.name)
            .join("_data")
            .display()
            .to_string()
    } else {
        p.source.clone()
    };
    let mut v = serde_json::json!({ "Type": p.kind });
    if p.kind == "volume" || p.kind == "image" {
        v["Name"] = Value::String(p.name.clone());
    }
    v["Source"] = Value::String(source);
    v["Destination"] = Value::String(p.destination.clone());
    if p.kind == "volume" {
        v["Driver"] = Value::String(p.driver.clone());
    }
    v["Mode"] = Value::String(p.mode.clone());
    v["RW"] = Value::Bool(p.rw);
    v["Propagation"] = Value::String(p.propagation.clone());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bind_forms() {
        let p = parse_bind("/data").unwrap().point;
        assert_eq!(
            (
                p.kind.as_str(),
                p.name.as_str(),
                p.destination.as_str(),
                p.anonymous
            ),
            ("volume", "", "/data", true)
        );
        let p = parse_bind("vol:/data:ro").unwrap().point;
        assert_eq!(
            (p.kind.as_str(), p.name.as_str(), p.rw, p.mode.as_str()),
            ("volume", "vol", false, "ro")
        );
        let p = parse_bind("vol:/data").unwrap().point;
        assert_eq!((p.mode.as_str(), p.rw, p.copy_data), ("z", true, true));
        let p = parse_bind("vol:/data:nocopy").unwrap().point;
        assert!(!p.copy_data);
        let p = parse_bind("/host/dir/:/c/d/:rw,z").unwrap();
        assert!(p.create_source);
        let p = p.point;
        assert_eq!(
            (
                p.kind.as_str(),
                p.source.as_str(),
                p.destination.as_str(),
                p.rw
            ),
            ("bind", "/host/dir", "/c/d", true)
        );
        assert_eq!(p.propagation, "rprivate");
        let p = parse_bind("/h:/c:ro,rshared").unwrap().point;
        assert_eq!((p.rw, p.propagation.as_str()), (false, "rshared"));
        // `/dst:ro`: an anonymous volume with a mode.
        let p = parse_bind("/data:ro").unwrap().point;
        assert_eq!(
            (p.anonymous, p.rw, p.destination.as_str()),
            (true, false, "/data")
        );
    }

    #[test]
    fn bind_errors_in_dockers_words() {
        let err = |s: &str| parse_bind(s).unwrap_err().message;
        assert_eq!(err("a:b:c:d"), "invalid volume specification: 'a:b:c:d'");
        assert_eq!(err(":/x"), "invalid volume specification: ':/x'");
        assert_eq!(err("/h:/c:xyz"), "invalid mode: xyz");
        assert_eq!(err("/h:/c:ro,rw"), "invalid mode: ro,rw");
        assert_eq!(
            err("vol:rel"),
            "invalid volume specification: 'vol:rel': invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert!(err("a/b:/c").contains("includes invalid characters for a local volume name"));
        assert_eq!(
            err("/h:/"),
            "invalid specification: destination can't be '/'"
        );
    }

    #[test]
    fn api_mounts_are_validated() {
        let err = |v: Value| parse_api_mount(&v).unwrap_err().message;
        assert_eq!(
            err(json!({"Type":"bind","Source":"/nonexistent/x","Target":"/x"})),
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/x"
        );
        assert_eq!(
            err(json!({"Type":"bind","Target":"/x"})),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(
            err(json!({"Type":"volume","Source":"v"})),
            "invalid mount config for type \"volume\": field Target must not be empty"
        );
        assert_eq!(
            err(json!({"Type":"tmpfs","Source":"x","Target":"/t"})),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        assert_eq!(
            err(json!({"Type":"foo","Target":"/t"})),
            "invalid mount config for type \"foo\": mount type unknown"
        );
        assert_eq!(
            err(
                json!({"Type":"bind","Source":"/tmp","Target":"/t","VolumeOptions":{"NoCopy":true}})
            ),
            "invalid mount config for type \"bind\": field VolumeOptions must not be specified"
        );
        // image mounts: always read-only; the subpath stays inside the image
        let p = parse_api_mount(&json!({"Type":"image","Source":"alpine","Target":"/i",
            "ImageOptions":{"Subpath":"usr/lib/"}}))
        .unwrap();
        assert_eq!(
            (p.point.source.as_str(), p.point.subpath.as_str()),
            ("alpine", "usr/lib")
        );
        assert!(!p.point.rw);
        for sub in ["/etc", "../x", "a/../../b"] {
            assert!(err(json!({"Type":"image","Source":"a","Target":"/i",
                "ImageOptions":{"Subpath":sub}}))
            .contains("subpath must be a relative path within the image"));
        }
        assert!(
            err(json!({"Type":"bind","Source":"/tmp","Target":"/t","ImageOptions":{}}))
                .contains("field ImageOptions must not be specified")
        );
        let p = parse_api_mount(&json!({"Type":"volume","Source":"v","Target":"/d","ReadOnly":true,
            "VolumeOptions":{"NoCopy":true,"DriverConfig":{"Options":{"type":"tmpfs","device":"tmpfs"}}}})).unwrap();
        assert_eq!(
            (p.point.rw, p.point.copy_data, p.point.mode.as_str()),
            (false, false, "ro")
        );
        assert_eq!(
            p.volume_options.get("type").map(String::as_str),
            Some("tmpfs")
        );
        let p = parse_api_mount(
            &json!({"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1048576,"Mode":448}}),
        )
        .unwrap();
        assert_eq!(p.point.tmpfs_options, vec!["size=1048576", "mode=700"]);
        let p = parse_api_mount(&json!({"Type":"bind","Source":"/tmp","Target":"/t","BindOptions":{"Propagation":"rslave"}})).unwrap();
        assert_eq!(p.point.propagation, "rslave");
    }

    #[test]
    fn volumes_from_modes() {
        assert_eq!(parse_volumes_from("c1").unwrap(), ("c1".into(), None));
        assert_eq!(
            parse_volumes_from("c1:ro").unwrap(),
            ("c1".into(), Some(false))
        );
        assert!(parse_volumes_from("c1:bogus").is_err());
    }

    #[test]
    fn inspect_shape_matches_docker() {
        let p = parse_bind("vol:/data").unwrap().point;
        let v = api_mount(&p, Path::new("/var/lib/berth/volumes"));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"Type":"volume","Name":"vol","Source":"/var/lib/berth/volumes/vol/_data","Destination":"/data","Driver":"local","Mode":"z","RW":true,"Propagation":""}"#
        );
        let p = parse_bind("/h:/c:ro").unwrap().point;
        assert_eq!(
            serde_json::to_string(&api_mount(&p, Path::new("/v"))).unwrap(),
            r#"{"Type":"bind","Source":"/h","Destination":"/c","Mode":"ro","RW":false,"Propagation":"rprivate"}"#
        );
    }
}
