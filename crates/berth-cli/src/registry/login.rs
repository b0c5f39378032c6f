//! `login` and `logout`: credentials asked for (or taken from the config file), checked by
//! the daemon against the registry, and stored in the config file or a credential helper.

use std::io::BufRead;

use berth_api::{AuthConfig, AuthResponse};
use http::Method;

use crate::args::{LoginArgs, LogoutArgs};
use crate::client::{ApiError, Client};
use crate::config_file::ConfigFile;
use crate::credentials::{self, convert_to_hostname, Stored, INDEX_SERVER};
use crate::Failure;

use super::{load_config, print_note, Target};

const REGISTER_SUGGEST: &str = "Log in with your Docker ID or email address to push and pull images from Docker Hub. If you don't have a Docker ID, head over to https://hub.docker.com/ to create one.";
const PAT_SUGGEST: &str = "You can log in with your password or a Personal Access Token (PAT). Using a limited-scope PAT grants better security and is required for organizations using SSO. Learn more at https://docs.docker.com/go/access-tokens/";
const UNENCRYPTED_WARNING: &str = "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n";

/// `hints.Enabled`: `DOCKER_CLI_HINTS` unless it parses as false.
fn hints_enabled() -> bool {
    match std::env::var("DOCKER_CLI_HINTS")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(v) => !matches!(v.as_str(), "0" | "f" | "F" | "false" | "FALSE" | "False"),
        None => true,
    }
}

/// `prompt.ReadInput`: prints the prompt on stdout, reads one line, trims it. End of input
/// is an empty answer.
fn read_input(prompt: &str) -> String {
    out!("{prompt}");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim().to_string()
}

/// `PromptUserForCredentials`.
pub(super) fn prompt_for_credentials(
    user: &str,
    password: &str,
    default_user: &str,
    server: &str,
) -> Result<AuthConfig, Failure> {
    let mut user = user.trim().to_string();
    if user.is_empty() {
        if server == INDEX_SERVER {
            outln!("{REGISTER_SUGGEST}");
            if hints_enabled() {
                outln!("{PAT_SUGGEST}");
                outln!();
            }
        }
        let default_user = default_user.trim();
        let msg = if default_user.is_empty() {
            "Username: ".to_string()
        } else {
            format!("Username ({default_user}): ")
        };
        user = read_input(&msg);
        if user.is_empty() {
            user = default_user.to_string();
        }
        if user.is_empty() {
            return Err(Failure::Msg("Error: Non-null Username Required".into()));
        }
    }
    let mut password = password.trim().to_string();
    if password.is_empty() {
        let guard = crate::terminal::NoEcho::enter();
        if server == INDEX_SERVER {
            // docker/cli underlines the address whether or not stderr is a terminal.
            print_note(Target::Stderr, "A Personal Access Token (PAT) can be used instead.\nTo create a PAT, visit \x1b[4mhttps://app.docker.com/settings\x1b[0m\n\n");
        }
        password = read_input("Password: ");
        outln!();
        drop(guard);
        if password.is_empty() {
            return Err(Failure::Msg("Error: Password Required".into()));
        }
    }
    Ok(AuthConfig {
        username: user,
        password,
        server_address: server.to_string(),
        ..Default::default()
    })
}

/// `POST /auth`.
async fn registry_login(c: &Client, auth: &AuthConfig) -> Result<AuthResponse, ApiError> {
    c.typed(Method::POST, "/auth", Some(auth)).await
}

/// Stores the credentials after a successful login (`storeCredentials`), with the
/// warning docker/cli prints once for a password written in clear.
fn store_credentials(cfg: &mut ConfigFile, auth: &AuthConfig) -> Result<(), Failure> {
    match credentials::store(cfg, auth) {
        Ok(Stored::PlainPassword) => {
            eprintln!(
                "{}",
                UNENCRYPTED_WARNING.replace("{}", &cfg.path().display().to_string())
            );
            Ok(())
        }
        Ok(Stored::Quiet) => Ok(()),
        Err(e) => Err(Failure::Msg(format!("Error saving credentials: {e}"))),
    }
}

/// docker/cli's `verifyLoginFlags`.
fn verify_login_flags(a: &LoginArgs) -> Result<(), &'static str> {
    if a.password_stdin {
        if a.password.is_some() {
            return Err("conflicting options: cannot specify both --password and --password-stdin");
        }
        if a.username.is_none() {
            return Err("the --password-stdin option requires --username to be set");
        }
    }
    if a.username.as_deref() == Some("") {
        return Err("username is empty");
    }
    if a.password.as_deref() == Some("") {
        return Err("password is empty");
    }
    Ok(())
}

