//! Where the daemon is: `-H`, `DOCKER_HOST` (and `BERTH_HOST`), `--context`,
//! `DOCKER_CONTEXT` and the config's `currentContext`, resolved as docker/cli does, over the
//! Docker CLI's own context store (`<config dir>/contexts/meta/<sha256 of name>/meta.json`),
//! so both CLIs share contexts.

use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use crate::client::DEFAULT_HOST;
use crate::config_file::ConfigFile;

/// The built-in context: the endpoint from `-H` / `DOCKER_HOST` / the default socket.
pub const DEFAULT_CONTEXT: &str = "default";
/// The default context's description, as docker/cli words it.
pub const DEFAULT_DESCRIPTION: &str = "Current DOCKER_HOST based configuration";

/// The daemon endpoint a command talks to, and the context it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub context: String,
    pub host: String,
}

/// One stored context (its `meta.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct ContextMeta {
    pub name: String,
    pub description: String,
    pub host: String,
    pub skip_tls_verify: bool,
}

/// The host from the environment: `DOCKER_HOST`, else Berth's alias `BERTH_HOST`.
pub fn env_host() -> Option<String> {
    ["DOCKER_HOST", "BERTH_HOST"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|h| !h.is_empty()))
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// `<config dir>/contexts/meta`.
pub fn meta_root(config_dir: &Path) -> PathBuf {
    config_dir.join("contexts").join("meta")
}

/// The directory of context `name`: its name's SHA-256 in hex, as docker/cli stores it.
pub fn meta_dir(config_dir: &Path, name: &str) -> PathBuf {
    meta_root(config_dir).join(hex::encode(Sha256::digest(name.as_bytes())))
}

/// The TLS directory docker/cli reports for context `name`.
pub fn tls_dir(config_dir: &Path, name: &str) -> PathBuf {
    config_dir
        .join("contexts")
        .join("tls")
        .join(hex::encode(Sha256::digest(name.as_bytes())))
}

fn parse_meta(v: &Json) -> Option<ContextMeta> {
    let docker = v.pointer("/Endpoints/docker");
    Some(ContextMeta {
        name: v.get("Name")?.as_str()?.to_string(),
        description: v
            .pointer("/Metadata/Description")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string(),
        host: docker
            .and_then(|d| d.get("Host"))
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string(),
        skip_tls_verify: docker
            .and_then(|d| d.get("SkipTLSVerify"))
            .and_then(Json::as_bool)
            .unwrap_or(false),
    })
}

/// Reads context `name`; the error is docker/cli's `context "x": context not found: …`.
pub fn load(config_dir: &Path, name: &str) -> Result<ContextMeta, String> {
    let file = meta_dir(config_dir, name).join("meta.json");
    let text = std::fs::read(&file).map_err(|e| {
        format!(
            "context \"{name}\": context not found: open {}: {}",
            file.display(),
            crate::io_error_text(&e)
        )
    })?;
    serde_json::from_slice::<Json>(&text)
        .ok()
        .as_ref()
        .and_then(parse_meta)
        .ok_or_else(|| {
            format!(
                "context \"{name}\": parsing {}: invalid JSON",
                file.display()
            )
        })
}

/// Every stored context, sorted by name.
pub fn list(config_dir: &Path) -> Vec<ContextMeta> {
    let mut out: Vec<ContextMeta> = std::fs::read_dir(meta_root(config_dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("meta.json")).ok())
        .filter_map(|t| serde_json::from_slice::<Json>(&t).ok())
        .filter_map(|v| parse_meta(&v))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The `meta.json` document docker/cli writes for a context.
pub fn meta_json(m: &ContextMeta) -> Json {
    let metadata = if m.description.is_empty() {
        json!({})
    } else {
        json!({"Description": m.description})
    };
    json!({
        "Name": m.name,
        "Metadata": metadata,
        "Endpoints": {"docker": {"Host": m.host, "SkipTLSVerify": m.skip_tls_verify}},
    })
}

/// Writes context `m` (its directory 0755, `meta.json` 0644, as docker/cli does).
pub fn save(config_dir: &Path, m: &ContextMeta) -> std::io::Result<()> {
    let dir = meta_dir(config_dir, &m.name);
    std::fs::create_dir_all(&dir)?;
    let text = serde_json::to_vec(&meta_json(m)).map_err(std::io::Error::other)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    std::io::Write::write_all(&mut tmp, &text)?;
    tmp.persist(dir.join("meta.json")).map_err(|e| e.error)?;
    Ok(())
}

/// Removes context `name`'s metadata and TLS directories.
pub fn remove(config_dir: &Path, name: &str) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(tls_dir(config_dir, name));
    std::fs::remove_dir_all(meta_dir(config_dir, name))
}

