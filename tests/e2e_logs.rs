//! Logs that cannot fill a disk (issue 15, point 6): json-file rotation with max-size,
//! max-file and compress, the local and none drivers, daemon defaults, `logs` across
//! rotated files (`--tail`, `--since`, `--timestamps`, `-f` across rotations), per-line
//! timestamps and 16 KiB splits, refusals. Checked with the real Docker CLI.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn container_dir(d: &TestDaemon, id: &str) -> PathBuf {
    d.root.join("containers").join(id)
}

/// The log files of a container (`<id>-json.log*` or `local-logs/container.log*`), sorted.
fn log_files(dir: &Path, prefix: &str) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.starts_with(prefix)
                .then(|| (name, e.metadata().map(|m| m.len()).unwrap_or(0)))
        })
        .collect();
    files.sort();
    files
}

/// `sh -c` text printing `line 0` … `line N-1`, each padded to about 100 bytes.
fn numbered_lines(n: usize) -> String {
    format!(
        "i=0; while [ $i -lt {n} ]; do echo \"line $i ........................................................................\"; i=$((i+1)); done"
    )
}

/// The numbers of `line N …` lines, checking they follow each other without a gap.
fn line_numbers(out: &str) -> Vec<usize> {
    let nums: Vec<usize> = out
        .lines()
        .map(|l| {
            let l = l.rsplit_once("Z line ").map_or(l, |(_, r)| r);
            let l = l.strip_prefix("line ").unwrap_or(l);
            l.split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a numbered line: {l:?}"))
        })
        .collect();
    for pair in nums.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "lines lost or repeated: {pair:?}");
    }
    nums
}

fn wait_exit(d: &TestDaemon, id: &str) {
    let out = d.docker_ok(&["wait", id]);
    assert_eq!(out.trim(), "0", "exit code of {id}");
}

#[test]
fn rotation_keeps_the_disk_bounded_and_logs_reads_across_files() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    let script = numbered_lines(2000);
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=10k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    let id = id.trim();
    wait_exit(&d, id);
    // About 360 KB were written; three files of at most 10 KiB are kept.
    let files = log_files(&container_dir(&d, id), &format!("{id}-json.log"));
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        names,
        [
            format!("{id}-json.log"),
            format!("{id}-json.log.1"),
            format!("{id}-json.log.2")
        ]
    );
    for (name, size) in &files[1..] {
        assert!(
            *size <= 10 * 1024 && *size > 9 * 1024,
            "{name}: {size} bytes"
        );
    }
    assert!(files[0].1 <= 10 * 1024);

    // `logs` gives the newest lines, across the three files, in order.
    let all = d.docker_ok(&["logs", id]);
    let nums = line_numbers(&all);
    assert_eq!(*nums.last().unwrap(), 1999);
    // A line takes about 152 bytes: 67 a file.
    assert!(
        nums.len() > 130 && nums[0] > 1790,
        "{} lines from {}",
        nums.len(),
        nums[0]
    );

    // --tail across files.
    let tail = d.docker_ok(&["logs", "--tail", "100", id]);
    assert_eq!(line_numbers(&tail), (1900..2000).collect::<Vec<_>>());

    // Every line has its own time, later than the one before (--timestamps), and
    // --since / --until pick lines across files by those times.
    let stamped = d.docker_ok(&["logs", "--timestamps", id]);
    let times: Vec<&str> = stamped
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(times.len(), nums.len());
    for pair in times.windows(2) {
        assert!(pair[0] < pair[1], "times not increasing: {pair:?}");
    }
    let mid = times.len() / 3;
    let since = d.docker_ok(&["logs", "--since", times[mid], id]);
    assert_eq!(line_numbers(&since)[0], nums[mid]);
    let until = d.docker_ok(&["logs", "--until", times[mid], id]);
    assert_eq!(*line_numbers(&until).last().unwrap(), nums[mid]);
}

