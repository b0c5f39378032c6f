//! From a create request to what runs: merging with the image config (moby
//! `daemon/commit.go merge`), refusing what Berth does not do yet, and the runtime spec
//! pieces (process, resources, network).

use berth_api::{ContainerConfig, HostConfig};
use berth_runtime::{NetworkMode, ProcessSpec, Resources};

use crate::error::ApiError;

/// Docker's default `PATH` for containers whose image sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map(|(k, _)| k).unwrap_or(entry)
}

/// Merges the image's runtime defaults into the user's config, as Docker does.
pub fn merge_image_config(user: &mut ContainerConfig, image: &ContainerConfig) {
    if user.user.is_empty() {
        user.user = image.user.clone();
    }
    if user.env.is_empty() {
        user.env = image.env.clone();
    } else {
        for entry in &image.env {
            let key = env_key(entry);
            if !user.env.iter().any(|e| env_key(e) == key) {
                user.env.push(entry.clone());
            }
        }
    }
    for (k, v) in &image.labels {
        user.labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if let Some(ports) = &image.exposed_ports {
        let mine = user.exposed_ports.get_or_insert_with(Default::default);
        for (k, v) in ports {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    // no volumes read back as null, as Docker's (the Docker CLI sends `"Volumes": {}`)
    if user.volumes.as_ref().is_some_and(|v| v.is_empty()) {
        user.volumes = None;
    }
    // `--entrypoint ""` arrives as `[""]`: reset the image's entrypoint and keep the
    // user's command only.
    if user.entrypoint.as_deref() == Some(&[String::new()][..]) {
        user.entrypoint = Some(Vec::new());
    } else if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = image.cmd.clone();
            user.args_escaped = image.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint = image.entrypoint.clone();
        }
    }
    if user.working_dir.is_empty() {
        user.working_dir = image.working_dir.clone();
    }
    if user.stop_signal.is_none() {
        user.stop_signal = image.stop_signal.clone();
    }
    // The image's VOLUMEs add to the user's (moby `merge`).
    if let Some(vols) = &image.volumes {
        let mine = user.volumes.get_or_insert_with(Default::default);
        for (k, v) in vols {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if user.on_build.is_none() {
        user.on_build = image.on_build.clone();
    }
    // The healthcheck field by field (both were validated: a config that does not parse
    // is left as it is).
    let parse = |v: Option<&serde_json::Value>| super::health::parse_config(v).ok().flatten();
    let merged = super::health::merge(
        parse(user.healthcheck.as_ref()),
        parse(image.healthcheck.as_ref()),
    );
    if let Some(v) = merged.and_then(|m| serde_json::to_value(m).ok()) {
        user.healthcheck = Some(v);
    }
}

/// `Path` and `Args` of the merged config, or Docker's 400 when there is nothing to run.
pub fn entrypoint_and_args(config: &ContainerConfig) -> Result<(String, Vec<String>), ApiError> {
    let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
    argv.extend(config.cmd.clone().unwrap_or_default());
    if argv.is_empty() {
        return Err(ApiError::invalid("No command specified"));
    }
    let path = argv.remove(0);
    Ok((path, argv))
}

/// Refuses host settings Berth does not implement yet (instead of ignoring them).
pub fn validate_host_config(hc: &HostConfig, config: &ContainerConfig) -> Result<(), ApiError> {
    let unsupported = |what: &str| {
        Err(ApiError::invalid(format!(
            "{what} is not supported by Berth yet"
        )))
    };
    // Published ports work on the default bridge and user networks; Docker ignores them
    // in host mode (with a warning) and refuses them with `none` and `container:`.
    if (!hc.port_bindings.is_empty() || hc.publish_all_ports) && hc.network_mode == "none" {
        return Err(ApiError::invalid(
            "conflicting options: port publishing and the container type network mode",
        ));
    }
    berth_net::ports::requests(
        &hc.port_bindings,
        config.exposed_ports.as_ref(),
        hc.publish_all_ports,
    )
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    // Binds, Mounts, VolumesFrom and Tmpfs are checked by `mounts::resolve_mounts`.
    if !hc.links.is_empty() {
        // on a user network, links are DNS aliases for this container (create moves them
        // into its endpoint config)
        match hc.network_mode.as_str() {
            "host" => return Err(ApiError::invalid(
                "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
            )),
            m if m.starts_with("container:") => return Err(ApiError::invalid(
                "conflicting options: container type network can't be used with links. This would result in undefined behavior",
            )),
            "none" => return unsupported("container links (--link) on network mode none"),
            _ => {}
        }
    }
    match hc.network_mode.as_str() {
        "" | "default" | "bridge" | "none" | "host" => {}
        other
            if other.starts_with("container:")
                && (!hc.port_bindings.is_empty() || hc.publish_all_ports) =>
        {
            return Err(ApiError::invalid(
                "conflicting options: port publishing and the container type network mode",
            ));
        }
        _ => {} // a user network: checked against the daemon's networks in create
    }
    super::run_options::validate_namespaces(hc, config)?;
    super::run_options::validate_ulimits(&hc.ulimits)?;
    super::run_options::validate_names(hc)?;
    super::log_config::validate_driver(&hc.log_config.kind)?;
    validate_healthcheck(config)?;
    if !hc.runtime.is_empty() && !RUNTIME_NAMES.contains(&hc.runtime.as_str()) {
        return Err(ApiError::invalid(format!(
            "unknown or invalid runtime name: {}",
            hc.runtime
        )));
    }
    if hc.auto_remove && !(hc.restart_policy.name.is_empty() || hc.restart_policy.name == "no") {
        return Err(ApiError::invalid(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    restart_policy(&hc.restart_policy)
        .validate()
        .map_err(ApiError::invalid)?;
    if hc.memory > 0 && hc.memory < 6 * 1024 * 1024 {
        return Err(ApiError::invalid("Minimum memory limit allowed is 6MB"));
    }
    if hc.memory > 0 && hc.memory_swap > 0 && hc.memory_swap < hc.memory {
        return Err(ApiError::invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if hc.nano_cpus > 0 && hc.cpu_period > 0 {
        return Err(ApiError::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if hc.nano_cpus > 0 && hc.cpu_quota > 0 {
        return Err(ApiError::invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1);
    if hc.nano_cpus < 0 || hc.nano_cpus > ncpu * 1_000_000_000 {
        return Err(ApiError::invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if let Some(signal) = &config.stop_signal {
        parse_signal(signal)?;
    }
    Ok(())
}

/// The one runtime Berth has (`info` shows it as the default runtime).
pub const DEFAULT_RUNTIME: &str = "berth";

/// The names the built-in runtime answers to: its own and `runc`, which docker-py,
/// compose files and scripts written for Docker ask for by name.
pub const RUNTIME_NAMES: &[&str] = &[DEFAULT_RUNTIME, "runc"];

/// `Config.Healthcheck` as moby's `validateHealthCheck` checks it.
pub fn validate_healthcheck(config: &ContainerConfig) -> Result<(), ApiError> {
    let check =
        super::health::parse_config(config.healthcheck.as_ref()).map_err(ApiError::invalid)?;
    if let Some(check) = check {
        super::health::validate(&check).map_err(ApiError::invalid)?;
    }
    Ok(())
}

/// The runtime's network mode for `HostConfig.NetworkMode` (bridge = loopback until
/// networking lands).
pub fn network_mode(hc: &HostConfig) -> NetworkMode {
    if hc.network_mode == "host" {
        NetworkMode::Host
    } else {
        NetworkMode::Loopback
    }
}

pub fn resources(hc: &HostConfig) -> Resources {
    Resources {
        memory: hc.memory,
        memory_swap: hc.memory_swap,
        nano_cpus: hc.nano_cpus,
        cpu_shares: hc.cpu_shares,
        cpu_quota: hc.cpu_quota,
        cpu_period: hc.cpu_period,
        cpuset_cpus: hc.cpuset_cpus.clone(),
        cpuset_mems: hc.cpuset_mems.clone(),
        memory_reservation: hc.memory_reservation,
        pids_limit: hc.pids_limit,
        // the device rules are added at start, from the devices found on the host
        device_rules: Vec::new(),
        oom_kill_disable: hc.oom_kill_disable == Some(true),
        cpu_rt_runtime: hc.cpu_realtime_runtime,
        cpu_rt_period: hc.cpu_realtime_period,
        memory_swappiness: hc.memory_swappiness,
    }
}

/// The process environment Docker builds: PATH default, HOSTNAME, TERM with a TTY, then
/// the config's Env overriding.
pub fn process_env(config: &ContainerConfig, hostname: &str) -> Vec<String> {
    let mut env = vec![DEFAULT_PATH.to_string(), format!("HOSTNAME={hostname}")];
    if config.tty {
        env.push("TERM=xterm".to_string());
    }
    for entry in &config.env {
        let key = env_key(entry);
        match env.iter_mut().find(|e| env_key(e) == key) {
            Some(slot) => *slot = entry.clone(),
            None => env.push(entry.clone()),
        }
    }
    env
}

pub fn process_spec(config: &ContainerConfig, path: &str, args: &[String]) -> ProcessSpec {
    let mut argv = vec![path.to_string()];
    argv.extend(args.iter().cloned());
    ProcessSpec {
        args: argv,
        env: process_env(config, &config.hostname),
        cwd: if config.working_dir.is_empty() {
            "/".into()
        } else {
            config.working_dir.clone()
        },
        user: config.user.clone(),
        tty: config.tty,
        open_stdin: config.open_stdin,
        stdin_once: config.stdin_once,
        console_size: None,
        additional_groups: Vec::new(),
    }
}

const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Parses `TERM`, `SIGTERM`, `sigterm`, `15` or `RTMIN+3` (moby `signal.ParseSignal`).
pub fn parse_signal(s: &str) -> Result<i32, ApiError> {
    let invalid = || ApiError::invalid(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        if n <= 0 || n > libc::SIGRTMAX() {
            return Err(invalid());
        }
        return Ok(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = SIGNALS.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    let rt = |base: i32, off: &str, sign: i32| -> Option<i32> {
        let o: i32 = if off.is_empty() { 0 } else { off.parse().ok()? };
        let n = base + sign * o;
        (libc::SIGRTMIN()..=libc::SIGRTMAX())
            .contains(&n)
            .then_some(n)
    };
    if let Some(off) = name.strip_prefix("RTMIN") {
        return rt(libc::SIGRTMIN(), off.trim_start_matches('+'), 1).ok_or_else(invalid);
    }
    if let Some(off) = name.strip_prefix("RTMAX") {
        return rt(libc::SIGRTMAX(), off.trim_start_matches('-'), -1).ok_or_else(invalid);
    }
    Err(invalid())
}

/// `HostConfig.RestartPolicy` as the runtime applies it.
pub fn restart_policy(p: &berth_api::RestartPolicy) -> berth_runtime::restart::RestartPolicy {
    berth_runtime::restart::RestartPolicy {
        name: p.name.clone(),
        maximum_retry_count: p.maximum_retry_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> ContainerConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn image_cmd_and_entrypoint_fill_in() {
        let image = cfg(
            r#"{"Cmd":["sh"],"Entrypoint":["/init"],"Env":["PATH=/bin","A=1"],"WorkingDir":"/w","User":"nobody"}"#,
        );
        let mut user = cfg(r#"{"Image":"x","Env":["A=2","B=3"]}"#);
        merge_image_config(&mut user, &image);
        assert_eq!(user.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(user.entrypoint, Some(vec!["/init".to_string()]));
        assert_eq!(user.env, vec!["A=2", "B=3", "PATH=/bin"]);
        assert_eq!(user.working_dir, "/w");
        assert_eq!(user.user, "nobody");
        let (path, args) = entrypoint_and_args(&user).unwrap();
        assert_eq!((path.as_str(), args), ("/init", vec!["sh".to_string()]));
    }

    #[test]
    fn user_cmd_replaces_image_cmd_but_keeps_entrypoint() {
        let image = cfg(r#"{"Cmd":["sh"],"Entrypoint":["/init"]}"#);
        let mut user = cfg(r#"{"Cmd":["echo","hi"]}"#);
        merge_image_config(&mut user, &image);
        assert_eq!(
            entrypoint_and_args(&user).unwrap(),
            ("/init".into(), vec!["echo".into(), "hi".into()])
        );
    }

    #[test]
    fn user_entrypoint_drops_image_cmd() {
        let image = cfg(r#"{"Cmd":["sh"],"Entrypoint":["/init"]}"#);
        let mut user = cfg(r#"{"Entrypoint":["ls"]}"#);
        merge_image_config(&mut user, &image);
        assert_eq!(entrypoint_and_args(&user).unwrap(), ("ls".into(), vec![]));
    }

    #[test]
    fn volumes_add_up_and_none_read_back_as_null() {
        let mut user = cfg(r#"{"Volumes":{}}"#);
        merge_image_config(&mut user, &cfg("{}"));
        assert_eq!(user.volumes, None);
        let mut user = cfg(r#"{"Volumes":{"/a":{}}}"#);
        merge_image_config(&mut user, &cfg(r#"{"Volumes":{"/b":{}}}"#));
        let keys: Vec<_> = user.volumes.unwrap().into_keys().collect();
        assert_eq!(keys, ["/a", "/b"]);
    }

    #[test]
    fn empty_entrypoint_resets() {
        let image = cfg(r#"{"Cmd":["sh"],"Entrypoint":["/init"]}"#);
        let mut user = cfg(r#"{"Entrypoint":[""],"Cmd":["echo"]}"#);
        merge_image_config(&mut user, &image);
        assert_eq!(entrypoint_and_args(&user).unwrap(), ("echo".into(), vec![]));
        let mut nothing = cfg(r#"{"Entrypoint":[""]}"#);
        merge_image_config(&mut nothing, &image);
        assert_eq!(
            entrypoint_and_args(&nothing).unwrap_err().message,
            "No command specified"
        );
    }

    #[test]
    fn process_env_has_docker_defaults() {
        let c = cfg(r#"{"Env":["FOO=1"],"Tty":true}"#);
        let env = process_env(&c, "abc");
        assert_eq!(
            env,
            vec![DEFAULT_PATH, "HOSTNAME=abc", "TERM=xterm", "FOO=1"]
        );
        let c = cfg(r#"{"Env":["PATH=/x"]}"#);
        assert_eq!(process_env(&c, "h")[0], "PATH=/x");
    }

    #[test]
    fn signals_parse_like_moby() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigusr1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse_signal("2").unwrap(), 2);
        assert_eq!(parse_signal("RTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert_eq!(
            parse_signal("NOPE").unwrap_err().message,
            "Invalid signal: NOPE"
        );
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn unsupported_host_settings_are_refused() {
        let c = ContainerConfig::default();
        let hc: HostConfig =
            serde_json::from_str(r#"{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}"#).unwrap();
        assert!(validate_host_config(&hc, &c).is_ok());
        let hc: HostConfig =
            serde_json::from_str(r#"{"PortBindings":{"80/tcp":[{"HostPort":"80x"}]}}"#).unwrap();
        assert_eq!(
            validate_host_config(&hc, &c).unwrap_err().message,
            "invalid hostPort: 80x"
        );
        let hc: HostConfig = serde_json::from_str(
            r#"{"NetworkMode":"none","PortBindings":{"80/tcp":[{"HostPort":"80"}]}}"#,
        )
        .unwrap();
        assert!(validate_host_config(&hc, &c)
            .unwrap_err()
            .message
            .contains("conflicting options"));
        let hc: HostConfig =
            serde_json::from_str(r#"{"Binds":["/a:/b"],"Tmpfs":{"/t":""}}"#).unwrap();
        assert!(validate_host_config(&hc, &c).is_ok());
        for mode in ["default", "bridge", "none", "host", ""] {
            let hc = HostConfig {
                network_mode: mode.into(),
                ..Default::default()
            };
            assert!(validate_host_config(&hc, &c).is_ok(), "{mode}");
        }
        let hc: HostConfig =
            serde_json::from_str(r#"{"LogConfig":{"Type":"asdf","Config":{}}}"#).unwrap();
        assert_eq!(
            validate_host_config(&hc, &c).unwrap_err().message,
            "logger: no log driver named 'asdf' is registered"
        );
        let hc: HostConfig =
            serde_json::from_str(r#"{"LogConfig":{"Type":"json-file"},"UTSMode":""}"#).unwrap();
        assert!(validate_host_config(&hc, &c).is_ok());
        let hc: HostConfig = serde_json::from_str(r#"{"UTSMode":"bogus"}"#).unwrap();
        assert!(validate_host_config(&hc, &c).is_err());
        let runtime = |name: &str| HostConfig {
            runtime: name.into(),
            ..Default::default()
        };
        assert!(validate_host_config(&runtime("runc"), &c).is_ok());
        assert_eq!(
            validate_host_config(&runtime("kata"), &c)
                .unwrap_err()
                .message,
            "unknown or invalid runtime name: kata"
        );
        let hc = HostConfig {
            memory: 1024,
            ..Default::default()
        };
        assert_eq!(
            validate_host_config(&hc, &c).unwrap_err().message,
            "Minimum memory limit allowed is 6MB"
        );
    }
}
