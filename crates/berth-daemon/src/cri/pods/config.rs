//! A `PodSandboxConfig` as the create request of its sandbox container: checked, and
//! every field either applied or refused (never dropped without a word).
//!
//! Applied: metadata (the name and labels), hostname, DNS config (the pod's
//! `resolv.conf`), port mappings (published ports on the pod network; a mapping without
//! a host port publishes nothing, as the CNI `portmap` plugin does), labels,
//! annotations, log directory, cgroup parent, sysctls (the runtime's rules for
//! namespaced ones), privileged, and the namespace options (network, PID, IPC: `POD`,
//! `CONTAINER`, `NODE`). Refused: `TARGET` namespaces and user namespaces other than
//! the node's, runtime handlers Berth has not.
//!
//! Not applied, because they concern only the pause process and change nothing for the
//! pod's containers (whose own security contexts come with CreateContainer):
//! `run_as_user`, `run_as_group`, `supplemental_groups`, `readonly_rootfs`, seccomp,
//! AppArmor and SELinux options of the sandbox. `resources` and `overhead` are
//! informational (the kubelet sizes the pod's cgroup, the cgroup parent, itself), as in
//! containerd.

use std::collections::{BTreeMap, HashMap};

use berth_api::{ContainerConfig, ContainerCreateBody, HostConfig, PortBinding};
use berth_cri_api::v1::{NamespaceMode, NamespaceOption, PodSandboxConfig, Protocol};
use tonic::Status;

use super::labels;
use crate::containers::record::InternalOptions;

/// What a RunPodSandbox creates.
#[derive(Debug)]
pub struct SandboxCreate {
    /// `k8s_POD_<name>_<namespace>_<uid>_<attempt>`, as dockershim named it.
    pub name: String,
    pub body: ContainerCreateBody,
    pub internal: InternalOptions,
}

/// dockershim's sandbox name.
pub fn sandbox_name(name: &str, namespace: &str, uid: &str, attempt: u32) -> String {
    format!("k8s_POD_{name}_{namespace}_{uid}_{attempt}")
}

fn mode(m: i32) -> Result<NamespaceMode, Status> {
    match NamespaceMode::try_from(m) {
        Ok(NamespaceMode::Target) => Err(Status::invalid_argument(
            "a pod sandbox cannot share the namespaces of a target container",
        )),
        Ok(m) => Ok(m),
        Err(_) => Err(Status::invalid_argument(format!(
            "unknown namespace mode {m}"
        ))),
    }
}

fn protocol(p: i32) -> Result<&'static str, Status> {
    match Protocol::try_from(p) {
        Ok(Protocol::Tcp) => Ok("tcp"),
        Ok(Protocol::Udp) => Ok("udp"),
        Ok(Protocol::Sctp) => Ok("sctp"),
        Err(_) => Err(Status::invalid_argument(format!("unknown protocol {p}"))),
    }
}

/// The sandbox container of `config` on `network` (the pod network's name).
pub fn sandbox_create(
    config: &PodSandboxConfig,
    runtime_handler: &str,
    network: &str,
) -> Result<SandboxCreate, Status> {
    let meta = config
        .metadata
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("sandbox config must include metadata"))?;
    if !runtime_handler.is_empty() {
        return Err(Status::invalid_argument(format!(
            "failed to get sandbox runtime: no runtime for {runtime_handler:?} is configured"
        )));
    }
    let linux = config.linux.clone().unwrap_or_default();
    let sc = linux.security_context.clone().unwrap_or_default();
    let ns = sc.namespace_options.clone().unwrap_or_default();
    let (net, pid, ipc) = (mode(ns.network)?, mode(ns.pid)?, mode(ns.ipc)?);
    if !ns.target_id.is_empty() {
        return Err(Status::invalid_argument(
            "a pod sandbox cannot share the namespaces of a target container",
        ));
    }
    if let Some(u) = &ns.userns_options {
        if mode(u.mode)? != NamespaceMode::Node {
            return Err(Status::invalid_argument(
                "user namespaces for pods are not supported by Berth",
            ));
        }
    }
    let host_net = net == NamespaceMode::Node;

    let mut hc = HostConfig {
        network_mode: if host_net { "host" } else { network }.into(),
        // The pod's IPC namespace is joined by its containers (`container:<id>`).
        ipc_mode: if ipc == NamespaceMode::Node {
            "host"
        } else {
            "shareable"
        }
        .into(),
        pid_mode: if pid == NamespaceMode::Node {
            "host"
        } else {
            ""
        }
        .into(),
        // The node's network comes with the node's hostname (as containerd does).
        uts_mode: if host_net { "host" } else { "" }.into(),
        privileged: sc.privileged,
        cgroup_parent: linux.cgroup_parent.clone(),
        sysctls: linux.sysctls.clone().into_iter().collect(),
        init: Some(false),
        ..Default::default()
    };
    hc.log_config.kind = "none".into();
    hc.restart_policy.name = "no".into();
    if let Some(dns) = &config.dns_config {
        hc.dns = dns.servers.clone();
        hc.dns_search = dns.searches.clone();
        hc.dns_options = dns.options.clone();
    }
    let mut exposed = BTreeMap::new();
    if !host_net {
        for pm in &config.port_mappings {
            let proto = protocol(pm.protocol)?;
            if !(1..=65535).contains(&pm.container_port) {
                return Err(Status::invalid_argument(format!(
                    "invalid container port {} in port mapping",
                    pm.container_port
                )));
            }
            if pm.host_port <= 0 {
                continue;
            }
            if pm.host_port > 65535 {
                return Err(Status::invalid_argument(format!(
                    "invalid host port {} in port mapping",
                    pm.host_port
                )));
            }
            let key = format!("{}/{proto}", pm.container_port);
            exposed.insert(key.clone(), serde_json::json!({}));
            hc.port_bindings
                .entry(key)
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: pm.host_ip.clone(),
                    host_port: pm.host_port.to_string(),
                });
        }
    }

    let config_out = ContainerConfig {
        hostname: if host_net {
            String::new()
        } else {
            config.hostname.clone()
        },
        labels: labels::sandbox_labels(config, meta, pid_label(&ns)?),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        ..Default::default()
    };
    Ok(SandboxCreate {
        name: sandbox_name(&meta.name, &meta.namespace, &meta.uid, meta.attempt),
        body: ContainerCreateBody {
            config: config_out,
            host_config: Some(hc),
            networking_config: None,
        },
        internal: InternalOptions {
            pause: true,
            ..Default::default()
        },
    })
}

