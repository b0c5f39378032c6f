//! BuildKit's Dockerfile syntax in Berth's classic `POST /build` (issue 19 point 1):
//! heredocs in RUN and COPY, BuildKit's variable forms, COPY/ADD `--chmod`, `--link`,
//! `--exclude`, `ADD --checksum`, and the `# syntax=`/`# check=` directives, through
//! `berth build` and the real Docker CLI (`DOCKER_BUILDKIT=0`).

mod common;

use std::fs;

use common::build_context::{build, context, daemon};
use common::*;

const HEREDOCS: &str = "# syntax=docker/dockerfile:1.7
# check=skip=all
FROM busybox
ARG NAME=world
RUN <<EOF
echo \"hello $NAME\" > /simple
EOF
RUN <<-EOT
\techo tabbed > /tabbed
\tEOT
RUN <<A cat /dev/stdin > /a; <<B cat > /b
one
A
two
B
RUN cat <<'EOF' > /literal
$NAME stays
EOF
RUN <<EOF
#!/bin/sh
echo \"shebang $0\" > /shebang
EOF
COPY <<EOF /etc/greeting
hi $NAME \"quoted\"
EOF
COPY <<one.txt <<two.txt /multi/
1
one.txt
2
two.txt
COPY --chmod=751 <<'EOF' /quoted.sh
echo $NAME
EOF
";

#[test]
fn heredocs_in_run_and_copy() {
    let d = daemon();
    let ctx = context(&d, "heredocs", &[("Dockerfile", HEREDOCS)]);
    let out = build(&d, &ctx, &["-t", "hd:1"]);
    assert_success(&out, "berth build with heredocs");
    let got = d.berth_ok(&[
        "run",
        "--rm",
        "hd:1",
        "sh",
        "-c",
        "cat /simple /tabbed /a /b /literal /shebang /etc/greeting /multi/one.txt /multi/two.txt /quoted.sh; stat -c %a /quoted.sh /etc/greeting",
    ]);
    assert_eq!(
        got,
        "hello world\ntabbed\none\ntwo\n$NAME stays\nshebang /dev/pipes/EOF\nhi world \"quoted\"\n1\n2\necho $NAME\n751\n644\n"
    );
    // The same build again is all cache; a changed heredoc body is not.
    let again = stdout(&build(&d, &ctx, &["-t", "hd:1"]));
    assert!(!again.contains("Running in"), "{again}");
    fs::write(
        ctx.join("Dockerfile"),
        HEREDOCS.replace("hello $NAME", "bye $NAME"),
    )
    .unwrap();
    let changed = build(&d, &ctx, &["-t", "hd:2"]);
    assert_success(&changed, "rebuild");
    let got = d.berth_ok(&["run", "--rm", "hd:2", "cat", "/simple"]);
    assert_eq!(got, "bye world\n");
}

