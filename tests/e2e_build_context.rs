//! Bad and big build contexts (issue 12, point 10): absolute and `..` entries, hard links
//! and symlinks that point out of the context, a 2 GB context (a sparse entry: 2 GB once
//! unpacked, a few KB in the stream and on disk) and one over the size limit. Each gets
//! an error (Docker's words where Docker has one) or works; the daemon stays up with
//! bounded memory and leaves nothing in its build directory.

mod common;

use std::fs;

use common::build_context::daemon;
use common::*;

/// A tar of `(name, data)` entries, names written as given (absolute or `..` too).
fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        let bytes = h.as_mut_bytes();
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

const DOCKERFILE: &[u8] = b"FROM busybox\nRUN true\n";

/// A context with the Dockerfile and a GNU sparse file `big.bin` of `real` bytes whose
/// only data is its last 4 KiB.
fn sparse_context(real: u64) -> Vec<u8> {
    let mut out = raw_tar(&[("Dockerfile", tar::EntryType::Regular, "", DOCKERFILE)]);
    out.truncate(out.len() - 1024);
    let mut h = tar::Header::new_gnu();
    h.set_path("big.bin").unwrap();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_size(4096);
    let g = h.as_gnu_mut().unwrap();
    g.sparse[0].set_offset(real - 4096);
    g.sparse[0].set_length(4096);
    g.set_real_size(real);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend(std::iter::repeat_n(b'x', 4096));
    out.resize(out.len() + 1024, 0);
    out
}

fn build_dir_is_empty(d: &TestDaemon) -> bool {
    fs::read_dir(d.root.join("builds/tmp"))
        .map(|rd| rd.count() == 0)
        .unwrap_or(true)
}

fn vm_hwm_kb(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn entries_and_links_out_of_the_context_are_refused_and_leave_nothing() {
    let d = daemon();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            raw_tar(&[
                ("Dockerfile", tar::EntryType::Regular, "", DOCKERFILE),
                ("/abs-evil", tar::EntryType::Regular, "", b"x"),
            ]),
            "Error processing tar file(invalid tar header: /abs-evil is outside of the build context): ",
        ),
        (
            raw_tar(&[
                ("Dockerfile", tar::EntryType::Regular, "", DOCKERFILE),
                ("a/../../up-evil", tar::EntryType::Regular, "", b"x"),
            ]),
            "is outside of the build context",
        ),
        (
            raw_tar(&[
                ("Dockerfile", tar::EntryType::Regular, "", DOCKERFILE),
                ("hl", tar::EntryType::Link, "../../../../etc/passwd", b""),
            ]),
            "Error processing tar file(invalid hardlink \"hl\" -> \"../../../../etc/passwd\"): ",
        ),
        (
            raw_tar(&[
                ("Dockerfile", tar::EntryType::Regular, "", DOCKERFILE),
                ("hl", tar::EntryType::Link, "/etc/passwd", b""),
            ]),
            "invalid hardlink",
        ),
    ];
    for (body, want) in cases {
        let (status, _, answer) = d.request("POST", "/build", Some(&body));
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(status, 400, "{answer}");
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let message = v["message"].as_str().unwrap_or_default();
        assert!(message.contains(want), "want {want:?} in {message}");
        assert!(build_dir_is_empty(&d), "nothing left after {want}");
    }
    assert!(!d.dir.join("abs-evil").exists() && !std::path::Path::new("/abs-evil").exists());

    // Symlinks are kept as they are, and COPY resolves them inside the context: one
    // pointing up and out copies nothing from the host.
    let body = raw_tar(&[
        (
            "Dockerfile",
            tar::EntryType::Regular,
            "",
            b"FROM busybox\nCOPY up/etc/hostname /x\n",
        ),
        ("up", tar::EntryType::Symlink, "../../../../../..", b""),
    ]);
    let (status, _, answer) = d.request("POST", "/build", Some(&body));
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains(
            "COPY failed: file not found in build context or excluded by .dockerignore: stat up/etc/hostname: file does not exist"
        ),
        "{answer}"
    );
    // A link to a file inside the context is followed.
    let body = raw_tar(&[
        (
            "Dockerfile",
            tar::EntryType::Regular,
            "",
            b"FROM busybox\nCOPY via /x\nRUN test \"$(cat /x)\" = inside\n",
        ),
        ("in/file", tar::EntryType::Regular, "", b"inside"),
        ("via", tar::EntryType::Symlink, "/in/file", b""),
    ]);
    let (status, _, answer) = d.request("POST", "/build", Some(&body));
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 200);
    assert!(answer.contains("Successfully built"), "{answer}");
    assert!(build_dir_is_empty(&d));
    let (_, _, body) = d.request("GET", "/_ping", None);
    assert_eq!(body, b"OK");
}

#[test]
fn a_2gb_context_builds_with_bounded_memory_and_one_over_the_limit_is_refused() {
    let d = daemon();
    let pid = d.daemon_pid().unwrap();
    let body = sparse_context(2 << 30);
    assert!(body.len() < 16 << 10, "the stream stays small");
    let (status, _, answer) = d.request("POST", "/build?t=big:1", Some(&body));
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("Successfully tagged big:1"), "{answer}");
    let hwm = vm_hwm_kb(pid);
    assert!(hwm > 0 && hwm < 256 << 10, "daemon peak RSS {hwm} kB");
    assert!(build_dir_is_empty(&d), "the 2 GB context is gone");

    // Over the limit (32 GB once unpacked): refused from the entry's header, before
    // anything is written, with a clear message.
    let body = sparse_context(40 << 30);
    let (status, _, answer) = d.request("POST", "/build", Some(&body));
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains(
            "the build context is larger than 32 GB: use a .dockerignore file to leave files out"
        ),
        "{answer}"
    );
    assert!(build_dir_is_empty(&d));
    let (_, _, body) = d.request("GET", "/_ping", None);
    assert_eq!(body, b"OK");
}
