//! `berth update` (docker/cli `container update`): sends one `POST
//! /containers/{id}/update` per container, prints each name given that was updated,
//! then the daemon's warnings, then the errors (exit 1).

use clap::Args;
use hyper::Method;
use serde_json::{json, Map, Value as Json};

use crate::client::{seg, Client};
use crate::opts::{self, FlagError};
use crate::Failure;

#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Kernel memory limit (deprecated)
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

/// The `UpdateConfig` body for the flags given, with only the fields of those flags
/// (as docker/cli, whose zero values mean "unchanged"). `None` when no flag was given.
pub fn body(a: &UpdateArgs) -> Result<Option<Json>, FlagError> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Json| {
        m.insert(k.to_string(), v);
    };
    if let Some(v) = a.blkio_weight {
        put("BlkioWeight", json!(v));
    }
    if let Some(v) = a.cpu_period {
        put("CpuPeriod", json!(v));
    }
    if let Some(v) = a.cpu_quota {
        put("CpuQuota", json!(v));
    }
    if let Some(v) = a.cpu_rt_period {
        put("CpuRealtimePeriod", json!(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        put("CpuRealtimeRuntime", json!(v));
    }
    if let Some(v) = a.cpu_shares {
        put("CpuShares", json!(v));
    }
    if let Some(v) = &a.cpus {
        put("NanoCpus", json!(opts::parse_cpus(v)?));
    }
    if let Some(v) = &a.cpuset_cpus {
        put("CpusetCpus", json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        put("CpusetMems", json!(v));
    }
    if let Some(v) = &a.kernel_memory {
        put(
            "KernelMemory",
            json!(opts::parse_memory(v, "--kernel-memory")?),
        );
    }
    if let Some(v) = &a.memory {
        put("Memory", json!(opts::parse_memory(v, "-m, --memory")?));
    }
    if let Some(v) = &a.memory_reservation {
        put(
            "MemoryReservation",
            json!(opts::parse_memory(v, "--memory-reservation")?),
        );
    }
    if let Some(v) = &a.memory_swap {
        put("MemorySwap", json!(opts::parse_memory_swap(v)?));
    }
    if let Some(v) = a.pids_limit {
        put("PidsLimit", json!(v));
    }
    if let Some(r) = &a.restart {
        let (name, count) = r.split_once(':').unwrap_or((r, "0"));
        let count: i64 = count.parse().map_err(|_| {
            FlagError(
                "invalid restart policy format: maximum retry count must be an integer".into(),
            )
        })?;
        put(
            "RestartPolicy",
            json!({"Name": name, "MaximumRetryCount": count}),
        );
    }
    Ok((!m.is_empty()).then_some(Json::Object(m)))
}

pub async fn update(c: &Client, a: &UpdateArgs) -> Result<i32, Failure> {
    let Some(body) = body(a)? else {
        return Err(Failure::Msg(
            "you must provide one or more flags when using this command".into(),
        ));
    };
    let mut warnings: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for n in &a.names {
        match c
            .json(
                Method::POST,
                &format!("/containers/{}/update", seg(n)),
                Some(&body),
            )
            .await
        {
            Ok(resp) => {
                outln!("{n}");
                if let Some(w) = resp.get("Warnings").and_then(Json::as_array) {
                    warnings.extend(w.iter().filter_map(Json::as_str).map(String::from));
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !warnings.is_empty() {
        outln!("{}", warnings.join("\n"));
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Failure::Msg(errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: UpdateArgs,
    }

    fn parse(args: &[&str]) -> UpdateArgs {
        T::try_parse_from(std::iter::once("update").chain(args.iter().copied()))
            .unwrap()
            .a
    }

    #[test]
    fn only_given_flags_are_sent() {
        let a = parse(&[
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--cpus",
            "0.5",
            "--pids-limit",
            "-1",
            "c1",
            "c2",
        ]);
        assert_eq!(a.names, vec!["c1", "c2"]);
        assert_eq!(
            body(&a).unwrap().unwrap(),
            json!({"Memory": 64 << 20, "MemorySwap": -1, "NanoCpus": 500_000_000, "PidsLimit": -1})
        );
        let a = parse(&["--restart", "on-failure:3", "-c", "512", "x"]);
        assert_eq!(
            body(&a).unwrap().unwrap(),
            json!({"CpuShares": 512, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}})
        );
        assert_eq!(body(&parse(&["x"])).unwrap(), None);
    }

    #[test]
    fn bad_values_are_flag_errors() {
        assert_eq!(
            body(&parse(&["-m", "lots", "x"])).unwrap_err().0,
            "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'"
        );
        assert!(body(&parse(&["--restart", "on-failure:x", "x"])).is_err());
    }
}