#[test]
fn compressed_rotation_is_read_back() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    let script = numbered_lines(1000);
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=8k",
        "--log-opt",
        "max-file=4",
        "--log-opt",
        "compress=true",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    let id = id.trim();
    wait_exit(&d, id);
    let dir = container_dir(&d, id);
    let names: Vec<String> = log_files(&dir, &format!("{id}-json.log"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            format!("{id}-json.log"),
            format!("{id}-json.log.1.gz"),
            format!("{id}-json.log.2.gz"),
            format!("{id}-json.log.3.gz"),
        ]
    );
    let gz = std::fs::read(dir.join(&names[3])).unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "a gzip file");
    let nums = line_numbers(&d.docker_ok(&["logs", id]));
    assert_eq!(*nums.last().unwrap(), 999);
    assert!(
        nums.len() > 150,
        "lines from the compressed files too: {}",
        nums.len()
    );
    let tail = d.docker_ok(&["logs", "--tail", "120", id]);
    assert_eq!(line_numbers(&tail), (880..1000).collect::<Vec<_>>());
    let v = d.inspect(id);
    assert_eq!(
        v["HostConfig"]["LogConfig"]["Config"],
        serde_json::json!({"compress": "true", "max-file": "4", "max-size": "8k"})
    );
}

#[test]
fn follow_goes_on_across_rotations_without_loss_or_repeat() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    // About 13 lines a file, a line each 20 ms: a rotation every quarter second or so.
    let script =
        "sleep 2; i=0; while [ $i -lt 300 ]; do echo \"line $i\"; i=$((i+1)); sleep 0.02; done";
    for compress in ["false", "true"] {
        let id = d.docker_ok(&[
            "run",
            "-d",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=3",
            "--log-opt",
            &format!("compress={compress}"),
            "busybox",
            "sh",
            "-c",
            script,
        ]);
        let id = id.trim().to_string();
        let mut cmd = Command::new(DOCKER_CLI);
        cmd.args(["logs", "-f", &id]).env("DOCKER_HOST", d.host());
        let out = run_with_timeout(cmd, None, Duration::from_secs(120), "docker logs -f");
        assert_success(&out, "docker logs -f");
        let nums = line_numbers(&stdout(&out));
        assert_eq!(nums, (0..300).collect::<Vec<_>>(), "compress={compress}");
        // Meanwhile the files were rotated away.
        let files = log_files(&container_dir(&d, &id), &format!("{id}-json.log"));
        assert_eq!(files.len(), 3, "{files:?}");
    }
}

#[test]
fn rotation_is_on_by_default_and_max_size_minus_one_turns_it_off() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    // 70 MB without a newline: pieces of 16 KiB, rotated at 10 MB, five files kept.
    let id = d.docker_ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero bs=1048576 count=70 2>/dev/null | tr '\\0' a",
    ]);
    let id = id.trim();
    wait_exit(&d, id);
    let files = log_files(&container_dir(&d, id), &format!("{id}-json.log"));
    assert_eq!(files.len(), 5, "{files:?}");
    let total: u64 = files.iter().map(|(_, s)| s).sum();
    assert!(total <= 50 << 20, "{total} bytes kept");
    for (name, size) in &files[1..] {
        assert!(*size <= 10 << 20 && *size > 9 << 20, "{name}: {size}");
    }
    // Docker shows no options when none were given.
    let v = d.inspect(id);
    assert_eq!(
        v["HostConfig"]["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {}})
    );
    // `info` tells how logs rotate (the real CLI shows the label).
    let info = d.docker_ok(&["info"]);
    assert!(info.contains("Logging Driver: json-file"), "{info}");
    assert!(
        info.contains("berth.log-rotation=max-file=5,max-size=10m"),
        "{info}"
    );

    let script = numbered_lines(300);
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=-1",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    let id = id.trim();
    wait_exit(&d, id);
    let files = log_files(&container_dir(&d, id), &format!("{id}-json.log"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        line_numbers(&d.docker_ok(&["logs", id])),
        (0..300).collect::<Vec<_>>()
    );
}

#[test]
fn long_lines_split_at_16k_and_lines_of_one_write_keep_their_own_time() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    let id = d.docker_ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "head -c 20000 /dev/zero | tr '\\0' a; echo; printf 'one\\ntwo\\nthree\\n'",
    ]);
    let id = id.trim();
    wait_exit(&d, id);
    let text =
        std::fs::read_to_string(container_dir(&d, id).join(format!("{id}-json.log"))).unwrap();
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lens: Vec<usize> = entries
        .iter()
        .map(|e| e["log"].as_str().unwrap().len())
        .collect();
    // As Docker: 16384 bytes without a newline, then the rest with it.
    assert_eq!(lens, [16384, 3617, 4, 4, 6]);
    let times: Vec<&str> = entries
        .iter()
        .map(|e| e["time"].as_str().unwrap())
        .collect();
    for pair in times.windows(2) {
        assert!(pair[0] < pair[1], "{pair:?}");
    }
    let out = d.docker_ok(&["logs", id]);
    let mut want = "a".repeat(20000);
    want.push_str("\none\ntwo\nthree\n");
    assert_eq!(out, want);
}

