//! The build cache's housekeeping (issue 12, point 6): `builder prune` (`POST
//! /build/prune`, `-a`, `--filter until=`), the build cache rows of `system df` and
//! `system df -v`, and `system prune` including it, with Berth's CLI and the Docker CLI,
//! in the words and statuses dockerd 20.10 answers with.

mod common;

use std::fs;

use common::build_context::daemon;
use common::*;

fn filters(json: &str) -> String {
    let mut out = String::new();
    for b in json.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    format!("filters={out}")
}

#[test]
fn build_prune_checks_its_parameters_as_dockerd_and_frees_leftovers() {
    let d = daemon();
    let prune = |q: &str| {
        let (status, _, body) = d.request("POST", &format!("/build/prune?{q}"), None);
        (status, String::from_utf8_lossy(&body).to_string())
    };
    let (status, body) = prune("");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["CachesDeleted"], serde_json::Value::Null);
    assert_eq!(v["SpaceReclaimed"], 0);
    assert_eq!(
        prune(&(filters(r#"{"until":{"24h":true}}"#) + "&all=1")).0,
        200
    );
    assert_eq!(
        prune(&filters(r#"{"bogus":["x"]}"#)),
        (
            400,
            r#"{"message":"failed to prune build cache: Invalid filter 'bogus'"}"#.into()
        )
    );
    let (status, body) = prune(&filters(r#"{"until":["garbage"]}"#));
    assert_eq!(status, 500);
    assert!(
        body.contains(r#"failed to prune build cache: \"until\" filter expects a duration (e.g., '24h'): time: invalid duration \"garbage\""#),
        "{body}"
    );
    assert_eq!(prune(&filters(r#"{"until":["1h","2h"]}"#)).0, 400);
    assert_eq!(prune("keep-storage=abc").0, 500);

    // What a killed daemon's build left is what the build cache prune frees.
    let left = d.root.join("builds/tmp/0123456789abcdef");
    fs::create_dir_all(&left).unwrap();
    fs::write(left.join("file"), vec![7u8; 5000]).unwrap();
    let out = d.berth_ok(&["builder", "prune", "-f"]);
    assert_eq!(out, "Total reclaimed space: 5kB\n");
    assert!(!left.exists());
    let out = d.berth_ok(&["builder", "prune", "-a", "-f", "--filter", "until=24h"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    let out = d.berth(&["builder", "prune", "-f", "--filter", "until=bad"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains(
            "failed to prune build cache: \"until\" filter expects a duration (e.g., '24h'): time: invalid duration \"bad\""
        ),
        "{}",
        stderr(&out)
    );
    let out = d.berth_with_stdin(&["builder", "prune"], Some(b"n\n"));
    assert_eq!(
        stdout(&out),
        "WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] "
    );
    let (_, _, body) = d.request("GET", "/_ping", None);
    assert_eq!(body, b"OK");
}

/// A stopped container, an unused network and volume, a dangling build result and a
/// tagged image: what `system prune` removes, and how it says so.
/// Returns the anonymous volume's name.
fn leave_things_to_prune(d: &TestDaemon) -> String {
    d.berth_ok(&["run", "--name", "stopped", "busybox", "true"]);
    d.berth_ok(&["network", "create", "unused-net"]);
    let volume = d.berth_ok(&["volume", "create"]).trim().to_string();
    let ctx = d.dir.join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo hi > /x\n").unwrap();
    d.berth_ok(&["build", "-q", ctx.to_str().unwrap()]);
    volume
}

fn system_prune_checks(d: &TestDaemon, run: &dyn Fn(&[&str]) -> String) {
    let volume = leave_things_to_prune(d);
    let out = run(&["system", "prune", "-f", "--volumes"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Deleted Containers:", "{out}");
    assert!(is_full_id(lines[1]), "{out}");
    assert_eq!(
        lines[2..5],
        ["", "Deleted Networks:", "unused-net"],
        "{out}"
    );
    assert_eq!(
        lines[5..8],
        ["", "Deleted Volumes:", volume.as_str()],
        "{out}"
    );
    assert_eq!(lines[8..10], ["", "Deleted Images:"], "{out}");
    let deleted: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("deleted: sha256:"))
        .collect();
    assert_eq!(
        deleted.len(),
        2,
        "the build's result and its intermediate image: {out}"
    );
    assert!(out.ends_with("\n\nTotal reclaimed space: 3B\n"), "{out}");
    // Nothing left: only the total; busybox stays (-a not given).
    assert_eq!(
        run(&["system", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    let out = run(&["system", "prune", "-a", "-f"]);
    assert!(
        out.starts_with("Deleted Images:\nuntagged: busybox:latest\ndeleted: sha256:"),
        "{out}"
    );
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Total reclaimed space: ") && last.ends_with("MB"),
        "busybox's layer is freed: {out}"
    );
    d.import_busybox();
}

#[test]
fn system_prune_and_df_with_berths_cli() {
    let d = daemon();
    let df = d.berth_ok(&["system", "df"]);
    assert!(
        df.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["Build", "Cache", "0", "0", "0B", "0B"]),
        "{df}"
    );
    let df = d.berth_ok(&["system", "df", "-v"]);
    assert!(
        df.contains("\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n"),
        "{df}"
    );
    let out = d.berth_with_stdin(&["system", "prune"], Some(b"n\n"));
    assert_eq!(
        stdout(&out),
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n\nAre you sure you want to continue? [y/N] "
    );
    let out = d.berth(&["system", "prune", "-f", "--volumes", "--filter", "until=1h"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("ERROR: The \"until\" filter is not supported with \"--volumes\""),
        "{}",
        stderr(&out)
    );
    system_prune_checks(&d, &|args| d.berth_ok(args));
}

#[test]
fn system_prune_builder_prune_and_df_with_the_docker_cli() {
    skip_unless_docker!();
    let d = daemon();
    let out = d.docker_ok(&["builder", "prune", "-a", "-f", "--filter", "until=24h"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    let out = d.docker(&["builder", "prune", "-f", "--filter", "bogus=1"]);
    assert!(
        stderr(&out).contains("failed to prune build cache: Invalid filter 'bogus'"),
        "{}",
        stderr(&out)
    );
    let df = d.docker_ok(&["system", "df"]);
    assert!(
        df.contains("\nBuild Cache     0         0         0B        0B\n"),
        "{df}"
    );
    let df = d.docker_ok(&["system", "df", "-v"]);
    assert!(df.contains("\nBuild cache usage: 0B\n"), "{df}");
    // The same text from both CLIs.
    system_prune_checks(&d, &|args| d.docker_ok(args));
}
