//! Property tests of the parsers that read outside input: image references, `load`'s
//! manifests and OCI indexes, and tar streams through the layer unpacker and `load`'s
//! staging. Bounded case counts keep them to a few seconds; they must never panic or hang.

use proptest::prelude::*;

use crate::reference::Reference;
use crate::store_tests::fixture;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Reference-like text: components, separators, tags and digests in any order.
fn reference_like() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        "[a-z0-9]{1,8}",
        "[A-Za-z0-9._-]{1,8}",
        Just("localhost".to_string()),
        Just("docker.io".to_string()),
        Just("index.docker.io".to_string()),
        Just("127.0.0.1:5000".to_string()),
        Just("[::1]:5000".to_string()),
        Just("library".to_string()),
        Just(format!("sha256:{}", "a".repeat(64))),
        Just("a".repeat(64)),
        Just("x".repeat(300)),
    ];
    let sep = prop_oneof![
        Just("/"),
        Just(":"),
        Just("@"),
        Just("."),
        Just("_"),
        Just("__"),
        Just("-"),
        Just("")
    ];
    proptest::collection::vec((part, sep), 0..6)
        .prop_map(|v| v.into_iter().map(|(p, s)| format!("{p}{s}")).collect())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn references_never_panic_and_round_trip(s in prop_oneof![reference_like(), any::<String>()]) {
        if let Ok(r) = Reference::parse_normalized(&s) {
            // What a reference prints parses back to itself, in both spellings.
            let again = Reference::parse_normalized(&r.to_string()).expect("reparse");
            prop_assert_eq!(&again, &r);
            // The familiar spelling drops `docker.io/`, which Docker cannot read back when
            // what is left starts like a registry host (`docker.io/localhost/x`) or is 64
            // hex digits, an image ID (`docker.io/<hex>`): Docker has the same two gaps.
            let familiar_text = r.familiar_string();
            let first = familiar_text.split('/').next().unwrap_or_default();
            let reads_as_host = familiar_text.contains('/')
                && (first.contains(['.', ':']) || first == "localhost");
            let reads_as_id = familiar_text.len() == 64
                && familiar_text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
            if !reads_as_host && !reads_as_id {
                let familiar = Reference::parse_normalized(&familiar_text).expect("familiar");
                prop_assert_eq!(&familiar, &r);
            }
            let _ = r.clone().with_default_tag();
            let _ = r.with_tag("v1");
        }
    }

    /// Valid references are accepted.
    #[test]
    fn valid_references_parse(
        domain in proptest::option::of(prop_oneof![Just("localhost:5000"), Just("registry.example.com"), Just("127.0.0.1:5000")]),
        path in proptest::collection::vec("[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?", 1..4),
        tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        digest in proptest::option::of("[a-f0-9]{64}"),
    ) {
        let mut s = String::new();
        if let Some(d) = domain {
            s.push_str(d);
            s.push('/');
        }
        s.push_str(&path.join("/"));
        if let Some(t) = &tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &digest {
            s.push_str("@sha256:");
            s.push_str(d);
        }
        let r = Reference::parse_normalized(&s);
        prop_assert!(r.is_ok(), "{s}: {r:?}");
        let r = r.unwrap();
        prop_assert_eq!(r.tag(), tag.as_deref());
    }
}

/// JSON values shaped like manifests, indexes and `manifest.json`, with wrong types mixed in.
fn json_doc() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        prop_oneof![
            Just("application/vnd.oci.image.index.v1+json".to_string()),
            Just("application/vnd.oci.image.manifest.v1+json".to_string()),
            Just("application/vnd.docker.distribution.manifest.list.v2+json".to_string()),
            Just(format!("sha256:{}", "b".repeat(64))),
            Just("sha256:../../etc/passwd".to_string()),
            Just("blobs/sha256/x".to_string()),
            Just("/etc/passwd".to_string()),
            Just("busybox:latest".to_string()),
            ".{0,12}",
        ]
        .prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("schemaVersion"),
        Just("mediaType"),
        Just("manifests"),
        Just("config"),
        Just("layers"),
        Just("digest"),
        Just("size"),
        Just("annotations"),
        Just("Config"),
        Just("RepoTags"),
        Just("Layers"),
        Just("io.containerd.image.name"),
        Just("org.opencontainers.image.ref.name"),
        Just("rootfs"),
        Just("diff_ids"),
        Just("platform"),
        Just("architecture"),
        Just("os"),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..config() })]

    /// `load` of archives whose `manifest.json`, `index.json` and blobs are any JSON.
    #[test]
    fn load_never_panics_on_any_manifest(manifest in json_doc(), index in json_doc(), blob in json_doc(), oci in any::<bool>()) {
        let f = fixture();
        let blob_name = format!("blobs/sha256/{}", "b".repeat(64));
        let mut files = vec![
            ("index.json", serde_json::to_vec(&index).unwrap()),
            (blob_name.as_str(), serde_json::to_vec(&blob).unwrap()),
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ];
        if !oci {
            files.push(("manifest.json", serde_json::to_vec(&manifest).unwrap()));
        }
        let tar = tar_of(&files);
        let _ = f.store.load(&mut &tar[..]);
        prop_assert_eq!(crate::store_tests::dir_count(&f.root.join("tmp")), 0);
    }

    /// Valid tars with bytes changed anywhere: the unpacker and `load`'s staging refuse
    /// or unpack, never panic.
    #[test]
    fn mutated_tars_never_panic(
        names in proptest::collection::vec("[a-z]{1,6}(/[a-z_]{1,6}){0,3}", 1..5),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..12),
        fix_checksums in any::<bool>(),
    ) {
        let files: Vec<(&str, Vec<u8>)> = names.iter().map(|n| (n.as_str(), n.as_bytes().repeat(40))).collect();
        let mut tar = tar_of(&files);
        tar.extend_from_slice(&[0u8; 1024]);
        for (i, b) in &edits {
            let at = i.index(tar.len());
            tar[at] = *b;
        }
        if fix_checksums {
            for block in tar.chunks_mut(512) {
                if block.len() == 512 && block[257..262] == *b"ustar" {
                    let mut h = tar::Header::new_old();
                    h.as_mut_bytes().copy_from_slice(block);
                    h.set_cksum();
                    block.copy_from_slice(h.as_bytes());
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let _ = crate::unpack::unpack_layer(&tar[..], &dir.path().join(""));
        let dir = tempfile::tempdir().unwrap();
        let _ = crate::stage::Staged::extract(&tar[..], dir.path());
    }
}
