//! Pull and push on the store side: ingest from a reader, leases, register, push plans,
//! and what save/rmi/check make of pulled images.

use std::io::{self, Read, Write};

use super::*;
use crate::compression::{MEDIA_DOCKER_LAYER_GZIP, MEDIA_OCI_LAYER_TAR, MEDIA_OCI_LAYER_ZSTD};
use crate::content::sha256_digest;
use crate::store_tests::{
    deleted_ids, dir_count, fixture, import, layer_refcount, layer_tar, untagged_names, Fixture,
};

/// One layer as a registry would serve it.
#[derive(Clone)]
struct Blob {
    bytes: Vec<u8>,
    info: BlobInfo,
    tar: Vec<u8>,
    diff_id: String,
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn blob(tar: Vec<u8>, c: Compression) -> Blob {
    let (bytes, mt) = match c {
        Compression::Gzip => (gzip(&tar), MEDIA_DOCKER_LAYER_GZIP),
        Compression::Zstd => (zstd::encode_all(&tar[..], 3).unwrap(), MEDIA_OCI_LAYER_ZSTD),
        Compression::None => (tar.clone(), MEDIA_OCI_LAYER_TAR),
    };
    Blob {
        info: BlobInfo {
            digest: sha256_digest(&bytes),
            size: bytes.len() as u64,
            media_type: mt.to_string(),
        },
        diff_id: sha256_digest(&tar),
        bytes,
        tar,
    }
}

fn config_for(layers: &[Blob], marker: &str) -> Vec<u8> {
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        created: Some("2024-01-01T00:00:00Z".into()),
        rootfs: RootFsConfig {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        comment: marker.into(),
        ..Default::default()
    };
    serde_json::to_vec(&config).unwrap()
}

fn chains_of(layers: &[Blob]) -> Vec<String> {
    chain_ids(&layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>())
}

fn ingest(store: &ImageStore, lease: &Lease, layers: &[Blob], i: usize) -> Result<(), ImageError> {
    let chains = chains_of(layers);
    let parent = if i == 0 {
        None
    } else {
        Some(chains[i - 1].as_str())
    };
    let l = &layers[i];
    store.ingest_layer(
        lease,
        &mut &l.bytes[..],
        &l.info,
        &l.diff_id,
        &chains[i],
        parent,
        &mut |_| {},
    )
}

/// What a registry would have served for `layers` under `config`: a schema2 manifest.
fn pulled(config: &[u8], layers: &[Blob], name: &str, tag: Option<&str>) -> PulledImage {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": sha256_digest(config)},
        "layers": layers.iter().map(|l| serde_json::json!({"mediaType": l.info.media_type, "size": l.info.size, "digest": l.info.digest})).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let md = sha256_digest(&manifest);
    PulledImage {
        config: config.to_vec(),
        manifest: (md.clone(), manifest),
        index: None,
        name: Reference::parse_normalized(name).unwrap(),
        tag: tag.map(str::to_string),
        repo_digest: md,
    }
}

/// Ingests every layer (skipping stored ones) and registers the image.
fn pull(
    store: &ImageStore,
    layers: &[Blob],
    config: &[u8],
    name: &str,
    tag: Option<&str>,
) -> RegisterOutcome {
    let lease = store.lease();
    for (i, chain) in chains_of(layers).iter().enumerate() {
        if store.has_layer(chain) && store.protect(&lease, chain) {
            continue;
        }
        ingest(store, &lease, layers, i).unwrap();
    }
    store
        .register_pulled(lease, &pulled(config, layers, name, tag))
        .unwrap()
}

fn three_layers() -> Vec<Blob> {
    vec![
        blob(
            layer_tar(&[("bin/sh", &[1u8; 3000]), ("etc/os", b"berth")]),
            Compression::Gzip,
        ),
        blob(
            layer_tar(&[("usr/lib/libz.so", &[2u8; 70_000])]),
            Compression::Zstd,
        ),
        blob(
            layer_tar(&[("app/run", b"#!/bin/sh\necho hi\n")]),
            Compression::None,
        ),
    ]
}

fn assert_clean(f: &Fixture) {
    assert_eq!(f.store.check().unwrap(), Vec::<String>::new());
    assert_eq!(dir_count(&f.root.join("tmp")), 0, "tmp/ is empty");
}

fn read_all(mut r: Box<dyn Read>) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

#[test]
fn ingests_gzip_zstd_and_plain_layers_and_registers_the_image() {
    let f = fixture();
    let layers = three_layers();
    let config = config_for(&layers, "one");
    let lease = f.store.lease();
    let chains = chains_of(&layers);
    for (i, l) in layers.iter().enumerate() {
        let mut reports = Vec::new();
        f.store
            .ingest_layer(
                &lease,
                &mut &l.bytes[..],
                &l.info,
                &l.diff_id,
                &chains[i],
                if i == 0 {
                    None
                } else {
                    Some(chains[i - 1].as_str())
                },
                &mut |n| reports.push(n),
            )
            .unwrap();
        assert_eq!(
            reports.last(),
            Some(&l.info.size),
            "final progress is the blob size"
        );
        assert!(reports.windows(2).all(|w| w[0] <= w[1]));
        assert!(f.store.has_layer(&chains[i]));
        assert_eq!(
            layer_refcount(&f.store, &chains[i]),
            Some(0),
            "pinned, not yet used"
        );
    }
    assert_clean(&f);
    let out = f
        .store
        .register_pulled(
            lease,
            &pulled(&config, &layers, "example.com/team/app", Some("v1")),
        )
        .unwrap();
    assert_eq!(out.image_id, sha256_digest(&config));
    assert!(out.updated);
    let img = f.store.resolve("example.com/team/app:v1").unwrap();
    assert_eq!(img.id, out.image_id);
    let dirs = f.store.layer_dirs(&img.id).unwrap();
    assert_eq!(fs::read(dirs[2].join("etc/os")).unwrap(), b"berth");
    assert_eq!(
        fs::read(dirs[1].join("usr/lib/libz.so")).unwrap().len(),
        70_000
    );
    assert!(dirs[0].join("app/run").is_file());
    for (i, l) in layers.iter().enumerate() {
        assert_eq!(layer_refcount(&f.store, &chains[i]), Some(1));
        // Pulled layers keep the compressed blob as served, not a second copy as tar.
        assert!(f.store.content.exists(&l.info.digest));
        assert_eq!(
            f.store.content.exists(&l.diff_id),
            l.info.digest == l.diff_id
        );
        let (tar, size) = f.store.layer_tar(&chains[i]).unwrap();
        assert_eq!(size, l.tar.len() as u64);
        assert_eq!(
            read_all(tar),
            l.tar,
            "layer_tar gives the uncompressed tar back"
        );
    }
    // Size is the uncompressed content, as Docker's.
    assert_eq!(
        f.store.image_meta(&img.id).unwrap().size,
        3000 + 5 + 70_000 + 18
    );
    let digest_ref = format!(
        "example.com/team/app@{}",
        pulled(&config, &layers, "x", None).repo_digest
    );
    let inspect = f.store.inspect(&img.id).unwrap();
    assert_eq!(inspect.repo_digests, vec![digest_ref.clone()]);
    assert_eq!(
        inspect.repo_tags,
        vec!["example.com/team/app:v1".to_string()]
    );
    let rows = f.store.list(&ListOptions::default()).unwrap();
    assert_eq!(rows[0].repo_digests, vec![digest_ref.clone()]);
    assert_eq!(f.store.resolve(&digest_ref).unwrap().id, img.id);
    assert_clean(&f);
}

/// A reader that serves `data` in small chunks, then fails at `fail_at` if set.
struct Flaky<'a> {
    data: &'a [u8],
    pos: usize,
    fail_at: Option<usize>,
}

