//! Issue 18, point 5: `info`/`system info`, `version`, `completion` (and `search`) as the
//! Docker CLI 28 has them, against the same Berth daemon.

mod common;

use common::*;
use std::process::Command;

#[test]
fn info_matches_docker_info_line_by_line() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.berth_ok(&["create", "--name", "info-probe", "busybox", "true"]);
    let ours = d.berth_ok(&["info"]);
    let theirs = d.docker_ok(&["info"]);
    let ours: Vec<&str> = ours.lines().collect();
    let theirs: Vec<&str> = theirs.lines().collect();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "berth:\n{ours:#?}\ndocker:\n{theirs:#?}"
    );
    for (o, t) in ours.iter().zip(&theirs) {
        // The client's own version is the one line that differs.
        if t.starts_with(" Version:") && !t.starts_with("  ") {
            continue;
        }
        // Moments of the two calls (debug mode).
        if t.starts_with("  System Time:") || t.starts_with("  File Descriptors:") {
            assert_eq!(o.split(':').next(), t.split(':').next());
            continue;
        }
        // The Docker CLI prints runtimes in Go's random map order.
        if t.starts_with(" Runtimes:") {
            let sorted = |l: &str| {
                let mut w: Vec<String> = l.split_whitespace().map(str::to_owned).collect();
                w.sort();
                w
            };
            assert_eq!(sorted(o), sorted(t));
            continue;
        }
        assert_eq!(o, t);
    }
    let timeless = |s: String| -> String {
        s.lines()
            .filter(|l| !l.starts_with("  System Time:") && !l.starts_with("  File Descriptors:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        timeless(d.berth_ok(&["system", "info"])),
        timeless(d.berth_ok(&["info"]))
    );
    // --format json and templates see the daemon's fields plus ClientInfo.
    let j: serde_json::Value =
        serde_json::from_str(&d.berth_ok(&["info", "--format", "json"])).unwrap();
    let k: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(j["Containers"], 1);
    assert_eq!(j["ID"], k["ID"]);
    assert_eq!(j["ClientInfo"]["Context"], "default");
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v["ClientInfo"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(keys(&j), keys(&k));
    assert_eq!(
        d.berth_ok(&["info", "-f", "{{.Containers}} {{.ClientInfo.Context}}"]),
        "1 default\n"
    );
}

#[test]
fn version_has_the_server_block_and_json() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    let ours = d.berth_ok(&["version"]);
    let theirs = d.docker_ok(&["version"]);
    let server = |s: &str| s.split("\nServer:").nth(1).unwrap_or_default().to_string();
    assert!(!server(&ours).is_empty(), "{ours}");
    assert_eq!(server(&ours), server(&theirs));
    let j: serde_json::Value =
        serde_json::from_str(&d.berth_ok(&["version", "--format", "json"])).unwrap();
    let k: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["version", "--format", "json"])).unwrap();
    assert_eq!(j["Server"], k["Server"]);
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v["Client"].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(keys(&j), keys(&k));
    assert_eq!(
        d.berth_ok(&["version", "-f", "{{.Server.Version}}"]),
        d.docker_ok(&["version", "-f", "{{.Server.Version}}"])
    );
}

#[test]
fn bash_completion_completes_commands_and_daemon_names() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.berth_ok(&["create", "--name", "compl-probe", "busybox", "true"]);
    d.berth_ok(&["volume", "create", "compl-vol"]);
    let script = d.berth_ok(&["completion", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.bash");
    std::fs::write(&file, &script).unwrap();
    let probe = |words: &str, cword: usize| -> String {
        let src = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=(); _berth_with_names berth \"${{COMP_WORDS[$COMP_CWORD]}}\" berth; echo \"${{COMPREPLY[@]}}\"",
            file.display()
        );
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &src]).env("DOCKER_HOST", d.host()).env(
            "PATH",
            format!(
                "{}:/usr/bin:/bin",
                std::path::Path::new(BERTH).parent().unwrap().display()
            ),
        );
        let out = run_with_timeout(cmd, None, CMD_TIMEOUT, "bash completion");
        stdout(&out).trim().to_string()
    };
    assert_eq!(probe("berth con", 1), "container context");
    assert_eq!(probe("berth start compl", 2), "compl-probe");
    assert_eq!(probe("berth volume rm compl", 3), "compl-vol");
    assert_eq!(probe("berth run busy", 2), "busybox:latest");
    for sh in ["zsh", "fish", "powershell"] {
        assert!(d.berth_ok(&["completion", sh]).contains("berth"), "{sh}");
    }
}

/// A registry answering the v1 search API on loopback: `q=missing` gets a 404 (as
/// distribution's registry, which has no search), anything else two results.
fn fake_index() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            // HTTPS is tried first on insecure registries: a TLS hello is refused by
            // closing, so the client moves on to plain HTTP.
            let mut first = [0u8; 1];
            if s.peek(&mut first)
                .map(|n| n == 0 || first[0] == 0x16)
                .unwrap_or(true)
            {
                continue;
            }
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(1) => head.push(b[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let reply = if !head.starts_with("GET /v1/search?") || head.contains("q=missing") {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            } else {
                let body = r#"{"num_results":2,"query":"busy","results":[{"name":"busybox","description":"Busybox base image: a very long description that gets truncated","star_count":3000,"is_official":true,"is_automated":false},{"name":"me/busy","description":"mine","star_count":1,"is_official":false,"is_automated":true}]}"#;
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            };
            let _ = s.write_all(reply.as_bytes());
        }
    });
    port
}

#[test]
fn search_uses_the_registrys_v1_search_api() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    let port = fake_index();
    let term = format!("127.0.0.1:{port}/busy");
    let ours = d.berth_ok(&["search", &term]);
    assert_eq!(ours, d.docker_ok(&["search", &term]));
    assert!(ours.starts_with("NAME"), "{ours}");
    assert!(ours.contains("[OK]"), "{ours}");
    for args in [
        vec!["search", "--no-trunc", &term],
        vec!["search", "--limit", "1", &term],
        vec![
            "search",
            "-f",
            "stars=2",
            "--format",
            "{{.Name}} {{.StarCount}}",
            &term,
        ],
        vec![
            "search",
            "-f",
            "is-official=true",
            "--format",
            "{{json .}}",
            &term,
        ],
    ] {
        assert_eq!(d.berth_ok(&args), d.docker_ok(&args), "{args:?}");
    }
    // A registry without the search API: dockerd's words, exit 1.
    let missing = format!("127.0.0.1:{port}/missing");
    let out = d.berth(&["search", &missing]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "Error response from daemon: Unexpected status code 404\n"
    );
}
