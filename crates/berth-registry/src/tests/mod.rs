//! Client tests against the in-process fake registry (`fake`) and Debian's real
//! `docker-registry` (`real_registry`).

mod fake;
mod hosts_mirrors;
mod real_registry;

use std::time::Duration;

use berth_api::{AuthConfig, ErrorKind};
use berth_image::Reference;
use futures_util::StreamExt;

use crate::manifest::{MEDIA_DOCKER_SCHEMA1_SIGNED, MEDIA_OCI_INDEX};
use crate::*;
use fake::{AuthMode, Fake};

fn client() -> RegistryClient {
    let c = RegistryClient::new(RegistryConfig::default()).unwrap();
    c.set_retry_delay(Duration::from_millis(10));
    c
}

fn reference(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap().with_default_tag()
}

fn creds(user: &str, pass: &str, server: &str) -> AuthConfig {
    AuthConfig {
        username: user.into(),
        password: pass.into(),
        server_address: server.into(),
        ..Default::default()
    }
}

/// A tiny image: config and two layers as files in `dir`, and its schema2 manifest.
pub(crate) struct TestImage {
    pub config: (Descriptor, Vec<u8>),
    pub layers: Vec<(Descriptor, Vec<u8>)>,
    pub manifest: Vec<u8>,
    pub dir: tempfile::TempDir,
}

pub(crate) fn test_image(seed: &str) -> TestImage {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{seed}"]}}}}"#).into_bytes();
    let l1: Vec<u8> = (0..70_000u32)
        .map(|i| (i % 251) as u8)
        .chain(seed.bytes())
        .collect();
    let l2: Vec<u8> = format!("second layer {seed}").into_bytes();
    let cfg = Descriptor::for_bytes(MEDIA_DOCKER_CONFIG, &config);
    let layer =
        |b: &[u8]| Descriptor::for_bytes("application/vnd.docker.image.rootfs.diff.tar.gzip", b);
    let layers = vec![(layer(&l1), l1), (layer(&l2), l2)];
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_DOCKER_MANIFEST,
        "config": cfg,
        "layers": layers.iter().map(|(d, _)| d).collect::<Vec<_>>(),
    }))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (d, b) in std::iter::once((&cfg, &config)).chain(layers.iter().map(|(d, b)| (d, b))) {
        std::fs::write(dir.path().join(d.digest.replace(':', "_")), b).unwrap();
    }
    TestImage {
        config: (cfg, config),
        layers,
        manifest,
        dir,
    }
}

impl TestImage {
    pub fn path(&self, d: &Descriptor) -> std::path::PathBuf {
        self.dir.path().join(d.digest.replace(':', "_"))
    }
}

/// Pushes `img` to `reference` with the client (HEAD first, upload when missing).
pub(crate) async fn push(
    c: &RegistryClient,
    r: &Reference,
    auth: Option<&AuthConfig>,
    img: &TestImage,
) -> String {
    let repo = c.repository_for_push(r, auth).await.unwrap();
    let all = std::iter::once(&img.config.0).chain(img.layers.iter().map(|(d, _)| d));
    for d in all {
        if !c.blob_exists(&repo, &d.digest).await.unwrap() {
            c.upload_blob(&repo, d, &img.path(d), &|_| {})
                .await
                .unwrap();
        }
        assert!(c.blob_exists(&repo, &d.digest).await.unwrap());
    }
    c.put_manifest(
        &repo,
        r.tag().unwrap(),
        MEDIA_DOCKER_MANIFEST,
        &img.manifest,
    )
    .await
    .unwrap()
}

