//! The registry client: endpoints, pings, authenticated requests, manifest resolution,
//! tag listing and login.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::AuthConfig;
use berth_image::Reference;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{Method, RequestBuilder, Response};

use crate::auth::{basic_header, Challenge, TokenCache};
use crate::endpoint::{Endpoint, Endpoints, RegistryConfig, Security};
use crate::error::{transport_error, ApiError};
use crate::hosts::Purpose;
use crate::manifest::Descriptor;
use crate::RegistryError;

mod login;
mod manifests;

/// Largest manifest accepted (containerd's limit).
const MAX_MANIFEST_SIZE: usize = 4 << 20;
const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

/// A distribution API client, shared by all pulls and pushes (cheap to clone).
#[derive(Clone)]
pub struct RegistryClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) endpoints: Endpoints,
    certs_dir: Option<std::path::PathBuf>,
    /// HTTPS with webpki roots.
    verified: reqwest::Client,
    /// HTTPS without verification (insecure registries) and plain HTTP.
    unverified: reqwest::Client,
    /// Hosts with CAs in `certs_dir`: their own verified client.
    with_ca: Mutex<HashMap<String, reqwest::Client>>,
    /// The scheme that worked for a host (`https`/`http`), so it is probed once.
    pub(crate) schemes: Mutex<HashMap<String, String>>,
    /// The challenge a base URL answered its `/v2/` ping with (`None`: no auth needed).
    pings: Mutex<HashMap<String, Option<Challenge>>>,
    pub(crate) tokens: TokenCache,
    /// Blobs up to this size are uploaded in one PUT, larger ones in PATCH chunks.
    pub(crate) upload_threshold: AtomicU64,
    pub(crate) upload_chunk: AtomicU64,
    /// First delay between blob download retries (doubles each time).
    pub(crate) retry_delay_ms: AtomicU64,
}

/// A repository at a resolved endpoint, with the credentials and scope to use there.
/// (`Debug` leaves the credentials out.)
#[derive(Clone)]
pub struct Repository {
    domain: String,
    name: String,
    /// `scheme://host[:port][/prefix]`, no trailing slash.
    pub(crate) base: String,
    pub(crate) security: Security,
    pub(crate) host: String,
    pub(crate) mirror: bool,
    pub(crate) auth: Option<AuthConfig>,
    /// `pull` or `pull,push`.
    pub(crate) actions: &'static str,
    pub(crate) challenge: Option<Challenge>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("domain", &self.domain)
            .field("name", &self.name)
            .field("base", &self.base)
            .field("mirror", &self.mirror)
            .field("actions", &self.actions)
            .field("authenticated", &self.auth.is_some())
            .finish()
    }
}

impl Repository {
    /// The repository path at the registry: `library/busybox`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The reference's domain: `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// The base URL requests go to: `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    pub fn endpoint_url(&self) -> &str {
        &self.base
    }
    /// True when this is a Docker Hub mirror.
    pub fn is_mirror(&self) -> bool {
        self.mirror
    }

    pub(crate) fn url(&self, tail: &str) -> Result<url::Url, RegistryError> {
        let s = format!("{}/v2/{}/{}", self.base, self.name, tail);
        url::Url::parse(&s)
            .map_err(|e| RegistryError::InvalidArgument(format!("invalid URL {s}: {e}")))
    }

    fn scopes(&self, extra: &[String]) -> Vec<String> {
        let mut v = vec![format!("repository:{}:{}", self.name, self.actions)];
        v.extend(extra.iter().cloned());
        v
    }
}

/// A tag or digest resolved to one platform's image manifest.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    pub repository: Repository,
    /// What the reference points at (the index digest for a manifest list): the RepoDigest.
    pub digest: String,
    /// The platform's image manifest.
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub manifest_bytes: Bytes,
    /// The manifest list / index, when the reference named one.
    pub index_bytes: Option<Bytes>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

fn build_http(
    insecure: bool,
    extra_ca: &[reqwest::Certificate],
) -> Result<reqwest::Client, RegistryError> {
    let mut b = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(16)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .danger_accept_invalid_certs(insecure);
    for ca in extra_ca {
        b = b.add_root_certificate(ca.clone());
    }
    b.build()
        .map_err(|e| RegistryError::Io(format!("cannot create HTTP client: {e}")))
}

