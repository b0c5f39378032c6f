//! Dockerfile builds (`POST /build`, `berth build`, `docker build`): Docker's classic
//! output, images and history as Docker's builder makes them, the cache (hits, misses,
//! restarts), COPY/ADD rules, build args and stages, errors in Docker's words, and
//! cleanliness after failures.

mod common;

use std::fs;
use std::path::Path;

use common::build_context::{build, context, daemon};
use common::*;

fn build_ok(d: &TestDaemon, ctx: &Path, extra: &[&str]) -> String {
    let out = build(d, ctx, extra);
    assert_success(&out, "berth build");
    stdout(&out)
}

const FULL: &str = r#"FROM busybox
ARG A=1
ENV X=1 Y="two words" Z=$X
LABEL a=b "c d"="e f"
WORKDIR /srv
WORKDIR sub
COPY greeting /greeting
RUN echo $A > /a && ls /srv
EXPOSE 80/tcp 90
VOLUME /data
VOLUME ["/v1", "/v2"]
USER 1000:1000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s CMD echo ok
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo child
MAINTAINER me
ENTRYPOINT echo hi
CMD ["cat", "/greeting"]
"#;

#[test]
fn build_writes_dockers_stream_history_and_config() {
    let d = daemon();
    let ctx = context(&d, "full", &[("Dockerfile", FULL), ("greeting", "hello\n")]);
    let out = build_ok(&d, &ctx, &["-t", "full:1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("Sending build context to Docker daemon  "),
        "{out}"
    );
    assert_eq!(lines[1], "Step 1/19 : FROM busybox");
    assert!(
        lines[2].starts_with(" ---> ") && lines[2].len() == 18,
        "{out}"
    );
    assert_eq!(lines[3], "Step 2/19 : ARG A=1");
    assert!(lines[4].starts_with(" ---> Running in "), "{out}");
    assert!(
        lines[5].starts_with("Removing intermediate container "),
        "{out}"
    );
    assert!(
        out.contains("Step 7/19 : COPY greeting /greeting\n ---> "),
        "{out}"
    );
    assert!(
        out.contains("Step 8/19 : RUN echo $A > /a && ls /srv\n ---> Running in "),
        "{out}"
    );
    assert!(
        out.contains("\nsub\nRemoving intermediate container "),
        "RUN output: {out}"
    );
    assert!(out.contains("Successfully tagged full:1\n"), "{out}");
    let built = lines
        .iter()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap();

    let hist = d.berth_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "full:1",
    ]);
    let hist: Vec<&str> = hist.lines().collect();
    assert_eq!(hist[0], r#"/bin/sh -ec #(nop)  CMD ["cat" "/greeting"]"#);
    assert_eq!(
        hist[1],
        r#"/bin/sh -ec #(nop)  ENTRYPOINT ["/bin/sh" "-ec" "echo hi"]"#
    );
    assert_eq!(hist[4], "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]");
    assert_eq!(
        hist[5],
        r#"/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "echo ok"] "5s" "0s" "0s" '\x00'}"#
    );
    assert_eq!(hist[8], "/bin/sh -c #(nop)  VOLUME [/v1 /v2]");
    assert_eq!(hist[11], "|1 A=1 /bin/sh -c echo $A > /a && ls /srv");
    assert!(
        hist[12].starts_with("/bin/sh -c #(nop) COPY file:")
            && hist[12].ends_with(" in /greeting ")
    );
    assert_eq!(hist[13], "/bin/sh -c #(nop) WORKDIR /srv/sub");
    assert_eq!(hist[15], "/bin/sh -c #(nop)  LABEL a=b c d=e f");
    assert_eq!(hist[16], "/bin/sh -c #(nop)  ENV X=1 Y=two words Z=");
    assert_eq!(hist[17], "/bin/sh -c #(nop)  ARG A=1");

    let img = d.inspect("full:1");
    assert!(img["Id"].as_str().unwrap().contains(built));
    let c = &img["Config"];
    assert_eq!(c["Cmd"], serde_json::json!(["cat", "/greeting"]));
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/bin/sh", "-ec", "echo hi"])
    );
    assert_eq!(
        c["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "X=1",
            "Y=two words",
            "Z="
        ])
    );
    assert_eq!(c["WorkingDir"], "/srv/sub");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "90/tcp": {}})
    );
    assert_eq!(
        c["Volumes"],
        serde_json::json!({"/data": {}, "/v1": {}, "/v2": {}})
    );
    assert_eq!(c["Labels"], serde_json::json!({"a": "b", "c d": "e f"}));
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "echo ok"], "Interval": 5000000000u64})
    );
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(c["OnBuild"], serde_json::json!(["RUN echo child"]));
    assert_eq!(img["Author"], "me");
    assert_eq!(
        c["Image"], img["Parent"],
        "Config.Image names the parent, as Docker's builder"
    );

    // The files, their modes and owners.
    let ls = d.berth_ok(&[
        "run",
        "--rm",
        "--user",
        "0",
        "--entrypoint",
        "",
        "full:1",
        "sh",
        "-c",
        "cat /a /greeting; stat -c '%a %u:%g' /greeting /srv/sub",
    ]);
    assert_eq!(ls, "1\nhello\n644 0:0\n755 0:0\n");

    // One image per instruction: 18 new images, 17 of them untagged intermediate ones,
    // listed with -a only.
    let all = d.berth_ok(&["images", "-a", "-q"]);
    let top = d.berth_ok(&["images", "-q"]);
    assert_eq!(
        all.lines().count(),
        top.lines().count() + 17,
        "{all}\n{top}"
    );
    let dangling = d.berth_ok(&["images", "-q", "--filter", "dangling=true"]);
    assert!(
        dangling.trim().is_empty(),
        "intermediate images are not dangling: {dangling}"
    );
    // No container is left behind.
    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");

    // Removing the image removes the intermediate parents nothing else needs.
    let rmi = d.berth_ok(&["rmi", "full:1"]);
    assert!(
        rmi.lines()
            .filter(|l| l.starts_with("Deleted: sha256:"))
            .count()
            >= 19,
        "{rmi}"
    );
    assert_eq!(
        d.berth_ok(&["images", "-a", "-q"]).lines().count(),
        1,
        "only busybox is left"
    );
}

