//! The daemon's event bus: every service records what happens (`emit`) and `GET /events`
//! replays the recent past and follows what comes next.
//!
//! Events are kept in memory (the last [`KEEP`], each as its JSON in one allocation: a
//! decoded event is a dozen small allocations, which a history refilled under load spread
//! over the heap's pages so they never went back to the system) and written to `meta.db`, table `events`
//! (see [`crate::schema`]), by a background thread, so `--since` still answers after a
//! daemon restart (Docker keeps 256 events in memory only). `emit` never blocks on disk.

pub mod filter;

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_api::{EventActor, EventMessage};
use tokio::sync::broadcast;

use crate::schema::{EVENTS, EVENTS_PART};

/// How many events are kept, in memory and on disk: Docker's `eventsLimit`. (1,000 before:
/// a history refilled under load was about a third of the daemon's heap growth.)
pub const KEEP: usize = 256;

/// How many events a live subscriber may fall behind before it misses some: Docker's
/// `bufferSize`.
const LIVE_BUFFER: usize = 1024;

/// What an event is about (`Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Container,
    Image,
    Network,
    Volume,
    Daemon,
    Builder,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Container => "container",
            EventType::Image => "image",
            EventType::Network => "network",
            EventType::Volume => "volume",
            EventType::Daemon => "daemon",
            EventType::Builder => "builder",
        }
    }
}

struct History {
    /// Each event's JSON (decoded again by [`EventBus::subscribe`]).
    events: VecDeque<Box<[u8]>>,
    /// The key of the next event in the `events` table.
    next_seq: u64,
}

/// To the writer thread: (sequence number, event).
type Queue = mpsc::Sender<(u64, Arc<EventMessage>)>;

pub struct EventBus {
    history: Mutex<History>,
    live: broadcast::Sender<Arc<EventMessage>>,
    /// To the thread writing `meta.db` (none in memory-only buses).
    persist: Mutex<Option<Queue>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Set when the daemon shuts down: long-lived streams (events, stats) end.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Drop for EventBus {
    /// Lets the writer finish the queue, so the database is closed when this returns.
    fn drop(&mut self) {
        self.finish_writes();
    }
}

/// The `events` table key of sequence number `seq` (sorts as the number does).
fn key(seq: u64) -> String {
    format!("{seq:020}")
}

impl EventBus {
    /// A bus that keeps its events in memory only.
    pub fn in_memory() -> Arc<EventBus> {
        Arc::new(EventBus {
            history: Mutex::new(History {
                events: VecDeque::new(),
                next_seq: 0,
            }),
            live: broadcast::channel(LIVE_BUFFER).0,
            persist: Mutex::new(None),
            writer: Mutex::new(None),
            closing: tokio::sync::watch::channel(false).0,
        })
    }

