//! Persistence of container records in `meta.db` (table `containers`, see
//! [`crate::schema`]), with group commit.
//!
//! A change is *staged* (cheap, under the container table's lock, which fixes its order)
//! and then *waited for* (after that lock is dropped): the first waiter commits every
//! change staged so far in one transaction, in staging order, while the others wait for
//! it. So a commit's fsync is never paid under the lock that lists and inspects take,
//! concurrent changes share one fsync, and the table ends as memory does. A change is
//! durable when its wait returns Ok; a failed commit fails every change in it.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::record::ContainerRecord;
use crate::schema::{SchemaError, CONTAINERS, CONTAINERS_PART};

pub struct RecordStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<berth_image::MetaDb>,
    queue: Mutex<Queue>,
    committed: Condvar,
}

#[derive(Default)]
struct Queue {
    /// The sequence number of the next staged change.
    next: u64,
    /// Staged, not yet committed: (sequence number, key, value or None to delete).
    pending: Vec<(u64, String, Option<Vec<u8>>)>,
    /// Every change up to this number has been committed (or failed).
    done: u64,
    /// A waiter is committing a batch now.
    writing: bool,
    /// Changes whose commit failed, by sequence number, until their waiter reads it.
    failed: HashMap<u64, FailedCommit>,
}

/// A failed commit, kept for each of its waiters (redb's errors are not `Clone`).
#[derive(Clone)]
struct FailedCommit {
    io_kind: Option<std::io::ErrorKind>,
    text: String,
}

impl FailedCommit {
    fn new(e: &redb::Error) -> Self {
        FailedCommit {
            io_kind: match e {
                redb::Error::Io(io) => Some(io.kind()),
                _ => None,
            },
            text: match e {
                redb::Error::Io(io) => io.to_string(),
                other => other.to_string(),
            },
        }
    }

    fn error(&self) -> redb::Error {
        match self.io_kind {
            Some(kind) => redb::Error::Io(std::io::Error::new(kind, self.text.clone())),
            None => redb::Error::Corrupted(self.text.clone()),
        }
    }
}

/// A staged change; [`RecordStore::wait`] makes it durable.
#[must_use = "a staged change is durable only once waited for"]
pub struct Staged(u64);

impl RecordStore {
    /// Opens (creating) the table and checks the schema version.
    pub fn open(db: std::sync::Arc<berth_image::MetaDb>) -> Result<Self, SchemaError> {
        CONTAINERS_PART.open(&db)?;
        Ok(RecordStore {
            inner: Arc::new(Inner {
                db,
                queue: Mutex::new(Queue {
                    next: 1,
                    ..Default::default()
                }),
                committed: Condvar::new(),
            }),
        })
    }

    /// Every stored record; records that do not parse are skipped (and logged).
    pub fn load_all(&self) -> Result<Vec<ContainerRecord>, redb::Error> {
        Ok(CONTAINERS
            .load(&self.inner.db)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Writes one record: durable when this returns Ok.
    pub fn put(&self, record: &ContainerRecord) -> Result<(), redb::Error> {
        let staged = self.stage_put(record)?;
        self.wait(staged)
    }

    /// Deletes one record (absent is fine): durable when this returns Ok.
    pub fn delete(&self, id: &str) -> Result<(), redb::Error> {
        let staged = self.stage_delete(id);
        self.wait(staged)
    }

    /// Stages a write of `record` and commits it in the background (errors are logged):
    /// for state the daemon reconciles at start anyway (a start or an exit recorded
    /// while the lock is held), never for a change a request acknowledges.
    pub fn put_soon(&self, record: &ContainerRecord) {
        let staged = match self.stage_put(record) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(id = record.id, error = %e, "persisting container record");
                return;
            }
        };
        let inner = self.inner.clone();
        let id = record.id.clone();
        let flush = move || {
            if let Err(e) = inner.wait(staged) {
                tracing::error!(id, error = %e, "persisting container record");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(flush);
            }
            Err(_) => flush(),
        }
    }

