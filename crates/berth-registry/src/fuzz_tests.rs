//! Property tests of what a registry hands over: manifests and indexes (any bytes, any
//! JSON shaped like them, any content type), platform selection and platform strings.
//! They must never panic.

use proptest::prelude::*;

use crate::manifest::{check_image_media_types, select_platform, Manifest};
use crate::platform::Platform;

fn json_doc() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        prop_oneof![
            Just("application/vnd.oci.image.index.v1+json"),
            Just("application/vnd.oci.image.manifest.v1+json"),
            Just("application/vnd.docker.distribution.manifest.list.v2+json"),
            Just("application/vnd.docker.distribution.manifest.v2+json"),
            Just("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            Just("application/vnd.docker.container.image.v1+json"),
            Just("application/vnd.oci.image.layer.v1.tar+gzip"),
            Just("linux"),
            Just("amd64"),
            Just("arm64"),
            Just("v8"),
            Just(""),
        ]
        .prop_map(serde_json::Value::from),
        ".{0,10}".prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("schemaVersion"),
        Just("mediaType"),
        Just("manifests"),
        Just("config"),
        Just("layers"),
        Just("fsLayers"),
        Just("digest"),
        Just("size"),
        Just("platform"),
        Just("architecture"),
        Just("os"),
        Just("variant"),
        Just("os.version"),
        Just("os.features"),
        Just("urls"),
        Just("annotations"),
    ];
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(keys.clone(), inner, 0..7).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/vnd.oci.image.index.v1+json".to_string()),
        Just("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8".to_string()),
        Just("application/vnd.docker.distribution.manifest.v1+prettyjws".to_string()),
        Just("application/json".to_string()),
        Just(String::new()),
        ".{0,20}",
    ]
}

fn platforms() -> Vec<Platform> {
    [
        "linux/amd64",
        "linux/arm64/v8",
        "linux/arm/v7",
        "windows/amd64",
    ]
    .iter()
    .filter_map(|p| Platform::parse(p).ok())
    .chain([Platform::host()])
    .collect()
}

fn exercise(m: &Manifest) {
    match m {
        Manifest::Index { manifests, .. } => {
            for p in platforms() {
                let _ = select_platform(manifests, &p);
            }
        }
        Manifest::Image {
            media_type,
            config,
            layers,
        } => {
            let _ = check_image_media_types(media_type, config, layers);
        }
        Manifest::Schema1 => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn manifests_of_any_shape_never_panic(doc in json_doc(), ct in content_type()) {
        let bytes = serde_json::to_vec(&doc).unwrap();
        if let Ok(m) = Manifest::parse(&ct, &bytes) {
            exercise(&m);
        }
    }

    #[test]
    fn manifests_of_any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), ct in content_type()) {
        if let Ok(m) = Manifest::parse(&ct, &bytes) {
            exercise(&m);
        }
    }

    #[test]
    fn platform_strings_never_panic(s in prop_oneof!["[a-z0-9/]{0,24}", ".{0,24}"]) {
        if let Ok(p) = Platform::parse(&s) {
            // What a platform prints parses back to it.
            prop_assert_eq!(Platform::parse(&p.to_string()).ok(), Some(p.clone()));
            for other in platforms() {
                let _ = p.match_rank(&other);
                let _ = other.match_rank(&p);
            }
        }
    }
}
