//! `RUN --mount` and `RUN --network` in Berth's classic `POST /build` (issue 19 points
//! 1 and 6): cache directories kept across builds and never in an image, bind mounts of
//! the context and of a stage (read-only, or writable with the writes thrown away),
//! tmpfs, secrets from `berth build --secret` (never in a layer, the history or the
//! cache key), and bad input in BuildKit's words with nothing left behind.

mod common;

use std::fs;
use std::path::PathBuf;

use common::build_context::{build, context, daemon};
use common::*;

fn text(out: &std::process::Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// Mounts under the daemon's directory that a build could have left.
fn build_mounts(d: &TestDaemon) -> Vec<PathBuf> {
    mounts_under(&d.dir)
        .into_iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            s.contains("/builds/") || s.contains("cache-mounts")
        })
        .collect()
}

fn cache_dirs(d: &TestDaemon) -> Vec<String> {
    fs::read_dir(d.root.join("builds/cache-mounts"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

const CACHE: &str = "FROM busybox AS seed
RUN mkdir /seed && echo seeded > /seed/f
FROM busybox
RUN --mount=type=cache,target=/s,id=seeded,from=seed,source=/seed cat /s/f > /seeded
ARG ROUND
RUN --mount=type=cache,target=/root/.cache/app,id=app-cache,mode=0700,uid=1000,gid=1000 \\
    echo \"round $ROUND\" >> /root/.cache/app/log && cat /root/.cache/app/log > /seen && \\
    stat -c '%a %u %g' /root/.cache/app > /perm
RUN --mount=type=cache,target=/locked,sharing=locked echo locked > /locked/x
RUN --mount=type=cache,target=/private,sharing=private echo private > /private/x
";

#[test]
fn cache_mounts_outlive_builds_and_stay_out_of_images() {
    let d = daemon();
    let ctx = context(&d, "cache", &[("Dockerfile", CACHE)]);
    let out = build(&d, &ctx, &["--build-arg", "ROUND=1", "-t", "c:1"]);
    assert_success(&out, "first build");
    let out = build(&d, &ctx, &["--build-arg", "ROUND=2", "-t", "c:2"]);
    assert_success(&out, "second build");
    let got = d.berth_ok(&[
        "run",
        "--rm",
        "c:2",
        "sh",
        "-c",
        "cat /seeded /seen /perm; ls -A /root; test -e /locked || echo no-locked; test -e /private || echo no-private",
    ]);
    // The cache kept round 1's line; the image has neither the cache's content nor
    // the mount points the image lacked.
    assert_eq!(
        got,
        "seeded\nround 1\nround 2\n700 1000 1000\nno-locked\nno-private\n"
    );
    let history = d.berth_ok(&["history", "--no-trunc", "c:2"]);
    assert!(
        history.contains("--mount=type=cache,target=/root/.cache/app"),
        "{history}"
    );
    assert_eq!(cache_dirs(&d).len(), 4, "{:?}", cache_dirs(&d));
    assert!(build_mounts(&d).is_empty(), "{:?}", build_mounts(&d));
}

const BINDS: &str = "FROM busybox AS stage
RUN echo staged > /s
FROM busybox
WORKDIR /w
RUN --mount=type=bind,source=data,target=src cat /w/src/f > /from-ctx && \\
    (touch /w/src/new 2>/dev/null && echo writable || echo read-only) > /ro
RUN --mount=type=bind,source=data,target=/rw,rw touch /rw/new && ls /rw > /rw-list
RUN --mount=type=bind,source=data,target=/again ls /again > /again-list
RUN --mount=type=bind,from=stage,source=/s,target=/m/s cat /m/s > /from-stage
RUN --mount=type=tmpfs,target=/t,size=1m grep -c ' /t tmpfs ' /proc/mounts > /tmpfs
RUN --network=none sh -c 'ip -o link | grep -v \": lo:\" | wc -l' > /links
";

#[test]
fn bind_tmpfs_and_network() {
    let d = daemon();
    let ctx = context(
        &d,
        "binds",
        &[("Dockerfile", BINDS), ("data/f", "ctx-file\n")],
    );
    let out = build(&d, &ctx, &["-t", "b:1"]);
    assert_success(&out, "build with binds");
    let got = d.berth_ok(&[
        "run",
        "--rm",
        "b:1",
        "sh",
        "-c",
        "cat /from-ctx /ro /rw-list /again-list /from-stage /tmpfs /links; ls -A /w; test -e /rw || echo no-rw",
    ]);
    assert_eq!(got, "ctx-file\nread-only\nf\nnew\nf\nstaged\n1\n0\nno-rw\n");
    assert!(!ctx.join("data/new").exists(), "rw writes are thrown away");
    assert!(build_mounts(&d).is_empty(), "{:?}", build_mounts(&d));
}

const SECRETS: &str = "FROM busybox
RUN --mount=type=secret,id=tok,required test \"$(cut -c1-2 /run/secrets/tok)\" = s3 && wc -c < /run/secrets/tok > /ok1
RUN --mount=type=secret,id=tok,env=TOK,target=/etc/tok,mode=0440,uid=5 test \"${TOK#s3}\" = cret-value && \\
    stat -c '%a %u' /etc/tok > /ok2
RUN --mount=type=secret,id=absent echo optional-ok > /ok3
";

#[test]
fn secrets_reach_the_step_and_nothing_else() {
    let d = daemon();
    let ctx = context(&d, "secrets", &[("Dockerfile", SECRETS)]);
    let file = d.dir.join("tok.txt");
    fs::write(&file, "s3cret-value").unwrap();
    let src = format!("id=tok,src={}", file.display());
    let out = build(&d, &ctx, &["--secret", &src, "-t", "s:1"]);
    assert_success(&out, "build with a secret");
    let got = d.berth_ok(&[
        "run",
        "--rm",
        "s:1",
        "sh",
        "-c",
        "cat /ok1 /ok2 /ok3; test -e /run/secrets || echo no-secrets-dir; test -e /etc/tok || echo no-tok",
    ]);
    assert_eq!(got, "12\n440 5\noptional-ok\nno-secrets-dir\nno-tok\n");
    // Not in the history, the config or any layer.
    let history = d.berth_ok(&["history", "--no-trunc", "s:1"]);
    assert!(!history.contains("s3cret"), "{history}");
    let saved = d.dir.join("s.tar");
    d.berth_ok(&["save", "-o", saved.to_str().unwrap(), "s:1"]);
    let bytes = fs::read(&saved).unwrap();
    assert!(
        !bytes.windows(6).any(|w| w == b"s3cret"),
        "the secret is in the saved image"
    );
    // Not in the cache key: another value hits the cache.
    fs::write(&file, "other-value").unwrap();
    let out = build(&d, &ctx, &["--secret", &src, "-t", "s:2"]);
    assert_success(&out, "rebuild with another secret value");
    assert!(!stdout(&out).contains("Running in"), "{}", stdout(&out));
    // A required secret not given: BuildKit's words.
    let out = build(&d, &ctx, &["--no-cache"]);
    assert_ne!(code(&out), 0);
    assert!(
        text(&out).contains("secret tok: not found"),
        "{}",
        text(&out)
    );
    // --rm=false keeps the step containers: no config of theirs holds the value (an
    // env= secret reaches the process only).
    fs::write(&file, "s3cret-value").unwrap();
    let out = build(
        &d,
        &ctx,
        &["--secret", &src, "--no-cache", "--rm=false", "-t", "s:3"],
    );
    assert_success(&out, "build keeping its containers");
    let ids = d.berth_ok(&["ps", "-aq", "--no-trunc"]);
    assert!(ids.lines().count() >= 3, "the step containers stay: {ids}");
    for id in ids.lines() {
        let (status, _, body) = d.request("GET", &format!("/containers/{id}/json"), None);
        assert_eq!(status, 200);
        let body = String::from_utf8_lossy(&body);
        assert!(!body.contains("s3cret"), "a container config: {body}");
        assert!(body.contains("\"Env\""), "{body}");
    }
    let mut rm = vec!["rm"];
    rm.extend(ids.lines());
    d.berth_ok(&rm);
    assert!(build_mounts(&d).is_empty(), "{:?}", build_mounts(&d));
}

#[test]
fn bad_input_in_buildkits_words_and_nothing_left_behind() {
    let d = daemon();
    let cases: &[(&str, &str)] = &[
        (
            "FROM busybox\nRUN --mount=type=nfs,target=/x true\n",
            "dockerfile parse error line 2: unsupported mount type \"nfs\"",
        ),
        (
            "FROM busybox\nRUN --mount=type=cache,target=/x,sharing=everyone true\n",
            "unsupported sharing value \"everyone\"",
        ),
        (
            "FROM busybox\nRUN --mount=type=cache,target=/x,colour=red true\n",
            "unexpected key 'colour' in 'colour=red'",
        ),
        (
            "FROM busybox\nRUN --mount=type=bind,target=/x,uid=1 true\n",
            "uid not allowed for \"bind\" type mounts",
        ),
        (
            "FROM busybox\nRUN --mount=type=secret true\n",
            "invalid secret mount. one of source, target required",
        ),
        (
            "FROM busybox\nRUN --network=bridge true\n",
            "invalid network mode \"bridge\"",
        ),
        (
            "FROM busybox\nRUN <<EOF\necho never ends\n",
            "dockerfile parse error line 2: unterminated heredoc",
        ),
    ];
    for (i, (df, want)) in cases.iter().enumerate() {
        let ctx = context(&d, &format!("bad{i}"), &[("Dockerfile", df)]);
        let out = build(&d, &ctx, &[]);
        assert_ne!(code(&out), 0, "{df}");
        assert!(text(&out).contains(want), "{df}: {}", text(&out));
    }
    // A bad request is a 400 before the stream starts.
    let tar = {
        let mut b = tar::Builder::new(Vec::new());
        let body = b"FROM busybox\nRUN --mount=type=nfs,target=/x true\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "Dockerfile", &body[..]).unwrap();
        b.into_inner().unwrap()
    };
    let (status, _, body) = d.request("POST", "/build", Some(&tar));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // A failing RUN with mounts, and a missing secret after a cache mount: no cache
    // directory half-made, no mount left, the daemon's build dirs empty.
    let ctx = context(
        &d,
        "failing",
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN --mount=type=cache,target=/c,id=fail-cache --mount=type=tmpfs,target=/t --mount=type=bind,source=.,target=/ctx false\n",
            ),
        ],
    );
    let out = build(&d, &ctx, &[]);
    assert_ne!(code(&out), 0);
    assert!(
        text(&out).contains("returned a non-zero code: 1"),
        "{}",
        text(&out)
    );
    let ctx = context(
        &d,
        "nosecret",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,target=/c,id=never-made --mount=type=secret,id=nope,required true\n",
        )],
    );
    let out = build(&d, &ctx, &[]);
    assert!(
        text(&out).contains("secret nope: not found"),
        "{}",
        text(&out)
    );
    assert_eq!(
        cache_dirs(&d).len(),
        1,
        "only fail-cache: {:?}",
        cache_dirs(&d)
    );
    assert!(build_mounts(&d).is_empty(), "{:?}", build_mounts(&d));
    let proc_mounts = fs::read_to_string("/proc/mounts").unwrap();
    let root = d.root.to_string_lossy().to_string();
    let leftover: Vec<&str> = proc_mounts
        .lines()
        .filter(|l| l.contains(&root) && (l.contains("/builds/") || l.contains("cache-mounts")))
        .collect();
    assert!(leftover.is_empty(), "{leftover:?}");
    assert!(wait_until(std::time::Duration::from_secs(5), || {
        fs::read_dir(d.root.join("builds/tmp"))
            .map(|rd| rd.count() == 0)
            .unwrap_or(true)
    }));
}

