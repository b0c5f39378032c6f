//! CRI `ContainerConfig` → Docker create body: the one translation of what a CRI
//! container asks for into what Berth's create applies (containerd's
//! `internal/cri/server/container_create_linux.go` decides the same things). What Berth
//! cannot apply is refused with InvalidArgument, never dropped.

use std::path::{Path, PathBuf};

use berth_api::{ContainerConfig, ContainerCreateBody, DeviceMapping, HostConfig};
use berth_cri_api::v1::security_profile::ProfileType;
use berth_cri_api::v1::{
    ContainerConfig as CriConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    MountPropagation, NamespaceMode, PodSandboxConfig, SecurityProfile,
};
use serde_json::json;
use tonic::Status;

use super::labels;

/// What create makes of a request.
#[derive(Debug)]
pub struct Plan {
    pub body: ContainerCreateBody,
    /// `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`.
    pub name: String,
    /// The kubelet's log file (sandbox `log_directory` + `log_path`), if any.
    pub log_path: Option<PathBuf>,
}

/// The pod as its sandbox record names it (labels), for the container's labels and name.
#[derive(Debug, Default, Clone)]
pub struct Pod {
    pub sandbox_id: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The kubelet's `log_directory` as the sandbox recorded it (used when the request
    /// carries no sandbox config).
    pub log_directory: String,
}

fn invalid(msg: impl Into<String>) -> Status {
    Status::invalid_argument(msg.into())
}