impl Read for Flaky<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(at) = self.fail_at {
            if self.pos >= at {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "connection reset by peer",
                ));
            }
        }
        let end = (self.pos + 4096.min(buf.len())).min(self.data.len());
        let end = self.fail_at.map_or(end, |at| end.min(at));
        let n = end - self.pos;
        buf[..n].copy_from_slice(&self.data[self.pos..end]);
        self.pos = end;
        Ok(n)
    }
}

#[test]
fn bad_digests_and_failing_readers_leave_nothing() {
    let f = fixture();
    let big = blob(
        layer_tar(&[("f", &[7u8; 200_000]), ("g", b"x")]),
        Compression::Gzip,
    );
    let chain = big.diff_id.clone();
    let run = |info: &BlobInfo, diff_id: &str, fail_at: Option<usize>| {
        let lease = f.store.lease();
        let mut r = Flaky {
            data: &big.bytes,
            pos: 0,
            fail_at,
        };
        let chain = diff_id.to_string();
        let e = f
            .store
            .ingest_layer(&lease, &mut r, info, diff_id, &chain, None, &mut |_| {})
            .unwrap_err();
        drop(lease);
        e
    };
    let wrong_digest = BlobInfo {
        digest: sha256_digest(b"something else"),
        ..big.info.clone()
    };
    let e = run(&wrong_digest, &big.diff_id, None);
    assert_eq!(
        e.to_string(),
        format!(
            "filesystem layer verification failed for digest {}",
            wrong_digest.digest
        )
    );
    let e = run(&big.info, &sha256_digest(b"other tar"), None);
    assert!(e.to_string().contains("diff ID mismatch"), "{e}");
    let e = run(&big.info, &big.diff_id, Some(big.bytes.len() / 2));
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert!(e.to_string().contains("connection reset by peer"), "{e}");
    assert!(e.to_string().contains(&big.info.digest), "{e}");
    let short = BlobInfo {
        size: big.info.size - 10,
        ..big.info.clone()
    };
    let e = run(&short, &big.diff_id, None);
    assert!(e.to_string().contains("more than"), "{e}");
    let long = BlobInfo {
        size: big.info.size + 10,
        ..big.info.clone()
    };
    let e = run(&long, &big.diff_id, None);
    assert!(e.to_string().contains("size mismatch"), "{e}");
    let odd = BlobInfo {
        media_type: "application/vnd.oci.image.layer.v1.tar+lz4".into(),
        ..big.info.clone()
    };
    assert_eq!(
        run(&odd, &big.diff_id, None).kind(),
        ErrorKind::InvalidArgument
    );
    // A corrupt gzip stream.
    let mut corrupt = big.clone();
    let mid = corrupt.bytes.len() / 2;
    corrupt.bytes[mid] ^= 0xff;
    corrupt.info.digest = sha256_digest(&corrupt.bytes);
    let lease = f.store.lease();
    assert!(f
        .store
        .ingest_layer(
            &lease,
            &mut &corrupt.bytes[..],
            &corrupt.info,
            &corrupt.diff_id,
            &chain,
            None,
            &mut |_| {}
        )
        .is_err());
    drop(lease);

    assert!(!f.store.has_layer(&chain));
    for d in ["tmp", "layers", "blobs/sha256"] {
        assert_eq!(dir_count(&f.root.join(d)), 0, "{d}");
    }
    assert_clean(&f);
    // And the same layer then ingests fine.
    let lease = f.store.lease();
    f.store
        .ingest_layer(
            &lease,
            &mut &big.bytes[..],
            &big.info,
            &big.diff_id,
            &chain,
            None,
            &mut |_| {},
        )
        .unwrap();
    assert!(f.store.has_layer(&chain));
    drop(lease);
    assert!(
        !f.store.has_layer(&chain),
        "an ended lease takes its unused layers along"
    );
    assert_eq!(dir_count(&f.root.join("layers")), 0);
    assert_eq!(dir_count(&f.root.join("blobs/sha256")), 0);
    assert_clean(&f);
}

