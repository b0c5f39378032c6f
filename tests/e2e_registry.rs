//! Pull, push, login and registry settings against a real registry (Debian's
//! `docker-registry` on 127.0.0.1, or on the test daemon's own bridge address), through
//! Berth's CLI and the real Docker CLI.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::registry::{image_id, pushed_digest, RegistryAuth, TestRegistry};
use common::*;

fn assert_store_clean(d: &TestDaemon) {
    let out = d.berth(&["system", "check"]);
    assert_success(&out, "berth system check");
    let tmp = d.root.join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", tmp.display());
}

/// A test image with `n` layers of `size` random bytes each on top of busybox, tagged `name`.
fn layered_image(d: &TestDaemon, name: &str, n: usize, size: usize) {
    d.import_busybox();
    let mut from = "busybox".to_string();
    for i in 0..n {
        let c = format!("mk{}-{i}", rand_suffix());
        let cmd = format!("head -c {size} /dev/urandom > /layer{i}");
        d.berth_ok(&["run", "--name", &c, &from, "sh", "-c", &cmd]);
        let tag = format!("{name}-step{i}");
        d.berth_ok(&["commit", &c, &tag]);
        d.berth_ok(&["rm", &c]);
        from = tag;
    }
    d.berth_ok(&["tag", &from, name]);
}

/// `rmi -f` of every image, children before parents (a parent with children refuses).
fn remove_all_images(d: &TestDaemon) {
    for _ in 0..10 {
        let ids = d.berth_ok(&["images", "-aq"]);
        if ids.trim().is_empty() {
            return;
        }
        for id in ids.split_whitespace() {
            let _ = d.berth(&["rmi", "-f", id]);
        }
    }
    panic!(
        "images left after removing all: {}",
        d.berth_ok(&["images", "-a"])
    );
}

fn rand_suffix() -> String {
    format!(
        "{:06x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            & 0xffffff
    )
}

#[test]
fn push_then_pull_back_identical_by_digest() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let d = TestDaemon::start();
    d.import_busybox();
    let name = format!("{}/test/bb", reg.addr);
    let tagged = format!("{name}:v1");
    d.berth_ok(&["tag", "busybox", &tagged]);
    let original = image_id(&d, &tagged);

    let out = d.berth_ok(&["push", &tagged]);
    assert!(
        out.contains(&format!("The push refers to repository [{name}]")),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let digest = pushed_digest(&out);
    assert!(
        out.contains(&format!("v1: digest: {digest} size: ")),
        "{out}"
    );
    let repo_digests = d.berth_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &tagged,
    ]);
    assert!(
        repo_digests.contains(&format!("{name}@{digest}")),
        "{repo_digests}"
    );

    // Again: the registry has every blob.
    let again = d.berth_ok(&["push", &tagged]);
    assert!(again.contains("Layer already exists"), "{again}");
    assert_eq!(
        pushed_digest(&again),
        digest,
        "a second push must give the same manifest"
    );

    // Into an empty store, by digest: the same image.
    d.berth_ok(&["rmi", "-f", "busybox", &tagged]);
    assert_eq!(d.berth_ok(&["images", "-q"]).trim(), "");
    let by_digest = format!("{name}@{digest}");
    let out = d.berth_ok(&["pull", &by_digest]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {by_digest}")),
        "{out}"
    );
    assert_eq!(image_id(&d, &by_digest), original);

    // By tag: the layers are there now, the tag is new.
    let out = d.berth_ok(&["pull", &tagged]);
    assert!(out.contains("v1: Pulling from test/bb"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {tagged}"))
            || out.contains("Image is up to date"),
        "{out}"
    );
    assert_eq!(image_id(&d, &tagged), original);
    let again = d.berth_ok(&["pull", &tagged]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {tagged}")),
        "{again}"
    );
    let digests = d.berth_ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Tag}} {{.Digest}}",
    ]);
    assert!(
        digests.contains(&format!("{name} v1 {digest}")),
        "{digests}"
    );

    // The pulled image runs.
    let hello = d.berth_ok(&["run", "--rm", &tagged, "echo", "pulled"]);
    assert_eq!(hello.trim(), "pulled");

    // rmi of the last tag also drops the repository's digest reference, as Docker does.
    let out = d.berth_ok(&["rmi", &tagged]);
    assert!(out.contains(&format!("Untagged: {tagged}")), "{out}");
    assert!(out.contains(&format!("Untagged: {by_digest}")), "{out}");
    assert!(out.contains("Deleted: sha256:"), "{out}");
    assert_store_clean(&d);
}

