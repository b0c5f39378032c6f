//! Where credentials for a registry live, as docker/cli decides: `credHelpers[host]`, else
//! `credsStore`, else the `auths` entries of `config.json` (the "file store"). Helpers are
//! `docker-credential-<name>` programs spoken to over stdin/stdout
//! (docker-credential-helpers' `store`, `get`, `erase`, `list`).

use std::io::Write;
use std::process::{Command, Stdio};

use berth_api::AuthConfig;
use serde::{Deserialize, Serialize};

use crate::config_file::ConfigFile;

/// Docker Hub's key in `auths` and for credential helpers.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";
/// The user name a helper stores for an identity token.
const TOKEN_USERNAME: &str = "<token>";
const HELPER_PREFIX: &str = "docker-credential-";
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The key credentials of `domain` are stored under (`getAuthConfigKey`).
pub fn auth_key_for_domain(domain: &str) -> String {
    if domain == "docker.io" || domain == "index.docker.io" {
        INDEX_SERVER.to_string()
    } else {
        domain.to_string()
    }
}

/// `credentials.ConvertToHostname`: `https://host:port/path` → `host:port`, `host/x` → `host`.
pub fn convert_to_hostname(maybe_url: &str) -> String {
    if maybe_url.contains("://") {
        if let Ok(u) = url::Url::parse(maybe_url) {
            if let Some(h) = u.host_str().filter(|h| !h.is_empty()) {
                return match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                };
            }
        }
    }
    maybe_url.split('/').next().unwrap_or("").to_string()
}

/// The JSON a helper reads and writes (docker-credential-helpers `Credentials`).
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct HelperCredentials {
    #[serde(rename = "ServerURL")]
    pub server_url: String,
    #[serde(rename = "Username")]
    pub username: String,
    #[serde(rename = "Secret")]
    pub secret: String,
}

/// A failed credential operation, worded as docker/cli words it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(pub String);

/// Which store holds the credentials of one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// `auths` in config.json.
    File,
    /// `docker-credential-<name>`.
    Helper(String),
}

impl Store {
    /// `GetCredentialsStore`: the helper for `registry`, else the default store.
    pub fn for_registry(cfg: &ConfigFile, registry: &str) -> Store {
        if !registry.is_empty() {
            if let Some(h) = cfg.cred_helper(registry) {
                return Store::Helper(h);
            }
        }
        match cfg.creds_store().or_else(|| detect_default_store(cfg)) {
            Some(s) => Store::Helper(s),
            None => Store::File,
        }
    }
}

/// `DetectDefaultStore` on Linux: when the config names no credentials at all, use
/// `pass` (if installed) or `secretservice`, provided its helper program is on PATH.
fn detect_default_store(cfg: &ConfigFile) -> Option<String> {
    if cfg.contains_auth() {
        return None;
    }
    let name = if on_path("pass") {
        "pass"
    } else {
        "secretservice"
    };
    on_path(&format!("{HELPER_PREFIX}{name}")).then(|| name.to_string())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            let f = d.join(program);
            std::fs::metadata(&f).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; stderr goes to ours.
/// Returns (success, stdout) or the text of a failure to start it (Go's exec error).
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<(bool, String, String), String> {
    let program = format!("{HELPER_PREFIX}{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("exec: \"{program}\": executable file not found in $PATH")
            } else {
                format!("fork/exec {program}: {}", crate::io_error_text(&e))
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| crate::io_error_text(&e))?;
    let status = match out.status.code() {
        Some(c) => format!("exit status {c}"),
        None => "signal: killed".to_string(),
    };
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        status,
    ))
}

fn helper_error(what: &str, status: &str, out: &str) -> CredentialError {
    let t = out.trim();
    let status = match t {
        "no credentials server URL" | "no credentials username" => t,
        _ => status,
    };
    CredentialError(format!(
        "error {what} credentials - err: {status}, out: `{t}`"
    ))
}

/// `client.Get`: `None` when the helper has nothing for `server`.
pub fn helper_get(
    helper: &str,
    server: &str,
) -> Result<Option<HelperCredentials>, CredentialError> {
    let (ok, out, status) = run_helper(helper, "get", server.as_bytes())
        .map_err(|e| CredentialError(format!("error getting credentials - err: {e}, out: ``")))?;
    if !ok {
        if out.trim() == NOT_FOUND {
            return Ok(None);
        }
        return Err(helper_error("getting", &status, &out));
    }
    let mut creds: HelperCredentials =
        serde_json::from_str(&out).map_err(|e| CredentialError(e.to_string()))?;
    if creds.server_url.is_empty() {
        creds.server_url = server.to_string();
    }
    Ok(Some(creds))
}

/// `client.Store`.
pub fn helper_store(helper: &str, creds: &HelperCredentials) -> Result<(), CredentialError> {
    let mut input = serde_json::to_vec(creds).map_err(|e| CredentialError(e.to_string()))?;
    input.push(b'\n');
    let (ok, out, status) = run_helper(helper, "store", &input)
        .map_err(|e| CredentialError(format!("error storing credentials - err: {e}, out: ``")))?;
    if ok {
        Ok(())
    } else {
        Err(helper_error("storing", &status, &out))
    }
}

