//! Issue 17, point 6: `--cgroup-parent` (and the daemon's `--cgroup-parent`) make a
//! working parent on cgroup v1 (cpuset.cpus and cpuset.mems copied from the ancestor, for
//! every directory made), v2 and the hybrid of both, at Docker's cgroupfs paths
//! (`/sys/fs/cgroup/<ctl>/<parent>/<id>`; a relative parent under the daemon's own
//! cgroup), and the directories Berth made are removed after the last container in them
//! went: the host's tree is left as found.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every cgroup hierarchy Berth puts containers in: (its key in /proc/<pid>/cgroup —
/// the v1 controllers, `""` for v2 —, its mount point).
fn hierarchies() -> Vec<(String, PathBuf)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mount = pre.split(' ').nth(4).unwrap_or("");
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let opts = post.nth(1).unwrap_or("");
        let ctls: Vec<&str> = opts
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro" && !o.contains('=') && !o.is_empty())
            .filter(|o| {
                [
                    "memory", "cpu", "cpuacct", "pids", "cpuset", "freezer", "devices", "blkio",
                ]
                .contains(o)
            })
            .collect();
        if fstype == "cgroup2" {
            out.push((String::new(), PathBuf::from(mount)));
        } else if fstype == "cgroup" && !ctls.is_empty() {
            out.push((ctls.join(","), PathBuf::from(mount)));
        }
    }
    out
}

fn cpuset_root() -> Option<PathBuf> {
    hierarchies()
        .into_iter()
        .map(|(_, m)| m)
        .find(|h| h.join("cpuset.cpus").exists())
}

/// A parent of this test's own, in every hierarchy, cleaned up on drop: the processes
/// left in it killed, its directories removed deepest first.
struct Parent {
    name: String,
    dirs: Vec<PathBuf>,
}

impl Parent {
    /// `/<name>` from each hierarchy's root.
    fn absolute(tag: &str) -> Parent {
        let name = format!("berth-e2e-{tag}-{}", std::process::id());
        let dirs = hierarchies().iter().map(|(_, m)| m.join(&name)).collect();
        Parent { name, dirs }
    }

    /// `<name>` under this process's own cgroup of each hierarchy (the daemon's too).
    fn relative(tag: &str) -> Parent {
        let name = format!("berth-e2e-{tag}-{}", std::process::id());
        let own = cgroup_lines(&std::fs::read_to_string("/proc/self/cgroup").unwrap());
        let dirs = hierarchies()
            .iter()
            .map(|(key, m)| {
                let base = own
                    .iter()
                    .find(|(c, _)| c == key)
                    .map_or("/", |(_, p)| p.as_str());
                m.join(base.trim_start_matches('/')).join(&name)
            })
            .collect();
        Parent { name, dirs }
    }

    fn exists_anywhere(&self) -> Vec<PathBuf> {
        self.dirs.iter().filter(|d| d.exists()).cloned().collect()
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    for pid in std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        signal(pid, libc::SIGKILL);
    }
    for _ in 0..20 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        for d in &self.dirs {
            remove_tree(d);
        }
    }
}

/// `/proc/self/cgroup` of a container: controllers → path.
fn cgroup_lines(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

/// The host's view of a running container's cgroups (containers have a private cgroup
/// namespace, so their own /proc/self/cgroup shows `/`).
fn host_cgroups(d: &TestDaemon, name: &str) -> Vec<(String, String)> {
    let pid = d.inspect(name)["State"]["Pid"].as_i64().expect("a pid");
    cgroup_lines(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap())
        .into_iter()
        .filter(|(c, _)| !c.starts_with("name="))
        .collect()
}

#[test]
fn a_new_deep_parent_works_and_is_left_as_found() {
    let d = TestDaemon::start();
    d.import_busybox();
    let p = Parent::absolute("deep");
    let parent = format!("/{}/a/b", p.name);
    // The first run in a new v1 parent: no "No space left on device".
    let out = d.berth_ok(&[
        "run",
        "--name",
        "first",
        "--cgroup-parent",
        &parent,
        "busybox",
        "echo",
        "ran",
    ]);
    assert_eq!(out.trim(), "ran");
    assert_eq!(d.inspect("first")["HostConfig"]["CgroupParent"], parent);
    // It exited: everything Berth made is gone.
    assert!(
        wait_until(Duration::from_secs(5), || p.exists_anywhere().is_empty()),
        "left behind: {:?}",
        p.exists_anywhere()
    );

    // Two containers share it: the parent stays until the last one goes.
    for name in ["c1", "c2"] {
        d.run_detached(&[
            "--name",
            name,
            "--cgroup-parent",
            &parent,
            "busybox",
            "sleep",
            "1000",
        ]);
    }
    let c2 = d.full_id("c2");
    // Docker's cgroupfs paths: <parent>/<id> in every hierarchy.
    let cgs = host_cgroups(&d, "c2");
    assert!(cgs.len() >= 2, "{cgs:?}");
    for (ctl, path) in &cgs {
        assert_eq!(path, &format!("{parent}/{c2}"), "{ctl}");
    }
    if let Some(cpuset) = cpuset_root() {
        for dir in [
            cpuset.join(&p.name),
            cpuset.join(&p.name).join("a"),
            cpuset.join(&p.name).join("a/b"),
            cpuset.join(&p.name).join("a/b").join(&c2),
        ] {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                assert!(!v.trim().is_empty(), "{} is empty", dir.join(f).display());
            }
        }
    }
    // exec joins the container's cgroups there; pause freezes them.
    let out = d.berth_ok(&["exec", "c2", "cat", "/proc/self/cgroup"]);
    assert!(out.lines().count() >= 2, "{out}");
    d.berth_ok(&["pause", "c2"]);
    assert_eq!(d.inspect("c2")["State"]["Status"], "paused");
    d.berth_ok(&["unpause", "c2"]);
    d.berth_ok(&["stop", "-t", "0", "c1"]);
    assert!(
        !p.exists_anywhere().is_empty(),
        "the parent went while c2 still runs in it"
    );
    assert_eq!(d.inspect("c2")["State"]["Running"], true);
    d.berth_ok(&["rm", "-f", "c2"]);
    assert!(
        wait_until(Duration::from_secs(5), || p.exists_anywhere().is_empty()),
        "left behind: {:?}",
        p.exists_anywhere()
    );
    // A container that restarts in it gets it again.
    d.berth_ok(&["start", "c1"]);
    assert_eq!(d.inspect("c1")["State"]["Running"], true);
    d.berth_ok(&["rm", "-f", "c1"]);
    assert!(
        wait_until(Duration::from_secs(5), || p.exists_anywhere().is_empty()),
        "left behind: {:?}",
        p.exists_anywhere()
    );
}