/// What a pull of `reference` failed with, in dockerd's words (`translatePullError`).
fn pull_error(api: ApiError, reference: &Reference, mirror: bool) -> RegistryError {
    let name = reference.familiar_name();
    let denied = |text: &str| {
        RegistryError::NotFound(format!(
            "pull access denied for {name}, repository does not exist or may require 'docker login': {text}"
        ))
    };
    match api.code() {
        "DENIED" => denied(&api.text),
        // A mirror that lacks a name: Docker Hub would have answered "denied" (dockerd
        // would fall back to Hub; Berth does not, see the crate docs).
        "NAME_UNKNOWN" if mirror => denied("denied: requested access to the resource is denied"),
        "NAME_UNKNOWN" => {
            RegistryError::NotFound(format!("repository {name} not found: {}", api.text))
        }
        "MANIFEST_UNKNOWN" => RegistryError::NotFound(format!(
            "manifest for {} not found: {}",
            reference.familiar_string(),
            api.text
        )),
        "UNAUTHORIZED" => RegistryError::Unauthorized(api.text),
        _ if api.status == 404 => RegistryError::NotFound(format!(
            "manifest for {} not found: {}",
            reference.familiar_string(),
            api.text
        )),
        _ => RegistryError::Registry(api.text),
    }
}

/// The answer of a request that did not succeed, read whole (error bodies are small).
pub(crate) async fn api_error(resp: Response) -> ApiError {
    let status = resp.status().as_u16();
    let www = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_capped(resp, 64 << 10).await.unwrap_or_default();
    ApiError::from_response(status, www.as_deref(), &body)
}

