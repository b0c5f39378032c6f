//! Registry mirrors for any registry host, in containerd's `hosts.toml` layout:
//! `<dir>/<host[:port]>/hosts.toml` (else `<dir>/_default/hosts.toml`), read at every pull,
//! so a mirror written while the daemon runs is used by the next pull.
//!
//! ```toml
//! server = "https://registry.k8s.io"          # the upstream, tried last (optional)
//!
//! [host."http://127.0.0.1:5000"]              # tried first, in file order
//!   capabilities = ["pull", "resolve"]        # default: pull, resolve, push
//!   skip_verify = true                        # https without certificate checks
//! ```
//!
//! A host with `resolve` and `pull` serves pulls by tag; one with `pull` only serves pulls
//! by digest; one with `push` takes pushes (else the upstream does). Hosts are mirrors:
//! they get no credentials, and one that cannot be reached is skipped (its "not found" is
//! the answer, as for daemon.json's `registry-mirrors`). Keys Berth does not apply (`ca`,
//! `client`, `header`, `override_path = true`, `dial_timeout`, unknown keys) are refused
//! with the file's name, never ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::RegistryError;

/// The directory holding `_default` when a host has no directory of its own.
pub const DEFAULT_HOST_DIR: &str = "_default";

/// What a request to a host is for (containerd's host capabilities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Resolving a tag to a manifest (and then fetching it): needs `resolve` and `pull`.
    Resolve,
    /// Fetching by digest: needs `pull`.
    Pull,
    /// Pushing: needs `push`.
    Push,
}

/// One `[host."URL"]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorHost {
    /// The URL as written (`http://127.0.0.1:5000`, `https://mirror.example/base`).
    pub url: String,
    pub pull: bool,
    pub resolve: bool,
    pub push: bool,
    pub skip_verify: bool,
}

impl MirrorHost {
    /// Whether this host serves requests for `purpose`.
    pub fn serves(&self, purpose: Purpose) -> bool {
        match purpose {
            Purpose::Resolve => self.resolve && self.pull,
            Purpose::Pull => self.pull,
            Purpose::Push => self.push,
        }
    }
}

/// A parsed `hosts.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsFile {
    /// Replaces the registry's own address as the upstream (`server = …`).
    pub server: Option<String>,
    /// The mirrors, in file order.
    pub hosts: Vec<MirrorHost>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    server: Option<String>,
    #[serde(default)]
    host: toml::map::Map<String, toml::Value>,
    // Accepted and checked: these are the upstream's own settings.
    capabilities: Option<Vec<String>>,
    skip_verify: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    capabilities: Option<Vec<String>>,
    skip_verify: Option<bool>,
    override_path: Option<bool>,
}

/// The `hosts.toml` that applies to `host` under `dir`, if any.
pub fn hosts_file_for(dir: &Path, host: &str) -> Option<PathBuf> {
    // A host name with `/` or `..` would leave the directory.
    if host.is_empty() || host.contains('/') || host.starts_with('.') {
        return None;
    }
    [host, DEFAULT_HOST_DIR]
        .iter()
        .map(|h| dir.join(h).join("hosts.toml"))
        .find(|p| p.is_file())
}

/// Reads the configuration for `host` under `dir`; `None` when neither `<host>/hosts.toml`
/// nor `_default/hosts.toml` exists.
pub fn load(dir: &Path, host: &str) -> Result<Option<HostsFile>, RegistryError> {
    let Some(path) = hosts_file_for(dir, host) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| RegistryError::InvalidArgument(format!("reading {}: {e}", path.display())))?;
    parse(&text)
        .map(Some)
        .map_err(|e| RegistryError::InvalidArgument(format!("{}: {e}", path.display())))
}

/// Parses the text of a `hosts.toml`.
pub fn parse(text: &str) -> Result<HostsFile, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
    if let Some(caps) = &raw.capabilities {
        capabilities(caps)?;
    }
    if raw.skip_verify == Some(true) {
        return Err("skip_verify for the upstream server is not supported by Berth (use insecure-registries)".into());
    }
    let server = raw.server.map(|s| check_url(&s, "server")).transpose()?;
    let mut hosts = Vec::new();
    for (url, value) in raw.host {
        let host: RawHost = value
            .try_into()
            .map_err(|e: toml::de::Error| format!("host {url:?}: {}", e.message()))?;
        if host.override_path == Some(true) {
            return Err(format!(
                "host {url:?}: override_path is not supported by Berth"
            ));
        }
        let (pull, resolve, push) = match &host.capabilities {
            Some(c) => capabilities(c).map_err(|e| format!("host {url:?}: {e}"))?,
            None => (true, true, true),
        };
        hosts.push(MirrorHost {
            url: check_url(&url, "host")?,
            pull,
            resolve,
            push,
            skip_verify: host.skip_verify.unwrap_or(false),
        });
    }
    Ok(HostsFile { server, hosts })
}