/// `berth login`.
pub async fn login(c: &Client, a: &LoginArgs) -> Result<i32, Failure> {
    verify_login_flags(a).map_err(|e| Failure::Msg(e.into()))?;
    // verifyLoginOptions
    let user = a.username.clone().unwrap_or_default();
    let mut password = a.password.clone().unwrap_or_default();
    if !password.is_empty() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if a.password_stdin {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| Failure::Msg(crate::io_error_text(&e)))?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let text = text.strip_suffix('\n').unwrap_or(&text);
        password = text.strip_suffix('\r').unwrap_or(text).to_string();
    }
    let server = match a.server.as_deref() {
        Some(s) if !s.is_empty() && s != "docker.io" => s.to_string(),
        _ => INDEX_SERVER.to_string(),
    };
    let key = if server == INDEX_SERVER {
        server.clone()
    } else {
        convert_to_hostname(&server)
    };
    let mut cfg = load_config();

    // Log in again with what is stored, when no user or password was given.
    let mut stored = AuthConfig {
        server_address: key.clone(),
        ..Default::default()
    };
    if user.is_empty() && password.is_empty() {
        if let Ok(mut a) = credentials::get(&cfg, &key) {
            a.server_address = key.clone();
            a.identity_token.clear();
            stored = a;
        }
        if !stored.username.is_empty() && !stored.password.is_empty() {
            if let Some(status) = login_with_stored(c, &mut cfg, &stored).await? {
                outln!("{status}");
                return Ok(0);
            }
        }
    }

    if (user.is_empty() || password.is_empty()) && !crate::terminal::stdin_is_tty() {
        return Err(Failure::Msg(
            "Error: Cannot perform an interactive login from a non TTY device".into(),
        ));
    }
    let mut auth = prompt_for_credentials(&user, &password, &stored.username, &key)?;
    let response = registry_login(c, &auth).await?;
    if !response.identity_token.is_empty() {
        auth.password.clear();
        auth.identity_token = response.identity_token.clone();
    }
    store_credentials(&mut cfg, &auth)?;
    if !response.status.is_empty() {
        outln!("{}", response.status);
    }
    Ok(0)
}

/// `loginWithStoredCredentials`: `Some(status)` when the stored credentials still work.
async fn login_with_stored(
    c: &Client,
    cfg: &mut ConfigFile,
    auth: &AuthConfig,
) -> Result<Option<String>, Failure> {
    eprintln!(
        "Authenticating with existing credentials... [Username: {}]",
        auth.username
    );
    print_note(
        Target::Stderr,
        "To login with a different account, run 'docker logout' followed by 'docker login'",
    );
    eprint!("\n\n");
    let mut auth = auth.clone();
    let result = registry_login(c, &auth).await;
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status() == 401 {
                eprintln!("Stored credentials invalid or expired");
            } else {
                eprintln!("Login did not succeed, error: {e}");
            }
            store_credentials(cfg, &auth)?;
            return Ok(None);
        }
    };
    if !response.identity_token.is_empty() {
        auth.password.clear();
        auth.identity_token = response.identity_token.clone();
    }
    store_credentials(cfg, &auth)?;
    Ok(Some(response.status))
}

/// `berth logout`.
pub async fn logout(a: &LogoutArgs) -> Result<i32, Failure> {
    let (server, is_default) = match a.server.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => (s.to_string(), false),
        None => (INDEX_SERVER.to_string(), true),
    };
    let mut regs = vec![server.clone()];
    let mut hostname = server.clone();
    if !is_default {
        hostname = convert_to_hostname(&server);
        // Older clients stored the registry under these forms too.
        regs.extend([
            hostname.clone(),
            format!("http://{hostname}"),
            format!("https://{hostname}"),
        ]);
    }
    let mut cfg = load_config();
    outln!("Removing login credentials for {hostname}");
    // Keyed by address like docker/cli's map: when SERVER is already a host name it is
    // in the list twice, counts once, and then failures never add up to a warning.
    let mut errors: Vec<(String, credentials::CredentialError)> = Vec::new();
    for r in &regs {
        if let Err(e) = credentials::erase(&mut cfg, r) {
            errors.retain(|(k, _)| k != r);
            errors.push((r.clone(), e));
        }
    }
    if errors.len() == regs.len() {
        eprintln!("WARNING: could not erase credentials:");
        for (k, e) in errors {
            eprintln!("{k}: {e}");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_flag_checks_are_dockers() {
        use clap::Parser;
        let check = |argv: &[&str]| {
            let cli = crate::args::Cli::try_parse_from(argv).unwrap();
            match cli.cmd {
                Some(crate::args::Cmd::Login(a)) => verify_login_flags(&a),
                _ => panic!("not login"),
            }
        };
        assert_eq!(
            check(&["berth", "login", "-p", "x", "--password-stdin"]),
            Err("conflicting options: cannot specify both --password and --password-stdin")
        );
        assert_eq!(
            check(&["berth", "login", "--password-stdin"]),
            Err("the --password-stdin option requires --username to be set")
        );
        assert_eq!(
            check(&["berth", "login", "-u", "", "-p", "x"]),
            Err("username is empty")
        );
        assert_eq!(
            check(&["berth", "login", "-u", "a", "--password="]),
            Err("password is empty")
        );
        assert_eq!(
            check(&["berth", "login", "-u", "a", "--password-stdin", "r.io"]),
            Ok(())
        );
        assert_eq!(check(&["berth", "login"]), Ok(()));
    }
}
