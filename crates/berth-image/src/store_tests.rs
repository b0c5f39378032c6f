//! Store-level tests: import, resolve, layer sharing, tagging, removal and refcounts.

use std::io::Write;

use super::*;

pub(crate) struct Fixture {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) store: ImageStore,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let db = Arc::new(crate::MetaDb::open(&dir.path().join("meta.db")).unwrap());
    let store = ImageStore::open(&root, db).unwrap();
    Fixture {
        _dir: dir,
        root,
        store,
    }
}

pub(crate) fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_mtime(1);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub(crate) fn import(s: &ImageStore, tar: &[u8], reference: Option<&str>) -> String {
    let opts = ImportOptions {
        reference: reference.map(str::to_string),
        ..Default::default()
    };
    s.import(&mut &tar[..], &opts).unwrap()
}

pub(crate) fn dir_count(p: &Path) -> usize {
    fs::read_dir(p).map(|r| r.count()).unwrap_or(0)
}

pub(crate) fn layer_refcount(s: &ImageStore, chain: &str) -> Option<u64> {
    let rtxn = s.db.begin_read().unwrap();
    let t = rtxn.open_table(LAYERS).unwrap();
    let v = t.get(chain).unwrap()?;
    Some(decode::<LayerMeta>(v.value(), "layer").unwrap().refcount)
}

pub(crate) fn deleted_ids(items: &[berth_api::ImageDeleteItem]) -> Vec<String> {
    items.iter().filter_map(|i| i.deleted.clone()).collect()
}
pub(crate) fn untagged_names(items: &[berth_api::ImageDeleteItem]) -> Vec<String> {
    items.iter().filter_map(|i| i.untagged.clone()).collect()
}

#[test]
fn import_then_resolve_every_way() {
    let f = fixture();
    let tar = layer_tar(&[
        ("bin/busybox", b"ELF"),
        ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
    ]);
    let opts = ImportOptions {
        reference: Some("busybox:latest".into()),
        changes: vec![r#"CMD ["sh"]"#.into(), "ENV A=1".into()],
        message: String::new(),
    };
    let id = f.store.import(&mut &tar[..], &opts).unwrap();
    assert!(id.starts_with("sha256:") && id.len() == 71);
    // The ID is the digest of the stored config.
    let bytes = fs::read(f.root.join("blobs/sha256").join(&id[7..])).unwrap();
    assert_eq!(content::sha256_digest(&bytes), id);

    let hex = &id[7..];
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        &id,
        hex,
        &hex[..12],
        &format!("sha256:{}", &hex[..5]),
    ] {
        assert_eq!(f.store.resolve(name).unwrap().id, id, "{name}");
    }
    let rec = f.store.resolve("busybox").unwrap();
    assert_eq!(rec.repo_tags, vec!["busybox:latest"]);
    assert_eq!(rec.config.config.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(rec.config.config.env, vec!["A=1"]);
    assert_eq!(rec.config.os, "linux");
    assert_eq!(rec.config.rootfs.kind, "layers");
    assert_eq!(rec.config.history[0].comment, "Imported from -");
    assert_eq!(rec.config.history[0].created, rec.config.created);

    // Not found, in Docker's words.
    assert_eq!(
        f.store.resolve("busybox:1").unwrap_err().to_string(),
        "No such image: busybox:1"
    );
    assert_eq!(
        f.store.resolve("nope").unwrap_err().to_string(),
        "No such image: nope:latest"
    );
    let e = f.store.resolve("Nope").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);

    // The layer is unpacked where layer_dirs says.
    let dirs = f.store.layer_dirs(&id).unwrap();
    assert_eq!(dirs.len(), 1);
    assert_eq!(fs::read(dirs[0].join("bin/busybox")).unwrap(), b"ELF");
    assert_eq!(f.store.layer_dirs("busybox").unwrap(), dirs);
    // ...and its tar is kept as a blob keyed by diff ID.
    let diff = &rec.config.rootfs.diff_ids[0];
    assert_eq!(dirs[0].file_name().unwrap().to_str().unwrap(), &diff[7..]);
    let kept = fs::read(f.root.join("blobs/sha256").join(&diff[7..])).unwrap();
    assert_eq!(content::sha256_digest(&kept), *diff);
    assert_eq!(f.store.count(), 1);
    assert_eq!(dir_count(&f.root.join("tmp")), 0);
}