/// `client.Erase`.
pub fn helper_erase(helper: &str, server: &str) -> Result<(), CredentialError> {
    let (ok, out, status) = run_helper(helper, "erase", server.as_bytes())
        .map_err(|e| CredentialError(format!("error erasing credentials - err: {e}, out: ``")))?;
    if ok {
        Ok(())
    } else {
        Err(helper_error("erasing", &status, &out))
    }
}

/// `client.List`: server URL → user name.
pub fn helper_list(
    helper: &str,
) -> Result<std::collections::BTreeMap<String, String>, CredentialError> {
    let (ok, out, status) = run_helper(helper, "list", b"unused")
        .map_err(|e| CredentialError(format!("error listing credentials - err: {e}, out: ``")))?;
    if !ok {
        return Err(helper_error("listing", &status, &out));
    }
    serde_json::from_str(&out).map_err(|e| CredentialError(e.to_string()))
}

/// `ConfigFile.GetAuthConfig(key)`: the credentials for `key`, empty when there are none.
pub fn get(cfg: &ConfigFile, key: &str) -> Result<AuthConfig, CredentialError> {
    let file_entry = file_get(cfg, key);
    match Store::for_registry(cfg, key) {
        Store::File => Ok(file_entry),
        Store::Helper(h) => {
            let mut auth = file_entry;
            if let Some(c) = helper_get(&h, key)? {
                if c.username == TOKEN_USERNAME {
                    auth.identity_token = c.secret;
                    auth.username.clear();
                    auth.password.clear();
                } else {
                    auth.username = c.username;
                    auth.password = c.secret;
                    auth.identity_token.clear();
                }
                auth.server_address = key.to_string();
            }
            Ok(auth)
        }
    }
}

/// The file store's `Get`: the exact key, else an entry whose key converts to the same
/// host name (`https://host/` stored by old clients).
fn file_get(cfg: &ConfigFile, key: &str) -> AuthConfig {
    if let Some(a) = cfg.auth(key) {
        return a;
    }
    for k in cfg.auth_keys() {
        if convert_to_hostname(&k) == key {
            if let Some(a) = cfg.auth(&k) {
                return a;
            }
        }
    }
    AuthConfig::default()
}

/// What [`store`] did to the file, for the caller's warning.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// A password was written in clear into config.json.
    PlainPassword,
    /// Stored, nothing to warn about (helper, token, or unchanged entry).
    Quiet,
}

/// `Store`: in the helper (with an empty `auths` entry kept in the file, as docker/cli
/// does) or in `auths`. The key is `auth.server_address`.
pub fn store(cfg: &mut ConfigFile, auth: &AuthConfig) -> Result<Stored, CredentialError> {
    let key = auth.server_address.clone();
    let save_err = |e: crate::config_file::ConfigError| CredentialError(e.to_string());
    match Store::for_registry(cfg, &key) {
        Store::Helper(h) => {
            let creds = if auth.identity_token.is_empty() {
                HelperCredentials {
                    server_url: key.clone(),
                    username: auth.username.clone(),
                    secret: auth.password.clone(),
                }
            } else {
                HelperCredentials {
                    server_url: key.clone(),
                    username: TOKEN_USERNAME.into(),
                    secret: auth.identity_token.clone(),
                }
            };
            helper_store(&h, &creds)?;
            let stripped = AuthConfig {
                email: auth.email.clone(),
                ..Default::default()
            };
            if cfg.set_auth(&key, &stripped) {
                cfg.save().map_err(save_err)?;
            }
            Ok(Stored::Quiet)
        }
        Store::File => {
            if !cfg.set_auth(&key, auth) {
                return Ok(Stored::Quiet);
            }
            cfg.save().map_err(save_err)?;
            Ok(if auth.password.is_empty() {
                Stored::Quiet
            } else {
                Stored::PlainPassword
            })
        }
    }
}

