//! A build step's commit (moby `CommitBuildStep`) and the lookups of the classic
//! builder's cache: the image records every step leaves behind (its parent, its
//! `container_config`) are the cache, so it survives a daemon restart.

use std::fs;
use std::path::PathBuf;

use berth_api::ContainerConfig;

use crate::content::io_err;
use crate::import::go_arch;
use crate::schema::{decode, ImageMeta, IMAGES};
use crate::{now_rfc3339, HistoryEntry, ImageConfig, ImageError, ImageStore, RootFsConfig};

/// What a build step commits.
#[derive(Debug, Clone, Default)]
pub struct BuildStepCommit {
    /// The parent image ID; empty for the first step of a `FROM scratch` stage.
    pub parent: String,
    /// The step's writable layer (the container's or workspace's `upper/`).
    pub upper: PathBuf,
    pub container_id: String,
    /// The new image's config.
    pub config: ContainerConfig,
    /// The step's config: its Cmd is the history's CreatedBy.
    pub container_config: ContainerConfig,
    /// MAINTAINER.
    pub author: String,
    /// `upper` may become the layer itself (a workspace nothing else needs), saving a
    /// copy of its files.
    pub consume_upper: bool,
    /// A step container under `--userns-remap`: its layer's host ids back to its own.
    pub unmap: Option<crate::pack::IdUnmap>,
    /// The `created` time to record (a reproducible build's epoch); None: now.
    pub created: Option<String>,
}

impl ImageStore {
    /// Commits a build step; an empty `upper` adds no layer (an `empty_layer` entry).
    pub fn commit_build_step(&self, c: &BuildStepCommit) -> Result<String, ImageError> {
        let (mut config, parent_id) = if c.parent.is_empty() {
            (
                ImageConfig {
                    architecture: go_arch().to_string(),
                    os: "linux".into(),
                    rootfs: RootFsConfig {
                        kind: "layers".into(),
                        diff_ids: Vec::new(),
                    },
                    ..Default::default()
                },
                String::new(),
            )
        } else {
            let id = self.resolve_id(&c.parent)?;
            (self.image_config(&id)?, id)
        };
        let upper_is_empty = match fs::read_dir(&c.upper) {
            Ok(mut rd) => rd.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(io_err(format!("reading {}", c.upper.display()))(e)),
        };
        let layer = if upper_is_empty {
            None
        } else if c.consume_upper {
            // A rename across filesystems fails: then pack and unpack as for a container.
            match self.adopt_dir_as_layer(&c.upper) {
                Ok(l) => Some(l),
                Err(_) => Some(self.pack_and_ingest(&c.upper)?),
            }
        } else {
            Some(self.pack_and_ingest_unmapped(&c.upper, c.unmap.clone())?)
        };
        let created = c.created.clone().unwrap_or_else(now_rfc3339);
        config.created = Some(created.clone());
        config.author = c.author.clone();
        config.comment = String::new();
        config.config = c.config.clone();
        config.container_config = Some(c.container_config.clone());
        config.parent = parent_id;
        config.container = c.container_id.clone();
        config.history.push(HistoryEntry {
            created: Some(created),
            created_by: c.container_config.cmd.clone().unwrap_or_default().join(" "),
            author: c.author.clone(),
            comment: String::new(),
            empty_layer: layer.is_none(),
        });
        let mut layers: Vec<_> = config.rootfs.diff_ids.iter().map(|_| None).collect();
        if let Some(layer) = layer {
            config.rootfs.diff_ids.push(layer.diff_id.clone());
            layers.push(Some(layer));
        }
        if config.rootfs.kind.is_empty() {
            config.rootfs.kind = "layers".into();
        }
        let bytes =
            serde_json::to_vec(&config).map_err(|e| ImageError::InvalidArgument(e.to_string()))?;
        let id = self.commit_image(&bytes, &config, layers, &[])?;
        self.mark_build_step(&id)?;
        Ok(id)
    }

    /// Images committed by build steps on top of `parent` (empty: on nothing), newest
    /// first, with their step configs.
    pub fn build_children(
        &self,
        parent: &str,
    ) -> Result<Vec<(String, ContainerConfig)>, ImageError> {
        let rtxn = self.db.begin_read()?;
        let images = crate::schema::all_bytes(&rtxn.open_table(IMAGES)?)?;
        drop(rtxn);
        let mut out = Vec::new();
        for (id, v) in images {
            let meta: ImageMeta = decode(&v, "image record")?;
            if meta.parent != parent {
                continue;
            }
            let config = self.image_config_shared(&id)?;
            if parent.is_empty() && !config.rootfs.diff_ids.is_empty() && config.history.len() != 1
            {
                continue;
            }
            if let Some(cc) = &config.container_config {
                out.push((config.created.clone().unwrap_or_default(), id, cc.clone()));
            }
        }
        out.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(out.into_iter().map(|(_, id, cc)| (id, cc)).collect())
    }

    /// The image and its parents, nearest first.
    pub fn ancestors(&self, name: &str) -> Result<Vec<String>, ImageError> {
        let mut out = Vec::new();
        let mut cur = self.resolve_id(name)?;
        while !cur.is_empty() && out.len() < 10_000 {
            out.push(cur.clone());
            cur = match self.image_meta(&cur) {
                Ok(m) => m.parent,
                Err(_) => break,
            };
        }
        Ok(out)
    }
}
