//! Blob downloads: a verified, resumable stream of chunks, and small blobs fetched whole.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use reqwest::Method;
use sha2::{Digest as _, Sha256};

use crate::client::{api_error, RegistryClient, Repository};
use crate::{Descriptor, RegistryError};

/// How many times a dropped download is reconnected before giving up.
const MAX_RETRIES: u32 = 5;
/// Largest blob [`RegistryClient::fetch_blob`] holds in memory.
const MAX_SMALL_BLOB: u64 = 64 << 20;

/// A blob as a stream of chunks (`'static + Send`). Reconnects with `Range` after a
/// dropped connection; the last item is an `Err` when the size or digest do not match.
pub struct BlobStream {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, RegistryError>> + Send>>,
}

impl Stream for BlobStream {
    type Item = Result<Bytes, RegistryError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct State {
    client: RegistryClient,
    repo: Repository,
    desc: Descriptor,
    body: Option<Body>,
    /// Bytes yielded so far.
    offset: u64,
    /// Bytes of the current response still to drop (a server that ignored `Range`).
    skip: u64,
    hasher: Sha256,
    retries: u32,
    done: bool,
}

fn verification_failed(desc: &Descriptor) -> RegistryError {
    RegistryError::Verification(format!(
        "filesystem layer verification failed for digest {}",
        desc.digest
    ))
}

impl State {
    /// Opens (or reopens at `offset`) the blob. Retryable failures are `Ok(Err)`.
    async fn connect(&mut self) -> Result<(), RegistryError> {
        let url = self.repo.url(&format!("blobs/{}", self.desc.digest))?;
        let offset = self.offset;
        let resp = self
            .client
            .send(&self.repo, Method::GET, &url, &[], &move |r| {
                if offset > 0 {
                    r.header("Range", format!("bytes={offset}-"))
                } else {
                    r
                }
            })
            .await?;
        let status = resp.status().as_u16();
        match status {
            200 => self.skip = offset,
            206 => {
                let start = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(offset) {
                    return Err(RegistryError::Registry(format!(
                        "error resuming download of {}: unexpected Content-Range",
                        self.desc.digest
                    )));
                }
                self.skip = 0;
            }
            s if s >= 500 => {
                return Err(RegistryError::Unreachable(api_error(resp).await.text));
            }
            _ => return Err(api_error(resp).await.into_error()),
        }
        self.body = Some(Box::pin(resp.bytes_stream()));
        Ok(())
    }

    /// The next verified chunk, `None` at a verified end.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, RegistryError>> {
        loop {
            if self.done {
                return None;
            }
            if self.body.is_none() {
                if let Err(e) = self.connect().await {
                    if e.is_unreachable() && self.retries < MAX_RETRIES {
                        self.backoff().await;
                        continue;
                    }
                    self.done = true;
                    return Some(Err(e));
                }
            }
            let body = self.body.as_mut()?;
            match body.next().await {
                Some(Ok(mut chunk)) => {
                    if self.skip > 0 {
                        let n = (self.skip as usize).min(chunk.len());
                        self.skip -= n as u64;
                        chunk = chunk.slice(n..);
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    self.offset += chunk.len() as u64;
                    if self.offset > self.desc.size {
                        self.done = true;
                        return Some(Err(verification_failed(&self.desc)));
                    }
                    self.hasher.update(&chunk);
                    return Some(Ok(chunk));
                }
                Some(Err(e)) => {
                    tracing::debug!(
                        "download of {} interrupted at {}: {e}",
                        self.desc.digest,
                        self.offset
                    );
                    self.body = None;
                    if self.retries >= MAX_RETRIES {
                        self.done = true;
                        return Some(Err(RegistryError::Unreachable(format!(
                            "error pulling blob {}: {e}",
                            self.desc.digest
                        ))));
                    }
                    self.backoff().await;
                }
                None => {
                    self.body = None;
                    if self.offset < self.desc.size && self.retries < MAX_RETRIES {
                        // A clean close before the end: resume.
                        self.backoff().await;
                        continue;
                    }
                    self.done = true;
                    let digest = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
                    if self.offset != self.desc.size || digest != self.desc.digest {
                        return Some(Err(verification_failed(&self.desc)));
                    }
                    return None;
                }
            }
        }
    }

    async fn backoff(&mut self) {
        let base = self.client.inner.retry_delay_ms.load(Ordering::Relaxed);
        let delay = base.saturating_mul(1 << self.retries.min(5)).min(5_000);
        self.retries += 1;
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
}

impl RegistryClient {
    /// Streams a blob, verified against `desc` (see [`BlobStream`]).
    pub fn blob_stream(&self, repo: &Repository, desc: &Descriptor) -> BlobStream {
        let state = State {
            client: self.clone(),
            repo: repo.clone(),
            desc: desc.clone(),
            body: None,
            offset: 0,
            skip: 0,
            hasher: Sha256::new(),
            retries: 0,
            done: false,
        };
        if !desc.digest.starts_with("sha256:") {
            let err = RegistryError::InvalidArgument(format!(
                "unsupported digest algorithm: {}",
                desc.digest
            ));
            return BlobStream {
                inner: Box::pin(futures_util::stream::once(async move { Err(err) })),
            };
        }
        let stream = futures_util::stream::unfold(state, |mut st| async move {
            let item = st.next_chunk().await?;
            Some((item, st))
        });
        BlobStream {
            inner: Box::pin(stream),
        }
    }

    /// A small blob (an image config) fetched whole and verified against its digest.
    pub async fn fetch_blob(
        &self,
        repo: &Repository,
        desc: &Descriptor,
    ) -> Result<Bytes, RegistryError> {
        if desc.size > MAX_SMALL_BLOB {
            return Err(RegistryError::InvalidArgument(format!(
                "blob {} is too large to fetch whole ({} bytes)",
                desc.digest, desc.size
            )));
        }
        let mut out = BytesMut::with_capacity(desc.size as usize);
        let mut stream = self.blob_stream(repo, desc);
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => out.extend_from_slice(&c),
                Err(RegistryError::Verification(_)) => {
                    return Err(RegistryError::Verification(format!(
                        "image config verification failed for digest {}",
                        desc.digest
                    )))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out.freeze())
    }
}