/// The PID namespace mode as stored (`POD`, `CONTAINER`, `NODE`).
fn pid_label(ns: &NamespaceOption) -> Result<&'static str, Status> {
    Ok(mode(ns.pid)?.as_str_name())
}

/// The label selector of ListPodSandbox (and ListContainers): every pair must match.
pub fn selector_matches(
    selector: &HashMap<String, String>,
    labels: &HashMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_cri_api::v1::{
        DnsConfig, LinuxPodSandboxConfig, LinuxSandboxSecurityContext, PodSandboxMetadata,
        PortMapping,
    };

    fn pod() -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "web".into(),
                uid: "u1".into(),
                namespace: "default".into(),
                attempt: 2,
            }),
            hostname: "webhost".into(),
            ..Default::default()
        }
    }

    #[test]
    fn metadata_is_required() {
        let e = sandbox_create(&PodSandboxConfig::default(), "", "berth-cri").unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert_eq!(e.message(), "sandbox config must include metadata");
    }

    #[test]
    fn name_network_and_namespaces() {
        let c = sandbox_create(&pod(), "", "berth-cri").unwrap();
        assert_eq!(c.name, "k8s_POD_web_default_u1_2");
        assert!(c.internal.pause);
        let hc = c.body.host_config.unwrap();
        assert_eq!(hc.network_mode, "berth-cri");
        assert_eq!(hc.ipc_mode, "shareable");
        assert_eq!(hc.pid_mode, "");
        assert_eq!(c.body.config.hostname, "webhost");
        assert_eq!(c.body.config.labels[labels::SANDBOX], "true");
    }

    #[test]
    fn host_network_takes_the_hosts_name_and_no_ports() {
        let mut p = pod();
        p.port_mappings = vec![PortMapping {
            protocol: Protocol::Tcp as i32,
            container_port: 80,
            host_port: 8080,
            host_ip: String::new(),
        }];
        p.linux = Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    pid: NamespaceMode::Node as i32,
                    ipc: NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let c = sandbox_create(&p, "", "berth-cri").unwrap();
        let hc = c.body.host_config.unwrap();
        assert_eq!(
            (
                hc.network_mode.as_str(),
                hc.pid_mode.as_str(),
                hc.ipc_mode.as_str()
            ),
            ("host", "host", "host")
        );
        assert_eq!(hc.uts_mode, "host");
        assert!(c.body.config.hostname.is_empty());
        assert!(hc.port_bindings.is_empty());
    }

    #[test]
    fn ports_and_dns() {
        let mut p = pod();
        p.port_mappings = vec![
            PortMapping {
                protocol: Protocol::Udp as i32,
                container_port: 53,
                host_port: 5353,
                host_ip: "127.0.0.1".into(),
            },
            // no host port: nothing published
            PortMapping {
                protocol: Protocol::Tcp as i32,
                container_port: 80,
                host_port: 0,
                host_ip: String::new(),
            },
        ];
        p.dns_config = Some(DnsConfig {
            servers: vec!["10.0.0.10".into()],
            searches: vec!["svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        });
        let c = sandbox_create(&p, "", "berth-cri").unwrap();
        let hc = c.body.host_config.unwrap();
        let b = hc.port_bindings["53/udp"].as_ref().unwrap();
        assert_eq!(
            (b[0].host_ip.as_str(), b[0].host_port.as_str()),
            ("127.0.0.1", "5353")
        );
        assert_eq!(hc.port_bindings.len(), 1);
        assert_eq!(hc.dns, ["10.0.0.10"]);
        assert_eq!(hc.dns_search, ["svc.cluster.local"]);
        assert_eq!(hc.dns_options, ["ndots:5"]);
    }

    #[test]
    fn refusals() {
        let mut p = pod();
        p.linux = Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    pid: NamespaceMode::Target as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let e = sandbox_create(&p, "", "n").unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = sandbox_create(&pod(), "kata", "n").unwrap_err();
        assert!(e.message().contains("no runtime for \"kata\""), "{e:?}");
    }
}