#[test]
fn rebuild_is_cached_across_restarts_and_a_changed_file_invalidates_later_steps() {
    let mut d = daemon();
    let df = "FROM busybox\nCOPY a /a\nRUN cat /a > /b\nCOPY c /c\nCMD [\"cat\", \"/b\"]\n";
    let ctx = context(
        &d,
        "cache",
        &[("Dockerfile", df), ("a", "one\n"), ("c", "c\n")],
    );
    let first = build_ok(&d, &ctx, &["-t", "c:1"]);
    assert!(!first.contains("Using cache"), "{first}");
    let id = d.inspect("c:1")["Id"].as_str().unwrap().to_string();

    let second = build_ok(&d, &ctx, &["-t", "c:1"]);
    assert_eq!(second.matches(" ---> Using cache").count(), 4, "{second}");
    assert!(!second.contains("Running in"), "{second}");
    assert_eq!(d.inspect("c:1")["Id"], id.as_str());

    // Touching a file without changing it keeps the cache; changing it does not.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(ctx.join("a"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let touched = build_ok(&d, &ctx, &[]);
    assert_eq!(
        touched.matches("Using cache").count(),
        4,
        "mtime does not count: {touched}"
    );

    d.stop_daemon(std::time::Duration::from_secs(10));
    d.start_daemon();
    let restarted = build_ok(&d, &ctx, &["-t", "c:1"]);
    assert_eq!(
        restarted.matches("Using cache").count(),
        4,
        "the cache survives a restart: {restarted}"
    );

    fs::write(ctx.join("a"), "two\n").unwrap();
    let changed = build_ok(&d, &ctx, &["-t", "c:2"]);
    assert_eq!(changed.matches("Using cache").count(), 0, "{changed}");
    assert_eq!(d.berth_ok(&["run", "--rm", "c:2"]), "two\n");

    let nocache = build_ok(&d, &ctx, &["--no-cache"]);
    assert_eq!(nocache.matches("Using cache").count(), 0, "{nocache}");
    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");
}

