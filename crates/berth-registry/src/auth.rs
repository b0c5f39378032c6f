//! Registry authentication: `WWW-Authenticate` challenges, the token server exchange
//! (Docker's token spec and the OAuth2 `refresh_token` grant) and a per-scope token cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use berth_api::AuthConfig;
use serde::Deserialize;

use crate::error::{transport_error, ApiError};
use crate::RegistryError;

/// A parsed `WWW-Authenticate` challenge: scheme (lowercase) and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses the first challenge of a header: `Bearer realm="...",service="..."` or
    /// `Basic realm="..."`. Quoted strings may hold commas and `\"` escapes.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = match header.find(char::is_whitespace) {
            Some(i) => (&header[..i], header[i..].trim_start()),
            None => (header, ""),
        };
        if scheme.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        let mut chars = rest.chars().peekable();
        loop {
            while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let mut key = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' || c == ',' || c.is_whitespace() {
                    break;
                }
                key.push(c);
                chars.next();
            }
            if key.is_empty() {
                break;
            }
            while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() != Some(&'=') {
                break;
            }
            chars.next();
            while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
                chars.next();
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' || c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
            params.push((key.to_lowercase(), value));
        }
        Some(Challenge {
            scheme: scheme.to_lowercase(),
            params,
        })
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `Basic base64(user:pass)`.
pub fn basic_header(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenAnswer {
    token: String,
    access_token: String,
    expires_in: u64,
}

/// Tokens cached per (endpoint, credentials, scope), reused until they expire.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    /// One fetch at a time per key: concurrent requests wait for it instead of each
    /// asking the token server.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    fetches: std::sync::atomic::AtomicU64,
}

/// The minimum lifetime the token spec promises when `expires_in` is absent.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// The cache key: realm, service, scopes and who asks (a hash of the credentials, so a
/// different password or refresh token never gets another's token).
fn cache_key(realm: &str, service: &str, auth: Option<&AuthConfig>, scopes: &[String]) -> String {
    use sha2::Digest as _;
    let who = auth
        .map(|a| {
            let (user, pass) = a.credentials().unwrap_or_default();
            let secret = format!("{user}\0{pass}\0{}\0{}", a.identity_token, a.registry_token);
            hex::encode(&sha2::Sha256::digest(secret.as_bytes())[..12])
        })
        .unwrap_or_default();
    format!("{realm}|{service}|{who}|{}", scopes.join(" "))
}

impl TokenCache {
    /// How many tokens were fetched from token servers so far (for tests and debugging).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cached(&self, key: &str) -> Option<String> {
        let map = self.tokens.lock().ok()?;
        let (token, until) = map.get(key)?;
        (Instant::now() < *until).then(|| token.clone())
    }

    /// Makes every cached token expire now (tests).
    #[cfg(test)]
    pub(crate) fn expire_all(&self) {
        if let Ok(mut map) = self.tokens.lock() {
            for (_, until) in map.values_mut() {
                *until = Instant::now();
            }
        }
    }

    /// Forgets a token that the registry refused.
    pub fn invalidate(&self, challenge: &Challenge, auth: Option<&AuthConfig>, scopes: &[String]) {
        let key = cache_key(
            challenge.param("realm").unwrap_or(""),
            challenge.param("service").unwrap_or(""),
            auth,
            scopes,
        );
        if let Ok(mut map) = self.tokens.lock() {
            map.remove(&key);
        }
    }

    /// A bearer token for `scopes` from the challenge's realm: from the cache when still
    /// valid, else fetched. With an `identitytoken`, the OAuth2 `refresh_token` grant
    /// (POST, as Docker does); else a GET with Basic credentials (or anonymous).
    /// `login` asks with `offline_token=true` like `docker login`.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        challenge: &Challenge,
        auth: Option<&AuthConfig>,
        scopes: &[String],
    ) -> Result<String, RegistryError> {
        let realm = challenge.param("realm").unwrap_or("");
        let service = challenge.param("service").unwrap_or("");
        let key = cache_key(realm, service, auth, scopes);
        if let Some(token) = self.cached(&key) {
            return Ok(token);
        }
        let gate = match self.inflight.lock() {
            Ok(mut m) => m.entry(key.clone()).or_default().clone(),
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        };
        let _turn = gate.lock().await;
        if let Some(token) = self.cached(&key) {
            return Ok(token);
        }
        let realm_url = url::Url::parse(realm)
            .map_err(|e| RegistryError::Registry(format!("invalid token realm {realm:?}: {e}")))?;
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let identity = auth
            .map(|a| a.identity_token.as_str())
            .filter(|t| !t.is_empty());
        let (method, request) = if let Some(refresh) = identity {
            let mut form: Vec<(&str, &str)> = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("service", service),
                ("client_id", "docker"),
            ];
            let joined = scopes.join(" ");
            if !joined.is_empty() {
                form.push(("scope", &joined));
            }
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            (
                reqwest::Method::POST,
                http.post(realm_url.clone())
                    .header(
                        "Content-Type",
                        "application/x-www-form-urlencoded; charset=utf-8",
                    )
                    .body(body),
            )
        } else {
            let mut url = realm_url.clone();
            {
                let mut q = url.query_pairs_mut();
                if !service.is_empty() {
                    q.append_pair("service", service);
                }
                for s in scopes {
                    q.append_pair("scope", s);
                }
                if let Some((user, _)) = auth.and_then(AuthConfig::credentials) {
                    if !user.is_empty() {
                        q.append_pair("account", &user);
                    }
                }
                if scopes.is_empty() {
                    q.append_pair("client_id", "docker");
                    q.append_pair("offline_token", "true");
                }
            }
            let mut req = http.get(url);
            if let Some((user, pass)) = auth.and_then(AuthConfig::credentials) {
                req = req.header("Authorization", basic_header(&user, &pass));
            }
            (reqwest::Method::GET, req)
        };
        let resp = request
            .send()
            .await
            .map_err(|e| transport_error(&method, &realm_url, &e))?;
        let status = resp.status().as_u16();
        let www = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&method, &realm_url, &e))?;
        if !(200..300).contains(&status) {
            let api = ApiError::from_response(status, www.as_deref(), &body);
            return Err(if api.code() == "UNAUTHORIZED" || status == 401 {
                RegistryError::Unauthorized(api.text)
            } else {
                RegistryError::Registry(api.text)
            });
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            RegistryError::Registry(format!("unable to decode token response: {e}"))
        })?;
        let token = if !answer.access_token.is_empty() {
            answer.access_token
        } else {
            answer.token
        };
        if token.is_empty() {
            return Err(RegistryError::Registry(
                "authorization server did not include a token in the response".into(),
            ));
        }
        let lifetime = Duration::from_secs(answer.expires_in).max(DEFAULT_TOKEN_LIFETIME);
        // Refresh a little early so a token does not expire in flight.
        let until = Instant::now() + lifetime - Duration::from_secs(5);
        if let Ok(mut map) = self.tokens.lock() {
            map.insert(key, (token.clone(), until));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/a:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:library/a:pull,push"));
        let c = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.param("realm"), Some("Registry Realm"));
        let c = Challenge::parse(r#"Bearer realm=x, error="a\"b""#).unwrap();
        assert_eq!(c.param("realm"), Some("x"));
        assert_eq!(c.param("error"), Some("a\"b"));
        assert!(Challenge::parse("").is_none());
    }

    #[test]
    fn basic_header_encodes() {
        assert_eq!(basic_header("user", "pa:ss"), "Basic dXNlcjpwYTpzcw==");
    }
}
