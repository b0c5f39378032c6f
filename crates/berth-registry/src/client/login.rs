//! `docker login`: credentials checked against a registry's token service or basic auth.

use berth_api::AuthConfig;
use reqwest::Method;

use super::RegistryClient;
use crate::auth::{basic_header, Challenge, TokenCache};
use crate::endpoint::{login_domain, Endpoint};
use crate::error::{status_line, transport_error};
use crate::RegistryError;

impl RegistryClient {
    /// Checks credentials against a registry (`POST /auth`). Docker Hub for an empty
    /// server address, `docker.io` or `https://index.docker.io/v1/`.
    pub async fn login(&self, auth: &AuthConfig) -> Result<(), RegistryError> {
        let domain = login_domain(&auth.server_address);
        let ep = self.inner.endpoints.for_domain(&domain, false).remove(0);
        let ep = self.with_resolved_security(ep).await;
        let mut last = None;
        for base in self.bases(&ep) {
            match self.login_at(&base, &ep, auth).await {
                Ok(()) => {
                    let scheme = base.split("://").next().unwrap_or("https").to_string();
                    if let Ok(mut m) = self.inner.schemes.lock() {
                        m.insert(ep.host.clone(), scheme);
                    }
                    return Ok(());
                }
                Err(e) if e.is_unreachable() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::Unreachable(format!("no endpoint for {domain}"))))
    }

    /// moby's `loginV2` at one base URL.
    async fn login_at(
        &self,
        base: &str,
        ep: &Endpoint,
        auth: &AuthConfig,
    ) -> Result<(), RegistryError> {
        let endpoint_str = format!("{base}/v2/");
        let url = url::Url::parse(&endpoint_str).map_err(|e| {
            RegistryError::InvalidArgument(format!("unable to parse server address: {e}"))
        })?;
        let http = self.http_for(&ep.host, ep.security);
        let get = |authz: Option<String>| {
            let mut r = http.get(url.clone());
            if let Some(a) = authz {
                r = r.header("Authorization", a);
            }
            r.send()
        };
        let resp = get(None)
            .await
            .map_err(|e| transport_error(&Method::GET, &url, &e))?;
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse);
        let failed = |status: u16| {
            RegistryError::Unauthorized(format!(
                "login attempt to {endpoint_str} failed with status: {}",
                status_line(status)
            ))
        };
        let authz = match (status, challenge) {
            (200, _) => return Ok(()),
            (401, Some(ch)) if ch.scheme == "bearer" => {
                let fresh = TokenCache::default();
                let token =
                    fresh
                        .token(&http, &ch, Some(auth), &[])
                        .await
                        .map_err(|e| match e {
                            RegistryError::Unauthorized(t) => {
                                RegistryError::Unauthorized(format!("Get \"{endpoint_str}\": {t}"))
                            }
                            other => other,
                        })?;
                format!("Bearer {token}")
            }
            (401, Some(ch)) if ch.scheme == "basic" => {
                let (u, p) = auth.credentials().unwrap_or_default();
                basic_header(&u, &p)
            }
            (s, _) => return Err(failed(s)),
        };
        let resp = get(Some(authz))
            .await
            .map_err(|e| transport_error(&Method::GET, &url, &e))?;
        match resp.status().as_u16() {
            200 => Ok(()),
            s => Err(failed(s)),
        }
    }
}
