//! The classic builder's step cache as build-cache entries: every image a build step
//! committed ([`ImageMeta::build_step`]) is one entry, with its last use (its commit and
//! every cache hit) and use count in its record, so the daemon's build-cache collector
//! can keep it under the budget beside the cache mounts.
//!
//! What may never go: a tagged image, an image that a tagged image, a container or an
//! image of another kind (pulled, loaded, committed) was built on, and an image a
//! container uses. Those entries are listed as `shared` (images keep them) or
//! `in_use` (a container does). An entry goes only when nothing was built on it any
//! more, so the collector removes a chain from its newest step down; an entry's last
//! use counts the uses of the steps built on it (a hit on a step passes through its
//! parent's).

use std::collections::{HashMap, HashSet};

use redb::ReadableTable;

use crate::schema::{all_bytes, all_strs, decode, encode, ImageMeta, LayerMeta, IMAGES, LAYERS};
use crate::{ImageError, ImageStore};

/// One step-cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepCacheEntry {
    /// The image ID (`sha256:…`).
    pub id: String,
    /// The parent image ID when the parent is an entry too, else empty.
    pub parent: String,
    /// Bytes of the layer the step added (0: a metadata step).
    pub size: i64,
    /// Unix nanoseconds.
    pub created: i64,
    /// Unix nanoseconds: the latest use of the step or of a step built on it.
    pub last_used: i64,
    pub usage_count: u64,
    /// The step (`RUN …`, `COPY …`, `ENV …`).
    pub description: String,
    /// Images below it in its chain (a child is deeper than its parent).
    pub depth: u32,
    /// Tagged, or a tagged (or not build-step) image was built on it.
    pub shared: bool,
    /// A container uses it or an image built on it.
    pub in_use: bool,
}

