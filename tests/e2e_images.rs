//! Images end to end (issue 3): listing and formats, dangling images, rmi semantics,
//! history, commit, prune, system df, save/load, export/import, concurrency with the
//! store check, and a round trip through a real Docker daemon when one is installed.

mod common;

use common::*;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// Lines of stdout, trimmed of trailing blanks.
fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Entry names of a tar file (`tar -tf`), without `./` or a trailing `/`.
fn tar_names(path: &Path) -> Vec<String> {
    let mut cmd = std::process::Command::new("tar");
    cmd.arg("-tf").arg(path);
    let out = run_with_timeout(cmd, None, CMD_TIMEOUT, "tar -tf");
    assert_success(&out, "tar -tf");
    stdout(&out)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Number of unpacked layers in the daemon's store.
fn layer_dirs(d: &TestDaemon) -> usize {
    fs::read_dir(d.root.join("layers"))
        .map(|r| r.count())
        .unwrap_or(0)
}

fn assert_store_consistent(d: &TestDaemon) {
    let out = d.berth(&["system", "check"]);
    assert_success(&out, "berth system check");
    assert_eq!(stdout(&out).trim(), "image store is consistent");
}

fn image_id(d: &TestDaemon, name: &str) -> String {
    d.berth_ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

/// Imports the busybox rootfs once more with another config (same layer, new image ID).
fn import_variant(d: &TestDaemon, change: &str, reference: &str) -> String {
    let tar = busybox_tar();
    d.berth_ok(&["import", "-c", change, tar.to_str().unwrap(), reference])
        .trim()
        .to_string()
}

#[test]
fn images_flags_formats_and_dangling_after_a_tag_moves() {
    let d = TestDaemon::start();
    d.import_busybox();
    let old = image_id(&d, "busybox");
    let new = import_variant(&d, "ENV MOVED=1", "busybox:latest");
    assert_ne!(old, new);

    let table = d.berth_ok(&["images"]);
    let rows = lines(&table);
    assert!(
        rows[0].starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{table}"
    );
    assert!(rows[0].ends_with("SIZE"), "{table}");
    assert_eq!(rows.len(), 3, "{table}");
    let short = |id: &str| id.trim_start_matches("sha256:")[..12].to_string();
    assert!(
        rows.iter()
            .any(|r| r.starts_with("busybox") && r.contains(&short(&new))),
        "{table}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("<none>       <none>") && r.contains(&short(&old))),
        "{table}"
    );

    assert_eq!(
        lines(&d.berth_ok(&["images", "-q", "--filter", "dangling=true"])),
        vec![short(&old)]
    );
    assert_eq!(
        lines(&d.berth_ok(&["images", "-q", "--filter", "dangling=false"])),
        vec![short(&new)]
    );
    assert_eq!(
        lines(&d.berth_ok(&["images", "--no-trunc", "-q", "busy*"])),
        vec![new.clone()]
    );
    assert_eq!(
        lines(&d.berth_ok(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            "reference=busybox"
        ])),
        vec!["busybox:latest"]
    );
    let json = d.berth_ok(&["images", "--format", "json", "busybox"]);
    let v: serde_json::Value =
        serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["Repository"], "busybox");
    assert_eq!(v["ID"], short(&new));
    let t = d.berth_ok(&["images", "--format", "table {{.ID}}\t{{.Tag}}", "busybox"]);
    assert_eq!(
        lines(&t),
        vec![
            "IMAGE ID       TAG".to_string(),
            format!("{}   latest", short(&new))
        ]
    );
}

