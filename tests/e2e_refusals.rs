//! Refuse, never ignore: create options Berth does not apply yet answer a 400 with a clear
//! text and leave no container behind (issue 15, point 7).

mod common;

use common::*;

/// Runs `docker create` with `flags` and expects a refusal naming `expected`.
fn refused(d: &TestDaemon, flags: &[&str], expected: &str) {
    let mut args = vec!["create"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "true"]);
    let out = d.docker(&args);
    assert_ne!(code(&out), 0, "docker {args:?} was accepted");
    assert!(
        stderr(&out).contains(expected),
        "docker {args:?}: {}",
        stderr(&out)
    );
}

#[test]
fn log_options_and_healthchecks_are_refused_not_ignored() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    refused(
        &d,
        &["--log-opt", "max-size=1x"],
        "failed to initialize logging driver: invalid size: '1x'",
    );
    refused(
        &d,
        &["--log-opt", "frobnicate=1"],
        "unknown log opt 'frobnicate' for json-file log driver",
    );
    // Healthchecks are applied (tests/e2e_health.rs); values dockerd refuses are refused.
    refused(
        &d,
        &["--health-interval", "500us"],
        "Interval in Healthcheck cannot be less than 1ms",
    );
    assert_eq!(
        d.docker_ok(&["ps", "-aq"]).trim(),
        "",
        "a refused create left a container"
    );
    // Turning healthchecks off needs nothing applied, and plain logging still works.
    let id = d.docker_ok(&[
        "create",
        "--no-healthcheck",
        "--log-driver",
        "none",
        "busybox",
        "true",
    ]);
    assert!(is_full_id(id.trim()), "{id}");
}