#[test]
fn errors_are_dockers_words_and_leave_nothing_behind() {
    let d = daemon();
    let ctx = context(
        &d,
        "fail",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo out; echo err >&2; exit 3\n",
        )],
    );
    let out = build(&d, &ctx, &[]);
    assert_eq!(code(&out), 3);
    assert!(stdout(&out).contains("out\n"), "{}", stdout(&out));
    assert_eq!(
        stderr(&out).trim(),
        "The command '/bin/sh -c echo out; echo err >&2; exit 3' returned a non-zero code: 3"
    );
    // As Docker: the failed step's container stays with --rm (default), goes with --force-rm.
    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).lines().count(), 1);
    let out = build(&d, &ctx, &["--force-rm"]);
    assert_eq!(code(&out), 3);
    assert_eq!(
        d.berth_ok(&["ps", "-a", "-q"]).lines().count(),
        1,
        "force-rm left no new container"
    );

    let ctx = context(
        &d,
        "parse",
        &[("Dockerfile", "FROM busybox\nFROBNICATE x\n")],
    );
    let out = build(&d, &ctx, &[]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("dockerfile parse error line 2: unknown instruction: FROBNICATE"),
        "{}",
        stderr(&out)
    );

    let ctx = context(
        &d,
        "missing",
        &[("Dockerfile", "FROM busybox\nCOPY missing-file /x\n")],
    );
    let out = build(&d, &ctx, &[]);
    assert_ne!(code(&out), 0);
    assert_eq!(
        stderr(&out).trim(),
        "COPY failed: file not found in build context or excluded by .dockerignore: stat missing-file: file does not exist"
    );

    // A bad tag: the CLI refuses it as Docker's does; the daemon refuses it before reading
    // the context, and the client still reads why.
    let small = context(
        &d,
        "badtag",
        &[
            ("Dockerfile", "FROM busybox\n"),
            ("blob", &"x".repeat(64 << 10)),
        ],
    );
    let out = build(&d, &small, &["-t", "UPPER:1"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains(
            "invalid argument \"UPPER:1\" for \"-t, --tag\" flag: invalid reference format"
        ),
        "{}",
        stderr(&out)
    );
    let (status, _, body) = d.request(
        "POST",
        "/build?t=UPPER:1",
        Some(&tar_of(&[("Dockerfile", "FROM busybox\n")])),
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("invalid reference format"));

    // Raw API: a parse error is a 400 before any stream, a missing Dockerfile a 500.
    let tar = tar_of(&[("Dockerfile", "FROM busybox\nFROBNICATE x\n")]);
    let (status, _, body) = d.request("POST", "/build", Some(&tar));
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("unknown instruction: FROBNICATE"));
    let (status, _, body) = d.request("POST", "/build?dockerfile=nope", Some(&tar));
    assert_eq!(status, 500);
    assert!(String::from_utf8_lossy(&body).contains("Cannot locate specified Dockerfile: nope"));

    // Nothing of the failed builds is left in the build directory.
    let tmp = d.root.join("builds/tmp");
    assert!(wait_until(std::time::Duration::from_secs(5), || {
        fs::read_dir(&tmp).map(|r| r.count() == 0).unwrap_or(true)
    }));
    assert!(
        mounts_under(&d.dir).is_empty(),
        "{:?}",
        mounts_under(&d.dir)
    );
}

fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append(&h, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn copy_and_add_rules_stages_and_chown() {
    let d = daemon();
    // A gzipped tar for ADD to extract.
    let inner = tar_of(&[("in/tar.txt", "from tar\n")]);
    let gz = flate2_free_gzip(&inner);
    let ctx = context(
        &d,
        "copy",
        &[
            (
                "Dockerfile",
                "FROM busybox AS build\nRUN echo built > /out.txt && echo app:x:1234:1234::/:/bin/sh >> /etc/passwd && echo app:x:1234: >> /etc/group\nFROM busybox\nCOPY --from=build /etc/passwd /etc/group /etc/\nCOPY --from=build /out.txt /stage/\nCOPY --from=0 /out.txt /zero.txt\nCOPY --chown=app:app *.md /docs/\nCOPY dir /copied\nADD archive.tar.gz /x/\nWORKDIR /w\nCOPY one.md .\n",
            ),
            ("a.md", "a\n"),
            ("b.md", "b\n"),
            ("one.md", "one\n"),
            ("dir/sub/f", "f\n"),
        ],
    );
    fs::write(ctx.join("archive.tar.gz"), gz).unwrap();
    build_ok(&d, &ctx, &["-t", "cp:1"]);
    let out = d.berth_ok(&[
        "run", "--rm", "cp:1", "sh", "-c",
        "cat /stage/out.txt /zero.txt; stat -c '%U:%G %n' /docs/a.md /docs/b.md; cat /copied/sub/f /x/in/tar.txt /w/one.md",
    ]);
    assert_eq!(
        out,
        "built\nbuilt\napp:app /docs/a.md\napp:app /docs/b.md\nf\nfrom tar\none\n"
    );
}

/// A gzip stream without a gzip crate in the test deps: `gzip -c` from the system.
fn flate2_free_gzip(data: &[u8]) -> Vec<u8> {
    let mut cmd = std::process::Command::new("gzip");
    cmd.arg("-c");
    let out = run_with_timeout(cmd, Some(data), std::time::Duration::from_secs(10), "gzip");
    assert!(out.status.success());
    out.stdout
}

#[test]
fn build_args_targets_labels_and_dockerignore() {
    let d = daemon();
    let ctx = context(
        &d,
        "args",
        &[
            (
                "Dockerfile",
                "ARG BASE=busybox\nFROM ${BASE} AS first\nARG WHO=world\nRUN echo hello $WHO > /hello\nFROM first AS second\nRUN echo second > /second\n",
            ),
            (".dockerignore", "secret\n*.log\n!keep.log\n"),
            ("secret", "s"),
            ("a.log", "a"),
            ("keep.log", "k"),
        ],
    );
    let out = build_ok(
        &d,
        &ctx,
        &[
            "-t",
            "args:1",
            "--target",
            "first",
            "--build-arg",
            "WHO=berth",
            "--build-arg",
            "NOPE=1",
            "--label",
            "l=v",
        ],
    );
    assert!(!out.contains("second"), "{out}");
    assert!(out.contains("Step 5/5 : LABEL \"l\"='v'"), "{out}");
    assert!(
        out.contains("[Warning] One or more build-args [NOPE] were not consumed"),
        "{out}"
    );
    assert_eq!(
        d.berth_ok(&["run", "--rm", "args:1", "cat", "/hello"]),
        "hello berth\n"
    );
    assert_eq!(d.inspect("args:1")["Config"]["Labels"]["l"], "v");

    let out = build(&d, &ctx, &["--target", "nope"]);
    assert!(
        stderr(&out).contains("failed to reach build target nope in Dockerfile"),
        "{}",
        stderr(&out)
    );

    // .dockerignore: the CLI sends neither `secret` nor `a.log`.
    let probe = context(&d, "probe", &[]);
    fs::create_dir_all(&probe).unwrap();
    fs::write(
        probe.join("Dockerfile"),
        "FROM busybox\nCOPY . /ctx/\nRUN ls -A /ctx | sort | tr '\\n' ' '\n",
    )
    .unwrap();
    for f in ["secret", "a.log", "keep.log"] {
        fs::write(probe.join(f), "x").unwrap();
    }
    fs::write(
        probe.join(".dockerignore"),
        "secret\n*.log\n!keep.log\nDockerfile\n",
    )
    .unwrap();
    let out = build_ok(&d, &probe, &[]);
    assert!(
        out.contains("\n.dockerignore keep.log Removing"),
        "secret, a.log and the Dockerfile are left out: {out}"
    );

    // -f naming a Dockerfile outside the context, and one on stdin.
    let outside = d.dir.join("Other.Dockerfile");
    fs::write(&outside, "FROM busybox\nRUN echo from-outside\n").unwrap();
    let out = build_ok(&d, &probe, &["-f", outside.to_str().unwrap()]);
    assert!(out.contains("from-outside"), "{out}");
    let out = d.berth_with_stdin(
        &["build", "-"],
        Some(b"FROM busybox\nRUN echo from-stdin\n"),
    );
    assert_success(&out, "berth build -");
    assert!(stdout(&out).contains("from-stdin"));
}

#[test]
fn the_real_docker_cli_builds() {
    if !docker_cli_available() {
        eprintln!("skipped: no Docker CLI");
        return;
    }
    let d = daemon();
    let ctx = context(
        &d,
        "docker",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY f /f\nRUN cat /f\nCMD [\"cat\", \"/f\"]\n",
            ),
            ("f", "docker\n"),
        ],
    );
    let out = d.docker(&["build", "-t", "dk:1", ctx.to_str().unwrap()]);
    assert_success(&out, "docker build");
    let text = stdout(&out);
    assert!(
        text.contains("Step 3/4 : RUN cat /f\n ---> Running in "),
        "{text}"
    );
    assert!(text.contains("Successfully tagged dk:1\n"), "{text}");
    assert_eq!(d.docker_ok(&["run", "--rm", "dk:1"]), "docker\n");
    let again = d.docker_ok(&["build", "-q", ctx.to_str().unwrap()]);
    assert!(again.trim().starts_with("sha256:"), "{again}");
}

