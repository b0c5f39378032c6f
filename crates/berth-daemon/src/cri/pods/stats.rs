//! PodSandboxStats and ListPodSandboxStats: the pod's CPU, memory and process counts
//! are the sums over its running pause and containers (one sample each from the stats
//! service, as `docker stats` reads them); its network is the pause's interfaces.
//! `usage_nano_cores` (a rate, which needs two samples) is not given, and the per-
//! container entries are left to ListContainerStats.

use std::collections::BTreeMap;

use berth_api::stats::{ContainerStats, NetworkStats};
use berth_cri_api::v1::*;
use tonic::Status;

use super::config::selector_matches;
use super::{in_pod, labels, CriService};
use crate::containers::record::ContainerRecord;

fn value(v: u64) -> Option<UInt64Value> {
    Some(UInt64Value { value: v })
}

/// One memory-stats key, v2's name first, then v1's.
fn mem_key(s: &ContainerStats, v2: &str, v1: &str) -> u64 {
    let m = &s.memory_stats.stats;
    m.get(v2).or_else(|| m.get(v1)).copied().unwrap_or(0)
}

fn interface(name: &str, n: &NetworkStats) -> NetworkInterfaceUsage {
    NetworkInterfaceUsage {
        name: name.into(),
        rx_bytes: value(n.rx_bytes),
        rx_errors: value(n.rx_errors),
        tx_bytes: value(n.tx_bytes),
        tx_errors: value(n.tx_errors),
    }
}

/// The pod's usage from the samples of its pause (first) and running containers.
pub fn pod_stats(rec: &ContainerRecord, samples: &[ContainerStats], now: i64) -> PodSandboxStats {
    let sum = |f: &dyn Fn(&ContainerStats) -> u64| samples.iter().map(f).sum::<u64>();
    let usage = sum(&|s| s.memory_stats.usage);
    // the kubelet's working set: usage less the inactive page cache
    let working = sum(&|s| {
        s.memory_stats
            .usage
            .saturating_sub(mem_key(s, "inactive_file", "total_inactive_file"))
    });
    let nets: BTreeMap<String, NetworkStats> = samples
        .first()
        .and_then(|s| s.networks.clone())
        .unwrap_or_default();
    let interfaces: Vec<NetworkInterfaceUsage> =
        nets.iter().map(|(name, n)| interface(name, n)).collect();
    PodSandboxStats {
        attributes: Some(PodSandboxAttributes {
            id: rec.id.clone(),
            metadata: Some(labels::metadata(rec)),
            labels: labels::pod_labels(rec),
            annotations: labels::annotations(rec),
        }),
        linux: Some(LinuxPodSandboxStats {
            cpu: Some(CpuUsage {
                timestamp: now,
                usage_core_nano_seconds: value(sum(&|s| s.cpu_stats.cpu_usage.total_usage)),
                usage_nano_cores: None,
            }),
            memory: Some(MemoryUsage {
                timestamp: now,
                working_set_bytes: value(working),
                available_bytes: None,
                usage_bytes: value(usage),
                rss_bytes: value(sum(&|s| mem_key(s, "anon", "total_rss"))),
                page_faults: value(sum(&|s| mem_key(s, "pgfault", "total_pgfault"))),
                major_page_faults: value(sum(&|s| mem_key(s, "pgmajfault", "total_pgmajfault"))),
            }),
            network: Some(NetworkUsage {
                timestamp: now,
                default_interface: nets.get("eth0").map(|n| interface("eth0", n)),
                interfaces,
            }),
            process: Some(ProcessUsage {
                timestamp: now,
                process_count: value(sum(&|s| s.pids_stats.current)),
            }),
            containers: Vec::new(),
        }),
        windows: None,
    }
}

impl CriService {
    fn sample_pod(&self, rec: &ContainerRecord) -> PodSandboxStats {
        let containers = &self.daemon.containers;
        let mut members = vec![rec.clone()];
        members.extend(containers.records_where(|r| in_pod(r, &rec.id)));
        let samples: Vec<ContainerStats> = members
            .iter()
            .filter(|r| r.state.status.is_running())
            .map(|r| self.daemon.stats.sample(r, &containers.state_dir(&r.id)))
            .collect();
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        pod_stats(rec, &samples, now)
    }

    pub(in crate::cri) async fn pod_stats(
        &self,
        req: PodSandboxStatsRequest,
    ) -> Result<PodSandboxStatsResponse, Status> {
        let rec = self.sandbox(&req.pod_sandbox_id)?;
        if !rec.state.status.is_running() {
            return Err(Status::failed_precondition(format!(
                "sandbox {:?} is not ready",
                rec.id
            )));
        }
        Ok(PodSandboxStatsResponse {
            stats: Some(self.sample_pod(&rec)),
        })
    }

    /// The stats of the ready pods the filter selects.
    pub(in crate::cri) async fn pod_list_stats(
        &self,
        req: ListPodSandboxStatsRequest,
    ) -> Result<ListPodSandboxStatsResponse, Status> {
        let f = req.filter.unwrap_or_default();
        let pods = self.daemon.containers.records_where(|r| {
            labels::is_sandbox(r)
                && r.state.status.is_running()
                && r.id.starts_with(&f.id)
                && selector_matches(&f.label_selector, &labels::pod_labels(r))
        });
        Ok(ListPodSandboxStatsResponse {
            stats: pods.iter().map(|p| self.sample_pod(p)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_over_the_pod_and_takes_the_pauses_network() {
        let mut a = ContainerStats::default();
        a.cpu_stats.cpu_usage.total_usage = 10;
        a.memory_stats.usage = 100;
        a.memory_stats.stats.insert("inactive_file".into(), 30);
        a.pids_stats.current = 1;
        a.networks = Some(BTreeMap::from([(
            "eth0".to_string(),
            NetworkStats {
                rx_bytes: 7,
                ..Default::default()
            },
        )]));
        let mut b = ContainerStats::default();
        b.cpu_stats.cpu_usage.total_usage = 5;
        b.memory_stats.usage = 50;
        b.pids_stats.current = 2;
        let rec = ContainerRecord {
            id: "p".into(),
            ..Default::default()
        };
        let s = pod_stats(&rec, &[a, b], 1);
        let l = s.linux.unwrap();
        assert_eq!(l.cpu.unwrap().usage_core_nano_seconds.unwrap().value, 15);
        let m = l.memory.unwrap();
        assert_eq!(m.usage_bytes.unwrap().value, 150);
        assert_eq!(m.working_set_bytes.unwrap().value, 120);
        assert_eq!(l.process.unwrap().process_count.unwrap().value, 3);
        let n = l.network.unwrap();
        assert_eq!(n.default_interface.unwrap().rx_bytes.unwrap().value, 7);
        assert_eq!(s.attributes.unwrap().id, "p");
    }
}
