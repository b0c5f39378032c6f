//! Registry commands: `login`, `logout`, `pull`, `push`, and the pull that `create`/`run`
//! do for a missing image. Credentials come from the Docker config file and its
//! credential helpers ([`crate::credentials`]); the daemon does the registry work.
//! `login` and `logout` are in [`login`].

use std::io::Write;
use std::os::fd::AsFd;
use std::sync::OnceLock;

use berth_api::AuthConfig;
use http::Method;
use http_body_util::BodyExt;

use crate::args::{PullArgs, PushArgs};
use crate::client::{empty, query, seg, ApiError, Client};
use crate::config_file::{config_dir, ConfigFile};
use crate::credentials::{self, auth_key_for_domain, INDEX_SERVER};
use crate::jsonmessage::{Mode, Renderer, StreamError};
use crate::Failure;
use berth_image::Reference;

mod login;
use login::prompt_for_credentials;
pub use login::{login, logout};

static CONFIG_FLAG: OnceLock<Option<String>> = OnceLock::new();

/// Records the global `--config DIR` flag (called once, by dispatch).
pub fn set_config_flag(dir: Option<String>) {
    let _ = CONFIG_FLAG.set(dir);
}

/// Loads the config file from `--config`, `$DOCKER_CONFIG` or `~/.docker`, printing
/// docker/cli's warning when it cannot be read.
pub fn load_config() -> ConfigFile {
    let flag = CONFIG_FLAG.get().cloned().flatten();
    let (cfg, err) = ConfigFile::load(&config_dir(flag.as_deref()));
    if let Some(e) = err {
        eprintln!("WARNING: Error {e}");
    }
    cfg
}

/// The `X-Registry-Auth` value for pulling or pushing `r`: the stored credentials of its
/// registry (Docker Hub's key for `docker.io`), `e30=` (`{}`) when there are none.
pub fn auth_header_for(cfg: &ConfigFile, r: &Reference) -> Result<String, Failure> {
    let key = auth_key_for_domain(r.domain());
    let auth = credentials::get(cfg, &key).map_err(|e| Failure::Msg(e.to_string()))?;
    Ok(auth.to_header())
}

/// Where rendered progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Stdout,
    Stderr,
    Discard,
}

