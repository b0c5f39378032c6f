//! The daemon's metadata schema in `<root>/meta.db` (redb): every table, its key and
//! value encoding, the version rows and the migration policy. The image store's tables
//! share the file and are drawn in [`berth_image::schema`].
//!
//! Each part has its own version row (`<meta table>["schema_version"]`, a `u64`):
//!
//! | part | version row | version |
//! |------|-------------|---------|
//! | images | `image_schema["version"]` | 1, see [`berth_image::schema`] |
//! | containers | `containers_meta["schema_version"]` | [`CONTAINERS_PART`]: 1 |
//! | volumes | `volumes_meta["schema_version"]` | [`VOLUMES_PART`]: 1 |
//! | networks | `networks_meta["schema_version"]` | [`NETWORKS_PART`]: 2 |
//! | events | `events_meta["schema_version"]` | [`EVENTS_PART`]: 1 |
//!
//! Every table holds `&str` keys and JSON values of one type (`&[u8]`):
//!
//! | table | key | value |
//! |-------|-----|-------|
//! | `containers` | container ID (64 hex) | [`ContainerRecord`] |
//! | `volumes` | volume name | [`VolumeRecord`] |
//! | `networks` | network ID (64 hex) | [`UserNetwork`] |
//! | `net_endpoints` | container ID | [`EndpointRecord`]: its `eth0`, kept from the first start to `rm` |
//! | `net_extra_endpoints` | `<container ID>/<network ID>` | [`ExtraEndpoint`]: a `network connect` |
//! | `events` | sequence number, 20 digits zero-padded (sorts as the number) | [`EventMessage`]: the last [`crate::events::KEEP`] events, trimmed as new ones are written |
//! | `net_primary_configs` | container ID | [`PrimaryConfig`]: aliases and `--ip` on the network it was created on, or disconnected from it (a table added within version 2: older stores simply have none) |
//!
//! Every change is one write transaction. Rows that do not decode are skipped with a
//! warning when loading (one bad record does not stop the daemon).
//!
//! ## Migrations
//! At open, each part's version row is read: a newer version than this build knows is
//! refused; an older one is migrated in the same write transaction that creates the
//! tables and writes the new version, so a crash leaves the old store or the new one. A
//! missing row means version 1 (stores written before the part had a row).
//! - networks 1 → 2: version 1 (no `networks_meta`) kept the extra endpoints in
//!   `net_endpoints` beside the primary ones, told apart by a `/` in the key; version 2
//!   moves them, keys unchanged, to `net_extra_endpoints`.

use std::marker::PhantomData;

use berth_api::EventMessage;
use berth_net::endpoint::{EndpointRecord, ExtraEndpoint, PrimaryConfig};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::containers::record::ContainerRecord;
use crate::network::UserNetwork;
use crate::volumes::VolumeRecord;

/// The key of every part's version row.
pub const VERSION_KEY: &str = "schema_version";

pub const CONTAINERS: JsonTable<ContainerRecord> = JsonTable::new("containers", "container record");
pub const VOLUMES: JsonTable<VolumeRecord> = JsonTable::new("volumes", "volume record");
pub const NETWORKS: JsonTable<UserNetwork> = JsonTable::new("networks", "network");
pub const NET_ENDPOINTS: JsonTable<EndpointRecord> = JsonTable::new("net_endpoints", "endpoint");
pub const NET_EXTRA_ENDPOINTS: JsonTable<ExtraEndpoint> =
    JsonTable::new("net_extra_endpoints", "endpoint");
pub const NET_PRIMARY_CONFIGS: JsonTable<PrimaryConfig> =
    JsonTable::new("net_primary_configs", "endpoint config");

pub const EVENTS: JsonTable<EventMessage> = JsonTable::new("events", "event");

pub const EVENTS_PART: Part = Part {
    name: "events",
    meta: TableDefinition::new("events_meta"),
    version: 1,
    tables: &[EVENTS.def()],
    migrate: no_migration,
};

pub const CONTAINERS_PART: Part = Part {
    name: "containers",
    meta: TableDefinition::new("containers_meta"),
    version: 1,
    tables: &[CONTAINERS.def()],
    migrate: no_migration,
};

pub const VOLUMES_PART: Part = Part {
    name: "volumes",
    meta: TableDefinition::new("volumes_meta"),
    version: 1,
    tables: &[VOLUMES.def()],
    migrate: no_migration,
};

pub const NETWORKS_PART: Part = Part {
    name: "networks",
    meta: TableDefinition::new("networks_meta"),
    version: 2,
    tables: &[
        NETWORKS.def(),
        NET_ENDPOINTS.def(),
        NET_EXTRA_ENDPOINTS.def(),
        NET_PRIMARY_CONFIGS.def(),
    ],
    migrate: migrate_networks,
};