#[test]
fn rmi_untags_refuses_and_forces_like_docker_and_keeps_shared_layers() {
    let d = TestDaemon::start();
    d.import_busybox();
    let id = image_id(&d, "busybox");
    let short = id.trim_start_matches("sha256:")[..12].to_string();
    d.berth_ok(&["tag", "busybox", "a:1"]);
    d.berth_ok(&["tag", "busybox", "b:2"]);

    // One of several tags: only untagged.
    assert_eq!(lines(&d.berth_ok(&["rmi", "a:1"])), vec!["Untagged: a:1"]);
    // By ID with several repositories: refused unless forced.
    let out = d.berth(&["rmi", &short]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out).trim(),
        format!("Error response from daemon: conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")
    );

    // In use by a container: refused with Docker's message.
    let c = d.berth_ok(&["create", "b:2", "true"]).trim().to_string();
    d.berth_ok(&["rmi", "busybox"]);
    let out = d.berth(&["rmi", "b:2"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "Error response from daemon: conflict: unable to remove repository reference \"b:2\" (must force) - container {} is using its referenced image {short}",
            &c[..12]
        )
    );

    // A commit on top shares the base layer: removing it keeps the base layer on disk.
    d.berth_ok(&["run", "--name", "wr", "b:2", "sh", "-c", "echo hi > /hello"]);
    let snap = d.berth_ok(&["commit", "wr", "snap:1"]).trim().to_string();
    assert_eq!(layer_dirs(&d), 2);
    let out = d.berth_ok(&["rm", "wr"]);
    assert!(!out.is_empty());
    let removed = lines(&d.berth_ok(&["rmi", "snap:1"]));
    assert_eq!(removed[0], "Untagged: snap:1");
    assert_eq!(removed[1], format!("Deleted: {snap}"));
    assert_eq!(removed.len(), 3, "the image and its own layer: {removed:?}");
    assert_eq!(layer_dirs(&d), 1, "the base layer stays");

    // Several at once; -f deletes an image used by a stopped container.
    d.berth_ok(&["tag", "b:2", "c:3"]);
    let out = lines(&d.berth_ok(&["rmi", "-f", "b:2", "c:3"]));
    assert_eq!(out[0], "Untagged: b:2");
    assert_eq!(out[1], "Untagged: c:3");
    assert_eq!(out[2], format!("Deleted: {id}"));
    assert_eq!(lines(&d.berth_ok(&["images", "-q"])), Vec::<String>::new());
    d.berth_ok(&["rm", &c]);
    assert_eq!(layer_dirs(&d), 0);
    assert_store_consistent(&d);
}

#[test]
fn commit_shows_the_change_and_history_shows_the_comment() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.berth_ok(&[
        "run",
        "--name",
        "ctr",
        "busybox",
        "sh",
        "-c",
        "echo hello-layer > /hello; rm /bin/vi",
    ]);
    let id = d.berth_ok(&[
        "commit",
        "-a",
        "Berth Tester <t@example.com>",
        "-m",
        "added hello",
        "-c",
        "ENV FOO=bar",
        "ctr",
        "snap:1",
    ]);
    let id = id.trim();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "commit printed {id:?}"
    );
    assert_eq!(
        d.berth_ok(&["run", "--rm", "snap:1", "cat", "/hello"])
            .trim(),
        "hello-layer"
    );
    assert_eq!(
        d.berth_ok(&[
            "run",
            "--rm",
            "snap:1",
            "sh",
            "-c",
            "test -e /bin/vi && echo yes || echo no"
        ])
        .trim(),
        "no"
    );
    assert_eq!(
        d.berth_ok(&["run", "--rm", "snap:1", "sh", "-c", "echo $FOO"])
            .trim(),
        "bar"
    );
    let author = d.berth_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Author}}|{{.Comment}}",
        "snap:1",
    ]);
    assert_eq!(author.trim(), "Berth Tester <t@example.com>|added hello");

    let hist = d.berth_ok(&[
        "history",
        "--format",
        "{{.Comment}}|{{.CreatedBy}}",
        "snap:1",
    ]);
    let rows = lines(&hist);
    assert_eq!(rows.len(), 2, "{hist}");
    assert!(rows[0].starts_with("added hello|"), "{hist}");
    // The parent loses its tag but has a child: it stays as an intermediate image,
    // hidden from `images` and shown by `images -a`.
    let base = image_id(&d, "busybox");
    d.berth_ok(&["rm", "ctr"]);
    assert_eq!(
        lines(&d.berth_ok(&["rmi", "busybox"])),
        vec!["Untagged: busybox:latest"]
    );
    let short = base.trim_start_matches("sha256:")[..12].to_string();
    assert!(!d.berth_ok(&["images", "-q"]).contains(&short));
    assert!(d.berth_ok(&["images", "-a", "-q"]).contains(&short));
    let table = d.berth_ok(&["history", "snap:1"]);
    assert!(
        lines(&table)[0].starts_with("IMAGE          CREATED"),
        "{table}"
    );
    assert!(table.contains("added hello"), "{table}");
    assert_store_consistent(&d);
}

