//! Hostile archives through every entry point that unpacks one: `load`, `import`, `cp`
//! (`PUT /containers/{id}/archive`), the build context and pull (layers from a registry). Nothing may be read
//! or written outside the store or the container, the daemon stays up, its memory stays
//! bounded and its staging directories are cleaned up. Also: the API socket's mode and group.

mod common;
#[path = "archives/corpus.rs"]
mod corpus;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use common::registry::{RegistryAuth, TestRegistry};
use common::*;
use corpus::{Host, SECRET};

/// One API request with a raw body; returns the status and the response body as text.
fn send(
    d: &TestDaemon,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let t0 = std::time::Instant::now();
    let r = send_inner(d, method, path, content_type, body);
    eprintln!(
        "{method} {path}: {} in {:?}: {}",
        r.0,
        t0.elapsed(),
        r.1.chars().take(200).collect::<String>()
    );
    r
}

fn send_inner(
    d: &TestDaemon,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let mut s = UnixStream::connect(&d.sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: berth\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut w = s.try_clone().unwrap();
    let body = body.to_vec();
    // The daemon may answer before it has read everything: write on the side.
    let writer = std::thread::spawn(move || {
        let _ = w
            .write_all(head.as_bytes())
            .and_then(|_| w.write_all(&body));
    });
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let _ = writer.join();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn ping(d: &TestDaemon, what: &str) {
    let (status, _, body) = d.request("GET", "/_ping", None);
    assert_eq!(
        status,
        200,
        "{what}: the daemon does not answer: {}",
        String::from_utf8_lossy(&body)
    );
}

/// An answer failed: a non-2xx status, or an error in a JSON stream.
fn failed(status: u16, body: &str) -> bool {
    !(200..300).contains(&status)
        || body.contains("\"errorDetail\"")
        || body.contains("\"message\"")
}

/// Every `tmp` directory of the store is empty (no staging litter).
fn assert_no_litter(d: &TestDaemon, what: &str) {
    let mut stack = vec![d.root.clone()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(m) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !m.is_dir() {
                continue;
            }
            if e.file_name() == "tmp"
                && path
                    .parent()
                    .is_some_and(|p| !p.starts_with(d.root.join("containers")))
            {
                let left: Vec<_> = std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.file_name())
                    .collect();
                assert!(
                    left.is_empty(),
                    "{what}: left in {}: {left:?}",
                    path.display()
                );
            } else if path.components().count() < d.root.components().count() + 3 {
                stack.push(path);
            }
        }
    }
}

