//! The body of `POST /containers/create` from `create`/`run` flags, as the Docker CLI
//! builds it.

use std::collections::BTreeMap;

use berth_api::{ContainerConfig, ContainerCreateBody, HostConfig, NetworkingConfig, PortBinding};
use serde_json::json;

use crate::args::ContainerOpts;
use crate::opts::{self, FlagError};
use crate::terminal;

fn lookup_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// The environment from `--env-file` files, then `-e` flags.
pub(crate) fn env_list(files: &[String], flags: &[String]) -> Result<Vec<String>, FlagError> {
    let mut env = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| FlagError(format!("open {f}: {}", crate::io_error_text(&e))))?;
        env.extend(opts::parse_env_file(&text, &lookup_env)?);
    }
    for e in flags {
        env.push(opts::env_value(e, &lookup_env)?);
    }
    Ok(env)
}

/// Builds the `POST /containers/create` body as Docker's CLI does.
pub fn create_body(
    o: &ContainerOpts,
    image: &str,
    command: &[String],
    detach: bool,
) -> Result<ContainerCreateBody, FlagError> {
    let env = env_list(&o.env_file, &o.env)?;
    let attach: Vec<String> = o.attach.iter().map(|a| a.to_lowercase()).collect();
    for a in &attach {
        if !["stdin", "stdout", "stderr"].contains(&a.as_str()) {
            return Err(FlagError(format!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR")));
        }
    }
    let (attach_stdin, attach_stdout, attach_stderr) = if detach {
        (false, false, false)
    } else if attach.is_empty() {
        (o.interactive, true, true)
    } else {
        (
            attach.iter().any(|a| a == "stdin"),
            attach.iter().any(|a| a == "stdout"),
            attach.iter().any(|a| a == "stderr"),
        )
    };
    let (exposed, bindings) = opts::ports(&o.publish, &o.expose)?;
    let volumes = o.volume.iter().filter(|v| !v.contains(':'));
    let host = host_config(o, bindings)?;
    let config = ContainerConfig {
        hostname: o.hostname.clone().unwrap_or_default(),
        domainname: o.domainname.clone().unwrap_or_default(),
        user: o.user.clone().unwrap_or_default(),
        attach_stdin,
        attach_stdout,
        attach_stderr,
        exposed_ports: Some(exposed),
        tty: o.tty,
        open_stdin: o.interactive,
        stdin_once: o.interactive && attach_stdin,
        env,
        cmd: (!command.is_empty()).then(|| command.to_vec()),
        image: image.to_string(),
        volumes: Some(volumes.map(|v| (v.clone(), json!({}))).collect()),
        working_dir: o.workdir.clone().unwrap_or_default(),
        entrypoint: o.entrypoint.as_ref().map(|e| vec![e.clone()]),
        labels: opts::labels(&o.label),
        stop_signal: o.stop_signal.clone(),
        stop_timeout: o.stop_timeout,
        healthcheck: crate::health_flags::healthcheck(o)?
            .map(|h| serde_json::to_value(h).unwrap_or_default()),
        ..ContainerConfig::default()
    };
    Ok(ContainerCreateBody {
        config,
        host_config: Some(host),
        networking_config: Some(networking_config(o)),
    })
}

/// `NetworkingConfig`: `--network-alias`, `--ip` and `--mac-address` on the `--network`
/// (Docker's CLI since API 1.44).
fn networking_config(o: &ContainerOpts) -> NetworkingConfig {
    let mut nc = NetworkingConfig::default();
    if o.network_alias.is_empty()
        && o.ip.is_none()
        && o.ip6.is_none()
        && o.link_local_ip.is_empty()
        && o.mac_address.is_none()
    {
        return nc;
    }
    let name = o.network.clone().unwrap_or_else(|| "default".into());
    let ep = berth_api::EndpointSettings {
        aliases: (!o.network_alias.is_empty()).then(|| o.network_alias.clone()),
        ipam_config: (o.ip.is_some() || o.ip6.is_some() || !o.link_local_ip.is_empty()).then(
            || berth_api::EndpointIpamConfig {
                ipv4_address: o.ip.clone().unwrap_or_default(),
                ipv6_address: o.ip6.clone().unwrap_or_default(),
                link_local_ips: o.link_local_ip.clone(),
            },
        ),
        mac_address: o.mac_address.clone().unwrap_or_default(),
        ..Default::default()
    };
    nc.endpoints_config.insert(name, ep);
    nc
}

/// The `HostConfig` of a create body, from the flags and the `-p` bindings.
fn host_config(
    o: &ContainerOpts,
    port_bindings: BTreeMap<String, Option<Vec<PortBinding>>>,
) -> Result<HostConfig, FlagError> {
    let mounts = o
        .mount
        .iter()
        .map(|m| opts::parse_mount(m))
        .collect::<Result<Vec<_>, _>>()?;
    let tmpfs = o
        .tmpfs
        .iter()
        .map(|t| {
            let (path, options) = t.split_once(':').unwrap_or((t, ""));
            (path.to_string(), options.to_string())
        })
        .collect();
    let links = o
        .link
        .iter()
        .map(|l| {
            if l.contains(':') {
                l.clone()
            } else {
                format!("{l}:{l}")
            }
        })
        .collect();
    let memory_limit = opts::optional_memory(o.memory.as_deref(), "-m, --memory")?;
    let memory_reservation =
        opts::optional_memory(o.memory_reservation.as_deref(), "--memory-reservation")?;
    let memory_swap = opts::optional(o.memory_swap.as_deref(), opts::parse_memory_swap)?;
    let nano_cpus = opts::optional(o.cpus.as_deref(), opts::parse_cpus)?;
    let shm_size = opts::optional_memory(o.shm_size.as_deref(), "--shm-size")?;
    let restart_policy = opts::restart_policy(o.restart.as_deref().unwrap_or("no"))?;
    if o.rm && !matches!(restart_policy.name.as_str(), "" | "no") {
        return Err(FlagError(
            "conflicting options: cannot specify both --restart and --rm".to_string(),
        ));
    }
    let console_size = if o.tty {
        let (h, w) = terminal::size().unwrap_or((0, 0));
        [h.into(), w.into()]
    } else {
        [0, 0]
    };
    Ok(HostConfig {
        binds: o
            .volume
            .iter()
            .filter(|v| v.contains(':'))
            .cloned()
            .collect(),
        network_mode: o.network.clone().unwrap_or_else(|| "default".into()),
        port_bindings,
        restart_policy,
        auto_remove: o.rm,
        volumes_from: o.volumes_from.clone(),
        cap_add: o.cap_add.clone(),
        cap_drop: o.cap_drop.clone(),
        security_opt: crate::security_flags::security_opts(&o.security_opt)?,
        sysctls: crate::security_flags::sysctls(&o.sysctl)?,
        links,
        privileged: o.privileged,
        publish_all_ports: o.publish_all,
        readonly_rootfs: o.read_only,
        tmpfs,
        shm_size,
        console_size: Some(console_size),
        cpu_shares: o.cpu_shares.unwrap_or(0),
        memory: memory_limit,
        nano_cpus,
        cgroup_parent: o.cgroup_parent.clone().unwrap_or_default(),
        runtime: o.runtime.clone().unwrap_or_default(),
        cpu_period: o.cpu_period.unwrap_or(0),
        cpu_quota: o.cpu_quota.unwrap_or(0),
        cpuset_cpus: o.cpuset_cpus.clone().unwrap_or_default(),
        memory_reservation,
        memory_swap,
        pids_limit: o.pids_limit,
        mounts,
        init: o.init.then_some(true),
        extra_hosts: crate::run_flags::add_hosts(&o.add_host)?,
        dns: crate::run_flags::dns_servers(&o.dns)?,
        dns_search: o.dns_search.clone(),
        dns_options: o.dns_option.clone(),
        ulimits: crate::run_flags::ulimits(&o.ulimit)?,
        group_add: o.group_add.clone(),
        pid_mode: crate::run_flags::ns_mode(o.pid.as_deref(), "--pid", "PID")?,
        ipc_mode: o.ipc.clone().unwrap_or_default(),
        uts_mode: crate::run_flags::ns_mode(o.uts.as_deref(), "--uts", "UTS")?,
        log_config: crate::run_flags::log_config(o.log_driver.as_deref(), &o.log_opt)?,
        devices: crate::device_flags::devices(&o.device)?,
        device_cgroup_rules: crate::device_flags::cgroup_rules(&o.device_cgroup_rule)?,
        device_requests: crate::device_flags::gpus(o.gpus.as_deref())?,
        storage_opt: crate::device_flags::storage_opts(&o.storage_opt)?,
        cgroupns_mode: crate::device_flags::cgroupns(o.cgroupns.as_deref())?,
        userns_mode: crate::device_flags::userns(o.userns.as_deref())?,
        oom_score_adj: o.oom_score_adj.unwrap_or(0),
        oom_kill_disable: o.oom_kill_disable.then_some(true),
        cpu_realtime_period: o.cpu_rt_period.unwrap_or(0),
        cpu_realtime_runtime: o.cpu_rt_runtime.unwrap_or(0),
        cpu_count: o.cpu_count.unwrap_or(0),
        cpu_percent: o.cpu_percent.unwrap_or(0),
        ..HostConfig::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cmd, RunArgs};
    use clap::Parser;
    use serde_json::Value as Json;

    fn parse_run(args: &[&str]) -> RunArgs {
        let mut v = vec!["berth", "run"];
        v.extend_from_slice(args);
        match crate::args::Cli::try_parse_from(v).unwrap().cmd {
            Some(Cmd::Run(r)) => r,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn run_keeps_the_commands_own_flags() {
        let r = parse_run(&[
            "-d", "--name", "web", "-e", "A=1", "-h", "box", "busybox", "sh", "-c", "ls -l", "-d",
        ]);
        assert!(r.detach);
        assert_eq!(r.opts.name.as_deref(), Some("web"));
        assert_eq!(r.opts.hostname.as_deref(), Some("box"));
        assert_eq!(r.image, "busybox");
        assert_eq!(r.command, vec!["sh", "-c", "ls -l", "-d"]);
    }

    #[test]
    fn create_body_resources() {
        let r = parse_run(&[
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--cpus",
            "0.5",
            "-c",
            "512",
            "--pids-limit",
            "20",
            "-l",
            "a=b",
            "--entrypoint",
            "",
            "-p",
            "8080:80",
            "-v",
            "/data",
            "-v",
            "/h:/c:ro",
            "--init",
            "--rm",
            "busybox",
        ]);
        let b = serde_json::to_value(create_body(&r.opts, &r.image, &r.command, false).unwrap())
            .unwrap();
        let h = &b["HostConfig"];
        assert_eq!(h["Memory"], 67_108_864);
        assert_eq!(h["MemorySwap"], -1);
        assert_eq!(h["NanoCpus"], 500_000_000);
        assert_eq!(h["CpuShares"], 512);
        assert_eq!(h["PidsLimit"], 20);
        assert_eq!(h["Init"], true);
        assert_eq!(h["AutoRemove"], true);
        assert_eq!(h["Binds"], json!(["/h:/c:ro"]));
        assert_eq!(
            h["PortBindings"],
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(b["Volumes"], json!({"/data": {}}));
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["Labels"], json!({"a": "b"}));
        assert_eq!(b["Cmd"], Json::Null);
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["AttachStdin"], false);
    }

    #[test]
    fn the_body_is_the_docker_clis() {
        // The same flags as the Docker CLI 28 call captured in berth-api's test data.
        let r = parse_run(&[
            "--name",
            "typedrefc2",
            "-e",
            "A=1",
            "-p",
            "8080:80",
            "-v",
            "/data",
            "-v",
            "/tmp:/c:ro",
            "-l",
            "x=y",
            "--memory",
            "64m",
            "--restart",
            "on-failure:2",
            "--network",
            "typedref1",
            "typedref",
            "echo",
            "hi",
        ]);
        let ours = create_body(&r.opts, &r.image, &r.command, false).unwrap();
        let mut docker: ContainerCreateBody = serde_json::from_str(include_str!(
            "../../berth-api/testdata/docker-cli-create.json"
        ))
        .unwrap();
        // Where the Docker CLI sends its "not set" values, Berth's CLI leaves the field out.
        if let Some(h) = docker.host_config.as_mut() {
            assert_eq!(
                (h.memory_swappiness, h.pids_limit, h.oom_kill_disable),
                (Some(-1), Some(0), Some(false))
            );
            (h.memory_swappiness, h.pids_limit, h.oom_kill_disable) = (None, None, None);
        }
        assert_eq!(ours.config, docker.config);
        assert_eq!(ours.host_config, docker.host_config);
        assert_eq!(ours.networking_config, docker.networking_config);
    }

    #[test]
    fn detached_create_attaches_nothing() {
        let r = parse_run(&["-d", "-i", "busybox", "cat"]);
        let b = serde_json::to_value(create_body(&r.opts, &r.image, &r.command, true).unwrap())
            .unwrap();
        assert_eq!(b["AttachStdout"], false);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["Cmd"], json!(["cat"]));
    }

    #[test]
    fn bad_memory_is_a_flag_error() {
        let r = parse_run(&["-m", "lots", "busybox"]);
        let e = create_body(&r.opts, &r.image, &r.command, false).unwrap_err();
        assert_eq!(
            e.0,
            "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'"
        );
    }
}
