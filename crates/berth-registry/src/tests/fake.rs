//! An in-process fake registry (axum on 127.0.0.1:0) for the client's tests: Bearer or
//! Basic auth, a token endpoint that counts its requests, uploads, mounts, manifests,
//! paginated tags, and fault injection (wrong blob content, a connection dropped
//! mid-blob).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use axum::Router;
use base64::Engine;
use futures_util::StreamExt;

use crate::sha256_digest;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    None,
    /// Bearer tokens from `/token`; `/token` itself wants Basic `user:pass` when set.
    Bearer,
    Basic,
}

#[derive(Default)]
pub struct State {
    pub blobs: HashMap<String, Bytes>,
    /// (repo, tag or digest) → (media type, body)
    pub manifests: HashMap<(String, String), (String, Bytes)>,
    pub uploads: HashMap<String, Vec<u8>>,
    pub token_requests: Vec<String>,
    pub requests: Vec<String>,
    pub range_headers: Vec<String>,
    pub patches: usize,
    /// Digests whose first GET is cut after half the bytes.
    pub drop_once: Vec<String>,
    /// Digests served with other content than theirs.
    pub corrupt: Vec<String>,
    /// Manifest digests served with other content than theirs.
    pub corrupt_manifests: Vec<String>,
    pub next_upload: u64,
    /// Tokens of older generations are refused with `error="invalid_token"`.
    pub token_generation: u32,
    /// Repositories the token server grants nothing on (Docker Hub's unknown names).
    pub denied_repos: Vec<String>,
    /// Answer 200 with the whole blob to `Range` requests.
    pub ignore_range: bool,
    /// The refresh token the OAuth2 grant accepts.
    pub refresh_token: Option<String>,
}

pub struct Fake {
    pub addr: String,
    pub state: Arc<Mutex<State>>,
}

impl Fake {
    pub async fn start(mode: AuthMode, creds: Option<(&str, &str)>) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let creds = creds.map(|(u, p)| (u.to_string(), p.to_string()));
        let ctx = Arc::new(Ctx {
            addr: addr.clone(),
            state: state.clone(),
            mode,
            creds: creds.clone(),
        });
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let ctx = ctx.clone();
                async move { ctx.handle(method, uri, headers, body) }
            },
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake { addr, state }
    }

    pub fn put_blob(&self, data: &[u8]) -> String {
        let d = sha256_digest(data);
        self.state
            .lock()
            .unwrap()
            .blobs
            .insert(d.clone(), Bytes::copy_from_slice(data));
        d
    }

    pub fn put_manifest(&self, repo: &str, tag: &str, media_type: &str, body: &[u8]) -> String {
        let d = sha256_digest(body);
        let mut st = self.state.lock().unwrap();
        let v = (media_type.to_string(), Bytes::copy_from_slice(body));
        st.manifests.insert((repo.into(), tag.into()), v.clone());
        st.manifests.insert((repo.into(), d.clone()), v);
        d
    }
}

struct Ctx {
    addr: String,
    state: Arc<Mutex<State>>,
    mode: AuthMode,
    creds: Option<(String, String)>,
}

fn resp(status: u16) -> axum::http::response::Builder {
    Response::builder().status(StatusCode::from_u16(status).unwrap())
}

fn errors(status: u16, code: &str, message: &str) -> Response<Body> {
    resp(status)
        .header("Content-Type", "application/json")
        .body(Body::from(format!(
            r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#
        )))
        .unwrap()
}