/// Peak resident memory of the daemon (VmHWM), in MiB.
fn daemon_peak_mib(d: &TestDaemon) -> u64 {
    let pid = d.daemon_pid().expect("daemon pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024
}

/// What every case must leave: an untouched host, a daemon that answers, no litter.
fn after(d: &TestDaemon, host: &Host, what: &str) {
    host.assert_untouched(what);
    ping(d, what);
    assert_no_litter(d, what);
}

fn check_error(what: &str, want: Option<&str>, status: u16, body: &str) {
    if let Some(want) = want {
        assert!(
            failed(status, body),
            "{what}: accepted, want an error with {want:?}: {body}"
        );
        assert!(body.contains(want), "{what}: want {want:?} in: {body}");
    }
}

const PEAK_LIMIT_MIB: u64 = 400;

#[test]
fn hostile_layers_through_import_load_and_cp() {
    let host = Host::new();
    let d = TestDaemon::start();
    d.import_busybox();
    let ctr = d.run_detached(&["busybox", "sleep", "600"]);
    let cases = corpus::layers(&host);
    assert!(
        cases.len() >= 30,
        "the corpus has {} layer cases",
        cases.len()
    );
    for c in &cases {
        // import
        let (status, body) = send(
            &d,
            "POST",
            &format!("/images/create?fromSrc=-&repo=hostile&tag={}", c.name),
            "application/x-tar",
            &c.bytes,
        );
        let what = format!("import {}", c.name);
        check_error(&what, c.error, status, &body);
        after(&d, &host, &what);
        // load: the case is the one layer of a well-formed save archive.
        let save = corpus::save_of_layer(&c.bytes);
        let (status, body) = send(
            &d,
            "POST",
            "/images/load?quiet=1",
            "application/x-tar",
            &save,
        );
        let what = format!("load {}", c.name);
        check_error(&what, c.error, status, &body);
        after(&d, &host, &what);
        // cp into the running container (the tar reader is the tar crate's own there:
        // only the header guard's errors are the same).
        let (status, body) = send(
            &d,
            "PUT",
            &format!("/containers/{ctr}/archive?path=/tmp"),
            "application/x-tar",
            &c.bytes,
        );
        let what = format!("cp {}", c.name);
        let guard_error = c
            .error
            .filter(|e| e.contains("archive/tar") || e.contains("sparse"));
        let compressed = matches!(c.bytes.first(), Some(0x1f) | Some(0x28));
        if !compressed {
            check_error(&what, guard_error, status, &body);
        }
        after(&d, &host, &what);
        // The build context.
        let (status, body) = send(
            &d,
            "POST",
            "/build?dockerfile=Dockerfile",
            "application/x-tar",
            &c.bytes,
        );
        let what = format!("build context {}", c.name);
        // Contexts are plain or gzip (and bzip2, xz), as with dockerd 20.10: no zstd.
        if c.bytes.first() != Some(&0x28) {
            check_error(&what, guard_error, status, &body);
        }
        after(&d, &host, &what);
    }
    // Device nodes and setuid bits copied with cp stay what they are, as with Docker.
    let stat = d.berth_ok(&[
        "exec",
        &ctr,
        "stat",
        "-c",
        "%n %F %t:%T %a",
        "/tmp/zero",
        "/tmp/sda",
        "/tmp/fifo",
        "/tmp/suid",
    ]);
    assert_eq!(
        stat.trim(),
        "/tmp/zero character special file 1:5 666\n/tmp/sda block special file 8:0 660\n/tmp/fifo fifo 0:0 644\n/tmp/suid regular file 0:0 4755",
        "{stat}"
    );
    // The sparse file kept its holes in the container.
    let du = d.berth_ok(&["exec", &ctr, "sh", "-c", "stat -c '%s %b' /tmp/sparse"]);
    let mut it = du.split_whitespace().map(|v| v.parse::<u64>().unwrap());
    let (size, blocks) = (it.next().unwrap(), it.next().unwrap());
    assert_eq!(size, 4 << 30);
    assert!(blocks * 512 < 1 << 20, "holes filled: {blocks} blocks");
    // An imported sparse layer keeps its holes in the store too.
    let sparse = walk_find(&d.root, "sparse");
    assert!(!sparse.is_empty(), "no unpacked sparse file in the store");
    for p in &sparse {
        let m = std::fs::metadata(p).unwrap();
        assert_eq!(m.len(), 4 << 30);
        assert!(
            m.blocks() * 512 < 1 << 20,
            "{}: {} blocks",
            p.display(),
            m.blocks()
        );
    }
    // Not a byte of the host file anywhere in the store, containers included.
    let leaked = corpus::files_containing(&d.dir, SECRET.as_bytes());
    assert!(
        leaked.is_empty(),
        "the host secret was read into {leaked:?}"
    );
    let peak = daemon_peak_mib(&d);
    assert!(peak < PEAK_LIMIT_MIB, "daemon peak RSS {peak} MiB");
    eprintln!(
        "daemon peak RSS after {} cases × 4 entry points: {peak} MiB",
        cases.len()
    );
}

fn walk_find(root: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && e.file_name() == name {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn hostile_save_archives_through_load_import_and_cp() {
    let host = Host::new();
    let d = TestDaemon::start();
    d.import_busybox();
    let ctr = d.run_detached(&["busybox", "sleep", "600"]);
    let cases = corpus::saves(&host);
    for c in &cases {
        let (status, body) = send(
            &d,
            "POST",
            "/images/load?quiet=1",
            "application/x-tar",
            &c.bytes,
        );
        let what = format!("load {}", c.name);
        check_error(&what, Some(c.error), status, &body);
        assert!(!body.contains(SECRET), "{what}: {body}");
        after(&d, &host, &what);
        let (status, body) = send(
            &d,
            "POST",
            &format!("/images/create?fromSrc=-&repo=hostile-save&tag={}", c.name),
            "application/x-tar",
            &c.bytes,
        );
        let what = format!("import {}", c.name);
        let _ = (status, body);
        after(&d, &host, &what);
        let (_, _) = send(
            &d,
            "PUT",
            &format!("/containers/{ctr}/archive?path=/tmp"),
            "application/x-tar",
            &c.bytes,
        );
        after(&d, &host, &format!("cp {}", c.name));
    }
    // No image came from any of them.
    let images = d.berth_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!images.contains("hostile:load"), "{images}");
    // Images made of what was imported and copied hand out nothing of the host either.
    let out = d.berth(&[
        "save",
        "-o",
        d.dir.join("all.tar").to_str().unwrap(),
        "busybox",
    ]);
    assert_success(&out, "save");
    let leaked = corpus::files_containing(&d.dir, SECRET.as_bytes());
    assert!(
        leaked.is_empty(),
        "the host secret was read into {leaked:?}"
    );
    let peak = daemon_peak_mib(&d);
    assert!(peak < PEAK_LIMIT_MIB, "daemon peak RSS {peak} MiB");
}

/// Pushes `layer` (as is: gzip, zstd or plain) as the one layer of `repo:tag`.
fn push_image(reg: &TestRegistry, repo: &str, tag: &str, layer: &[u8]) {
    let (media, tar) = match layer.first() {
        Some(0x1f) => (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            decompress(layer),
        ),
        Some(0x28) => (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            decompress(layer),
        ),
        _ => (
            "application/vnd.oci.image.layer.v1.tar",
            Some(layer.to_vec()),
        ),
    };
    // A layer that does not even decompress gets a made-up diff ID: the pull must still fail safely.
    let diff = sha256(tar.as_deref().unwrap_or(b"undecodable"));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff]},
    }))
    .unwrap();
    let config_digest = upload_blob(reg, repo, &config);
    let layer_digest = upload_blob(reg, repo, layer);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": media, "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let (status, _, body) = http(
        reg,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        "application/vnd.docker.distribution.manifest.v2+json",
        &manifest,
    );
    assert_eq!(status, 201, "manifest: {body}");
}

