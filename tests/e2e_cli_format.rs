//! Issue 18, point 6: `--format json` on list and inspect commands prints what the
//! Docker CLI 28 prints against the same daemon.

mod common;

use common::*;

/// The output with the fields that depend on the moment ("1 second ago") removed.
fn timeless(out: &str) -> String {
    out.lines()
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(serde_json::Value::Object(mut o)) => {
                for k in ["RunningFor", "Status", "CreatedSince"] {
                    o.remove(k);
                }
                serde_json::Value::Object(o).to_string()
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn format_json_matches_the_docker_cli() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.berth_ok(&["create", "--name", "fmt-probe", "busybox", "true"]);
    d.berth_ok(&["volume", "create", "fmt-vol"]);
    d.berth_ok(&["network", "create", "fmt-net"]);
    for args in [
        &["ps", "-a", "--format", "json"][..],
        &["images", "--format", "json"],
        &["volume", "ls", "--format", "json"],
        &["network", "ls", "--format", "json"],
        &["history", "--format", "json", "busybox"],
        &["inspect", "--format", "json", "fmt-probe"],
        &["image", "inspect", "--format", "json", "busybox"],
        &["volume", "inspect", "--format", "json", "fmt-vol"],
        &["network", "inspect", "--format", "json", "fmt-net"],
        &["ps", "-a", "--format", "{{json .}}"],
        &["volume", "ls", "-q"],
        &["network", "ls", "-q"],
        &["images", "-q"],
        &["ps", "-aq"],
    ] {
        let ours = d.berth_ok(args);
        assert!(!ours.trim().is_empty(), "{args:?}");
        assert_eq!(timeless(&ours), timeless(&d.docker_ok(args)), "{args:?}");
    }
}