/// Parses the `system df` table into (type, total, active, size, reclaimable).
fn df_rows(text: &str) -> Vec<Vec<String>> {
    lines(text)
        .iter()
        .skip(1)
        .map(|l| {
            let cells: Vec<String> = l
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            cells
        })
        .collect()
}

fn human_to_bytes(s: &str) -> f64 {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().unwrap_or_else(|_| panic!("size {s:?}"));
    n * match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unit {other:?}"),
    }
}

#[test]
fn system_df_counts_a_shared_layer_once_and_prune_reclaims() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.berth_ok(&[
        "run",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo one > /one",
    ]);
    d.berth_ok(&[
        "run",
        "--name",
        "c2",
        "busybox",
        "sh",
        "-c",
        "echo two > /two",
    ]);
    d.berth_ok(&["commit", "c1", "one:1"]);
    d.berth_ok(&["commit", "c2", "two:1"]);

    let sizes: Vec<f64> = lines(&d.berth_ok(&["images", "--format", "{{.Size}}"]))
        .iter()
        .map(|s| human_to_bytes(s))
        .collect();
    assert_eq!(sizes.len(), 3);
    let text = d.berth_ok(&["system", "df"]);
    let header = lines(&text)[0].clone();
    assert_eq!(
        header,
        "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE"
    );
    let rows = df_rows(&text);
    assert_eq!(
        rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        vec!["Images", "Containers", "Local Volumes", "Build Cache"]
    );
    assert_eq!(rows[0][1], "3");
    assert_eq!(rows[0][2], "1", "busybox is used by c1 and c2: {text}");
    let df_size = human_to_bytes(&rows[0][3]);
    let busybox = sizes.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        df_size < busybox * 1.1,
        "the shared busybox layer counts once: df {df_size}, images {sizes:?}\n{text}"
    );
    assert!(rows[0][4].ends_with("%)"), "{text}");
    assert_eq!(rows[1][1], "2");
    assert_eq!(rows[1][2], "0");
    assert_eq!(rows[2], vec!["Local Volumes", "0", "0", "0B", "0B"]);
    assert_eq!(rows[3], vec!["Build Cache", "0", "0", "0B", "0B"]);

    let v = d.berth_ok(&["system", "df", "-v"]);
    assert!(v.starts_with("Images space usage:\n\nREPOSITORY"), "{v}");
    assert!(v.contains("SHARED SIZE"), "{v}");
    assert!(
        v.contains("\nContainers space usage:\n\nCONTAINER ID"),
        "{v}"
    );
    assert!(
        v.contains("\nLocal Volumes space usage:\n\nVOLUME NAME"),
        "{v}"
    );
    assert!(v.contains("\nBuild cache usage: 0B\n"), "{v}");
    let json = d.berth_ok(&["system", "df", "--format", "{{json .}}"]);
    assert_eq!(lines(&json).len(), 4);

    // A dangling image, then prune: only it goes; -a takes unused tagged images too.
    import_variant(&d, "ENV X=1", "two:1");
    let out = d.berth_ok(&["image", "prune", "-f"]);
    assert!(
        out.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{out}"
    );
    assert!(out.contains("\n\nTotal reclaimed space: "), "{out}");
    d.berth_ok(&["rm", "c1", "c2"]);
    let out = d.berth_ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: one:1\n"), "{out}");
    assert!(out.contains("untagged: busybox:latest\n"), "{out}");
    assert_eq!(lines(&d.berth_ok(&["images", "-q"])), Vec::<String>::new());
    assert_eq!(layer_dirs(&d), 0);
    assert_eq!(
        d.berth_ok(&["image", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    assert_store_consistent(&d);
}

#[test]
fn save_and_load_round_trip_keeps_ids_history_config_and_tags() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.berth_ok(&[
        "run",
        "--name",
        "ctr",
        "busybox",
        "sh",
        "-c",
        "echo saved > /saved",
    ]);
    d.berth_ok(&[
        "commit",
        "-m",
        "save me",
        "-c",
        "CMD [\"cat\", \"/saved\"]",
        "ctr",
        "snap:1",
    ]);
    d.berth_ok(&["rm", "ctr"]);
    let snap = image_id(&d, "snap:1");
    let base = image_id(&d, "busybox");
    let hist_before = d.berth_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Comment}}",
        "snap:1",
    ]);

    let archive = d.dir.join("images.tar");
    assert_eq!(
        d.berth_ok(&["save", "-o", archive.to_str().unwrap(), "snap:1", "busybox"]),
        ""
    );
    let names = tar_names(&archive);
    for n in ["manifest.json", "index.json", "oci-layout"] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }

    d.berth_ok(&["rmi", "snap:1", "busybox"]);
    assert_eq!(layer_dirs(&d), 0);
    let out = d.berth_ok(&["load", "-i", archive.to_str().unwrap()]);
    let mut loaded = lines(&out);
    loaded.sort();
    assert_eq!(
        loaded,
        vec!["Loaded image: busybox:latest", "Loaded image: snap:1"]
    );
    assert_eq!(image_id(&d, "snap:1"), snap);
    assert_eq!(image_id(&d, "busybox"), base);
    assert_eq!(
        d.berth_ok(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Comment}}",
            "snap:1"
        ]),
        hist_before
    );
    assert_eq!(d.berth_ok(&["run", "--rm", "snap:1"]).trim(), "saved");
    assert_eq!(layer_dirs(&d), 2);

    // Through stdout and stdin.
    let out = d.berth(&["save", "snap:1"]);
    assert_success(&out, "berth save to stdout");
    d.berth_ok(&["rmi", "snap:1"]);
    let out = d.berth_with_stdin(&["load"], Some(&out.stdout));
    assert_success(&out, "berth load from stdin");
    assert_eq!(stdout(&out).trim(), "Loaded image: snap:1");
    assert_eq!(image_id(&d, "snap:1"), snap);

    // A save archive given to import is refused with a hint, and leaves nothing.
    let out = d.berth(&["import", archive.to_str().unwrap(), "wrong:1"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("docker save") && stderr(&out).contains("load"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        d.berth(&["image", "inspect", "wrong:1"]).status.code(),
        Some(1)
    );
    assert_store_consistent(&d);
}

/// `sha256:<hex>` of a file, by `sha256sum`.
fn file_digest(path: &Path) -> String {
    let mut cmd = std::process::Command::new("sha256sum");
    cmd.arg(path);
    let out = run_with_timeout(cmd, None, CMD_TIMEOUT, "sha256sum");
    assert_success(&out, "sha256sum");
    format!(
        "sha256:{}",
        stdout(&out).split_whitespace().next().unwrap_or_default()
    )
}

/// Writes `bytes` as `blobs/sha256/<hex>` under `dir`; returns the digest.
fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let tmp = dir.join("blob.tmp");
    fs::write(&tmp, bytes).unwrap();
    let digest = file_digest(&tmp);
    fs::rename(
        &tmp,
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    digest
}

/// Builds, by hand, the archive `docker save x:v1` writes since Docker 25 for a one-layer
/// image of the busybox rootfs: the OCI layout (`oci-layout`, `index.json` with the
/// containerd and OCI name annotations, `blobs/sha256/` holding the layer, config and
/// OCI manifest) plus, when `with_docker_files`, `manifest.json` and `repositories`.
/// Returns the archive path and the config digest (the image ID).
fn docker25_archive(
    d: &TestDaemon,
    name: &str,
    with_docker_files: bool,
) -> (std::path::PathBuf, String) {
    let dir = d.dir.join(format!("{name}-layout"));
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let layer = fs::read(busybox_tar()).unwrap();
    let diff_id = put_blob(&dir, &layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:06Z",
        "config": {"Cmd": ["sh", "-c", "echo from-oci-archive"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [
            {"created": "2024-01-02T03:04:05Z", "created_by": "/bin/sh -c #(nop) ADD file:busybox in /"},
            {"created": "2024-01-02T03:04:06Z", "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true},
        ],
    }))
    .unwrap();
    let config_digest = put_blob(&dir, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": diff_id, "size": layer.len()}],
    }))
    .unwrap();
    let manifest_digest = put_blob(&dir, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"io.containerd.image.name": "docker.io/library/x:v1", "org.opencontainers.image.ref.name": "v1"},
        }],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut entries = vec!["blobs", "index.json", "oci-layout"];
    if with_docker_files {
        let hex = |s: &str| s.trim_start_matches("sha256:").to_string();
        let m = serde_json::json!([{"Config": format!("blobs/sha256/{}", hex(&config_digest)), "RepoTags": ["x:v1"],
            "Layers": [format!("blobs/sha256/{}", hex(&diff_id))]}]);
        fs::write(dir.join("manifest.json"), serde_json::to_vec(&m).unwrap()).unwrap();
        // One layer: its chain ID is its diff ID.
        fs::write(
            dir.join("repositories"),
            serde_json::to_vec(&serde_json::json!({"x": {"v1": hex(&diff_id)}})).unwrap(),
        )
        .unwrap();
        entries.extend(["manifest.json", "repositories"]);
    }
    let archive = d.dir.join(format!("{name}.tar"));
    let mut cmd = std::process::Command::new("tar");
    cmd.arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&dir)
        .args(&entries);
    let out = run_with_timeout(cmd, None, CMD_TIMEOUT, "tar -cf");
    assert_success(&out, "tar -cf");
    (archive, config_digest)
}