#[test]
fn local_driver_writes_dockers_format_and_logs_reads_it() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    let script = numbered_lines(600);
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--log-driver",
        "local",
        "--log-opt",
        "max-size=10k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        &format!("{script}; echo err >&2; printf part"),
    ]);
    let id = id.trim();
    wait_exit(&d, id);
    let dir = container_dir(&d, id).join("local-logs");
    let names: Vec<String> = log_files(&dir, "container.log")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        ["container.log", "container.log.1.gz", "container.log.2.gz"]
    );
    // Length-framed protobuf: the first 4 bytes are the frame's length, repeated after it.
    let raw = std::fs::read(dir.join("container.log")).unwrap();
    let len = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
    assert_eq!(&raw[len + 4..len + 8], &raw[..4]);
    assert_eq!(&raw[4..12], b"\x0a\x06stdout");

    // The CLI writes the container's stderr to its own.
    let out = d.docker(&["logs", id]);
    assert_eq!(stderr(&out), "err\n");
    let out = stdout(&out);
    let (lines, last) = out.rsplit_once('\n').unwrap();
    assert_eq!(last, "part", "an unfinished line stays unfinished");
    let nums = line_numbers(lines);
    assert_eq!(*nums.last().unwrap(), 599);
    assert!(nums.len() > 150, "{}", nums.len());
    assert_eq!(d.docker_ok(&["logs", "--tail", "1", id]), "part");
    let v = d.inspect(id);
    assert_eq!(v["LogPath"], "");
    assert_eq!(v["HostConfig"]["LogConfig"]["Type"], "local");
}

#[test]
fn none_driver_has_nothing_to_read() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    let id = d.docker_ok(&["run", "-d", "--log-driver", "none", "busybox", "echo", "hi"]);
    let id = id.trim();
    wait_exit(&d, id);
    let out = d.docker(&["logs", id]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&out)
    );
    assert!(!container_dir(&d, id)
        .join(format!("{id}-json.log"))
        .exists());
}

#[test]
fn bad_drivers_and_options_are_refused_at_create() {
    skip_unless_docker!();
    let d = TestDaemon::start();
    d.import_busybox();
    let refused = |flags: &[&str], expected: &str| {
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
    };
    refused(
        &["--log-opt", "x=1"],
        "unknown log opt 'x' for json-file log driver",
    );
    refused(
        &["--log-driver", "local", "--log-opt", "tag=x"],
        "unknown log opt 'tag' for log driver local",
    );
    refused(
        &["--log-opt", "max-size=1x"],
        "failed to initialize logging driver: invalid size: '1x'",
    );
    refused(
        &["--log-opt", "max-file=0"],
        "max-file cannot be less than 1",
    );
    refused(
        &["--log-opt", "compress=true", "--log-opt", "max-file=1"],
        "compress cannot be true when max-file is less than 2 or max-size is not set",
    );
    refused(
        &["--log-driver", "local", "--log-opt", "max-file=1"],
        "compression cannot be enabled when max file count is 1",
    );
    refused(&["--log-opt", "tag={{.Name}}"], "tag");
    for driver in [
        "syslog",
        "journald",
        "gelf",
        "fluentd",
        "awslogs",
        "splunk",
        "gcplogs",
        "logentries",
    ] {
        refused(
            &["--log-driver", driver],
            &format!("the {driver} log driver is not supported"),
        );
    }
    refused(
        &["--log-driver", "foo"],
        "logger: no log driver named 'foo' is registered",
    );
    // The none driver takes no options (the Docker CLI says so itself; the API too).
    let body = br#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"LogConfig":{"Type":"none","Config":{"max-size":"1k"}}}}"#;
    let (status, _, resp) = d.request("POST", "/containers/create", Some(body));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&resp));
    assert!(String::from_utf8_lossy(&resp).contains("invalid logging opts for driver none"));
    assert_eq!(
        d.docker_ok(&["ps", "-aq"]).trim(),
        "",
        "a refused create left a container"
    );
    // labels and env become each entry's attrs, as Docker writes them.
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--label",
        "app=web",
        "-e",
        "STAGE=prod",
        "--log-opt",
        "labels=app",
        "--log-opt",
        "env=STAGE",
        "busybox",
        "echo",
        "hi",
    ]);
    let id = id.trim();
    wait_exit(&d, id);
    let text =
        std::fs::read_to_string(container_dir(&d, id).join(format!("{id}-json.log"))).unwrap();
    let e: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        e["attrs"],
        serde_json::json!({"app": "web", "STAGE": "prod"})
    );
    assert_eq!(d.docker_ok(&["logs", id]), "hi\n");
    assert_eq!(
        d.docker_ok(&["logs", "--details", id]),
        "STAGE=prod,app=web hi\n"
    );
}

