//! Disk usage (`GET /system/df`) and the store's consistency check (`berth system check`).
//!
//! Disk usage counts every unpacked layer once, however many images share it: the sum of
//! the layer records is Docker's `LayersSize`. Each image's `SharedSize` is the part of
//! its size in layers that other images use too.
//!
//! The check compares the three sides of the store: metadata (redb), unpacked layer
//! directories under `layers/`, and blobs under `blobs/sha256/`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;

use berth_api::ImageSummary;

use crate::content::digest_hex;
use crate::schema::{all_bytes, all_strs, decode, ImageMeta, LayerMeta, IMAGES, LAYERS, TAGS};
use crate::{ImageError, ImageStore, ListOptions};

/// The image part of `GET /system/df`.
#[derive(Debug, Clone, Default)]
pub struct ImageDiskUsage {
    /// Bytes of all stored layers, each counted once.
    pub layers_size: i64,
    /// Every image (intermediate ones too), newest first, with `SharedSize` filled in.
    /// `Containers` is left at -1 for the caller, which knows the containers.
    pub images: Vec<ImageSummary>,
}

impl ImageStore {
    /// Disk usage of the image store (see the module docs).
    pub fn disk_usage(&self) -> Result<ImageDiskUsage, ImageError> {
        let rtxn = self.db.begin_read()?;
        let layers = all_bytes(&rtxn.open_table(LAYERS)?)?;
        let images = all_bytes(&rtxn.open_table(IMAGES)?)?;
        drop(rtxn);
        let mut layer_size: HashMap<String, (i64, u64)> = HashMap::new();
        let mut layers_size = 0;
        for (chain, v) in &layers {
            let lm: LayerMeta = decode(v, "layer record")?;
            layers_size += lm.size;
            layer_size.insert(chain.clone(), (lm.size, lm.refcount));
        }
        let mut shared: HashMap<String, i64> = HashMap::new();
        for (id, v) in &images {
            let meta: ImageMeta = decode(v, "image record")?;
            let s = meta
                .chain_ids
                .iter()
                .filter_map(|c| layer_size.get(c))
                .filter(|(_, refs)| *refs > 1)
                .map(|(size, _)| *size)
                .sum();
            shared.insert(id.clone(), s);
        }
        let mut rows = self.list(&ListOptions {
            all: true,
            filters: BTreeMap::new(),
        })?;
        for r in &mut rows {
            r.shared_size = shared.get(&r.id).copied().unwrap_or(0);
        }
        Ok(ImageDiskUsage {
            layers_size,
            images: rows,
        })
    }

    /// Checks the store's invariants (documented in [`crate::schema`]) and returns one
    /// line per problem found; empty means consistent:
    /// - every tag points at an image record;
    /// - every image's config blob exists and every layer of its chain has a record;
    /// - every layer record's reference count equals the number of images using it (a
    ///   count of 0 only while a pull's lease pins it), its directory exists, and its
    ///   compressed blob exists (pulled or pushed layers) or else its tar blob (keyed by
    ///   diff ID);
    /// - every manifest an image keeps exists;
    /// - no layer directory or blob exists that nothing refers to (`tmp/` is not looked
    ///   at: imports in flight stage there outside the lock).
    ///
    /// Takes the write lock, so it sees no operation half done.
    pub fn check(&self) -> Result<Vec<String>, ImageError> {
        let _g = self.lock();
        let rtxn = self.db.begin_read()?;
        let layers = all_bytes(&rtxn.open_table(LAYERS)?)?;
        let images = all_bytes(&rtxn.open_table(IMAGES)?)?;
        let tags = all_strs(&rtxn.open_table(TAGS)?)?;
        drop(rtxn);
        let mut problems = Vec::new();
        let image_ids: HashSet<&str> = images.iter().map(|(k, _)| k.as_str()).collect();
        for (name, id) in &tags {
            if !image_ids.contains(id.as_str()) {
                problems.push(format!("tag {name} points at missing image {id}"));
            }
        }
        let mut layer_records: HashMap<String, LayerMeta> = HashMap::new();
        for (chain, v) in &layers {
            layer_records.insert(chain.clone(), decode(v, "layer record")?);
        }
        let mut live_blobs: HashSet<String> = HashSet::new();
        let mut uses: HashMap<&str, u64> = HashMap::new();
        for (id, v) in &images {
            let meta: ImageMeta = decode(v, "image record")?;
            live_blobs.insert(digest_hex(id).to_string());
            if !self.content.exists(id) {
                problems.push(format!("image {id}: config blob missing"));
            }
            for m in &meta.manifests {
                live_blobs.insert(digest_hex(m).to_string());
                if !self.content.exists(m) {
                    problems.push(format!("image {id}: manifest blob {m} missing"));
                }
            }
            for chain in &meta.chain_ids {
                match layer_records.get_key_value(chain) {
                    Some((k, _)) => *uses.entry(k.as_str()).or_default() += 1,
                    None => problems.push(format!("image {id}: layer {chain} has no record")),
                }
            }
        }
        let mut live_dirs: HashSet<String> = HashSet::new();
        for (chain, lm) in &layer_records {
            live_dirs.insert(digest_hex(chain).to_string());
            for d in crate::lease::layer_blobs(lm) {
                live_blobs.insert(digest_hex(&d).to_string());
            }
            let used = uses.get(chain.as_str()).copied().unwrap_or(0);
            if used != lm.refcount {
                problems.push(format!(
                    "layer {chain}: reference count {} but {used} images use it",
                    lm.refcount
                ));
            }
            if lm.refcount == 0 && !self.leases.is_pinned(chain) {
                problems.push(format!(
                    "layer {chain}: no image uses it and no pull in progress holds it"
                ));
            }
            if !self.layer_path(chain).is_dir() {
                problems.push(format!("layer {chain}: directory missing"));
            }
            match &lm.blob {
                Some(b) if !self.content.exists(&b.digest) => problems.push(format!(
                    "layer {chain}: compressed blob {} missing",
                    b.digest
                )),
                // A pulled layer keeps only its compressed blob.
                Some(_) => {}
                None if !self.content.exists(&lm.diff_id) => {
                    problems.push(format!("layer {chain}: tar blob {} missing", lm.diff_id))
                }
                None => {}
            }
        }
        for e in fs::read_dir(&self.layers)
            .map_err(crate::content::io_err("listing layers"))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if !live_dirs.contains(&name) {
                problems.push(format!("layer directory {name} is not referenced"));
            }
        }
        for d in self.content.list()? {
            if !live_blobs.contains(digest_hex(&d)) {
                problems.push(format!("blob {d} is not referenced"));
            }
        }
        problems.sort();
        Ok(problems)
    }
}