#[test]
fn gzip_import_gives_the_same_layer() {
    let f = fixture();
    let tar = layer_tar(&[("a", b"1")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let a = import(&f.store, &tar, Some("a"));
    let b = import(&f.store, &gz, Some("b"));
    let ra = f.store.resolve(&a).unwrap();
    let rb = f.store.resolve(&b).unwrap();
    assert_eq!(ra.config.rootfs.diff_ids, rb.config.rootfs.diff_ids);
    // zstd too (docker import accepts it).
    let zs = zstd::encode_all(&tar[..], 3).unwrap();
    let c = import(&f.store, &zs, Some("c"));
    let rc = f.store.resolve(&c).unwrap();
    assert_eq!(ra.config.rootfs.diff_ids, rc.config.rootfs.diff_ids);
    let e = f
        .store
        .import(&mut &b"BZh91AY&SY"[..], &ImportOptions::default())
        .unwrap_err();
    assert_eq!(e.to_string(), "unsupported compression format bzip2");
}

#[test]
fn two_images_share_one_layer_until_both_are_gone() {
    let f = fixture();
    let tar = layer_tar(&[("x", b"same")]);
    let a = import(&f.store, &tar, Some("a:1"));
    std::thread::sleep(std::time::Duration::from_millis(5));
    let b = import(&f.store, &tar, Some("b:1"));
    assert_ne!(a, b, "created time differs, so the configs do");
    assert_eq!(dir_count(&f.root.join("layers")), 1);
    let chain = f.store.resolve(&a).unwrap().config.rootfs.diff_ids[0].clone();
    assert_eq!(layer_refcount(&f.store, &chain), Some(2));

    let out = f.store.remove("a:1", false, true, &|_| None).unwrap();
    assert_eq!(untagged_names(&out), vec!["a:1"]);
    assert_eq!(deleted_ids(&out), vec![a.clone()]);
    assert_eq!(layer_refcount(&f.store, &chain), Some(1));
    assert_eq!(dir_count(&f.root.join("layers")), 1);

    let out = f.store.remove("b:1", false, true, &|_| None).unwrap();
    assert_eq!(deleted_ids(&out), vec![b.clone(), chain.clone()]);
    assert_eq!(layer_refcount(&f.store, &chain), None);
    assert_eq!(dir_count(&f.root.join("layers")), 0);
    assert_eq!(dir_count(&f.root.join("blobs/sha256")), 0);
    assert_eq!(f.store.count(), 0);
}

#[test]
fn tagging_moves_tags_and_untagging_one_of_several_keeps_the_image() {
    let f = fixture();
    let old = import(&f.store, &layer_tar(&[("v", b"1")]), Some("app:v1"));
    let new = import(&f.store, &layer_tar(&[("v", b"2")]), None);
    assert!(f.store.resolve(&new).unwrap().repo_tags.is_empty());

    f.store.tag(&new, "app", "v1").unwrap();
    assert_eq!(f.store.resolve("app:v1").unwrap().id, new);
    assert!(
        f.store.resolve(&old).unwrap().repo_tags.is_empty(),
        "old image is dangling"
    );
    let dangling = ListOptions {
        all: false,
        filters: [("dangling".to_string(), vec!["true".to_string()])]
            .into_iter()
            .collect(),
    };
    let rows = f.store.list(&dangling).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, old);
    assert!(rows[0].repo_tags.is_empty());
    assert_eq!((rows[0].containers, rows[0].shared_size), (-1, -1));

    f.store.tag("app:v1", "localhost:5000/a/b", "v2").unwrap();
    f.store.tag("app:v1", "app:latest", "").unwrap();
    assert_eq!(
        f.store.resolve(&new).unwrap().repo_tags,
        vec!["app:latest", "app:v1", "localhost:5000/a/b:v2"]
    );

    // By name with other tags left: only untags.
    let out = f
        .store
        .remove("localhost:5000/a/b:v2", false, false, &|_| None)
        .unwrap();
    assert_eq!(
        out,
        vec![berth_api::ImageDeleteItem {
            untagged: Some("localhost:5000/a/b:v2".into()),
            deleted: None
        }]
    );
    assert!(f.store.resolve(&new).is_ok());

    // By ID with two tags: refused unless forced.
    let short = short_id(&new);
    let e = f.store.remove(&short, false, false, &|_| None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(e.to_string(), format!("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"));
    let out = f.store.remove(&short, true, false, &|_| None).unwrap();
    assert_eq!(untagged_names(&out), vec!["app:latest", "app:v1"]);
    assert_eq!(deleted_ids(&out)[0], new);
    assert!(f.store.resolve("app:v1").is_err());

    // By ID with one tag: untags and deletes.
    f.store.tag(&old, "solo", "").unwrap();
    let out = f.store.remove(&old, false, false, &|_| None).unwrap();
    assert_eq!(untagged_names(&out), vec!["solo:latest"]);
    assert_eq!(deleted_ids(&out).len(), 2);
    assert_eq!(f.store.count(), 0);
}

#[test]
fn removal_respects_containers() {
    let f = fixture();
    let id = import(&f.store, &layer_tar(&[("f", b"x")]), Some("busybox"));
    let short = short_id(&id);
    let stopped = |_: &str| {
        Some(ImageUser {
            container_id: "0123456789abcdef".into(),
            running: false,
        })
    };
    let running = |_: &str| {
        Some(ImageUser {
            container_id: "0123456789abcdef".into(),
            running: true,
        })
    };

    let e = f
        .store
        .remove_image("busybox", false, false, &stopped)
        .unwrap_err();
    assert_eq!(e.to_string(), format!("conflict: unable to remove repository reference \"busybox\" (must force) - container 0123456789ab is using its referenced image {short}"));
    let e = f
        .store
        .remove_image(&id, false, false, &stopped)
        .unwrap_err();
    assert_eq!(e.to_string(), format!("conflict: unable to delete {short} (must be forced) - image is being used by stopped container 0123456789ab"));
    let e = f
        .store
        .remove_image(&id, true, false, &running)
        .unwrap_err();
    assert_eq!(e.to_string(), format!("conflict: unable to delete {short} (cannot be forced) - image is being used by running container 0123456789ab"));
    // Forced by name while used: the tag goes, the image stays (dangling).
    let out = f
        .store
        .remove_image("busybox", true, false, &running)
        .unwrap();
    assert_eq!(untagged_names(&out), vec!["busybox:latest"]);
    assert!(deleted_ids(&out).is_empty());
    assert!(f.store.resolve(&id).is_ok());
    // Forced by ID with a stopped user: deleted.
    let out = f.store.remove_image(&id, true, false, &stopped).unwrap();
    assert_eq!(deleted_ids(&out)[0], id);
}

#[test]
fn failed_import_leaves_nothing() {
    let f = fixture();
    let mut bad = Vec::new();
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..9].copy_from_slice(b"../escape");
    h.set_size(1);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    bad.extend_from_slice(h.as_bytes());
    bad.extend_from_slice(&[b'x'; 512]);
    bad.extend_from_slice(&[0; 1024]);
    let opts = ImportOptions {
        reference: Some("bad".into()),
        ..Default::default()
    };
    let e = f.store.import(&mut &bad[..], &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = f.store.import(
        &mut &b"this is not a tar archive at all, just text"[..],
        &opts,
    );
    assert!(e.is_err());
    let opts = ImportOptions {
        changes: vec!["RUN x".into()],
        ..Default::default()
    };
    let e = f
        .store
        .import(&mut &layer_tar(&[("a", b"1")])[..], &opts)
        .unwrap_err();
    assert_eq!(e.to_string(), "RUN is not a valid change command");
    for d in ["tmp", "layers", "blobs/sha256"] {
        assert_eq!(dir_count(&f.root.join(d)), 0, "{d}");
    }
    assert_eq!(f.store.count(), 0);
    assert!(f.store.resolve("bad").is_err());
}

#[test]
fn open_collects_what_a_crash_left() {
    let f = fixture();
    let id = import(&f.store, &layer_tar(&[("a", b"1")]), Some("keep"));
    fs::create_dir_all(f.root.join("layers/deadbeef/x")).unwrap();
    fs::write(f.root.join("tmp/ingest-123"), b"partial").unwrap();
    fs::write(f.root.join("blobs/sha256/0000"), b"orphan").unwrap();
    let store = ImageStore::open(&f.root, f.store.db.clone()).unwrap();
    assert!(!f.root.join("layers/deadbeef").exists());
    assert_eq!(dir_count(&f.root.join("tmp")), 0);
    assert!(!f.root.join("blobs/sha256/0000").exists());
    assert_eq!(store.resolve("keep").unwrap().id, id);
    assert!(store.layer_dirs(&id).unwrap()[0].join("a").exists());
}

#[test]
fn list_history_inspect_shapes() {
    let f = fixture();
    let opts = ImportOptions {
        reference: Some("web:v1".into()),
        changes: vec!["LABEL tier=front".into()],
        message: "hello".into(),
    };
    let id = f
        .store
        .import(&mut &layer_tar(&[("index.html", b"hi there")])[..], &opts)
        .unwrap();
    let _other = import(&f.store, &layer_tar(&[("z", b"z")]), Some("other"));

    let by = |k: &str, v: &str| ListOptions {
        all: false,
        filters: [(k.to_string(), vec![v.to_string()])].into_iter().collect(),
    };
    let rows = f.store.list(&by("label", "tier=front")).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].repo_tags, vec!["web:v1"]);
    assert_eq!(rows[0].size, 8);
    assert_eq!(f.store.list(&by("reference", "web")).unwrap().len(), 1);
    assert_eq!(f.store.list(&by("reference", "w*:v1")).unwrap().len(), 1);
    assert_eq!(f.store.list(&by("reference", "nothing")).unwrap().len(), 0);
    assert_eq!(f.store.list(&ListOptions::default()).unwrap().len(), 2);
    assert_eq!(
        f.store.list(&by("bogus", "x")).unwrap_err().to_string(),
        "invalid filter 'bogus'"
    );
    assert_eq!(
        f.store
            .list(&by("dangling", "maybe"))
            .unwrap_err()
            .to_string(),
        "invalid filter 'dangling=maybe'"
    );

    let h = f.store.history("web:v1").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].id, id);
    assert_eq!(h[0].comment, "hello");
    assert_eq!(h[0].size, 8);
    assert_eq!(h[0].tags, Some(vec!["web:v1".to_string()]));

    let i = f.store.inspect("web:v1").unwrap();
    assert_eq!(i.id, id);
    assert_eq!(i.comment, "hello");
    assert_eq!(i.root_fs.kind, "layers");
    assert_eq!(i.root_fs.layers.len(), 1);
    assert_eq!(
        i.config.labels.get("tier").map(String::as_str),
        Some("front")
    );
    assert!(i.graph_driver.data.contains_key("UpperDir"));
    assert_ne!(i.metadata.last_tag_time, "");
}