#[test]
fn wrong_chain_id_is_refused_before_reading() {
    let f = fixture();
    let l = three_layers().remove(0);
    let lease = f.store.lease();
    let e = f
        .store
        .ingest_layer(
            &lease,
            &mut &l.bytes[..],
            &l.info,
            &l.diff_id,
            &sha256_digest(b"x"),
            None,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(e.to_string().contains("chain ID"), "{e}");
    assert_clean(&f);
}

#[test]
fn concurrent_ingests_of_the_same_layer_both_succeed_with_one_copy() {
    let f = fixture();
    let layers = three_layers();
    let config_a = config_for(&layers, "a");
    let config_b = config_for(&layers, "b");
    let store = &f.store;
    std::thread::scope(|s| {
        for (name, config) in [("a", &config_a), ("b", &config_b)] {
            let layers = &layers;
            s.spawn(move || {
                let lease = store.lease();
                for i in 0..layers.len() {
                    // No has_layer check: both really ingest and race to publish.
                    ingest(store, &lease, layers, i).unwrap();
                }
                store
                    .register_pulled(lease, &pulled(config, layers, name, Some("latest")))
                    .unwrap();
            });
        }
    });
    assert_eq!(dir_count(&f.root.join("layers")), 3);
    for c in chains_of(&layers) {
        assert_eq!(layer_refcount(&f.store, &c), Some(2));
    }
    assert_clean(&f);
}

#[test]
fn a_lease_keeps_a_shared_layer_while_the_other_image_is_removed() {
    let f = fixture();
    let layers = three_layers();
    let a = pull(
        &f.store,
        &layers[..2],
        &config_for(&layers[..2], "a"),
        "a",
        Some("latest"),
    );
    // A second pull shares the first two layers and is under way.
    let lease = f.store.lease();
    let chains = chains_of(&layers);
    assert!(f.store.protect(&lease, &chains[0]));
    assert!(f.store.protect(&lease, &chains[1]));
    assert!(!f.store.protect(&lease, &chains[2]));
    let items = f.store.remove_image("a", false, true, &|_| None).unwrap();
    assert_eq!(
        deleted_ids(&items),
        vec![a.image_id.clone()],
        "pinned layers are not deleted"
    );
    assert!(f.store.layer_path(&chains[0]).join("bin/sh").is_file());
    assert_eq!(layer_refcount(&f.store, &chains[1]), Some(0));
    assert_clean(&f);
    ingest(&f.store, &lease, &layers, 2).unwrap();
    let b = f
        .store
        .register_pulled(
            lease,
            &pulled(&config_for(&layers, "b"), &layers, "b", Some("latest")),
        )
        .unwrap();
    assert_eq!(layer_refcount(&f.store, &chains[0]), Some(1));
    assert!(f.store.resolve("b").unwrap().id == b.image_id);
    assert_clean(&f);

    // A lease that ends without registering leaves the shared layers to their image,
    // and removes nothing that image uses.
    let lease = f.store.lease();
    assert!(f.store.protect(&lease, &chains[0]));
    drop(lease);
    assert_eq!(layer_refcount(&f.store, &chains[0]), Some(1));
    f.store.remove_image("b", false, true, &|_| None).unwrap();
    assert_eq!(dir_count(&f.root.join("layers")), 0);
    assert_eq!(dir_count(&f.root.join("blobs/sha256")), 0);
    assert_clean(&f);
}

#[test]
fn register_refuses_missing_or_unpinned_layers() {
    let f = fixture();
    let layers = three_layers();
    let config = config_for(&layers, "x");
    let lease = f.store.lease();
    ingest(&f.store, &lease, &layers, 0).unwrap();
    let e = f
        .store
        .register_pulled(lease, &pulled(&config, &layers, "x", Some("latest")))
        .unwrap_err();
    assert!(e.to_string().contains("is not stored"), "{e}");
    assert_eq!(f.store.count(), 0);
    assert_eq!(
        dir_count(&f.root.join("layers")),
        0,
        "the ended lease removed its layer"
    );
    // Stored but not pinned by this lease.
    pull(&f.store, &layers, &config, "x", Some("latest"));
    let lease = f.store.lease();
    let e = f
        .store
        .register_pulled(
            lease,
            &pulled(&config_for(&layers, "y"), &layers, "y", Some("latest")),
        )
        .unwrap_err();
    assert!(e.to_string().contains("not pinned"), "{e}");
    // A manifest that does not match its digest.
    let lease = f.store.lease();
    for c in chains_of(&layers) {
        assert!(f.store.protect(&lease, &c));
    }
    let mut p = pulled(&config, &layers, "x", Some("latest"));
    p.manifest.1.push(b' ');
    assert!(f.store.register_pulled(lease, &p).is_err());
    assert_clean(&f);
}

#[test]
fn register_sets_tag_and_digest_reports_up_to_date_and_moves_tags() {
    let f = fixture();
    let layers = three_layers();
    let old_config = config_for(&layers[..1], "old");
    let old = pull(
        &f.store,
        &layers[..1],
        &old_config,
        "library/app",
        Some("1"),
    );
    assert!(old.updated);
    let again = pull(&f.store, &layers[..1], &old_config, "app", Some("1"));
    assert_eq!(
        again,
        RegisterOutcome {
            image_id: old.image_id.clone(),
            updated: false
        }
    );
    assert_eq!(
        layer_refcount(&f.store, &chains_of(&layers)[0]),
        Some(1),
        "re-pull does not count twice"
    );
    // By digest: up to date too.
    let by_digest = pull(&f.store, &layers[..1], &old_config, "app", None);
    assert!(!by_digest.updated);
    // The tag moves to a newer image; the old one keeps its digest and turns dangling.
    let new = pull(
        &f.store,
        &layers,
        &config_for(&layers, "new"),
        "app",
        Some("1"),
    );
    assert!(new.updated);
    assert_eq!(f.store.resolve("app:1").unwrap().id, new.image_id);
    let mut filters = std::collections::BTreeMap::new();
    filters.insert("dangling".to_string(), vec!["true".to_string()]);
    let dangling = f
        .store
        .list(&ListOptions {
            all: false,
            filters,
        })
        .unwrap();
    assert_eq!(dangling.len(), 1);
    assert_eq!(dangling[0].id, old.image_id);
    let old_digest = pulled(&old_config, &layers[..1], "x", None).repo_digest;
    assert_eq!(dangling[0].repo_digests, vec![format!("app@{old_digest}")]);
    assert_clean(&f);
}

#[test]
fn rmi_of_a_pulled_image_untags_name_at_digest_too() {
    let f = fixture();
    let layers = three_layers();
    let config = config_for(&layers, "r");
    let out = pull(&f.store, &layers, &config, "busybox", Some("latest"));
    let digest = pulled(&config, &layers, "x", None).repo_digest;
    let items = f
        .store
        .remove_image("busybox", false, false, &|_| None)
        .unwrap();
    assert_eq!(
        untagged_names(&items),
        vec!["busybox:latest".to_string(), format!("busybox@{digest}")]
    );
    let deleted = deleted_ids(&items);
    assert_eq!(deleted[0], out.image_id);
    assert_eq!(deleted.len(), 4, "image and three layers: {deleted:?}");
    for d in ["layers", "blobs/sha256"] {
        assert_eq!(dir_count(&f.root.join(d)), 0, "{d}");
    }
    // By name@digest.
    pull(&f.store, &layers, &config, "busybox", Some("latest"));
    let items = f
        .store
        .remove_image(&format!("busybox@{digest}"), false, false, &|_| None)
        .unwrap();
    assert_eq!(untagged_names(&items), vec![format!("busybox@{digest}")]);
    assert!(
        deleted_ids(&items).is_empty(),
        "the tag still holds the image"
    );
    assert!(f.store.resolve("busybox:latest").is_ok());
    assert_clean(&f);
}

#[test]
fn reopen_after_a_crash_mid_pull_cleans_up_and_keeps_live_images() {
    let f = fixture();
    let layers = three_layers();
    let config = config_for(&layers[..2], "live");
    let mut p = pulled(&config, &layers[..2], "live", Some("1"));
    let index = br#"{"schemaVersion":2,"manifests":[]}"#.to_vec();
    p.index = Some((sha256_digest(&index), index.clone()));
    p.repo_digest = sha256_digest(&index);
    let lease = f.store.lease();
    ingest(&f.store, &lease, &layers, 0).unwrap();
    ingest(&f.store, &lease, &layers, 1).unwrap();
    let live = f.store.register_pulled(lease, &p).unwrap();
    // A second pull crashes: one layer recorded under a lease that never ends, and
    // half-written files in tmp/.
    let lease = f.store.lease();
    ingest(&f.store, &lease, &layers, 2).unwrap();
    std::mem::forget(lease);
    fs::write(f.root.join("tmp/ingest-abc"), b"partial blob").unwrap();
    fs::create_dir_all(f.root.join("tmp/layer-abc/usr/bin")).unwrap();
    let store = ImageStore::open(&f.root, f.store.db.clone()).unwrap();
    assert_eq!(dir_count(&f.root.join("tmp")), 0);
    assert!(!store.has_layer(&chains_of(&layers)[2]));
    assert!(!store.content.exists(&layers[2].info.digest));
    assert_eq!(store.resolve("live:1").unwrap().id, live.image_id);
    assert!(
        store.content.exists(&p.manifest.0),
        "the manifest of a live image stays"
    );
    assert!(
        store.content.exists(&p.index.as_ref().unwrap().0),
        "and its index"
    );
    assert!(store.content.exists(&layers[0].info.digest));
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    assert_eq!(
        store.inspect("live:1").unwrap().repo_digests,
        vec![format!("live@{}", sha256_digest(&index))]
    );
    // Removing the image takes its manifest and index along.
    store
        .remove_image("live:1", false, false, &|_| None)
        .unwrap();
    assert_eq!(dir_count(&f.root.join("blobs/sha256")), 0);
}

#[test]
fn save_of_a_pulled_image_loads_back_identical() {
    let f = fixture();
    let layers = three_layers();
    let config = config_for(&layers, "saved");
    let out = pull(&f.store, &layers, &config, "app", Some("v2"));
    let mut archive = Vec::new();
    f.store.save(&["app:v2".to_string()], &mut archive).unwrap();
    let g = fixture();
    let msgs = g.store.load(&mut &archive[..]).unwrap();
    assert_eq!(msgs, vec!["Loaded image: app:v2".to_string()]);
    assert_eq!(g.store.resolve("app:v2").unwrap().id, out.image_id);
    for (i, c) in chains_of(&layers).iter().enumerate() {
        let (tar, _) = g.store.layer_tar(c).unwrap();
        let tar = read_all(tar);
        assert_eq!(sha256_digest(&tar), layers[i].diff_id);
    }
    assert_eq!(g.store.check().unwrap(), Vec::<String>::new());
}

#[test]
fn push_plan_reuses_pulled_blobs_and_compresses_local_layers_once() {
    let f = fixture();
    // A local image: its layer gets gzipped once, then recorded.
    let tar = layer_tar(&[("a/b", &[5u8; 10_000])]);
    let id = import(&f.store, &tar, Some("local:1"));
    let p1 = f.store.push_plan("local:1").unwrap();
    let p2 = f.store.push_plan("local:1").unwrap();
    assert_eq!(sha256_digest(&p1.manifest), sha256_digest(&p2.manifest));
    assert_eq!(p1.config_digest, id);
    assert_eq!(sha256_digest(&p1.config), id);
    assert_eq!(
        p1.manifest_media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let l = &p1.layers[0];
    assert_eq!(l.blob.media_type, MEDIA_DOCKER_LAYER_GZIP);
    assert_eq!(l.diff_id, sha256_digest(&tar));
    let bytes = fs::read(&l.path).unwrap();
    assert_eq!(sha256_digest(&bytes), l.blob.digest);
    assert_eq!(bytes.len() as u64, l.blob.size);
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "gzip mtime is 0");
    let mut unz = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut unz)
        .unwrap();
    assert_eq!(unz, tar);
    let m: serde_json::Value = serde_json::from_slice(&p1.manifest).unwrap();
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(m["config"]["digest"], id.as_str());
    assert_eq!(m["layers"][0]["digest"], l.blob.digest.as_str());
    assert_eq!(m["layers"][0]["size"], l.blob.size);
    assert_eq!(
        f.store.check().unwrap(),
        Vec::<String>::new(),
        "the gzip blob is known"
    );
    // The same layer compressed in a fresh store gives the same digest (deterministic).
    let g = fixture();
    import(&g.store, &tar, Some("local:1"));
    assert_eq!(g.store.push_plan("local:1").unwrap().layers[0].blob, l.blob);

    // A pulled image pushes the very blobs it was pulled as.
    let layers = three_layers();
    let config = config_for(&layers, "p");
    let out = pull(
        &f.store,
        &layers,
        &config,
        "registry.local:5000/app",
        Some("1"),
    );
    let plan = f.store.push_plan(&out.image_id).unwrap();
    for (pl, l) in plan.layers.iter().zip(&layers) {
        assert_eq!(pl.blob.digest, l.info.digest);
        assert_eq!(pl.blob.size, l.info.size);
        assert_eq!(fs::read(&pl.path).unwrap(), l.bytes);
    }
    assert_eq!(plan.layers[1].blob.media_type, MEDIA_OCI_LAYER_ZSTD);
    // The repository pulled from holds the blobs: a push elsewhere can mount them.
    for pl in &plan.layers {
        assert_eq!(pl.sources, vec!["registry.local:5000/app".to_string()]);
    }
    let other = Reference::parse_normalized("registry.local:5000/other").unwrap();
    f.store
        .add_repo_digest(&other, &sha256_digest(&plan.manifest), &out.image_id)
        .unwrap();
    let plan = f.store.push_plan(&out.image_id).unwrap();
    assert_eq!(
        plan.layers[0].sources,
        vec![
            "registry.local:5000/other".to_string(),
            "registry.local:5000/app".to_string()
        ],
        "most recent first"
    );
    assert!(
        p1.layers[0].sources.is_empty(),
        "a local layer has no source before a push"
    );
    assert_eq!(
        plan.layers[2].blob.media_type,
        "application/vnd.docker.image.rootfs.diff.tar"
    );

    // After the push, the daemon records the manifest digest.
    let name = Reference::parse_normalized("localhost:5000/local").unwrap();
    let d = sha256_digest(&p1.manifest);
    f.store.add_repo_digest(&name, &d, &id).unwrap();
    assert_eq!(
        f.store.inspect("local:1").unwrap().repo_digests,
        vec![format!("localhost:5000/local@{d}")]
    );
    assert!(f
        .store
        .add_repo_digest(&name, &d, &sha256_digest(b"nope"))
        .is_err());
    // Removing the local image takes the tar and the gzip blob along.
    // (`rmi local:1` only untags: the digest reference of another repository stays, as
    // in Docker.)
    let items = f
        .store
        .remove_image("local:1", false, false, &|_| None)
        .unwrap();
    assert!(deleted_ids(&items).is_empty());
    f.store.remove_image(&id, true, false, &|_| None).unwrap();
    f.store
        .remove_image(&out.image_id, true, false, &|_| None)
        .unwrap();
    assert_eq!(dir_count(&f.root.join("blobs/sha256")), 0);
    assert_clean(&f);
}

