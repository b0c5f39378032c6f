//! `berth stats` / `berth container stats`: the Docker CLI's table of CPU %, memory,
//! network and block I/O and pids, computed from `GET /containers/{id}/stats` as
//! docker/cli `stats_helpers.go` does; once (`--no-stream`) or redrawn every 500 ms.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::units::{bytes_size, human_size_precision};
use berth_api::{ContainerStats, MemoryStats};
use clap::Args;
use hyper::Method;
use serde_json::{json, Value as Json};

use crate::client::{empty, query, seg, Client};
use crate::formatters::truncate_id;
use crate::template::Format;
use crate::Failure;

pub const STATS_TABLE: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn stats_headers() -> Json {
    json!({"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O", "PIDs": "PIDS"})
}

/// docker/cli `calculateCPUPercentUnix`.
pub fn cpu_percent(s: &ContainerStats) -> f64 {
    let cpu_delta =
        s.cpu_stats.cpu_usage.total_usage as f64 - s.precpu_stats.cpu_usage.total_usage as f64;
    let system_delta = s.cpu_stats.system_cpu_usage as f64 - s.precpu_stats.system_cpu_usage as f64;
    let mut online = s.cpu_stats.online_cpus as f64;
    if online == 0.0 {
        online = s.cpu_stats.cpu_usage.percpu_usage.len() as f64;
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    }
}

/// docker/cli `calculateMemUsageUnixNoCache`: usage without the inactive page cache
/// (`total_inactive_file` on cgroup v1, `inactive_file` on v2).
pub fn mem_usage_no_cache(m: &MemoryStats) -> f64 {
    if let Some(v) = m.stats.get("total_inactive_file").filter(|v| **v < m.usage) {
        return (m.usage - v) as f64;
    }
    match m.stats.get("inactive_file").copied().unwrap_or(0) {
        v if v < m.usage => (m.usage - v) as f64,
        _ => m.usage as f64,
    }
}

/// docker/cli `calculateBlockIO`: bytes read and written, by the op's first letter.
pub fn block_io(s: &ContainerStats) -> (f64, f64) {
    let (mut r, mut w) = (0u64, 0u64);
    for e in s.blkio_stats.io_service_bytes_recursive.iter().flatten() {
        match e.op.chars().next() {
            Some('r' | 'R') => r += e.value,
            Some('w' | 'W') => w += e.value,
            _ => {}
        }
    }
    (r as f64, w as f64)
}

/// One table row (docker/cli's `StatsEntry` as the formatter shows it).
pub fn row(container: &str, s: &ContainerStats, no_trunc: bool) -> Json {
    let mem = mem_usage_no_cache(&s.memory_stats);
    let limit = s.memory_stats.limit as f64;
    let mem_perc = if limit != 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (rx, tx) = s
        .networks
        .iter()
        .flat_map(|n| n.values())
        .fold((0.0, 0.0), |(r, t), n| {
            (r + n.rx_bytes as f64, t + n.tx_bytes as f64)
        });
    let (br, bw) = block_io(s);
    let id = if no_trunc {
        s.id.clone()
    } else {
        truncate_id(&s.id)
    };
    json!({
        "BlockIO": format!("{} / {}", human_size_precision(br, 3), human_size_precision(bw, 3)),
        "CPUPerc": format!("{:.2}%", cpu_percent(s)),
        "Container": container,
        "ID": id,
        "MemPerc": format!("{mem_perc:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        "Name": s.name.trim_start_matches('/'),
        "NetIO": format!("{} / {}", human_size_precision(rx, 3), human_size_precision(tx, 3)),
        "PIDs": s.pids_stats.current.to_string(),
    })
}

/// A row of `--` for a container whose stats cannot be read.
fn invalid_row(container: &str) -> Json {
    json!({"BlockIO": "--", "CPUPerc": "--", "Container": container, "ID": container,
        "MemPerc": "--", "MemUsage": "-- / --", "Name": "--", "NetIO": "--", "PIDs": "--"})
}

async fn one_off(c: &Client, name: &str) -> Result<ContainerStats, Failure> {
    let body = c
        .call::<()>(
            Method::GET,
            &format!("/containers/{}/stats?stream=0", seg(name)),
            None,
        )
        .await?;
    serde_json::from_slice(&body).map_err(|e| Failure::Msg(format!("decoding stats: {e}")))
}

/// The containers to show: those named, else those `ps` (`-a`) lists, as
/// `(what the Container column shows, ID or name to ask for)`.
async fn targets(c: &Client, a: &StatsArgs) -> Result<Vec<(String, String)>, Failure> {
    if !a.containers.is_empty() {
        return Ok(a
            .containers
            .iter()
            .map(|n| (n.clone(), n.clone()))
            .collect());
    }
    let q = if a.all {
        query(&[("all", "1".into())])
    } else {
        String::new()
    };
    let list = c.get(&format!("/containers/json{q}")).await?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["Id"].as_str())
        .map(|id| (truncate_id(id), id.to_string()))
        .collect())
}