#[test]
fn save_then_load_into_another_store_keeps_ids_tags_and_layers() {
    let a = fixture();
    let id1 = import(
        &a.store,
        &layer_tar(&[("bin/sh", b"shell")]),
        Some("busybox:latest"),
    );
    a.store.tag("busybox", "alpine", "3.10").unwrap();
    let id2 = import(&a.store, &layer_tar(&[("other", b"o")]), None);
    let mut archive = Vec::new();
    a.store
        .save(
            &[
                "busybox".to_string(),
                "alpine:3.10".to_string(),
                id2.clone(),
            ],
            &mut archive,
        )
        .unwrap();
    let mut listed: Vec<String> = tar::Archive::new(&archive[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .filter(|p| !p.starts_with("blobs"))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec!["index.json", "manifest.json", "oci-layout", "repositories"]
    );

    let b = fixture();
    let msgs = b.store.load(&mut &archive[..]).unwrap();
    assert_eq!(
        msgs,
        vec![
            "Loaded image: busybox:latest",
            "Loaded image: alpine:3.10",
            &format!("Loaded image ID: {id2}")
        ]
    );
    assert_eq!(b.store.resolve("busybox").unwrap().id, id1);
    assert_eq!(b.store.resolve("alpine:3.10").unwrap().id, id1);
    assert_eq!(
        b.store.resolve(&id2).unwrap().repo_tags,
        Vec::<String>::new()
    );
    let dirs = b.store.layer_dirs("busybox").unwrap();
    assert_eq!(fs::read(dirs[0].join("bin/sh")).unwrap(), b"shell");
    assert_eq!(dir_count(&b.root.join("tmp")), 0);

    // Loading again re-uses the stored layers and changes nothing.
    let again = b.store.load(&mut &archive[..]).unwrap();
    assert_eq!(again.len(), 3);
    assert_eq!(b.store.count(), 2);
    assert_eq!(dir_count(&b.root.join("layers")), 2);
    let chain = b.store.resolve("busybox").unwrap().config.rootfs.diff_ids[0].clone();
    assert_eq!(layer_refcount(&b.store, &chain), Some(1));

    // Gzip-compressed archives load too.
    let c = fixture();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&archive).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(c.store.load(&mut &gz[..]).unwrap().len(), 3);
}