/// Resolves `r` and pulls every blob back, checking contents against `img`.
pub(crate) async fn pull_and_check(
    c: &RegistryClient,
    r: &Reference,
    auth: Option<&AuthConfig>,
    img: &TestImage,
) -> ResolvedImage {
    let resolved = c.resolve(r, &Platform::host(), auth).await.unwrap();
    assert_eq!(resolved.digest, sha256_digest(&img.manifest));
    assert_eq!(resolved.manifest_digest, resolved.digest);
    assert_eq!(resolved.manifest_media_type, MEDIA_DOCKER_MANIFEST);
    assert_eq!(&resolved.manifest_bytes[..], &img.manifest[..]);
    assert!(resolved.index_bytes.is_none());
    let config = c
        .fetch_blob(&resolved.repository, &resolved.config)
        .await
        .unwrap();
    assert_eq!(&config[..], &img.config.1[..]);
    assert_eq!(resolved.layers.len(), img.layers.len());
    for (desc, (_, want)) in resolved.layers.iter().zip(&img.layers) {
        let mut got = Vec::new();
        let mut s = c.blob_stream(&resolved.repository, desc);
        while let Some(chunk) = s.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(&got, want);
    }
    resolved
}

async fn collect(mut s: BlobStream) -> (Vec<u8>, Option<RegistryError>) {
    let mut out = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(c) => out.extend_from_slice(&c),
            Err(e) => {
                assert!(s.next().await.is_none(), "the error is the last item");
                return (out, Some(e));
            }
        }
    }
    (out, None)
}

#[tokio::test]
async fn bearer_push_pull_and_token_cache() {
    let fake = Fake::start(AuthMode::Bearer, Some(("alice", "s3cret"))).await;
    let c = client();
    let auth = creds("alice", "s3cret", &fake.addr);
    let r = reference(&format!("{}/team/app:v1", fake.addr));
    let img = test_image("bearer");
    let digest = push(&c, &r, Some(&auth), &img).await;
    assert_eq!(digest, sha256_digest(&img.manifest));
    // One token for pull,push on team/app, however many requests were made.
    assert_eq!(c.token_fetches(), 1);
    pull_and_check(&c, &r, Some(&auth), &img).await;
    pull_and_check(&c, &r, Some(&auth), &img).await;
    // Plus one for the pull scope.
    assert_eq!(c.token_fetches(), 2);
    let st = fake.state.lock().unwrap();
    assert_eq!(st.token_requests.len(), 2);
    assert!(
        st.token_requests[0].contains("scope=repository%3Ateam%2Fapp%3Apull%2Cpush"),
        "{:?}",
        st.token_requests
    );
    assert!(st.token_requests[0].contains("account=alice"));
    assert!(st.token_requests[1].contains("scope=repository%3Ateam%2Fapp%3Apull"));
    // The HTTPS probe happened once: the plain-HTTP scheme is remembered (one /v2/ ping
    // reached the server, the HTTPS attempt is not an HTTP request at all).
    assert_eq!(st.requests.iter().filter(|r| *r == "GET /v2/").count(), 1);
}

#[tokio::test]
async fn bearer_wrong_password_and_login() {
    let fake = Fake::start(AuthMode::Bearer, Some(("alice", "s3cret"))).await;
    let c = client();
    c.login(&creds("alice", "s3cret", &fake.addr))
        .await
        .unwrap();
    let err = c
        .login(&creds("alice", "nope", &fake.addr))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        err.to_string(),
        format!(
            "Get \"http://{}/v2/\": unauthorized: incorrect username or password",
            fake.addr
        )
    );
    let r = reference(&format!("{}/team/app:v1", fake.addr));
    let err = c
        .resolve(&r, &Platform::host(), Some(&creds("alice", "nope", "")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        err.to_string(),
        format!("Get \"http://{}/v2/team/app/manifests/v1\": unauthorized: incorrect username or password", fake.addr)
    );
}

