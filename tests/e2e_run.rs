//! `berth run` and the options that shape the process (issue 2, point 5).

mod common;

use common::*;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

#[test]
fn exit_code_passes_through() {
    let d = daemon();
    let out = d.berth(&["run", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(code(&out), 3, "stderr: {}", stderr(&out));
    let out = d.berth(&["run", "--rm", "busybox", "true"]);
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
}

#[test]
fn stdout_and_stderr_stay_separate() {
    let d = daemon();
    let out = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; echo more-out",
    ]);
    assert_success(&out, "run");
    assert_eq!(stdout(&out), "to-out\nmore-out\n");
    assert_eq!(stderr(&out), "to-err\n");
}

#[test]
fn run_rm_leaves_no_container() {
    let d = daemon();
    assert_eq!(
        d.berth_ok(&["run", "--rm", "--name", "gone", "busybox", "echo", "hi"]),
        "hi\n"
    );
    assert_eq!(
        d.berth_ok(&["ps", "-a", "-q"]).trim(),
        "",
        "a container is left after run --rm"
    );
    let out = d.berth(&["inspect", "gone"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("No such object: gone")
            || stderr(&out).contains("No such container: gone"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_rm_also_removes_a_failing_container() {
    let d = daemon();
    let out = d.berth(&["run", "--rm", "busybox", "sh", "-c", "exit 4"]);
    assert_eq!(code(&out), 4);
    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");
}

#[test]
fn env_flags_and_env_file() {
    let d = daemon();
    let env_file = d.dir.join("env.list");
    std::fs::write(
        &env_file,
        "# a comment\nFROM_FILE=file value\n\nBOTH=from-file\n",
    )
    .unwrap();
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "--env",
        "B=two words",
        "--env-file",
        env_file.to_str().unwrap(),
        "-e",
        "BOTH=from-flag",
        "busybox",
        "sh",
        "-c",
        "echo \"$A|$B|$FROM_FILE|$BOTH|$PATH\"",
    ]);
    assert_eq!(
        out,
        "1|two words|file value|from-flag|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
}

#[test]
fn env_without_value_is_taken_from_the_cli_environment() {
    let d = daemon();
    // `-e NAME` (no =) copies NAME from the client's environment, as Docker does.
    let mut cmd = std::process::Command::new(BERTH);
    cmd.args([
        "-H",
        &d.host(),
        "run",
        "--rm",
        "-e",
        "BERTH_E2E_PASSED",
        "busybox",
        "sh",
        "-c",
        "echo $BERTH_E2E_PASSED",
    ])
    .env("BERTH_E2E_PASSED", "through");
    let out = run_with_timeout(cmd, None, CMD_TIMEOUT, "run -e NAME");
    assert_success(&out, "run -e NAME");
    assert_eq!(stdout(&out), "through\n");
}

#[test]
fn workdir_hostname_entrypoint_and_user() {
    let d = daemon();
    assert_eq!(
        d.berth_ok(&["run", "--rm", "-w", "/tmp/made/here", "busybox", "pwd"]),
        "/tmp/made/here\n"
    );
    assert_eq!(
        d.berth_ok(&["run", "--rm", "--hostname", "myhost", "busybox", "hostname"]),
        "myhost\n"
    );
    assert_eq!(
        d.berth_ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "echo",
            "busybox",
            "from",
            "entrypoint"
        ]),
        "from entrypoint\n"
    );
    assert_eq!(
        d.berth_ok(&["run", "--rm", "-u", "nobody", "busybox", "id", "-u"]),
        "65534\n"
    );
    assert_eq!(
        d.berth_ok(&["run", "--rm", "-u", "nobody", "busybox", "id", "-g"]),
        "65534\n"
    );
    assert_eq!(
        d.berth_ok(&[
            "run",
            "--rm",
            "-u",
            "1234:5678",
            "busybox",
            "sh",
            "-c",
            "echo $(id -u):$(id -g)"
        ]),
        "1234:5678\n"
    );
    assert_eq!(d.berth_ok(&["run", "--rm", "busybox", "id", "-u"]), "0\n");
}

#[test]
fn default_cmd_is_the_images_and_the_args_replace_it() {
    let d = daemon();
    let id = d.berth_ok(&["create", "busybox"]).trim().to_string();
    let v = d.inspect(&id);
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]), "{v}");
    assert_eq!(v["Path"], "sh");
}