fn template(a: &StatsArgs) -> Result<Format, Failure> {
    let format = match a.format.as_deref() {
        None | Some("") | Some("table") => STATS_TABLE.to_string(),
        Some("json") => "{{json .}}".to_string(),
        Some(f) => f.to_string(),
    };
    Format::parse_rows(&format).map_err(|e| Failure::Msg(e.to_string()))
}

pub async fn stats(c: &Client, a: &StatsArgs) -> Result<i32, Failure> {
    let tmpl = template(a)?;
    if a.no_stream {
        let targets = targets(c, a).await?;
        let answers =
            futures_util::future::join_all(targets.iter().map(|(_, id)| one_off(c, id))).await;
        let mut rows = Vec::new();
        for ((shown, _), answer) in targets.iter().zip(answers) {
            rows.push(row(shown, &answer?, a.no_trunc));
        }
        out!(
            "{}",
            tmpl.render(&rows, &stats_headers())
                .map_err(|e| Failure::Msg(e.to_string()))?
        );
        return Ok(0);
    }
    stream(c, a, &tmpl).await
}

type Latest = Arc<Mutex<BTreeMap<String, (String, Option<ContainerStats>)>>>;

/// Follows one container's stream, keeping its latest sample; ends with the stream.
async fn follow(c: Client, shown: String, id: String, latest: Latest) {
    let path = format!("/containers/{}/stats?stream=1", seg(&id));
    let Ok(res) = c.send(Method::GET, &path, empty(), None).await else {
        return;
    };
    let mut pending = Vec::new();
    let _ = crate::client::for_each_chunk(res, |chunk| {
        pending.extend_from_slice(chunk);
        while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            if let Ok(s) = serde_json::from_slice::<ContainerStats>(&line) {
                if let Ok(mut l) = latest.lock() {
                    l.insert(id.clone(), (shown.clone(), Some(s)));
                }
            }
        }
    })
    .await;
}