#[test]
fn load_takes_docker25_oci_archives_with_and_without_manifest_json() {
    let d = TestDaemon::start();
    for (name, with_docker_files) in [("docker25", true), ("pure-oci", false)] {
        let (archive, id) = docker25_archive(&d, name, with_docker_files);
        let out = d.berth_ok(&["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(out.trim(), "Loaded image: x:v1", "{name}");
        assert_eq!(image_id(&d, "x:v1"), id, "{name}");
        assert_eq!(
            lines(&d.berth_ok(&[
                "history",
                "--no-trunc",
                "--format",
                "{{.CreatedBy}}",
                "x:v1"
            ])),
            vec![
                "/bin/sh -c #(nop)  CMD [\"sh\"]",
                "/bin/sh -c #(nop) ADD file:busybox in /"
            ],
            "{name}"
        );
        assert_eq!(
            d.berth_ok(&["run", "--rm", "x:v1"]).trim(),
            "from-oci-archive",
            "{name}"
        );
        assert_eq!(
            d.berth_ok(&["run", "--rm", "x:v1", "ls", "/bin/busybox"])
                .trim(),
            "/bin/busybox",
            "{name}"
        );
        d.berth_ok(&["rmi", "x:v1"]);
        assert_eq!(layer_dirs(&d), 0, "{name}");
    }
    assert_store_consistent(&d);
}

/// Serves `body` once over HTTP on 127.0.0.1; returns the URL.
fn serve_once(body: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(&body);
    });
    (format!("http://127.0.0.1:{port}/rootfs.tar"), h)
}

