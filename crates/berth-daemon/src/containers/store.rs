//! Persistence of container records in `meta.db` (table `containers`, see
//! [`crate::schema`]).

use super::record::ContainerRecord;
use crate::schema::{SchemaError, CONTAINERS, CONTAINERS_PART};

pub struct RecordStore {
    db: std::sync::Arc<berth_image::MetaDb>,
}

impl RecordStore {
    /// Opens (creating) the table and checks the schema version.
    pub fn open(db: std::sync::Arc<berth_image::MetaDb>) -> Result<Self, SchemaError> {
        CONTAINERS_PART.open(&db)?;
        Ok(RecordStore { db })
    }

    /// Every stored record; records that do not parse are skipped (and logged).
    pub fn load_all(&self) -> Result<Vec<ContainerRecord>, redb::Error> {
        Ok(CONTAINERS
            .load(&self.db)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Writes one record in its own transaction.
    pub fn put(&self, record: &ContainerRecord) -> Result<(), redb::Error> {
        CONTAINERS.put(&self.db, &record.id, record)
    }

    pub fn delete(&self, id: &str) -> Result<(), redb::Error> {
        CONTAINERS.delete(&self.db, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db =
            std::sync::Arc::new(berth_image::MetaDb::open(&dir.path().join("meta.db")).unwrap());
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
