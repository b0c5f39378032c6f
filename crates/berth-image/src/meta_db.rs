//! `meta.db`: the one redb database of a `--root`, shared by the image store and the
//! daemon's services, and reopened after an I/O error.
//!
//! redb latches its first failed write (a full disk, EIO): every later transaction fails
//! with "Previous I/O error occurred" until the handle is closed and the file reopened.
//! [`MetaDb`] does that itself. The file goes through [`WatchedFile`], which notes any
//! failed I/O; the next `begin_write`/`begin_read` then closes the handle, waits for the
//! transactions still using it, and reopens the file (redb recovers it to the last
//! durable commit: the failed commit was never acknowledged). A reopen that fails (the
//! disk is still full) is tried again by the next transaction, so when space returns the
//! store works again without a restart.
//!
//! The failed operation's own error reads as Go's: `write <root>/meta.db: no space left
//! on device`.

use std::fs::{File, OpenOptions};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redb::{
    BackendError, Database, DatabaseError, ReadTransaction, ReadableDatabase, StorageBackend,
    StorageError, TransactionError, WriteTransaction,
};

use crate::os_error::with_path;

/// How long a reopen waits for the old handle's last transaction to end.
const REOPEN_WAIT: Duration = Duration::from_secs(5);

/// redb's page cache (its default is 1 GiB). redb keeps every page a commit wrote in it,
/// so under a stream of writes (container records, events) the daemon's resident memory
/// grew with the file and never came back. The hot pages (the tables' upper levels) fit
/// in this; the rest is read through the kernel's page cache. Container records are also
/// cached in memory by their service. (At 1 MiB, a burst of container starts filled it and
/// its pages, spread among short-lived allocations, held heap pages resident after.)
const CACHE_BYTES: usize = 256 << 10;

/// The metadata database. Share it behind an `Arc`; transactions never borrow it.
pub struct MetaDb {
    path: PathBuf,
    slot: RwLock<Slot>,
}

struct Slot {
    /// None after a reopen that failed: the next transaction tries again.
    db: Option<Arc<Database>>,
    /// Set by the open handle's file on a failed I/O.
    failed: Arc<AtomicBool>,
    /// Counts reopens, so that threads racing to reopen do it once.
    generation: u64,
}

impl std::fmt::Debug for MetaDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaDb").field("path", &self.path).finish()
    }
}