#[test]
fn load_refuses_bad_archives_and_leaves_nothing() {
    let f = fixture();
    let e = f
        .store
        .load(&mut &layer_tar(&[("x", b"1")])[..])
        .unwrap_err();
    assert!(e.to_string().contains("manifest.json"), "{e}");
    let manifest = br#"[{"Config":"../../etc/passwd","RepoTags":null,"Layers":[]}]"#;
    let e = f
        .store
        .load(&mut &layer_tar(&[("manifest.json", manifest)])[..])
        .unwrap_err();
    assert!(e.to_string().contains("outside of the archive"), "{e}");
    assert_eq!(dir_count(&f.root.join("tmp")), 0);
    assert_eq!(f.store.count(), 0);
}

#[test]
fn commit_adds_the_upper_dir_as_a_layer_and_tracks_the_parent() {
    let f = fixture();
    let base = import(
        &f.store,
        &layer_tar(&[("bin/sh", b"shell"), ("etc/gone", b"x")]),
        Some("busybox"),
    );
    let upper = tempfile::tempdir().unwrap();
    fs::create_dir(upper.path().join("etc")).unwrap();
    fs::write(upper.path().join("etc/new"), b"added").unwrap();
    let gone = std::ffi::CString::new(upper.path().join("etc/gone").to_str().unwrap()).unwrap();
    // SAFETY: valid path; a 0/0 char device is an overlay whiteout.
    assert_eq!(unsafe { libc::mknod(gone.as_ptr(), libc::S_IFCHR, 0) }, 0);
    let container_config = berth_api::ContainerConfig {
        cmd: Some(vec!["touch".into(), "/test".into()]),
        env: vec!["PATH=/bin".into()],
        ..Default::default()
    };
    let opts = CommitOptions {
        parent: "busybox".into(),
        upper: upper.path().to_path_buf(),
        container_id: "c0ffee".into(),
        container_config: container_config.clone(),
        changes: vec!["CMD [\"sh\"]".into()],
        comment: "snap".into(),
        reference: Some("snap:v1".into()),
        ..Default::default()
    };
    let id = f.store.commit(&opts).unwrap();
    let rec = f.store.resolve("snap:v1").unwrap();
    assert_eq!(rec.id, id);
    assert_eq!(rec.config.parent, base);
    assert_eq!(rec.config.rootfs.diff_ids.len(), 2);
    assert_eq!(rec.config.config.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(rec.config.config.env, vec!["PATH=/bin"]);
    let dirs = f.store.layer_dirs(&id).unwrap();
    assert_eq!(dirs.len(), 2);
    assert_eq!(fs::read(dirs[0].join("etc/new")).unwrap(), b"added");
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let wh = fs::symlink_metadata(dirs[0].join("etc/gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(dirs[1], f.store.layer_dirs(&base).unwrap()[0]);

    let h = f.store.history(&id).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(
        (
            h[0].id.as_str(),
            h[0].created_by.as_str(),
            h[0].comment.as_str()
        ),
        (id.as_str(), "touch /test", "snap")
    );
    assert_eq!(h[1].id, base);
    assert_eq!(h[1].tags, Some(vec!["busybox:latest".to_string()]));
    assert_eq!(f.store.inspect(&id).unwrap().parent, base);

    // The parent cannot go while its child exists, even forced.
    let e = f.store.remove(&base, true, false, &|_| None).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
            short_id(&base)
        )
    );
    let out = f.store.remove(&id, true, false, &|_| None).unwrap();
    assert_eq!(
        deleted_ids(&out).len(),
        2,
        "image and its own layer: {out:?}"
    );
    assert!(f.store.resolve(&base).is_ok());

    // An unchanged container commits an empty layer: no new layer, history says so.
    let empty = tempfile::tempdir().unwrap();
    let opts = CommitOptions {
        parent: base.clone(),
        upper: empty.path().to_path_buf(),
        ..Default::default()
    };
    let id2 = f.store.commit(&opts).unwrap();
    let rec = f.store.resolve(&id2).unwrap();
    assert_eq!(rec.config.rootfs.diff_ids.len(), 1);
    assert!(rec.config.history.last().unwrap().empty_layer);
    assert_eq!(dir_count(&f.root.join("tmp")), 0);
    // Nothing unreferenced was left in the content store: one config per image plus
    // the base layer's tar.
    assert_eq!(dir_count(&f.root.join("blobs/sha256")), 3);
}

#[test]
fn prune_removes_dangling_or_all_unused_images() {
    let f = fixture();
    let kept = import(&f.store, &layer_tar(&[("a", b"1")]), Some("kept"));
    let dangling = import(&f.store, &layer_tar(&[("b", b"22")]), None);
    let used = import(&f.store, &layer_tar(&[("c", b"333")]), Some("used"));
    let user = |id: &str| {
        (id == used).then(|| ImageUser {
            container_id: "c".into(),
            running: true,
        })
    };

    let (items, bytes) = f.store.prune(&Default::default(), &user).unwrap();
    assert_eq!(deleted_ids(&items)[0], dangling);
    assert_eq!(bytes, 2);
    assert!(f.store.resolve(&kept).is_ok());

    let all: std::collections::BTreeMap<String, Vec<String>> =
        [("dangling".to_string(), vec!["false".to_string()])]
            .into_iter()
            .collect();
    let (items, bytes) = f.store.prune(&all, &user).unwrap();
    assert_eq!(untagged_names(&items), vec!["kept:latest"]);
    assert_eq!(deleted_ids(&items)[0], kept);
    assert_eq!(bytes, 1);
    assert!(f.store.resolve("used").is_ok(), "an image in use stays");
    let bad: std::collections::BTreeMap<String, Vec<String>> =
        [("nope".to_string(), vec!["x".to_string()])]
            .into_iter()
            .collect();
    assert_eq!(
        f.store.prune(&bad, &user).unwrap_err().to_string(),
        "invalid filter 'nope'"
    );
}

#[test]
fn disk_usage_counts_a_shared_layer_once() {
    let f = fixture();
    let tar = layer_tar(&[("bin/tool", &[7u8; 1000])]);
    let a = import(&f.store, &tar, Some("a:1"));
    let opts = ImportOptions {
        reference: Some("b:1".into()),
        changes: vec!["ENV X=1".into()],
        ..Default::default()
    };
    let b = f.store.import(&mut &tar[..], &opts).unwrap();
    assert_ne!(a, b, "different configs, same layer");
    let other = import(&f.store, &layer_tar(&[("x", &[1u8; 10])]), Some("c:1"));
    let du = f.store.disk_usage().unwrap();
    assert_eq!(
        du.layers_size, 1010,
        "the shared 1000-byte layer counts once"
    );
    assert_eq!(du.images.len(), 3);
    for img in &du.images {
        let want = if img.id == other { 0 } else { 1000 };
        assert_eq!(img.shared_size, want, "{}", img.id);
    }
    assert!(f.store.check().unwrap().is_empty());
}

#[test]
fn check_reports_what_is_missing_or_left_over() {
    let f = fixture();
    let id = import(&f.store, &layer_tar(&[("a", b"1")]), Some("a:1"));
    assert_eq!(f.store.check().unwrap(), Vec::<String>::new());
    let stray = f.root.join("layers").join("0".repeat(64));
    fs::create_dir(&stray).unwrap();
    let chain = f.store.image_meta(&id).unwrap().chain_ids[0].clone();
    fs::remove_dir_all(f.store.layer_path(&chain)).unwrap();
    let problems = f.store.check().unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("directory missing")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("is not referenced")),
        "{problems:?}"
    );
}