fn nanos(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .and_then(|d| d.timestamp_nanos_opt())
        .unwrap_or(0)
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// The step a build-step image records: the instruction of a `#(nop)` step, else the
/// RUN command.
pub fn step_description(cmd: &[String]) -> String {
    if let Some(i) = cmd
        .iter()
        .position(|c| c.trim_start().starts_with("#(nop)"))
    {
        let first = cmd[i].trim_start().trim_start_matches("#(nop)").trim();
        let rest = std::iter::once(first).chain(cmd[i + 1..].iter().map(String::as_str));
        return rest
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .trim()
            .to_string();
    }
    format!("RUN {}", cmd.join(" ")).trim().to_string()
}

impl ImageStore {
    /// Notes a use of a build-step image (a cache hit); other images are left alone.
    pub fn touch_build_step(&self, id: &str) -> Result<(), ImageError> {
        self.update_build_step(id, false)
    }

    /// Marks a just-committed image as a build step (a new entry, or a recommit of an
    /// identical one: one more use).
    pub(crate) fn mark_build_step(&self, id: &str) -> Result<(), ImageError> {
        self.update_build_step(id, true)
    }

    fn update_build_step(&self, id: &str, mark: bool) -> Result<(), ImageError> {
        let _g = self.lock();
        let txn = self.db.begin_write()?;
        {
            let mut images = txn.open_table(IMAGES)?;
            let Some(v) = images.get(id)?.map(|v| v.value().to_vec()) else {
                return Err(ImageError::NotFound(id.to_string()));
            };
            let mut meta: ImageMeta = decode(&v, "image record")?;
            if !meta.build_step && !mark {
                return Ok(());
            }
            meta.build_step = true;
            meta.last_used = now_nanos().max(meta.last_used);
            meta.usage_count += 1;
            images.insert(id, encode(&meta).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Every step-cache entry (see the module docs); `used(id)`: a container uses the
    /// image.
    pub fn step_cache_entries(
        &self,
        used: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<StepCacheEntry>, ImageError> {
        let rtxn = self.db.begin_read()?;
        let images = all_bytes(&rtxn.open_table(IMAGES)?)?;
        let tags = all_strs(&rtxn.open_table(crate::schema::TAGS)?)?;
        let layers = all_bytes(&rtxn.open_table(LAYERS)?)?;
        drop(rtxn);
        let tagged: HashSet<String> = tags.into_iter().map(|(_, id)| id).collect();
        let mut layer_size: HashMap<String, i64> = HashMap::new();
        for (chain, v) in &layers {
            layer_size.insert(chain.clone(), decode::<LayerMeta>(v, "layer record")?.size);
        }
        let mut metas: HashMap<String, ImageMeta> = HashMap::new();
        for (id, v) in images {
            metas.insert(id, decode(&v, "image record")?);
        }
        // How many images every image was built on (a child is deeper than its parent).
        let mut depth: HashMap<&str, u32> = HashMap::new();
        for id in metas.keys() {
            let mut n = 0;
            let mut cur = id.as_str();
            while let Some((k, _)) = metas.get_key_value(metas[cur].parent.as_str()) {
                n += 1;
                cur = k.as_str();
                if n > 10_000 {
                    break;
                }
            }
            depth.insert(id.as_str(), n);
        }
        // Deepest first, so what a child holds reaches its parent before the parent
        // passes it on.
        let mut order: Vec<&str> = metas.keys().map(String::as_str).collect();
        order.sort_by_key(|id| std::cmp::Reverse(depth[id]));
        let mut shared: HashSet<&str> = HashSet::new();
        let mut in_use: HashSet<&str> = HashSet::new();
        let mut last_used: HashMap<&str, i64> = HashMap::new();
        for &id in &order {
            let m = &metas[id];
            let own = if m.last_used > 0 {
                m.last_used
            } else {
                nanos(&m.stored_at)
            };
            let lu = last_used.entry(id).or_insert(0);
            *lu = (*lu).max(own);
            let lu = *lu;
            if !m.build_step || tagged.contains(id) {
                shared.insert(id);
            }
            if used(id) {
                in_use.insert(id);
            }
            let Some((parent, _)) = metas.get_key_value(m.parent.as_str()) else {
                continue;
            };
            let parent = parent.as_str();
            if shared.contains(id) {
                shared.insert(parent);
            }
            if in_use.contains(id) {
                in_use.insert(parent);
            }
            let pl = last_used.entry(parent).or_insert(0);
            *pl = (*pl).max(lu);
        }
        let mut out = Vec::new();
        for (id, m) in &metas {
            if !m.build_step {
                continue;
            }
            let parent = metas.get(&m.parent);
            let parent_layers = parent.map(|p| p.chain_ids.len()).unwrap_or(0);
            let size = if m.chain_ids.len() > parent_layers {
                m.chain_ids
                    .last()
                    .and_then(|c| layer_size.get(c))
                    .copied()
                    .unwrap_or(0)
            } else {
                0
            };
            let cmd = self
                .image_config_shared(id)
                .ok()
                .and_then(|c| c.container_config.as_ref().and_then(|cc| cc.cmd.clone()))
                .unwrap_or_default();
            out.push(StepCacheEntry {
                id: id.clone(),
                parent: match parent {
                    Some(p) if p.build_step => m.parent.clone(),
                    _ => String::new(),
                },
                size,
                created: nanos(&m.stored_at),
                last_used: last_used.get(id.as_str()).copied().unwrap_or(0),
                usage_count: m.usage_count,
                description: step_description(&cmd),
                depth: depth[id.as_str()],
                shared: shared.contains(id.as_str()),
                in_use: in_use.contains(id.as_str()),
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Removes one step-cache entry if it may go now: a build step, untagged, nothing
    /// built on it, no container using it (`used`). Returns the bytes freed, None when
    /// it stays.
    pub fn remove_step_cache_entry(
        &self,
        id: &str,
        used: &dyn Fn(&str) -> bool,
    ) -> Result<Option<i64>, ImageError> {
        let _g = self.lock();
        let Ok(meta) = self.image_meta(id) else {
            return Ok(None);
        };
        if !meta.build_step || !self.refs_of(id)?.is_empty() || self.has_children(id)? || used(id) {
            return Ok(None);
        }
        let (_, bytes) = self.delete_image(id)?;
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store_tests::{fixture, import, layer_tar};
    use crate::BuildStepCommit;

    fn step(s: &ImageStore, parent: &str, file: Option<(&str, usize)>, cmd: &str) -> String {
        let upper = tempfile::tempdir().unwrap();
        if let Some((name, size)) = file {
            std::fs::write(upper.path().join(name), vec![1u8; size]).unwrap();
        }
        let cc = berth_api::ContainerConfig {
            cmd: Some(vec!["/bin/sh".into(), "-c".into(), cmd.into()]),
            ..Default::default()
        };
        s.commit_build_step(&BuildStepCommit {
            parent: parent.into(),
            upper: upper.path().to_path_buf(),
            container_config: cc,
            ..Default::default()
        })
        .unwrap()
    }

    fn entry<'a>(e: &'a [StepCacheEntry], id: &str) -> &'a StepCacheEntry {
        e.iter().find(|x| x.id == id).unwrap()
    }

    #[test]
    fn steps_are_entries_kept_while_tagged_or_used() {
        let f = fixture();
        let s = &f.store;
        let base = import(s, &layer_tar(&[("bin/sh", b"x")]), Some("base:1"));
        let a = step(s, &base, Some(("a", 100)), "make a");
        let b = step(s, &a, Some(("b", 300)), "make b");
        let c = step(s, &b, None, "#(nop) ENV x=1");
        let none = |_: &str| false;
        let e = s.step_cache_entries(&none).unwrap();
        assert_eq!(e.len(), 3, "the base image is no entry: {e:?}");
        assert_eq!(entry(&e, &a).size, 100);
        assert_eq!(entry(&e, &a).parent, "", "the base is no entry");
        assert_eq!(entry(&e, &b).size, 300);
        assert_eq!(entry(&e, &b).parent, a);
        assert_eq!(entry(&e, &c).size, 0, "a metadata step adds no layer");
        assert_eq!(entry(&e, &c).description, "ENV x=1");
        assert_eq!(entry(&e, &a).description, "RUN /bin/sh -c make a");
        assert!(e
            .iter()
            .all(|x| !x.shared && !x.in_use && x.usage_count == 1));
        assert!(entry(&e, &b).depth > entry(&e, &a).depth);

        // A hit on the parent: one more use; the child's use counts for the parent.
        s.touch_build_step(&a).unwrap();
        s.touch_build_step(&c).unwrap();
        let e = s.step_cache_entries(&none).unwrap();
        assert_eq!(entry(&e, &a).usage_count, 2);
        assert!(entry(&e, &a).last_used >= entry(&e, &c).last_used);
        assert!(entry(&e, &b).last_used >= entry(&e, &c).last_used);
        // Touching an image of another kind changes nothing.
        s.touch_build_step(&base).unwrap();
        assert_eq!(s.image_meta(&base).unwrap().usage_count, 0);

        // Tagged at the top: the whole chain is shared and stays.
        s.tag(&c, "app:1", "").unwrap();
        let e = s.step_cache_entries(&none).unwrap();
        assert!(e.iter().all(|x| x.shared), "{e:?}");
        assert_eq!(s.remove_step_cache_entry(&c, &none).unwrap(), None);
        s.tag(&base, "app:1", "").unwrap();
        // A container on the middle step: it and its parent are in use.
        let on_b = |id: &str| id == b;
        let e = s.step_cache_entries(&on_b).unwrap();
        assert!(!entry(&e, &c).in_use && entry(&e, &b).in_use && entry(&e, &a).in_use);
        assert_eq!(s.remove_step_cache_entry(&b, &on_b).unwrap(), None);
        // A parent goes only after what was built on it.
        assert_eq!(s.remove_step_cache_entry(&b, &none).unwrap(), None);
        assert_eq!(s.remove_step_cache_entry(&c, &none).unwrap(), Some(0));
        assert_eq!(s.remove_step_cache_entry(&b, &none).unwrap(), Some(300));
        assert_eq!(s.remove_step_cache_entry(&a, &none).unwrap(), Some(100));
        assert!(s.step_cache_entries(&none).unwrap().is_empty());
        assert!(s.resolve("base:1").is_ok());
        assert!(s.check().unwrap().is_empty());
    }

    #[test]
    fn descriptions() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            step_description(&v(&["/bin/sh", "-c", "#(nop) ", "ENV a=1"])),
            "ENV a=1"
        );
        assert_eq!(
            step_description(&v(&["/bin/sh", "-c", "echo hi"])),
            "RUN /bin/sh -c echo hi"
        );
    }
}