    /// Stages a write of `record` (call under the lock that orders changes).
    pub fn stage_put(&self, record: &ContainerRecord) -> Result<Staged, redb::Error> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| redb::Error::Corrupted(format!("encoding container record: {e}")))?;
        Ok(self.stage(record.id.clone(), Some(bytes)))
    }

    /// Stages a delete of record `id`.
    pub fn stage_delete(&self, id: &str) -> Staged {
        self.stage(id.to_string(), None)
    }

    fn stage(&self, key: String, value: Option<Vec<u8>>) -> Staged {
        let mut q = self.inner.lock();
        let seq = q.next;
        q.next += 1;
        q.pending.push((seq, key, value));
        Staged(seq)
    }

    /// Waits until the staged change is committed (see [`Inner::wait`]).
    pub fn wait(&self, staged: Staged) -> Result<(), redb::Error> {
        self.inner.wait(staged)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the staged change is committed, committing what is staged itself when
    /// no one else is. Blocks on a commit's fsync: call it off the async runtime's
    /// threads, and never under the container table's lock.
    pub fn wait(&self, staged: Staged) -> Result<(), redb::Error> {
        let seq = staged.0;
        let mut q = self.lock();
        loop {
            if q.done >= seq {
                return match q.failed.remove(&seq) {
                    Some(f) => Err(f.error()),
                    None => Ok(()),
                };
            }
            if q.writing {
                q = self.committed.wait(q).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            q.writing = true;
            let batch = std::mem::take(&mut q.pending);
            drop(q);
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.commit(&batch)))
                    .unwrap_or_else(|_| Err(redb::Error::Corrupted("a commit panicked".into())));
            q = self.lock();
            if let Some((last, ..)) = batch.last() {
                q.done = q.done.max(*last);
            }
            if let Err(e) = result {
                let failed = FailedCommit::new(&e);
                for (s, ..) in &batch {
                    q.failed.insert(*s, failed.clone());
                }
            }
            q.writing = false;
            self.committed.notify_all();
        }
    }

    fn commit(&self, batch: &[(u64, String, Option<Vec<u8>>)]) -> Result<(), redb::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(CONTAINERS.def())?;
            for (_, key, value) in batch {
                match value {
                    Some(v) => {
                        table.insert(key.as_str(), v.as_slice())?;
                    }
                    None => {
                        table.remove(key.as_str())?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, name: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db =
            std::sync::Arc::new(berth_image::MetaDb::open(&dir.path().join("meta.db")).unwrap());
        let store = RecordStore::open(db.clone()).unwrap();
        let rec = rec(&"ab".repeat(32), "/c1");
        store.put(&rec).unwrap();
        let all = RecordStore::open(db).unwrap().load_all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, "/c1");
        store.delete(&rec.id).unwrap();
        assert!(store.load_all().unwrap().is_empty());
    }

    #[test]
    fn staged_changes_commit_in_staging_order_whoever_waits() {
        let dir = tempfile::tempdir().unwrap();
        let db =
            std::sync::Arc::new(berth_image::MetaDb::open(&dir.path().join("meta.db")).unwrap());
        let store = std::sync::Arc::new(RecordStore::open(db).unwrap());
        let id = "cd".repeat(32);
        let first = store.stage_put(&rec(&id, "/old")).unwrap();
        let second = store.stage_put(&rec(&id, "/new")).unwrap();
        let gone = store.stage_delete(&"ef".repeat(32));
        // The last staged is waited for first: it commits all three, in order.
        store.wait(second).unwrap();
        store.wait(gone).unwrap();
        store.wait(first).unwrap();
        let all = store.load_all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, "/new");

        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let r = rec(&format!("{i:064}"), &format!("/c{i}"));
                    store.put(&r)
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_eq!(store.load_all().unwrap().len(), 9);
    }
}
