//! The Docker CLI's config file (`config.json`): where it lives, the `auths` entries, the
//! credential store settings, and saving it the way docker/cli does (temp file + rename,
//! the old file's mode kept, 0600 for a new file). Keys Berth does not know are kept as
//! they are.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use berth_api::AuthConfig;
use serde_json::{Map, Value as Json};

/// The file name inside the config directory.
pub const CONFIG_FILE_NAME: &str = "config.json";

/// The config directory: `--config`, else `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir(flag: Option<&str>) -> PathBuf {
    if let Some(d) = flag.filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".docker")
}

/// Why the config file could not be read or written; worded like docker/cli.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("loading config file: {0}")]
    Read(String),
    #[error("parsing config file ({path}): {msg}")]
    Parse { path: String, msg: String },
    #[error("{0}")]
    Write(String),
}

/// `config.json` as a JSON document; `auths` entries are read and written through
/// [`ConfigFile::auth`] / [`ConfigFile::set_auth`], everything else passes through.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    doc: Map<String, Json>,
    /// Set when the file exists but could not be parsed: saving would destroy it.
    broken: Option<String>,
}

impl ConfigFile {
    /// Reads `dir/config.json`; a missing file is an empty config. A file that cannot be
    /// parsed gives an empty config plus the error (docker/cli prints it as a warning).
    pub fn load(dir: &Path) -> (ConfigFile, Option<ConfigError>) {
        let path = dir.join(CONFIG_FILE_NAME);
        let mut cfg = ConfigFile {
            path: path.clone(),
            doc: Map::new(),
            broken: None,
        };
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (cfg, None),
            Err(e) => {
                let err = ConfigError::Read(format!(
                    "open {}: {}",
                    path.display(),
                    crate::io_error_text(&e)
                ));
                cfg.broken = Some(err.to_string());
                return (cfg, Some(err));
            }
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return (cfg, None);
        }
        let parsed = serde_json::from_slice::<Json>(&text)
            .map_err(|e| e.to_string())
            .and_then(|v| match v {
                Json::Object(m) => Ok(m),
                _ => Err(
                    "json: cannot unmarshal into Go value of type configfile.ConfigFile"
                        .to_string(),
                ),
            });
        match parsed {
            Ok(doc) => {
                cfg.doc = doc;
                // docker/cli refuses a file whose `auth` fields do not decode.
                let bad = cfg.auth_keys().into_iter().find_map(|k| {
                    match cfg.raw_entry(&k).map(decode_entry) {
                        Some(Err(e)) => Some(e),
                        _ => None,
                    }
                });
                match bad {
                    Some(msg) => {
                        let err = ConfigError::Parse {
                            path: path.display().to_string(),
                            msg,
                        };
                        cfg.broken = Some(err.to_string());
                        cfg.doc = Map::new();
                        (cfg, Some(err))
                    }
                    None => (cfg, None),
                }
            }
            Err(msg) => {
                let err = ConfigError::Parse {
                    path: path.display().to_string(),
                    msg,
                };
                cfg.broken = Some(err.to_string());
                (cfg, Some(err))
            }
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole document (for tests and diagnostics).
    pub fn document(&self) -> &Map<String, Json> {
        &self.doc
    }

    /// A top-level string field (`currentContext`, `detachKeys`), when set and not empty.
    pub fn string_field(&self, key: &str) -> Option<String> {
        self.doc
            .get(key)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// Sets (or, with `None`, removes) a top-level string field.
    pub fn set_string_field(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => {
                self.doc
                    .insert(key.to_string(), Json::String(v.to_string()));
            }
            None => {
                self.doc.shift_remove(key);
            }
        }
    }

    /// `credsStore`, if set.
    pub fn creds_store(&self) -> Option<String> {
        self.string_field("credsStore")
    }

    /// `credHelpers[registry]`, if set.
    pub fn cred_helper(&self, registry: &str) -> Option<String> {
        self.doc
            .get("credHelpers")
            .and_then(|h| h.get(registry))
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// `ContainsAuth`: a credential store, helpers or any `auths` entry is configured.
    pub fn contains_auth(&self) -> bool {
        self.creds_store().is_some()
            || self
                .doc
                .get("credHelpers")
                .and_then(Json::as_object)
                .is_some_and(|m| !m.is_empty())
            || !self.auth_keys().is_empty()
    }

    /// The keys of `auths`.
    pub fn auth_keys(&self) -> Vec<String> {
        self.doc
            .get("auths")
            .and_then(Json::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn raw_entry(&self, key: &str) -> Option<&Json> {
        self.doc.get("auths").and_then(|a| a.get(key))
    }

    /// The entry stored under exactly `key`, decoded: `auth` split into username and
    /// password, `serveraddress` set to the key.
    pub fn auth(&self, key: &str) -> Option<AuthConfig> {
        let mut a = decode_entry(self.raw_entry(key)?).ok()?;
        a.server_address = key.to_string();
        Some(a)
    }

    /// Stores `auth` under `key` the way docker/cli writes it: `auth` = base64(user:pass),
    /// `email`, `identitytoken`, `registrytoken`; username, password and server address are
    /// not written. Returns false when the entry was already the same.
    pub fn set_auth(&mut self, key: &str, auth: &AuthConfig) -> bool {
        let mut entry = Map::new();
        if !auth.username.is_empty() || !auth.password.is_empty() {
            let raw = format!("{}:{}", auth.username, auth.password);
            entry.insert(
                "auth".into(),
                Json::String(base64::engine::general_purpose::STANDARD.encode(raw)),
            );
        }
        for (k, v) in [
            ("email", &auth.email),
            ("identitytoken", &auth.identity_token),
            ("registrytoken", &auth.registry_token),
        ] {
            if !v.is_empty() {
                entry.insert(k.into(), Json::String(v.clone()));
            }
        }
        let entry = Json::Object(entry);
        if self.raw_entry(key) == Some(&entry) {
            return false;
        }
        if !self.doc.contains_key("auths") {
            // docker/cli writes `auths` first (its struct order).
            let mut doc = Map::new();
            doc.insert("auths".into(), Json::Object(Map::new()));
            doc.extend(std::mem::take(&mut self.doc));
            self.doc = doc;
        }
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Json::Object(Map::new()));
        if !auths.is_object() {
            *auths = Json::Object(Map::new());
        }
        if let Json::Object(m) = auths {
            m.insert(key.to_string(), entry);
            // Go writes map keys sorted.
            m.sort_keys();
        }
        true
    }

    /// Removes `auths[key]`; false when there was none.
    pub fn remove_auth(&mut self, key: &str) -> bool {
        self.doc
            .get_mut("auths")
            .and_then(Json::as_object_mut)
            .is_some_and(|m| m.shift_remove(key).is_some())
    }

    /// Writes the file: JSON indented with tabs, to a temp file in the same directory that
    /// then replaces the old one. The old file's permissions are kept; a new file is 0600.
    pub fn save(&self) -> Result<(), ConfigError> {
        if let Some(b) = &self.broken {
            return Err(ConfigError::Write(b.clone()));
        }
        let w = |e: std::io::Error| ConfigError::Write(crate::io_error_text(&e));
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode_0700()
            .create(dir)
            .map_err(w)?;
        let mut data = Vec::new();
        {
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
            let mut ser = serde_json::Serializer::with_formatter(&mut data, fmt);
            serde::Serialize::serialize(&Json::Object(self.doc.clone()), &mut ser)
                .map_err(|e| ConfigError::Write(e.to_string()))?;
        }
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let mut tmp = tempfile::Builder::new()
            .prefix(CONFIG_FILE_NAME)
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(w)?;
        tmp.write_all(&data).map_err(w)?;
        tmp.as_file().sync_all().map_err(w)?;
        if let Ok(meta) = std::fs::metadata(&target) {
            let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
            let _ = nix::unistd::chown(
                tmp.path(),
                Some(nix::unistd::Uid::from_raw(
                    std::os::unix::fs::MetadataExt::uid(&meta),
                )),
                Some(nix::unistd::Gid::from_raw(
                    std::os::unix::fs::MetadataExt::gid(&meta),
                )),
            );
        }
        tmp.persist(&target).map_err(|e| w(e.error))?;
        Ok(())
    }
}

trait DirBuilderExt0700 {
    fn mode_0700(&mut self) -> &mut Self;
}

impl DirBuilderExt0700 for std::fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        std::os::unix::fs::DirBuilderExt::mode(self, 0o700)
    }
}

/// One `auths` entry decoded (`decodeAuth`): errors are docker/cli's.
fn decode_entry(v: &Json) -> Result<AuthConfig, String> {
    let mut a: AuthConfig = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    if !a.auth.is_empty() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.auth.trim())
            .map_err(|e| format!("illegal base64 data: {e}"))?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        match text.split_once(':') {
            Some((u, p)) if !u.is_empty() => {
                a.username = u.to_string();
                a.password = p.trim_matches('\0').to_string();
            }
            _ => return Err("Invalid auth configuration file".to_string()),
        }
    }
    a.auth.clear();
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(u: &str, p: &str) -> AuthConfig {
        AuthConfig {
            username: u.into(),
            password: p.into(),
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_keeps_other_keys_and_writes_docker_format() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"psFormat":"table {{.ID}}","credHelpers":{"gcr.io":"gcloud"},"auths":{"other":{"auth":"eDp5","email":"a@b"}},"plugins":{"x":{"y":"z"}}}"#,
        )
        .unwrap();
        let (mut cfg, err) = ConfigFile::load(dir.path());
        assert!(err.is_none());
        let other = cfg.auth("other").unwrap();
        assert_eq!(
            (
                other.username.as_str(),
                other.password.as_str(),
                other.email.as_str()
            ),
            ("x", "y", "a@b")
        );
        assert_eq!(other.server_address, "other");
        assert_eq!(cfg.cred_helper("gcr.io").as_deref(), Some("gcloud"));
        assert!(cfg.set_auth("127.0.0.1:5000", &auth("bob", "pw")));
        assert!(
            !cfg.set_auth("127.0.0.1:5000", &auth("bob", "pw")),
            "same entry is no change"
        );
        cfg.save().unwrap();
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert_eq!(
            text,
            "{\n\t\"psFormat\": \"table {{.ID}}\",\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\"\n\t},\n\t\"auths\": {\n\t\t\"127.0.0.1:5000\": {\n\t\t\t\"auth\": \"Ym9iOnB3\"\n\t\t},\n\t\t\"other\": {\n\t\t\t\"auth\": \"eDp5\",\n\t\t\t\"email\": \"a@b\"\n\t\t}\n\t},\n\t\"plugins\": {\n\t\t\"x\": {\n\t\t\t\"y\": \"z\"\n\t\t}\n\t}\n}"
        );
        let (mut cfg, _) = ConfigFile::load(dir.path());
        assert!(cfg.remove_auth("127.0.0.1:5000"));
        assert!(!cfg.remove_auth("127.0.0.1:5000"));
        cfg.save().unwrap();
        let (cfg, _) = ConfigFile::load(dir.path());
        assert_eq!(cfg.auth_keys(), vec!["other".to_string()]);
        assert!(cfg.document().contains_key("plugins"));
        // Only config.json is left: the temp file was renamed over it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn new_file_is_0600_and_existing_mode_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("new");
        let (mut cfg, _) = ConfigFile::load(&sub);
        cfg.set_auth("h", &auth("u", "p"));
        cfg.save().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sub.join("config.json")), 0o600);
        assert_eq!(mode(&sub), 0o700);
        std::fs::set_permissions(
            sub.join("config.json"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let (mut cfg, _) = ConfigFile::load(&sub);
        cfg.set_auth("h2", &auth("u", "p"));
        cfg.save().unwrap();
        assert_eq!(mode(&sub.join("config.json")), 0o644);
    }

    #[test]
    fn identity_token_entry_keeps_username_only() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cfg, _) = ConfigFile::load(dir.path());
        let a = AuthConfig {
            username: "bob".into(),
            identity_token: "tok".into(),
            ..Default::default()
        };
        cfg.set_auth("r.io", &a);
        assert_eq!(
            cfg.document()["auths"]["r.io"],
            serde_json::json!({"auth": "Ym9iOg==", "identitytoken": "tok"})
        );
        let back = cfg.auth("r.io").unwrap();
        assert_eq!(
            (
                back.username.as_str(),
                back.password.as_str(),
                back.identity_token.as_str()
            ),
            ("bob", "", "tok")
        );
    }

    #[test]
    fn broken_files_are_reported_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let (cfg, err) = ConfigFile::load(dir.path());
        let msg = err.unwrap().to_string();
        assert!(
            msg.starts_with(&format!(
                "parsing config file ({}/config.json): ",
                dir.path().display()
            )),
            "{msg}"
        );
        assert!(cfg.save().is_err());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("config.json")).unwrap(),
            "{not json"
        );
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"x":{"auth":"bm9jb2xvbg=="}}}"#,
        )
        .unwrap();
        let (_, err) = ConfigFile::load(dir.path());
        assert!(err
            .unwrap()
            .to_string()
            .ends_with("Invalid auth configuration file"));
        // An empty file is an empty config.
        std::fs::write(dir.path().join("config.json"), "").unwrap();
        assert!(ConfigFile::load(dir.path()).1.is_none());
    }

    #[test]
    fn config_dir_precedence() {
        assert_eq!(config_dir(Some("/x/y")), PathBuf::from("/x/y"));
    }
}