type Bytes = TableDefinition<'static, &'static str, &'static [u8]>;

/// One part of the store: its version row, its tables and how to migrate them.
pub struct Part {
    pub name: &'static str,
    pub meta: TableDefinition<'static, &'static str, u64>,
    /// The version this build writes.
    pub version: u64,
    pub tables: &'static [Bytes],
    /// Brings the tables from the given older version to [`Part::version`].
    pub migrate: fn(&WriteTransaction, u64) -> Result<(), redb::Error>,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{part} schema version {found} is newer than this Berth ({known})")]
    Newer {
        part: &'static str,
        found: u64,
        known: u64,
    },
    #[error(transparent)]
    Db(#[from] redb::Error),
}

fn no_migration(_: &WriteTransaction, _: u64) -> Result<(), redb::Error> {
    Ok(())
}

/// Networks 1 → 2: the extra endpoints leave `net_endpoints` for their own table.
fn migrate_networks(tx: &WriteTransaction, from: u64) -> Result<(), redb::Error> {
    if from >= 2 {
        return Ok(());
    }
    let mut primary = tx.open_table(NET_ENDPOINTS.def())?;
    let mut extra = tx.open_table(NET_EXTRA_ENDPOINTS.def())?;
    let mut moved = Vec::new();
    for row in primary.iter()? {
        let (k, v) = row?;
        if k.value().contains('/') {
            moved.push((k.value().to_string(), v.value().to_vec()));
        }
    }
    for (k, v) in &moved {
        extra.insert(k.as_str(), v.as_slice())?;
        primary.remove(k.as_str())?;
    }
    if !moved.is_empty() {
        tracing::info!(
            count = moved.len(),
            "moved extra network endpoints to net_extra_endpoints"
        );
    }
    Ok(())
}

impl Part {
    /// Creates the part's tables, checks its version row and migrates an older store.
    pub fn open(&self, db: &berth_image::MetaDb) -> Result<(), SchemaError> {
        let tx = db.begin_write().map_err(redb::Error::from)?;
        {
            let mut meta = tx.open_table(self.meta).map_err(redb::Error::from)?;
            let found = meta
                .get(VERSION_KEY)
                .map_err(redb::Error::from)?
                .map_or(1, |v| v.value());
            if found > self.version {
                return Err(SchemaError::Newer {
                    part: self.name,
                    found,
                    known: self.version,
                });
            }
            for t in self.tables {
                tx.open_table(*t).map_err(redb::Error::from)?;
            }
            if found < self.version {
                (self.migrate)(&tx, found)?;
            }
            meta.insert(VERSION_KEY, self.version)
                .map_err(redb::Error::from)?;
        }
        tx.commit().map_err(redb::Error::from)?;
        Ok(())
    }
}

/// A table of `&str` keys and JSON values of type `T`.
pub struct JsonTable<T> {
    name: &'static str,
    /// What a row is, for log lines.
    what: &'static str,
    value: PhantomData<fn() -> T>,
}

impl<T> JsonTable<T> {
    pub const fn new(name: &'static str, what: &'static str) -> Self {
        JsonTable {
            name,
            what,
            value: PhantomData,
        }
    }

    pub const fn def(&self) -> Bytes {
        TableDefinition::new(self.name)
    }
}

impl<T: Serialize + DeserializeOwned> JsonTable<T> {
    /// Every row that decodes, with its key; the others are logged and skipped.
    pub fn load(&self, db: &berth_image::MetaDb) -> Result<Vec<(String, T)>, redb::Error> {
        let tx = db.begin_read()?;
        let table = tx.open_table(self.def())?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            match serde_json::from_slice::<T>(v.value()) {
                Ok(value) => out.push((k.value().to_string(), value)),
                Err(e) => {
                    tracing::warn!(key = k.value(), error = %e, "skipping unreadable {}", self.what)
                }
            }
        }
        Ok(out)
    }

