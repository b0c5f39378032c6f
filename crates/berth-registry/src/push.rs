//! Push: blob existence checks, cross-repository mounts, monolithic and chunked uploads,
//! manifest puts.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::client::{api_error, RegistryClient, Repository};
use crate::manifest::sha256_digest;
use crate::{Descriptor, RegistryError};

fn io_error(path: &Path, e: std::io::Error) -> RegistryError {
    RegistryError::Io(format!("{}: {e}", path.display()))
}

/// The upload URL a registry answered with (`Location`, maybe relative).
fn location(resp: &reqwest::Response, request_url: &url::Url) -> Result<url::Url, RegistryError> {
    let loc = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            RegistryError::Registry("registry did not answer an upload location".into())
        })?;
    request_url
        .join(loc)
        .map_err(|e| RegistryError::Registry(format!("invalid upload location {loc:?}: {e}")))
}

/// A request body streaming `len` bytes of `file` from `start`, counting into `sent`.
async fn file_body(
    path: &Path,
    start: u64,
    len: u64,
    sent: Arc<AtomicU64>,
) -> Result<reqwest::Body, RegistryError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_error(path, e))?;
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| io_error(path, e))?;
    let reader = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 << 10);
    let counted = reader.map(move |chunk| {
        if let Ok(c) = &chunk {
            sent.fetch_add(c.len() as u64, Ordering::Relaxed);
        }
        chunk
    });
    Ok(reqwest::Body::wrap_stream(counted))
}

impl RegistryClient {
    /// `HEAD` a blob: true when the repository has it.
    pub async fn blob_exists(
        &self,
        repo: &Repository,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        let url = repo.url(&format!("blobs/{digest}"))?;
        let resp = self.send(repo, Method::HEAD, &url, &[], &|r| r).await?;
        match resp.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(api_error(resp).await.into_error()),
        }
    }

    /// Cross-repository mount of `digest` from `from_repo` (a path on the same registry).
    /// False when the registry started an upload instead (that upload is cancelled).
    pub async fn mount_blob(
        &self,
        repo: &Repository,
        digest: &str,
        from_repo: &str,
    ) -> Result<bool, RegistryError> {
        let mut url = repo.url("blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from_repo);
        let extra = [format!("repository:{from_repo}:pull")];
        let resp = self
            .send(repo, Method::POST, &url, &extra, &|r| {
                r.header("Content-Length", "0")
            })
            .await?;
        match resp.status().as_u16() {
            201 => Ok(true),
            202 => {
                if let Ok(loc) = location(&resp, &url) {
                    // Best effort: an abandoned upload expires on the registry anyway.
                    let _ = self.send(repo, Method::DELETE, &loc, &[], &|r| r).await;
                }
                Ok(false)
            }
            _ => Err(api_error(resp).await.into_error()),
        }
    }

    /// Uploads `file` as the blob `desc`: one PUT up to the client's threshold, else
    /// PATCH chunks and a closing PUT. The file is streamed, never read whole.
    /// `progress` gets the number of bytes sent so far, several times a second and at
    /// the end.
    pub async fn upload_blob(
        &self,
        repo: &Repository,
        desc: &Descriptor,
        file: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), RegistryError> {
        let len = tokio::fs::metadata(file)
            .await
            .map_err(|e| io_error(file, e))?
            .len();
        if len != desc.size {
            return Err(RegistryError::InvalidArgument(format!(
                "{}: size {len} does not match descriptor size {}",
                file.display(),
                desc.size
            )));
        }
        let start_url = repo.url("blobs/uploads/")?;
        let resp = self
            .send(repo, Method::POST, &start_url, &[], &|r| {
                r.header("Content-Length", "0")
            })
            .await?;
        if resp.status().as_u16() != 202 {
            return Err(api_error(resp).await.into_error());
        }
        let mut loc = location(&resp, &start_url)?;
        let sent = Arc::new(AtomicU64::new(0));
        let threshold = self.inner.upload_threshold.load(Ordering::Relaxed);
        let chunk = self.inner.upload_chunk.load(Ordering::Relaxed).max(1);
        let http = self.http_for(&repo.host, repo.security);
        // Streamed bodies cannot be replayed after a 401: take the authorization up front
        // (the POST above just proved it works).
        let authz = self.authorization(repo, &[]).await?;
        let with_auth = |r: reqwest::RequestBuilder| match &authz {
            Some(a) => r.header("Authorization", a.clone()),
            None => r,
        };
        let mut put_url = loc.clone();
        if len > threshold {
            let mut offset = 0;
            while offset < len {
                let n = chunk.min(len - offset);
                let body = file_body(file, offset, n, sent.clone()).await?;
                let req = with_auth(http.patch(loc.clone()))
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Length", n.to_string())
                    .header("Content-Range", format!("{}-{}", offset, offset + n - 1))
                    .body(body);
                let resp = self
                    .send_with_progress(req, &loc, Method::PATCH, &sent, progress)
                    .await?;
                if resp.status().as_u16() != 202 {
                    return Err(api_error(resp).await.into_error());
                }
                loc = location(&resp, &loc)?;
                offset += n;
            }
            put_url = loc.clone();
            put_url
                .query_pairs_mut()
                .append_pair("digest", &desc.digest);
            let req = with_auth(http.put(put_url.clone())).header("Content-Length", "0");
            let resp = self
                .send_with_progress(req, &put_url, Method::PUT, &sent, progress)
                .await?;
            return finish_upload(resp, desc).await;
        }
        put_url
            .query_pairs_mut()
            .append_pair("digest", &desc.digest);
        let body = file_body(file, 0, len, sent.clone()).await?;
        let req = with_auth(http.put(put_url.clone()))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", len.to_string())
            .body(body);
        let resp = self
            .send_with_progress(req, &put_url, Method::PUT, &sent, progress)
            .await?;
        finish_upload(resp, desc).await
    }

    async fn send_with_progress(
        &self,
        req: reqwest::RequestBuilder,
        url: &url::Url,
        method: Method,
        sent: &AtomicU64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<reqwest::Response, RegistryError> {
        let fut = req.send();
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let result = loop {
            tokio::select! {
                r = &mut fut => break r,
                _ = tick.tick() => progress(sent.load(Ordering::Relaxed)),
            }
        };
        progress(sent.load(Ordering::Relaxed));
        result.map_err(|e| crate::error::transport_error(&method, url, &e))
    }

    /// Puts a manifest under a tag or digest; returns its digest.
    pub async fn put_manifest(
        &self,
        repo: &Repository,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, RegistryError> {
        let url = repo.url(&format!("manifests/{tag_or_digest}"))?;
        let body = bytes::Bytes::copy_from_slice(bytes);
        let resp = self
            .send(repo, Method::PUT, &url, &[], &|r| {
                r.header("Content-Type", media_type).body(body.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(api_error(resp).await.into_error());
        }
        Ok(sha256_digest(bytes))
    }
}

async fn finish_upload(resp: reqwest::Response, desc: &Descriptor) -> Result<(), RegistryError> {
    if resp.status().as_u16() != 201 && !resp.status().is_success() {
        return Err(api_error(resp).await.into_error());
    }
    if let Some(d) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
    {
        if d != desc.digest {
            return Err(RegistryError::Verification(format!(
                "registry stored digest {d} for blob {}",
                desc.digest
            )));
        }
    }
    Ok(())
}
