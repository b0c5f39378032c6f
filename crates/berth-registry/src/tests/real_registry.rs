//! The client against Debian's `docker-registry` (distribution v2.8): plain and with
//! htpasswd Basic auth. Skipped (with a message) when the binary is absent.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_api::ErrorKind;

use super::*;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry, killed (and reaped) when dropped, even on panic.
struct RealRegistry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for RealRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RealRegistry {
    async fn start(htpasswd: Option<(&str, &str)>) -> Option<RealRegistry> {
        if !Path::new(REGISTRY_BIN).exists() {
            eprintln!(
                "skipping: {REGISTRY_BIN} is not installed (apt-get install docker-registry)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = htpasswd {
            let hash = bcrypt::hash(pass, 4).unwrap();
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, format!("{user}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let reg = RealRegistry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(&reg.addr).await.is_ok() {
                return Some(reg);
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start: {:?}",
                std::fs::read_to_string(reg._dir.path().join("registry.log"))
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn real_registry_push_pull_mount_tags() {
    let Some(reg) = RealRegistry::start(None).await else {
        return;
    };
    let c = client();
    let img = test_image("real");
    let r = reference(&format!("{}/berth/small:v1", reg.addr));
    // One blob above the threshold: chunked PATCH uploads against the real thing.
    c.set_upload_chunking(50_000, 32 * 1024);
    let digest = push(&c, &r, None, &img).await;
    assert_eq!(digest, sha256_digest(&img.manifest));
    let resolved = pull_and_check(&c, &r, None, &img).await;
    assert_eq!(
        resolved.repository.endpoint_url(),
        format!("http://{}", reg.addr)
    );

    // By digest too.
    let by_digest = reference(&format!("{}/berth/small@{digest}", reg.addr));
    assert_eq!(
        c.resolve(&by_digest, &Platform::host(), None)
            .await
            .unwrap()
            .digest,
        digest
    );

    // Cross-repository mount, then the manifest: the other repo pulls back identical.
    let other = reference(&format!("{}/berth/other:v2", reg.addr));
    let repo = c.repository_for_push(&other, None).await.unwrap();
    for d in std::iter::once(&img.config.0).chain(img.layers.iter().map(|(d, _)| d)) {
        assert!(c.mount_blob(&repo, &d.digest, "berth/small").await.unwrap());
    }
    assert!(!c
        .mount_blob(&repo, &sha256_digest(b"absent"), "berth/small")
        .await
        .unwrap());
    c.put_manifest(&repo, "v2", MEDIA_DOCKER_MANIFEST, &img.manifest)
        .await
        .unwrap();
    pull_and_check(&c, &other, None, &img).await;

    c.put_manifest(&repo, "v3", MEDIA_DOCKER_MANIFEST, &img.manifest)
        .await
        .unwrap();
    assert_eq!(c.list_tags(&repo).await.unwrap(), vec!["v2", "v3"]);

    let err = c
        .resolve(
            &reference(&format!("{}/berth/small:nope", reg.addr)),
            &Platform::host(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        format!(
            "manifest for {}/berth/small:nope not found: manifest unknown: manifest unknown",
            reg.addr
        )
    );
    let err = c
        .resolve(
            &reference(&format!("{}/no/such", reg.addr)),
            &Platform::host(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // distribution 2.8 answers MANIFEST_UNKNOWN for unknown repositories too.
    assert_eq!(
        err.to_string(),
        format!(
            "manifest for {}/no/such:latest not found: manifest unknown: manifest unknown",
            reg.addr
        )
    );
}

#[tokio::test]
async fn real_registry_as_docker_hub_mirror() {
    let Some(reg) = RealRegistry::start(None).await else {
        return;
    };
    let c = RegistryClient::new(RegistryConfig {
        mirrors: vec![format!("http://{}", reg.addr)],
        ..Default::default()
    })
    .unwrap();
    let img = test_image("hub");
    push(
        &c,
        &reference(&format!("{}/library/hello-world:latest", reg.addr)),
        None,
        &img,
    )
    .await;
    let got = pull_and_check(&c, &reference("hello-world"), None, &img).await;
    assert!(got.repository.is_mirror());
    let err = c
        .resolve(&reference("hello-world:nope"), &Platform::host(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "manifest for hello-world:nope not found: manifest unknown: manifest unknown"
    );
    let err = c
        .resolve(&reference("no-such-image"), &Platform::host(), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        "pull access denied for no-such-image, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
    );
}

#[tokio::test]
async fn real_registry_htpasswd() {
    let Some(reg) = RealRegistry::start(Some(("berth", "hunter2"))).await else {
        return;
    };
    let c = client();
    let good = creds("berth", "hunter2", &reg.addr);
    c.login(&good).await.unwrap();
    let err = c
        .login(&creds("berth", "wrong", &reg.addr))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        err.to_string(),
        format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            reg.addr
        )
    );

    let img = test_image("htpasswd");
    let r = reference(&format!("{}/secret/app:v1", reg.addr));
    push(&c, &r, Some(&good), &img).await;
    pull_and_check(&c, &r, Some(&good), &img).await;
    let err = c.resolve(&r, &Platform::host(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        err.to_string(),
        format!(
            "Get \"http://{}/v2/secret/app/manifests/v1\": no basic auth credentials",
            reg.addr
        )
    );
    let err = c
        .repository_for_push(&r, Some(&creds("berth", "bad", "")))
        .await
        .unwrap();
    let err = c.blob_exists(&err, &img.config.0.digest).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

/// Throughput of one push and four concurrent blob streams against the real registry
/// (`cargo test -p berth-registry throughput -- --ignored --nocapture`).
#[tokio::test]
#[ignore]
async fn real_registry_throughput() {
    let Some(reg) = RealRegistry::start(None).await else {
        return;
    };
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let r = reference(&format!("{}/bench/big:v1", reg.addr));
    let repo = c.repository_for_push(&r, None).await.unwrap();
    let mut descs = Vec::new();
    let t = Instant::now();
    for i in 0..4u8 {
        let data: Vec<u8> = (0..50u32 << 20)
            .map(|x| (x.wrapping_mul(2654435761) >> 13) as u8 ^ i)
            .collect();
        let d = Descriptor::for_bytes("application/octet-stream", &data);
        let path = dir.path().join(format!("b{i}"));
        std::fs::write(&path, &data).unwrap();
        c.upload_blob(&repo, &d, &path, &|_| {}).await.unwrap();
        descs.push(d);
    }
    eprintln!("push 200 MB: {:?}", t.elapsed());
    let t = Instant::now();
    let tasks: Vec<_> = descs
        .iter()
        .map(|d| {
            let mut s = c.blob_stream(&repo, d);
            tokio::spawn(async move {
                let mut n = 0usize;
                while let Some(chunk) = s.next().await {
                    n += chunk.unwrap().len();
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "pull {} MB in {secs:.2}s: {:.0} MB/s",
        total >> 20,
        (total >> 20) as f64 / secs
    );
}