/// A `Write` onto one of the process's outputs; stdout ends the process quietly on a
/// closed pipe, like the rest of the CLI.
struct Sink(Target);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0 {
            Target::Stdout => crate::stream::write_stdout(buf),
            Target::Stderr => {
                let mut e = std::io::stderr().lock();
                e.write_all(buf)?;
            }
            Target::Discard => {}
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn mode_for(target: Target) -> Mode {
    let (tty, width) = match target {
        Target::Stdout => {
            let o = std::io::stdout();
            (
                crate::terminal::is_tty(o.as_fd()),
                crate::terminal::columns(o.as_fd()),
            )
        }
        Target::Stderr => {
            let e = std::io::stderr();
            (
                crate::terminal::is_tty(e.as_fd()),
                crate::terminal::columns(e.as_fd()),
            )
        }
        Target::Discard => (false, None),
    };
    Mode {
        terminal: tty,
        width: width.map(usize::from).unwrap_or(200),
    }
}

/// Why a streamed operation failed.
#[derive(Debug)]
pub enum StreamFailure {
    /// The request itself failed (connection, or a non-2xx answer).
    Api(ApiError),
    /// The stream carried an error (`errorDetail`) or was not JSON.
    Stream(StreamError),
}

impl From<StreamFailure> for Failure {
    fn from(f: StreamFailure) -> Failure {
        match f {
            StreamFailure::Api(e) => Failure::Api(e),
            StreamFailure::Stream(e) => Failure::Msg(e.0),
        }
    }
}

impl From<StreamFailure> for ApiError {
    fn from(f: StreamFailure) -> ApiError {
        match f {
            StreamFailure::Api(e) => e,
            StreamFailure::Stream(e) => ApiError::Transport(e.0),
        }
    }
}

/// Sends a POST with `X-Registry-Auth` and renders the JSON message stream of the answer
/// as it arrives. With `privilege` (pull and push), a 401 from the daemon asks for
/// credentials on the terminal and tries once more, as docker/cli's
/// `RegistryAuthenticationPrivilegedFunc` does; without a terminal the error stands.
pub async fn post_and_render(
    c: &Client,
    path: &str,
    auth_header: &str,
    target: Target,
    privilege: Option<(&ConfigFile, &Reference, &str)>,
) -> Result<(), StreamFailure> {
    let send = |h: String| async move {
        c.send_with_headers(
            Method::POST,
            path,
            empty(),
            None,
            &[("X-Registry-Auth", &h)],
        )
        .await
    };
    let res = match (send(auth_header.to_string()).await, privilege) {
        (Err(e), Some((cfg, r, cmd))) if e.status() == 401 && crate::terminal::stdin_is_tty() => {
            let header = request_privilege(cfg, r, cmd)
                .map_err(|f| StreamFailure::Api(ApiError::Transport(f.to_string())))?;
            send(header).await
        }
        (res, _) => res,
    }
    .map_err(StreamFailure::Api)?;
    // Buffered: one write per chunk of the stream, not one per escape sequence.
    let mut renderer = Renderer::new(std::io::BufWriter::new(Sink(target)), mode_for(target));
    let mut body = res.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| StreamFailure::Api(ApiError::Transport(e.to_string())))?;
        if let Some(data) = frame.data_ref() {
            renderer.feed(data).map_err(StreamFailure::Stream)?;
        }
    }
    renderer.finish().map_err(StreamFailure::Stream)?;
    Ok(())
}

/// True when a reference has neither a tag nor a digest.
fn is_name_only(r: &Reference) -> bool {
    r.tag().is_none() && r.digest().is_none()
}

/// The `tag` query value of `POST /images/create` (`getAPITagFromNamedRef`): the digest,
/// else the tag, else `latest`.
fn api_tag(r: &Reference) -> String {
    r.digest().or(r.tag()).unwrap_or("latest").to_string()
}

fn parse_ref(name: &str) -> Result<Reference, Failure> {
    Reference::parse_normalized(name).map_err(|e| Failure::Msg(e.0))
}

/// `berth pull`.
pub async fn pull(c: &Client, a: &PullArgs) -> Result<i32, Failure> {
    let mut r = parse_ref(&a.name)?;
    if a.all_tags && !is_name_only(&r) {
        return Err(Failure::Msg("tag can't be used with --all-tags/-a".into()));
    }
    if !a.all_tags && is_name_only(&r) {
        r = r.with_default_tag();
        if !a.quiet {
            outln!("Using default tag: latest");
        }
    }
    let cfg = load_config();
    let header = auth_header_for(&cfg, &r).unwrap_or_else(|_| AuthConfig::default().to_header());
    let mut q = vec![("fromImage", r.name())];
    if !a.all_tags {
        q.push(("tag", api_tag(&r)));
    }
    if let Some(p) = a.platform.as_ref().filter(|p| !p.is_empty()) {
        q.push(("platform", p.to_lowercase()));
    }
    // Go's url.Values encodes keys in sorted order.
    q.sort_by_key(|(k, _)| *k);
    let target = if a.quiet {
        Target::Discard
    } else {
        Target::Stdout
    };
    post_and_render(
        c,
        &format!("/images/create{}", query(&q)),
        &header,
        target,
        Some((&cfg, &r, "pull")),
    )
    .await?;
    outln!("{r}");
    Ok(0)
}

