//! What `docker stats` shows of a container's cgroups, on cgroup v1, v2 and the hybrid
//! of both: CPU time and throttling, memory, pids and block I/O, read into the Engine
//! API's types (moby `daemon/stats_unix.go`, `statsV1` and `statsV2`).
//!
//! [`StatsSource::new`] decides once which hierarchy serves each controller (a v1
//! hierarchy when there is one, else the v2 tree when the controller is enabled there);
//! [`StatsSource::read`] then only reads files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_api::{
    BlkioStatEntry, BlkioStats, CpuStats, CpuUsage, MemoryStats, PidsStats, ThrottlingData,
};

use crate::cgroup::CgroupPaths;

/// Where each controller's files are, decided once per container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSource {
    /// v1 `cpuacct` (usage, per-CPU usage, user/system ticks).
    cpuacct_v1: Option<PathBuf>,
    /// v1 `cpu` (`cpu.stat`: throttling).
    cpu_v1: Option<PathBuf>,
    /// The v2 cgroup (`cpu.stat` is always there).
    unified: Option<PathBuf>,
    memory: Option<(PathBuf, bool)>,
    pids: Option<(PathBuf, bool)>,
    blkio: Option<(PathBuf, bool)>,
}

/// One reading of the cgroup files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupStats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    read(dir, file)?.trim().parse().ok()
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `cpuacct.stat`).
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// v1 blkio files: `MAJ:MIN Op value` (or `MAJ:MIN value` for `time`/`sectors`); the
/// `Total` line is left out.
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioStatEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, value) = match f.as_slice() {
                [dev, op, value] => (*dev, *op, *value),
                [dev, value] if dev.contains(':') => (*dev, "", *value),
                _ => return None,
            };
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioStatEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// v2 `io.stat`: `MAJ:MIN rbytes=… wbytes=… rios=… wios=…` → (bytes, ios) entries with
/// ops `read` and `write`, as moby's `statsV2`.
pub fn parse_io_stat(text: &str) -> (Vec<BlkioStatEntry>, Vec<BlkioStatEntry>) {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        let kv: BTreeMap<&str, u64> = it
            .filter_map(|p| p.split_once('='))
            .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
            .collect();
        let entry = |op: &str, key: &str| BlkioStatEntry {
            major,
            minor,
            op: op.into(),
            value: kv.get(key).copied().unwrap_or(0),
        };
        bytes.push(entry("read", "rbytes"));
        bytes.push(entry("write", "wbytes"));
        ios.push(entry("read", "rios"));
        ios.push(entry("write", "wios"));
    }
    (bytes, ios)
}