/// Ten threads import, commit, tag and remove images that share layers at once; the
/// store must stay consistent, and pruning everything must leave no layer or blob.
#[test]
fn parallel_imports_commits_and_removals_leave_a_consistent_store() {
    let f = fixture();
    let base_tar = layer_tar(&[("bin/sh", &[3u8; 4096]), ("etc/os", b"berth")]);
    let base = import(&f.store, &base_tar, Some("base:latest"));
    let store = &f.store;
    let root = &f.root;
    std::thread::scope(|s| {
        for t in 0..10 {
            let base_tar = &base_tar;
            let base = &base;
            s.spawn(move || {
                for round in 0..4 {
                    // Same layer as base, own config: shares base's layer.
                    let opts = ImportOptions {
                        reference: Some(format!("imp{t}:r{round}")),
                        changes: vec![format!("ENV T={t} R={round}")],
                        ..Default::default()
                    };
                    let imported = store.import(&mut &base_tar[..], &opts).unwrap();
                    // A commit on top of base (shares base's layer, adds one).
                    let upper = root.join(format!("upper-{t}-{round}"));
                    fs::create_dir_all(upper.join("data")).unwrap();
                    fs::write(upper.join("data/f"), format!("{t}/{round}")).unwrap();
                    let committed = store
                        .commit(&CommitOptions {
                            parent: base.clone(),
                            upper: upper.clone(),
                            container_id: format!("{t:064}"),
                            reference: Some(format!("com{t}:r{round}")),
                            comment: "parallel".into(),
                            ..Default::default()
                        })
                        .unwrap();
                    fs::remove_dir_all(&upper).unwrap();
                    // The same content committed by two threads may dedupe: only remove ours.
                    if round % 2 == 0 {
                        store
                            .remove(&format!("imp{t}:r{round}"), false, true, &|_| None)
                            .unwrap();
                        store
                            .remove(&format!("com{t}:r{round}"), false, true, &|_| None)
                            .unwrap();
                    }
                    let _ = (imported, committed);
                }
            });
        }
    });
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    // Everything but base goes; base's layer stays on disk.
    let all: std::collections::BTreeMap<String, Vec<String>> =
        [("dangling".to_string(), vec!["false".to_string()])]
            .into_iter()
            .collect();
    let (items, _) = store
        .prune(&all, &|id| {
            if id == base {
                Some(ImageUser {
                    container_id: "c".into(),
                    running: true,
                })
            } else {
                None
            }
        })
        .unwrap();
    assert!(!items.is_empty());
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    assert_eq!(store.count(), 1);
    assert_eq!(
        dir_count(&f.root.join("layers")),
        1,
        "only base's layer remains"
    );
    let (_, _) = store.prune(&all, &|_| None).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    assert_eq!(dir_count(&f.root.join("layers")), 0);
    assert_eq!(dir_count(&f.root.join("blobs/sha256")), 0);
}