#[test]
fn an_existing_parent_is_used_and_kept() {
    let Some(cpuset) = cpuset_root() else {
        eprintln!("skipped: no cgroup v1 cpuset hierarchy");
        return;
    };
    let d = TestDaemon::start();
    d.import_busybox();
    let p = Parent::absolute("pre");
    // Made by someone else, cpuset left empty (as `mkdir` leaves it).
    let mine = cpuset.join(&p.name);
    std::fs::create_dir(&mine).unwrap();
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--cgroup-parent",
        &format!("/{}/sub", p.name),
        "busybox",
        "echo",
        "ran",
    ]);
    assert_eq!(out.trim(), "ran");
    // Berth's `sub` is gone, the parent it found is still there.
    assert!(
        wait_until(Duration::from_secs(5), || !mine.join("sub").exists()),
        "sub left behind"
    );
    assert!(mine.is_dir(), "a parent Berth did not make was removed");
    let others: Vec<PathBuf> = p
        .exists_anywhere()
        .into_iter()
        .filter(|x| *x != mine)
        .collect();
    assert!(others.is_empty(), "left behind: {others:?}");
}

#[test]
fn a_relative_parent_nests_under_the_daemons_cgroup_and_the_daemon_flag_applies() {
    let p = Parent::absolute("daemon");
    let d = TestDaemon::start_with_args(&["--cgroup-parent", &format!("/{}", p.name)]);
    d.import_busybox();
    d.run_detached(&["--name", "dflt", "busybox", "sleep", "1000"]);
    let id = d.full_id("dflt");
    for (ctl, path) in host_cgroups(&d, "dflt") {
        assert_eq!(path, format!("/{}/{id}", p.name), "{ctl}");
    }
    // As in Docker, the daemon's default is not the container's own setting.
    assert_eq!(d.inspect("dflt")["HostConfig"]["CgroupParent"], "");
    d.berth_ok(&["rm", "-f", "dflt"]);
    assert!(
        wait_until(Duration::from_secs(5), || p.exists_anywhere().is_empty()),
        "left behind: {:?}",
        p.exists_anywhere()
    );
    // Relative: under the daemon's own cgroup of each hierarchy (the test's own).
    let r = Parent::relative("rel");
    d.run_detached(&[
        "--name",
        "rel",
        "--cgroup-parent",
        &r.name,
        "busybox",
        "sleep",
        "1000",
    ]);
    let id = d.full_id("rel");
    let own = cgroup_lines(&std::fs::read_to_string("/proc/self/cgroup").unwrap());
    for (ctl, path) in host_cgroups(&d, "rel") {
        let base = own
            .iter()
            .find(|(c, _)| *c == ctl)
            .map(|(_, p)| p.trim_end_matches('/').to_string())
            .unwrap_or_default();
        assert_eq!(path, format!("{base}/{}/{id}", r.name), "{ctl}");
    }
    d.berth_ok(&["rm", "-f", "rel"]);
    assert!(
        wait_until(Duration::from_secs(5), || r.exists_anywhere().is_empty()),
        "left behind: {:?}",
        r.exists_anywhere()
    );
}