async fn stream(c: &Client, a: &StatsArgs, tmpl: &Format) -> Result<i32, Failure> {
    let latest: Latest = Arc::default();
    let mut tasks: BTreeMap<String, tokio::task::JoinHandle<()>> = BTreeMap::new();
    let named = !a.containers.is_empty();
    if named {
        // Unknown names fail at once, as with Docker.
        for n in &a.containers {
            c.get(&format!("/containers/{}/json", seg(n))).await?;
        }
    }
    let terminal = std::io::stdout().is_terminal();
    let mut ticks = 0u64;
    loop {
        // New and gone containers are picked up every 2 s (Docker's CLI follows events).
        if ticks == 0 || (!named && ticks.is_multiple_of(4)) {
            let wanted = targets(c, a).await?;
            let ids: Vec<&String> = wanted.iter().map(|(_, id)| id).collect();
            tasks.retain(|id, t| {
                let keep = ids.contains(&id);
                if !keep {
                    t.abort();
                }
                keep
            });
            if let Ok(mut l) = latest.lock() {
                l.retain(|id, _| ids.contains(&id));
            }
            for (shown, id) in wanted {
                if tasks.contains_key(&id) {
                    continue;
                }
                if let Ok(mut l) = latest.lock() {
                    l.entry(id.clone()).or_insert((shown.clone(), None));
                }
                let t = tokio::spawn(follow(c.clone(), shown, id.clone(), latest.clone()));
                tasks.insert(id, t);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        ticks += 1;
        let rows: Vec<Json> = match latest.lock() {
            Ok(l) => l
                .values()
                .map(|(shown, s)| match s {
                    Some(s) => row(shown, s, a.no_trunc),
                    None => invalid_row(shown),
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let table = tmpl
            .render(&rows, &stats_headers())
            .map_err(|e| Failure::Msg(e.to_string()))?;
        if terminal {
            out!("\x1b[2J\x1b[H{table}");
        } else {
            out!("{table}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ContainerStats {
        serde_json::from_str(r#"{"read":"2026-12-03T13:08:40.788071849Z","preread":"2026-12-03T13:08:39.779596069Z","pids_stats":{"current":3},"blkio_stats":{"io_service_bytes_recursive":[{"major":8,"minor":0,"op":"Read","value":2000},{"major":8,"minor":0,"op":"write","value":3000},{"major":8,"minor":0,"op":"Total","value":5000}]},"num_procs":0,"storage_stats":{},
        "cpu_stats":{"cpu_usage":{"total_usage":877261164,"usage_in_kernelmode":0,"usage_in_usermode":0},"system_cpu_usage":25966720000000,"online_cpus":2,"throttling_data":{"periods":0,"throttled_periods":0,"throttled_time":0}},
        "precpu_stats":{"cpu_usage":{"total_usage":475023551,"usage_in_kernelmode":0,"usage_in_usermode":0},"system_cpu_usage":25964710000000,"online_cpus":2,"throttling_data":{"periods":0,"throttled_periods":0,"throttled_time":0}},
        "memory_stats":{"usage":1409024,"stats":{"total_inactive_file":69632,"inactive_file":69632},"limit":67108864},
        "name":"/web","id":"9f4836adfd8891bf7e05bdd62a91bb6e9dae2da0264e1180f9f1fb4f19e89ddd",
        "networks":{"eth0":{"rx_bytes":1500,"rx_packets":8,"rx_errors":0,"rx_dropped":0,"tx_bytes":500,"tx_packets":0,"tx_errors":0,"tx_dropped":0},"eth1":{"rx_bytes":500,"rx_packets":8,"rx_errors":0,"rx_dropped":0,"tx_bytes":0,"tx_packets":0,"tx_errors":0,"tx_dropped":0}}}"#).unwrap()
    }

    #[test]
    fn a_row_is_computed_as_the_docker_cli_does() {
        let r = row("web", &sample(), false);
        // (877261164-475023551) / (2010000000) * 2 * 100
        assert_eq!(r["CPUPerc"], "40.02%");
        assert_eq!(r["MemUsage"], "1.277MiB / 64MiB");
        assert_eq!(r["MemPerc"], "2.00%");
        assert_eq!(r["NetIO"], "2kB / 500B");
        assert_eq!(r["BlockIO"], "2kB / 3kB");
        assert_eq!(r["PIDs"], "3");
        assert_eq!(
            (r["ID"].as_str(), r["Name"].as_str()),
            (Some("9f4836adfd88"), Some("web"))
        );
    }

    #[test]
    fn a_stopped_container_shows_zeroes() {
        let s = ContainerStats {
            name: "/old".into(),
            id: "abc".into(),
            ..Default::default()
        };
        let r = row("old", &s, false);
        assert_eq!(
            (
                r["CPUPerc"].as_str(),
                r["MemUsage"].as_str(),
                r["MemPerc"].as_str(),
                r["NetIO"].as_str(),
                r["PIDs"].as_str()
            ),
            (
                Some("0.00%"),
                Some("0B / 0B"),
                Some("0.00%"),
                Some("0B / 0B"),
                Some("0")
            )
        );
    }

    #[test]
    fn the_default_table_has_dockers_headers() {
        let t = Format::parse_rows(STATS_TABLE).unwrap();
        let out = t
            .render(&[row("web", &sample(), false)], &stats_headers())
            .unwrap();
        let head = out.lines().next().unwrap();
        let cols: Vec<&str> = head
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            cols,
            [
                "CONTAINER ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "NET I/O",
                "BLOCK I/O",
                "PIDS"
            ]
        );
    }
}
