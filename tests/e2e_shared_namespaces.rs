//! `--pid container:NAME` and `--ipc container:NAME` (issue 16, point 3): the other
//! container's processes and System V IPC / `/dev/shm` are visible, as with dockerd 20.10;
//! a missing, stopped or non-shareable donor is refused in Docker's words.

mod common;

use common::*;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

#[test]
fn pid_and_ipc_of_another_container() {
    let d = daemon();
    d.run_detached(&[
        "--name",
        "donor",
        "--ipc",
        "shareable",
        "busybox",
        "sh",
        "-c",
        "echo hi > /dev/shm/x; exec sleep 300",
    ]);
    assert!(wait_until(std::time::Duration::from_secs(5), || {
        code(&d.berth(&["exec", "donor", "test", "-f", "/dev/shm/x"])) == 0
    }));
    // the donor's sleep is PID 1 of the shared namespace
    let ps = d.berth_ok(&[
        "run",
        "--rm",
        "--pid",
        "container:donor",
        "busybox",
        "ps",
        "-o",
        "pid,args",
    ]);
    assert!(ps.lines().any(|l| l.trim() == "1 sleep 300"), "{ps}");
    let shm = d.berth_ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:donor",
        "busybox",
        "cat",
        "/dev/shm/x",
    ]);
    assert_eq!(shm.trim(), "hi");
    // the same IPC namespace, not only the same files
    let donor_ipc = d.berth_ok(&["exec", "donor", "readlink", "/proc/self/ns/ipc"]);
    let joined = d.berth_ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:donor",
        "busybox",
        "readlink",
        "/proc/self/ns/ipc",
    ]);
    assert_eq!(donor_ipc, joined);
    let inspect = {
        d.berth_ok(&[
            "create",
            "--name",
            "joiner",
            "--pid",
            "container:donor",
            "--ipc",
            "container:donor",
            "busybox",
            "true",
        ]);
        d.inspect("joiner")
    };
    assert_eq!(inspect["HostConfig"]["PidMode"], "container:donor");
    assert_eq!(inspect["HostConfig"]["IpcMode"], "container:donor");
    d.berth_ok(&["rm", "-f", "joiner", "donor"]);
}

#[test]
fn bad_donors_are_refused_in_dockers_words() {
    let d = daemon();
    for flag in ["--pid", "--ipc"] {
        let out = d.berth(&["create", flag, "container:missing", "busybox", "true"]);
        assert!(
            stderr(&out).contains("No such container: missing"),
            "{flag}: {}",
            stderr(&out)
        );
    }
    d.berth_ok(&[
        "create",
        "--name",
        "stopped",
        "--ipc",
        "shareable",
        "busybox",
        "true",
    ]);
    let id = d.full_id("stopped");
    let out = d.berth(&[
        "run",
        "--rm",
        "--pid",
        "container:stopped",
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&out).contains(&format!("container {id} is not running")),
        "{}",
        stderr(&out)
    );
    let out = d.berth(&[
        "run",
        "--rm",
        "--ipc",
        "container:stopped",
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&out).contains(&format!(
            "can't join IPC of container {id}: container {id} is not running"
        )),
        "{}",
        stderr(&out)
    );
    d.run_detached(&["--name", "private", "busybox", "sleep", "300"]);
    let pid = d.full_id("private");
    let out = d.berth(&[
        "run",
        "--rm",
        "--ipc",
        "container:private",
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&out).contains(&format!(
            "can't join IPC of container {pid}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
        )),
        "{}",
        stderr(&out)
    );
    // nothing left by the refused runs
    let all = d.berth_ok(&["ps", "-aq"]);
    assert_eq!(all.lines().count(), 2, "{all}");
    d.berth_ok(&["rm", "-f", "stopped", "private"]);
}