/// The whole translation; `read_file` reads a Localhost seccomp profile.
pub fn plan(
    cfg: &CriConfig,
    pod: &Pod,
    sandbox: Option<&PodSandboxConfig>,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Plan, Status> {
    let meta = cfg
        .metadata
        .as_ref()
        .ok_or_else(|| invalid("container config must include metadata"))?;
    if meta.name.is_empty() {
        return Err(invalid("container config must include metadata.name"));
    }
    let image = cfg
        .image
        .as_ref()
        .map(|i| i.image.clone())
        .filter(|i| !i.is_empty())
        .ok_or_else(|| invalid("container config must include an image"))?;
    if cfg.windows.is_some() {
        return Err(invalid(
            "windows container config is not supported on Linux",
        ));
    }
    if !cfg.cdi_devices.is_empty() {
        return Err(invalid("CDI devices are not supported by Berth"));
    }
    let name = format!(
        "k8s_{}_{}_{}_{}_{}",
        meta.name, pod.name, pod.namespace, pod.uid, meta.attempt
    );

    let mut config = ContainerConfig {
        image: image.clone(),
        working_dir: cfg.working_dir.clone(),
        tty: cfg.tty,
        open_stdin: cfg.stdin,
        attach_stdin: cfg.stdin,
        stdin_once: cfg.stdin_once,
        ..Default::default()
    };
    // Kubernetes' rule: `command` replaces the image's entrypoint (and then its CMD is not
    // used), `args` replace its CMD.
    if !cfg.command.is_empty() {
        config.entrypoint = Some(cfg.command.clone());
        config.cmd = Some(cfg.args.clone());
    } else if !cfg.args.is_empty() {
        config.cmd = Some(cfg.args.clone());
    }
    for kv in &cfg.envs {
        if kv.key.is_empty() {
            return Err(invalid("an environment variable has no name"));
        }
        config.env.push(format!("{}={}", kv.key, kv.value));
    }
    let l = &mut config.labels;
    l.insert(labels::CRI_CONTAINER.into(), "true".into());
    l.insert(labels::SANDBOX_ID.into(), pod.sandbox_id.clone());
    l.insert(labels::POD_NAME.into(), pod.name.clone());
    l.insert(labels::POD_NAMESPACE.into(), pod.namespace.clone());
    l.insert(labels::POD_UID.into(), pod.uid.clone());
    l.insert(labels::CONTAINER_NAME.into(), meta.name.clone());
    l.insert(labels::ATTEMPT.into(), meta.attempt.to_string());
    l.insert(labels::IMAGE.into(), image);
    for (k, v) in &cfg.labels {
        l.insert(format!("{}{k}", labels::LABEL_PREFIX), v.clone());
    }
    for (k, v) in &cfg.annotations {
        l.insert(format!("{}{k}", labels::ANNOTATION_PREFIX), v.clone());
    }

    let sandbox_ref = format!("container:{}", pod.sandbox_id);
    let mut hc = HostConfig {
        network_mode: sandbox_ref.clone(),
        ipc_mode: sandbox_ref.clone(),
        // The kubelet restarts containers itself.
        ..Default::default()
    };
    for m in &cfg.mounts {
        hc.mounts.push(mount(m)?);
    }
    for d in &cfg.devices {
        if d.host_path.is_empty() || d.container_path.is_empty() {
            return Err(invalid("a device needs host_path and container_path"));
        }
        hc.devices.push(DeviceMapping {
            path_on_host: d.host_path.clone(),
            path_in_container: d.container_path.clone(),
            cgroup_permissions: if d.permissions.is_empty() {
                "rwm".into()
            } else {
                d.permissions.clone()
            },
        });
    }
    let linux = cfg.linux.clone().unwrap_or_default();
    if let Some(r) = &linux.resources {
        resources(&mut hc, r)?;
    }
    let sc = linux.security_context.clone().unwrap_or_default();
    security(&mut config, &mut hc, &sc, pod, sandbox, read_file)?;

    let log_dir = sandbox
        .map(|s| s.log_directory.as_str())
        .filter(|d| !d.is_empty())
        .unwrap_or(&pod.log_directory);
    let log_path = match (log_dir, cfg.log_path.as_str()) {
        (_, "") => None,
        (dir, p) if !dir.is_empty() => Some(Path::new(dir).join(p)),
        (_, p) if Path::new(p).is_absolute() => Some(PathBuf::from(p)),
        _ => {
            return Err(invalid(
                "log_path is relative and the sandbox has no log_directory",
            ))
        }
    };
    Ok(Plan {
        body: ContainerCreateBody {
            config,
            host_config: Some(hc),
            networking_config: None,
        },
        name,
        log_path,
    })
}

/// One CRI mount as a Docker `Mounts` entry (a bind).
fn mount(m: &berth_cri_api::v1::Mount) -> Result<serde_json::Value, Status> {
    if m.container_path.is_empty() || !m.container_path.starts_with('/') {
        return Err(invalid(format!(
            "mount container_path {:?} must be an absolute path",
            m.container_path
        )));
    }
    if let Some(image) = &m.image {
        return image_mount(m, image);
    }
    if m.host_path.is_empty() {
        return Err(invalid(format!(
            "mount {} has no host_path",
            m.container_path
        )));
    }
    if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
        return Err(invalid("ID-mapped mounts are not supported by Berth"));
    }
    if m.recursive_read_only {
        return Err(invalid(
            "recursive read-only mounts are not supported by Berth",
        ));
    }
    // selinux_relabel: this host has no SELinux, so there is no label to set (as
    // containerd, which relabels only when SELinux is on).
    let propagation = match MountPropagation::try_from(m.propagation) {
        Ok(MountPropagation::PropagationPrivate) => "rprivate",
        Ok(MountPropagation::PropagationHostToContainer) => "rslave",
        Ok(MountPropagation::PropagationBidirectional) => "rshared",
        Err(_) => {
            return Err(invalid(format!(
                "unknown mount propagation {}",
                m.propagation
            )))
        }
    };
    Ok(json!({
        "Type": "bind",
        "Source": m.host_path,
        "Target": m.container_path,
        "ReadOnly": m.readonly,
        "BindOptions": {"Propagation": propagation},
    }))
}

/// An image volume (KEP-4639) as Docker's `image` mount: the image's content,
/// read-only, or its directory `image_sub_path`.
fn image_mount(
    m: &berth_cri_api::v1::Mount,
    image: &berth_cri_api::v1::ImageSpec,
) -> Result<serde_json::Value, Status> {
    if image.image.is_empty() {
        return Err(invalid(format!(
            "image volume {} names no image",
            m.container_path
        )));
    }
    if !m.readonly {
        return Err(invalid(format!(
            "image volume {} must be read-only",
            m.container_path
        )));
    }
    if !m.host_path.is_empty() {
        return Err(invalid(format!(
            "image volume {} must not have a host_path",
            m.container_path
        )));
    }
    if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
        return Err(invalid("ID-mapped mounts are not supported by Berth"));
    }
    if m.propagation != MountPropagation::PropagationPrivate as i32 {
        return Err(invalid(format!(
            "image volume {} takes no mount propagation",
            m.container_path
        )));
    }
    Ok(json!({
        "Type": "image",
        "Source": image.image,
        "Target": m.container_path,
        "ReadOnly": true,
        "ImageOptions": {"Subpath": m.image_sub_path},
    }))
}

