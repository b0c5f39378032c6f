//! Host-side numbers of a stats sample: the host's CPU time (`/proc/stat`), its memory
//! (`/proc/meminfo`) and a container's interfaces (`/proc/<pid>/net/dev`, read in the
//! container's network namespace through its init process).

use std::collections::BTreeMap;

use berth_api::NetworkStats;

/// `/proc/stat`: the host's CPU time in nanoseconds (user, nice, system, idle, iowait,
/// irq and softirq of the `cpu` line, as moby's `getSystemCPUUsage`) and the
/// number of `cpuN` lines (online CPUs).
pub fn parse_proc_stat(text: &str, clock_ticks: u64) -> Option<(u64, u32)> {
    let mut total = None;
    let mut cpus = 0u32;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                let ticks: u64 = f.take(7).filter_map(|v| v.parse::<u64>().ok()).sum();
                total = Some(ticks * (1_000_000_000 / clock_ticks.max(1)));
            }
            Some(name) if name.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    total.map(|t| (t, cpus))
}

pub fn system_cpu() -> (u64, u32) {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100);
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| parse_proc_stat(&t, ticks))
        .unwrap_or((0, 0))
}

/// `MemTotal` in bytes: the memory limit shown for containers without one.
pub fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// `/proc/<pid>/net/dev`: every interface but `lo`.
pub fn parse_net_dev(text: &str) -> BTreeMap<String, NetworkStats> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            NetworkStats {
                rx_bytes: v[0],
                rx_packets: v[1],
                rx_errors: v[2],
                rx_dropped: v[3],
                tx_bytes: v[8],
                tx_packets: v[9],
                tx_errors: v[10],
                tx_dropped: v[11],
            },
        );
    }
    out
}

pub fn networks(pid: i64) -> Option<BTreeMap<String, NetworkStats>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    Some(parse_net_dev(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_sums_the_seven_first_fields_of_the_cpu_line() {
        let text = "cpu  10 1 5 100 2 0 1 1 7 0\ncpu0 5 0 2 50 1 0 0 0 0 0\ncpu1 5 1 3 50 1 0 1 1 0 0\nintr 1\n";
        assert_eq!(parse_proc_stat(text, 100), Some((119 * 10_000_000, 2)));
    }

    #[test]
    fn net_dev_lists_interfaces_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0:     736       8    1    2    0     0          0         0       90       3    4    5    0     0       0          0\n";
        let n = parse_net_dev(text);
        assert_eq!(n.len(), 1);
        let e = &n["eth0"];
        assert_eq!(
            (
                e.rx_bytes,
                e.rx_packets,
                e.rx_errors,
                e.rx_dropped,
                e.tx_bytes,
                e.tx_packets,
                e.tx_errors,
                e.tx_dropped
            ),
            (736, 8, 1, 2, 90, 3, 4, 5)
        );
    }
}