#[test]
fn multi_layer_pull_shares_layers_and_leaves_a_clean_store() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let d = TestDaemon::start();
    let name = format!("{}/test/layers:v1", reg.addr);
    layered_image(&d, &name, 3, 256 * 1024);
    let out = d.berth_ok(&["push", &name]);
    let digest = pushed_digest(&out);
    let original = image_id(&d, &name);
    remove_all_images(&d);
    assert_eq!(d.berth_ok(&["images", "-q"]).trim(), "");
    let out = d.berth_ok(&["pull", &name]);
    assert_eq!(
        out.matches("Pull complete").count(),
        4,
        "busybox + 3 layers:\n{out}"
    );
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert_eq!(image_id(&d, &name), original);
    // A second name for the same repository content: every layer already exists.
    let other = format!("{}/test/layers@{digest}", reg.addr);
    let out = d.berth_ok(&["pull", &other]);
    assert!(!out.contains("Pull complete"), "{out}");
    // The layer chain is intact: the files of every layer are there.
    let ls = d.berth_ok(&["run", "--rm", &name, "ls", "/"]);
    for i in 0..3 {
        assert!(ls.contains(&format!("layer{i}")), "{ls}");
    }
    assert_store_clean(&d);
}

#[test]
fn pull_errors_in_dockers_words_leave_nothing() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let d = TestDaemon::start();
    let missing = format!("{}/nope/nothing:v1", reg.addr);
    let out = d.berth(&["pull", &missing]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("Error response from daemon: "), "{err}");
    assert!(
        err.contains("not found") || err.contains("repository does not exist"),
        "{err}"
    );

    // The same through the API: 404, as docker-py's ImageNotFound expects.
    let (status, _, body) = d.request(
        "POST",
        &format!("/images/create?fromImage={}/nope/nothing&tag=v1", reg.addr),
        None,
    );
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));

    // Nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = d.berth(&["pull", &format!("127.0.0.1:{port}/x:v1")]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("connection refused"),
        "{}",
        stderr(&out)
    );

    let out = d.berth(&["pull", "Not/Valid"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("invalid reference format"),
        "{}",
        stderr(&out)
    );

    assert_eq!(d.berth_ok(&["images", "-q"]).trim(), "");
    assert_store_clean(&d);
}

#[test]
fn run_pulls_a_missing_image() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let d = TestDaemon::start();
    d.import_busybox();
    let name = format!("{}/test/runme", reg.addr);
    d.berth_ok(&["tag", "busybox", &name]);
    d.berth_ok(&["push", &name]);
    d.berth_ok(&["rmi", "-f", "busybox", &name]);
    let out = d.berth(&["run", "--rm", &name, "echo", "from-registry"]);
    assert_success(&out, "run of a missing image");
    assert_eq!(stdout(&out).trim(), "from-registry");
    assert!(
        stderr(&out).contains(&format!("Unable to find image '{name}:latest' locally")),
        "{}",
        stderr(&out)
    );
    let out = d.berth(&[
        "run",
        "--rm",
        "--pull",
        "never",
        &format!("{}/test/absent", reg.addr),
        "true",
    ]);
    assert_ne!(code(&out), 0);
}

