//! Issue 18, points 1 and 2: where the CLI finds the daemon (`-H`, `DOCKER_HOST`,
//! `BERTH_HOST`, `--context`, `DOCKER_CONTEXT`, the Docker CLI's shared context store,
//! `DOCKER_API_VERSION`) and that it never starts a daemon unless asked.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};

/// `berth ARGS…` with a clean environment: no host, no context, the given config dir, and
/// the extra variables in `env`.
fn berth_env(config: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(BERTH);
    cmd.args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .env_remove("BERTH_START_DAEMON")
        .env("DOCKER_CONFIG", config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(cmd, None, CMD_TIMEOUT, &format!("berth {}", args.join(" ")))
}

fn docker_env(config: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(DOCKER_CLI);
    cmd.args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .env("DOCKER_CONFIG", config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(
        cmd,
        None,
        CMD_TIMEOUT,
        &format!("docker {}", args.join(" ")),
    )
}

#[test]
fn a_silent_socket_is_dockers_error_and_no_daemon_is_started() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("nobody.sock");
    let host = format!("unix://{}", sock.display());
    for (env, args) in [
        (vec![("DOCKER_HOST", host.as_str())], vec!["ps"]),
        (vec![("BERTH_HOST", host.as_str())], vec!["ps"]),
        (vec![], vec!["-H", host.as_str(), "ps"]),
    ] {
        let out = berth_env(dir.path(), &env, &args);
        assert_eq!(code(&out), 1, "{env:?} {args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!(
                "Cannot connect to the Docker daemon at {host}. Is the docker daemon running?\n"
            )
        );
        assert!(!sock.exists(), "a daemon was started at {host}");
    }
    // --start-daemon is refused for a host other than the default socket.
    let out = berth_env(dir.path(), &[], &["-H", &host, "--start-daemon", "ps"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("--start-daemon starts a daemon on the default socket"));
    assert!(!sock.exists());
}

#[test]
fn docker_host_berth_host_and_h_reach_the_daemon() {
    let d = TestDaemon::start();
    let cfg = tempfile::tempdir().unwrap();
    let host = d.host();
    let name = "e2e-host-probe";
    d.import_busybox();
    d.berth_ok(&["create", "--name", name, "busybox", "true"]);
    for env in [
        [("DOCKER_HOST", host.as_str())],
        [("BERTH_HOST", host.as_str())],
    ] {
        let out = berth_env(cfg.path(), &env, &["ps", "-a", "--format", "{{.Names}}"]);
        assert_success(&out, "berth ps");
        assert_eq!(stdout(&out).trim(), name, "{env:?}");
    }
    // -H wins over DOCKER_HOST.
    let out = berth_env(
        cfg.path(),
        &[("DOCKER_HOST", "unix:///nonexistent.sock")],
        &["-H", &host, "ps", "-aq"],
    );
    assert_success(&out, "berth -H ps");
    // DOCKER_API_VERSION pins the version; otherwise it is negotiated (1.45 here).
    let out = berth_env(
        cfg.path(),
        &[("DOCKER_HOST", &host), ("DOCKER_API_VERSION", "1.41")],
        &["version"],
    );
    assert_success(&out, "berth version");
    assert!(
        stdout(&out).contains(" API version:       1.41 (downgraded from 1.45)\n"),
        "{}",
        stdout(&out)
    );
    let out = berth_env(
        cfg.path(),
        &[("DOCKER_HOST", &host)],
        &[
            "version",
            "--format",
            "{{.Client.APIVersion}} {{.Client.Context}}",
        ],
    );
    assert_eq!(stdout(&out).trim(), "1.45 default");
}

#[test]
fn contexts_are_shared_with_the_docker_cli() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.berth_ok(&["create", "--name", "ctx-probe", "busybox", "true"]);
    let cfg = tempfile::tempdir().unwrap();
    let host = d.host();
    let dock = format!("host={host}");
    // Created by berth, used by docker.
    let out = berth_env(
        cfg.path(),
        &[],
        &[
            "context",
            "create",
            "bctx",
            "--description",
            "from berth",
            "--docker",
            &dock,
        ],
    );
    assert_success(&out, "berth context create");
    assert_eq!(stdout(&out), "bctx\n");
    assert_eq!(stderr(&out), "Successfully created context \"bctx\"\n");
    let out = docker_env(
        cfg.path(),
        &[],
        &["--context", "bctx", "ps", "-a", "--format", "{{.Names}}"],
    );
    assert_success(&out, "docker --context bctx ps");
    assert_eq!(stdout(&out).trim(), "ctx-probe");
    // Created by docker, used by berth; both list the same contexts the same way.
    let out = docker_env(
        cfg.path(),
        &[],
        &["context", "create", "dctx", "--docker", &dock],
    );
    assert_success(&out, "docker context create");
    let b = berth_env(cfg.path(), &[], &["context", "ls", "--format", "json"]);
    let k = docker_env(cfg.path(), &[], &["context", "ls", "--format", "json"]);
    let strip_default = |o: &Output| -> Vec<String> {
        stdout(o)
            .lines()
            .filter(|l| !l.contains("\"Name\":\"default\""))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(strip_default(&b), strip_default(&k));
    assert_eq!(strip_default(&b).len(), 2, "{}", stdout(&b));
    let b = berth_env(cfg.path(), &[], &["context", "inspect", "dctx"]);
    let k = docker_env(cfg.path(), &[], &["context", "inspect", "dctx"]);
    assert_eq!(stdout(&b), stdout(&k));
    // `context use` (by berth) is what both CLIs then use.
    let out = berth_env(cfg.path(), &[], &["context", "use", "dctx"]);
    assert_success(&out, "berth context use");
    assert_eq!(stderr(&out), "Current context is now \"dctx\"\n");
    let k = docker_env(cfg.path(), &[], &["context", "show"]);
    assert_eq!(stdout(&k), "dctx\n");
    let out = berth_env(cfg.path(), &[], &["ps", "-a", "--format", "{{.Names}}"]);
    assert_success(&out, "berth ps via the current context");
    assert_eq!(stdout(&out).trim(), "ctx-probe");
    // DOCKER_CONTEXT and --context pick a context; -H with --context is refused.
    let out = berth_env(
        cfg.path(),
        &[("DOCKER_CONTEXT", "bctx")],
        &["info", "--format", "{{.ClientInfo.Context}}"],
    );
    assert_eq!(stdout(&out).trim(), "bctx", "{}", stderr(&out));
    let out = berth_env(cfg.path(), &[], &["-H", &host, "--context", "bctx", "ps"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "conflicting options: cannot specify both --host and --context\n"
    );
    let out = berth_env(cfg.path(), &[], &["--context", "nope", "ps"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).starts_with("Failed to initialize: unable to resolve docker endpoint: context \"nope\": context not found: open "),
        "{}",
        stderr(&out)
    );
    // rm: refused while in use, done with -f; docker no longer sees it.
    let out = berth_env(cfg.path(), &[], &["context", "rm", "dctx"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "context \"dctx\" is in use, set -f flag to force remove\n"
    );
    let out = berth_env(cfg.path(), &[], &["context", "rm", "-f", "dctx"]);
    assert_success(&out, "berth context rm -f");
    let k = docker_env(cfg.path(), &[], &["context", "ls", "-q"]);
    assert_eq!(stdout(&k), "bctx\ndefault\n");
    let b = berth_env(cfg.path(), &[], &["context", "ls", "-q"]);
    assert_eq!(stdout(&b), stdout(&k));
    let b = berth_env(cfg.path(), &[], &["context", "show"]);
    assert_eq!(stdout(&b), "default\n");
}
