//! `GET /containers/{id}/stats`: samples of a container's cgroups, its interfaces and
//! the host's CPU time, in Docker's JSON.
//!
//! There is no background collector: a sample is taken when a client asks (each
//! streaming client every second). The last sample of each container is kept, so a
//! `stream=false` answer has a `precpu_stats` without waiting: the previous sample when
//! it is at most [`PRE_MAX_AGE`] old, else one taken [`PRE_GAP`] before (Docker waits
//! for two ticks of its 1 s collector).

pub mod host;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_api::{go_rfc3339_nano, ContainerStats};
use berth_runtime::cgroup_stats::StatsSource;
use chrono::Utc;

use crate::containers::record::ContainerRecord;

/// How old the kept sample may be to serve as `precpu_stats` of a one-off answer.
pub const PRE_MAX_AGE: Duration = Duration::from_secs(10);
/// How young it may be (younger deltas say nothing): below this a new pair is taken.
pub const PRE_MIN_AGE: Duration = Duration::from_millis(20);
/// The gap between the two samples of a one-off answer without a kept one.
pub const PRE_GAP: Duration = Duration::from_millis(100);

struct Kept {
    /// The init pid the source was resolved for (a restart makes new cgroups).
    pid: i64,
    source: StatsSource,
    last: Option<(Instant, ContainerStats)>,
}

pub struct StatsService {
    machine_memory: u64,
    kept: Mutex<HashMap<String, Kept>>,
}

impl Default for StatsService {
    fn default() -> Self {
        StatsService {
            machine_memory: host::machine_memory(),
            kept: Mutex::new(HashMap::new()),
        }
    }
}

/// Docker's answer for a container that is not running: zeroes, its name and ID.
pub fn zeroed(rec: &ContainerRecord) -> ContainerStats {
    ContainerStats {
        name: rec.name.clone(),
        id: rec.id.clone(),
        ..Default::default()
    }
}

impl StatsService {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Kept>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One sample of a running container (`precpu_stats` and `preread` left zero).
    /// Reads procfs and cgroupfs only, which never wait on a disk.
    pub fn sample(&self, rec: &ContainerRecord, state_dir: &std::path::Path) -> ContainerStats {
        let pid = rec.state.pid;
        let source = {
            let mut kept = self.lock();
            match kept.get(&rec.id) {
                Some(k) if k.pid == pid => k.source.clone(),
                _ => {
                    let source = StatsSource::load(state_dir).unwrap_or_default();
                    if kept.len() > 4096 {
                        kept.clear();
                    }
                    kept.insert(
                        rec.id.clone(),
                        Kept {
                            pid,
                            source: source.clone(),
                            last: None,
                        },
                    );
                    source
                }
            }
        };
        let now = Utc::now();
        let cg = source.read();
        let (system, online) = host::system_cpu();
        let mut s = ContainerStats {
            read: go_rfc3339_nano(&now),
            name: rec.name.clone(),
            id: rec.id.clone(),
            pids_stats: cg.pids,
            blkio_stats: cg.blkio,
            cpu_stats: cg.cpu,
            memory_stats: cg.memory,
            ..Default::default()
        };
        s.cpu_stats.system_cpu_usage = system;
        s.cpu_stats.online_cpus = online;
        let m = &mut s.memory_stats;
        if self.machine_memory > 0 && (m.limit == 0 || m.limit > self.machine_memory) {
            m.limit = self.machine_memory;
        }
        if rec.host_config.network_mode != "host" && pid > 0 {
            s.networks = host::networks(pid).filter(|n| !n.is_empty());
        }
        if let Some(k) = self.lock().get_mut(&rec.id) {
            k.last = Some((Instant::now(), s.clone()));
        }
        s
    }

    /// The kept sample of container `id` if it is between `min` and `max` old.
    fn kept_sample(
        &self,
        id: &str,
        pid: i64,
        min: Duration,
        max: Duration,
    ) -> Option<ContainerStats> {
        let kept = self.lock();
        let k = kept.get(id).filter(|k| k.pid == pid)?;
        let (at, s) = k.last.as_ref()?;
        let age = at.elapsed();
        (age >= min && age <= max).then(|| s.clone())
    }

    /// The sample before the next one of a stream: the kept one, if recent.
    pub fn previous(&self, rec: &ContainerRecord) -> Option<ContainerStats> {
        self.kept_sample(&rec.id, rec.state.pid, Duration::ZERO, PRE_MAX_AGE)
    }

    /// A `stream=false` answer: a sample with `precpu_stats` from the kept sample, or
    /// from one taken [`PRE_GAP`] earlier.
    pub async fn one_off(
        &self,
        rec: &ContainerRecord,
        state_dir: &std::path::Path,
    ) -> ContainerStats {
        let pre = match self.kept_sample(&rec.id, rec.state.pid, PRE_MIN_AGE, PRE_MAX_AGE) {
            Some(p) => p,
            None => {
                let p = self.sample(rec, state_dir);
                tokio::time::sleep(PRE_GAP).await;
                p
            }
        };
        with_pre(self.sample(rec, state_dir), Some(&pre))
    }
}

/// Fills `precpu_stats` and `preread` from the previous sample.
pub fn with_pre(mut s: ContainerStats, pre: Option<&ContainerStats>) -> ContainerStats {
    if let Some(p) = pre {
        s.precpu_stats = p.cpu_stats.clone();
        s.preread = p.read.clone();
    }
    s
}