#[test]
fn names_are_unique_with_dockers_conflict_error() {
    let d = daemon();
    let id = d
        .berth_ok(&["create", "--name", "dup", "busybox", "true"])
        .trim()
        .to_string();
    assert!(is_full_id(&id), "create printed {id:?}");
    let out = d.berth(&["run", "--name", "dup", "busybox", "true"]);
    assert_eq!(code(&out), 125, "stderr: {}", stderr(&out));
    let want = format!(
        "Error response from daemon: Conflict. The container name \"/dup\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    );
    assert!(
        stderr(&out).contains(&want),
        "stderr: {}\nwant: {want}",
        stderr(&out)
    );
    let out = d.berth(&["create", "--name", "dup", "busybox", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&want), "stderr: {}", stderr(&out));
    // Only the first container exists.
    assert_eq!(d.berth_ok(&["ps", "-a", "-q", "--no-trunc"]).trim(), id);
}

#[test]
fn invalid_names_are_refused() {
    let d = daemon();
    let out = d.berth(&["create", "--name", "bad name!", "busybox"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "Invalid container name (bad name!), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");
}

#[test]
fn ids_are_64_hex_and_prefixes_and_names_work_everywhere() {
    let d = daemon();
    let id = d.run_detached(&[
        "--name",
        "byname",
        "busybox",
        "sh",
        "-c",
        "echo hello; exec sleep 1000",
    ]);
    let short = &id[..12];
    let tiny = &id[..5];
    for r in [short, tiny, "byname", id.as_str()] {
        assert_eq!(d.inspect(r)["Id"], id.as_str(), "inspect {r}");
        assert!(
            wait_until(std::time::Duration::from_secs(10), || d
                .berth_ok(&["logs", r])
                == "hello\n"),
            "logs {r}"
        );
        let top = d.berth_ok(&["top", r]);
        assert!(top.contains("sleep 1000"), "top {r}: {top}");
    }
    d.berth_ok(&["pause", tiny]);
    d.berth_ok(&["unpause", short]);
    d.berth_ok(&["exec", tiny, "true"]);
    d.berth_ok(&["kill", short]);
    assert_eq!(d.berth_ok(&["wait", tiny]).trim(), "137");
    d.berth_ok(&["start", tiny]);
    d.berth_ok(&["restart", "-t", "0", short]);
    d.berth_ok(&["stop", "-t", "0", "byname"]);
    d.berth_ok(&["rename", tiny, "renamed"]);
    let out = d.berth_ok(&["rm", short]);
    assert_eq!(out.trim(), short, "rm prints what it was given");
    let out = d.berth(&["inspect", "renamed"]);
    assert!(!out.status.success(), "container still there after rm");
}

#[test]
fn unknown_container_gets_dockers_message() {
    let d = daemon();
    let out = d.berth(&["stop", "nosuch"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("No such container: nosuch"),
        "{}",
        stderr(&out)
    );
    let out = d.berth(&["logs", "nosuch"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("No such container: nosuch"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_image_is_reported() {
    let d = daemon();
    let out = d.berth(&["create", "nosuchimage:v9"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).to_lowercase().contains("nosuchimage"),
        "{}",
        stderr(&out)
    );
    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");
}

#[test]
fn missing_command_exits_127_with_dockers_message() {
    let d = daemon();
    let out = d.berth(&["run", "--name", "nocmd", "busybox", "nosuchcmd"]);
    assert_eq!(code(&out), 127, "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("exec: \"nosuchcmd\": executable file not found in $PATH"),
        "stderr: {}",
        stderr(&out)
    );
    let v = d.inspect("nocmd");
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["State"]["ExitCode"], 127, "{}", v["State"]);
    assert!(
        v["State"]["Error"]
            .as_str()
            .is_some_and(|e| e.contains("nosuchcmd")),
        "{}",
        v["State"]
    );
}

#[test]
fn non_executable_and_directory_commands_exit_126() {
    let d = daemon();
    let out = d.berth(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(code(&out), 126, "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("permission denied"),
        "stderr: {}",
        stderr(&out)
    );
}