/// Reads a body up to `max` bytes (more is an error; a registry answer that large is bogus).
async fn read_capped(resp: Response, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if out.len() + chunk.len() > max {
            return Err(format!("response larger than {max} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

impl RegistryClient {
    /// A client for `config` (mirrors and insecure registries validated here).
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        // reqwest's rustls uses the ring provider; make it the process default too so a
        // second rustls user in the process agrees.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoints = Endpoints::new(&config)?;
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                endpoints,
                certs_dir: config.certs_dir.clone(),
                verified: build_http(false, &[])?,
                unverified: build_http(true, &[])?,
                with_ca: Mutex::new(HashMap::new()),
                schemes: Mutex::new(HashMap::new()),
                pings: Mutex::new(HashMap::new()),
                tokens: TokenCache::default(),
                upload_threshold: AtomicU64::new(32 << 20),
                upload_chunk: AtomicU64::new(16 << 20),
                retry_delay_ms: AtomicU64::new(200),
            }),
        })
    }

    /// Blobs up to `threshold` bytes go up in one PUT; larger ones in PATCH chunks of
    /// `chunk` bytes. Defaults: 32 MiB and 16 MiB.
    pub fn set_upload_chunking(&self, threshold: u64, chunk: u64) {
        self.inner
            .upload_threshold
            .store(threshold, Ordering::Relaxed);
        self.inner
            .upload_chunk
            .store(chunk.max(1), Ordering::Relaxed);
    }

    /// The first delay between retries of a dropped blob download (doubles each time).
    pub fn set_retry_delay(&self, delay: Duration) {
        self.inner
            .retry_delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// How many tokens were fetched from token servers (cached tokens are not counted).
    pub fn token_fetches(&self) -> u64 {
        self.inner.tokens.fetch_count()
    }

    /// The HTTP client for a host: unverified for insecure hosts, with certs_dir CAs when
    /// that host has any, else webpki roots.
    pub(crate) fn http_for(&self, host: &str, security: Security) -> reqwest::Client {
        if security == Security::Insecure {
            return self.inner.unverified.clone();
        }
        let Some(dir) = &self.inner.certs_dir else {
            return self.inner.verified.clone();
        };
        if let Ok(map) = self.inner.with_ca.lock() {
            if let Some(c) = map.get(host) {
                return c.clone();
            }
        }
        let cas: Vec<reqwest::Certificate> = std::fs::read_dir(dir.join(host))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "crt"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|pem| reqwest::Certificate::from_pem(&pem).ok())
            .collect();
        let client = if cas.is_empty() {
            self.inner.verified.clone()
        } else {
            build_http(false, &cas).unwrap_or_else(|_| self.inner.verified.clone())
        };
        if let Ok(mut map) = self.inner.with_ca.lock() {
            map.insert(host.to_string(), client.clone());
        }
        client
    }

    /// Candidate base URLs for an endpoint: its fixed or remembered scheme, else HTTPS and,
    /// for insecure hosts, plain HTTP after it.
    fn bases(&self, ep: &Endpoint) -> Vec<String> {
        let known = self
            .inner
            .schemes
            .lock()
            .ok()
            .and_then(|m| m.get(&ep.host).cloned());
        let schemes: Vec<String> = match (&ep.scheme, known) {
            (Some(s), _) => vec![s.clone()],
            (None, Some(s)) => vec![s],
            (None, None) if ep.security == Security::Insecure => {
                vec!["https".into(), "http".into()]
            }
            (None, None) => vec!["https".into()],
        };
        schemes
            .into_iter()
            .map(|s| format!("{s}://{}{}", ep.host, ep.prefix))
            .collect()
    }

    /// `GET /v2/` at `base`: the challenge (if any). Transport failures are errors.
    async fn ping(
        &self,
        base: &str,
        host: &str,
        security: Security,
    ) -> Result<Option<Challenge>, RegistryError> {
        if let Some(c) = self
            .inner
            .pings
            .lock()
            .ok()
            .and_then(|m| m.get(base).cloned())
        {
            return Ok(c);
        }
        let url = url::Url::parse(&format!("{base}/v2/")).map_err(|e| {
            RegistryError::InvalidArgument(format!("invalid registry address {base}: {e}"))
        })?;
        let resp = self
            .http_for(host, security)
            .get(url.clone())
            .send()
            .await
            .map_err(|e| transport_error(&Method::GET, &url, &e))?;
        let challenge = if resp.status().as_u16() == 401 {
            resp.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .and_then(Challenge::parse)
        } else {
            None
        };
        if let Ok(mut m) = self.inner.pings.lock() {
            m.insert(base.to_string(), challenge.clone());
        }
        Ok(challenge)
    }

    /// Finds a working scheme for `ep` and pings it; remembers the scheme for the host.
    /// dockerd's `isSecureIndex` for host names: a name that resolves to a loopback
    /// address or into an insecure CIDR is insecure too (Docker Hub is never looked up).
    async fn with_resolved_security(&self, mut ep: Endpoint) -> Endpoint {
        let (host, port) = crate::endpoint::split_host_port(&ep.host);
        if ep.security == Security::Insecure
            || ep.host == crate::endpoint::DOCKER_HUB_REGISTRY
            || host.parse::<std::net::IpAddr>().is_ok()
        {
            return ep;
        }
        let port: u16 = port.and_then(|p| p.parse().ok()).unwrap_or(443);
        let lookup = tokio::net::lookup_host((host.to_string(), port));
        if let Ok(Ok(addrs)) = tokio::time::timeout(Duration::from_secs(3), lookup).await {
            let ips: Vec<std::net::IpAddr> = addrs.map(|a| a.ip()).collect();
            if self.inner.endpoints.ips_allow_insecure(&ips) {
                ep.security = Security::Insecure;
            }
        }
        ep
    }

    async fn open_endpoint(
        &self,
        ep: &Endpoint,
    ) -> Result<(String, Option<Challenge>), RegistryError> {
        let mut last = None;
        for base in self.bases(ep) {
            match self.ping(&base, &ep.host, ep.security).await {
                Ok(ch) => {
                    if ep.scheme.is_none() {
                        let scheme = base.split("://").next().unwrap_or("https").to_string();
                        if let Ok(mut m) = self.inner.schemes.lock() {
                            m.insert(ep.host.clone(), scheme);
                        }
                    }
                    return Ok((base, ch));
                }
                Err(e) if e.is_unreachable() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last
            .unwrap_or_else(|| RegistryError::Unreachable(format!("no endpoint for {}", ep.host))))
    }

    async fn open_repository(
        &self,
        domain: &str,
        name: &str,
        ep: &Endpoint,
        auth: Option<&AuthConfig>,
        actions: &'static str,
    ) -> Result<Repository, RegistryError> {
        let ep = &self.with_resolved_security(ep.clone()).await;
        let (base, challenge) = self.open_endpoint(ep).await?;
        Ok(Repository {
            domain: domain.to_string(),
            name: name.to_string(),
            base,
            security: ep.security,
            host: ep.host.clone(),
            mirror: ep.mirror,
            auth: auth.cloned(),
            actions,
            challenge,
        })
    }

    /// The `Authorization` value for a request to `repo` (None: send none).
    pub(crate) async fn authorization(
        &self,
        repo: &Repository,
        extra_scopes: &[String],
    ) -> Result<Option<String>, RegistryError> {
        if let Some(a) = &repo.auth {
            if !a.registry_token.is_empty() {
                return Ok(Some(format!("Bearer {}", a.registry_token)));
            }
        }
        let Some(ch) = &repo.challenge else {
            return Ok(None);
        };
        match ch.scheme.as_str() {
            "bearer" => {
                let http = self.http_for(&repo.host, repo.security);
                let token = self
                    .inner
                    .tokens
                    .token(&http, ch, repo.auth.as_ref(), &repo.scopes(extra_scopes))
                    .await?;
                Ok(Some(format!("Bearer {token}")))
            }
            "basic" => Ok(repo
                .auth
                .as_ref()
                .and_then(AuthConfig::credentials)
                .map(|(u, p)| basic_header(&u, &p))),
            _ => Ok(None),
        }
    }

    /// Sends an authenticated request. `build` makes the request (called again for one
    /// retry when a cached token was refused or the registry asked for auth the ping did
    /// not announce). Transport failures come back in Go's words.
    pub(crate) async fn send(
        &self,
        repo: &Repository,
        method: Method,
        url: &url::Url,
        extra_scopes: &[String],
        build: &(dyn Fn(RequestBuilder) -> RequestBuilder + Send + Sync),
    ) -> Result<Response, RegistryError> {
        let mut repo = std::borrow::Cow::Borrowed(repo);
        let http = self.http_for(&repo.host, repo.security);
        let mut retried = false;
        loop {
            let mut req = build(http.request(method.clone(), url.clone()));
            // Failures to authenticate happen inside Go's round tripper, so dockerd shows
            // them as errors of the request: `Get "URL": unauthorized: ...`.
            let in_request = |text: &str| {
                RegistryError::Unauthorized(format!(
                    "{} \"{url}\": {text}",
                    crate::error::go_op(&method)
                ))
            };
            let basic_without_credentials =
                repo.challenge.as_ref().is_some_and(|c| c.scheme == "basic")
                    && repo
                        .auth
                        .as_ref()
                        .and_then(AuthConfig::credentials)
                        .is_none();
            if basic_without_credentials {
                return Err(in_request("no basic auth credentials"));
            }
            match self.authorization(&repo, extra_scopes).await {
                Ok(Some(authz)) => req = req.header("Authorization", authz),
                Ok(None) => {}
                Err(RegistryError::Unauthorized(text)) => return Err(in_request(&text)),
                Err(e) => return Err(e),
            }
            let resp = req
                .send()
                .await
                .map_err(|e| transport_error(&method, url, &e))?;
            if resp.status().as_u16() != 401 || retried {
                return Ok(resp);
            }
            retried = true;
            let offered = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .and_then(Challenge::parse);
            match (&repo.challenge, offered) {
                // A refused cached token: fetch a fresh one, unless the registry says
                // the scope is not granted (a fresh token would not help).
                (Some(old), Some(new)) if old.scheme == "bearer" && new.scheme == "bearer" => {
                    if new.param("error") == Some("insufficient_scope") {
                        return Ok(resp);
                    }
                    self.inner.tokens.invalidate(
                        old,
                        repo.auth.as_ref(),
                        &repo.scopes(extra_scopes),
                    );
                }
                (None, Some(new)) => repo.to_mut().challenge = Some(new),
                _ => return Ok(resp),
            }
        }
    }

    /// The repository to push `reference` to: the registry itself (never a mirror), with
    /// `pull,push` scope.
    pub async fn repository_for_push(
        &self,
        reference: &Reference,
        auth: Option<&AuthConfig>,
    ) -> Result<Repository, RegistryError> {
        let ep = self
            .inner
            .endpoints
            .endpoints_for(reference.domain(), Purpose::Push)?
            .remove(0);
        self.open_repository(reference.domain(), reference.path(), &ep, auth, "pull,push")
            .await
    }

    /// The repository to pull from, without resolving anything (for `pull -a`'s tag list).
    pub async fn repository_for_pull(
        &self,
        reference: &Reference,
        auth: Option<&AuthConfig>,
    ) -> Result<Repository, RegistryError> {
        let mut last = None;
        for ep in self
            .inner
            .endpoints
            .endpoints_for(reference.domain(), Purpose::Resolve)?
        {
            let ep_auth = if ep.mirror { None } else { auth };
            match self
                .open_repository(reference.domain(), reference.path(), &ep, ep_auth, "pull")
                .await
            {
                Ok(r) => return Ok(r),
                Err(e) if e.is_unreachable() && ep.mirror => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::Unreachable("no registry endpoint".into())))
    }

    #[allow(dead_code)]
    pub(crate) fn certs_dir(&self) -> Option<&Path> {
        self.inner.certs_dir.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_errors_in_dockers_words() {
        let r = Reference::parse_normalized("nope:v1").unwrap();
        let api = |code: &str, msg: &str| {
            ApiError::from_response(
                404,
                None,
                format!(r#"{{"errors":[{{"code":"{code}","message":"{msg}"}}]}}"#).as_bytes(),
            )
        };
        assert_eq!(
            pull_error(api("MANIFEST_UNKNOWN", "manifest unknown"), &r, false).to_string(),
            "manifest for nope:v1 not found: manifest unknown: manifest unknown"
        );
        assert_eq!(
            pull_error(
                api("NAME_UNKNOWN", "repository name not known to registry"),
                &r,
                false
            )
            .to_string(),
            "repository nope not found: name unknown: repository name not known to registry"
        );
        let e = pull_error(
            api("NAME_UNKNOWN", "repository name not known to registry"),
            &r,
            true,
        );
        assert_eq!(
            e.to_string(),
            "pull access denied for nope, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
        );
        assert_eq!(e.kind(), berth_api::ErrorKind::NotFound);
    }
}