#[test]
fn bad_contexts_are_refused_and_the_daemon_stays_up() {
    let d = daemon();
    let mut raw = tar_of(&[("x", "x")]);
    raw[..100].fill(0);
    raw[..7].copy_from_slice(b"../evil");
    let mut h = tar::Header::from_byte_slice(&raw[..512]).clone();
    h.set_cksum();
    raw[..512].copy_from_slice(h.as_bytes());
    let (status, _, body) = d.request("POST", "/build", Some(&raw));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(!d.dir.join("evil").exists());
    // A COPY source outside the context, and a link pointing out of it.
    let ctx = context(
        &d,
        "escape",
        &[("Dockerfile", "FROM busybox\nCOPY ../../etc/passwd /x\n")],
    );
    let out = build(&d, &ctx, &[]);
    assert!(
        stderr(&out).contains("forbidden path outside the build context"),
        "{}",
        stderr(&out)
    );
    let ctx = context(
        &d,
        "link",
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY link/hostname /x\nRUN cat /x\n",
        )],
    );
    std::os::unix::fs::symlink("/etc", ctx.join("link")).unwrap();
    let out = build(&d, &ctx, &[]);
    assert!(
        stderr(&out).contains("file not found in build context"),
        "a link out of the context resolves inside it: {}",
        stderr(&out)
    );
    let (status, _, _) = d.request("GET", "/_ping", None);
    assert_eq!(status, 200);
}

#[test]
fn run_steps_get_extra_hosts_network_mode_and_build_args_in_their_environment() {
    let d = daemon();
    let ctx = context(
        &d,
        "net",
        &[("Dockerfile", "FROM busybox\nARG V=default\nRUN grep h.test /etc/hosts && echo \"V=$V\" && ip -o link | grep -c -v ' lo:' || true\n")],
    );
    let out = build_ok(
        &d,
        &ctx,
        &[
            "--add-host",
            "h.test:10.1.2.3",
            "--network",
            "none",
            "--build-arg",
            "V=given",
        ],
    );
    assert!(out.contains("10.1.2.3\th.test\n"), "{out}");
    assert!(out.contains("V=given\n"), "{out}");
    assert!(out.contains("\n0\n"), "--network none: only lo: {out}");
    if docker_cli_available() {
        let out = d.docker_ok(&[
            "run",
            "--rm",
            "--add-host",
            "x.test:10.9.9.9",
            "busybox",
            "grep",
            "x.test",
            "/etc/hosts",
        ]);
        assert_eq!(out, "10.9.9.9\tx.test\n", "run --add-host too");
    }
}

#[test]
fn a_client_gone_mid_run_stops_the_step_and_leaves_nothing() {
    use std::io::{Read, Write};
    let d = daemon();
    let tar = tar_of(&[("Dockerfile", "FROM busybox\nRUN sleep 60\n")]);
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST /build HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        tar.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&tar).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("Running in") {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "the stream ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    let running = wait_until(std::time::Duration::from_secs(10), || {
        d.berth_ok(&["ps", "-q"]).lines().count() == 1
    });
    assert!(running, "the RUN step runs");
    drop(s);
    let gone = wait_until(std::time::Duration::from_secs(15), || {
        d.berth_ok(&["ps", "-a", "-q"]).trim().is_empty()
    });
    assert!(
        gone,
        "the step's container is removed: {}",
        d.berth_ok(&["ps", "-a"])
    );
    let tmp = d.root.join("builds/tmp");
    assert!(wait_until(std::time::Duration::from_secs(5), || {
        fs::read_dir(&tmp).map(|r| r.count() == 0).unwrap_or(true)
    }));
    assert!(mounts_under(&d.dir).is_empty());
    assert_eq!(
        d.berth_ok(&["images", "-a", "-q"]).lines().count(),
        1,
        "no half-written image"
    );
}