/// `LinuxContainerResources` into the host config (create and update share it).
pub fn resources(hc: &mut HostConfig, r: &LinuxContainerResources) -> Result<(), Status> {
    if !r.unified.is_empty() {
        return Err(invalid(
            "unified (cgroup v2) resources are not supported by Berth",
        ));
    }
    // The kubelet sends a limit for every huge page size, 0 unless the pod asks for
    // huge pages. Berth sets no hugetlb limits: a 0 limit holds anyway while the host
    // reserves no huge pages; anything else would not be applied, so it is refused.
    if let Some(h) = r.hugepage_limits.iter().find(|h| h.limit != 0) {
        return Err(invalid(format!(
            "hugepage limits are not supported by Berth ({} limit {})",
            h.page_size, h.limit
        )));
    }
    if !r.hugepage_limits.is_empty() && host_reserves_hugepages() {
        return Err(invalid(
            "hugepage limits are not supported by Berth, and this host reserves huge pages",
        ));
    }
    hc.cpu_period = r.cpu_period;
    hc.cpu_quota = r.cpu_quota;
    hc.cpu_shares = r.cpu_shares;
    hc.memory = r.memory_limit_in_bytes;
    hc.memory_swap = r.memory_swap_limit_in_bytes;
    hc.oom_score_adj = r.oom_score_adj;
    hc.cpuset_cpus = r.cpuset_cpus.clone();
    hc.cpuset_mems = r.cpuset_mems.clone();
    Ok(())
}

/// Whether any huge pages are reserved on this host (then a 0 hugetlb limit matters).
fn host_reserves_hugepages() -> bool {
    let Ok(dirs) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return false;
    };
    dirs.flatten().any(|d| {
        std::fs::read_to_string(d.path().join("nr_hugepages"))
            .ok()
            .and_then(|n| n.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    })
}

fn namespace_mode(v: i32) -> Result<NamespaceMode, Status> {
    NamespaceMode::try_from(v).map_err(|_| invalid(format!("unknown namespace mode {v}")))
}

/// A seccomp profile as `--security-opt seccomp=…` (None: Berth's default profile).
fn seccomp(
    profile: Option<&SecurityProfile>,
    legacy_path: &str,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Option<String>, Status> {
    let localhost = |path: &str| -> Result<Option<String>, Status> {
        if !path.starts_with('/') {
            return Err(invalid(format!(
                "seccomp profile path {path:?} must be absolute"
            )));
        }
        let text = read_file(Path::new(path))
            .map_err(|e| invalid(format!("failed to load seccomp profile {path:?}: {e}")))?;
        Ok(Some(format!("seccomp={text}")))
    };
    match profile {
        Some(p) => match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(None),
            Ok(ProfileType::Unconfined) => Ok(Some("seccomp=unconfined".into())),
            Ok(ProfileType::Localhost) => localhost(&p.localhost_ref),
            Err(_) => Err(invalid(format!(
                "unknown seccomp profile type {}",
                p.profile_type
            ))),
        },
        // The deprecated string; empty means unconfined (CRI's and containerd's rule).
        None => match legacy_path {
            "runtime/default" | "docker/default" => Ok(None),
            "" | "unconfined" => Ok(Some("seccomp=unconfined".into())),
            p => match p.strip_prefix("localhost/") {
                Some(path) => localhost(path),
                None => Err(invalid(format!("unsupported seccomp profile {p:?}"))),
            },
        },
    }
}

