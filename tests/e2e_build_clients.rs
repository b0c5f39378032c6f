//! docker-compose 1.29 builds against Berth: `build:` with context, dockerfile, args,
//! target, labels, cache_from, extra_hosts and network, through docker-py
//! (`COMPOSE_DOCKER_CLI_BUILD=0`) and through the Docker CLI (`=1`). The venv is made
//! once from PyPI with the pins of REFERENCE §9 and cached under the target dir.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[path = "common/compose.rs"]
mod compose;

const COMPOSE_FILE: &str = r#"version: "3.8"
services:
  web:
    build:
      context: ./app
      dockerfile: Custom.Dockerfile
      args:
        GREETING: hi-from-compose
      target: final
      labels:
        com.example.lbl: "yes"
      cache_from:
        - busybox
      extra_hosts:
        - "eh.test:10.4.4.4"
      network: none
    image: composed:1
"#;

const DOCKERFILE: &str = "FROM busybox AS base\nARG GREETING=default\nRUN echo \"$GREETING\" > /greeting && grep eh.test /etc/hosts && ip -o link | grep -c -v ' lo:' || true\nFROM base AS final\nCOPY data.txt /data.txt\nFROM final AS unused\nRUN false\n";

#[test]
fn docker_compose_builds_with_every_build_key() {
    if !compose::compose_available() {
        return;
    }
    let d = TestDaemon::start();
    d.import_busybox();
    let proj = d.dir.join("proj");
    std::fs::create_dir_all(proj.join("app")).unwrap();
    std::fs::write(proj.join("docker-compose.yml"), COMPOSE_FILE).unwrap();
    std::fs::write(proj.join("app/Custom.Dockerfile"), DOCKERFILE).unwrap();
    let mut modes = vec!["0"];
    if docker_cli_available() {
        modes.push("1");
    }
    for mode in modes {
        std::fs::write(proj.join("app/data.txt"), format!("data-{mode}\n")).unwrap();
        let mut cmd = compose::compose_command(&d, "proj", &proj);
        cmd.arg("build")
            .env("COMPOSE_DOCKER_CLI_BUILD", mode)
            .env("DOCKER_BUILDKIT", "0");
        let out = run_with_timeout(cmd, None, Duration::from_secs(120), "docker-compose build");
        assert_success(
            &out,
            &format!("docker-compose build (COMPOSE_DOCKER_CLI_BUILD={mode})"),
        );
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(text.contains("10.4.4.4\teh.test"), "extra_hosts: {text}");
        assert!(text.contains("\n0\n"), "network none: {text}");
        assert!(
            !text.contains("RUN false"),
            "target stops the build: {text}"
        );
        let run = d.berth_ok(&["run", "--rm", "composed:1", "cat", "/greeting", "/data.txt"]);
        assert_eq!(run, format!("hi-from-compose\ndata-{mode}\n"));
        assert_eq!(
            d.inspect("composed:1")["Config"]["Labels"]["com.example.lbl"],
            "yes"
        );
    }
}

/// FROM an image that is only in a registry: the build pulls it (with the credentials the
/// Docker CLI sends in `X-Registry-Config`), showing the pull's progress in its stream.
#[test]
fn from_pulls_the_base_image_with_the_clients_credentials() {
    use common::registry::{RegistryAuth, TestRegistry};
    let reg = TestRegistry::start(RegistryAuth::Basic {
        user: "u".into(),
        password: "p".into(),
    });
    let d = TestDaemon::start();
    d.import_busybox();
    let name = format!("{}/base/busybox:1", reg.addr);
    d.berth_ok(&["tag", "busybox", &name]);
    let out = d.berth_with_stdin(
        &["login", "-u", "u", "--password-stdin", &reg.addr],
        Some(b"p\n"),
    );
    assert_success(&out, "berth login");
    d.berth_ok(&["push", &name]);
    d.berth_ok(&["rmi", &name, "busybox"]);
    let ctx = d.dir.join("pull");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {name}\nRUN echo pulled\n"),
    )
    .unwrap();
    let out = d.berth_ok(&["build", "-t", "pulled:0", ctx.to_str().unwrap()]);
    assert!(out.contains("Pulling from base/busybox"), "{out}");
    d.berth_ok(&["rmi", "pulled:0", &name]);
    if !docker_cli_available() {
        eprintln!("skipped the Docker CLI half: no Docker CLI");
        return;
    }
    let mut cmd = Command::new("/usr/local/bin/docker");
    cmd.args(["login", "-u", "u", "--password-stdin", &reg.addr])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"));
    let out = run_with_timeout(cmd, Some(b"p\n"), Duration::from_secs(30), "docker login");
    assert_success(&out, "docker login");
    let out = d.docker(&["build", "-t", "pulled:1", ctx.to_str().unwrap()]);
    assert_success(&out, "docker build FROM a registry image");
    let text = stdout(&out);
    assert!(text.contains("Pulling from base/busybox"), "{text}");
    assert!(text.contains("pulled\n"), "{text}");
}