/// Serves `files` (path → body) over HTTP on 127.0.0.1 until the test ends; returns the
/// base URL. Every answer carries a fixed `Last-Modified`.
fn http_server(files: Vec<(&'static str, Vec<u8>)>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes());
                    let _ = conn.write_all(body);
                }
                None => {
                    let _ = conn.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    format!("http://{addr}")
}

#[test]
fn add_urls_remote_contexts_scratch_and_global_args() {
    let d = daemon();
    let ctx_tar = tar_of(&[("Dockerfile", "FROM busybox\nRUN echo remote-context\n")]);
    let url = http_server(vec![
        ("/file.txt", b"from-url\n".to_vec()),
        ("/ctx.tar", ctx_tar),
    ]);
    let ctx = context(
        &d,
        "url",
        &[(
            "Dockerfile",
            &format!("ARG V=1\nFROM busybox\nADD {url}/file.txt /dl/\n"),
        )],
    );
    let out = build_ok(&d, &ctx, &["-t", "url:1"]);
    assert!(
        out.contains("Step 1/3 : ARG V=1\nStep 2/3 : FROM busybox\n"),
        "global ARGs are steps: {out}"
    );
    let stat = d.berth_ok(&[
        "run",
        "--rm",
        "url:1",
        "stat",
        "-c",
        "%a %Y",
        "/dl/file.txt",
    ]);
    assert_eq!(
        stat, "600 1445412480\n",
        "mode 0600, mtime from Last-Modified"
    );
    assert_eq!(
        d.berth_ok(&["run", "--rm", "url:1", "cat", "/dl/file.txt"]),
        "from-url\n"
    );

    let out = d.berth(&["build", &format!("{url}/ctx.tar")]);
    assert_success(&out, "berth build URL");
    assert!(stdout(&out).contains("remote-context"), "{}", stdout(&out));
    let out = d.berth(&["build", &format!("{url}/nope.tar")]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));

    let ctx = context(
        &d,
        "scratch",
        &[
            ("Dockerfile", "FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n"),
            ("f", "x"),
        ],
    );
    let out = build_ok(&d, &ctx, &["-t", "scr:1"]);
    assert!(out.contains("Step 1/3 : FROM scratch\n ---> \n"), "{out}");
    let img = d.inspect("scr:1");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    let copy_image = img["Parent"].as_str().unwrap().to_string();
    assert_eq!(
        d.inspect(&copy_image)["Parent"],
        "",
        "the first step of a scratch stage has no parent"
    );
}

#[test]
fn the_docker_cli_without_buildkit_off_builds_too() {
    if !docker_cli_available() {
        eprintln!("skipped: no Docker CLI");
        return;
    }
    let d = daemon();
    let ctx = context(
        &d,
        "nobk",
        &[("Dockerfile", "FROM busybox\nRUN echo no-env\n")],
    );
    let mut cmd = std::process::Command::new("/usr/local/bin/docker");
    cmd.args(["build", ctx.to_str().unwrap()])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .env_remove("DOCKER_BUILDKIT");
    let out = run_with_timeout(
        cmd,
        None,
        std::time::Duration::from_secs(60),
        "docker build",
    );
    assert_success(&out, "docker build without DOCKER_BUILDKIT");
    assert!(stdout(&out).contains("no-env"), "{}", stdout(&out));
}

#[test]
fn cli_quiet_iidfile_and_a_dockerfile_on_stdin_with_a_context() {
    let d = daemon();
    let ctx = context(
        &d,
        "stdin",
        &[
            ("f", "from-context\n"),
            ("docker/Dockerfile", "FROM busybox\nCOPY f /f\n"),
            (".dockerignore", "docker\n"),
        ],
    );
    let out = d.berth_with_stdin(
        &["build", "-q", "-f", "-", ctx.to_str().unwrap()],
        Some(b"FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n"),
    );
    assert_success(&out, "berth build -f -");
    let id = stdout(&out).trim().to_string();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "-q prints only the ID: {id}"
    );
    assert_eq!(d.berth_ok(&["run", "--rm", &id]), "from-context\n");
    // The Dockerfile in a directory .dockerignore excludes is still sent and used.
    let iid = d.dir.join("iid");
    let out = build_ok(
        &d,
        &ctx,
        &[
            "-f",
            ctx.join("docker/Dockerfile").to_str().unwrap(),
            "--iidfile",
            iid.to_str().unwrap(),
        ],
    );
    let written = fs::read_to_string(&iid).unwrap();
    assert!(
        out.contains(&format!("Successfully built {}", &written[7..19])),
        "{out}\n{written}"
    );
}
