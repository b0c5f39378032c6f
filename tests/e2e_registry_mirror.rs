//! Registry mirrors for any registry host: containerd's `hosts.toml` layout under
//! `--registry-config-dir`, used by pulls through the Docker API, so `registry.k8s.io`
//! names are served by a local `docker-registry`.

mod common;

use common::registry::{RegistryAuth, TestRegistry};
use common::*;

/// A `--registry-config-dir` with `<host>/hosts.toml` sending `host` to `mirror`.
fn hosts_dir(entries: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("be2e-certsd-")
        .tempdir()
        .expect("temp dir");
    for (host, text) in entries {
        std::fs::create_dir_all(dir.path().join(host)).unwrap();
        std::fs::write(dir.path().join(host).join("hosts.toml"), text).unwrap();
    }
    dir
}

fn mirror_toml(upstream: &str, mirror: &str) -> String {
    format!(
        "server = \"https://{upstream}\"\n\n[host.\"http://{mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    )
}

#[test]
fn registry_k8s_io_name_is_pulled_from_a_local_mirror() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let dir = hosts_dir(&[(
        "registry.k8s.io",
        &mirror_toml("registry.k8s.io", &reg.addr),
    )]);
    let d = TestDaemon::start_with_args(&["--registry-config-dir", dir.path().to_str().unwrap()]);
    // Put the image into the local registry under the mirrored path.
    d.import_busybox();
    let local = format!("{}/e2e-test-images/busybox:1.29-2", reg.addr);
    d.berth_ok(&["tag", "busybox", &local]);
    d.berth_ok(&["push", &local]);
    let id = d.berth_ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    d.berth_ok(&["rmi", "busybox", &local]);

    let name = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
    let out = d.berth_ok(&["pull", name]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    let got = d.berth_ok(&["image", "inspect", "--format", "{{.Id}}", name]);
    assert_eq!(got, id, "the mirror's image");
    let run = d.berth_ok(&["run", "--rm", name, "echo", "served-by-mirror"]);
    assert_eq!(run.trim(), "served-by-mirror");

    // A name the mirror lacks: the mirror's answer, not a wait on registry.k8s.io.
    let missing = d.berth(&["pull", "registry.k8s.io/e2e-test-images/nothere:1"]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("pull access denied") || err.contains("not found"),
        "{err}"
    );
}

#[test]
fn hosts_toml_written_while_running_and_default_dir() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let dir = hosts_dir(&[]);
    let d = TestDaemon::start_with_args(&["--registry-config-dir", dir.path().to_str().unwrap()]);
    d.import_busybox();
    let local = format!(
        "{}/k8s-staging-cri-tools/test-image-latest:latest",
        reg.addr
    );
    d.berth_ok(&["tag", "busybox", &local]);
    d.berth_ok(&["push", &local]);
    // `_default` serves every host without a directory of its own; written after start.
    std::fs::create_dir_all(dir.path().join("_default")).unwrap();
    std::fs::write(
        dir.path().join("_default/hosts.toml"),
        format!("[host.\"http://{}\"]\n", reg.addr),
    )
    .unwrap();
    let name = "gcr.io/k8s-staging-cri-tools/test-image-latest";
    let out = d.berth_ok(&["pull", name]);
    assert!(out.contains("Downloaded newer image for"), "{out}");
    // A setting Berth does not apply fails the pull with the file's name.
    std::fs::write(
        dir.path().join("_default/hosts.toml"),
        format!(
            "[host.\"http://{}\"]\n  header = {{ x = \"y\" }}\n",
            reg.addr
        ),
    )
    .unwrap();
    let bad = d.berth(&["pull", name]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("_default/hosts.toml"), "{err}");
}