/// `--platform` of push as the JSON the API takes (`{"architecture":…,"os":…}`).
fn platform_json(p: &str) -> Result<String, Failure> {
    let parts: Vec<&str> = p.split('/').collect();
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|s| s.is_empty()) {
        return Err(Failure::Msg(format!(
            "\"{p}\": unknown operating system or architecture: invalid argument"
        )));
    }
    let mut m = serde_json::Map::new();
    if let Some(arch) = parts.get(1) {
        m.insert("architecture".into(), arch.to_lowercase().into());
    }
    m.insert("os".into(), parts[0].to_lowercase().into());
    if let Some(v) = parts.get(2) {
        m.insert("variant".into(), v.to_lowercase().into());
    }
    Ok(serde_json::Value::Object(m).to_string())
}

/// `berth push`.
pub async fn push(c: &Client, a: &PushArgs) -> Result<i32, Failure> {
    let platform = match a.platform.as_ref().filter(|p| !p.is_empty()) {
        Some(p) => {
            let json = platform_json(p).inspect_err(|_| eprint!("Invalid platform {p}"))?;
            print_note(
                Target::Stdout,
                "Using --platform pushes only the specified platform manifest of a multi-platform image index.\nOther components, like attestations, will not be included.\nTo push the complete multi-platform image, remove the --platform flag.\n",
            );
            Some(json)
        }
        None => None,
    };
    let mut r = parse_ref(&a.name)?;
    if a.all_tags && !is_name_only(&r) {
        return Err(Failure::Msg("tag can't be used with --all-tags/-a".into()));
    }
    if !a.all_tags && is_name_only(&r) {
        r = r.with_default_tag();
        if !a.quiet {
            outln!("Using default tag: latest");
        }
    }
    if r.digest().is_some() {
        return Err(Failure::Msg("cannot push a digest reference".into()));
    }
    let cfg = load_config();
    let header = auth_header_for(&cfg, &r).unwrap_or_else(|_| AuthConfig::default().to_header());
    let mut q = Vec::new();
    if !a.all_tags {
        if let Some(t) = r.tag() {
            q.push(("tag", t.to_string()));
        }
    }
    if let Some(p) = platform {
        q.push(("platform", p));
    }
    let target = if a.quiet {
        Target::Discard
    } else {
        Target::Stdout
    };
    post_and_render(
        c,
        &format!("/images/{}/push{}", seg(&r.name()), query(&q)),
        &header,
        target,
        Some((&cfg, &r, "push")),
    )
    .await?;
    if a.quiet {
        outln!("{r}");
    }
    Ok(0)
}

/// The pull `create`/`run` do: progress on stderr (none with `-q`), the image's own
/// registry credentials, `--platform` passed on.
pub async fn pull_for_create(
    c: &Client,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
) -> Result<(), ApiError> {
    let r = Reference::parse_normalized(image).map_err(|e| ApiError::Transport(e.0))?;
    let cfg = load_config();
    let header = auth_header_for(&cfg, &r).map_err(|e| ApiError::Transport(e.to_string()))?;
    let mut q = vec![("fromImage", r.name()), ("tag", api_tag(&r))];
    if let Some(p) = platform.filter(|p| !p.is_empty()) {
        q.push(("platform", p.to_lowercase()));
    }
    q.sort_by_key(|(k, _)| *k);
    let target = if quiet {
        Target::Discard
    } else {
        Target::Stderr
    };
    post_and_render(
        c,
        &format!("/images/create{}", query(&q)),
        &header,
        target,
        None,
    )
    .await
    .map_err(ApiError::from)
}

/// `RegistryAuthenticationPrivilegedFunc`: "Login prior to pull:", then the prompts (with
/// Docker Hub's texts, as docker/cli passes Hub's key whatever the registry), and the
/// header for the answers.
fn request_privilege(cfg: &ConfigFile, r: &Reference, cmd: &str) -> Result<String, Failure> {
    outln!("\nLogin prior to {cmd}:");
    let key = auth_key_for_domain(r.domain());
    let stored = match credentials::get(cfg, &key) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("Unable to retrieve stored credentials for {INDEX_SERVER}, error: {e}.");
            AuthConfig::default()
        }
    };
    let auth = prompt_for_credentials("", "", &stored.username, INDEX_SERVER)?;
    Ok(auth.to_header())
}

