//! Persistence of container records in `meta.db` (see the schema in [`super`]).

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::record::ContainerRecord;

/// `containers`: container ID (64 hex) → the [`ContainerRecord`] as JSON.
pub const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
/// `containers_meta`: `"schema_version"` → [`SCHEMA_VERSION`].
pub const CONTAINERS_META: TableDefinition<&str, u64> = TableDefinition::new("containers_meta");
pub const SCHEMA_VERSION: u64 = 1;

pub struct RecordStore {
    db: std::sync::Arc<redb::Database>,
}

impl RecordStore {
    /// Opens (creating) the tables and checks the schema version.
    pub fn open(db: std::sync::Arc<redb::Database>) -> Result<Self, redb::Error> {
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(CONTAINERS_META)?;
            let current = meta.get("schema_version")?.map(|v| v.value());
            match current {
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(redb::Error::Corrupted(format!(
                        "containers schema version {v} is newer than this Berth ({SCHEMA_VERSION})"
                    )));
                }
                Some(_) => {}
            }
            tx.open_table(CONTAINERS)?;
        }
        tx.commit()?;
        Ok(RecordStore { db })
    }

    /// Every stored record; records that do not parse are skipped (and logged).
    pub fn load_all(&self) -> Result<Vec<ContainerRecord>, redb::Error> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CONTAINERS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            match serde_json::from_slice::<ContainerRecord>(v.value()) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(id = k.value(), error = %e, "skipping unreadable container record")
                }
            }
        }
        Ok(out)
    }

    /// Writes one record in its own transaction.
    pub fn put(&self, record: &ContainerRecord) -> Result<(), redb::Error> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| redb::Error::Corrupted(format!("encoding container record: {e}")))?;
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(CONTAINERS)?;
            table.insert(record.id.as_str(), bytes.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn delete(&self, id: &str) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(CONTAINERS)?;
            table.remove(id)?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = std::sync::Arc::new(redb::Database::create(dir.path().join("meta.db")).unwrap());
        let store = RecordStore::open(db.clone()).unwrap();
        let rec = ContainerRecord {
            id: "ab".repeat(32),
            name: "/c1".into(),
            ..Default::default()
        };
        store.put(&rec).unwrap();
        let all = RecordStore::open(db).unwrap().load_all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, "/c1");
        store.delete(&rec.id).unwrap();
        assert!(store.load_all().unwrap().is_empty());
    }
}
