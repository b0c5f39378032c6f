//! Manifests and descriptors: Docker schema2, OCI image manifests, Docker manifest lists
//! and OCI indexes (parsing, classification, platform selection).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Platform, RegistryError};

pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const MEDIA_DOCKER_SCHEMA1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The `Accept` header of a manifest request: everything Berth can pull, and schema1 so
/// that a schema1-only image is recognised and refused with Docker's deprecation text.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws, \
application/json";

/// An OCI content descriptor (JSON names as in the image spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor of `bytes` with `media_type`.
    pub fn for_bytes(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: sha256_digest(bytes),
            size: bytes.len() as u64,
            platform: None,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// `sha256:<hex>` of `bytes` (the content store's own function).
pub use berth_image::content::sha256_digest;

/// A parsed manifest body.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// An image manifest (Docker schema2 or OCI).
    Image {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    /// A manifest list or OCI index.
    #[allow(dead_code)]
    Index {
        media_type: String,
        manifests: Vec<Descriptor>,
    },
    /// Docker schema1 (refused by the caller).
    Schema1,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    #[serde(rename = "fsLayers")]
    fs_layers: Option<serde_json::Value>,
}

impl Manifest {
    /// Parses `bytes`, served with `content_type`. The body's `mediaType` wins over the
    /// header; without either, the shape decides (OCI allows omitting it).
    pub fn parse(content_type: &str, bytes: &[u8]) -> Result<Manifest, RegistryError> {
        let content_type = content_type.split(';').next().unwrap_or("").trim();
        if content_type == MEDIA_DOCKER_SCHEMA1 || content_type == MEDIA_DOCKER_SCHEMA1_SIGNED {
            return Ok(Manifest::Schema1);
        }
        let raw: RawManifest = serde_json::from_slice(bytes)
            .map_err(|e| RegistryError::Registry(format!("error parsing manifest: {e}")))?;
        if raw.schema_version == 1 || raw.fs_layers.is_some() {
            return Ok(Manifest::Schema1);
        }
        let media_type = raw
            .media_type
            .clone()
            .filter(|m| !m.is_empty())
            .or_else(|| {
                (content_type != "application/json" && !content_type.is_empty())
                    .then(|| content_type.to_string())
            })
            .unwrap_or_else(|| {
                if raw.manifests.is_some() {
                    MEDIA_OCI_INDEX
                } else {
                    MEDIA_OCI_MANIFEST
                }
                .to_string()
            });
        match media_type.as_str() {
            MEDIA_DOCKER_LIST | MEDIA_OCI_INDEX => Ok(Manifest::Index {
                media_type,
                manifests: raw.manifests.unwrap_or_default(),
            }),
            MEDIA_DOCKER_MANIFEST | MEDIA_OCI_MANIFEST => {
                let config = raw.config.ok_or_else(|| {
                    RegistryError::Registry("error parsing manifest: missing config".into())
                })?;
                Ok(Manifest::Image {
                    media_type,
                    config,
                    layers: raw.layers.unwrap_or_default(),
                })
            }
            MEDIA_DOCKER_SCHEMA1 | MEDIA_DOCKER_SCHEMA1_SIGNED => Ok(Manifest::Schema1),
            other => Err(RegistryError::InvalidArgument(format!(
                "unsupported media type {other}"
            ))),
        }
    }
}

/// The index entry for `platform` (containerd's ordering: best match first, then
/// document order), or Docker's "no matching manifest" error.
pub fn select_platform<'a>(
    manifests: &'a [Descriptor],
    platform: &Platform,
) -> Result<&'a Descriptor, RegistryError> {
    manifests
        .iter()
        .filter(|d| {
            matches!(
                d.media_type.as_str(),
                MEDIA_DOCKER_MANIFEST | MEDIA_OCI_MANIFEST | ""
            )
        })
        .filter_map(|d| Some((platform.match_rank(d.platform.as_ref()?)?, d)))
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, d)| d)
        .ok_or_else(|| {
            RegistryError::NotFound(format!(
                "no matching manifest for {platform} in the manifest list entries"
            ))
        })
}

/// moby's `validateMediaType` and `checkSupportedMediaType` for an image manifest: the
/// config must be an image config (old registries' `application/octet-stream`,
/// `application/json`, `text/html` and empty included), the manifest and layers of an
/// image family (`application/vnd.oci.image*`, `application/vnd.docker*`).
pub fn check_image_media_types(
    manifest_media_type: &str,
    config: &Descriptor,
    layers: &[Descriptor],
) -> Result<(), RegistryError> {
    const IMAGE_CONFIG_TYPES: [&str; 6] = [
        MEDIA_DOCKER_CONFIG,
        MEDIA_OCI_CONFIG,
        "application/octet-stream",
        "application/json",
        "text/html",
        "",
    ];
    if !IMAGE_CONFIG_TYPES.contains(&config.media_type.as_str()) {
        let class = if config.media_type == "application/vnd.docker.plugin.v1+json" {
            "plugin"
        } else {
            "unknown"
        };
        return Err(RegistryError::InvalidArgument(format!(
            "Encountered remote {:?}({class}) when fetching",
            config.media_type
        )));
    }
    let supported = |mt: &str| -> Result<(), RegistryError> {
        let lower = mt.to_lowercase();
        if lower.starts_with("application/vnd.docker.ai.") {
            return Err(RegistryError::InvalidArgument(
                "AI models are not yet supported by the Engine, please use \"docker model pull/run\" instead".into(),
            ));
        }
        let ok = ["application/vnd.oci.image", "application/vnd.docker"]
            .iter()
            .any(|p| lower == *p || lower.starts_with(&format!("{p}.")))
            || [
                "application/octet-stream",
                "application/json",
                "text/html",
                "",
            ]
            .contains(&lower.as_str());
        if ok {
            Ok(())
        } else {
            Err(RegistryError::InvalidArgument(format!(
                "unsupported media type {mt}"
            )))
        }
    };
    supported(manifest_media_type)?;
    layers.iter().try_for_each(|l| supported(&l.media_type))
}