/// The security context: user, groups, capabilities, privileges, seccomp, AppArmor,
/// masked paths and the PID namespace. (The deprecated string fields are still read:
/// older kubelets send them.)
#[allow(deprecated)]
fn security(
    config: &mut ContainerConfig,
    hc: &mut HostConfig,
    sc: &LinuxContainerSecurityContext,
    pod: &Pod,
    sandbox: Option<&PodSandboxConfig>,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<(), Status> {
    let sandbox_sc = sandbox
        .and_then(|s| s.linux.as_ref())
        .and_then(|l| l.security_context.as_ref());
    if sc.privileged {
        if sandbox.is_some() && !sandbox_sc.is_some_and(|s| s.privileged) {
            return Err(invalid("no privileged container allowed in sandbox"));
        }
        hc.privileged = true;
    }
    if let Some(caps) = &sc.capabilities {
        if !caps.add_ambient_capabilities.is_empty() {
            return Err(invalid("ambient capabilities are not supported by Berth"));
        }
        hc.cap_add = caps.add_capabilities.clone();
        hc.cap_drop = caps.drop_capabilities.clone();
    }
    let group = sc.run_as_group.as_ref().map(|g| g.value);
    if let Some(g) = group {
        if g < 0 {
            return Err(invalid(format!("run_as_group {g} is negative")));
        }
    }
    config.user = match (&sc.run_as_user, sc.run_as_username.as_str()) {
        (Some(_), n) if !n.is_empty() => {
            return Err(invalid(
                "only one of run_as_user and run_as_username may be set",
            ))
        }
        (Some(u), _) if u.value < 0 => {
            return Err(invalid(format!("run_as_user {} is negative", u.value)))
        }
        (Some(u), _) => u.value.to_string(),
        (None, "") => {
            if group.is_some() {
                return Err(invalid("user group is specified without user or username"));
            }
            String::new()
        }
        (None, n) => n.to_string(),
    };
    if let Some(g) = group {
        config.user = format!("{}:{g}", config.user);
    }
    hc.group_add = sc.supplemental_groups.iter().map(i64::to_string).collect();
    if sc.supplemental_groups_policy != 0 {
        return Err(invalid(
            "supplemental_groups_policy Strict is not supported by Berth",
        ));
    }
    hc.readonly_rootfs = sc.readonly_rootfs;
    if sc.no_new_privs {
        hc.security_opt.push("no-new-privileges".into());
    }
    if let Some(opt) = seccomp(sc.seccomp.as_ref(), &sc.seccomp_profile_path, read_file)? {
        hc.security_opt.push(opt);
    }
    // AppArmor: this host has none, so the runtime's default and `unconfined` are what
    // holds already; a named profile cannot be applied (containerd's words).
    let apparmor_named = match &sc.apparmor {
        Some(p) => p.profile_type == ProfileType::Localhost as i32,
        None => sc.apparmor_profile.starts_with("localhost/"),
    };
    if apparmor_named {
        return Err(invalid("apparmor is not supported"));
    }
    if sc.selinux_options.as_ref().is_some_and(|s| {
        !(s.user.is_empty() && s.role.is_empty() && s.r#type.is_empty() && s.level.is_empty())
    }) {
        return Err(invalid("SELinux is not enabled on this host"));
    }
    if !sc.masked_paths.is_empty() {
        hc.masked_paths = Some(sc.masked_paths.clone());
    }
    if !sc.readonly_paths.is_empty() {
        hc.readonly_paths = Some(sc.readonly_paths.clone());
    }
    // Namespaces: the pod's network and IPC always (a NODE pod's sandbox is in the
    // host's); PID as asked.
    let ns = sc
        .namespace_options
        .clone()
        .or_else(|| sandbox_sc.and_then(|s| s.namespace_options.clone()))
        .unwrap_or_default();
    if let Some(u) = &ns.userns_options {
        if namespace_mode(u.mode)? != NamespaceMode::Node {
            return Err(invalid(
                "user namespaces for pods are not supported by Berth",
            ));
        }
    }
    hc.pid_mode = match namespace_mode(ns.pid)? {
        NamespaceMode::Pod => format!("container:{}", pod.sandbox_id),
        NamespaceMode::Container => String::new(),
        NamespaceMode::Node => "host".into(),
        NamespaceMode::Target => {
            if ns.target_id.is_empty() {
                return Err(invalid("target PID namespace needs a target_id"));
            }
            format!("container:{}", ns.target_id)
        }
    };
    Ok(())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