fn query(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

impl Ctx {
    fn basic_ok(&self, headers: &HeaderMap) -> bool {
        let Some((u, p)) = &self.creds else {
            return true;
        };
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        );
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
    }

    /// None when authorized, else the 401 to answer.
    fn check_auth(&self, headers: &HeaderMap, repo: &str, action: &str) -> Option<Response<Body>> {
        match self.mode {
            AuthMode::None => None,
            AuthMode::Basic => {
                if self.basic_ok(headers) {
                    return None;
                }
                Some(
                    resp(401)
                        .header("WWW-Authenticate", r#"Basic realm="fake""#)
                        .header("Content-Type", "application/json")
                        .body(Body::from(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#))
                        .unwrap(),
                )
            }
            AuthMode::Bearer => {
                let got = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                // Tokens are "tok<generation>|scope|scope..."; the scope must grant the action.
                let generation = self.state.lock().unwrap().token_generation;
                let prefix = format!("Bearer tok{generation}|");
                let granted = got.strip_prefix(&prefix).is_some_and(|scopes| {
                    scopes.split('|').any(|s| {
                        let mut parts = s.splitn(3, ':');
                        parts.next() == Some("repository")
                            && parts.next() == Some(repo)
                            && parts
                                .next()
                                .is_some_and(|a| a.split(',').any(|x| x == action))
                    })
                });
                if granted || (repo.is_empty() && got.starts_with(&prefix)) {
                    return None;
                }
                let stale = got.starts_with("Bearer tok") && !got.starts_with(&prefix);
                let scope = if repo.is_empty() {
                    String::new()
                } else {
                    format!(",scope=\"repository:{repo}:{action}\"")
                };
                let scope = if got.starts_with(&prefix) {
                    format!("{scope},error=\"insufficient_scope\"")
                } else {
                    scope
                };
                let scope = if stale {
                    format!("{scope},error=\"invalid_token\"")
                } else {
                    scope
                };
                Some(
                    resp(401)
                        .header(
                            "WWW-Authenticate",
                            format!(r#"Bearer realm="http://{}/token",service="fake"{scope}"#, self.addr),
                        )
                        .header("Content-Type", "application/json")
                        .body(Body::from(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#))
                        .unwrap(),
                )
            }
        }
    }

    fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response<Body> {
        let path = uri.path().to_string();
        self.state
            .lock()
            .unwrap()
            .requests
            .push(format!("{method} {path}"));
        if path == "/token" {
            let mut st = self.state.lock().unwrap();
            let (params, record) = if method == Method::POST {
                let form: Vec<(String, String)> =
                    url::form_urlencoded::parse(&body).into_owned().collect();
                (form, format!("POST {}", String::from_utf8_lossy(&body)))
            } else {
                (query(&uri), uri.query().unwrap_or("").to_string())
            };
            st.token_requests.push(record);
            let param = |k: &str| {
                params
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
            };
            let authorized = if method == Method::POST {
                param("grant_type").as_deref() == Some("refresh_token")
                    && st.refresh_token.is_some()
                    && param("refresh_token") == st.refresh_token
            } else {
                self.creds.is_none() || self.basic_ok(&headers)
            };
            if !authorized {
                return resp(401)
                    .header("Content-Type", "application/json")
                    .body(Body::from(
                        r#"{"details":"incorrect username or password"}"#,
                    ))
                    .unwrap();
            }
            // GET repeats `scope`; the OAuth2 form joins scopes with spaces.
            let scopes: Vec<String> = params
                .iter()
                .filter(|(k, _)| k == "scope")
                .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
                .filter(|scope| {
                    !st.denied_repos
                        .iter()
                        .any(|r| scope.starts_with(&format!("repository:{r}:")))
                })
                .collect();
            let token = format!("tok{}|{}", st.token_generation, scopes.join("|"));
            let answer = if method == Method::POST {
                serde_json::json!({"access_token": token, "expires_in": 300})
            } else {
                serde_json::json!({"token": token, "expires_in": 300})
            };
            return resp(200)
                .header("Content-Type", "application/json")
                .body(Body::from(answer.to_string()))
                .unwrap();
        }
        if path == "/v2/" {
            if let Some(r) = self.check_auth(&headers, "", "") {
                return r;
            }
            return resp(200).body(Body::from("{}")).unwrap();
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return resp(404).body(Body::empty()).unwrap();
        };
        for (marker, kind) in [
            ("/manifests/", 0),
            ("/blobs/uploads/", 1),
            ("/blobs/", 2),
            ("/tags/list", 3),
        ] {
            if let Some(i) = rest.rfind(marker) {
                let repo = &rest[..i];
                let tail = &rest[i + marker.len()..];
                let action = if matches!(method, Method::GET | Method::HEAD) {
                    "pull"
                } else {
                    "push"
                };
                if let Some(r) = self.check_auth(&headers, repo, action) {
                    return r;
                }
                return match kind {
                    0 => self.manifests(&method, repo, tail, &headers, body),
                    1 => self.uploads(&method, &uri, repo, tail, &headers, body),
                    2 => self.blob(&method, tail, &headers),
                    _ => self.tags(&uri, repo),
                };
            }
        }
        errors(404, "NAME_UNKNOWN", "repository name not known to registry")
    }

    fn manifests(
        &self,
        method: &Method,
        repo: &str,
        reference: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response<Body> {
        let mut st = self.state.lock().unwrap();
        if *method == Method::PUT {
            let media = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let d = sha256_digest(&body);
            st.manifests.insert(
                (repo.into(), reference.into()),
                (media.clone(), body.clone()),
            );
            st.manifests.insert((repo.into(), d.clone()), (media, body));
            return resp(201)
                .header("Docker-Content-Digest", d)
                .body(Body::empty())
                .unwrap();
        }
        if !st.manifests.keys().any(|(r, _)| r == repo) {
            return errors(404, "NAME_UNKNOWN", "repository name not known to registry");
        }
        match st.manifests.get(&(repo.to_string(), reference.to_string())) {
            Some((media, bytes)) => {
                let mut bytes = bytes.clone();
                if st.corrupt_manifests.iter().any(|d| d == reference) {
                    let mut v = bytes.to_vec();
                    v.push(b' ');
                    bytes = Bytes::from(v);
                }
                resp(200)
                    .header("Content-Type", media.as_str())
                    .header("Docker-Content-Digest", sha256_digest(&bytes))
                    .body(Body::from(bytes))
                    .unwrap()
            }
            None => errors(404, "MANIFEST_UNKNOWN", "manifest unknown"),
        }
    }

    fn blob(&self, method: &Method, digest: &str, headers: &HeaderMap) -> Response<Body> {
        let mut st = self.state.lock().unwrap();
        let Some(data) = st.blobs.get(digest).cloned() else {
            return errors(404, "BLOB_UNKNOWN", "blob unknown to registry");
        };
        if *method == Method::DELETE {
            return resp(405).body(Body::empty()).unwrap();
        }
        let data = if st.corrupt.iter().any(|d| d == digest) {
            let mut v = data.to_vec();
            v[0] ^= 0xff;
            Bytes::from(v)
        } else {
            data
        };
        if *method == Method::HEAD {
            return resp(200)
                .header("Content-Length", data.len().to_string())
                .body(Body::empty())
                .unwrap();
        }
        if let Some(range) = headers.get("range").and_then(|v| v.to_str().ok()) {
            st.range_headers.push(range.to_string());
        }
        if let Some(range) = headers
            .get("range")
            .and_then(|v| v.to_str().ok())
            .filter(|_| !st.ignore_range)
        {
            let start: usize = range
                .strip_prefix("bytes=")
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let part = data.slice(start.min(data.len())..);
            return resp(206)
                .header(
                    "Content-Range",
                    format!("bytes {}-{}/{}", start, data.len() - 1, data.len()),
                )
                .header("Content-Length", part.len().to_string())
                .body(Body::from(part))
                .unwrap();
        }
        if let Some(pos) = st.drop_once.iter().position(|d| d == digest) {
            st.drop_once.remove(pos);
            let half = data.slice(..data.len() / 2);
            // The half is flushed before the cut so the client has yielded it.
            let stream = futures_util::stream::iter(vec![
                Ok::<Bytes, std::io::Error>(half),
                Err(std::io::Error::other("cut")),
            ])
            .then(|item| async move {
                if item.is_err() {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                item
            });
            return resp(200)
                .header("Content-Length", data.len().to_string())
                .body(Body::from_stream(stream))
                .unwrap();
        }
        resp(200)
            .header("Content-Length", data.len().to_string())
            .header("Content-Type", "application/octet-stream")
            .body(Body::from(data))
            .unwrap()
    }

    fn uploads(
        &self,
        method: &Method,
        uri: &Uri,
        repo: &str,
        tail: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response<Body> {
        let mut st = self.state.lock().unwrap();
        let q = query(uri);
        let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        match (method.clone(), tail) {
            (Method::POST, "") => {
                if let (Some(d), Some(_from)) = (get("mount"), get("from")) {
                    if st.blobs.contains_key(&d) {
                        return resp(201)
                            .header("Location", format!("/v2/{repo}/blobs/{d}"))
                            .body(Body::empty())
                            .unwrap();
                    }
                }
                st.next_upload += 1;
                let id = format!("u{}", st.next_upload);
                st.uploads.insert(id.clone(), Vec::new());
                // A relative Location with a query, as registries answer.
                resp(202)
                    .header(
                        "Location",
                        format!("/v2/{repo}/blobs/uploads/{id}?_state=abc"),
                    )
                    .header("Range", "0-0")
                    .body(Body::empty())
                    .unwrap()
            }
            (Method::PATCH, id) => {
                st.patches += 1;
                let Some(buf) = st.uploads.get_mut(id) else {
                    return errors(
                        404,
                        "BLOB_UPLOAD_UNKNOWN",
                        "blob upload unknown to registry",
                    );
                };
                if let Some(range) = headers.get("content-range").and_then(|v| v.to_str().ok()) {
                    let start: usize = range
                        .split('-')
                        .next()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(usize::MAX);
                    if start != buf.len() {
                        return errors(416, "BLOB_UPLOAD_INVALID", "bad range");
                    }
                }
                buf.extend_from_slice(&body);
                let end = buf.len().saturating_sub(1);
                resp(202)
                    .header(
                        "Location",
                        format!("/v2/{repo}/blobs/uploads/{id}?_state=next"),
                    )
                    .header("Range", format!("0-{end}"))
                    .body(Body::empty())
                    .unwrap()
            }
            (Method::PUT, id) => {
                let Some(mut buf) = st.uploads.remove(id) else {
                    return errors(
                        404,
                        "BLOB_UPLOAD_UNKNOWN",
                        "blob upload unknown to registry",
                    );
                };
                buf.extend_from_slice(&body);
                let want = get("digest").unwrap_or_default();
                let got = sha256_digest(&buf);
                if want != got || get("_state").is_none() {
                    return errors(
                        400,
                        "DIGEST_INVALID",
                        "provided digest did not match uploaded content",
                    );
                }
                st.blobs.insert(got.clone(), Bytes::from(buf));
                resp(201)
                    .header("Location", format!("/v2/{repo}/blobs/{got}"))
                    .header("Docker-Content-Digest", got)
                    .body(Body::empty())
                    .unwrap()
            }
            (Method::DELETE, id) => {
                st.uploads.remove(id);
                resp(204).body(Body::empty()).unwrap()
            }
            _ => resp(405).body(Body::empty()).unwrap(),
        }
    }

    fn tags(&self, uri: &Uri, repo: &str) -> Response<Body> {
        let st = self.state.lock().unwrap();
        let mut tags: Vec<String> = st
            .manifests
            .keys()
            .filter(|(r, t)| r == repo && !t.starts_with("sha256:"))
            .map(|(_, t)| t.clone())
            .collect();
        tags.sort();
        if tags.is_empty() {
            return errors(404, "NAME_UNKNOWN", "repository name not known to registry");
        }
        let q = query(uri);
        let last = q.iter().find(|(k, _)| k == "last").map(|(_, v)| v.clone());
        let page: Vec<String> = tags
            .into_iter()
            .filter(|t| last.as_ref().is_none_or(|l| t > l))
            .collect();
        let (now, more) = page.split_at(page.len().min(2));
        let mut r = resp(200).header("Content-Type", "application/json");
        if !more.is_empty() {
            r = r.header(
                "Link",
                format!(
                    r#"</v2/{repo}/tags/list?n=2&last={}>; rel="next""#,
                    now[now.len() - 1]
                ),
            );
        }
        r.body(Body::from(
            serde_json::json!({"name": repo, "tags": now}).to_string(),
        ))
        .unwrap()
    }
}