#[tokio::test]
async fn basic_auth_registry() {
    let fake = Fake::start(AuthMode::Basic, Some(("bob", "pw"))).await;
    let c = client();
    let auth = creds("bob", "pw", &fake.addr);
    let r = reference(&format!("{}/x:latest", fake.addr));
    let img = test_image("basic");
    push(&c, &r, Some(&auth), &img).await;
    let got = pull_and_check(&c, &r, Some(&auth), &img).await;
    assert_eq!(c.token_fetches(), 0);
    assert!(
        !format!("{got:?}").contains("pw\""),
        "Debug must not show the password"
    );
    c.login(&auth).await.unwrap();
    let err = c
        .login(&creds("bob", "wrong", &format!("http://{}", fake.addr)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        err.to_string(),
        format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            fake.addr
        )
    );
    let err = c.resolve(&r, &Platform::host(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        err.to_string(),
        format!(
            "Get \"http://{}/v2/x/manifests/latest\": no basic auth credentials",
            fake.addr
        )
    );
}

fn platform_list(fake: &Fake, repo: &str, media: &str) -> (String, String, String) {
    let img_a = test_image("amd");
    let img_b = test_image("arm");
    let entry_media = if media == MEDIA_OCI_INDEX {
        MEDIA_OCI_MANIFEST
    } else {
        MEDIA_DOCKER_MANIFEST
    };
    let ma = String::from_utf8(img_a.manifest.clone())
        .unwrap()
        .replace(MEDIA_DOCKER_MANIFEST, entry_media);
    let mb = String::from_utf8(img_b.manifest.clone())
        .unwrap()
        .replace(MEDIA_DOCKER_MANIFEST, entry_media);
    let da = fake.put_manifest(
        repo,
        &sha256_digest(ma.as_bytes()),
        entry_media,
        ma.as_bytes(),
    );
    let db = fake.put_manifest(
        repo,
        &sha256_digest(mb.as_bytes()),
        entry_media,
        mb.as_bytes(),
    );
    let host = Platform::host();
    let other = if host.architecture == "arm64" {
        ("amd64", None)
    } else {
        ("arm64", Some("v8"))
    };
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media,
        "manifests": [
            {"mediaType": entry_media, "digest": db, "size": mb.len(),
             "platform": {"os": "linux", "architecture": other.0, "variant": other.1}},
            {"mediaType": entry_media, "digest": da, "size": ma.len(),
             "platform": {"os": host.os, "architecture": host.architecture, "variant": host.variant}},
            {"mediaType": entry_media, "digest": db, "size": mb.len(),
             "platform": {"os": "unknown", "architecture": "unknown"}},
        ]
    })
    .to_string();
    let dl = fake.put_manifest(repo, "multi", media, list.as_bytes());
    (dl, da, db)
}

#[tokio::test]
async fn manifest_list_and_oci_index_platform_selection() {
    let fake = Fake::start(AuthMode::None, None).await;
    let c = client();
    for (repo, media) in [("list", MEDIA_DOCKER_LIST), ("index", MEDIA_OCI_INDEX)] {
        let (dl, da, db) = platform_list(&fake, repo, media);
        let r = reference(&format!("{}/{repo}:multi", fake.addr));
        let got = c.resolve(&r, &Platform::host(), None).await.unwrap();
        assert_eq!(got.digest, dl);
        assert_eq!(got.manifest_digest, da);
        assert!(got.index_bytes.is_some());
        assert_eq!(sha256_digest(&got.manifest_bytes), da);
        let other = if Platform::host().architecture == "arm64" {
            "linux/amd64"
        } else {
            "linux/arm64/v8"
        };
        let got = c
            .resolve(&r, &Platform::parse(other).unwrap(), None)
            .await
            .unwrap();
        assert_eq!(got.manifest_digest, db);
        assert_eq!(got.digest, dl);
        let err = c
            .resolve(&r, &Platform::parse("linux/s390x").unwrap(), None)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        assert_eq!(err.kind(), ErrorKind::NotFound);
        // By digest: the index digest gives the same answer.
        let by_digest = reference(&format!("{}/{repo}@{dl}", fake.addr));
        assert_eq!(
            c.resolve(&by_digest, &Platform::host(), None)
                .await
                .unwrap()
                .manifest_digest,
            da
        );
    }
}