/// The context name in effect, by docker/cli's order: `--context`; `default` when `-H` or
/// `DOCKER_HOST` is given; `DOCKER_CONTEXT`; the config's `currentContext`; `default`.
pub fn current_name(
    host_flag: Option<&str>,
    context_flag: Option<&str>,
    cfg: &ConfigFile,
) -> String {
    if let Some(c) = context_flag.filter(|c| !c.is_empty()) {
        return c.to_string();
    }
    if host_flag.is_some() || env_host().is_some() {
        return DEFAULT_CONTEXT.to_string();
    }
    env_nonempty("DOCKER_CONTEXT")
        .or_else(|| cfg.string_field("currentContext"))
        .unwrap_or_else(|| DEFAULT_CONTEXT.to_string())
}

/// The default context's host: `-H`, else `DOCKER_HOST`/`BERTH_HOST`, else the default socket.
pub fn default_host(host_flag: Option<&str>) -> String {
    host_flag
        .map(str::to_string)
        .or_else(env_host)
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

/// Resolves the endpoint; the error is what docker/cli prints before giving up.
pub fn resolve(
    host_flag: Option<&str>,
    context_flag: Option<&str>,
    config_dir: &Path,
    cfg: &ConfigFile,
) -> Result<Endpoint, String> {
    if host_flag.is_some() && context_flag.is_some_and(|c| !c.is_empty()) {
        return Err("conflicting options: cannot specify both --host and --context".into());
    }
    let context = current_name(host_flag, context_flag, cfg);
    if context == DEFAULT_CONTEXT {
        return Ok(Endpoint {
            context,
            host: default_host(host_flag),
        });
    }
    let meta = load(config_dir, &context)
        .map_err(|e| format!("Failed to initialize: unable to resolve docker endpoint: {e}"))?;
    Ok(Endpoint {
        context,
        host: meta.host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_lives_under_the_sha256_of_the_name() {
        let d = Path::new("/cfg");
        assert_eq!(
            meta_dir(d, "foo"),
            PathBuf::from(
                "/cfg/contexts/meta/2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
            )
        );
    }

    #[test]
    fn round_trip_and_docker_json() {
        let dir = tempfile::tempdir().unwrap();
        let m = ContextMeta {
            name: "foo".into(),
            description: "my foo".into(),
            host: "unix:///tmp/x.sock".into(),
            skip_tls_verify: false,
        };
        save(dir.path(), &m).unwrap();
        let text = std::fs::read_to_string(meta_dir(dir.path(), "foo").join("meta.json")).unwrap();
        // Byte for byte what the Docker CLI 28 writes.
        assert_eq!(
            text,
            r#"{"Name":"foo","Metadata":{"Description":"my foo"},"Endpoints":{"docker":{"Host":"unix:///tmp/x.sock","SkipTLSVerify":false}}}"#
        );
        assert_eq!(load(dir.path(), "foo").unwrap(), m);
        assert_eq!(list(dir.path()), vec![m]);
        let (cfg, _) = ConfigFile::load(dir.path());
        // An explicit --context wins; -H with --context is refused.
        let ep = resolve(None, Some("foo"), dir.path(), &cfg).unwrap();
        assert_eq!(ep.host, "unix:///tmp/x.sock");
        assert!(resolve(Some("unix:///a"), Some("foo"), dir.path(), &cfg).is_err());
        let err = resolve(None, Some("nope"), dir.path(), &cfg).unwrap_err();
        assert!(err.starts_with("Failed to initialize: unable to resolve docker endpoint: context \"nope\": context not found: open "), "{err}");
        assert!(
            err.ends_with("/meta.json: no such file or directory"),
            "{err}"
        );
        remove(dir.path(), "foo").unwrap();
        assert!(list(dir.path()).is_empty());
    }
}