#[test]
fn export_flattens_and_import_takes_files_urls_and_changes() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.berth_ok(&[
        "run",
        "--name",
        "ctr",
        "busybox",
        "sh",
        "-c",
        "echo flat > /newfile; rm /bin/vi; mkdir -p /etc/x",
    ]);
    let out_tar = d.dir.join("export.tar");
    assert_eq!(
        d.berth_ok(&["export", "-o", out_tar.to_str().unwrap(), "ctr"]),
        ""
    );
    let names = tar_names(&out_tar);
    assert!(names.iter().any(|n| n == "newfile"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/sh"), "{names:?}");
    assert!(
        !names.iter().any(|n| n == "bin/vi"),
        "deleted file exported: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains(".wh.")),
        "whiteouts exported: {names:?}"
    );
    // Same bytes through stdout.
    let out = d.berth(&["export", "ctr"]);
    assert_success(&out, "berth export to stdout");
    assert_eq!(
        out.stdout.len() as u64,
        fs::metadata(&out_tar).unwrap().len()
    );
    assert!(
        grep_mounts(&d).is_empty(),
        "export left mounts: {:?}",
        grep_mounts(&d)
    );

    // import: file, with changes and a message.
    d.berth_ok(&[
        "import",
        "-c",
        "CMD [\"cat\", \"/newfile\"]",
        "-c",
        "WORKDIR /etc",
        "-m",
        "flattened",
        out_tar.to_str().unwrap(),
        "flat:1",
    ]);
    assert_eq!(d.berth_ok(&["run", "--rm", "flat:1"]).trim(), "flat");
    assert_eq!(d.berth_ok(&["run", "--rm", "flat:1", "pwd"]).trim(), "/etc");
    assert_eq!(
        d.berth_ok(&[
            "run",
            "--rm",
            "flat:1",
            "sh",
            "-c",
            "test -e /bin/vi && echo yes || echo no"
        ])
        .trim(),
        "no"
    );
    let hist = lines(&d.berth_ok(&["history", "--format", "{{.Comment}}", "flat:1"]));
    assert_eq!(hist, vec!["flattened"]);

    // import: stdin.
    let bytes = fs::read(&out_tar).unwrap();
    let out = d.berth_with_stdin(&["import", "-", "stdin:1"], Some(&bytes));
    assert_success(&out, "berth import -");
    assert_eq!(image_id(&d, "stdin:1"), stdout(&out).trim());

    // import: URL, fetched by the daemon.
    let (url, server) = serve_once(bytes);
    let out = d.berth_ok(&["import", &url, "url:1"]);
    server.join().unwrap();
    assert_eq!(image_id(&d, "url:1"), out.trim());
    assert_eq!(
        d.berth_ok(&["run", "--rm", "url:1", "cat", "/newfile"])
            .trim(),
        "flat"
    );
    // An unreachable URL is an error and leaves nothing.
    let out = d.berth(&["import", "http://127.0.0.1:9/none.tar", "none:1"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_store_consistent(&d);
}

fn grep_mounts(d: &TestDaemon) -> Vec<std::path::PathBuf> {
    mounts_under(&d.root)
        .into_iter()
        .filter(|m| !m.starts_with(d.root.join("containers")))
        .collect()
}

#[test]
fn parallel_imports_commits_and_removals_leave_a_consistent_store() {
    let d = TestDaemon::start();
    d.import_busybox();
    let host = d.host();
    let tar = busybox_tar().to_str().unwrap().to_string();
    // TestDaemon is not shared across threads: each thread runs the CLI itself.
    let berth = |args: &[&str]| {
        let mut cmd = std::process::Command::new(BERTH);
        cmd.arg("-H")
            .arg(&host)
            .args(args)
            .env_remove("DOCKER_HOST");
        let out = run_with_timeout(cmd, None, CMD_TIMEOUT, &format!("berth {}", args.join(" ")));
        assert_success(&out, &format!("berth {}", args.join(" ")));
    };
    std::thread::scope(|s| {
        for i in 0..10 {
            let (berth, tar) = (&berth, &tar);
            s.spawn(move || {
                berth(&[
                    "import",
                    "-c",
                    &format!("ENV I={i}"),
                    tar,
                    &format!("imp:{i}"),
                ]);
                berth(&["create", "--name", &format!("ctr{i}"), "busybox", "true"]);
                berth(&[
                    "commit",
                    "-m",
                    &format!("commit {i}"),
                    &format!("ctr{i}"),
                    &format!("com:{i}"),
                ]);
                if i % 2 == 0 {
                    berth(&["rmi", &format!("imp:{i}")]);
                    berth(&["rm", &format!("ctr{i}")]);
                    berth(&["rmi", &format!("com:{i}")]);
                }
            });
        }
    });
    let d = &d;
    assert_store_consistent(d);
    assert_eq!(lines(&d.berth_ok(&["images", "-q"])).len(), 11);
    assert_eq!(layer_dirs(d), 1, "every image shares the busybox layer");
    for i in (1..10).step_by(2) {
        d.berth_ok(&["rm", &format!("ctr{i}")]);
    }
    d.berth_ok(&["image", "prune", "-a", "-f"]);
    assert_store_consistent(d);
    assert_eq!(layer_dirs(d), 0);
    assert_eq!(
        fs::read_dir(d.root.join("blobs/sha256")).unwrap().count(),
        0
    );
}

/// Table cells of `text` without the relative times (`2 seconds ago`), which may tick
/// between two commands and change the column widths with them, rows after the first
/// sorted: Docker's CLI prints the repositories of one image in Go's random map order.
fn without_times(text: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty() && !c.ends_with(" ago"))
                .map(str::to_string)
                .collect()
        })
        .collect();
    if rows.len() > 2 {
        rows[1..].sort();
    }
    rows
}