    /// Writes one row in its own transaction.
    pub fn put(&self, db: &berth_image::MetaDb, key: &str, value: &T) -> Result<(), redb::Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| redb::Error::Corrupted(format!("encoding {}: {e}", self.what)))?;
        let tx = db.begin_write()?;
        tx.open_table(self.def())?.insert(key, bytes.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes one row (absent is fine) in its own transaction.
    pub fn delete(&self, db: &berth_image::MetaDb, key: &str) -> Result<(), redb::Error> {
        let tx = db.begin_write()?;
        tx.open_table(self.def())?.remove(key)?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::{Daemon, DaemonConfig};

    const CID: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    const NID: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

    fn open(config: &DaemonConfig) -> anyhow::Result<Daemon> {
        let registry = berth_registry::RegistryClient::new(Default::default())?;
        Daemon::open(Arc::new(config.clone()), "test".into(), registry)
    }

    fn put_row(tx: &WriteTransaction, table: &'static str, key: &str, json: &str) {
        let def: Bytes = TableDefinition::new(table);
        tx.open_table(def)
            .unwrap()
            .insert(key, json.as_bytes())
            .unwrap();
    }

    fn put_version(tx: &WriteTransaction, table: &'static str, v: u64) {
        let def: TableDefinition<&str, u64> = TableDefinition::new(table);
        tx.open_table(def).unwrap().insert(VERSION_KEY, v).unwrap();
    }

    /// Writes `meta.db` rows as the daemon wrote them before this schema file: version
    /// rows for containers and volumes only, and `net_endpoints` holding the primary
    /// endpoint (key `<cid>`) and the extra one (key `<cid>/<nid>`) side by side.
    fn write_old_store(config: &DaemonConfig) {
        std::fs::create_dir_all(&config.root).unwrap();
        let db = redb::Database::create(config.root.join("meta.db")).unwrap();
        let tx = db.begin_write().unwrap();
        put_version(&tx, "containers_meta", 1);
        put_version(&tx, "volumes_meta", 1);
        let rec = ContainerRecord {
            id: CID.into(),
            name: "/web".into(),
            ..Default::default()
        };
        put_row(
            &tx,
            "containers",
            CID,
            &serde_json::to_string(&rec).unwrap(),
        );
        put_row(
            &tx,
            "volumes",
            "data",
            r#"{"name":"data","driver":"local","labels":{},"options":{},"created":"2026-01-01T00:00:00Z","anonymous":false}"#,
        );
        put_row(
            &tx,
            "networks",
            NID,
            &format!(
                r#"{{"id":"{NID}","name":"backend","subnet":"10.99.0.0/24","gateway":"10.99.0.1","internal":false,"labels":{{}},"created":"2026-01-01T00:00:00Z","bridge":"br-eeeeeeeeeeee"}}"#
            ),
        );
        put_row(
            &tx,
            "net_endpoints",
            CID,
            r#"{"ip":"172.17.0.2","mac":"02:42:ac:11:00:02","endpoint_id":"e1","ports":[],"network":"","name":"web"}"#,
        );
        put_row(
            &tx,
            "net_endpoints",
            &format!("{CID}/{NID}"),
            &format!(
                r#"{{"network":"{NID}","ip":"10.99.0.2","mac":"02:42:0a:63:00:02","endpoint_id":"e2","aliases":["db"],"ifname":"eth1"}}"#
            ),
        );
        tx.commit().unwrap();
    }

    #[test]
    fn a_store_from_before_the_network_version_row_opens_and_migrates() {
        let dir = tempfile::tempdir().unwrap();
        let config = DaemonConfig::for_tests(dir.path());
        write_old_store(&config);
        for _ in 0..2 {
            // Twice: the migrated store opens as it is.
            let d = open(&config).unwrap();
            let rec = d.containers.get("web").unwrap();
            assert_eq!(rec.id, CID);
            assert_eq!(d.volumes.get("data").unwrap().driver, "local");
            let net = d.networks.inspect_network("backend", &|_| None).unwrap();
            assert_eq!(net.id, NID);
            let settings = d.networks.settings(&rec);
            let backend = &settings.networks["backend"];
            assert_eq!(backend.aliases.as_deref(), Some(&["db".to_string()][..]));
            let primary = NET_ENDPOINTS.load(&d.db).unwrap();
            assert_eq!(primary.len(), 1);
            assert_eq!(
                (primary[0].0.as_str(), primary[0].1.ip.to_string()),
                (CID, "172.17.0.2".into())
            );
            let extra = NET_EXTRA_ENDPOINTS.load(&d.db).unwrap();
            assert_eq!(extra.len(), 1);
            assert_eq!(extra[0].0, format!("{CID}/{NID}"));
            assert_eq!(extra[0].1.ifname, "eth1");
            let tx = d.db.begin_read().unwrap();
            let meta = tx.open_table(NETWORKS_PART.meta).unwrap();
            assert_eq!(meta.get(VERSION_KEY).unwrap().unwrap().value(), 2);
        }
    }

    #[test]
    fn a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = DaemonConfig::for_tests(dir.path());
        write_old_store(&config);
        {
            let db = redb::Database::create(config.root.join("meta.db")).unwrap();
            let tx = db.begin_write().unwrap();
            put_version(&tx, "networks_meta", 3);
            tx.commit().unwrap();
        }
        let err = open(&config).err().unwrap();
        assert_eq!(
            err.to_string(),
            "networks schema version 3 is newer than this Berth (2)"
        );
    }
}