/// `tui.Output.PrintNote`: a header, then the lines in italics (terminal) or plain,
/// indented under the first one.
fn print_note(target: Target, text: &str) {
    let terminal = mode_for(target).terminal;
    let _ = Sink(target).write_all(note_text(text, terminal).as_bytes());
}

fn note_text(text: &str, terminal: bool) -> String {
    // `tui.InfoHeader`; both forms are 9 columns wide.
    let header = if terminal {
        "\x1b[1m\x1b[106m\x1b[30mi\x1b[0m\x1b[0m \x1b[96mInfo \u{2192} \x1b[0m\x1b[0m"
    } else {
        " Info -> "
    };
    let mut s = format!("\n{header}");
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            s.push_str(&" ".repeat(9));
        }
        if terminal {
            s.push_str(&format!("\x1b[3m{line}\x1b[0m"));
        } else {
            s.push_str(line);
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_tag_is_the_digest_else_the_tag_else_latest() {
        let r = |s: &str| Reference::parse_normalized(s).unwrap();
        assert!(is_name_only(&r("busybox")));
        assert_eq!(api_tag(&r("busybox")), "latest");
        assert_eq!(api_tag(&r("busybox:1.36")), "1.36");
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(api_tag(&r(&format!("busybox:1.36@{digest}"))), digest);
        assert!(!is_name_only(&r("127.0.0.1:5000/x:v1")));
    }

    #[test]
    fn auth_header_uses_the_registry_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"127.0.0.1:5911":{"auth":"Ym9iOnB3"},"https://index.docker.io/v1/":{"auth":"aHViOmh1YnB3","email":"a@b"},"tok.example":{"auth":"dTpw","identitytoken":"IDT"}}}"#,
        )
        .unwrap();
        let (cfg, _) = ConfigFile::load(dir.path());
        let decode = |h: String| {
            AuthConfig::from_header(&h)
                .unwrap()
                .map(|a| serde_json::to_string(&a).unwrap())
        };
        let h = |name: &str| {
            decode(auth_header_for(&cfg, &Reference::parse_normalized(name).unwrap()).unwrap())
        };
        // The JSON docker/cli 28 sent for the same config (captured from its requests).
        assert_eq!(
            h("127.0.0.1:5911/multi:v1").unwrap(),
            r#"{"username":"bob","password":"pw","serveraddress":"127.0.0.1:5911"}"#
        );
        assert_eq!(
            h("busybox").unwrap(),
            r#"{"username":"hub","password":"hubpw","email":"a@b","serveraddress":"https://index.docker.io/v1/"}"#
        );
        assert_eq!(
            h("index.docker.io/user/x").unwrap(),
            r#"{"username":"hub","password":"hubpw","email":"a@b","serveraddress":"https://index.docker.io/v1/"}"#
        );
        assert_eq!(
            h("tok.example/a/b").unwrap(),
            r#"{"username":"u","password":"p","serveraddress":"tok.example","identitytoken":"IDT"}"#
        );
        // No credentials: the header is still sent, as `{}`.
        assert_eq!(
            auth_header_for(&cfg, &Reference::parse_normalized("other.io/x").unwrap()).unwrap(),
            "e30="
        );
    }

    #[test]
    fn platform_json_for_push() {
        assert_eq!(
            platform_json("linux/amd64").unwrap(),
            r#"{"architecture":"amd64","os":"linux"}"#
        );
        assert_eq!(
            platform_json("Linux/ARM64/v8").unwrap(),
            r#"{"architecture":"arm64","os":"linux","variant":"v8"}"#
        );
        assert!(platform_json("linux//x").is_err());
    }

    #[test]
    fn notes_are_printed_like_docker_without_a_terminal() {
        // docker/cli 28 on a non-terminal stderr, before re-using stored credentials:
        assert_eq!(
            note_text("To login with a different account, run 'docker logout' followed by 'docker login'", false),
            "\n Info -> To login with a different account, run 'docker logout' followed by 'docker login'\n"
        );
        assert_eq!(
            note_text("a\nb\n", false),
            "\n Info -> a\n         b\n         \n"
        );
        // And on a terminal (captured from docker login -u eve in a pty):
        assert_eq!(
            note_text("A Personal Access Token (PAT) can be used instead.\nTo create a PAT, visit \x1b[4mhttps://app.docker.com/settings\x1b[0m\n\n", true),
            "\n\x1b[1m\x1b[106m\x1b[30mi\x1b[0m\x1b[0m \x1b[96mInfo \u{2192} \x1b[0m\x1b[0m\x1b[3mA Personal Access Token (PAT) can be used instead.\x1b[0m\n         \x1b[3mTo create a PAT, visit \x1b[4mhttps://app.docker.com/settings\x1b[0m\x1b[0m\n         \x1b[3m\x1b[0m\n         \x1b[3m\x1b[0m\n"
        );
    }

    /// A fake daemon on a unix socket: answers each request with `answer(method, path)`
    /// (status line + JSON body) and records "METHOD PATH" and the X-Registry-Auth header.
    async fn fake_daemon(
        sock: std::path::PathBuf,
        answer: fn(&str, &str, usize) -> (u16, String),
    ) -> std::sync::Arc<std::sync::Mutex<Vec<(String, Option<String>)>>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let log2 = log.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut s, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read(&mut b).await.unwrap_or(0) == 0 {
                        break;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let mut lines = head.lines();
                let mut first = lines.next().unwrap_or("").split(' ');
                let (method, path) = (
                    first.next().unwrap_or("").to_string(),
                    first.next().unwrap_or("").to_string(),
                );
                let mut auth = None;
                let mut len = 0;
                for l in lines {
                    if let Some((k, v)) = l.split_once(": ") {
                        if k.eq_ignore_ascii_case("x-registry-auth") {
                            auth = Some(v.to_string());
                        }
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0u8; len];
                let _ = s.read_exact(&mut body).await;
                let (status, text) = answer(&method, &path, n);
                n += 1;
                log2.lock()
                    .unwrap()
                    .push((format!("{method} {path}"), auth));
                let reply = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        log
    }

    fn config_with_auth() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"127.0.0.1:5911":{"auth":"Ym9iOnB3"}}}"#,
        )
        .unwrap();
        dir
    }

    // The environment lock is held for the whole test on purpose (DOCKER_CONFIG).
    #[allow(clippy::await_holding_lock)]
    #[tokio::test]
    async fn pull_sends_the_registry_credentials_and_fails_on_stream_errors() {
        let _g = crate::credentials::tests::ENV_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let cfg = config_with_auth();
        std::env::set_var("DOCKER_CONFIG", cfg.path());
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("d.sock");
        let log = fake_daemon(sock.clone(), |_, path, _| {
            if path.contains("fromImage=127.0.0.1") {
                (200, "{\"status\":\"Pulling from x\",\"id\":\"v1\"}\n{\"status\":\"Digest: sha256:00\"}\n".into())
            } else {
                (200, "{\"errorDetail\":{\"message\":\"boom\"},\"error\":\"boom\"}\n".into())
            }
        })
        .await;
        let c = Client::new(Some(format!("unix://{}", sock.display()))).unwrap();
        let args = |v: &[&str]| match <crate::args::Cli as clap::Parser>::try_parse_from(v)
            .unwrap()
            .cmd
        {
            Some(crate::args::Cmd::Pull(a)) => a,
            _ => panic!(),
        };
        assert_eq!(
            pull(&c, &args(&["berth", "pull", "-q", "127.0.0.1:5911/x:v1"]))
                .await
                .unwrap(),
            0
        );
        let err = pull(
            &c,
            &args(&[
                "berth",
                "pull",
                "-a",
                "--platform",
                "Linux/AMD64",
                "other.io/y",
            ]),
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "boom");
        let err = pull(&c, &args(&["berth", "pull", "Bad"]))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid reference format: repository name (library/Bad) must be lowercase"
        );
        std::env::remove_var("DOCKER_CONFIG");
        let log = log.lock().unwrap().clone();
        let api = crate::client::api_prefix();
        assert_eq!(log.len(), 2, "{log:?}");
        assert_eq!(
            log[0].0,
            format!("POST {api}/images/create?fromImage=127.0.0.1%3A5911%2Fx&tag=v1")
        );
        let sent = AuthConfig::from_header(log[0].1.as_deref().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                sent.username.as_str(),
                sent.password.as_str(),
                sent.server_address.as_str()
            ),
            ("bob", "pw", "127.0.0.1:5911")
        );
        assert_eq!(
            log[1].0,
            format!("POST {api}/images/create?fromImage=other.io%2Fy&platform=linux%2Famd64")
        );
        assert_eq!(log[1].1.as_deref(), Some("e30="));
    }

    // The environment lock is held for the whole test on purpose (DOCKER_CONFIG).
    #[allow(clippy::await_holding_lock)]
    #[tokio::test]
    async fn create_pulls_a_missing_image_once_and_retries() {
        let _g = crate::credentials::tests::ENV_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let cfg = config_with_auth();
        std::env::set_var("DOCKER_CONFIG", cfg.path());
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("d.sock");
        let log = fake_daemon(sock.clone(), |_, path, n| {
            if path.contains("/containers/create") && n != 2 {
                (
                    404,
                    r#"{"message":"No such image: 127.0.0.1:5911/x:latest"}"#.into(),
                )
            } else if path.contains("/containers/create") {
                (201, r#"{"Id":"abc","Warnings":[]}"#.into())
            } else {
                (
                    200,
                    "{\"status\":\"Status: Downloaded newer image\"}\n".into(),
                )
            }
        })
        .await;
        let c = Client::new(Some(format!("unix://{}", sock.display()))).unwrap();
        let create = |v: &[&str]| match <crate::args::Cli as clap::Parser>::try_parse_from(v)
            .unwrap()
            .cmd
        {
            Some(crate::args::Cmd::Create(a)) => a,
            _ => panic!(),
        };
        assert_eq!(
            crate::container::create(&c, &create(&["berth", "create", "-q", "127.0.0.1:5911/x"]))
                .await
                .unwrap(),
            0
        );
        // --pull never: the daemon's 404 stands; no pull.
        let never = crate::container::create(
            &c,
            &create(&["berth", "create", "--pull", "never", "127.0.0.1:5911/x"]),
        )
        .await
        .unwrap_err();
        assert_eq!(
            never.to_string(),
            "Error response from daemon: No such image: 127.0.0.1:5911/x:latest"
        );
        // An image ID is never pulled.
        let id = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        assert!(
            crate::container::create(&c, &create(&["berth", "create", id]))
                .await
                .is_err()
        );
        std::env::remove_var("DOCKER_CONFIG");
        let log = log.lock().unwrap().clone();
        let api = crate::client::api_prefix();
        let paths: Vec<&str> = log.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                format!("POST {api}/containers/create"),
                format!("POST {api}/images/create?fromImage=127.0.0.1%3A5911%2Fx&tag=latest"),
                format!("POST {api}/containers/create"),
                format!("POST {api}/containers/create"),
                format!("POST {api}/containers/create"),
            ]
        );
        assert!(
            log[1].1.as_deref().is_some_and(|h| h != "e30="),
            "the pull carries the stored credentials"
        );
    }
}