/// The Docker CLI against Berth prints what Berth's CLI prints for the image commands.
#[test]
fn docker_cli_gives_the_same_output_for_image_commands() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&["run", "--name", "ctr", "busybox", "sh", "-c", "echo x > /x"]);
    let id = d.docker_ok(&["commit", "-m", "by docker", "ctr", "snap:1"]);
    assert_eq!(id.trim(), image_id(&d, "snap:1"));
    d.berth_ok(&["tag", "snap:1", "other:2"]);
    for args in [
        &["images"][..],
        &["images", "-a", "--no-trunc"],
        &["images", "--format", "{{.Repository}}\t{{.Tag}}\t{{.Size}}"],
        &["images", "--filter", "reference=snap"],
        &["history", "snap:1"],
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Comment}}",
            "snap:1",
        ],
        &["system", "df"],
        &["system", "df", "--format", "{{json .}}"],
    ] {
        let (mut docker, mut berth) = (
            without_times(&d.docker_ok(args)),
            without_times(&d.berth_ok(args)),
        );
        if args.contains(&"--format") {
            // No header row: the Docker CLI lists an image's tags in Go map order (random).
            docker.sort();
            berth.sort();
        }
        assert_eq!(docker, berth, "docker vs berth: {args:?}");
    }
    // save with Docker's CLI, load with Berth's, and back.
    let archive = d.dir.join("d.tar");
    d.docker_ok(&["save", "-o", archive.to_str().unwrap(), "snap:1"]);
    d.berth_ok(&["rmi", "other:2"]);
    d.docker_ok(&["rm", "ctr"]);
    d.docker_ok(&["rmi", "snap:1"]);
    assert_eq!(
        d.docker_ok(&["load", "-i", archive.to_str().unwrap()])
            .trim(),
        "Loaded image: snap:1"
    );
    assert_eq!(id.trim(), image_id(&d, "snap:1"));
    d.docker_ok(&["create", "--name", "ctr2", "snap:1", "true"]);
    let out = d.docker(&["export", "ctr2"]);
    assert_success(&out, "docker export");
    assert_eq!(out.stdout.len(), d.berth(&["export", "ctr2"]).stdout.len());
    d.docker_ok(&["rm", "ctr2"]);
    let pruned = d.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(
        pruned.starts_with("Deleted Images:\nuntagged: busybox:latest\n")
            || pruned.contains("untagged: snap:1"),
        "{pruned}"
    );
    assert_eq!(d.docker_ok(&["images", "-q"]), "");
    assert_store_consistent(&d);
}