#[test]
fn layers_sharing_a_diff_id_keep_their_blob_until_both_go() {
    // The same tar on two different parents: two chains, one blob.
    let f = fixture();
    let base_a = blob(layer_tar(&[("a", b"1")]), Compression::Gzip);
    let base_b = blob(layer_tar(&[("b", b"2")]), Compression::Gzip);
    let top = blob(layer_tar(&[("top", b"t")]), Compression::Gzip);
    let la = vec![base_a, top.clone()];
    let lb = vec![base_b, top.clone()];
    pull(&f.store, &la, &config_for(&la, "a"), "a", Some("1"));
    pull(&f.store, &lb, &config_for(&lb, "b"), "b", Some("1"));
    f.store
        .remove_image("a:1", false, false, &|_| None)
        .unwrap();
    assert!(f.store.content.exists(&top.info.digest));
    let (tar, _) = f.store.layer_tar(&chains_of(&lb)[1]).unwrap();
    assert_eq!(read_all(tar), top.tar);
    assert_clean(&f);
}

#[test]
fn ingests_a_multi_megabyte_layer_from_a_chunked_reader_with_progress() {
    // Incompressible content, so the blob spans many progress steps and many chunks
    // between the decoding and the unpacking thread.
    let f = fixture();
    let mut x: u64 = 0x2545f4914f6cdd1d;
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| {
            let data = (0..100 * 1024)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            (format!("d{}/f{i}", i % 3), data)
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let l = blob(layer_tar(&refs), c);
        assert!(l.info.size > 3 * 1024 * 1024);
        let lease = f.store.lease();
        let mut r = Flaky {
            data: &l.bytes,
            pos: 0,
            fail_at: None,
        };
        let mut reports = Vec::new();
        f.store
            .ingest_layer(
                &lease,
                &mut r,
                &l.info,
                &l.diff_id,
                &l.diff_id,
                None,
                &mut |n| reports.push(n),
            )
            .unwrap();
        assert!(reports.len() >= 6, "{c:?}: {reports:?}");
        assert!(reports
            .windows(2)
            .all(|w| w[1] >= w[0] + 512 * 1024 || w[1] == l.info.size));
        assert_eq!(reports.last(), Some(&l.info.size));
        let dir = f.store.layer_path(&l.diff_id);
        for (name, data) in &files {
            assert_eq!(&fs::read(dir.join(name)).unwrap(), data, "{c:?} {name}");
        }
        let (tar, size) = f.store.layer_tar(&l.diff_id).unwrap();
        assert_eq!(size, l.tar.len() as u64);
        assert_eq!(sha256_digest(&read_all(tar)), l.diff_id);
        drop(lease);
        assert!(!f.store.has_layer(&l.diff_id));
    }
    assert_clean(&f);
}

