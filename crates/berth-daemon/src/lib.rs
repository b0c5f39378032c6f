//! Berth's daemon: serves the Docker Engine API on a unix socket and owns containers,
//! images and state. Containers run under per-container shims and outlive the daemon.

pub mod builds;
pub mod config;
pub mod config_file;
pub mod containers;
pub mod crash_point;
pub mod cri;
pub mod distribution;
pub mod error;
pub mod events;
pub mod fsutil;
pub mod hijack;
pub mod lifecycle_pool;
mod memory;
pub mod network;
pub mod prune_filter;
pub mod request_body;
pub mod routes;
pub mod schema;
pub mod server;
pub mod socket;
pub mod state;
pub mod stats;
pub mod userns_remap;
pub mod version;
pub mod volumes;

#[cfg(test)]
mod fuzz_tests;

use std::ffi::OsString;
use std::sync::Arc;

use crate::config::DaemonArgs;
use crate::state::{Daemon, DaemonConfig};
use anyhow::Context;

/// `berth daemon [flags]`: runs until SIGINT or SIGTERM. Running containers keep running.
pub fn run(args: Vec<OsString>) -> anyhow::Result<()> {
    memory::run_with_tunables();
    let args = config_file::parse_daemon_args(args)?;
    let filter = if args.debug { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        // colours on a terminal only: a log file or journal gets plain text, as dockerd's
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    memory::limit_arenas();
    lifecycle_pool::init().context("starting the lifecycle runtime")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

fn daemon_id(root: &std::path::Path) -> anyhow::Result<String> {
    let path = root.join("engine-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        return Ok(id.trim().to_string());
    }
    let id = hex::encode(rand::random::<[u8; 16]>());
    let tmp = root.join("engine-id.tmp");
    std::fs::write(&tmp, &id)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

/// `--log-driver` and `--log-opt`, checked as dockerd does before it starts.
fn log_defaults(args: &DaemonArgs) -> anyhow::Result<containers::log_config::LogDefaults> {
    let defaults = containers::log_config::LogDefaults {
        driver: args.log_driver.clone(),
        opts: args.log_opt.iter().cloned().collect(),
    };
    defaults
        .validate()
        .map_err(|e| anyhow::anyhow!("failed to set log opts: {e}"))?;
    Ok(defaults)
}

/// `--dns*`, `--host-gateway-ip`, `--init`, `--default-ulimit`, checked before starting.
fn container_defaults(
    args: &DaemonArgs,
) -> anyhow::Result<containers::daemon_defaults::ContainerDefaults> {
    let defaults = containers::daemon_defaults::ContainerDefaults {
        dns: args.dns.clone(),
        dns_search: args.dns_search.clone(),
        dns_options: args.dns_opt.clone(),
        host_gateway_ip: args.host_gateway_ip,
        init: args.init,
        ulimits: args.default_ulimit.clone(),
    };
    defaults.validate().map_err(|e| anyhow::anyhow!(e))?;
    Ok(defaults)
}

async fn serve(args: DaemonArgs) -> anyhow::Result<()> {
    let socket = args.socket_path()?;
    // Before any state changes: a socket group that does not exist stops the start.
    let socket_gid = socket::socket_gid(&args.group)
        .map_err(|e| anyhow::anyhow!("failed to load listeners: {e}"))?;
    let userns_remap = userns_remap::setup(
        &args.userns_remap,
        &userns_remap::SubIdFiles {
            uid: args.subuid_file.clone(),
            gid: args.subgid_file.clone(),
        },
    )?;
    std::fs::create_dir_all(&args.root)
        .with_context(|| format!("creating {}", args.root.display()))?;
    std::fs::create_dir_all(&args.exec_root)
        .with_context(|| format!("creating {}", args.exec_root.display()))?;
    if let Some(remap) = &userns_remap {
        userns_remap::prepare_roots(
            remap,
            &[
                &args.root,
                &args.root.join("containers"),
                &args.root.join("volumes"),
                &args.exec_root,
                &args.exec_root.join("containers"),
            ],
        )?;
    }
    containers::shim::seal_binary(&args.exec_root);
    let keep_storage = match &args.builder_gc_keep_storage {
        Some(s) => builds::gc::parse_keep_storage(s).map_err(|e| anyhow::anyhow!(e))?,
        None => builds::gc::default_keep_storage(&args.root),
    };
    let config = Arc::new(DaemonConfig {
        root: args.root.clone(),
        exec_root: args.exec_root.clone(),
        cgroup_parent: args.cgroup_parent.clone(),
        debug: args.debug,
        bridge_name: args.bridge_name.clone(),
        bip: args.bip.clone(),
        default_address_pools: args.default_address_pool.clone(),
        security: berth_runtime::security::SecurityDefaults::load(
            args.no_new_privileges,
            args.seccomp_profile.as_deref(),
        )
        .context("loading the seccomp profile")?,
        log: log_defaults(&args)?,
        defaults: container_defaults(&args)?,
        userns_remap,
    });
    let registry = berth_registry::RegistryClient::new(berth_registry::RegistryConfig {
        mirrors: args.registry_mirror.clone(),
        insecure_registries: args.insecure_registry.clone(),
        certs_dir: Some(std::path::PathBuf::from("/etc/docker/certs.d")),
        docker_hub: args.docker_hub_url.clone(),
        hosts_dir: Some(args.registry_config_dir.clone()),
    })?;
    let daemon = Daemon::open(config, daemon_id(&args.root)?, registry)?;
    daemon.builds.gc.set_policy(builds::gc::GcPolicy {
        enabled: args.builder_gc_enabled,
        keep_storage,
    });
    builds::gc::spawn(daemon.clone());
    daemon.containers.recover().await;
    memory::spawn_trimmer();

    let listener = socket::bind(&socket, socket_gid)?;
    tracing::info!(socket = %socket.display(), root = %args.root.display(), "API listening");
    let events = daemon.events.clone();
    let bus = daemon.events.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let cri = match args.cri_socket_path() {
        Some(path) => {
            let mut stop = stop_rx.clone();
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let cri = cri::serve(daemon.clone(), &path, stopped).await?;
            Some(tokio::spawn(cri))
        }
        None => None,
    };
    let shutdown = async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutting down; containers keep running");
        let _ = stop_tx.send(true);
        events.close_streams();
    };
    axum::serve(listener, server::app(daemon))
        .with_graceful_shutdown(shutdown)
        .await?;
    let _ = std::fs::remove_file(&socket);
    if let Some(cri) = cri {
        match cri.await {
            Ok(Err(e)) => tracing::warn!("CRI: {e:#}"),
            Err(e) => tracing::warn!("CRI: {e}"),
            Ok(Ok(())) => {}
        }
    }
    bus.finish_writes();
    Ok(())
}