// ---- a round trip through a real Docker daemon ---------------------------------------------

const DOCKERD: &str = "/usr/sbin/dockerd";

/// A private dockerd (own data root, exec root and socket), stopped and its mounts
/// removed on drop, also when the test fails.
struct Dockerd {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Dockerd {
    fn start() -> Option<Dockerd> {
        let dir = tempfile::Builder::new()
            .prefix("bdkr-")
            .tempdir_in("/tmp")
            .ok()?;
        let p = dir.path();
        let log = fs::File::create(p.join("dockerd.log")).ok()?;
        let child = std::process::Command::new(DOCKERD)
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--ip-masq=false",
            ])
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", p.join("docker.sock").display()))
            .env("DOCKER_CONFIG", p.join("cfg"))
            .stdout(log.try_clone().ok()?)
            .stderr(log)
            .spawn()
            .ok()?;
        let d = Dockerd { dir, child };
        let up = wait_until(Duration::from_secs(60), || {
            d.docker(&["version", "--format", "{{.Server.Version}}"])
                .status
                .success()
        });
        if !up {
            eprintln!(
                "dockerd did not come up:\n{}",
                fs::read_to_string(d.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            return None;
        }
        Some(d)
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = std::process::Command::new(DOCKER_CLI);
        cmd.args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.dir.path().join("docker.sock").display()),
            )
            .env("DOCKER_CONFIG", self.dir.path().join("cfg"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        run_with_timeout(
            cmd,
            None,
            CMD_TIMEOUT,
            &format!("docker {}", args.join(" ")),
        )
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        signal(self.child.id() as i32, libc::SIGTERM);
        let stopped = wait_until(Duration::from_secs(20), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // Its own containerd (started by dockerd, pid file under the exec root) goes too.
        for pidfile in [
            "exec/containerd/containerd.pid",
            "data/containerd/daemon/io.containerd.runtime.v2.task/pid",
        ] {
            if let Ok(pid) = fs::read_to_string(self.dir.path().join(pidfile)) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    if pid_alive(pid) {
                        signal(pid, libc::SIGKILL);
                    }
                }
            }
        }
        let mut mounts = mounts_under(self.dir.path());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for m in mounts {
            if let Ok(c) = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()) {
                // SAFETY: a valid C string; lazy unmount of a dockerd mount under its temp dir.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

#[test]
fn round_trip_through_real_docker() {
    if !Path::new(DOCKERD).exists() || !docker_cli_available() {
        eprintln!("SKIPPED: dockerd ({DOCKERD}) or the Docker CLI ({DOCKER_CLI}) is not installed");
        return;
    }
    let d = TestDaemon::start();
    d.import_busybox();
    d.berth_ok(&[
        "run",
        "--name",
        "ctr",
        "busybox",
        "sh",
        "-c",
        "echo via-docker > /msg",
    ]);
    d.berth_ok(&[
        "commit",
        "-m",
        "round trip",
        "-c",
        "CMD [\"cat\", \"/msg\"]",
        "ctr",
        "trip:1",
    ]);
    let id = image_id(&d, "trip:1");
    let hist = d.berth_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Comment}} {{.CreatedBy}}",
        "trip:1",
    ]);
    let config = d.berth_ok(&["image", "inspect", "--format", "{{json .Config}}", "trip:1"]);
    let from_berth = d.dir.join("from-berth.tar");
    d.berth_ok(&["save", "-o", from_berth.to_str().unwrap(), "trip:1"]);

    let Some(docker) = Dockerd::start() else {
        eprintln!("SKIPPED: dockerd could not start here");
        return;
    };
    let out = docker.docker(&["load", "-i", from_berth.to_str().unwrap()]);
    assert_success(&out, "docker load of berth's archive");
    assert!(
        stdout(&out).contains("Loaded image: trip:1"),
        "{}",
        stdout(&out)
    );
    let out = docker.docker(&["image", "inspect", "--format", "{{.Id}}", "trip:1"]);
    assert_success(&out, "docker image inspect");
    assert_eq!(stdout(&out).trim(), id, "Docker computes the same image ID");
    let from_docker = d.dir.join("from-docker.tar");
    assert_success(
        &docker.docker(&["save", "-o", from_docker.to_str().unwrap(), "trip:1"]),
        "docker save",
    );
    drop(docker);

    d.berth_ok(&["rm", "ctr"]);
    d.berth_ok(&["rmi", "trip:1"]);
    let out = d.berth_ok(&["load", "-i", from_docker.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: trip:1");
    assert_eq!(image_id(&d, "trip:1"), id);
    assert_eq!(
        d.berth_ok(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Comment}} {{.CreatedBy}}",
            "trip:1"
        ]),
        hist
    );
    assert_eq!(
        d.berth_ok(&["image", "inspect", "--format", "{{json .Config}}", "trip:1"]),
        config
    );
    assert_eq!(d.berth_ok(&["run", "--rm", "trip:1"]).trim(), "via-docker");
    assert_store_consistent(&d);
}