impl MetaDb {
    /// Opens (creating) the database file at `path`.
    pub fn open(path: &Path) -> Result<MetaDb, DatabaseError> {
        let failed = Arc::new(AtomicBool::new(false));
        let db = open_file(path, failed.clone())?;
        Ok(MetaDb {
            path: path.to_path_buf(),
            slot: RwLock::new(Slot {
                db: Some(Arc::new(db)),
                failed,
                generation: 0,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn begin_write(&self) -> Result<WriteTransaction, TransactionError> {
        self.with_db(|db| db.begin_write())
    }

    pub fn begin_read(&self) -> Result<ReadTransaction, TransactionError> {
        self.with_db(|db| db.begin_read())
    }

    /// Runs `f` on a healthy handle: reopens first if the current one saw an I/O error,
    /// and once more if `f` finds the handle latched anyway.
    fn with_db<T>(
        &self,
        f: impl Fn(&Database) -> Result<T, TransactionError>,
    ) -> Result<T, TransactionError> {
        let mut retried = false;
        loop {
            let (db, generation) = self.current()?;
            match f(&db) {
                Err(TransactionError::Storage(
                    StorageError::PreviousIo | StorageError::DatabaseClosed,
                )) if !retried => {
                    retried = true;
                    drop(db);
                    self.reopen(generation)?;
                }
                other => return other,
            }
        }
    }

    /// The open handle, reopening the file first if it failed or is closed.
    fn current(&self) -> Result<(Arc<Database>, u64), TransactionError> {
        let generation = {
            let slot = read_slot(&self.slot);
            match &slot.db {
                Some(db) if !slot.failed.load(Ordering::Acquire) => {
                    return Ok((db.clone(), slot.generation))
                }
                _ => slot.generation,
            }
        };
        self.reopen(generation)?;
        let slot = read_slot(&self.slot);
        match &slot.db {
            Some(db) => Ok((db.clone(), slot.generation)),
            None => Err(TransactionError::Storage(StorageError::DatabaseClosed)),
        }
    }

    /// Closes the handle of `generation` and opens the file again (unless another thread
    /// did already).
    fn reopen(&self, generation: u64) -> Result<(), TransactionError> {
        let mut slot = self.slot.write().unwrap_or_else(|p| p.into_inner());
        if slot.generation != generation {
            return Ok(());
        }
        if let Some(old) = slot.db.take() {
            close_when_unused(old);
            tracing::warn!(path = %self.path.display(), "reopening the metadata store after an I/O error");
        }
        let failed = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + REOPEN_WAIT;
        let db = loop {
            match open_file(&self.path, failed.clone()) {
                Ok(db) => break db,
                // A write transaction of the old handle is still ending.
                Err(DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "reopening the metadata store failed");
                    return Err(TransactionError::Storage(database_to_storage(e)));
                }
            }
        };
        slot.db = Some(Arc::new(db));
        slot.failed = failed;
        slot.generation += 1;
        Ok(())
    }
}

fn read_slot(slot: &RwLock<Slot>) -> std::sync::RwLockReadGuard<'_, Slot> {
    slot.read().unwrap_or_else(|p| p.into_inner())
}

/// Closes a handle once the calls that cloned it returned (bounded by [`REOPEN_WAIT`]; a
/// handle still shared then is dropped, and closes when its last user is done).
fn close_when_unused(mut db: Arc<Database>) {
    let deadline = Instant::now() + REOPEN_WAIT;
    loop {
        match Arc::try_unwrap(db) {
            // Its error is the I/O error already reported.
            Ok(db) => {
                let _ = db.close();
                return;
            }
            Err(shared) if Instant::now() < deadline => {
                db = shared;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
}

fn database_to_storage(e: DatabaseError) -> StorageError {
    match e {
        DatabaseError::Storage(s) => s,
        other => StorageError::Io(std::io::Error::other(other.to_string())),
    }
}

fn open_file(path: &Path, failed: Arc<AtomicBool>) -> Result<Database, DatabaseError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| DatabaseError::Storage(StorageError::Io(with_path("open", path, e))))?;
    let backend = WatchedFile::new(path, file, failed)?;
    redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create_with_backend(backend)
}

/// redb's file backend that notes any failed I/O (so the handle is reopened) and names
/// the file in its errors.
#[derive(Debug)]
pub struct WatchedFile {
    inner: redb::backends::FileBackend,
    path: PathBuf,
    failed: Arc<AtomicBool>,
}

impl WatchedFile {
    fn new(path: &Path, file: File, failed: Arc<AtomicBool>) -> Result<Self, DatabaseError> {
        Ok(WatchedFile {
            inner: redb::backends::FileBackend::new(file)?,
            path: path.to_path_buf(),
            failed,
        })
    }

    fn watch<T>(&self, op: &'static str, r: std::io::Result<T>) -> std::io::Result<T> {
        r.map_err(|e| {
            self.failed.store(true, Ordering::Release);
            with_path(op, &self.path, e)
        })
    }
}

impl StorageBackend for WatchedFile {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.watch("stat", self.inner.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.watch("read", self.inner.read(offset, out))
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.watch("truncate", self.inner.set_len(len))
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.watch("sync", self.inner.sync_data())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.watch("write", self.inner.write(offset, data))
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

/// The text of a metadata store error for an API answer: an I/O error as Go prints it
/// (`write <root>/meta.db: no space left on device`), anything else prefixed.
pub fn error_text(e: &redb::Error) -> String {
    match e {
        redb::Error::Io(io) => io.to_string(),
        other => format!("metadata store: {other}"),
    }
}

/// Whether a metadata store error is the storage failing (full disk, EIO), which the
/// caller reports as the daemon's error.
pub fn is_storage_failure(e: &redb::Error) -> bool {
    match e {
        redb::Error::Io(io) => crate::os_error::is_storage_failure(io),
        redb::Error::PreviousIo | redb::Error::DatabaseClosed => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableTableMetadata, TableDefinition};

    const T: TableDefinition<&str, u64> = TableDefinition::new("t");

    fn put(db: &MetaDb, k: &str, v: u64) -> Result<(), redb::Error> {
        let tx = db.begin_write()?;
        tx.open_table(T)?.insert(k, v)?;
        tx.commit()?;
        Ok(())
    }

    #[test]
    fn a_failed_handle_is_reopened_and_keeps_what_was_committed() {
        let dir = tempfile::tempdir().unwrap();
        let db = MetaDb::open(&dir.path().join("meta.db")).unwrap();
        put(&db, "a", 1).unwrap();
        // What a failed write does to the handle.
        read_slot(&db.slot).failed.store(true, Ordering::Release);
        put(&db, "b", 2).unwrap();
        assert_eq!(read_slot(&db.slot).generation, 1);
        let tx = db.begin_read().unwrap();
        assert_eq!(tx.open_table(T).unwrap().len().unwrap(), 2);
    }

    #[test]
    fn a_reopen_waits_for_the_old_handles_write_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(MetaDb::open(&dir.path().join("meta.db")).unwrap());
        let tx = db.begin_write().unwrap();
        tx.open_table(T).unwrap().insert("a", 1).unwrap();
        read_slot(&db.slot).failed.store(true, Ordering::Release);
        let other = {
            let db = db.clone();
            std::thread::spawn(move || put(&db, "b", 2))
        };
        std::thread::sleep(Duration::from_millis(50));
        tx.commit().unwrap();
        other.join().unwrap().unwrap();
        let tx = db.begin_read().unwrap();
        assert_eq!(tx.open_table(T).unwrap().len().unwrap(), 2);
    }
}