/// `pids.max` / `memory.max`: a number, or `max` (no limit, 0 here).
fn limit_value(text: Option<String>) -> u64 {
    text.and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

/// Clock ticks per second (`USER_HZ`) for `cpuacct.stat`.
fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

impl StatsSource {
    pub fn new(paths: &CgroupPaths) -> StatsSource {
        StatsSource {
            cpuacct_v1: paths.v1.get("cpuacct").cloned(),
            cpu_v1: paths.v1.get("cpu").cloned(),
            unified: paths.unified.clone(),
            memory: paths.dir_for("memory"),
            pids: paths.dir_for("pids"),
            blkio: paths
                .v1
                .get("blkio")
                .map(|p| (p.clone(), false))
                .or_else(|| paths.dir_for("io")),
        }
    }

    /// Loads `<state-dir>/cgroups.json` and resolves it.
    pub fn load(state_dir: &Path) -> crate::error::Result<StatsSource> {
        Ok(Self::new(&CgroupPaths::load(state_dir)?))
    }

    /// Reads every file once. Files that are missing read as zero.
    pub fn read(&self) -> CgroupStats {
        CgroupStats {
            cpu: self.cpu(),
            memory: self.memory(),
            pids: self.pids(),
            blkio: self.blkio(),
        }
    }

    fn cpu(&self) -> CpuStats {
        let mut s = CpuStats::default();
        if let Some(dir) = &self.cpuacct_v1 {
            let ticks = clock_ticks();
            let stat = read(dir, "cpuacct.stat")
                .map(|t| parse_flat_keyed(&t))
                .unwrap_or_default();
            let ns = |k: &str| stat.get(k).copied().unwrap_or(0) * (1_000_000_000 / ticks);
            s.cpu_usage = CpuUsage {
                total_usage: read_u64(dir, "cpuacct.usage").unwrap_or(0),
                percpu_usage: read(dir, "cpuacct.usage_percpu")
                    .map(|t| {
                        t.split_whitespace()
                            .filter_map(|v| v.parse().ok())
                            .collect()
                    })
                    .unwrap_or_default(),
                usage_in_kernelmode: ns("system"),
                usage_in_usermode: ns("user"),
            };
        } else if let Some(dir) = &self.unified {
            let stat = read(dir, "cpu.stat")
                .map(|t| parse_flat_keyed(&t))
                .unwrap_or_default();
            let ns = |k: &str| stat.get(k).copied().unwrap_or(0) * 1000;
            s.cpu_usage = CpuUsage {
                total_usage: ns("usage_usec"),
                percpu_usage: Vec::new(),
                usage_in_kernelmode: ns("system_usec"),
                usage_in_usermode: ns("user_usec"),
            };
        }
        if let Some(dir) = &self.cpu_v1 {
            let stat = read(dir, "cpu.stat")
                .map(|t| parse_flat_keyed(&t))
                .unwrap_or_default();
            let get = |k: &str| stat.get(k).copied().unwrap_or(0);
            s.throttling_data = ThrottlingData {
                periods: get("nr_periods"),
                throttled_periods: get("nr_throttled"),
                throttled_time: get("throttled_time"),
            };
        } else if let Some(dir) = &self.unified {
            let stat = read(dir, "cpu.stat")
                .map(|t| parse_flat_keyed(&t))
                .unwrap_or_default();
            let get = |k: &str| stat.get(k).copied().unwrap_or(0);
            s.throttling_data = ThrottlingData {
                periods: get("nr_periods"),
                throttled_periods: get("nr_throttled"),
                throttled_time: get("throttled_usec") * 1000,
            };
        }
        s
    }

    fn memory(&self) -> MemoryStats {
        let Some((dir, v2)) = &self.memory else {
            return MemoryStats::default();
        };
        let stats = read(dir, "memory.stat")
            .map(|t| parse_flat_keyed(&t))
            .unwrap_or_default();
        if *v2 {
            MemoryStats {
                usage: read_u64(dir, "memory.current").unwrap_or(0),
                max_usage: 0,
                stats,
                failcnt: 0,
                limit: limit_value(read(dir, "memory.max")),
            }
        } else {
            MemoryStats {
                usage: read_u64(dir, "memory.usage_in_bytes").unwrap_or(0),
                max_usage: read_u64(dir, "memory.max_usage_in_bytes").unwrap_or(0),
                stats,
                failcnt: read_u64(dir, "memory.failcnt").unwrap_or(0),
                limit: read_u64(dir, "memory.limit_in_bytes").unwrap_or(0),
            }
        }
    }

    fn pids(&self) -> PidsStats {
        let Some((dir, _)) = &self.pids else {
            return PidsStats::default();
        };
        PidsStats {
            current: read_u64(dir, "pids.current").unwrap_or(0),
            limit: limit_value(read(dir, "pids.max")),
        }
    }

    fn blkio(&self) -> BlkioStats {
        match &self.blkio {
            None => BlkioStats::default(),
            Some((dir, true)) => {
                let (bytes, _) = parse_io_stat(&read(dir, "io.stat").unwrap_or_default());
                BlkioStats {
                    io_service_bytes_recursive: (!bytes.is_empty()).then_some(bytes),
                    ..Default::default()
                }
            }
            Some((dir, false)) => {
                let list = |f: &str| parse_blkio_v1(&read(dir, f).unwrap_or_default());
                let mut bytes = list("blkio.io_service_bytes_recursive");
                let mut serviced = list("blkio.io_serviced_recursive");
                if bytes.is_empty() {
                    // No CFQ scheduler: the throttle policy still counts.
                    bytes = list("blkio.throttle.io_service_bytes_recursive");
                    if bytes.is_empty() {
                        bytes = list("blkio.throttle.io_service_bytes");
                    }
                    serviced = list("blkio.throttle.io_serviced_recursive");
                    if serviced.is_empty() {
                        serviced = list("blkio.throttle.io_serviced");
                    }
                }
                BlkioStats {
                    io_service_bytes_recursive: Some(bytes),
                    io_serviced_recursive: Some(serviced),
                    io_queue_recursive: Some(list("blkio.io_queued_recursive")),
                    io_service_time_recursive: Some(list("blkio.io_service_time_recursive")),
                    io_wait_time_recursive: Some(list("blkio.io_wait_time_recursive")),
                    io_merged_recursive: Some(list("blkio.io_merged_recursive")),
                    io_time_recursive: Some(list("blkio.time_recursive")),
                    sectors_recursive: Some(list("blkio.sectors_recursive")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_blkio_lines_without_the_total() {
        let text = "8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n";
        let e = parse_blkio_v1(text);
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (8, 0, "Read", 4096)
        );
        let t = parse_blkio_v1("8:16 123\n");
        assert_eq!((t[0].op.as_str(), t[0].value), ("", 123));
    }

    #[test]
    fn v2_io_stat_becomes_read_and_write_entries() {
        let (bytes, ios) =
            parse_io_stat("8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(
            bytes
                .iter()
                .map(|e| (e.op.as_str(), e.value))
                .collect::<Vec<_>>(),
            [("read", 1024), ("write", 2048)]
        );
        assert_eq!(ios.iter().map(|e| e.value).collect::<Vec<_>>(), [1, 2]);
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (f, t) in files {
            std::fs::write(dir.join(f), t).unwrap();
        }
    }

    #[test]
    fn reads_a_v1_layout() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        write(
            p,
            &[
                ("cpuacct.usage", "5000\n"),
                ("cpuacct.usage_percpu", "3000 2000 \n"),
                ("cpuacct.stat", "user 2\nsystem 1\n"),
                (
                    "cpu.stat",
                    "nr_periods 10\nnr_throttled 3\nthrottled_time 900\n",
                ),
                ("memory.usage_in_bytes", "4096\n"),
                ("memory.max_usage_in_bytes", "8192\n"),
                ("memory.failcnt", "0\n"),
                ("memory.limit_in_bytes", "67108864\n"),
                (
                    "memory.stat",
                    "cache 100\ninactive_file 40\ntotal_inactive_file 40\n",
                ),
                ("pids.current", "3\n"),
                ("pids.max", "max\n"),
            ],
        );
        let mut paths = CgroupPaths::default();
        for c in ["cpuacct", "cpu", "memory", "pids", "blkio"] {
            paths.v1.insert(c.into(), p.to_path_buf());
        }
        let s = StatsSource::new(&paths).read();
        let tick_ns = 1_000_000_000 / clock_ticks();
        assert_eq!(s.cpu.cpu_usage.total_usage, 5000);
        assert_eq!(s.cpu.cpu_usage.percpu_usage, [3000, 2000]);
        assert_eq!(s.cpu.cpu_usage.usage_in_usermode, 2 * tick_ns);
        assert_eq!(s.cpu.cpu_usage.usage_in_kernelmode, tick_ns);
        assert_eq!(s.cpu.throttling_data.throttled_time, 900);
        assert_eq!(
            (s.memory.usage, s.memory.max_usage, s.memory.limit),
            (4096, 8192, 67108864)
        );
        assert_eq!(s.memory.stats["inactive_file"], 40);
        assert_eq!((s.pids.current, s.pids.limit), (3, 0));
        assert_eq!(s.blkio.io_service_bytes_recursive, Some(Vec::new()));
    }

    #[test]
    fn reads_a_v2_layout() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        write(p, &[
            ("cgroup.controllers", "cpu memory pids io\n"),
            ("cpu.stat", "usage_usec 7\nuser_usec 5\nsystem_usec 2\nnr_periods 4\nnr_throttled 1\nthrottled_usec 3\n"),
            ("memory.current", "1000\n"),
            ("memory.max", "max\n"),
            ("memory.stat", "anon 10\ninactive_file 20\n"),
            ("pids.current", "2\n"),
            ("pids.max", "50\n"),
            ("io.stat", "8:0 rbytes=5 wbytes=6 rios=1 wios=1\n"),
        ]);
        let paths = CgroupPaths {
            v1: BTreeMap::new(),
            unified: Some(p.to_path_buf()),
            ..Default::default()
        };
        let s = StatsSource::new(&paths).read();
        assert_eq!(s.cpu.cpu_usage.total_usage, 7000);
        assert!(s.cpu.cpu_usage.percpu_usage.is_empty());
        assert_eq!(
            (
                s.cpu.cpu_usage.usage_in_usermode,
                s.cpu.cpu_usage.usage_in_kernelmode
            ),
            (5000, 2000)
        );
        assert_eq!(s.cpu.throttling_data.throttled_time, 3000);
        assert_eq!(
            (s.memory.usage, s.memory.limit, s.memory.max_usage),
            (1000, 0, 0)
        );
        assert_eq!((s.pids.current, s.pids.limit), (2, 50));
        assert_eq!(
            s.blkio.io_service_bytes_recursive.as_ref().map(Vec::len),
            Some(2)
        );
        assert_eq!(s.blkio.io_serviced_recursive, None);
    }

    #[test]
    fn the_hybrid_takes_v1_controllers_and_the_unified_tree_for_the_rest() {
        let v1 = tempfile::tempdir().unwrap();
        let v2 = tempfile::tempdir().unwrap();
        write(v1.path(), &[("memory.usage_in_bytes", "4096\n")]);
        write(
            v2.path(),
            &[("cgroup.controllers", "\n"), ("cpu.stat", "usage_usec 9\n")],
        );
        let mut paths = CgroupPaths {
            v1: BTreeMap::new(),
            unified: Some(v2.path().to_path_buf()),
            ..Default::default()
        };
        paths.v1.insert("memory".into(), v1.path().to_path_buf());
        let s = StatsSource::new(&paths).read();
        assert_eq!(s.memory.usage, 4096);
        assert_eq!(s.cpu.cpu_usage.total_usage, 9000);
        assert_eq!(s.pids, PidsStats::default());
    }
}
