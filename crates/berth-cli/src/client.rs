//! The Engine API client: HTTP/1.1 over the daemon's unix socket (hyper 1), JSON calls,
//! streamed bodies, the `Upgrade: tcp` hijack, API version negotiation through `/_ping`
//! as the Docker CLI does, and starting the daemon on the default socket when (and only
//! when) the user asked for that with `--start-daemon` / `BERTH_START_DAEMON=1`.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, Request, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value as Json;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

/// The socket the CLI talks to when neither `-H`, `DOCKER_HOST`/`BERTH_HOST` nor a context
/// says otherwise (where `berth daemon` listens by default).
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
/// The newest API version this client speaks.
pub const API_PREFIX: &str = "/v1.45";
/// The oldest API version a daemon may answer with in `/_ping` (docker/cli's fallback
/// when the header is missing).
const FALLBACK_API_VERSION: &str = "1.24";
/// Where a daemon started by `--start-daemon` logs.
pub const DAEMON_LOG: &str = "/var/log/berth-daemon.log";

/// `DOCKER_API_VERSION`, when set to a version number: it pins the version and turns
/// negotiation off, as in the Docker CLI.
pub fn env_api_version() -> Option<String> {
    std::env::var("DOCKER_API_VERSION")
        .ok()
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// The version prefix of request paths without negotiation: `/v$DOCKER_API_VERSION` when
/// that is set, else [`API_PREFIX`].
pub fn api_prefix() -> String {
    match env_api_version() {
        Some(v) => format!("/v{v}"),
        None => API_PREFIX.to_string(),
    }
}

/// Compares dotted versions numerically (`1.9` < `1.24`).
fn version_less(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

/// The version docker/cli settles on: the server's `API-Version` when it is older than
/// ours, else ours; a missing header means 1.24.
pub fn negotiated(server: Option<&str>) -> String {
    let ours = API_PREFIX.trim_start_matches("/v");
    let server = server
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(FALLBACK_API_VERSION);
    if version_less(server, ours) {
        server.to_string()
    } else {
        ours.to_string()
    }
}

/// A request body: empty, in memory, or streamed.
pub type ReqBody = BoxBody<Bytes, io::Error>;

/// What an API call failed at, worded as the Docker CLI words it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Cannot connect to the Docker daemon at {0}. Is the docker daemon running?")]
    Connect(String),
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    #[error("{0}")]
    Transport(String),
}

impl ApiError {
    /// The HTTP status of a daemon error (0 for transport errors).
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Daemon { status, .. } => *status,
            _ => 0,
        }
    }
    /// The daemon's message, without the `Error response from daemon: ` prefix.
    pub fn message(&self) -> String {
        match self {
            ApiError::Daemon { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

fn transport(e: impl std::fmt::Display) -> ApiError {
    ApiError::Transport(e.to_string())
}

/// An Engine API client bound to one host.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    socket: PathBuf,
    autostart: bool,
    negotiate: bool,
    /// The negotiated version, once `/_ping` answered.
    version: Arc<Mutex<Option<String>>>,
}

/// The empty body.
pub fn empty() -> ReqBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A JSON body from any serializable value: a typed `berth_api` request or a `Json`.
pub fn json_body<B: Serialize + ?Sized>(v: &B) -> Result<ReqBody, ApiError> {
    let bytes = serde_json::to_vec(v).map_err(transport)?;
    Ok(Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed())
}

/// No request body, for [`Client::call`], [`Client::json`] and [`Client::hijack`].
pub const NO_BODY: Option<&Json> = None;

/// Decodes a JSON answer into `R` (an empty body reads as `null`).
fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<R, ApiError> {
    let bytes = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        b"null"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(transport)
}

/// A body streamed from a reader, chunk by chunk, never buffered whole.
pub fn stream_body<R: tokio::io::AsyncRead + Unpin + Send + Sync + 'static>(reader: R) -> ReqBody {
    let stream = futures_util::stream::unfold(reader, |mut r| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    });
    BodyExt::boxed(StreamBody::new(stream))
}

/// Builds `?k=v&…` with form encoding; empty when there are no pairs.
pub fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    format!("?{}", s.finish())
}

/// Escapes a name or ID for use as one path segment (keeps `:` and `/` like Docker's client).
pub fn seg(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'?')
        .add(b'#')
        .add(b'%')
        .add(b'"');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

static DAEMON_SPAWNED: AtomicBool = AtomicBool::new(false);

