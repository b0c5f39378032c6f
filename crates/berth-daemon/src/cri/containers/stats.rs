//! ContainerStats and ListContainerStats from the same cgroup samples as `docker stats`
//! (the daemon's stats service): CPU core-nanoseconds and nanocores over the sample
//! window, the memory working set (usage less inactive file pages, the kubelet's
//! definition) and the writable layer's size.

use berth_cri_api::v1::*;
use tonic::Status;

use super::{find, labels};
use crate::containers::record::ContainerRecord;
use crate::cri::CriService;

fn u64v(value: u64) -> Option<UInt64Value> {
    Some(UInt64Value { value })
}

fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()?
        .timestamp_nanos_opt()
}

impl CriService {
    async fn stats_of(&self, rec: &ContainerRecord) -> ContainerStats {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let attributes = Some(ContainerAttributes {
            id: rec.id.clone(),
            metadata: Some(labels::metadata(rec)),
            labels: labels::cri_labels(rec),
            annotations: labels::cri_annotations(rec),
        });
        let upper = self.daemon.containers.container_dir(&rec.id).join("upper");
        let layer_dir = upper.clone();
        let used = tokio::task::spawn_blocking(move || crate::fsutil::dir_size(&layer_dir))
            .await
            .unwrap_or(0);
        let writable_layer = Some(FilesystemUsage {
            timestamp: now,
            fs_id: Some(FilesystemIdentifier {
                mountpoint: upper.display().to_string(),
            }),
            used_bytes: u64v(u64::try_from(used).unwrap_or(0)),
            inodes_used: None,
        });
        if !rec.state.status.is_running() {
            return ContainerStats {
                attributes,
                writable_layer,
                ..Default::default()
            };
        }
        let state_dir = self.daemon.containers.state_dir(&rec.id);
        let s = self.daemon.stats.one_off(rec, &state_dir).await;
        let total = s.cpu_stats.cpu_usage.total_usage;
        let pre = s.precpu_stats.cpu_usage.total_usage;
        let window = match (parse_time(&s.read), parse_time(&s.preread)) {
            (Some(a), Some(b)) if a > b => Some((a - b) as u128),
            _ => None,
        };
        let nano_cores = window
            .filter(|_| total >= pre)
            .map(|w| ((total - pre) as u128 * 1_000_000_000 / w) as u64);
        let m = &s.memory_stats;
        let inactive = m
            .stats
            .get("total_inactive_file")
            .or_else(|| m.stats.get("inactive_file"))
            .copied()
            .unwrap_or(0);
        let working_set = m.usage.saturating_sub(inactive);
        let rss = m
            .stats
            .get("total_rss")
            .or_else(|| m.stats.get("anon"))
            .copied();
        let faults = |k1: &str, k2: &str| m.stats.get(k1).or_else(|| m.stats.get(k2)).copied();
        ContainerStats {
            attributes,
            cpu: Some(CpuUsage {
                timestamp: now,
                usage_core_nano_seconds: u64v(total),
                usage_nano_cores: nano_cores.and_then(u64v),
            }),
            memory: Some(MemoryUsage {
                timestamp: now,
                working_set_bytes: u64v(working_set),
                available_bytes: (m.limit > 0)
                    .then(|| m.limit.saturating_sub(working_set))
                    .and_then(u64v),
                usage_bytes: u64v(m.usage),
                rss_bytes: rss.and_then(u64v),
                page_faults: faults("total_pgfault", "pgfault").and_then(u64v),
                major_page_faults: faults("total_pgmajfault", "pgmajfault").and_then(u64v),
            }),
            writable_layer,
            swap: None,
        }
    }

    pub async fn container_stats(
        &self,
        req: ContainerStatsRequest,
    ) -> Result<ContainerStatsResponse, Status> {
        let rec = find(&self.daemon, &req.container_id)?;
        Ok(ContainerStatsResponse {
            stats: Some(self.stats_of(&rec).await),
        })
    }

    pub async fn list_container_stats(
        &self,
        req: ListContainerStatsRequest,
    ) -> Result<ListContainerStatsResponse, Status> {
        let f = req.filter.unwrap_or_default();
        let recs = self.daemon.containers.records_where(|r| {
            labels::is_cri_container(r)
                && (f.id.is_empty() || r.id.starts_with(&f.id))
                && (f.pod_sandbox_id.is_empty()
                    || labels::sandbox_id(r).starts_with(&f.pod_sandbox_id))
                && {
                    let l = labels::cri_labels(r);
                    f.label_selector.iter().all(|(k, v)| l.get(k) == Some(v))
                }
        });
        let mut stats = Vec::with_capacity(recs.len());
        for rec in &recs {
            stats.push(self.stats_of(rec).await);
        }
        Ok(ListContainerStatsResponse { stats })
    }
}
