//! `hosts.toml` mirrors for registry hosts other than Docker Hub.

use berth_api::ErrorKind;

use super::fake::{AuthMode, Fake};
use super::{push, reference, test_image};
use crate::*;

fn write_hosts(dir: &std::path::Path, host: &str, text: &str) {
    std::fs::create_dir_all(dir.join(host)).unwrap();
    std::fs::write(dir.join(host).join("hosts.toml"), text).unwrap();
}

#[tokio::test]
async fn any_registry_host_is_served_by_its_mirror() {
    let fake = Fake::start(AuthMode::None, None).await;
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let dir = tempfile::tempdir().unwrap();
    let c = RegistryClient::new(RegistryConfig {
        hosts_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let img = test_image("k8s");
    push(
        &c,
        &reference(&format!("{}/e2e-test-images/busybox:1.29-2", fake.addr)),
        None,
        &img,
    )
    .await;
    // Written after the client was made: read at each pull. The dead mirror is skipped.
    write_hosts(
        dir.path(),
        "registry.k8s.io",
        &format!(
            "server = \"https://registry.k8s.io\"\n\n[host.\"http://{dead_addr}\"]\n  capabilities = [\"pull\", \"resolve\"]\n\n[host.\"http://{}/v2\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            fake.addr
        ),
    );
    let name = reference("registry.k8s.io/e2e-test-images/busybox:1.29-2");
    let got = c.resolve(&name, &Platform::host(), None).await.unwrap();
    assert_eq!(got.digest, sha256_digest(&img.manifest));
    assert!(got.repository.is_mirror());
    assert_eq!(got.repository.domain(), "registry.k8s.io");
    // By digest too.
    let by_digest = reference(&format!(
        "registry.k8s.io/e2e-test-images/busybox@{}",
        got.digest
    ));
    c.resolve(&by_digest, &Platform::host(), None)
        .await
        .unwrap();
    // A name the mirror lacks is its answer: not found, without reaching registry.k8s.io.
    let err = c
        .resolve(
            &reference("registry.k8s.io/e2e-test-images/busybox:nope"),
            &Platform::host(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn default_dir_capabilities_and_bad_files() {
    let fake = Fake::start(AuthMode::None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let c = RegistryClient::new(RegistryConfig {
        hosts_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let img = test_image("gcr");
    push(
        &c,
        &reference(&format!(
            "{}/k8s-staging-cri-tools/test-image-latest:latest",
            fake.addr
        )),
        None,
        &img,
    )
    .await;
    let name = reference("gcr.io/k8s-staging-cri-tools/test-image-latest");
    // `_default` applies to hosts without a directory; `server` replaces the upstream.
    write_hosts(
        dir.path(),
        "_default",
        &format!("server = \"http://{}\"\n", fake.addr),
    );
    let got = c.resolve(&name, &Platform::host(), None).await.unwrap();
    assert!(!got.repository.is_mirror());
    // A pull-only mirror serves digests, not tags: the tag goes to the (dead) upstream.
    write_hosts(
        dir.path(),
        "gcr.io",
        &format!(
            "server = \"http://127.0.0.1:9\"\n[host.\"http://{}\"]\n  capabilities = [\"pull\"]\n",
            fake.addr
        ),
    );
    assert!(c.resolve(&name, &Platform::host(), None).await.is_err());
    let by_digest = reference(&format!(
        "gcr.io/k8s-staging-cri-tools/test-image-latest@{}",
        got.digest
    ));
    c.resolve(&by_digest, &Platform::host(), None)
        .await
        .unwrap();
    // A file Berth cannot apply fails the pull, naming the file.
    write_hosts(
        dir.path(),
        "gcr.io",
        "[host.\"http://x\"]\n  ca = \"/c.crt\"\n",
    );
    let err = c.resolve(&name, &Platform::host(), None).await.unwrap_err();
    assert!(err.to_string().contains("gcr.io/hosts.toml"), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}
