//! Finding an image in a registry: a reference resolved to its manifest (and, for an index,
//! the platform's), whether a repository exists, and its tags.

use berth_api::AuthConfig;
use berth_image::Reference;
use bytes::Bytes;
use reqwest::Method;

use super::{
    api_error, pull_error, read_capped, RegistryClient, Repository, ResolvedImage,
    MAX_MANIFEST_SIZE,
};
use crate::error::ApiError;
use crate::hosts::Purpose;
use crate::manifest::{schema1_error, select_platform, sha256_digest, Manifest, MANIFEST_ACCEPT};
use crate::{Platform, RegistryError};

impl RegistryClient {
    /// Resolves a tag or digest to the image manifest for `platform`, following a
    /// manifest list / OCI index. Docker Hub names try the mirrors first; a mirror is
    /// skipped only when it cannot be reached (its "not found" is the answer).
    pub async fn resolve(
        &self,
        reference: &Reference,
        platform: &Platform,
        auth: Option<&AuthConfig>,
    ) -> Result<ResolvedImage, RegistryError> {
        let mut last = None;
        let purpose = match reference.digest() {
            Some(_) => Purpose::Pull,
            None => Purpose::Resolve,
        };
        for ep in self
            .inner
            .endpoints
            .endpoints_for(reference.domain(), purpose)?
        {
            let ep_auth = if ep.mirror { None } else { auth };
            let attempt = async {
                let repo = self
                    .open_repository(reference.domain(), reference.path(), &ep, ep_auth, "pull")
                    .await?;
                self.resolve_in(repo, reference, platform).await
            };
            match attempt.await {
                Ok(r) => return Ok(r),
                Err(e) if e.is_unreachable() && ep.mirror => {
                    tracing::info!("mirror {} unreachable, trying next endpoint: {e}", ep.host);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::Unreachable("no registry endpoint".into())))
    }

    /// Fetches a manifest by tag or digest: (bytes, content type).
    async fn get_manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
        tag_or_digest: &str,
    ) -> Result<(Bytes, String), RegistryError> {
        let url = repo.url(&format!("manifests/{tag_or_digest}"))?;
        let resp = self
            .send(repo, Method::GET, &url, &[], &|r| {
                r.header("Accept", MANIFEST_ACCEPT)
            })
            .await?;
        if !resp.status().is_success() {
            let api = api_error(resp).await;
            // distribution answers MANIFEST_UNKNOWN for unknown repositories too; on a
            // mirror, ask the tag list whether the repository exists, so a missing name
            // gets Docker Hub's "pull access denied" as it would without the mirror.
            if repo.mirror
                && api.code() == "MANIFEST_UNKNOWN"
                && !self.repository_exists(repo).await
            {
                let unknown = ApiError::from_response(
                    404,
                    None,
                    br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
                );
                return Err(pull_error(unknown, reference, true));
            }
            return Err(pull_error(api, reference, repo.mirror));
        }
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = read_capped(resp, MAX_MANIFEST_SIZE).await.map_err(|e| {
            RegistryError::Registry(format!("error reading manifest {tag_or_digest}: {e}"))
        })?;
        let body = Bytes::from(body);
        if tag_or_digest.starts_with("sha256:") && sha256_digest(&body) != tag_or_digest {
            return Err(RegistryError::Verification(format!(
                "manifest verification failed for digest {tag_or_digest}"
            )));
        }
        Ok((body, content_type))
    }

    async fn resolve_in(
        &self,
        repository: Repository,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage, RegistryError> {
        let wanted = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => berth_image::reference::DEFAULT_TAG.to_string(),
        };
        let (bytes, content_type) = self.get_manifest(&repository, reference, &wanted).await?;
        let digest = sha256_digest(&bytes);
        let (manifest, manifest_bytes, manifest_digest, index_bytes) =
            match Manifest::parse(&content_type, &bytes)? {
                Manifest::Schema1 => return Err(schema1_error(&reference.to_string())),
                m @ Manifest::Image { .. } => (m, bytes, digest.clone(), None),
                Manifest::Index { manifests, .. } => {
                    let entry = select_platform(&manifests, platform)?;
                    let (mbytes, mtype) = self
                        .get_manifest(&repository, reference, &entry.digest)
                        .await?;
                    let mtype = if entry.media_type.is_empty() {
                        mtype
                    } else {
                        entry.media_type.clone()
                    };
                    match Manifest::parse(&mtype, &mbytes)? {
                        Manifest::Schema1 => return Err(schema1_error(&reference.to_string())),
                        Manifest::Index { .. } => {
                            return Err(RegistryError::InvalidArgument(
                                "unsupported manifest format".into(),
                            ))
                        }
                        m @ Manifest::Image { .. } => {
                            (m, mbytes, entry.digest.clone(), Some(bytes))
                        }
                    }
                }
            };
        let Manifest::Image {
            media_type,
            config,
            layers,
        } = manifest
        else {
            return Err(RegistryError::InvalidArgument(
                "unsupported manifest format".into(),
            ));
        };
        crate::manifest::check_image_media_types(&media_type, &config, &layers)?;
        Ok(ResolvedImage {
            repository,
            digest,
            manifest_digest,
            manifest_media_type: media_type,
            manifest_bytes,
            index_bytes,
            config,
            layers,
        })
    }

    /// False when the registry says the repository's name is unknown.
    async fn repository_exists(&self, repo: &Repository) -> bool {
        let Ok(url) = repo.url("tags/list") else {
            return true;
        };
        match self.send(repo, Method::GET, &url, &[], &|r| r).await {
            Ok(resp) if resp.status().as_u16() == 404 => {
                api_error(resp).await.code() != "NAME_UNKNOWN"
            }
            _ => true,
        }
    }

    /// All tags of a repository (`pull -a`), following `Link` pagination.
    pub async fn list_tags(&self, repo: &Repository) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut url = repo.url("tags/list")?;
        let mut tags = Vec::new();
        for _ in 0..1000 {
            let resp = self.send(repo, Method::GET, &url, &[], &|r| r).await?;
            if !resp.status().is_success() {
                return Err(api_error(resp).await.into_error());
            }
            let next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_next_link)
                .and_then(|l| url.join(&l).ok());
            let body = read_capped(resp, 16 << 20)
                .await
                .map_err(|e| RegistryError::Registry(format!("error reading tags: {e}")))?;
            let page: TagList = serde_json::from_slice(&body)
                .map_err(|e| RegistryError::Registry(format!("error parsing tags: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
        Ok(tags)
    }
}

/// The target of `Link: <url>; rel="next"`.
fn parse_next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link() {
        assert_eq!(
            parse_next_link(r#"</v2/x/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/x/tags/list?last=b&n=2")
        );
        assert_eq!(parse_next_link(r#"</a>; rel="prev""#), None);
    }
}