    /// Loads the events kept in `meta.db` and starts the thread that writes new ones.
    pub fn open(db: Arc<berth_image::MetaDb>) -> anyhow::Result<Arc<EventBus>> {
        EVENTS_PART.open(&db)?;
        let mut rows = EVENTS.load(&db)?;
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let next_seq = rows
            .last()
            .and_then(|(k, _)| k.parse::<u64>().ok())
            .map_or(0, |s| s + 1);
        let skip = rows.len().saturating_sub(KEEP);
        let events = rows
            .into_iter()
            .skip(skip)
            .filter_map(|(_, m)| encode(&m))
            .collect();
        let (tx, rx) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("events-writer".into())
            .spawn(move || write_loop(db, rx))?;
        Ok(Arc::new(EventBus {
            history: Mutex::new(History { events, next_seq }),
            live: broadcast::channel(LIVE_BUFFER).0,
            persist: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            closing: tokio::sync::watch::channel(false).0,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one event (Docker's JSON: Type, Action, Actor{ID, Attributes}, scope "local",
    /// time, timeNano; plus the legacy status/id/from for containers and images).
    pub fn emit(
        &self,
        typ: EventType,
        action: &str,
        actor_id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let now = chrono::Utc::now();
        let mut m = EventMessage {
            typ: typ.as_str().into(),
            action: action.into(),
            scope: "local".into(),
            time: now.timestamp(),
            time_nano: now.timestamp_nanos_opt().unwrap_or_default(),
            ..Default::default()
        };
        match typ {
            EventType::Container => {
                m.status = action.into();
                m.id = actor_id.into();
                m.from = attributes.get("image").cloned().unwrap_or_default();
            }
            EventType::Image => {
                m.status = action.into();
                m.id = actor_id.into();
            }
            _ => {}
        }
        m.actor = EventActor {
            id: actor_id.into(),
            attributes,
        };
        let encoded = encode(&m);
        let m = Arc::new(m);
        let mut h = self.lock();
        let seq = h.next_seq;
        h.next_seq += 1;
        h.events.extend(encoded);
        while h.events.len() > KEEP {
            h.events.pop_front();
        }
        // No receivers is fine: nobody is listening.
        let _ = self.live.send(m.clone());
        let persist = self.persist.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = persist.as_ref() {
            if p.send((seq, m)).is_err() {
                tracing::warn!("the events writer has stopped; event not persisted");
            }
        }
    }

    /// Writes what is queued and stops persisting (later events stay in memory): for
    /// the end of the daemon, whose services may still hold the bus.
    pub fn finish_writes(&self) {
        drop(
            self.persist
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = writer {
            let _ = w.join();
        }
    }

    /// Ends the long-lived streams (`GET /events`, streamed stats): the daemon is
    /// shutting down and waits for open requests.
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Self::close_streams`] was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }

    /// The kept events, oldest first, and a receiver of every later one (no gap, no
    /// duplicate between the two).
    pub fn subscribe(
        &self,
    ) -> (
        Vec<Arc<EventMessage>>,
        broadcast::Receiver<Arc<EventMessage>>,
    ) {
        let h = self.lock();
        let kept = h
            .events
            .iter()
            .filter_map(|b| serde_json::from_slice::<EventMessage>(b).ok())
            .map(Arc::new)
            .collect();
        (kept, self.live.subscribe())
    }
}

/// An event as kept in the history (see the module's header).
fn encode(m: &EventMessage) -> Option<Box<[u8]>> {
    match serde_json::to_vec(m) {
        Ok(v) => Some(v.into_boxed_slice()),
        Err(e) => {
            tracing::warn!(error = %e, "encoding an event");
            None
        }
    }
}

impl crate::containers::ContainerService {
    /// Container event with Docker's attributes: name, image and the container's labels, plus `extra`
    /// (e.g. ("exitCode","0"), ("signal","15")). `action` is e.g. "die", "health_status: healthy".
    pub(crate) fn emit_container_event(
        &self,
        record: &crate::containers::record::ContainerRecord,
        action: &str,
        extra: &[(&str, &str)],
    ) {
        self.events.emit(
            EventType::Container,
            action,
            &record.id,
            container_attributes(record, extra),
        );
    }
}

impl crate::containers::ContainerService {
    /// An exec event with its `execID`: `exec_create` and `exec_start` get Docker's
    /// `: <command>` suffix; `exec_die` gets `exitCode`.
    pub(crate) fn emit_exec_event(&self, exec_id: &str, action: &str, exit_code: Option<i64>) {
        let Ok(exec) = self.execs.get(exec_id) else {
            return;
        };
        let Ok(rec) = self.get(&exec.container_id) else {
            return;
        };
        let action = match action {
            "exec_create" | "exec_start" => {
                let (first, rest) = exec
                    .config
                    .cmd
                    .split_first()
                    .map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
                format!("{action}: {first} {}", rest.join(" "))
            }
            other => other.to_string(),
        };
        let code = exit_code.map(|c| c.to_string());
        let mut extra = vec![("execID", exec_id)];
        if let Some(c) = &code {
            extra.push(("exitCode", c.as_str()));
        }
        self.emit_container_event(&rec, &action, &extra);
    }

    /// Volume `mount` (at start: container, destination, driver, propagation,
    /// read/write) or `unmount` (at exit: container, driver) for each volume mount.
    pub(crate) fn emit_volume_events(
        &self,
        record: &crate::containers::record::ContainerRecord,
        action: &str,
    ) {
        for p in record.mount_points.iter().filter(|p| p.kind == "volume") {
            let mut a = BTreeMap::new();
            a.insert("container".to_string(), record.id.clone());
            a.insert("driver".to_string(), p.driver.clone());
            if action == "mount" {
                a.insert("destination".to_string(), p.destination.clone());
                a.insert("propagation".to_string(), p.propagation.clone());
                a.insert("read/write".to_string(), p.rw.to_string());
            }
            self.events.emit(EventType::Volume, action, &p.name, a);
        }
    }
}

impl crate::state::Daemon {
    /// An image event (moby's `LogImageEvent`): the labels of the image `image_id` names
    /// (while it exists) and `name`.
    pub fn emit_image_event(&self, action: &str, image_id: &str, name: &str) {
        let mut a: BTreeMap<String, String> = self
            .images
            .resolve(image_id)
            .map(|r| r.config.config.labels)
            .unwrap_or_default();
        if !name.is_empty() {
            a.insert("name".into(), name.into());
        }
        self.events.emit(EventType::Image, action, image_id, a);
    }

    /// Every image's labels, taken before an `rmi` or `prune` (their events name
    /// images that are gone by then).
    pub fn image_labels(&self) -> std::collections::HashMap<String, BTreeMap<String, String>> {
        let opts = berth_image::ListOptions {
            all: true,
            ..Default::default()
        };
        self.images
            .list(&opts)
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.id, i.labels))
            .collect()
    }

    /// `untag` and `delete` events for an `rmi` or `prune` answer. `before` is
    /// [`Self::image_labels`] from before the removal: a `Deleted` ID that is not an image
    /// there is a layer, without an event. An untag is about the image deleted next in
    /// `items`, else `image_id`; as in dockerd 20.10, its `name` is the image ID.
    pub fn emit_image_delete_events(
        &self,
        items: &[berth_api::ImageDeleteItem],
        image_id: &str,
        before: &std::collections::HashMap<String, BTreeMap<String, String>>,
    ) {
        let emit = |action: &str, id: &str| {
            let mut a = before.get(id).cloned().unwrap_or_default();
            a.insert("name".into(), id.into());
            self.events.emit(EventType::Image, action, id, a);
        };
        let mut untags = 0usize;
        for item in items {
            if item.untagged.is_some() {
                untags += 1;
            }
            match &item.deleted {
                Some(id) if before.contains_key(id) => {
                    for _ in 0..std::mem::take(&mut untags) {
                        emit("untag", id);
                    }
                    // moby emits `delete` without the labels.
                    self.events.emit(
                        EventType::Image,
                        "delete",
                        id,
                        BTreeMap::from([("name".to_string(), id.clone())]),
                    );
                }
                _ => {}
            }
        }
        if !image_id.is_empty() {
            for _ in 0..untags {
                emit("untag", image_id);
            }
        }
    }
}

/// As moby's `LogContainerEventWithAttributes`: `extra`, then the labels over it, then
/// `image` (as the client named it) and `name` (without its `/`).
pub fn container_attributes(
    record: &crate::containers::record::ContainerRecord,
    extra: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut a: BTreeMap<String, String> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    a.extend(
        record
            .config
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    if !record.config.image.is_empty() {
        a.insert("image".into(), record.config.image.clone());
    }
    a.insert(
        "name".into(),
        record.name.trim_start_matches('/').to_string(),
    );
    a
}

/// Writes events in batches (one transaction for whatever is queued) and trims the
/// table to the last [`KEEP`]. Ends when the bus is dropped.
///
/// Events are history, not acknowledged changes: a batch is made durable (fsync) at most
/// once per [`EVENTS_SYNC_EVERY`]; the others are committed without one, and become
/// durable with the next durable commit of anything in `meta.db`. Under load this keeps
/// the event log from doubling the fsyncs that container changes wait for.
fn write_loop(db: Arc<berth_image::MetaDb>, rx: mpsc::Receiver<(u64, Arc<EventMessage>)>) {
    let mut last_sync: Option<std::time::Instant> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let durable = last_sync.is_none_or(|t| t.elapsed() >= EVENTS_SYNC_EVERY);
        match write_batch(&db, &batch, durable) {
            Ok(()) if durable => last_sync = Some(std::time::Instant::now()),
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "persisting events"),
        }
    }
}

/// See [`write_loop`].
const EVENTS_SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

fn write_batch(
    db: &berth_image::MetaDb,
    batch: &[(u64, Arc<EventMessage>)],
    durable: bool,
) -> Result<(), redb::Error> {
    let mut tx = db.begin_write()?;
    if !durable {
        tx.set_durability(redb::Durability::None)
            .map_err(|e| redb::Error::Corrupted(format!("event batch durability: {e}")))?;
    }
    {
        let mut table = tx.open_table(EVENTS.def())?;
        for (seq, m) in batch {
            let bytes = serde_json::to_vec(m.as_ref())
                .map_err(|e| redb::Error::Corrupted(format!("encoding an event: {e}")))?;
            table.insert(key(*seq).as_str(), bytes.as_slice())?;
        }
        if let Some((last, _)) = batch.last() {
            if let Some(first_kept) = (last + 1).checked_sub(KEEP as u64) {
                let cutoff = key(first_kept);
                table.retain_in(..cutoff.as_str(), |_, _| false)?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn container_events_carry_the_legacy_fields() {
        let bus = EventBus::in_memory();
        bus.emit(
            EventType::Container,
            "start",
            "abc",
            attrs(&[("image", "busybox"), ("name", "web")]),
        );
        bus.emit(
            EventType::Network,
            "create",
            "n1",
            attrs(&[("name", "front")]),
        );
        let (kept, _) = bus.subscribe();
        assert_eq!(
            (
                kept[0].status.as_str(),
                kept[0].id.as_str(),
                kept[0].from.as_str()
            ),
            ("start", "abc", "busybox")
        );
        assert_eq!(kept[0].scope, "local");
        assert!(kept[0].time_nano / 1_000_000_000 == kept[0].time);
        assert_eq!(
            (kept[1].typ.as_str(), kept[1].status.as_str()),
            ("network", "")
        );
    }

    #[test]
    fn container_attributes_follow_moby() {
        let mut rec = crate::containers::record::ContainerRecord {
            id: "c1".into(),
            name: "/web".into(),
            ..Default::default()
        };
        rec.config.image = "busybox".into();
        rec.config
            .labels
            .insert("exitCode".into(), "label wins".into());
        rec.config.labels.insert("app".into(), "x".into());
        let a = container_attributes(&rec, &[("exitCode", "0"), ("signal", "15")]);
        assert_eq!(
            a,
            attrs(&[
                ("app", "x"),
                ("exitCode", "label wins"),
                ("image", "busybox"),
                ("name", "web"),
                ("signal", "15")
            ])
        );
    }

    #[tokio::test]
    async fn subscribers_see_later_events() {
        let bus = EventBus::in_memory();
        bus.emit(EventType::Volume, "create", "v1", BTreeMap::new());
        let (kept, mut rx) = bus.subscribe();
        bus.emit(EventType::Volume, "destroy", "v1", BTreeMap::new());
        assert_eq!(kept.len(), 1);
        assert_eq!(rx.recv().await.unwrap().action, "destroy");
    }

    #[tokio::test]
    async fn the_kept_history_replays_each_event_as_it_was_streamed() {
        let bus = EventBus::in_memory();
        let (_, mut rx) = bus.subscribe();
        bus.emit(
            EventType::Container,
            "die",
            "abc",
            attrs(&[
                ("image", "busybox"),
                ("exitCode", "0"),
                ("lbl", "a=b \"c\""),
            ]),
        );
        bus.emit(
            EventType::Network,
            "connect",
            "n1",
            attrs(&[("container", "abc")]),
        );
        let streamed = [rx.recv().await.unwrap(), rx.recv().await.unwrap()];
        let (kept, _) = bus.subscribe();
        assert_eq!(kept.len(), 2);
        for (k, s) in kept.iter().zip(&streamed) {
            assert_eq!(k.as_ref(), s.as_ref());
        }
        // Only the last KEEP stay.
        for i in 0..KEEP + 5 {
            bus.emit(
                EventType::Volume,
                "create",
                &format!("v{i}"),
                BTreeMap::new(),
            );
        }
        let (kept, _) = bus.subscribe();
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0].actor.id, "v5");
    }

    #[test]
    fn the_last_events_survive_a_reopen_and_the_table_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(berth_image::MetaDb::open(&dir.path().join("meta.db")).unwrap());
        {
            let bus = EventBus::open(db.clone()).unwrap();
            for i in 0..(KEEP + 20) {
                bus.emit(
                    EventType::Volume,
                    "create",
                    &format!("v{i}"),
                    BTreeMap::new(),
                );
            }
        }
        // Dropping the bus waited for its writer.
        let rows = EVENTS.load(&db).unwrap();
        assert_eq!(rows.len(), KEEP);
        assert_eq!(rows[KEEP - 1].1.actor.id, format!("v{}", KEEP + 19));
        let bus = EventBus::open(db).unwrap();
        let (kept, _) = bus.subscribe();
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0].actor.id, "v20");
        bus.emit(EventType::Volume, "create", "after", BTreeMap::new());
        assert_eq!(bus.lock().next_seq, (KEEP + 21) as u64);
    }
}
