//! `POST /images/{name}/push?tag=…`: push one tag, or every tag of the repository when
//! `tag` is empty.
//!
//! Per tag: the store's push plan (config, compressed layer blobs, a schema2 manifest),
//! then per layer, at most [`MAX_CONCURRENT_UPLOADS`] at once: skip it when the registry
//! has it (`Layer already exists`), else mount it from another repository of the same
//! registry the image came from (`Mounted from …`), else upload it (`Pushing`, `Pushed`);
//! then the config and the manifest, and the digest is recorded as a RepoDigest.

use berth_api::{AuthConfig, JsonMessage};
use berth_image::{PushLayer, Reference};
use berth_registry::{Descriptor, Repository};
use futures_util::{StreamExt, TryStreamExt};

use super::{short_digest, Progress};
use crate::error::{blocking, ApiError, ApiResult};
use crate::state::Daemon;

/// Docker's default `max-concurrent-uploads`.
pub const MAX_CONCURRENT_UPLOADS: usize = 5;

/// Finds the tags to push and the repository to push to (errors here are HTTP errors),
/// then answers with the progress stream while the push runs in its own task.
pub async fn start(
    d: &Daemon,
    name: &str,
    tag: &str,
    auth: Option<AuthConfig>,
) -> ApiResult<axum::response::Response> {
    let repo_ref = Reference::parse_normalized(name).map_err(|e| ApiError::invalid(e.0))?;
    let tags = local_tags(d, &repo_ref, tag)?;
    let repo = d
        .registry
        .repository_for_push(&repo_ref, auth.as_ref())
        .await?;
    let (progress, response) = Progress::channel();
    let d = d.clone();
    tokio::spawn(async move {
        if progress
            .status(format!(
                "The push refers to repository [{}]",
                repo_ref.name()
            ))
            .await
            .is_err()
        {
            return;
        }
        for (tag, image_id) in tags {
            if let Err(e) = push_tag(&d, &repo, &repo_ref, &tag, &image_id, &progress).await {
                return progress.error(&e.message).await;
            }
            d.emit_image_event(
                "push",
                &format!("{}:{tag}", repo_ref.familiar_name()),
                &repo_ref.familiar_name(),
            );
        }
    });
    Ok(response)
}

/// `(tag, image ID)` pairs to push; none is Docker's "does not exist locally" 404.
fn local_tags(d: &Daemon, repo: &Reference, tag: &str) -> ApiResult<Vec<(String, String)>> {
    let name = repo.name();
    if !tag.is_empty() {
        let tagged = repo
            .clone()
            .with_tag(tag)
            .map_err(|e| ApiError::invalid(e.0))?;
        return match d.images.resolve_id(&tagged.to_string()) {
            Ok(id) => Ok(vec![(tag.to_string(), id)]),
            Err(_) => Err(ApiError::not_found(format!(
                "An image does not exist locally with the tag: {}",
                tagged.familiar_name()
            ))),
        };
    }
    let opts = berth_image::ListOptions {
        all: false,
        filters: Default::default(),
    };
    let mut found: Vec<(String, String)> = d
        .images
        .list(&opts)?
        .into_iter()
        .flat_map(|img| img.repo_tags.into_iter().map(move |t| (t, img.id.clone())))
        .filter_map(|(t, id)| {
            let r = Reference::parse_normalized(&t).ok()?;
            let tag = r.tag()?.to_string();
            (r.name() == name).then_some((tag, id))
        })
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "An image does not exist locally with the tag: {}",
            repo.familiar_name()
        )));
    }
    Ok(found)
}

