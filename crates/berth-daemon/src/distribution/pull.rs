//! `POST /images/create?fromImage=…`: pull an image (or every tag of a repository).
//!
//! Per tag: resolve the manifest for the platform, fetch and verify the config, then
//! stream the missing layers straight into the store — each layer is fetched, verified,
//! decompressed and unpacked in one pass on a blocking thread, at most
//! [`MAX_CONCURRENT_DOWNLOADS`] at once — and register the image under its tag and
//! `name@digest`. Layers already on disk are pinned by a store lease for the whole pull so
//! a concurrent `rmi` cannot take them away.

use std::sync::Arc;

use berth_api::AuthConfig;
use berth_image::{BlobInfo, Lease, PulledImage, Reference};
use berth_registry::{Descriptor, Platform, Repository, ResolvedImage};
use futures_util::{StreamExt, TryStreamExt};

use super::{short_digest, Progress};
use crate::error::{blocking, ApiError, ApiResult};
use crate::state::Daemon;

/// Docker's default `max-concurrent-downloads`.
pub const MAX_CONCURRENT_DOWNLOADS: usize = 3;

pub struct PullRequest {
    /// Normalized; carries a tag or a digest unless `all_tags`.
    pub reference: Reference,
    pub all_tags: bool,
    pub platform: Platform,
    pub auth: Option<AuthConfig>,
}

