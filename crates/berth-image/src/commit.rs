//! `commit`: a container's upper directory becomes a new image on top of its image
//! (moby `daemon/commit.go` and `daemon/images/image_commit.go`).
//!
//! The new config is the request's config (or the container's), with the changes applied,
//! then merged with the container's config ([`merge_commit_config`]). The upper directory
//! is packed (overlay whiteouts → `.wh.` entries), stored as a layer like any other, and
//! appended to the parent's layers, unless the directory is empty: then the history entry is marked
//! `empty_layer` and no layer is added, as Docker does.

use std::fs;
use std::path::{Path, PathBuf};

use berth_api::ContainerConfig;

use crate::changes::apply_changes;
use crate::content::{io_err, random_hex};
use crate::import::{IngestedLayer, TempDir};
use crate::reference::Reference;
use crate::{now_rfc3339, HistoryEntry, ImageError, ImageStore};

/// What `POST /commit` passes to the store.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The container's image (anything `resolve` accepts; normally its ID).
    pub parent: String,
    /// The container's overlay upper directory.
    pub upper: PathBuf,
    pub container_id: String,
    /// The container's own config (merged into the new image's config).
    pub container_config: ContainerConfig,
    /// The request body's config, if one was sent.
    pub config: Option<ContainerConfig>,
    /// Dockerfile instructions (`--change`).
    pub changes: Vec<String>,
    pub author: String,
    /// `-m` message: the history comment.
    pub comment: String,
    /// `repo[:tag]` for the new image.
    pub reference: Option<String>,
    /// A container under `--userns-remap`: its layer's host ids back to its own.
    pub unmap: Option<crate::pack::IdUnmap>,
}

/// moby's `merge`: fields the user left empty come from the container's config; ports,
/// env (by key), labels and volumes are unions with the user's winning.
pub fn merge_commit_config(user: &mut ContainerConfig, container: &ContainerConfig) {
    if user.user.is_empty() {
        user.user = container.user.clone();
    }
    match (&mut user.exposed_ports, &container.exposed_ports) {
        (None, Some(c)) => user.exposed_ports = Some(c.clone()),
        (Some(u), Some(c)) => {
            for (k, v) in c {
                u.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        _ => {}
    }
    if user.env.is_empty() {
        user.env = container.env.clone();
    } else {
        for kv in &container.env {
            let key = kv.split('=').next().unwrap_or_default();
            if !user.env.iter().any(|u| u.split('=').next() == Some(key)) {
                user.env.push(kv.clone());
            }
        }
    }
    for (k, v) in &container.labels {
        user.labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = container.cmd.clone();
            user.args_escaped = container.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint = container.entrypoint.clone();
        }
    }
    if user.healthcheck.is_none() {
        user.healthcheck = container.healthcheck.clone();
    }
    if user.working_dir.is_empty() {
        user.working_dir = container.working_dir.clone();
    }
    match (&mut user.volumes, &container.volumes) {
        (None, Some(c)) => user.volumes = Some(c.clone()),
        (Some(u), Some(c)) => {
            for (k, v) in c {
                u.insert(k.clone(), v.clone());
            }
        }
        _ => {}
    }
    if user.stop_signal.as_deref().is_none_or(str::is_empty) {
        user.stop_signal = container.stop_signal.clone();
    }
}

impl ImageStore {
    /// Packs `dir` to a temp tar, then stores it like any layer (unpacked + tar blob).
    pub(crate) fn pack_and_ingest(&self, dir: &Path) -> Result<IngestedLayer, ImageError> {
        self.pack_and_ingest_unmapped(dir, None)
    }

    /// [`Self::pack_and_ingest`] with the ids taken back through `unmap`.
    pub(crate) fn pack_and_ingest_unmapped(
        &self,
        dir: &Path,
        unmap: Option<crate::pack::IdUnmap>,
    ) -> Result<IngestedLayer, ImageError> {
        let tmp = TempDir::new(
            self.content
                .tmp_dir()
                .join(format!("commit-{}", random_hex())),
        );
        fs::create_dir(tmp.path()).map_err(io_err("creating the commit temp dir"))?;
        let tar_path = tmp.path().join("layer.tar");
        let file = fs::File::create(&tar_path).map_err(io_err("creating the commit layer tar"))?;
        crate::pack::pack_layer_unmapped(dir, std::io::BufWriter::new(file), unmap)
            .and_then(|mut w| std::io::Write::flush(&mut w))
            .map_err(io_err(format!("packing {}", dir.display())))?;
        let mut f = fs::File::open(&tar_path).map_err(io_err("reading the commit layer tar"))?;
        self.ingest_local_layer(&mut f)
    }

    /// Commits a container's changes as a new image; returns its ID.
    pub fn commit(&self, opts: &CommitOptions) -> Result<String, ImageError> {
        let tags = match opts.reference.as_deref().filter(|s| !s.is_empty()) {
            Some(r) => {
                let r = Reference::parse_normalized(r)?.with_default_tag();
                if r.digest().is_some() {
                    return Err(ImageError::InvalidArgument(
                        "cannot commit to digest reference".into(),
                    ));
                }
                vec![r]
            }
            None => Vec::new(),
        };
        let mut run_config = opts
            .config
            .clone()
            .unwrap_or_else(|| opts.container_config.clone());
        apply_changes(&mut run_config, &opts.changes)?;
        merge_commit_config(&mut run_config, &opts.container_config);

        let parent_id = self.resolve_id(&opts.parent)?;
        let parent = self.image_config(&parent_id)?;

        let upper_is_empty = fs::read_dir(&opts.upper)
            .map_err(io_err(format!("reading {}", opts.upper.display())))?
            .next()
            .is_none();
        let layer = if upper_is_empty {
            None
        } else {
            Some(self.pack_and_ingest_unmapped(&opts.upper, opts.unmap.clone())?)
        };
        let empty = layer.is_none();

        let created = now_rfc3339();
        let mut config = parent.clone();
        config.created = Some(created.clone());
        config.author = opts.author.clone();
        config.comment = opts.comment.clone();
        config.config = run_config;
        config.parent = parent_id.clone();
        config.container = opts.container_id.clone();
        config.history.push(HistoryEntry {
            created: Some(created),
            created_by: opts
                .container_config
                .cmd
                .clone()
                .unwrap_or_default()
                .join(" "),
            author: opts.author.clone(),
            comment: opts.comment.clone(),
            empty_layer: empty,
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
        self.commit_image(&bytes, &config, layers, &tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sv(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn merge_fills_what_the_user_left_empty() {
        let container = ContainerConfig {
            user: "nobody".into(),
            env: vec!["A=1".into(), "B=2".into()],
            cmd: sv(&["sh"]),
            working_dir: "/srv".into(),
            labels: [("x".to_string(), "1".to_string())].into_iter().collect(),
            ..Default::default()
        };
        let mut user = ContainerConfig {
            env: vec!["B=9".into()],
            ..Default::default()
        };
        merge_commit_config(&mut user, &container);
        assert_eq!(user.user, "nobody");
        assert_eq!(user.env, vec!["B=9", "A=1"]);
        assert_eq!(user.cmd, sv(&["sh"]));
        assert_eq!(user.working_dir, "/srv");
        assert_eq!(user.labels.get("x").map(String::as_str), Some("1"));

        let mut with_entrypoint = ContainerConfig {
            entrypoint: sv(&["top"]),
            ..Default::default()
        };
        merge_commit_config(&mut with_entrypoint, &container);
        assert_eq!(
            with_entrypoint.cmd, None,
            "an entrypoint keeps the container's cmd out"
        );
    }
}
