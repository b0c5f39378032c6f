//! `tag` and `remove` (`docker tag`, `docker rmi`) with moby's semantics
//! (`daemon/images/image_delete.go`).

use berth_api::ImageDeleteItem;
use redb::ReadableTable;

use crate::reference::Reference;
use crate::schema::{decode, encode, ImageMeta, LayerMeta, IMAGES, LAYERS, TAGS};
use crate::{now_rfc3339, short_id, ImageError, ImageStore};

/// A container that uses an image, as the delete conflict checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUser {
    pub container_id: String,
    pub running: bool,
}

fn untagged(s: String) -> ImageDeleteItem {
    ImageDeleteItem {
        untagged: Some(s),
        deleted: None,
    }
}

fn deleted(s: String) -> ImageDeleteItem {
    ImageDeleteItem {
        untagged: None,
        deleted: Some(s),
    }
}

/// moby's `isSingleReference`: at most one tag, and every reference in one repository.
fn is_single_reference(refs: &[Reference]) -> bool {
    let tags = refs.iter().filter(|r| r.digest().is_none()).count();
    if tags > 1 {
        return false;
    }
    let mut names = refs.iter().map(|r| r.name());
    match names.next() {
        None => true,
        Some(first) => names.all(|n| n == first),
    }
}

fn conflict(id: &str, hard: bool, message: &str) -> ImageError {
    let force = if hard {
        "cannot be forced"
    } else {
        "must be forced"
    };
    ImageError::Conflict(format!(
        "conflict: unable to delete {} ({force}) - {message}",
        short_id(id)
    ))
}

