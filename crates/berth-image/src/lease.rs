//! Leases: what keeps the layers of a pull in progress alive (after containerd's leases).
//!
//! A pull records each layer as it completes, with reference count 0 (no image uses it
//! yet), and pins it under the pull's [`Lease`]; a layer that was already stored is pinned
//! too ([`crate::ImageStore::protect`]). While pinned, a layer is not deleted when the
//! count of another image's removal takes it to 0. When the lease ends (dropped, or
//! consumed by [`crate::ImageStore::register_pulled`]) every layer it pinned that no image
//! uses and no other lease pins is removed: a failed pull leaves nothing behind.
//!
//! Leases live in memory only; [`crate::ImageStore::open`] removes layer records whose
//! count is 0, which is what a crash in the middle of a pull leaves.
//!
//! Lock order: the store's write lock, then the pin table.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use redb::ReadableTable;

use crate::content::{digest_hex, ContentStore};
use crate::schema::{all_bytes, decode, LayerMeta, LAYERS};
use crate::ImageError;

/// Shared by the store and its leases.
pub(crate) struct LeaseTable {
    pins: Mutex<HashMap<u64, HashSet<String>>>,
    next_id: AtomicU64,
    pub(crate) write_lock: Arc<Mutex<()>>,
    pub(crate) db: Arc<crate::MetaDb>,
    pub(crate) content: ContentStore,
    pub(crate) layers: PathBuf,
}

/// Pins layers for a pull in progress; see the module docs. Obtained from
/// [`crate::ImageStore::lease`]; ending it (drop) removes the layers it pinned that no
/// image came to use.
pub struct Lease {
    id: u64,
    table: Arc<LeaseTable>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("id", &self.id).finish()
    }
}

pub(crate) fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LeaseTable {
    pub(crate) fn new(
        write_lock: Arc<Mutex<()>>,
        db: Arc<crate::MetaDb>,
        content: ContentStore,
        layers: PathBuf,
    ) -> Self {
        LeaseTable {
            pins: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            write_lock,
            db,
            content,
            layers,
        }
    }

    fn pins(&self) -> MutexGuard<'_, HashMap<u64, HashSet<String>>> {
        self.pins.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn new_lease(self: &Arc<Self>) -> Lease {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.pins().insert(id, HashSet::new());
        Lease {
            id,
            table: self.clone(),
        }
    }

    /// True when any live lease pins `chain`.
    pub(crate) fn is_pinned(&self, chain: &str) -> bool {
        self.pins().values().any(|s| s.contains(chain))
    }

    /// Pins `chain` under `lease` (the caller holds the write lock and has checked that
    /// the layer is recorded).
    pub(crate) fn pin(&self, lease: &Lease, chain: &str) {
        self.pins()
            .entry(lease.id)
            .or_default()
            .insert(chain.to_string());
    }

    pub(crate) fn pinned_by(&self, lease: &Lease, chain: &str) -> bool {
        self.pins()
            .get(&lease.id)
            .is_some_and(|s| s.contains(chain))
    }

    /// Deletes the directories and blobs of layer records already removed from the
    /// metadata, keeping any blob another remaining layer record still names (two chains
    /// can share a diff ID or a compressed blob). The caller holds the write lock.
    pub(crate) fn remove_layer_files(&self, gone: &[(String, LayerMeta)]) {
        if gone.is_empty() {
            return;
        }
        let still_used = || -> Result<HashSet<String>, ImageError> {
            let rtxn = self.db.begin_read()?;
            let mut used = HashSet::new();
            for (_, v) in all_bytes(&rtxn.open_table(LAYERS)?)? {
                let lm: LayerMeta = decode(&v, "layer record")?;
                used.extend(layer_blobs(&lm));
            }
            Ok(used)
        };
        // If the metadata cannot be read, keep the blobs: `open` collects them later.
        let used = still_used().ok();
        for (chain, lm) in gone {
            let _ = fs::remove_dir_all(self.layers.join(digest_hex(chain)));
            if let Some(used) = &used {
                for d in layer_blobs(lm) {
                    if !used.contains(&d) {
                        let _ = self.content.delete(&d);
                    }
                }
            }
        }
    }

    /// Removes `chains` whose record has count 0 and that no lease pins. The caller holds
    /// the write lock.
    fn reap(&self, chains: &HashSet<String>) -> Result<(), ImageError> {
        let candidates: Vec<&String> = chains.iter().filter(|c| !self.is_pinned(c)).collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let mut gone = Vec::new();
        let txn = self.db.begin_write()?;
        {
            let mut layers = txn.open_table(LAYERS)?;
            for chain in candidates {
                let Some(v) = layers.get(chain.as_str())?.map(|v| v.value().to_vec()) else {
                    continue;
                };
                let lm: LayerMeta = decode(&v, "layer record")?;
                if lm.refcount == 0 {
                    layers.remove(chain.as_str())?;
                    gone.push((chain.clone(), lm));
                }
            }
        }
        txn.commit()?;
        self.remove_layer_files(&gone);
        Ok(())
    }
}

/// The blobs (digests) a layer record keeps alive: its tar (diff ID) and its compressed
/// blob.
pub(crate) fn layer_blobs(lm: &LayerMeta) -> Vec<String> {
    let mut out = vec![lm.diff_id.clone()];
    if let Some(b) = &lm.blob {
        if b.digest != lm.diff_id {
            out.push(b.digest.clone());
        }
    }
    out
}

impl Drop for Lease {
    fn drop(&mut self) {
        let table = &self.table;
        let _g = lock(&table.write_lock);
        let chains = table.pins().remove(&self.id).unwrap_or_default();
        // Best effort: what cannot be removed now is collected at the next open.
        let _ = table.reap(&chains);
    }
}