impl Client {
    /// A client for `host` (`unix:///path`), else `DOCKER_HOST`/`BERTH_HOST`, else the
    /// default socket. It never starts a daemon and does not negotiate the API version
    /// unless asked ([`Client::start_daemon_if_silent`], [`Client::negotiating`]).
    pub fn new(host: Option<String>) -> Result<Client, ApiError> {
        let host = host
            .or_else(crate::context::env_host)
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let Some(path) = host.strip_prefix("unix://") else {
            return Err(ApiError::Transport(format!(
                "unable to parse docker host `{host}`: only unix:// hosts are supported"
            )));
        };
        Ok(Client {
            autostart: false,
            negotiate: false,
            version: Arc::default(),
            socket: PathBuf::from(path),
            host,
        })
    }

    /// The host this client talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Starts `berth daemon` when nothing answers on the default socket (what the user
    /// asked for with `--start-daemon`); refused for any other host.
    pub fn start_daemon_if_silent(mut self, yes: bool) -> Result<Client, ApiError> {
        if yes && self.host != DEFAULT_HOST {
            return Err(ApiError::Transport(format!(
                "--start-daemon starts a daemon on the default socket {DEFAULT_HOST} only, not on {}",
                self.host
            )));
        }
        self.autostart = yes;
        Ok(self)
    }

    /// Negotiates the API version with `/_ping` before the first request, as the Docker
    /// CLI does (not when `DOCKER_API_VERSION` pins it).
    pub fn negotiating(mut self) -> Client {
        self.negotiate = true;
        self
    }

    /// The API version requests use: pinned, negotiated (pinging once), or ours.
    pub async fn api_version(&self) -> Result<String, ApiError> {
        if let Some(v) = env_api_version() {
            return Ok(v);
        }
        if !self.negotiate {
            return Ok(API_PREFIX.trim_start_matches("/v").to_string());
        }
        if let Some(v) = self.version.lock().ok().and_then(|g| g.clone()) {
            return Ok(v);
        }
        let mut sender = self.connect().await?;
        let req = Request::get("/_ping")
            .header("Host", "berth")
            .header("User-Agent", "Berth-Client/0.1.0")
            .body(empty())
            .map_err(transport)?;
        let server = match sender.send_request(req).await {
            Ok(res) => res
                .headers()
                .get("API-Version")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            Err(_) => None,
        };
        let v = negotiated(server.as_deref());
        if let Ok(mut g) = self.version.lock() {
            *g = Some(v.clone());
        }
        Ok(v)
    }