/// (pull, resolve, push) from a capability list.
fn capabilities(list: &[String]) -> Result<(bool, bool, bool), String> {
    let (mut pull, mut resolve, mut push) = (false, false, false);
    for c in list {
        match c.as_str() {
            "pull" => pull = true,
            "resolve" => resolve = true,
            "push" => push = true,
            other => return Err(format!("unknown capability {other:?}")),
        }
    }
    Ok((pull, resolve, push))
}

/// A host URL: `http` or `https` with a host; no scheme means `https` (as containerd).
fn check_url(raw: &str, what: &str) -> Result<String, String> {
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| format!("invalid {what} {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "invalid {what} {raw:?}: want http(s)://host[:port]"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("invalid {what} {raw:?}: a query or fragment"));
    }
    Ok(with_scheme)
}

/// The path prefix of a host URL for the distribution API: containerd adds `/v2` to a
/// host's path, so `…/v2` and `…` name the same API root; the prefix is what comes before.
pub fn api_prefix(path: &str) -> String {
    let p = path.trim_end_matches('/');
    p.strip_suffix("/v2").unwrap_or(p).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_containerd_example() {
        let f = parse(
            r#"
server = "https://registry.k8s.io"

[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]

[host."https://mirror.example/v2"]
  skip_verify = true
"#,
        )
        .unwrap();
        assert_eq!(f.server.as_deref(), Some("https://registry.k8s.io"));
        assert_eq!(f.hosts.len(), 2);
        assert_eq!(f.hosts[0].url, "http://127.0.0.1:5000");
        assert!(f.hosts[0].serves(Purpose::Resolve) && !f.hosts[0].serves(Purpose::Push));
        assert_eq!(f.hosts[1].url, "https://mirror.example/v2");
        assert!(f.hosts[1].skip_verify && f.hosts[1].serves(Purpose::Push));
    }

    #[test]
    fn file_order_is_kept() {
        let f = parse("[host.\"http://b:1\"]\n[host.\"http://a:2\"]\n").unwrap();
        let urls: Vec<_> = f.hosts.iter().map(|h| h.url.as_str()).collect();
        assert_eq!(urls, ["http://b:1", "http://a:2"]);
    }

    #[test]
    fn pull_only_host_serves_digests_only() {
        let f = parse("[host.\"http://m:1\"]\ncapabilities = [\"pull\"]\n").unwrap();
        assert!(f.hosts[0].serves(Purpose::Pull));
        assert!(!f.hosts[0].serves(Purpose::Resolve));
    }

    #[test]
    fn refuses_what_berth_does_not_apply() {
        for bad in [
            "[host.\"http://m:1\"]\nca = \"/x.crt\"\n",
            "[host.\"http://m:1\"]\noverride_path = true\n",
            "[host.\"http://m:1\"]\ncapabilities = [\"fly\"]\n",
            "[host.\"ftp://m:1\"]\n",
            "mirrors = 1\n",
            "server = \"gopher://x\"\n",
            "not toml [",
        ] {
            assert!(parse(bad).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn prefix_drops_v2() {
        assert_eq!(api_prefix(""), "");
        assert_eq!(api_prefix("/"), "");
        assert_eq!(api_prefix("/v2"), "");
        assert_eq!(api_prefix("/base/v2/"), "/base");
        assert_eq!(api_prefix("/base"), "/base");
    }

    #[test]
    fn finds_host_then_default_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), "registry.k8s.io").unwrap().is_none());
        std::fs::create_dir_all(dir.path().join("_default")).unwrap();
        std::fs::write(
            dir.path().join("_default/hosts.toml"),
            "[host.\"http://d:1\"]\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("localhost:5000")).unwrap();
        std::fs::write(
            dir.path().join("localhost:5000/hosts.toml"),
            "[host.\"http://l:1\"]\n",
        )
        .unwrap();
        let url = |h: &str| load(dir.path(), h).unwrap().unwrap().hosts[0].url.clone();
        assert_eq!(url("localhost:5000"), "http://l:1");
        assert_eq!(url("gcr.io"), "http://d:1");
        assert!(hosts_file_for(dir.path(), "../etc").is_none());
        std::fs::write(dir.path().join("_default/hosts.toml"), "[").unwrap();
        let e = load(dir.path(), "gcr.io").unwrap_err().to_string();
        assert!(e.contains("_default/hosts.toml"), "{e}");
    }
}
