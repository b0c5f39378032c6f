//! Issue 18: `network ls --filter`, `network rm -f` and `network prune` (`--filter`, the
//! confirmation prompt) as the Docker CLI 28 has them.

mod common;

use common::*;

#[test]
fn network_ls_filter_rm_force_and_prune() {
    let d = TestDaemon::start();
    d.berth_ok(&["network", "create", "--label", "tier=front", "cli-net-a"]);
    d.berth_ok(&["network", "create", "cli-net-b"]);
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["network", "ls", "--format", "{{.Name}}"];
        a.extend_from_slice(args);
        d.berth_ok(&a).lines().map(str::to_string).collect()
    };
    assert_eq!(names(&["--filter", "label=tier=front"]), ["cli-net-a"]);
    assert_eq!(names(&["-f", "name=cli-net-b"]), ["cli-net-b"]);
    assert_eq!(
        names(&["-f", "driver=bridge", "-f", "name=cli-net"]).len(),
        2
    );
    let bad = d.berth(&["network", "ls", "--filter", "nonsense=1"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("invalid filter 'nonsense'"),
        "{}",
        stderr(&bad)
    );

    // rm: a missing network is an error unless -f; the others are still removed.
    let out = d.berth(&["network", "rm", "no-such-net"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("network no-such-net not found"),
        "{}",
        stderr(&out)
    );
    let out = d.berth_ok(&["network", "rm", "-f", "no-such-net", "cli-net-b"]);
    assert_eq!(out.trim(), "cli-net-b");

    // prune asks first; "n" keeps everything, --filter narrows what goes.
    let out = d.berth_with_stdin(&["network", "prune"], Some(b"n\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Are you sure you want to continue? [y/N]"),
        "{}",
        stdout(&out)
    );
    assert_eq!(names(&["-f", "name=cli-net-a"]), ["cli-net-a"]);
    let out = d.berth_ok(&["network", "prune", "-f", "--filter", "label=tier=back"]);
    assert!(!out.contains("cli-net-a"), "{out}");
    let out = d.berth_ok(&["network", "prune", "-f", "--filter", "label=tier=front"]);
    assert!(out.contains("Deleted Networks:\ncli-net-a"), "{out}");
    assert!(names(&["-f", "name=cli-net"]).is_empty());
}