#[test]
fn a_locked_cache_is_one_step_at_a_time_across_concurrent_builds() {
    let d = daemon();
    let df = "FROM busybox
ARG N
RUN --mount=type=cache,target=/c,id=lock-test,sharing=locked \\
    echo start-$N >> /c/log && sleep 1 && echo end-$N >> /c/log
";
    let ctx = context(&d, "locked", &[("Dockerfile", df)]);
    let spawn = |n: &str| {
        std::process::Command::new(BERTH)
            .arg("-H")
            .arg(d.host())
            .args(["build", "--build-arg", &format!("N={n}")])
            .arg(&ctx)
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", d.dir.join("docker-config"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("a"), spawn("b"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_success(&out, "concurrent build");
    }
    let show = context(
        &d,
        "locked-show",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,target=/c,id=lock-test cat /c/log > /log\n",
        )],
    );
    assert_success(&build(&d, &show, &["-t", "lockshow:1"]), "show build");
    let log = d.berth_ok(&["run", "--rm", "lockshow:1", "cat", "/log"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    // Each step's start is followed by its own end: the two never overlapped.
    let first = lines[0].trim_start_matches("start-");
    let second = lines[2].trim_start_matches("start-");
    assert_eq!(lines[1], format!("end-{first}"), "{log}");
    assert_eq!(lines[3], format!("end-{second}"), "{log}");
    assert_ne!(first, second, "{log}");
}
