//! Property tests of what the daemon reads from outside: daemon.json and the `filters`
//! query of the list endpoints. Any input gives a result or an error, never a panic.

use proptest::prelude::*;

use crate::config_file::merge_file;
use crate::containers::filters;
use crate::containers::record::ContainerRecord;

fn value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        prop_oneof![
            Just("unix:///run/x.sock"),
            Just("tcp://0.0.0.0:2375"),
            Just("http://127.0.0.1:5000"),
            Just("10.0.0.0/8"),
            Just("172.17.0.1/16"),
            Just("base=10.10.0.0/16,size=24"),
            Just("docker"),
            Just("running"),
            Just("exited"),
            Just("healthy"),
            Just("1h"),
            Just("2024-01-01T00:00:00Z"),
            Just("^web$"),
            Just("a=b"),
            Just(""),
        ]
        .prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("registry-mirrors"),
        Just("insecure-registries"),
        Just("debug"),
        Just("data-root"),
        Just("exec-root"),
        Just("cgroup-parent"),
        Just("bip"),
        Just("default-address-pools"),
        Just("hosts"),
        Just("group"),
        Just("base"),
        Just("size"),
        Just("status"),
        Just("label"),
        Just("name"),
        Just("id"),
        Just("exited"),
        Just("before"),
        Just("since"),
        Just("ancestor"),
        Just("health"),
        Just("network"),
        Just("volume"),
        Just("publish"),
        Just("expose"),
        Just("unknown"),
    ];
    leaf.prop_recursive(3, 32, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn args() -> crate::config::DaemonArgs {
    use clap::Parser;
    crate::config::DaemonArgs::parse_from(["berth daemon"])
}

fn records() -> Vec<ContainerRecord> {
    let web = ContainerRecord {
        id: "0123456789abcdef".repeat(4),
        name: "/web".into(),
        ..Default::default()
    };
    vec![ContainerRecord::default(), web]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn daemon_json_of_any_shape_never_panics(v in value(), explicit in any::<bool>()) {
        let text = serde_json::to_vec(&v).unwrap();
        let mut a = args();
        let _ = merge_file(&mut a, &text, &|_| explicit);
    }

    #[test]
    fn daemon_json_of_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut a = args();
        let _ = merge_file(&mut a, &bytes, &|_| false);
    }

    #[test]
    fn filters_of_any_shape_never_panic(v in value(), raw in ".{0,40}") {
        for text in [serde_json::to_string(&v).unwrap(), raw] {
            if let Ok(f) = crate::routes::extract::parse_filters(&text) {
                if filters::validate(&f).is_ok() {
                    let ctx = filters::Context { before: None, since: None, ancestors: vec![] };
                    for r in records() {
                        let _ = filters::matches(&f, &ctx, &r);
                    }
                }
            }
        }
    }
}