const FORMS: &str = "FROM busybox
ENV P=/usr/local/lib/libfoo.so.1.2 V=a-b-c
ENV A=${P##*/} B=${P%.*} C=${V//-/+} D=${V/-/+} E=${P#*/} F=${P%%.*}
RUN echo \"$A|$B|$C|$D|$E|$F\" > /forms
COPY --link --exclude=*.md --exclude=sub/*.md dir/ /ex/
COPY --chmod=600 dir/a.txt /m/a.txt
COPY --chmod=700 dir /mdir/
";

#[test]
fn variable_forms_and_copy_flags() {
    let d = daemon();
    let ctx = context(
        &d,
        "forms",
        &[
            ("Dockerfile", FORMS),
            ("dir/a.txt", "a\n"),
            ("dir/b.md", "b\n"),
            ("dir/sub/c.md", "c\n"),
            ("dir/sub/d.txt", "d\n"),
        ],
    );
    let out = build(&d, &ctx, &["-t", "forms:1"]);
    assert_success(&out, "berth build with variable forms and copy flags");
    let got = d.berth_ok(&[
        "run",
        "--rm",
        "forms:1",
        "sh",
        "-c",
        "cat /forms; cd /ex && find . -type f | sort; stat -c %a /m/a.txt /mdir/a.txt /mdir/sub",
    ]);
    assert_eq!(
        got,
        "libfoo.so.1.2|/usr/local/lib/libfoo.so.1|a+b+c|a+b-c|usr/local/lib/libfoo.so.1.2|/usr/local/lib/libfoo\n./a.txt\n./sub/d.txt\n600\n700\n700\n"
    );
    // The context's files were not re-moded by --chmod.
    let mode = fs::metadata(ctx.join("dir/a.txt")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(mode.permissions().mode() & 0o777, 0o600);
}

/// Serves one file over HTTP on 127.0.0.1; returns its URL.
fn serve_once(name: &'static str, body: &'static [u8]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(body);
        }
    });
    format!("http://{addr}/{name}")
}

#[test]
fn add_checksum_and_chmod() {
    let d = daemon();
    let url = serve_once("tool.sh", b"echo tool\n");
    // sha256 of "echo tool\n"
    let sum = {
        use std::process::Command;
        let f = d.dir.join("tool.sh");
        fs::write(&f, "echo tool\n").unwrap();
        let o = Command::new("sha256sum").arg(&f).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let good =
        format!("FROM busybox\nADD --checksum=sha256:{sum} --chmod=755 {url} /usr/bin/tool.sh\n");
    let ctx = context(&d, "add-good", &[("Dockerfile", &good)]);
    assert_success(&build(&d, &ctx, &["-t", "add:1"]), "ADD --checksum");
    let got = d.berth_ok(&[
        "run",
        "--rm",
        "add:1",
        "sh",
        "-c",
        "tool.sh; stat -c %a /usr/bin/tool.sh",
    ]);
    assert_eq!(got, "tool\n755\n");

    let wrong = "0".repeat(64);
    let bad = format!("FROM busybox\nADD --checksum=sha256:{wrong} {url} /t.sh\n");
    let ctx = context(&d, "add-bad", &[("Dockerfile", &bad)]);
    let out = build(&d, &ctx, &[]);
    assert_ne!(code(&out), 0);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains(&format!(
            "digest mismatch for {url}: sha256:{sum} (expected: sha256:{wrong})"
        )),
        "{text}"
    );
    let bad = "FROM busybox\nADD --checksum=md5:abc http://127.0.0.1:9/x /x\n";
    let ctx = context(&d, "add-badsum", &[("Dockerfile", bad)]);
    let text = stderr(&build(&d, &ctx, &[]));
    assert!(text.contains("invalid checksum digest format"), "{text}");
    let bad = "FROM busybox\nCOPY --chmod=9z9 Dockerfile /x\n";
    let ctx = context(&d, "copy-badmode", &[("Dockerfile", bad)]);
    let text = stderr(&build(&d, &ctx, &[]));
    assert!(text.contains("--chmod=9z9"), "{text}");
}

#[test]
fn the_docker_cli_without_buildkit_builds_modern_dockerfiles() {
    if !docker_cli_available() {
        eprintln!("skipped: no Docker CLI");
        return;
    }
    let d = daemon();
    let df = "# syntax=docker/dockerfile:1
FROM busybox
ENV V=x-y-z
RUN --mount=type=cache,target=/var/cache/app <<EOF
echo run >> /var/cache/app/runs
wc -l < /var/cache/app/runs > /runs
EOF
COPY --chmod=700 --link <<EOF /bin/hello
#!/bin/sh
echo \"hello ${V//-/.}\"
EOF
RUN --mount=type=bind,source=data,target=/data --network=none cat /data/f > /from-bind
CMD [\"sh\", \"-c\", \"hello; cat /runs /from-bind; test ! -e /var/cache/app/runs && echo no-cache-in-image\"]
";
    let ctx = context(
        &d,
        "dockercli",
        &[("Dockerfile", df), ("data/f", "bound\n")],
    );
    let out = d.docker(&["build", "-t", "modern:1", ctx.to_str().unwrap()]);
    assert_success(&out, "DOCKER_BUILDKIT=0 docker build");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "modern:1"]),
        "hello x.y.z\n1\nbound\nno-cache-in-image\n"
    );
    // The cache mount outlives the build: a rebuild without the layer cache sees it.
    let out = d.docker(&[
        "build",
        "--no-cache",
        "-t",
        "modern:2",
        ctx.to_str().unwrap(),
    ]);
    assert_success(&out, "docker build --no-cache");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "modern:2", "cat", "/runs"]),
        "2\n"
    );
    // Bad input reaches the Docker CLI in BuildKit's words.
    let bad = context(
        &d,
        "dockercli-bad",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cahce,target=/x true\n",
        )],
    );
    let out = d.docker(&["build", bad.to_str().unwrap()]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("unsupported mount type \"cahce\" (did you mean cache?)"),
        "{}",
        stderr(&out)
    );
    // The classic Docker CLI has no --secret (it says `unknown flag: --secret`), so a
    // required secret fails in BuildKit's words.
    let secret = context(
        &d,
        "dockercli-secret",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=secret,id=tok,required cat /run/secrets/tok\n",
        )],
    );
    let out = d.docker(&["build", secret.to_str().unwrap()]);
    assert_ne!(code(&out), 0);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("secret tok: not found"), "{all}");
}