fn login_push_pull_logout(auth: RegistryAuth, user: &str, password: &str) -> TestRegistry {
    let reg = TestRegistry::start(auth);
    let d = TestDaemon::start();
    d.import_busybox();
    let name = format!("{}/private/bb:v1", reg.addr);
    d.berth_ok(&["tag", "busybox", &name]);

    let out = d.berth(&["push", &name]);
    assert_ne!(
        code(&out),
        0,
        "push without credentials must fail:\n{}",
        stdout(&out)
    );

    let out = d.berth_with_stdin(
        &["login", "-u", user, "--password-stdin", &reg.addr],
        Some(b"wrong\n"),
    );
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stderr(&out).starts_with("Error response from daemon: "),
        "{}",
        stderr(&out)
    );
    assert!(
        !d.dir.join("docker-config/config.json").exists()
            || !std::fs::read_to_string(d.dir.join("docker-config/config.json"))
                .unwrap()
                .contains(&reg.addr)
    );

    let out = d.berth_with_stdin(
        &["login", "-u", user, "--password-stdin", &reg.addr],
        Some(format!("{password}\n").as_bytes()),
    );
    assert_success(&out, "login");
    assert!(stdout(&out).contains("Login Succeeded"), "{}", stdout(&out));
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.dir.join("docker-config/config.json")).unwrap(),
    )
    .unwrap();
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    assert_eq!(
        config["auths"][&reg.addr]["auth"],
        expected.as_str(),
        "{config}"
    );

    let out = d.berth_ok(&["push", &name]);
    let digest = pushed_digest(&out);
    d.berth_ok(&["rmi", "-f", "busybox", &name]);
    let out = d.berth_ok(&["pull", &name]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");

    let out = d.berth_ok(&["logout", &reg.addr]);
    assert!(
        out.contains(&format!("Removing login credentials for {}", reg.addr)),
        "{out}"
    );
    d.berth_ok(&["rmi", &name]);
    let out = d.berth(&["pull", &name]);
    assert_eq!(code(&out), 1, "pull after logout must fail");
    assert_eq!(d.berth_ok(&["images", "-q"]).trim(), "");
    reg
}

#[test]
fn basic_auth_login_push_pull_logout() {
    login_push_pull_logout(
        RegistryAuth::Basic {
            user: "alice".into(),
            password: "s3cret".into(),
        },
        "alice",
        "s3cret",
    );
}

#[test]
fn token_auth_login_push_pull_logout() {
    let reg = login_push_pull_logout(
        RegistryAuth::Token {
            user: "bob".into(),
            password: "t0ken".into(),
        },
        "bob",
        "t0ken",
    );
    assert!(reg.tokens_issued() > 0, "the Bearer flow was not used");
}