#[test]
fn daemon_log_defaults_apply_as_dockerd_merges_them() {
    skip_unless_docker!();
    let conf = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(
        conf.path(),
        r#"{"log-driver": "json-file", "log-opts": {"max-size": "2k", "max-file": "2"}}"#,
    )
    .unwrap();
    let d = TestDaemon::start_with_args(&["--config-file", conf.path().to_str().unwrap()]);
    d.import_busybox();
    let script = numbered_lines(200);
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    let id = id.trim();
    wait_exit(&d, id);
    let v = d.inspect(id);
    assert_eq!(
        v["HostConfig"]["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {"max-file": "3", "max-size": "2k"}})
    );
    let files = log_files(&container_dir(&d, id), &format!("{id}-json.log"));
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.iter().all(|(_, s)| *s <= 2048), "{files:?}");
    assert_eq!(
        *line_numbers(&d.docker_ok(&["logs", id])).last().unwrap(),
        199
    );
    // Another driver does not get the json-file defaults.
    let id = d.docker_ok(&["create", "--log-driver", "local", "busybox", "true"]);
    let v = d.inspect(id.trim());
    assert_eq!(
        v["HostConfig"]["LogConfig"],
        serde_json::json!({"Type": "local", "Config": {}})
    );
    let info = d.docker_ok(&["info"]);
    assert!(
        info.contains("berth.log-rotation=max-file=2,max-size=2k"),
        "{info}"
    );

    // The same as daemon flags; the local driver as the default.
    let d2 = TestDaemon::start_with_args(&["--log-driver", "local", "--log-opt", "max-size=4k"]);
    d2.import_busybox();
    let id = d2.docker_ok(&["create", "busybox", "true"]);
    let v = d2.inspect(id.trim());
    assert_eq!(
        v["HostConfig"]["LogConfig"],
        serde_json::json!({"Type": "local", "Config": {"max-size": "4k"}})
    );
    let info: serde_json::Value =
        serde_json::from_slice(&d2.request("GET", "/info", None).2).unwrap();
    assert_eq!(info["LoggingDriver"], "local");
}

#[test]
fn the_shim_rotates_while_the_daemon_is_down() {
    skip_unless_docker!();
    let mut d = TestDaemon::start();
    d.import_busybox();
    let script = format!("sleep 2; {}", numbered_lines(2000));
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=10k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    let id = id.trim().to_string();
    d.kill_daemon();
    let dir = container_dir(&d, &id);
    let live = dir.join(format!("{id}-json.log"));
    assert!(
        wait_until(Duration::from_secs(60), || {
            std::fs::read_to_string(&live).is_ok_and(|t| t.contains("line 1999 "))
        }),
        "the container's output did not reach the log while the daemon was down"
    );
    let files = log_files(&dir, &format!("{id}-json.log"));
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.iter().all(|(_, s)| *s <= 10 * 1024), "{files:?}");
    d.start_daemon();
    let nums = line_numbers(&d.docker_ok(&["logs", &id]));
    assert_eq!(*nums.last().unwrap(), 1999);
    assert!(nums.len() > 130, "{}", nums.len());
}

#[test]
fn berth_cli_takes_the_log_flags() {
    let d = TestDaemon::start();
    d.import_busybox();
    let script = numbered_lines(100);
    let id = d.run_detached(&[
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(d.berth_ok(&["wait", &id]).trim(), "0");
    assert_eq!(
        d.inspect(&id)["HostConfig"]["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {"max-file": "2", "max-size": "2k"}})
    );
    assert_eq!(
        log_files(&container_dir(&d, &id), &format!("{id}-json.log")).len(),
        2
    );
    assert_eq!(
        line_numbers(&d.berth_ok(&["logs", "--tail", "3", &id])),
        [97, 98, 99]
    );
    let out = d.berth(&[
        "create",
        "--log-driver",
        "none",
        "--log-opt",
        "max-size=1k",
        "busybox",
    ]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("invalid logging opts for driver none"),
        "{}",
        stderr(&out)
    );
    let id = d.berth_ok(&["create", "--log-driver", "local", "busybox"]);
    assert_eq!(
        d.inspect(id.trim())["HostConfig"]["LogConfig"]["Type"],
        "local"
    );
}