async fn push_tag(
    d: &Daemon,
    repo: &Repository,
    repo_ref: &Reference,
    tag: &str,
    image_id: &str,
    progress: &Progress,
) -> ApiResult<()> {
    let images = d.images.clone();
    let id = image_id.to_string();
    let plan = blocking(move || Ok(images.push_plan(&id)?)).await?;
    // Docker lists layers top first.
    let layers: Vec<&PushLayer> = plan.layers.iter().rev().collect();
    for layer in &layers {
        progress
            .layer(&short_digest(&layer.diff_id), "Preparing")
            .await?;
    }
    for layer in layers.iter().skip(MAX_CONCURRENT_UPLOADS) {
        progress
            .layer(&short_digest(&layer.diff_id), "Waiting")
            .await?;
    }
    let jobs: Vec<_> = layers
        .iter()
        .map(|layer| push_layer(d, repo, repo_ref, layer, progress))
        .collect();
    futures_util::stream::iter(jobs)
        .buffer_unordered(MAX_CONCURRENT_UPLOADS)
        .try_collect::<Vec<()>>()
        .await?;

    let config = Descriptor::for_bytes(
        "application/vnd.docker.container.image.v1+json",
        &plan.config,
    );
    if !d.registry.blob_exists(repo, &config.digest).await? {
        let tmp = tempfile::NamedTempFile::new_in(d.images.root().join("tmp"))
            .map_err(|e| ApiError::internal(format!("writing the config for upload: {e}")))?;
        std::fs::write(tmp.path(), &plan.config)
            .map_err(|e| ApiError::internal(format!("writing the config for upload: {e}")))?;
        d.registry
            .upload_blob(repo, &config, tmp.path(), &|_| {})
            .await?;
    }
    let digest = d
        .registry
        .put_manifest(repo, tag, &plan.manifest_media_type, &plan.manifest)
        .await?;
    let size = plan.manifest.len();
    progress
        .status(format!("{tag}: digest: {digest} size: {size}"))
        .await?;
    progress
        .send(JsonMessage {
            progress_detail: Some(serde_json::json!({})),
            aux: Some(serde_json::json!({"Tag": tag, "Digest": digest, "Size": size})),
            ..Default::default()
        })
        .await?;
    let images = d.images.clone();
    let (name, id) = (
        Reference::parse_normalized(&repo_ref.name()).map_err(|e| ApiError::invalid(e.0))?,
        image_id.to_string(),
    );
    blocking(move || Ok(images.add_repo_digest(&name, &digest, &id)?)).await?;
    Ok(())
}

/// Repositories of the target's registry, other than the target, known to hold a
/// layer's blob: the registry can mount it from one of those instead of an upload.
fn mount_sources(layer: &PushLayer, target: &Reference) -> Vec<String> {
    layer
        .sources
        .iter()
        .filter_map(|r| Reference::parse_normalized(r).ok())
        .filter(|r| r.domain() == target.domain() && r.path() != target.path())
        .map(|r| r.path().to_string())
        .collect()
}

async fn push_layer(
    d: &Daemon,
    repo: &Repository,
    target: &Reference,
    layer: &PushLayer,
    progress: &Progress,
) -> ApiResult<()> {
    let id = short_digest(&layer.diff_id);
    let desc = Descriptor {
        media_type: layer.blob.media_type.clone(),
        digest: layer.blob.digest.clone(),
        size: layer.blob.size,
        platform: None,
        urls: Vec::new(),
        annotations: Default::default(),
    };
    if d.registry.blob_exists(repo, &desc.digest).await? {
        return Ok(progress.layer(&id, "Layer already exists").await?);
    }
    for source in mount_sources(layer, target) {
        if d.registry.mount_blob(repo, &desc.digest, &source).await? {
            return Ok(progress
                .layer(&id, &format!("Mounted from {source}"))
                .await?);
        }
    }
    let meter = std::sync::Mutex::new(progress.meter(&id, "Pushing", desc.size));
    d.registry
        .upload_blob(repo, &desc, &layer.path, &|n| {
            if let Ok(mut m) = meter.lock() {
                m.update(n)
            }
        })
        .await?;
    progress.layer(&id, "Pushed").await?;
    Ok(())
}