#[test]
fn check_reports_a_missing_compressed_blob_or_manifest() {
    let f = fixture();
    let layers = three_layers();
    let config = config_for(&layers, "c");
    let p = pulled(&config, &layers, "c", Some("1"));
    pull(&f.store, &layers, &config, "c", Some("1"));
    assert_clean(&f);
    fs::remove_file(f.store.content.blob_path(&layers[0].info.digest)).unwrap();
    fs::remove_file(f.store.content.blob_path(&p.manifest.0)).unwrap();
    let problems = f.store.check().unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("manifest blob") || problems[1].contains("manifest blob"));
    assert!(problems.iter().any(|p| p.contains(&format!(
        "compressed blob {} missing",
        layers[0].info.digest
    ))));
    // A stray layer record with count 0 and no lease is a problem too.
    let lease = f.store.lease();
    let extra = blob(layer_tar(&[("z", b"z")]), Compression::Gzip);
    f.store
        .ingest_layer(
            &lease,
            &mut &extra.bytes[..],
            &extra.info,
            &extra.diff_id,
            &extra.diff_id,
            None,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(f.store.check().unwrap().len(), 2, "pinned: fine");
    std::mem::forget(lease);
    // (A forgotten lease still pins: only a restart clears it.)
    let store = ImageStore::open(&f.root, f.store.db.clone()).unwrap();
    assert!(!store.has_layer(&extra.diff_id));
}