    async fn connect(&self) -> Result<SendRequest<ReqBody>, ApiError> {
        let stream = match UnixStream::connect(&self.socket).await {
            Ok(s) => s,
            Err(_) if self.autostart => {
                if !DAEMON_SPAWNED.load(Ordering::SeqCst) {
                    eprintln!(
                        "berth: no daemon answers at {}; starting `berth daemon` (--start-daemon; log: {DAEMON_LOG})",
                        self.host
                    );
                }
                self.start_daemon().await?
            }
            Err(_) => return Err(ApiError::Connect(self.host.clone())),
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(transport)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    /// Starts `berth daemon` in its own session and waits up to 10 s for `/_ping`. A lock
    /// file next to the socket makes concurrent CLIs start one daemon, not several.
    async fn start_daemon(&self) -> Result<UnixStream, ApiError> {
        let connect_err = || ApiError::Connect(self.host.clone());
        let dir = self
            .socket
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/run/berth"));
        std::fs::create_dir_all(&dir).map_err(|_| connect_err())?;
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(dir.join("autostart.lock"))
            .map_err(|_| connect_err())?;
        let lock = tokio::task::spawn_blocking(move || {
            nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive).ok()
        })
        .await
        .ok()
        .flatten();
        // Another CLI may have started it while we waited for the lock.
        if let Ok(s) = UnixStream::connect(&self.socket).await {
            drop(lock);
            return Ok(s);
        }
        if !DAEMON_SPAWNED.swap(true, Ordering::SeqCst) {
            spawn_daemon().map_err(|_| connect_err())?;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if let Ok(s) = UnixStream::connect(&self.socket).await {
                if self.ping_on(s).await {
                    drop(lock);
                    return UnixStream::connect(&self.socket)
                        .await
                        .map_err(|_| connect_err());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(lock);
        Err(connect_err())
    }

    async fn ping_on(&self, s: UnixStream) -> bool {
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake::<_, ReqBody>(TokioIo::new(s)).await
        else {
            return false;
        };
        tokio::spawn(conn);
        let Ok(req) = Request::get("/_ping").header("Host", "berth").body(empty()) else {
            return false;
        };
        matches!(sender.send_request(req).await, Ok(r) if r.status().is_success())
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        content_type: Option<&str>,
    ) -> Result<Request<ReqBody>, ApiError> {
        let uri = if path.starts_with("/_ping") {
            path.to_string()
        } else {
            format!("/v{}{path}", self.api_version().await?)
        };
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "berth")
            .header("User-Agent", "Berth-Client/0.1.0");
        if let Some(ct) = content_type {
            b = b.header("Content-Type", ct);
        }
        b.body(body).map_err(transport)
    }

    /// Sends a request and returns the response when it is a success; a non-2xx answer
    /// becomes [`ApiError::Daemon`] with the daemon's message.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        content_type: Option<&str>,
    ) -> Result<http::Response<Incoming>, ApiError> {
        let req = self.request(method, path, body, content_type).await?;
        let mut sender = self.connect().await?;
        let res = sender.send_request(req).await.map_err(transport)?;
        check(res).await
    }

    /// Like [`Client::send`], with extra request headers (`X-Registry-Auth`).
    pub async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<http::Response<Incoming>, ApiError> {
        let mut req = self.request(method, path, body, content_type).await?;
        let mut sender = self.connect().await?;
        for (k, v) in headers {
            let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(transport)?;
            let value = http::HeaderValue::from_str(v).map_err(transport)?;
            req.headers_mut().insert(name, value);
        }
        let res = sender.send_request(req).await.map_err(transport)?;
        check(res).await
    }

    /// Sends a request with an optional JSON body and returns the whole response body.
    pub async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Bytes, ApiError> {
        let (b, ct) = match body {
            Some(j) => (json_body(j)?, Some("application/json")),
            None => (empty(), None),
        };
        let res = self.send(method, path, b, ct).await?;
        Ok(res
            .into_body()
            .collect()
            .await
            .map_err(transport)?
            .to_bytes())
    }

    /// Like [`Client::call`], decoding the JSON answer into `R`, a `berth_api` response
    /// type (`null` for an empty body).
    pub async fn typed<R: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ApiError> {
        decode(&self.call(method, path, body).await?)
    }

    /// [`Client::typed`] for answers kept as JSON values: those a `--format` template
    /// or `inspect` prints as they came.
    pub async fn json<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Json, ApiError> {
        self.typed(method, path, body).await
    }

    /// `GET path` decoded as JSON.
    pub async fn get(&self, path: &str) -> Result<Json, ApiError> {
        self.get_as(path).await
    }

    /// `GET path` decoded into `R`.
    pub async fn get_as<R: DeserializeOwned>(&self, path: &str) -> Result<R, ApiError> {
        self.typed(Method::GET, path, NO_BODY).await
    }

    /// Hijacks the connection (`Connection: Upgrade`, `Upgrade: tcp`, expects 101) and
    /// returns the raw bidirectional stream.
    pub async fn hijack<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>, ApiError> {
        let (b, ct) = match body {
            Some(j) => (json_body(j)?, Some("application/json")),
            None => (empty(), Some("text/plain")),
        };
        let mut req = self.request(Method::POST, path, b, ct).await?;
        let mut sender = self.connect().await?;
        req.headers_mut()
            .insert("Connection", http::HeaderValue::from_static("Upgrade"));
        req.headers_mut()
            .insert("Upgrade", http::HeaderValue::from_static("tcp"));
        let res = sender.send_request(req).await.map_err(transport)?;
        if res.status() != StatusCode::SWITCHING_PROTOCOLS {
            let res = check(res).await?;
            return Err(ApiError::Transport(format!(
                "unable to upgrade to tcp, received {}",
                res.status().as_u16()
            )));
        }
        let upgraded = hyper::upgrade::on(res).await.map_err(transport)?;
        Ok(TokioIo::new(upgraded))
    }
}

async fn check(res: http::Response<Incoming>) -> Result<http::Response<Incoming>, ApiError> {
    let status = res.status();
    if status.is_success()
        || status == StatusCode::SWITCHING_PROTOCOLS
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(res);
    }
    let bytes = res
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<Json>(&bytes)
        .ok()
        .and_then(|j| {
            j.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
    Err(ApiError::Daemon {
        status: status.as_u16(),
        message,
    })
}

/// Reads a response body chunk by chunk.
pub async fn for_each_chunk(
    res: http::Response<Incoming>,
    mut f: impl FnMut(&[u8]),
) -> Result<(), ApiError> {
    let mut body = res.into_body().into_data_stream();
    while let Some(chunk) = body.next().await {
        f(&chunk.map_err(transport)?);
    }
    Ok(())
}

fn spawn_daemon() -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    if let Some(dir) = std::path::Path::new(DAEMON_LOG).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(DAEMON_LOG)?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("daemon")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_form_encoded() {
        assert_eq!(query(&[]), "");
        assert_eq!(
            query(&[("repo", "imported:v1".into()), ("fromSrc", "-".into())]),
            "?repo=imported%3Av1&fromSrc=-"
        );
        assert_eq!(seg("busybox:latest"), "busybox:latest");
        assert_eq!(seg("a b"), "a%20b");
    }

    #[test]
    fn negotiation_takes_the_older_version() {
        assert_eq!(negotiated(Some("1.41")), "1.41");
        assert_eq!(negotiated(Some("1.9")), "1.9");
        assert_eq!(negotiated(Some("1.99")), "1.45");
        assert_eq!(negotiated(None), "1.24");
        assert!(version_less("1.9", "1.24"));
    }

    #[tokio::test]
    async fn negotiating_client_pings_once_and_uses_the_servers_version() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let heads = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
        let h2 = heads.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut s, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read(&mut b).await.unwrap_or(0) == 0 {
                        break;
                    }
                    head.push(b[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                h2.lock().unwrap().push(line);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nAPI-Version: 1.41\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}").await;
            }
        });
        let c = Client::new(Some(format!("unix://{}", sock.display())))
            .unwrap()
            .negotiating();
        c.get("/info").await.unwrap();
        c.get("/version").await.unwrap();
        let heads = heads.lock().unwrap().clone();
        assert_eq!(
            heads,
            vec![
                "GET /_ping HTTP/1.1".to_string(),
                "GET /v1.41/info HTTP/1.1".to_string(),
                "GET /v1.41/version HTTP/1.1".to_string()
            ]
        );
    }

    #[test]
    fn hosts() {
        let c = Client::new(Some("unix:///tmp/x.sock".into())).unwrap();
        assert!(!c.autostart);
        assert_eq!(c.socket, PathBuf::from("/tmp/x.sock"));
        assert!(Client::new(Some("tcp://1.2.3.4:2375".into())).is_err());
        assert_eq!(
            ApiError::Connect("unix:///tmp/x.sock".into()).to_string(),
            "Cannot connect to the Docker daemon at unix:///tmp/x.sock. Is the docker daemon running?"
        );
    }

    /// A one-connection server that reads a request head and answers with `reply`, then
    /// (for a hijack) echoes what the client sends inside one stdout frame.
    async fn serve_once(
        path: std::path::PathBuf,
        reply: &'static str,
        echo: bool,
    ) -> tokio::task::JoinHandle<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if s.read(&mut b).await.unwrap() == 0 {
                    break;
                }
                head.push(b[0]);
            }
            s.write_all(reply.as_bytes()).await.unwrap();
            if echo {
                let mut input = Vec::new();
                s.read_to_end(&mut input).await.unwrap();
                let mut frame = vec![1u8, 0, 0, 0];
                frame.extend_from_slice(&(input.len() as u32).to_be_bytes());
                frame.extend_from_slice(&input);
                s.write_all(&frame).await.unwrap();
            }
            String::from_utf8_lossy(&head).into_owned()
        })
    }

    #[tokio::test]
    async fn daemon_errors_carry_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let body = r#"{"message":"No such container: nope"}"#;
        let reply: &'static str = Box::leak(
            format!("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_boxed_str(),
        );
        let server = serve_once(sock.clone(), reply, false).await;
        let c = Client::new(Some(format!("unix://{}", sock.display()))).unwrap();
        let err = c.get("/containers/nope/json").await.unwrap_err();
        assert_eq!(err.status(), 404);
        assert_eq!(
            err.to_string(),
            "Error response from daemon: No such container: nope"
        );
        let head = server.await.unwrap();
        assert!(
            head.starts_with("GET /v1.45/containers/nope/json HTTP/1.1\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn hijack_upgrades_and_half_closes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let server = serve_once(
            sock.clone(),
            "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
            true,
        )
        .await;
        let c = Client::new(Some(format!("unix://{}", sock.display()))).unwrap();
        let io = c
            .hijack("/containers/x/attach?stream=1&stdin=1", NO_BODY)
            .await
            .unwrap();
        let (mut r, mut w) = tokio::io::split(io);
        w.write_all(b"ping").await.unwrap();
        w.shutdown().await.unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        let mut d = crate::stream::Demuxer::default();
        assert_eq!(
            d.push(&out),
            vec![crate::stream::Chunk::Stdout(b"ping".to_vec())]
        );
        let head = server.await.unwrap();
        assert!(
            head.contains("upgrade: tcp") || head.contains("Upgrade: tcp"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn dead_socket_is_docker_connect_error() {
        let c = Client::new(Some("unix:///nonexistent/berth.sock".into())).unwrap();
        let err = c.get("/info").await.unwrap_err();
        assert_eq!(err.to_string(), "Cannot connect to the Docker daemon at unix:///nonexistent/berth.sock. Is the docker daemon running?");
    }
}