#[test]
fn importing_a_save_archive_is_refused_and_leaves_nothing() {
    let f = fixture();
    let id = import(&f.store, &layer_tar(&[("bin/x", b"x")]), Some("a:1"));
    let mut archive = Vec::new();
    f.store.save(&["a:1".to_string()], &mut archive).unwrap();
    let blobs_before = dir_count(&f.root.join("blobs/sha256"));
    let err = f
        .store
        .import(&mut &archive[..], &ImportOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("docker load"), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(f.store.count(), 1);
    assert_eq!(dir_count(&f.root.join("blobs/sha256")), blobs_before);
    assert_eq!(f.store.check().unwrap(), Vec::<String>::new());
    let _ = id;
}

/// Builds, by hand, an archive in the layout `docker save` writes since Docker 25:
/// `blobs/sha256/<hex>` for the config, the OCI manifest and the uncompressed layers,
/// `index.json` whose manifest descriptor carries `io.containerd.image.name` and
/// `org.opencontainers.image.ref.name`, `oci-layout`, and (when `with_docker_files`)
/// `manifest.json` and `repositories`. Returns the archive and the config digest.
fn docker25_archive(layers: &[Vec<u8>], with_docker_files: bool) -> (Vec<u8>, String) {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| crate::content::sha256_digest(l))
        .collect();
    let history: Vec<serde_json::Value> = layers
        .iter()
        .enumerate()
        .map(|(i, _)| serde_json::json!({"created": "2024-01-02T03:04:05Z", "created_by": format!("/bin/sh -c #(nop) ADD file{i} in /")}))
        .chain(std::iter::once(serde_json::json!({"created": "2024-01-02T03:04:06Z", "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true})))
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:06Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .unwrap();
    let config_digest = crate::content::sha256_digest(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers.iter().zip(&diff_ids).map(|(l, d)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": l.len()})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let manifest_digest = crate::content::sha256_digest(&manifest);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"io.containerd.image.name": "docker.io/library/x:v1", "org.opencontainers.image.ref.name": "v1"},
        }],
    }))
    .unwrap();
    let blob = |d: &str| format!("blobs/sha256/{}", crate::content::digest_hex(d));
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (l, d) in layers.iter().zip(&diff_ids) {
        files.push((blob(d), l.clone()));
    }
    files.push((blob(&config_digest), config.clone()));
    files.push((blob(&manifest_digest), manifest));
    files.push(("index.json".into(), index));
    if with_docker_files {
        let m = serde_json::json!([{"Config": blob(&config_digest), "RepoTags": ["x:v1"],
            "Layers": diff_ids.iter().map(|d| blob(d)).collect::<Vec<_>>()}]);
        files.push(("manifest.json".into(), serde_json::to_vec(&m).unwrap()));
        let top = crate::chain_ids(&diff_ids)
            .last()
            .cloned()
            .unwrap_or_default();
        let r = serde_json::json!({"x": {"v1": crate::content::digest_hex(&top)}});
        files.push(("repositories".into(), serde_json::to_vec(&r).unwrap()));
    }
    files.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    let mut b = tar::Builder::new(Vec::new());
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = tar::Header::new_gnu();
        h.set_path(dir).unwrap();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
    }
    for (name, data) in &files {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    (b.into_inner().unwrap(), config_digest)
}

#[test]
fn load_reads_docker25_oci_archives_with_and_without_manifest_json() {
    let layers = vec![
        layer_tar(&[("bin/sh", b"shell")]),
        layer_tar(&[("etc/motd", b"hello")]),
    ];
    for with_docker_files in [true, false] {
        let (archive, config_digest) = docker25_archive(&layers, with_docker_files);
        let f = fixture();
        let msgs = f.store.load(&mut &archive[..]).unwrap();
        assert_eq!(
            msgs,
            vec!["Loaded image: x:v1"],
            "with manifest.json: {with_docker_files}"
        );
        let img = f.store.resolve("x:v1").unwrap();
        assert_eq!(img.id, config_digest);
        assert_eq!(
            f.store.inspect("x:v1").unwrap().repo_tags,
            vec!["x:v1".to_string()]
        );
        let history = f.store.history("x:v1").unwrap();
        let created_by: Vec<&str> = history.iter().map(|h| h.created_by.as_str()).collect();
        assert_eq!(
            created_by,
            vec![
                "/bin/sh -c #(nop)  CMD [\"sh\"]",
                "/bin/sh -c #(nop) ADD file1 in /",
                "/bin/sh -c #(nop) ADD file0 in /"
            ]
        );
        let dirs = f.store.layer_dirs("x:v1").unwrap();
        assert_eq!(dirs.len(), 2);
        let files: Vec<Vec<u8>> = dirs
            .iter()
            .filter_map(|d| {
                fs::read(d.join("bin/sh"))
                    .or_else(|_| fs::read(d.join("etc/motd")))
                    .ok()
            })
            .collect();
        assert!(
            files.contains(&b"shell".to_vec()) && files.contains(&b"hello".to_vec()),
            "{files:?}"
        );
        assert_eq!(dir_count(&f.root.join("tmp")), 0);
    }
}

#[test]
fn load_of_a_pure_oci_layout_refuses_bad_digests_and_empty_indexes() {
    let f = fixture();
    let index = br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../x"}]}"#;
    let tar = layer_tar(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json", index),
    ]);
    let e = f.store.load(&mut &tar[..]).unwrap_err();
    assert!(e.to_string().contains("invalid"), "{e}");
    let tar = layer_tar(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json", br#"{"schemaVersion":2,"manifests":[]}"#),
    ]);
    let e = f.store.load(&mut &tar[..]).unwrap_err();
    assert!(e.to_string().contains("lists no manifest"), "{e}");
    assert_eq!(dir_count(&f.root.join("tmp")), 0);
    assert_eq!(f.store.count(), 0);
}