fn decompress(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let r: Box<dyn Read> = if bytes[0] == 0x1f {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else {
        Box::new(zstd::stream::read::Decoder::new(bytes).ok()?)
    };
    r.take(1 << 30).read_to_end(&mut out).ok()?;
    Some(out)
}

fn sha256(b: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b))
    )
}

fn upload_blob(reg: &TestRegistry, repo: &str, data: &[u8]) -> String {
    let digest = sha256(data);
    let (status, headers, body) = http(
        reg,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        "application/octet-stream",
        b"",
    );
    assert_eq!(status, 202, "upload start: {body}");
    let loc = headers
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.clone())
        .expect("Location");
    let loc = loc
        .split_once("://")
        .map(|(_, r)| r.split_once('/').map(|(_, p)| format!("/{p}")).unwrap())
        .unwrap_or(loc);
    let sep = if loc.contains('?') { '&' } else { '?' };
    let (status, _, body) = http(
        reg,
        "PUT",
        &format!("{loc}{sep}digest={digest}"),
        "application/octet-stream",
        data,
    );
    assert_eq!(status, 201, "upload: {body}");
    digest
}

fn http(
    reg: &TestRegistry,
    method: &str,
    path: &str,
    ct: &str,
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    let mut s = std::net::TcpStream::connect(&reg.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
        reg.addr,
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

#[test]
fn hostile_layers_through_pull() {
    let host = Host::new();
    let reg = TestRegistry::start(RegistryAuth::Open);
    let d = TestDaemon::start();
    let cases = corpus::layers(&host);
    for (i, c) in cases.iter().enumerate() {
        let tag = format!("c{i}");
        push_image(&reg, "hostile", &tag, &c.bytes);
        let reference = format!("{}/hostile:{tag}", reg.addr);
        let out = d.berth(&["pull", "-q", &reference]);
        let what = format!("pull {}", c.name);
        let text = format!("{}{}", stdout(&out), stderr(&out));
        if let Some(want) = c.error {
            assert_ne!(code(&out), 0, "{what}: pulled: {text}");
            assert!(text.contains(want), "{what}: want {want:?} in: {text}");
        }
        after(&d, &host, &what);
    }
    let leaked = corpus::files_containing(&d.dir, SECRET.as_bytes());
    assert!(
        leaked.is_empty(),
        "the host secret was read into {leaked:?}"
    );
    let peak = daemon_peak_mib(&d);
    assert!(peak < PEAK_LIMIT_MIB, "daemon peak RSS {peak} MiB");
}

#[test]
fn the_api_socket_is_0660_and_owned_by_the_docker_group() {
    let docker_gid = std::fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("docker:")
                .and_then(|r| r.split(':').nth(1))
                .and_then(|g| g.parse::<u32>().ok())
        });
    let d = TestDaemon::start();
    let m = std::fs::symlink_metadata(&d.sock).unwrap();
    assert!(m.file_type().is_socket());
    assert_eq!(m.mode() & 0o7777, 0o660);
    assert_eq!(m.uid(), 0);
    // Where the group exists it owns the socket; else the daemon's own group does.
    assert_eq!(m.gid(), docker_gid.unwrap_or(0));
    drop(d);
    let d = TestDaemon::start_with_args(&["--group", "nogroup"]);
    let m = std::fs::symlink_metadata(&d.sock).unwrap();
    assert_eq!((m.mode() & 0o7777, m.gid()), (0o660, 65534));
    drop(d);
    // A group that does not exist stops the daemon before it does anything, in dockerd's words.
    let t = tempfile::Builder::new()
        .prefix("be2e-sockgroup-")
        .tempdir()
        .unwrap();
    let sock = t.path().join("s.sock");
    let mut cmd = std::process::Command::new(BERTH);
    cmd.args(["daemon", "-H", &format!("unix://{}", sock.display())])
        .arg("--root")
        .arg(t.path().join("root"))
        .arg("--exec-root")
        .arg(t.path().join("run"))
        .args([
            "--bridge-name",
            "none",
            "--config-file",
            "/dev/null",
            "-G",
            "no-such-group-berth",
        ]);
    let out = run_with_timeout(
        cmd,
        None,
        Duration::from_secs(30),
        "daemon with a missing group",
    );
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("failed to load listeners: group no-such-group-berth not found"),
        "{}",
        stderr(&out)
    );
    assert!(!sock.exists());
    assert!(
        !t.path().join("root").exists(),
        "state was made before the group check"
    );
}
