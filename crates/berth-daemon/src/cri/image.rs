//! `ImageService` on Berth's one image store: what `docker images` lists, `crictl images`
//! lists too. Names are shown fully qualified (`docker.io/library/busybox:latest`), as
//! containerd's CRI shows them.

use std::collections::HashMap;

use berth_cri_api::v1::image_service_server::ImageService;
use berth_cri_api::v1::*;
use berth_image::Reference;
use tonic::{Request, Response, Status};

use super::CriService;
use crate::error::{blocking, ApiError};

/// A CRI image reference, normalized; an empty or malformed one is InvalidArgument.
fn parse_ref(spec: Option<&ImageSpec>) -> Result<Reference, Status> {
    let image = spec.map(|s| s.image.as_str()).unwrap_or_default();
    if image.is_empty() {
        return Err(Status::invalid_argument("image spec is required"));
    }
    Reference::parse_normalized(image)
        .map(Reference::with_default_tag)
        .map_err(|e| {
            Status::invalid_argument(format!(
                "failed to parse image reference {image:?}: {}",
                e.0
            ))
        })
}

/// `busybox:latest` → `docker.io/library/busybox:latest`; names that do not parse stay.
fn qualified(name: &str) -> String {
    Reference::parse_normalized(name)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| name.to_string())
}

/// The image's user: a numeric uid goes to `uid`, a name to `username` (CRI's rule).
fn user_fields(user: &str) -> (Option<Int64Value>, String) {
    let user = user.split(':').next().unwrap_or_default();
    match user.parse::<i64>() {
        Ok(uid) => (Some(Int64Value { value: uid }), String::new()),
        Err(_) => (None, user.to_string()),
    }
}

impl CriService {
    /// The CRI view of the image `name` (an ID or reference), `None` when absent.
    async fn image(
        &self,
        name: String,
    ) -> Result<Option<(Image, berth_api::ImageInspect)>, Status> {
        let images = self.daemon.images.clone();
        let found = blocking(move || match images.inspect(&name) {
            Ok(i) => Ok(Some(i)),
            Err(e) if e.kind() == berth_api::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ApiError::from(e)),
        })
        .await?;
        Ok(found.map(|i| {
            let (uid, username) = user_fields(&i.config.user);
            let image = Image {
                id: i.id.clone(),
                repo_tags: i.repo_tags.iter().map(|t| qualified(t)).collect(),
                repo_digests: i.repo_digests.iter().map(|t| qualified(t)).collect(),
                size: u64::try_from(i.size).unwrap_or(0),
                uid,
                username,
                spec: Some(ImageSpec {
                    image: i.id.clone(),
                    ..Default::default()
                }),
                pinned: false,
            };
            (image, i)
        }))
    }
}

#[tonic::async_trait]
impl ImageService for CriService {
    async fn list_images(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let wanted = req
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .filter(|s| !s.image.is_empty());
        let ids: Vec<String> = match wanted {
            Some(spec) => vec![spec.image],
            None => {
                let images = self.daemon.images.clone();
                blocking(move || Ok(images.list(&Default::default())?))
                    .await?
                    .into_iter()
                    .map(|s| s.id)
                    .collect()
            }
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((image, _)) = self.image(id).await? {
                out.push(image);
            }
        }
        Ok(Response::new(ListImagesResponse { images: out }))
    }

    async fn image_status(
        &self,
        req: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        let req = req.into_inner();
        let name = req
            .image
            .map(|s| s.image)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Status::invalid_argument("image spec is required"))?;
        // A missing image is no error: the answer simply has no image.
        let Some((image, inspect)) = self.image(name).await? else {
            return Ok(Response::new(ImageStatusResponse::default()));
        };
        let mut info = HashMap::new();
        if req.verbose {
            let json = serde_json::to_string(&inspect)
                .map_err(|e| Status::internal(format!("encoding image info: {e}")))?;
            info.insert("info".to_string(), json);
        }
        Ok(Response::new(ImageStatusResponse {
            image: Some(image),
            info,
        }))
    }

    async fn pull_image(
        &self,
        req: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        let req = req.into_inner();
        let reference = parse_ref(req.image.as_ref())?;
        let auth = req.auth.map(|a| berth_api::AuthConfig {
            username: a.username,
            password: a.password,
            auth: a.auth,
            server_address: a.server_address,
            identity_token: a.identity_token,
            registry_token: a.registry_token,
            ..Default::default()
        });
        let platform = berth_registry::Platform::host();
        let id = crate::distribution::pull::pull_quiet(
            &self.daemon,
            &reference,
            &platform,
            auth.as_ref(),
        )
        .await
        .map_err(|e| {
            let code = super::error::status(ApiError {
                kind: e.kind,
                message: String::new(),
            })
            .code();
            Status::new(
                code,
                format!(
                    "failed to pull and unpack image {:?}: {}",
                    reference.to_string(),
                    e.message
                ),
            )
        })?;
        Ok(Response::new(PullImageResponse { image_ref: id }))
    }

    async fn remove_image(
        &self,
        req: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        let name = req
            .into_inner()
            .image
            .map(|s| s.image)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Status::invalid_argument("image spec is required"))?;
        let images = self.daemon.images.clone();
        let Ok(id) = images.resolve_id(&name) else {
            // Removing an image that is not there is done (the kubelet retries).
            return Ok(Response::new(RemoveImageResponse {}));
        };
        let d = self.daemon.clone();
        let before = d.image_labels();
        let rm_id = id.clone();
        let out = blocking(move || {
            let user = |image: &str| crate::routes::images::image_user(&d, image);
            match images.remove_image(&rm_id, true, true, &user) {
                Ok(out) => Ok(out),
                // A concurrent RemoveImage got there first: the image is gone, which is
                // what was asked (containerd answers success too).
                Err(_) if images.resolve_id(&rm_id).is_err() => Ok(Vec::new()),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        self.daemon.emit_image_delete_events(&out, &id, &before);
        Ok(Response::new(RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _req: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        let images = self.daemon.images.clone();
        let usage = blocking(move || Ok(images.disk_usage()?)).await?;
        let mountpoint = self.daemon.images.root().join("layers");
        let inodes = inodes_under(mountpoint.clone()).await;
        let fs = FilesystemUsage {
            timestamp: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
            fs_id: Some(FilesystemIdentifier {
                mountpoint: mountpoint.display().to_string(),
            }),
            used_bytes: Some(UInt64Value {
                value: u64::try_from(usage.layers_size).unwrap_or(0),
            }),
            inodes_used: inodes.map(|value| UInt64Value { value }),
        };
        Ok(Response::new(ImageFsInfoResponse {
            image_filesystems: vec![fs],
            container_filesystems: vec![],
        }))
    }
}

/// Files and directories under `dir` (the layers' inodes), counted on a blocking thread.
async fn inodes_under(dir: std::path::PathBuf) -> Option<u64> {
    tokio::task::spawn_blocking(move || {
        let mut count = 0u64;
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                count += 1;
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
        count
    })
    .await
    .ok()
}
