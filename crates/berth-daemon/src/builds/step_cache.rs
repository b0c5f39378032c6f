//! The classic builder's step cache under the build-cache budget: the image store's
//! step entries ([`berth_image::StepCacheEntry`]) as [`CacheRecord`]s of type
//! `regular`, with the containers that use images taken into account.

use std::collections::HashSet;

use super::gc::{CacheRecord, StepCache, STEP};
use crate::state::Daemon;

fn bare(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

/// The step cache of a daemon.
pub struct DaemonSteps<'a>(pub &'a Daemon);

impl DaemonSteps<'_> {
    /// The images containers use (bare hex IDs); None when the containers cannot be
    /// listed (then nothing may go).
    fn used(&self) -> Option<HashSet<String>> {
        let opts = crate::containers::ListOptions {
            all: true,
            limit: 0,
            size: false,
            filters: Default::default(),
        };
        let rows = self.0.containers.list(&opts).ok()?;
        Some(
            rows.into_iter()
                .map(|c| bare(&c.image_id).to_string())
                .collect(),
        )
    }
}

impl StepCache for DaemonSteps<'_> {
    fn records(&self, busy: bool) -> Vec<CacheRecord> {
        let used = self.used();
        let is_used = |id: &str| used.as_ref().is_none_or(|u| u.contains(bare(id)));
        let entries = match self.0.images.step_cache_entries(&is_used) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "listing the build step cache");
                return Vec::new();
            }
        };
        entries
            .into_iter()
            .map(|e| CacheRecord {
                id: bare(&e.id).to_string(),
                kind: STEP,
                description: e.description,
                in_use: busy || e.in_use,
                shared: e.shared,
                parent: bare(&e.parent).to_string(),
                depth: e.depth,
                size: e.size.max(0) as u64,
                created: e.created,
                last_used: e.last_used,
                usage_count: e.usage_count,
                dir: Default::default(),
            })
            .collect()
    }

    fn remove(&self, r: &CacheRecord) -> Option<u64> {
        let used = self.used()?;
        let is_used = |id: &str| used.contains(bare(id));
        match self
            .0
            .images
            .remove_step_cache_entry(&format!("sha256:{}", r.id), &is_used)
        {
            Ok(freed) => freed.map(|n| n.max(0) as u64),
            Err(e) => {
                tracing::warn!(id = %r.id, error = %e, "removing a build step cache entry");
                None
            }
        }
    }
}