/// Resolves what to pull (errors here are HTTP errors), then answers with the progress
/// stream while the pull runs in its own task.
pub async fn start(d: &Daemon, req: PullRequest) -> ApiResult<axum::response::Response> {
    let auth = req.auth.as_ref();
    let (targets, first) = if req.all_tags {
        let untagged = Reference::parse_normalized(&req.reference.name())
            .map_err(|e| ApiError::invalid(e.0))?;
        let repo = d.registry.repository_for_pull(&untagged, auth).await?;
        let mut tags = d.registry.list_tags(&repo).await?;
        tags.sort();
        let refs = tags
            .iter()
            .map(|t| {
                untagged
                    .clone()
                    .with_tag(t)
                    .map_err(|e| ApiError::invalid(e.0))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        (refs, None)
    } else {
        let resolved = d
            .registry
            .resolve(&req.reference, &req.platform, auth)
            .await?;
        (vec![req.reference.clone()], Some(resolved))
    };
    let (progress, response) = Progress::channel();
    let d = d.clone();
    tokio::spawn(async move {
        let mut first = first;
        let mut any_new = false;
        for target in &targets {
            let pulled = match first.take() {
                Some(r) => Ok(r),
                None => d
                    .registry
                    .resolve(target, &req.platform, req.auth.as_ref())
                    .await
                    .map_err(ApiError::from),
            };
            let pulled = match pulled {
                Ok(resolved) => pull_resolved(&d, target, resolved, &progress).await,
                Err(e) => Err(e),
            };
            if pulled.is_ok() {
                d.emit_image_event("pull", &target.familiar_string(), &target.familiar_name());
            }
            match pulled {
                Ok(updated) => any_new |= updated,
                Err(e) => return progress.error(&e.message).await,
            }
        }
        // One `Status:` line: for the reference, or for the repository after `pull -a`.
        let subject = if req.all_tags {
            req.reference.familiar_name()
        } else {
            req.reference.familiar_string()
        };
        let line = if any_new {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        let _ = progress.status(format!("Status: {line} {subject}")).await;
    });
    Ok(response)
}

/// Pulls one tag or digest with no progress stream (CRI's `PullImage`): resolves, pulls
/// what is missing and registers the name; returns the image ID.
pub async fn pull_quiet(
    d: &Daemon,
    reference: &Reference,
    platform: &Platform,
    auth: Option<&AuthConfig>,
) -> ApiResult<String> {
    let resolved = d.registry.resolve(reference, platform, auth).await?;
    let image_id = resolved.config.digest.clone();
    let (progress, response) = Progress::channel();
    // Nobody reads the progress: drain it so the pull never waits on a full channel.
    let drain = tokio::spawn(async move {
        let mut body = response.into_body().into_data_stream();
        while body.next().await.is_some() {}
    });
    let pulled = pull_resolved(d, reference, resolved, &progress).await;
    drop(progress);
    let _ = drain.await;
    pulled?;
    d.emit_image_event(
        "pull",
        &reference.familiar_string(),
        &reference.familiar_name(),
    );
    Ok(image_id)
}

/// Pulls one resolved tag or digest; true when the name now points at a new image.
async fn pull_resolved(
    d: &Daemon,
    target: &Reference,
    resolved: ResolvedImage,
    progress: &Progress,
) -> ApiResult<bool> {
    let id = target
        .tag()
        .or(target.digest())
        .unwrap_or_default()
        .to_string();
    progress
        .send(berth_api::JsonMessage {
            status: Some(format!("Pulling from {}", target.path())),
            id: Some(id),
            ..Default::default()
        })
        .await?;
    let repo = &resolved.repository;
    let config = d.registry.fetch_blob(repo, &resolved.config).await?;
    let diff_ids = diff_ids(&config)?;
    if diff_ids.len() != resolved.layers.len() {
        return Err(ApiError::invalid(
            "layers from manifest don't match image configuration",
        ));
    }
    let chain_ids = berth_image::chain_ids(&diff_ids);
    let have_image = d.images.resolve_id(&resolved.config.digest).is_ok();
    let lease = PullLease(Some(Arc::new(d.images.lease())));
    let present = {
        let (images, lease, chains) = (d.images.clone(), lease.shared(), chain_ids.clone());
        blocking(move || {
            Ok(chains
                .iter()
                .map(|c| images.protect(&lease, c))
                .collect::<Vec<bool>>())
        })
        .await?
    };
    let mut missing = Vec::new();
    for (i, desc) in resolved.layers.iter().enumerate() {
        let layer_id = short_digest(&desc.digest);
        if present[i] {
            if !have_image {
                progress.layer(&layer_id, "Already exists").await?;
            }
            continue;
        }
        progress.layer(&layer_id, "Pulling fs layer").await?;
        missing.push(i);
    }
    for &i in missing.iter().skip(MAX_CONCURRENT_DOWNLOADS) {
        progress
            .layer(&short_digest(&resolved.layers[i].digest), "Waiting")
            .await?;
    }
    let jobs: Vec<_> = missing
        .into_iter()
        .map(|i| {
            let layer = LayerJob {
                repo: repo.clone(),
                desc: resolved.layers[i].clone(),
                diff_id: diff_ids[i].clone(),
                chain_id: chain_ids[i].clone(),
                parent: i.checked_sub(1).map(|p| chain_ids[p].clone()),
            };
            fetch_layer(d, layer, lease.shared(), progress)
        })
        .collect();
    futures_util::stream::iter(jobs)
        .buffer_unordered(MAX_CONCURRENT_DOWNLOADS)
        .try_collect::<Vec<()>>()
        .await?;

    let lease = lease.take()?;
    let image = PulledImage {
        config: config.to_vec(),
        manifest: (
            resolved.manifest_digest.clone(),
            resolved.manifest_bytes.to_vec(),
        ),
        index: resolved
            .index_bytes
            .as_ref()
            .map(|b| (resolved.digest.clone(), b.to_vec())),
        name: Reference::parse_normalized(&target.name()).map_err(|e| ApiError::invalid(e.0))?,
        tag: target.tag().map(str::to_string),
        repo_digest: resolved.digest.clone(),
    };
    let images = d.images.clone();
    let outcome = blocking(move || Ok(images.register_pulled(lease, &image)?)).await?;
    progress
        .status(format!("Digest: {}", resolved.digest))
        .await?;
    Ok(outcome.updated)
}

/// The pull's store lease. Releasing it is a write transaction, so the last reference is
/// dropped on a blocking thread, never on the async runtime.
struct PullLease(Option<Arc<Lease>>);

impl PullLease {
    fn shared(&self) -> Arc<Lease> {
        self.0.clone().expect("the lease is taken only at the end")
    }

    /// The lease itself, for `register_pulled`, once no layer task holds it.
    fn take(mut self) -> ApiResult<Lease> {
        let shared = self.0.take().expect("taken once");
        Arc::try_unwrap(shared)
            .map_err(|_| ApiError::internal("pull: layer tasks still hold the lease"))
    }
}

impl Drop for PullLease {
    fn drop(&mut self) {
        if let Some(lease) = self.0.take() {
            tokio::task::spawn_blocking(move || drop(lease));
        }
    }
}

/// The `rootfs.diff_ids` of an image config.
fn diff_ids(config: &[u8]) -> ApiResult<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<String>,
    }
    let c: Config = serde_json::from_slice(config)
        .map_err(|e| ApiError::invalid(format!("invalid image configuration: {e}")))?;
    Ok(c.rootfs.diff_ids)
}

struct LayerJob {
    repo: Repository,
    desc: Descriptor,
    diff_id: String,
    chain_id: String,
    parent: Option<String>,
}

/// Streams one layer from the registry into the store on a blocking thread.
async fn fetch_layer(
    d: &Daemon,
    job: LayerJob,
    lease: Arc<berth_image::Lease>,
    progress: &Progress,
) -> ApiResult<()> {
    let id = short_digest(&job.desc.digest);
    let stream = d
        .registry
        .blob_stream(&job.repo, &job.desc)
        .map_err(|e| std::io::Error::other(e.to_string()));
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let blob = BlobInfo {
        digest: job.desc.digest.clone(),
        size: job.desc.size,
        media_type: job.desc.media_type.clone(),
    };
    let mut meter = progress.meter(&id, "Downloading", job.desc.size);
    let images = d.images.clone();
    blocking(move || {
        let mut reader = reader;
        let mut on_progress = |n: u64| meter.update_blocking(n);
        let (diff_id, chain_id, parent) = (&job.diff_id, &job.chain_id, job.parent.as_deref());
        Ok(images.ingest_layer(
            &lease,
            &mut reader,
            &blob,
            diff_id,
            chain_id,
            parent,
            &mut on_progress,
        )?)
    })
    .await?;
    progress.layer(&id, "Verifying Checksum").await?;
    progress.layer(&id, "Download complete").await?;
    progress.layer(&id, "Pull complete").await?;
    Ok(())
}