#[test]
fn docker_hub_names_come_from_the_mirror() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let seed = TestDaemon::start();
    seed.import_busybox();
    let mirror_name = format!("{}/library/busybox:latest", reg.addr);
    seed.berth_ok(&["tag", "busybox", &mirror_name]);
    seed.berth_ok(&["push", &mirror_name]);
    drop(seed);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("daemon.json");
    std::fs::write(
        &config,
        format!(r#"{{"registry-mirrors": ["http://{}"]}}"#, reg.addr),
    )
    .unwrap();
    let d = TestDaemon::start_with_args(&["--config-file", config.to_str().unwrap()]);
    let out = d.berth_ok(&["pull", "busybox"]);
    assert!(
        out.contains("latest: Pulling from library/busybox"),
        "{out}"
    );
    assert!(
        out.contains("Status: Downloaded newer image for busybox:latest"),
        "{out}"
    );
    assert!(
        out.trim_end().ends_with("docker.io/library/busybox:latest"),
        "{out}"
    );
    let out = d.berth(&["pull", "nosuchimage"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains("pull access denied for nosuchimage, repository does not exist or may require 'docker login'")
            || err.contains("manifest unknown"),
        "{err}"
    );
    let (status, _, _) = d.request(
        "POST",
        "/images/create?fromImage=nosuchimage&tag=latest",
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn insecure_registry_setting_allows_plain_http_elsewhere_than_localhost() {
    let mut d = TestDaemon::start();
    let gateway = d.bip.replace(".0/24", ".1");
    let reg = TestRegistry::start_on(&gateway, RegistryAuth::Open);
    d.import_busybox();
    let name = format!("{}/test/insecure", reg.addr);
    d.berth_ok(&["tag", "busybox", &name]);
    let out = d.berth(&["push", &name]);
    assert_eq!(
        code(&out),
        1,
        "plain HTTP to {} must be refused by default",
        reg.addr
    );
    assert!(
        stderr(&out).contains("server gave HTTP response to HTTPS client"),
        "{}",
        stderr(&out)
    );

    let config = d.dir.join("daemon.json");
    std::fs::write(
        &config,
        format!(r#"{{"insecure-registries": ["{}"]}}"#, d.bip),
    )
    .unwrap();
    d.stop_daemon(Duration::from_secs(10));
    d.extra_args = vec!["--config-file".into(), config.display().to_string()];
    d.start_daemon();
    d.berth_ok(&["push", &name]);
    d.berth_ok(&["rmi", &name]);
    let out = d.berth_ok(&["pull", &name]);
    assert!(out.contains("Digest: sha256:"), "{out}");
}

#[test]
fn killed_daemon_mid_pull_leaves_no_partial_image() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let mut d = TestDaemon::start();
    let name = format!("{}/test/big:v1", reg.addr);
    layered_image(&d, &name, 2, 48 * 1024 * 1024);
    d.berth_ok(&["push", &name]);
    remove_all_images(&d);

    let mut pull = Command::new(BERTH)
        .args(["-H", &d.host(), "pull", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reader = BufReader::new(pull.stdout.take().unwrap());
    let mut seen = String::new();
    for line in reader.lines().map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("Downloading") || line.contains("Pulling fs layer") {
            break;
        }
    }
    d.kill_daemon();
    let _ = pull.kill();
    let _ = pull.wait();
    assert!(
        seen.contains("Pulling from test/big"),
        "the pull never started:\n{seen}"
    );

    d.start_daemon();
    assert_eq!(
        d.berth_ok(&["images", "-q"]).trim(),
        "",
        "a partial image survived the crash"
    );
    assert_store_clean(&d);
    let out = d.berth_ok(&["pull", &name]);
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
    let ls = d.berth_ok(&["run", "--rm", &name, "ls", "-l", "/layer1"]);
    assert!(ls.contains(&(48 * 1024 * 1024).to_string()), "{ls}");
    assert_store_clean(&d);
}

#[test]
fn docker_cli_pulls_and_pushes_through_berth() {
    if !docker_cli_available() {
        eprintln!("skipped: the Docker CLI is not at {DOCKER_CLI}");
        return;
    }
    let reg = TestRegistry::start(RegistryAuth::Open);
    let d = TestDaemon::start();
    d.import_busybox();
    let name = format!("{}/test/dockercli:v2", reg.addr);
    d.docker_ok(&["tag", "busybox", &name]);
    let out = d.docker_ok(&["push", &name]);
    let digest = pushed_digest(&out);
    d.docker_ok(&["rmi", "busybox", &name]);
    let out = d.docker_ok(&["pull", &name]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(out.trim_end().ends_with(&name), "{out}");
    let out = d.docker_ok(&["images", "--digests", "--format", "{{.Digest}}"]);
    assert_eq!(out.trim(), digest);
}

#[test]
fn pull_all_tags_and_cross_repository_mount() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let d = TestDaemon::start();
    d.import_busybox();
    let a = format!("{}/team/a", reg.addr);
    for tag in ["one", "two"] {
        d.berth_ok(&["tag", "busybox", &format!("{a}:{tag}")]);
    }
    // Without a tag, push sends every tag of the repository.
    let out = d.berth_ok(&["push", "--all-tags", &a]);
    assert!(
        out.contains("one: digest: sha256:") && out.contains("two: digest: sha256:"),
        "{out}"
    );

    // Another repository of the same registry: the layer is mounted, not uploaded again.
    let b = format!("{}/team/b:v1", reg.addr);
    d.berth_ok(&["tag", "busybox", &b]);
    let out = d.berth_ok(&["push", &b]);
    assert!(
        out.contains("Mounted from team/a") || out.contains("Layer already exists"),
        "{out}"
    );
    assert!(
        !out.contains(": Pushed"),
        "the layer was uploaded again:\n{out}"
    );

    remove_all_images(&d);
    let out = d.berth_ok(&["pull", "--all-tags", &a]);
    assert!(
        out.contains("one: Pulling from team/a") && out.contains("two: Pulling from team/a"),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {a}")),
        "{out}"
    );
    let tags = d.berth_ok(&["images", "--format", "{{.Tag}}", &a]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["one", "two"]);
    assert_store_clean(&d);
}

/// `sha256:<hex>` of bytes.
fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Uploads a blob to the registry the way any client does (POST, then PUT with the digest).
fn upload_blob(reg: &TestRegistry, repo: &str, bytes: &[u8]) -> String {
    let digest = digest_of(bytes);
    let out = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "-X", "POST"])
        .arg(format!("http://{}/v2/{repo}/blobs/uploads/", reg.addr))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&out.stdout).to_string();
    let location = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        })
        .unwrap_or_else(|| panic!("no upload location: {headers}"))
        .trim()
        .to_string();
    let url = if location.starts_with('/') {
        format!("http://{}{location}", reg.addr)
    } else {
        location
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let file = reg.dir.path().join("upload.bin");
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-f",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
        ])
        .arg(format!("@{}", file.display()))
        .arg(format!("{url}{sep}digest={digest}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "blob upload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    digest
}

fn put_manifest(reg: &TestRegistry, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
    let file = reg.dir.path().join("manifest.json");
    std::fs::write(&file, body).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-f", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {media_type}"))
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(format!(
            "http://{}/v2/{repo}/manifests/{reference}",
            reg.addr
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "manifest PUT failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An OCI index with an amd64 and an arm64 image whose one layer is zstd-compressed:
/// platform selection, OCI media types and zstd, from a real registry.
#[test]
fn oci_index_with_zstd_layers_and_platform_selection() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let d = TestDaemon::start();
    let repo = "multi/arch";
    let tar = std::fs::read(busybox_tar()).unwrap();
    let diff_id = digest_of(&tar);
    let layer = zstd::encode_all(&tar[..], 3).unwrap();
    let layer_digest = upload_blob(&reg, repo, &layer);
    let mut manifests = Vec::new();
    for (arch, variant) in [("arm64", Some("v8")), ("amd64", None)] {
        let mut config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        });
        if let Some(v) = variant {
            config["variant"] = v.into();
        }
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = upload_blob(&reg, repo, &config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": layer_digest, "size": layer.len()}],
        }))
        .unwrap();
        let manifest_digest = digest_of(&manifest);
        put_manifest(
            &reg,
            repo,
            &manifest_digest,
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        );
        let mut platform = serde_json::json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(), "platform": platform,
        }));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests,
    }))
    .unwrap();
    put_manifest(
        &reg,
        repo,
        "v1",
        "application/vnd.oci.image.index.v1+json",
        &index,
    );

    let name = format!("{}/{repo}:v1", reg.addr);
    let out = d.berth_ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Digest: {}", digest_of(&index))),
        "the RepoDigest is the index's:\n{out}"
    );
    let arch = d.berth_ok(&["image", "inspect", "--format", "{{.Architecture}}", &name]);
    assert_eq!(arch.trim(), "amd64");
    assert_eq!(
        d.berth_ok(&["run", "--rm", &name, "echo", "zstd-ok"])
            .trim(),
        "zstd-ok"
    );

    let out = d.berth_ok(&["pull", "--platform", "linux/arm64", &name]);
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
    let arch = d.berth_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Architecture}}/{{.Variant}}",
        &name,
    ]);
    assert_eq!(arch.trim(), "arm64/v8");

    let out = d.berth(&["pull", "--platform", "linux/s390x", &name]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no matching manifest for linux/s390x in the manifest list entries"),
        "{}",
        stderr(&out)
    );
    assert_store_clean(&d);
}