#[tokio::test]
async fn refusals_schema1_unknown_and_tampered_manifests() {
    let fake = Fake::start(AuthMode::None, None).await;
    let c = client();
    fake.put_manifest(
        "old",
        "v1",
        MEDIA_DOCKER_SCHEMA1_SIGNED,
        br#"{"schemaVersion":1,"name":"old","tag":"v1","fsLayers":[]}"#,
    );
    let r = reference(&format!("{}/old:v1", fake.addr));
    let err = c.resolve(&r, &Platform::host(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        err.to_string(),
        format!("Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. Suggest the author of {}/old:v1 to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/", fake.addr)
    );

    let err = c
        .resolve(
            &reference(&format!("{}/old:nope", fake.addr)),
            &Platform::host(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "manifest for {}/old:nope not found: manifest unknown: manifest unknown",
            fake.addr
        )
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = c
        .resolve(
            &reference(&format!("{}/missing", fake.addr)),
            &Platform::host(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "repository {}/missing not found: name unknown: repository name not known to registry",
            fake.addr
        )
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let img = test_image("tamper");
    let d = fake.put_manifest("t", "v1", MEDIA_DOCKER_MANIFEST, &img.manifest);
    fake.state.lock().unwrap().corrupt_manifests.push(d.clone());
    let err = c
        .resolve(
            &reference(&format!("{}/t@{d}", fake.addr)),
            &Platform::host(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("manifest verification failed for digest {d}")
    );
}

#[tokio::test]
async fn blob_stream_verifies_and_resumes() {
    let fake = Fake::start(AuthMode::None, None).await;
    let c = client();
    let img = test_image("blobs");
    let r = reference(&format!("{}/b:v1", fake.addr));
    push(&c, &r, None, &img).await;
    let repo = c.repository_for_push(&r, None).await.unwrap();
    let (d1, b1) = &img.layers[0];

    // Wrong content: every byte is yielded, then the stream ends in an error.
    fake.state.lock().unwrap().corrupt.push(d1.digest.clone());
    let (got, err) = collect(c.blob_stream(&repo, d1)).await;
    assert_eq!(got.len(), b1.len());
    let err = err.expect("corrupt blob must fail");
    assert_eq!(
        err.to_string(),
        format!(
            "filesystem layer verification failed for digest {}",
            d1.digest
        )
    );
    let err = c.fetch_blob(&repo, d1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("image config verification failed for digest {}", d1.digest)
    );
    fake.state.lock().unwrap().corrupt.clear();

    // Wrong size in the descriptor.
    let short = Descriptor {
        size: d1.size - 1,
        ..d1.clone()
    };
    assert!(collect(c.blob_stream(&repo, &short)).await.1.is_some());

    // A connection cut halfway: resumed with Range, bytes intact.
    fake.state.lock().unwrap().drop_once.push(d1.digest.clone());
    let (got, err) = collect(c.blob_stream(&repo, d1)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(&got, b1);
    let ranges = fake.state.lock().unwrap().range_headers.clone();
    assert_eq!(ranges, vec![format!("bytes={}-", b1.len() / 2)]);

    // A registry that ignores Range: the resumed response restarts at 0 and the
    // already-yielded prefix is skipped.
    {
        let mut st = fake.state.lock().unwrap();
        st.ignore_range = true;
        st.drop_once.push(d1.digest.clone());
        st.range_headers.clear();
    }
    let (got, err) = collect(c.blob_stream(&repo, d1)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(&got, b1);
    assert_eq!(fake.state.lock().unwrap().range_headers.len(), 1);

    // Unknown blob.
    let unknown = Descriptor::for_bytes("x", b"nothing here");
    let (_, err) = collect(c.blob_stream(&repo, &unknown)).await;
    assert_eq!(err.unwrap().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn chunked_upload_mount_and_tags() {
    let fake = Fake::start(AuthMode::Bearer, None).await;
    let c = client();
    c.set_upload_chunking(1000, 30_000);
    let img = test_image("chunked");
    let r = reference(&format!("{}/src/app:v1", fake.addr));
    let progress = std::sync::Mutex::new(Vec::new());
    let repo = c.repository_for_push(&r, None).await.unwrap();
    let (d1, b1) = &img.layers[0];
    c.upload_blob(&repo, d1, &img.path(d1), &|n| {
        progress.lock().unwrap().push(n)
    })
    .await
    .unwrap();
    // 70 006 bytes in 30 000-byte chunks: three PATCHes.
    assert_eq!(fake.state.lock().unwrap().patches, 3);
    assert_eq!(
        fake.state
            .lock()
            .unwrap()
            .blobs
            .get(&d1.digest)
            .map(|b| b.to_vec()),
        Some(b1.clone())
    );
    assert_eq!(
        progress.lock().unwrap().last().copied(),
        Some(b1.len() as u64)
    );
    // Below the threshold: one PUT.
    let (d2, _) = &img.layers[1];
    c.upload_blob(&repo, d2, &img.path(d2), &|_| {})
        .await
        .unwrap();
    assert_eq!(fake.state.lock().unwrap().patches, 3);

    // Cross-repository mount: known blob mounts, unknown starts (and cancels) an upload.
    let other = c
        .repository_for_push(&reference(&format!("{}/dst/app:v1", fake.addr)), None)
        .await
        .unwrap();
    assert!(c.mount_blob(&other, &d1.digest, "src/app").await.unwrap());
    let unknown = sha256_digest(b"unknown");
    assert!(!c.mount_blob(&other, &unknown, "src/app").await.unwrap());
    assert!(
        fake.state.lock().unwrap().uploads.is_empty(),
        "the started upload was cancelled"
    );
    let tok = fake.state.lock().unwrap().token_requests.clone();
    assert!(
        tok.iter()
            .any(|q| q.contains("repository%3Asrc%2Fapp%3Apull") && q.contains("dst%2Fapp")),
        "{tok:?}"
    );

    // Tags, paginated by two.
    for t in ["a", "b", "c", "d", "e"] {
        c.put_manifest(&repo, t, MEDIA_DOCKER_MANIFEST, &img.manifest)
            .await
            .unwrap();
    }
    assert_eq!(
        c.list_tags(&repo).await.unwrap(),
        vec!["a", "b", "c", "d", "e"]
    );
}

#[tokio::test]
async fn mirrors_for_docker_hub_names() {
    let fake = Fake::start(AuthMode::None, None).await;
    // A dead mirror first: skipped because it cannot be reached.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let c = RegistryClient::new(RegistryConfig {
        mirrors: vec![
            format!("http://{dead_addr}"),
            format!("http://{}", fake.addr),
        ],
        ..Default::default()
    })
    .unwrap();
    let img = test_image("mirror");
    let local = reference(&format!("{}/library/busybox:latest", fake.addr));
    push(&c, &local, None, &img).await;
    let got = c
        .resolve(&reference("busybox"), &Platform::host(), None)
        .await
        .unwrap();
    assert_eq!(got.digest, sha256_digest(&img.manifest));
    assert_eq!(got.repository.name(), "library/busybox");
    assert_eq!(got.repository.domain(), "docker.io");
    assert!(got.repository.is_mirror());
    // A name the mirror lacks is not found (no fall back to Docker Hub).
    let err = c
        .resolve(&reference("nosuchimage"), &Platform::host(), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        "pull access denied for nosuchimage, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
    );
    let err = c
        .resolve(&reference("busybox:nope"), &Platform::host(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "manifest for busybox:nope not found: manifest unknown: manifest unknown"
    );
}

#[tokio::test]
async fn unreachable_and_tls_errors_in_gos_words() {
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let c = client();
    let err = c
        .resolve(&reference(&format!("{addr}/x")), &Platform::host(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Get \"http://{addr}/v2/\": dial tcp {addr}: connect: connection refused")
    );
    assert_eq!(err.kind(), ErrorKind::Internal);

    // A name that does not resolve.
    let err = c
        .resolve(
            &reference("no-such-host.invalid/x"),
            &Platform::host(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "Get \"https://no-such-host.invalid/v2/\": dial tcp: lookup no-such-host.invalid"
        ),
        "{err}"
    );
    assert!(err.to_string().ends_with(": no such host"), "{err}");

    // HTTPS spoken to a plain-HTTP server (what a registry that is not insecure gets).
    let fake = Fake::start(AuthMode::None, None).await;
    let url = url::Url::parse(&format!("https://{}/v2/", fake.addr)).unwrap();
    let e = c
        .http_for(&fake.addr, crate::endpoint::Security::Secure)
        .get(url.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        crate::error::transport_error(&reqwest::Method::GET, &url, &e).to_string(),
        format!(
            "Get \"https://{}/v2/\": http: server gave HTTP response to HTTPS client",
            fake.addr
        )
    );
}

#[tokio::test]
async fn identity_token_refresh_grant_and_revoked_tokens() {
    let fake = Fake::start(AuthMode::Bearer, Some(("alice", "s3cret"))).await;
    fake.state.lock().unwrap().refresh_token = Some("refresh-xyz".into());
    let c = client();
    let img = test_image("identity");
    let r = reference(&format!("{}/idt/app:v1", fake.addr));
    let auth = AuthConfig {
        identity_token: "refresh-xyz".into(),
        server_address: fake.addr.clone(),
        ..Default::default()
    };
    push(&c, &r, Some(&auth), &img).await;
    {
        let st = fake.state.lock().unwrap();
        assert_eq!(st.token_requests.len(), 1);
        let req = &st.token_requests[0];
        assert!(req.starts_with("POST "), "{req}");
        for part in [
            "grant_type=refresh_token",
            "refresh_token=refresh-xyz",
            "client_id=docker",
            "service=fake",
            "scope=repository%3Aidt%2Fapp%3Apull%2Cpush",
        ] {
            assert!(req.contains(part), "{req} lacks {part}");
        }
    }
    // Tokens revoked on the server: the cached one is refused (invalid_token), a new one
    // is fetched and the request goes through.
    fake.state.lock().unwrap().token_generation += 1;
    pull_and_check(&c, &r, Some(&creds("alice", "s3cret", "")), &img).await;
    let before = c.token_fetches();
    fake.state.lock().unwrap().token_generation += 1;
    let repo = c.repository_for_push(&r, Some(&auth)).await.unwrap();
    assert!(c.blob_exists(&repo, &img.config.0.digest).await.unwrap());
    assert_eq!(c.token_fetches(), before + 1);
    // A wrong refresh token is refused in Docker's words.
    let bad = AuthConfig {
        identity_token: "stale".into(),
        ..auth.clone()
    };
    let repo = c.repository_for_push(&r, Some(&bad)).await.unwrap();
    let err = c
        .blob_exists(&repo, &img.config.0.digest)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        err.to_string(),
        format!(
            "Head \"http://{}/v2/idt/app/blobs/{}\": unauthorized: incorrect username or password",
            fake.addr, img.config.0.digest
        )
    );
}

#[tokio::test]
async fn concurrent_blob_streams_share_the_client() {
    let fake = Fake::start(AuthMode::Bearer, None).await;
    let c = client();
    let r = reference(&format!("{}/many:v1", fake.addr));
    let blobs: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 200_000 + i as usize]).collect();
    let descs: Vec<Descriptor> = blobs
        .iter()
        .map(|b| {
            fake.put_blob(b);
            Descriptor::for_bytes("application/octet-stream", b)
        })
        .collect();
    let repo = c.repository_for_push(&r, None).await.unwrap();
    let tasks: Vec<_> = descs
        .iter()
        .map(|d| {
            let s = c.blob_stream(&repo, d);
            tokio::spawn(collect(s))
        })
        .collect();
    for (t, want) in tasks.into_iter().zip(&blobs) {
        let (got, err) = t.await.unwrap();
        assert!(err.is_none(), "{err:?}");
        assert_eq!(&got, want);
    }
    assert_eq!(c.token_fetches(), 1);
}

#[tokio::test]
async fn host_names_resolving_to_loopback_are_insecure() {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let hostname = hostname.trim();
    let loopback = tokio::net::lookup_host((hostname, 0))
        .await
        .map(|mut a| a.any(|a| a.ip().is_loopback()))
        .unwrap_or(false);
    if hostname.is_empty() || !loopback || hostname.contains('.') {
        eprintln!("skipping: the host name {hostname:?} does not resolve to loopback");
        return;
    }
    let fake = Fake::start(AuthMode::None, None).await;
    let port = fake.addr.rsplit(':').next().unwrap();
    let c = client();
    let img = test_image("hostname");
    // A bare host name needs a port to be a domain.
    let r = reference(&format!("{hostname}:{port}/x:v1"));
    push(&c, &r, None, &img).await;
    let got = pull_and_check(&c, &r, None, &img).await;
    assert_eq!(
        got.repository.endpoint_url(),
        format!("http://{hostname}:{port}")
    );
}

#[tokio::test]
async fn denied_scope_is_dockers_pull_access_denied() {
    let fake = Fake::start(AuthMode::Bearer, None).await;
    fake.state
        .lock()
        .unwrap()
        .denied_repos
        .push("private/thing".into());
    let c = client();
    let r = reference(&format!("{}/private/thing:v1", fake.addr));
    let err = c.resolve(&r, &Platform::host(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        format!("pull access denied for {}/private/thing, repository does not exist or may require 'docker login': denied: requested access to the resource is denied", fake.addr)
    );
    // The token was fetched once: an insufficient scope is not retried with a new token.
    assert_eq!(c.token_fetches(), 1);
    // On push the same answer is the registry's text, as `docker push` prints it.
    let repo = c.repository_for_push(&r, None).await.unwrap();
    let err = c
        .blob_exists(&repo, &sha256_digest(b"x"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "denied: requested access to the resource is denied"
    );
}

/// A TLS server with a self-signed certificate for 127.0.0.1 that answers every request
/// `200 {}`. Returns its address and the certificate (PEM).
async fn tls_server() -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.key_pair.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, ck.cert.pem())
}

#[tokio::test]
async fn tls_verification_certs_dir_and_insecure_https() {
    let (addr, pem) = tls_server().await;
    let url = url::Url::parse(&format!("https://{addr}/v2/")).unwrap();
    let strict = client();
    let e = strict
        .http_for(&addr, crate::endpoint::Security::Secure)
        .get(url.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        crate::error::transport_error(&reqwest::Method::GET, &url, &e).to_string(),
        format!("Get \"https://{addr}/v2/\": tls: failed to verify certificate: x509: certificate signed by unknown authority")
    );

    // The CA in certs_dir/<host:port>/ca.crt makes the same request verify.
    let certs = tempfile::tempdir().unwrap();
    std::fs::create_dir(certs.path().join(&addr)).unwrap();
    std::fs::write(certs.path().join(&addr).join("ca.crt"), &pem).unwrap();
    let with_ca = RegistryClient::new(RegistryConfig {
        certs_dir: Some(certs.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let resp = with_ca
        .http_for(&addr, crate::endpoint::Security::Secure)
        .get(url.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // 127.0.0.1 is insecure: HTTPS without verification answers first, and stays chosen.
    strict.login(&creds("u", "p", &addr)).await.unwrap();
    let scheme = strict.inner.schemes.lock().unwrap().get(&addr).cloned();
    assert_eq!(scheme.as_deref(), Some("https"));
}

#[tokio::test]
async fn tokens_are_reused_until_they_expire() {
    let fake = Fake::start(AuthMode::Bearer, None).await;
    let c = client();
    let d = fake.put_blob(b"layer");
    let r = reference(&format!("{}/exp/app:v1", fake.addr));
    let repo = c.repository_for_push(&r, None).await.unwrap();
    for _ in 0..3 {
        assert!(c.blob_exists(&repo, &d).await.unwrap());
    }
    assert_eq!(c.token_fetches(), 1);
    c.inner.tokens.expire_all();
    assert!(c.blob_exists(&repo, &d).await.unwrap());
    assert!(c.blob_exists(&repo, &d).await.unwrap());
    assert_eq!(c.token_fetches(), 2);
    // Another scope is another token.
    let other = c
        .repository_for_push(&reference(&format!("{}/exp/other:v1", fake.addr)), None)
        .await
        .unwrap();
    assert!(!c
        .blob_exists(&other, &sha256_digest(b"nope"))
        .await
        .unwrap());
    assert_eq!(c.token_fetches(), 3);
}
