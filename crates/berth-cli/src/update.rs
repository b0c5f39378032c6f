//! `berth update` (docker/cli `container update`): sends one `POST
//! /containers/{id}/update` per container, prints each name given that was updated,
//! then the daemon's warnings, then the errors (exit 1).

use berth_api::{ContainerUpdateBody, ContainerUpdateResponse, RestartPolicy};
use clap::Args;
use hyper::Method;

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

/// Whether any resource or restart flag was given (a zero value counts: Docker asks
/// for at least one flag, whatever its value).
fn any_flag(a: &UpdateArgs) -> bool {
    let numbers = [
        a.cpu_period,
        a.cpu_quota,
        a.cpu_rt_period,
        a.cpu_rt_runtime,
        a.cpu_shares,
        a.pids_limit,
    ];
    let texts = [
        &a.cpus,
        &a.cpuset_cpus,
        &a.cpuset_mems,
        &a.kernel_memory,
        &a.memory,
        &a.memory_reservation,
        &a.memory_swap,
        &a.restart,
    ];
    a.blkio_weight.is_some()
        || numbers.iter().any(Option::is_some)
        || texts.iter().any(|t| t.is_some())
}

/// The `UpdateConfig` body for the flags given: the fields of other flags stay zero,
/// which the daemon reads as "unchanged" (as docker/cli). `None` when no flag was given.
pub fn body(a: &UpdateArgs) -> Result<Option<ContainerUpdateBody>, FlagError> {
    if !any_flag(a) {
        return Ok(None);
    }
    Ok(Some(ContainerUpdateBody {
        blkio_weight: a.blkio_weight.map(i64::from).unwrap_or(0),
        cpu_period: a.cpu_period.unwrap_or(0),
        cpu_quota: a.cpu_quota.unwrap_or(0),
        cpu_realtime_period: a.cpu_rt_period.unwrap_or(0),
        cpu_realtime_runtime: a.cpu_rt_runtime.unwrap_or(0),
        cpu_shares: a.cpu_shares.unwrap_or(0),
        nano_cpus: opts::optional(a.cpus.as_deref(), opts::parse_cpus)?,
        cpuset_cpus: a.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: a.cpuset_mems.clone().unwrap_or_default(),
        kernel_memory: opts::optional_memory(a.kernel_memory.as_deref(), "--kernel-memory")?,
        memory: opts::optional_memory(a.memory.as_deref(), "-m, --memory")?,
        memory_reservation: opts::optional_memory(
            a.memory_reservation.as_deref(),
            "--memory-reservation",
        )?,
        memory_swap: opts::optional(a.memory_swap.as_deref(), opts::parse_memory_swap)?,
        pids_limit: a.pids_limit,
        restart_policy: match a.restart.as_deref() {
            Some(r) => opts::restart_policy(r)?,
            None => RestartPolicy::default(),
        },
    }))
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
        let path = format!("/containers/{}/update", seg(n));
        match c
            .typed::<ContainerUpdateResponse, _>(Method::POST, &path, Some(&body))
            .await
        {
            Ok(resp) => {
                outln!("{n}");
                warnings.extend(resp.warnings.unwrap_or_default());
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
            ContainerUpdateBody {
                memory: 64 << 20,
                memory_swap: -1,
                nano_cpus: 500_000_000,
                pids_limit: Some(-1),
                ..Default::default()
            }
        );
        let a = parse(&["--restart", "on-failure:3", "-c", "512", "x"]);
        assert_eq!(
            body(&a).unwrap().unwrap(),
            ContainerUpdateBody {
                cpu_shares: 512,
                restart_policy: RestartPolicy {
                    name: "on-failure".into(),
                    maximum_retry_count: 3
                },
                ..Default::default()
            }
        );
        assert_eq!(body(&parse(&["x"])).unwrap(), None);
        // A zero value is still a flag given.
        assert!(body(&parse(&["-c", "0", "x"])).unwrap().is_some());
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
