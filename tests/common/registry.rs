//! A real registry for pull and push tests: Debian's `docker-registry` (distribution 2.8)
//! on 127.0.0.1 with storage in a temp dir — open, behind htpasswd Basic auth, or behind
//! the small Bearer token server below. Dropping a [`TestRegistry`] stops everything it
//! started and removes its files, also when the test panics.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Debian's registry binary (installed by scripts/setup).
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Who may use the registry.
#[derive(Clone, Debug)]
pub enum RegistryAuth {
    Open,
    /// htpasswd (bcrypt) Basic auth for one user.
    Basic {
        user: String,
        password: String,
    },
    /// Bearer tokens from [`TokenServer`], which hands them to this user only.
    Token {
        user: String,
        password: String,
    },
}

pub struct TestRegistry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub dir: tempfile::TempDir,
    child: Child,
    pub token_server: Option<TokenServer>,
}

impl TestRegistry {
    /// Starts a registry on 127.0.0.1 (a free port); returns once `/v2/` answers.
    pub fn start(auth: RegistryAuth) -> TestRegistry {
        Self::start_on("127.0.0.1", auth)
    }

    /// Starts a registry listening on `ip` (127.0.0.1 or an address of Berth's own bridge).
    pub fn start_on(ip: &str, auth: RegistryAuth) -> TestRegistry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: run scripts/setup (Debian package docker-registry)"
        );
        let dir = tempfile::Builder::new()
            .prefix("be2e-registry-")
            .tempdir()
            .expect("temp dir");
        let mut token_server = None;
        let auth_yaml = match &auth {
            RegistryAuth::Open => String::new(),
            RegistryAuth::Basic { user, password } => {
                let file = dir.path().join("htpasswd");
                let hash = bcrypt::hash(password, 5).expect("bcrypt");
                std::fs::write(&file, format!("{user}:{hash}\n")).expect("htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                    file.display()
                )
            }
            RegistryAuth::Token { user, password } => {
                let server = TokenServer::start(dir.path(), user, password);
                let yaml = format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    server.addr,
                    server.cert_pem.display()
                );
                token_server = Some(server);
                yaml
            }
        };
        // The free port is free when chosen, not when the registry binds it: a test
        // running beside this one may take it first. Then this registry exits and
        // another port is tried (a plain connect would find the other test's server).
        for _ in 0..5 {
            let addr = format!("{ip}:{}", free_port(ip));
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: berth-tests\n{auth_yaml}",
                dir.path().join("data").display()
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).expect("registry config");
            let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("starting docker-registry");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if child.try_wait().expect("registry status").is_some() {
                    break; // lost the port: try another
                }
                if answers_as_registry(&addr) {
                    return TestRegistry {
                        addr,
                        dir,
                        child,
                        token_server,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(dir.path().join("registry.log"));
                    panic!("docker-registry did not answer on {addr}: {log:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let log = std::fs::read_to_string(dir.path().join("registry.log"));
        panic!("docker-registry found no free port in 5 tries: {log:?}");
    }

    /// The registry's own log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many tokens the token server handed out.
    pub fn tokens_issued(&self) -> usize {
        self.token_server
            .as_ref()
            .map_or(0, |t| t.issued.load(Ordering::SeqCst))
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a docker-registry answers `GET /v2/` on `addr` (any status: 401 behind auth;
/// the API version header tells it from another test's server on a reused port).
fn answers_as_registry(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut raw = Vec::new();
    if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: registry\r\n\r\n")
        .and_then(|()| s.read_to_end(&mut raw))
        .is_err()
    {
        return false;
    }
    super::parse_http_response(&raw).is_ok_and(|(_, headers, _)| {
        headers
            .iter()
            .any(|(k, v)| k == "docker-distribution-api-version" && v == "registry/2.0")
    })
}

fn free_port(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).expect("binding a free port");
    l.local_addr().expect("local addr").port()
}

const SERVICE: &str = "berth-test-registry";
const ISSUER: &str = "berth-test-issuer";

/// A Bearer token server for the registry's `token` auth: `GET /token?service=&scope=`
/// with Basic credentials answers a JWT (RS256, the signing certificate in `x5c`) that
/// grants the scopes asked for; an anonymous request gets a token granting nothing and
/// wrong credentials a 401, as Docker Hub's token server does.
pub struct TokenServer {
    pub addr: String,
    pub cert_pem: PathBuf,
    pub issued: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TokenServer {
    fn start(dir: &Path, user: &str, password: &str) -> TokenServer {
        let key = dir.join("token-key.pem");
        let cert_pem = dir.join("token-cert.pem");
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=berth-test-token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert_pem)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl (scripts/setup installs it)");
        assert!(status.success(), "openssl req failed");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert_pem)
            .output()
            .expect("openssl x509");
        let x5c = b64_std(&der.stdout);
        let listener = TcpListener::bind("127.0.0.1:0").expect("token server port");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let issued = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let expected = format!("Basic {}", b64_std(format!("{user}:{password}").as_bytes()));
        let (issued2, stop2, user) = (issued.clone(), stop.clone(), user.to_string());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = serve_token(conn, &key, &x5c, &expected, &user, &issued2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TokenServer {
            addr,
            cert_pem,
            issued,
            stop,
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_token(
    mut conn: TcpStream,
    key: &Path,
    x5c: &str,
    expected_auth: &str,
    user: &str,
    issued: &AtomicUsize,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorized = false;
    let mut sent_credentials = false;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "authorization" => {
                sent_credentials = true;
                authorized = value.trim() == expected_auth;
            }
            "content-length" => content_length = value.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    if sent_credentials && !authorized {
        let body = r#"{"details":"incorrect username or password"}"#;
        return write!(
            conn,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let scopes: Vec<String> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(percent_decode)
        .collect();
    let access: Vec<serde_json::Value> = if authorized {
        scopes
            .iter()
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect()
    } else {
        Vec::new()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": if authorized { user } else { "" }, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", issued.load(Ordering::SeqCst)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64_url(header.to_string().as_bytes()),
        b64_url(claims.to_string().as_bytes())
    );
    let mut sign = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    sign.stdin
        .take()
        .expect("stdin")
        .write_all(signing_input.as_bytes())?;
    let signature = sign.wait_with_output()?.stdout;
    let token = format!("{signing_input}.{}", b64_url(&signature));
    issued.fetch_add(1, Ordering::SeqCst);
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn b64_std(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn b64_url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// The `sha256:…` after `digest: ` in push output.
pub fn pushed_digest(out: &str) -> String {
    let at = out
        .find("digest: sha256:")
        .unwrap_or_else(|| panic!("no digest line in push output:\n{out}"));
    out[at + "digest: ".len()..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// An image's ID (`sha256:…`) by name, as pushes and pulls compare them.
pub fn image_id(d: &super::TestDaemon, name: &str) -> String {
    d.berth_ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}
