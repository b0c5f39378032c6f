use super::*;
use berth_cri_api::v1::{
    Capability, ContainerMetadata, ImageSpec, Int64Value, KeyValue, LinuxContainerConfig,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount, NamespaceOption,
};

fn pod() -> Pod {
    Pod {
        sandbox_id: "s1".into(),
        name: "web".into(),
        namespace: "default".into(),
        uid: "u1".into(),
        log_directory: "/var/log/pods/recorded".into(),
    }
}

fn base() -> CriConfig {
    CriConfig {
        metadata: Some(ContainerMetadata {
            name: "app".into(),
            attempt: 2,
        }),
        image: Some(ImageSpec {
            image: "busybox".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn no_file(_: &Path) -> std::io::Result<String> {
    Err(std::io::Error::from(std::io::ErrorKind::NotFound))
}

fn plan_of(cfg: &CriConfig, sandbox: Option<&PodSandboxConfig>) -> Result<Plan, Status> {
    plan(cfg, &pod(), sandbox, &no_file)
}

fn with_sc(sc: LinuxContainerSecurityContext) -> CriConfig {
    CriConfig {
        linux: Some(LinuxContainerConfig {
            resources: None,
            security_context: Some(sc),
        }),
        ..base()
    }
}

#[test]
fn names_labels_namespaces_and_command() {
    let mut cfg = base();
    cfg.command = vec!["sh".into()];
    cfg.envs = vec![KeyValue {
        key: "A".into(),
        value: "1".into(),
    }];
    cfg.labels.insert("tier".into(), "x".into());
    cfg.annotations.insert("note".into(), "y".into());
    cfg.log_path = "app/0.log".into();
    let sandbox = PodSandboxConfig {
        log_directory: "/var/log/pods/p".into(),
        ..Default::default()
    };
    let p = plan_of(&cfg, Some(&sandbox)).unwrap();
    assert_eq!(p.name, "k8s_app_web_default_u1_2");
    assert_eq!(p.log_path.unwrap(), Path::new("/var/log/pods/p/app/0.log"));
    // Without the sandbox config, the directory the sandbox recorded.
    let p = plan_of(&cfg, None).unwrap();
    assert_eq!(
        p.log_path.unwrap(),
        Path::new("/var/log/pods/recorded/app/0.log")
    );
    let c = &p.body.config;
    assert_eq!(c.entrypoint, Some(vec!["sh".to_string()]));
    assert_eq!(
        c.cmd,
        Some(vec![]),
        "the image's CMD is not used with a command"
    );
    assert_eq!(c.env, vec!["A=1"]);
    assert_eq!(c.labels["io.berth.cri.label.tier"], "x");
    assert_eq!(c.labels["io.berth.cri.annotation.note"], "y");
    assert_eq!(c.labels[labels::CRI_CONTAINER], "true");
    assert_eq!(c.labels[labels::SANDBOX_ID], "s1");
    let hc = p.body.host_config.unwrap();
    assert_eq!(hc.network_mode, "container:s1");
    assert_eq!(hc.ipc_mode, "container:s1");
    assert_eq!(hc.pid_mode, "container:s1", "CRI's default PID mode is POD");
    // No seccomp field: unconfined, as containerd.
    assert_eq!(hc.security_opt, vec!["seccomp=unconfined"]);
}

#[test]
fn security_context_maps_or_is_refused() {
    let sc = LinuxContainerSecurityContext {
        capabilities: Some(Capability {
            add_capabilities: vec!["NET_ADMIN".into()],
            drop_capabilities: vec!["ALL".into()],
            ..Default::default()
        }),
        run_as_user: Some(Int64Value { value: 1000 }),
        run_as_group: Some(Int64Value { value: 50 }),
        supplemental_groups: vec![7],
        readonly_rootfs: true,
        no_new_privs: true,
        seccomp: Some(SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        }),
        namespace_options: Some(NamespaceOption {
            pid: NamespaceMode::Container as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = plan_of(&with_sc(sc), None).unwrap();
    let hc = p.body.host_config.unwrap();
    assert_eq!(p.body.config.user, "1000:50");
    assert_eq!(hc.cap_add, vec!["NET_ADMIN"]);
    assert_eq!(hc.cap_drop, vec!["ALL"]);
    assert_eq!(hc.group_add, vec!["7"]);
    assert!(hc.readonly_rootfs);
    assert_eq!(hc.security_opt, vec!["no-new-privileges"]);
    assert_eq!(hc.pid_mode, "");

    let code = |sc: LinuxContainerSecurityContext| plan_of(&with_sc(sc), None).unwrap_err().code();
    let group_only = LinuxContainerSecurityContext {
        run_as_group: Some(Int64Value { value: 1 }),
        ..Default::default()
    };
    assert_eq!(code(group_only), tonic::Code::InvalidArgument);
    let apparmor = LinuxContainerSecurityContext {
        apparmor: Some(SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: "p".into(),
        }),
        ..Default::default()
    };
    assert_eq!(code(apparmor), tonic::Code::InvalidArgument);
    let missing_profile = LinuxContainerSecurityContext {
        seccomp: Some(SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: "/nonexistent.json".into(),
        }),
        ..Default::default()
    };
    assert_eq!(code(missing_profile), tonic::Code::InvalidArgument);
    // Privileged needs a privileged sandbox.
    let sandbox = PodSandboxConfig::default();
    let privileged = with_sc(LinuxContainerSecurityContext {
        privileged: true,
        ..Default::default()
    });
    assert!(plan(&privileged, &pod(), Some(&sandbox), &no_file).is_err());
    let sandbox = PodSandboxConfig {
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                privileged: true,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(plan(&privileged, &pod(), Some(&sandbox), &no_file).is_ok());
}

#[test]
fn localhost_seccomp_reads_the_file() {
    let sc = LinuxContainerSecurityContext {
        seccomp: Some(SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: "/etc/p.json".into(),
        }),
        ..Default::default()
    };
    let read = |p: &Path| {
        assert_eq!(p, Path::new("/etc/p.json"));
        Ok("{\"defaultAction\":\"SCMP_ACT_ALLOW\"}".to_string())
    };
    let p = plan(&with_sc(sc), &pod(), None, &read).unwrap();
    assert_eq!(
        p.body.host_config.unwrap().security_opt,
        vec!["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]
    );
}

#[test]
fn mounts_and_bad_input() {
    let mut cfg = base();
    cfg.mounts = vec![Mount {
        container_path: "/data".into(),
        host_path: "/srv/data".into(),
        readonly: true,
        propagation: MountPropagation::PropagationHostToContainer as i32,
        ..Default::default()
    }];
    let p = plan_of(&cfg, None).unwrap();
    let m = &p.body.host_config.unwrap().mounts[0];
    assert_eq!(m["Source"], "/srv/data");
    assert_eq!(m["ReadOnly"], true);
    assert_eq!(m["BindOptions"]["Propagation"], "rslave");

    let mut no_meta = base();
    no_meta.metadata = None;
    assert_eq!(
        plan_of(&no_meta, None).unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let mut no_image = base();
    no_image.image = None;
    assert_eq!(
        plan_of(&no_image, None).unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let mut rro = base();
    rro.mounts = vec![Mount {
        container_path: "/d".into(),
        host_path: "/d".into(),
        recursive_read_only: true,
        ..Default::default()
    }];
    assert!(plan_of(&rro, None).is_err());
    let mut unified = base();
    unified.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            unified: [("memory.max".to_string(), "1".to_string())].into(),
            ..Default::default()
        }),
        security_context: None,
    });
    assert!(plan_of(&unified, None).is_err());
}

#[test]
fn image_volumes_are_dockers_image_mounts_and_read_only() {
    let image = |readonly: bool, host_path: &str| {
        let mut cfg = base();
        cfg.mounts = vec![Mount {
            container_path: "/iv".into(),
            host_path: host_path.into(),
            readonly,
            image: Some(ImageSpec {
                image: "sha256:abc".into(),
                ..Default::default()
            }),
            image_sub_path: "etc".into(),
            ..Default::default()
        }];
        plan_of(&cfg, None)
    };
    let p = image(true, "").unwrap();
    let m = &p.body.host_config.unwrap().mounts[0];
    assert_eq!(
        *m,
        serde_json::json!({"Type": "image", "Source": "sha256:abc", "Target": "/iv",
            "ReadOnly": true, "ImageOptions": {"Subpath": "etc"}})
    );
    for bad in [image(false, ""), image(true, "/srv")] {
        assert_eq!(bad.unwrap_err().code(), tonic::Code::InvalidArgument);
    }
}