/// `Erase`: from the helper (then the file), or from `auths`.
pub fn erase(cfg: &mut ConfigFile, key: &str) -> Result<(), CredentialError> {
    if let Store::Helper(h) = Store::for_registry(cfg, key) {
        helper_erase(&h, key)?;
    }
    if cfg.remove_auth(key) {
        cfg.save().map_err(|e| CredentialError(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Mutex;

    /// Tests that change PATH or the environment hold this.
    pub(crate) static ENV_LOCK: Mutex<()> = Mutex::new(());

    #[test]
    fn hostnames_and_keys() {
        assert_eq!(
            convert_to_hostname("https://index.docker.io/v1/"),
            "index.docker.io"
        );
        assert_eq!(
            convert_to_hostname("http://127.0.0.1:5911/"),
            "127.0.0.1:5911"
        );
        assert_eq!(
            convert_to_hostname("https://other.example:444/v2/"),
            "other.example:444"
        );
        assert_eq!(convert_to_hostname("127.0.0.1:5911"), "127.0.0.1:5911");
        assert_eq!(convert_to_hostname("registry.io/some/path"), "registry.io");
        assert_eq!(auth_key_for_domain("docker.io"), INDEX_SERVER);
        assert_eq!(auth_key_for_domain("index.docker.io"), INDEX_SERVER);
        assert_eq!(auth_key_for_domain("localhost:5000"), "localhost:5000");
    }

    /// A fake `docker-credential-test` that keeps its secrets in files under `dir/db` and
    /// logs each call's action and stdin to `dir/log`.
    pub(crate) fn fake_helper(dir: &std::path::Path) {
        let script = format!(
            r#"#!/bin/sh
db={d}/db; mkdir -p $db
input=$(cat)
printf '%s %s\n' "$1" "$input" >> {d}/log
key() {{ printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }}
case "$1" in
store) url=$(printf '%s' "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/'); printf '%s' "$input" > $db/$(key "$url") ;;
get) f=$db/$(key "$input"); if [ -f $f ]; then cat $f; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) f=$db/$(key "$input"); if [ -f $f ]; then rm $f; else echo "no such entry" ; exit 1; fi ;;
list) printf '{{}}' ;;
esac
"#,
            d = dir.display()
        );
        let p = dir.join("docker-credential-test");
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub(crate) fn with_path<T>(dir: &std::path::Path, f: impl FnOnce() -> T) -> T {
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.to_path_buf()];
        paths.extend(std::env::split_paths(&old));
        std::env::set_var("PATH", std::env::join_paths(paths).unwrap());
        let r = f();
        std::env::set_var("PATH", old);
        r
    }

    #[test]
    fn helper_protocol_store_get_erase() {
        let _g = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        fake_helper(dir.path());
        let cfgdir = dir.path().join("cfg");
        std::fs::create_dir(&cfgdir).unwrap();
        std::fs::write(
            cfgdir.join("config.json"),
            r#"{"credsStore":"test","auths":{}}"#,
        )
        .unwrap();
        with_path(dir.path(), || {
            let (mut cfg, _) = ConfigFile::load(&cfgdir);
            assert_eq!(
                Store::for_registry(&cfg, "r.io"),
                Store::Helper("test".into())
            );
            let a = AuthConfig {
                username: "bob".into(),
                password: "pw".into(),
                server_address: "r.io".into(),
                ..Default::default()
            };
            assert_eq!(store(&mut cfg, &a).unwrap(), Stored::Quiet);
            // The file keeps an empty entry, no password.
            let text = std::fs::read_to_string(cfgdir.join("config.json")).unwrap();
            assert!(text.contains("\"r.io\": {}"), "{text}");
            let got = get(&cfg, "r.io").unwrap();
            assert_eq!(
                (
                    got.username.as_str(),
                    got.password.as_str(),
                    got.server_address.as_str()
                ),
                ("bob", "pw", "r.io")
            );
            assert_eq!(get(&cfg, "none.io").unwrap(), AuthConfig::default());
            // Identity tokens go in as the `<token>` user.
            let t = AuthConfig {
                username: "bob".into(),
                identity_token: "IDT".into(),
                server_address: "t.io".into(),
                ..Default::default()
            };
            store(&mut cfg, &t).unwrap();
            let got = get(&cfg, "t.io").unwrap();
            assert_eq!(
                (got.username.as_str(), got.identity_token.as_str()),
                ("", "IDT")
            );
            erase(&mut cfg, "r.io").unwrap();
            assert_eq!(get(&cfg, "r.io").unwrap().username, "");
            let err = erase(&mut cfg, "r.io").unwrap_err().to_string();
            assert_eq!(
                err,
                "error erasing credentials - err: exit status 1, out: `no such entry`"
            );
            assert!(helper_list("test").unwrap().is_empty());
        });
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert!(
            log.starts_with(
                "store {\"ServerURL\":\"r.io\",\"Username\":\"bob\",\"Secret\":\"pw\"}\nget r.io\n"
            ),
            "{log}"
        );
        assert!(
            log.contains(
                "store {\"ServerURL\":\"t.io\",\"Username\":\"<token>\",\"Secret\":\"IDT\"}"
            ),
            "{log}"
        );
    }

    #[test]
    fn cred_helpers_win_over_creds_store_and_missing_helpers_fail_clearly() {
        let _g = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credsStore":"nope-missing","credHelpers":{"r.io":"test"}}"#,
        )
        .unwrap();
        let (cfg, _) = ConfigFile::load(dir.path());
        assert_eq!(
            Store::for_registry(&cfg, "r.io"),
            Store::Helper("test".into())
        );
        assert_eq!(
            Store::for_registry(&cfg, "x.io"),
            Store::Helper("nope-missing".into())
        );
        let err = get(&cfg, "x.io").unwrap_err().to_string();
        assert_eq!(err, "error getting credentials - err: exec: \"docker-credential-nope-missing\": executable file not found in $PATH, out: ``");
    }

    #[test]
    fn file_store_finds_legacy_url_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://r.io/v1/":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        let (cfg, _) = ConfigFile::load(dir.path());
        let a = get(&cfg, "r.io").unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p"));
    }
}
