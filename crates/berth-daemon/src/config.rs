//! The daemon's command-line flags and the paths derived from them.

use std::path::PathBuf;

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "berth daemon",
    about = "Run the Berth daemon (Docker Engine API)"
)]
pub struct DaemonArgs {
    /// Socket to listen on (unix://PATH)
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    pub host: String,
    /// Socket for the Kubernetes CRI v1 services (RuntimeService, ImageService); empty:
    /// CRI is not served
    #[arg(long = "cri-socket", value_name = "PATH", default_value = crate::cri::DEFAULT_CRI_SOCKET)]
    pub cri_socket: String,
    /// Group for the unix socket (a name or a GID; empty: the daemon's own group)
    #[arg(short = 'G', long = "group", default_value = crate::socket::DEFAULT_SOCKET_GROUP)]
    pub group: String,
    /// Root of persistent state: images, containers, volumes, metadata
    #[arg(long, default_value = "/var/lib/berth")]
    pub root: PathBuf,
    /// Root of runtime state: per-container shim sockets and pids
    #[arg(long = "exec-root", default_value = "/run/berth")]
    pub exec_root: PathBuf,
    /// Default cgroup parent for containers (default: the daemon's own cgroup)
    #[arg(long = "cgroup-parent", default_value = "")]
    pub cgroup_parent: String,
    /// Name of the default bridge (at most 15 characters); the nftables table is
    /// `berth_<name>`; `none` disables the default bridge (containers get loopback only)
    #[arg(long = "bridge-name", default_value = "berth0")]
    pub bridge_name: String,
    /// The default bridge's subnet (CIDR); default: the bridge's current one, else
    /// 172.17.0.0/16 when no route overlaps it, else the next free /16 of 172.18–172.31
    #[arg(long = "bip", default_value = "")]
    pub bip: String,
    /// `base=CIDR,size=N` (repeatable): where networks created without `--subnet`, and the
    /// default bridge without `--bip`, get their subnet (the first block clashing with no route)
    #[arg(long = "default-address-pool", value_name = "base=CIDR,size=N")]
    pub default_address_pool: Vec<berth_net::ipam::AddressPool>,
    /// Enable debug logging
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Daemon configuration file (Docker's daemon.json format); a missing file is fine
    /// only at the default path
    #[arg(long = "config-file", default_value = DEFAULT_CONFIG_FILE)]
    pub config_file: PathBuf,
    /// Preferred Docker Hub mirror (repeatable), e.g. http://127.0.0.1:5000
    #[arg(long = "registry-mirror", value_name = "URL")]
    pub registry_mirror: Vec<String>,
    /// Registry (host[:port] or CIDR) reached over plain HTTP or unverified TLS (repeatable)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// Where docker.io names are pulled from when no mirror serves them (default Docker
    /// Hub, https://registry-1.docker.io); for air-gapped hosts and tests
    #[arg(long = "docker-hub-url", value_name = "URL")]
    pub docker_hub_url: Option<String>,
    /// Directory of registry host settings in containerd's layout,
    /// `<dir>/<host[:port]>/hosts.toml` (mirrors and upstream for any registry host; read at
    /// every pull)
    #[arg(long = "registry-config-dir", value_name = "DIR", default_value = DEFAULT_REGISTRY_CONFIG_DIR)]
    pub registry_config_dir: PathBuf,
    /// Set no_new_privs for new containers by default
    #[arg(long = "no-new-privileges")]
    pub no_new_privileges: bool,
    /// Seccomp profile for containers: a JSON file in Docker's format, `unconfined`, or
    /// `builtin` (the default)
    #[arg(long = "seccomp-profile", value_name = "PATH")]
    pub seccomp_profile: Option<String>,
    /// Default log driver for containers: json-file (rotated by default: 10m × 5 files),
    /// local or none
    #[arg(long = "log-driver", default_value = "json-file")]
    pub log_driver: String,
    /// Default log driver options (repeatable), e.g. max-size=10m, max-file=3, compress=true
    #[arg(long = "log-opt", value_name = "KEY=VALUE", value_parser = parse_log_opt)]
    pub log_opt: Vec<(String, String)>,
    /// DNS server for containers that set none (repeatable)
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<String>,
    /// DNS search domain for containers that set none (repeatable)
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// DNS option for containers that set none (repeatable)
    #[arg(long = "dns-opt", value_name = "OPTION")]
    pub dns_opt: Vec<String>,
    /// The address `--add-host NAME:host-gateway` resolves to (default: the bridge's gateway)
    #[arg(long = "host-gateway-ip", value_name = "IP")]
    pub host_gateway_ip: Option<std::net::IpAddr>,
    /// User/Group setting for user namespaces: `default` (user `dockremap`, created when
    /// missing), USER, USER:GROUP, UID or UID:GID; ranges from /etc/subuid and /etc/subgid
    #[arg(long = "userns-remap", value_name = "USER[:GROUP]", default_value = "")]
    pub userns_remap: String,
    /// Subordinate uid file for --userns-remap (tests use their own; hidden)
    #[arg(long = "subuid-file", default_value = "/etc/subuid", hide = true)]
    pub subuid_file: PathBuf,
    /// Subordinate gid file for --userns-remap (tests use their own; hidden)
    #[arg(long = "subgid-file", default_value = "/etc/subgid", hide = true)]
    pub subgid_file: PathBuf,
    /// Run an init in containers (as `--init`) unless they say otherwise
    #[arg(long = "init")]
    pub init: bool,
    /// Default ulimit for containers (repeatable), e.g. nofile=1024:2048
    #[arg(long = "default-ulimit", value_name = "NAME=SOFT[:HARD]",
          value_parser = crate::containers::daemon_defaults::parse_ulimit)]
    pub default_ulimit: Vec<berth_api::Ulimit>,
}

fn parse_log_opt(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("invalid key/value pair format in logging opts: {s}"))
}

/// Where registry `hosts.toml` files are read when `--registry-config-dir` is not given.
pub const DEFAULT_REGISTRY_CONFIG_DIR: &str = "/etc/berth/certs.d";

/// Where the daemon looks for its configuration file when `--config-file` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

impl DaemonArgs {
    /// The CRI socket path from `--cri-socket` (`None`: CRI off). A `unix://` prefix is
    /// accepted, as the kubelet's `--container-runtime-endpoint` writes it.
    pub fn cri_socket_path(&self) -> Option<PathBuf> {
        let path = self
            .cri_socket
            .strip_prefix("unix://")
            .unwrap_or(&self.cri_socket);
        (!path.is_empty()).then(|| PathBuf::from(path))
    }

    /// The unix socket path from `--host`.
    pub fn socket_path(&self) -> anyhow::Result<PathBuf> {
        let path = self.host.strip_prefix("unix://").ok_or_else(|| {
            anyhow::anyhow!("only unix:// hosts are supported, got {:?}", self.host)
        })?;
        Ok(PathBuf::from(path))
    }
}