/// Docker's refusal of schema1 images (moby `DeprecatedSchema1ImageError`).
pub fn schema1_error(reference: &str) -> RegistryError {
    RegistryError::InvalidArgument(format!(
        "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. \
Suggest the author of {reference} to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2. \
More information at https://docs.docker.com/go/deprecated-image-specs/"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>, digest: &str) -> Descriptor {
        Descriptor {
            media_type: MEDIA_OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
            urls: vec![],
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn classifies_manifests() {
        let m = Manifest::parse(
            "application/vnd.docker.distribution.manifest.v2+json",
            br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"x","digest":"sha256:a","size":1},"layers":[]}"#,
        )
        .unwrap();
        assert!(
            matches!(m, Manifest::Image { ref media_type, .. } if media_type == MEDIA_DOCKER_MANIFEST)
        );
        let m =
            Manifest::parse("application/json", br#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
        assert!(
            matches!(m, Manifest::Index { ref media_type, .. } if media_type == MEDIA_OCI_INDEX)
        );
        let m = Manifest::parse(MEDIA_DOCKER_SCHEMA1_SIGNED, b"{}").unwrap();
        assert!(matches!(m, Manifest::Schema1));
        let m =
            Manifest::parse("application/json", br#"{"schemaVersion":1,"fsLayers":[]}"#).unwrap();
        assert!(matches!(m, Manifest::Schema1));
        assert!(Manifest::parse("text/plain", b"nope").is_err());
        assert_eq!(
            Manifest::parse(
                "application/vnd.foo",
                br#"{"schemaVersion":2,"mediaType":"application/vnd.foo"}"#
            )
            .unwrap_err()
            .to_string(),
            "unsupported media type application/vnd.foo"
        );
    }

    #[test]
    fn media_type_checks_follow_moby() {
        let cfg = |mt: &str| Descriptor::for_bytes(mt, b"{}");
        let layer = cfg("application/vnd.oci.image.layer.v1.tar+zstd");
        assert!(check_image_media_types(
            MEDIA_OCI_MANIFEST,
            &cfg(MEDIA_OCI_CONFIG),
            std::slice::from_ref(&layer)
        )
        .is_ok());
        assert!(check_image_media_types(MEDIA_DOCKER_MANIFEST, &cfg(""), &[]).is_ok());
        let helm = cfg("application/vnd.cncf.helm.config.v1+json");
        assert_eq!(
            check_image_media_types(MEDIA_OCI_MANIFEST, &helm, &[]).unwrap_err().to_string(),
            "Encountered remote \"application/vnd.cncf.helm.config.v1+json\"(unknown) when fetching"
        );
        let odd = cfg("application/vnd.cncf.helm.chart.content.v1.tar+gzip");
        assert_eq!(
            check_image_media_types(MEDIA_OCI_MANIFEST, &cfg(MEDIA_OCI_CONFIG), &[layer, odd])
                .unwrap_err()
                .to_string(),
            "unsupported media type application/vnd.cncf.helm.chart.content.v1.tar+gzip"
        );
        let ai = cfg("application/vnd.docker.ai.gguf.v3");
        assert!(
            check_image_media_types(MEDIA_OCI_MANIFEST, &cfg(MEDIA_OCI_CONFIG), &[ai])
                .unwrap_err()
                .to_string()
                .starts_with("AI models are not yet supported")
        );
    }

    #[test]
    fn selects_platforms() {
        let list = vec![
            entry("arm", Some("v6"), "sha256:armv6"),
            entry("arm64", Some("v8"), "sha256:arm64"),
            entry("amd64", None, "sha256:amd64"),
            entry("arm", Some("v7"), "sha256:armv7"),
        ];
        let pick = |s: &str| {
            select_platform(&list, &Platform::parse(s).unwrap())
                .unwrap()
                .digest
                .clone()
        };
        assert_eq!(pick("linux/amd64"), "sha256:amd64");
        assert_eq!(pick("linux/arm64"), "sha256:arm64");
        assert_eq!(pick("linux/arm64/v8"), "sha256:arm64");
        assert_eq!(pick("linux/arm/v7"), "sha256:armv7");
        assert_eq!(pick("linux/arm/v6"), "sha256:armv6");
        let err = select_platform(&list, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        assert_eq!(err.kind(), berth_api::ErrorKind::NotFound);
    }
}
