//! `docker search`: the registry's v1 search API (`GET /v1/search?q=TERM&n=LIMIT`), as
//! dockerd calls it: Docker Hub's index for plain terms, the named registry for
//! `host[:port]/term`. A registry without that API (distribution's `registry:2` answers
//! 404) gives dockerd's `Unexpected status code 404`.

use berth_api::AuthConfig;
use serde::{Deserialize, Serialize};

use crate::endpoint::{Security, DOCKER_HUB_DOMAIN};
use crate::error::transport_error;
use crate::{RegistryClient, RegistryError};

/// Docker Hub's index, where dockerd sends searches for `docker.io`.
const HUB_INDEX: &str = "https://index.docker.io";

/// One search result (the registry's JSON, which the Engine API passes on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    #[serde(default)]
    pub star_count: i64,
    #[serde(default)]
    pub is_official: bool,
    pub name: String,
    #[serde(default)]
    pub is_automated: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
struct SearchResults {
    #[serde(default)]
    results: Vec<SearchResult>,
}

/// Splits `host[:port]/rest` from a plain term, as dockerd's `splitReposSearchTerm`.
pub fn split_term(term: &str) -> (String, String) {
    match term.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB_DOMAIN.to_string(), term.to_string()),
    }
}

impl RegistryClient {
    /// Searches `term` (`busybox`, `127.0.0.1:5000/busybox`), at most `limit` results.
    pub async fn search(
        &self,
        term: &str,
        limit: u32,
        auth: Option<&AuthConfig>,
    ) -> Result<Vec<SearchResult>, RegistryError> {
        let (domain, query) = split_term(term);
        let ep = self.inner.endpoints.for_domain(&domain, false).remove(0);
        let bases: Vec<String> = if domain == DOCKER_HUB_DOMAIN && ep.scheme.is_none() {
            vec![HUB_INDEX.to_string()]
        } else {
            match &ep.scheme {
                Some(s) => vec![format!("{s}://{}{}", ep.host, ep.prefix)],
                None if ep.security == Security::Insecure => vec![
                    format!("https://{}", ep.host),
                    format!("http://{}", ep.host),
                ],
                None => vec![format!("https://{}", ep.host)],
            }
        };
        let http = self.http_for(&ep.host, ep.security);
        let mut last = None;
        for base in bases {
            let mut url = url::Url::parse(&format!("{base}/v1/search"))
                .map_err(|e| RegistryError::InvalidArgument(e.to_string()))?;
            url.query_pairs_mut()
                .append_pair("q", &query)
                .append_pair("n", &limit.to_string());
            let mut req = http.get(url.clone());
            if let Some(a) = auth.filter(|a| !a.username.is_empty()) {
                req = req.basic_auth(&a.username, Some(&a.password));
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = Some(transport_error(&reqwest::Method::GET, &url, &e));
                    continue;
                }
            };
            if !resp.status().is_success() {
                return Err(RegistryError::Registry(format!(
                    "Unexpected status code {}",
                    resp.status().as_u16()
                )));
            }
            let body = resp
                .bytes()
                .await
                .map_err(|e| transport_error(&reqwest::Method::GET, &url, &e))?;
            let parsed: SearchResults = serde_json::from_slice(&body).map_err(|e| {
                RegistryError::Registry(format!("error decoding search results: {e}"))
            })?;
            return Ok(parsed.results);
        }
        Err(last.unwrap_or_else(|| RegistryError::Unreachable(format!("no endpoint for {domain}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_name_their_registry() {
        assert_eq!(
            split_term("busybox"),
            ("docker.io".into(), "busybox".into())
        );
        assert_eq!(
            split_term("library/busybox"),
            ("docker.io".into(), "library/busybox".into())
        );
        assert_eq!(
            split_term("127.0.0.1:5000/busy"),
            ("127.0.0.1:5000".into(), "busy".into())
        );
        assert_eq!(
            split_term("localhost/x/y"),
            ("localhost".into(), "x/y".into())
        );
    }
}