impl ImageStore {
    /// Tags `source` as `repo:tag` (a tag moved away from another image leaves that
    /// image dangling). An empty `tag` means `latest`; `repo` may carry the tag itself.
    pub fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<(), ImageError> {
        let id = self.resolve_id(source)?;
        let mut r = Reference::parse_normalized(repo)?;
        if r.digest().is_some() {
            return Err(ImageError::InvalidArgument(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        if !tag.is_empty() {
            r = r.with_tag(tag)?;
        }
        let r = r.with_default_tag();
        let _g = self.lock();
        let txn = self.db.begin_write()?;
        {
            let mut images = txn.open_table(IMAGES)?;
            let mut tags = txn.open_table(TAGS)?;
            let v = images
                .get(id.as_str())?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| ImageError::NotFound(source.to_string()))?;
            let mut meta: ImageMeta = decode(&v, "image record")?;
            meta.last_tag_time = now_rfc3339();
            images.insert(id.as_str(), encode(&meta).as_slice())?;
            tags.insert(r.to_string().as_str(), id.as_str())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// `rmi`: Docker's Untagged/Deleted semantics. `container_using(image_id)` returns
    /// the ID of a container that uses the image, if any; such a container counts as a
    /// stopped one (refused unless `force`). See [`ImageStore::remove_image`] to tell
    /// running containers apart.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        prune_parents: bool,
        container_using: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<ImageDeleteItem>, ImageError> {
        self.remove_image(name, force, prune_parents, &|id| {
            container_using(id).map(|container_id| ImageUser {
                container_id,
                running: false,
            })
        })
    }

    /// `rmi` with moby's conflict rules: a running user is a hard conflict (never
    /// forced), a stopped user or other references are soft ones (`force` overrides).
    /// With `prune_parents`, untagged parents that nothing else needs go too (the
    /// intermediate images of a build).
    pub fn remove_image(
        &self,
        name: &str,
        force: bool,
        prune_parents: bool,
        user_of: &dyn Fn(&str) -> Option<ImageUser>,
    ) -> Result<Vec<ImageDeleteItem>, ImageError> {
        let id = self.resolve_id(name)?;
        let _g = self.lock();
        let mut records = Vec::new();
        let mut repo_refs = self.parsed_refs(&id)?;
        let by_id = id.starts_with(&format!("sha256:{name}")) || id.starts_with(name);

        if !by_id {
            let given = Reference::parse_normalized(name)?.with_default_tag();
            if !force && is_single_reference(&repo_refs) {
                if let Some(u) = user_of(&id) {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to remove repository reference {name:?} (must force) - container {} is using its referenced image {}",
                        short_id(&u.container_id),
                        short_id(&id)
                    )));
                }
            }
            let mut to_untag = vec![given.clone()];
            repo_refs.retain(|r| *r != given);
            // A removed tag whose repository keeps only digest references takes those too.
            if given.digest().is_none()
                && !repo_refs
                    .iter()
                    .any(|r| r.digest().is_none() && r.name() == given.name())
            {
                let (same, rest): (Vec<_>, Vec<_>) = repo_refs
                    .into_iter()
                    .partition(|r| r.name() == given.name());
                to_untag.extend(same);
                repo_refs = rest;
            }
            self.delete_refs(&to_untag)?;
            records.extend(to_untag.iter().map(|r| untagged(r.familiar_string())));
            if !repo_refs.is_empty() {
                return Ok(records);
            }
            // The image is now untagged: delete it unless something still needs it,
            // quietly (moby's `quiet`), since the untag already did what was asked.
            // moby's `quiet`: a conflict is reported only when nobody uses the image
            // (dependent children), otherwise the untag stands alone.
            // The conflict is ignored unless the image is dangling (no references, no
            // child images) and no container uses it.
            if let Err(e) = self.check_delete_conflict(&id, force, false, &[], user_of) {
                let dangling = !self.has_children(&id)?;
                if !dangling || user_of(&id).is_some() {
                    return Ok(records);
                }
                return Err(e);
            }
        } else {
            if is_single_reference(&repo_refs) {
                self.check_delete_conflict(&id, force, false, &repo_refs, user_of)?;
                self.delete_refs(&repo_refs)?;
                records.extend(repo_refs.drain(..).map(|r| untagged(r.familiar_string())));
            }
            self.check_delete_conflict(&id, force, true, &repo_refs, user_of)?;
            // Forced: every remaining reference goes with the image.
            self.delete_refs(&repo_refs)?;
            records.extend(repo_refs.iter().map(|r| untagged(r.familiar_string())));
        }
        let mut parent = self.image_meta(&id)?.parent;
        records.extend(self.delete_image(&id)?.0);
        // moby `imageDeleteHelper` with `prune`: parents go quietly while untagged,
        // childless and unused.
        while prune_parents && !parent.is_empty() {
            let Ok(meta) = self.image_meta(&parent) else {
                break;
            };
            if !self.refs_of(&parent)?.is_empty()
                || self.has_children(&parent)?
                || user_of(&parent).is_some()
            {
                break;
            }
            records.extend(self.delete_image(&parent)?.0);
            parent = meta.parent;
        }
        Ok(records)
    }

    /// moby's `checkImageDeleteConflict`: running container (hard), then other
    /// references when `check_refs` and not forced, then stopped container (soft).
    fn check_delete_conflict(
        &self,
        id: &str,
        force: bool,
        check_refs: bool,
        refs: &[Reference],
        user_of: &dyn Fn(&str) -> Option<ImageUser>,
    ) -> Result<(), ImageError> {
        if self.has_children(id)? {
            return Err(conflict(id, true, "image has dependent child images"));
        }
        let user = user_of(id);
        if let Some(u) = user.as_ref().filter(|u| u.running) {
            return Err(conflict(
                id,
                true,
                &format!(
                    "image is being used by running container {}",
                    short_id(&u.container_id)
                ),
            ));
        }
        if force {
            return Ok(());
        }
        if check_refs && !refs.is_empty() {
            return Err(conflict(
                id,
                false,
                "image is referenced in multiple repositories",
            ));
        }
        if let Some(u) = user {
            return Err(conflict(
                id,
                false,
                &format!(
                    "image is being used by stopped container {}",
                    short_id(&u.container_id)
                ),
            ));
        }
        Ok(())
    }

    /// `POST /images/prune`: removes dangling images (or, with `dangling=false`, every
    /// image) that no container uses and no other image was committed from. Filters:
    /// `dangling`, `until`, `label`, `label!`. Returns the delete records (untags first
    /// for tagged images) and the bytes of layers actually removed.
    pub fn prune(
        &self,
        filters: &std::collections::BTreeMap<String, Vec<String>>,
        user_of: &dyn Fn(&str) -> Option<ImageUser>,
    ) -> Result<(Vec<ImageDeleteItem>, i64), ImageError> {
        for key in filters.keys() {
            if !["dangling", "until", "label", "label!"].contains(&key.as_str()) {
                return Err(ImageError::InvalidArgument(format!(
                    "invalid filter '{key}'"
                )));
            }
        }
        let dangling_only = match filters.get("dangling").map(Vec::as_slice) {
            None | Some([]) => true,
            Some(v) if v.iter().all(|x| x.eq_ignore_ascii_case("true") || x == "1") => true,
            Some(v)
                if v.iter()
                    .all(|x| x.eq_ignore_ascii_case("false") || x == "0") =>
            {
                false
            }
            Some(v) => {
                return Err(ImageError::InvalidArgument(format!(
                    "invalid filter 'dangling={}'",
                    v.join(",")
                )))
            }
        };
        // Candidates through the list filters (until, label); `label!` is applied here.
        let mut list_filters = std::collections::BTreeMap::new();
        for key in ["until", "label"] {
            if let Some(v) = filters.get(key) {
                list_filters.insert(key.to_string(), v.clone());
            }
        }
        if dangling_only {
            list_filters.insert("dangling".to_string(), vec!["true".to_string()]);
        }
        let rows = self.list(&crate::ListOptions {
            all: true,
            filters: list_filters,
        })?;
        let not_labels = filters.get("label!").cloned().unwrap_or_default();
        let mut records = Vec::new();
        let mut reclaimed = 0;
        let _g = self.lock();
        let mut pending: Vec<_> = rows
            .into_iter()
            .filter(|row| {
                !not_labels.iter().any(|f| match f.split_once('=') {
                    Some((k, v)) => row.labels.get(k).is_some_and(|x| x == v),
                    None => row.labels.contains_key(f.as_str()),
                })
            })
            .collect();
        // Passes until nothing more goes: an image committed from another one holds its
        // parent back only until the child itself is pruned, whatever the listing order.
        loop {
            let mut progressed = false;
            let mut kept = Vec::new();
            for row in pending {
                if user_of(&row.id).is_some() || self.has_children(&row.id)? {
                    kept.push(row);
                    continue;
                }
                let refs = self.parsed_refs(&row.id)?;
                self.delete_refs(&refs)?;
                records.extend(refs.iter().map(|r| untagged(r.familiar_string())));
                let (items, bytes) = self.delete_image(&row.id)?;
                records.extend(items);
                reclaimed += bytes;
                progressed = true;
            }
            pending = kept;
            if !progressed || pending.is_empty() {
                break;
            }
        }
        Ok((records, reclaimed))
    }

    /// True when another image was committed from `id`.
    pub(crate) fn has_children(&self, id: &str) -> Result<bool, ImageError> {
        let rtxn = self.db.begin_read()?;
        let images = crate::schema::all_bytes(&rtxn.open_table(IMAGES)?)?;
        for (_, v) in images {
            if decode::<ImageMeta>(&v, "image record")?.parent == id {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn parsed_refs(&self, id: &str) -> Result<Vec<Reference>, ImageError> {
        let mut refs: Vec<Reference> = self
            .refs_of(id)?
            .iter()
            .filter_map(|k| Reference::parse_normalized(k).ok())
            .collect();
        refs.sort_by_key(|r| r.to_string());
        Ok(refs)
    }

    fn delete_refs(&self, refs: &[Reference]) -> Result<(), ImageError> {
        if refs.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        {
            let mut tags = txn.open_table(TAGS)?;
            for r in refs {
                tags.remove(r.to_string().as_str())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Removes the image record (and any references left), drops its layer references,
    /// then deletes files that nothing needs any more. Returns `Deleted` rows: the image,
    /// then each layer whose count reached 0 (top first, as Docker lists them).
    /// The caller holds the write lock.
    pub(crate) fn delete_image(&self, id: &str) -> Result<(Vec<ImageDeleteItem>, i64), ImageError> {
        let mut gone_layers: Vec<(String, LayerMeta)> = Vec::new();
        let mut gone_manifests: Vec<String> = Vec::new();
        let txn = self.db.begin_write()?;
        {
            let mut images = txn.open_table(IMAGES)?;
            let mut layers = txn.open_table(LAYERS)?;
            let mut tags = txn.open_table(TAGS)?;
            let meta: ImageMeta = match images.remove(id)? {
                Some(v) => decode(v.value(), "image record")?,
                None => return Err(ImageError::NotFound(id.to_string())),
            };
            let stale: Vec<String> = crate::schema::all_strs(&tags)?
                .into_iter()
                .filter(|(_, v)| v == id)
                .map(|(k, _)| k)
                .collect();
            for k in stale {
                tags.remove(k.as_str())?;
            }
            for chain in meta.chain_ids.iter().rev() {
                let Some(v) = layers.get(chain.as_str())?.map(|v| v.value().to_vec()) else {
                    continue;
                };
                let mut lm: LayerMeta = decode(&v, "layer record")?;
                lm.refcount = lm.refcount.saturating_sub(1);
                // A layer a pull in progress has pinned stays, with count 0, until the
                // pull registers its image or its lease ends.
                if lm.refcount == 0 && !self.leases.is_pinned(chain) {
                    layers.remove(chain.as_str())?;
                    gone_layers.push((chain.clone(), lm));
                } else {
                    layers.insert(chain.as_str(), encode(&lm).as_slice())?;
                }
            }
            // Manifests kept for this image go unless another image keeps them too (an
            // index shared by the platforms of one tag).
            let mut kept: std::collections::HashSet<String> = Default::default();
            if !meta.manifests.is_empty() {
                for (_, v) in crate::schema::all_bytes(&images)? {
                    kept.extend(decode::<ImageMeta>(&v, "image record")?.manifests);
                }
            }
            gone_manifests.extend(meta.manifests.into_iter().filter(|m| !kept.contains(m)));
        }
        txn.commit()?;
        let mut out = vec![deleted(id.to_string())];
        self.forget_config(id);
        let _ = self.content.delete(id);
        for m in &gone_manifests {
            let _ = self.content.delete(m);
        }
        let reclaimed = gone_layers.iter().map(|(_, lm)| lm.size).sum();
        self.leases.remove_layer_files(&gone_layers);
        out.extend(gone_layers.into_iter().map(|(chain, _)| deleted(chain)));
        Ok((out, reclaimed))
    }
}
