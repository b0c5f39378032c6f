//! CRI v1 end to end: the service on its own socket, Version, Status, RuntimeConfig, and
//! UNIMPLEMENTED for what Berth does not serve.

mod common;
#[path = "common/cri.rs"]
mod cri;

use common::TestDaemon;
use cri::{cri_daemon, v1};

#[test]
fn version_names_berth_and_v1() {
    let (_d, c) = cri_daemon();
    let v = c
        .run(c.rt().version(v1::VersionRequest::default()))
        .expect("Version")
        .into_inner();
    assert_eq!(v.version, "0.1.0");
    assert_eq!(v.runtime_name, "berth");
    assert_eq!(v.runtime_api_version, "v1");
    assert!(!v.runtime_version.is_empty());
}

#[test]
fn status_has_runtime_and_network_conditions() {
    let (_d, c) = cri_daemon();
    let s = c
        .run(c.rt().status(v1::StatusRequest { verbose: false }))
        .expect("Status")
        .into_inner();
    let conds = s.status.expect("a runtime status").conditions;
    let kinds: Vec<&str> = conds.iter().map(|c| c.r#type.as_str()).collect();
    assert_eq!(kinds, ["RuntimeReady", "NetworkReady"]);
    assert!(conds[0].status, "{conds:?}");
}

#[test]
fn runtime_config_says_cgroupfs() {
    let (_d, c) = cri_daemon();
    let r = c
        .run(c.rt().runtime_config(v1::RuntimeConfigRequest::default()))
        .expect("RuntimeConfig")
        .into_inner();
    assert_eq!(
        r.linux.expect("linux").cgroup_driver,
        v1::CgroupDriver::Cgroupfs as i32
    );
}

#[test]
fn unserved_calls_are_unimplemented_not_faked() {
    let (_d, c) = cri_daemon();
    let err = c
        .run(
            c.rt()
                .checkpoint_container(v1::CheckpointContainerRequest::default()),
        )
        .expect_err("CheckpointContainer is not served");
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err:?}");
}

#[test]
fn the_socket_is_private_and_goes_with_the_daemon() {
    use std::os::unix::fs::PermissionsExt;
    let (mut d, c) = cri_daemon();
    drop(c);
    let sock = d.cri_sock.clone().expect("a CRI socket");
    let mode = std::fs::metadata(&sock)
        .expect("the socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    d.stop_daemon(std::time::Duration::from_secs(10));
    assert!(!sock.exists(), "the CRI socket outlived its daemon");
}

#[test]
fn cri_is_off_with_an_empty_socket() {
    let d = TestDaemon::start();
    assert!(d.cri_sock.is_none());
    assert!(!d.dir.join("cri.sock").exists());
    assert!(d.log_tail().lines().all(|l| !l.contains("CRI listening")));
}
