//! `load` of hostile archives: nothing outside the staging directory is read or written.

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::store_tests::{dir_count, fixture, layer_tar};
use crate::ImageError;

/// One raw entry: the name byte for byte (`..` and absolute names included).
fn raw(buf: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(1);
    if matches!(kind, tar::EntryType::Char) {
        h.set_device_major(1).unwrap();
        h.set_device_minor(5).unwrap();
    }
    h.set_cksum();
    buf.extend_from_slice(h.as_bytes());
    buf.extend_from_slice(data);
    buf.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
}

fn end(mut buf: Vec<u8>) -> Vec<u8> {
    buf.extend_from_slice(&[0u8; 1024]);
    buf
}

/// A one-layer image's config and layer, and the manifest naming them at `config_path`
/// and `layer_path`.
fn image_parts(config_path: &str, layer_path: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let layer = layer_tar(&[("hello", b"world")]);
    let diff = crate::content::sha256_digest(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_path, "RepoTags": ["hostile:1"], "Layers": [layer_path]}
    ]))
    .unwrap();
    (config, layer, manifest)
}

struct Host {
    _dir: tempfile::TempDir,
    secret: String,
    empty_dir: String,
}

const SECRET: &[u8] = b"HOST-SECRET-never-in-an-image";

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.json");
    // Valid JSON, so a config read through the link would load.
    fs::write(
        &secret,
        br#"{"rootfs":{"type":"layers","diff_ids":[]},"comment":"HOST-SECRET-never-in-an-image"}"#,
    )
    .unwrap();
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    Host {
        secret: secret.to_str().unwrap().into(),
        empty_dir: empty.to_str().unwrap().into(),
        _dir: dir,
    }
}

fn load_err(tar: Vec<u8>) -> String {
    let f = fixture();
    let e = f.store.load(&mut &tar[..]).unwrap_err();
    assert!(matches!(e, ImageError::InvalidArgument(_)), "{e}");
    assert_eq!(dir_count(&f.root.join("tmp")), 0, "staging dir left behind");
    assert_eq!(f.store.count(), 0);
    e.to_string()
}

#[test]
fn a_config_linked_to_a_host_file_or_device_is_never_read() {
    use tar::EntryType::*;
    let h = host();
    let (_, layer, manifest) = image_parts("config.json", "layer.tar");
    let rel_up = format!("../../../../../../../../..{}", h.secret);
    for (kind, link) in [
        (Symlink, h.secret.as_str()),
        (Symlink, rel_up.as_str()),
        (Symlink, "/dev/zero"),
        (Symlink, "/proc/self/root/etc/passwd"),
        (Link, h.secret.as_str()),
        (Link, "/dev/zero"),
        (Char, ""),
        (Fifo, ""),
    ] {
        let mut t = Vec::new();
        raw(&mut t, "config.json", kind, link, b"");
        raw(&mut t, "layer.tar", Regular, "", &layer);
        raw(&mut t, "manifest.json", Regular, "", &manifest);
        let e = load_err(end(t));
        assert!(
            e.contains("config.json") && !e.contains(std::str::from_utf8(SECRET).unwrap()),
            "{kind:?} {link}: {e}"
        );
    }
}

#[test]
fn a_layer_or_manifest_linked_outside_is_never_read() {
    use tar::EntryType::*;
    let h = host();
    let (config, _, manifest) = image_parts("config.json", "layer.tar");
    for link in [h.secret.as_str(), "/dev/zero", "/dev/urandom"] {
        let mut t = Vec::new();
        raw(&mut t, "config.json", Regular, "", &config);
        raw(&mut t, "layer.tar", Symlink, link, b"");
        raw(&mut t, "manifest.json", Regular, "", &manifest);
        let e = load_err(end(t));
        assert!(e.contains("layer.tar"), "{link}: {e}");
        let mut t = Vec::new();
        raw(&mut t, "manifest.json", Symlink, link, b"");
        let e = load_err(end(t));
        assert!(e.contains("no manifest.json"), "{link}: {e}");
    }
}

#[test]
fn writes_never_go_through_links_or_above_the_top() {
    use tar::EntryType::*;
    let h = host();
    let mut t = Vec::new();
    raw(&mut t, "blobs", Symlink, &h.empty_dir, b"");
    raw(&mut t, "blobs/evil", Regular, "", b"x");
    let e = load_err(end(t));
    assert!(e.contains("symlink"), "{e}");
    let mut t = Vec::new();
    raw(&mut t, "../evil", Regular, "", b"x");
    let e = load_err(end(t));
    assert!(e.contains("outside of the archive"), "{e}");
    // A hardlink through a symlinked directory resolves inside the staging dir.
    let mut t = Vec::new();
    raw(&mut t, "d", Symlink, &h.empty_dir, b"");
    raw(&mut t, "x", Link, "d/../secret.json", b"");
    let e = load_err(end(t));
    assert!(e.contains("no such file"), "{e}");
    // An absolute name lands inside.
    let mut t = Vec::new();
    raw(&mut t, &format!("{}/evil", h.empty_dir), Regular, "", b"x");
    load_err(end(t));
    assert_eq!(dir_count(std::path::Path::new(&h.empty_dir)), 0);
    assert!(fs::read_to_string(&h.secret)
        .unwrap()
        .contains("HOST-SECRET"));
}

#[test]
fn manifests_and_configs_have_a_size_limit() {
    use tar::EntryType::*;
    let mut big = b"[".to_vec();
    big.extend(std::iter::repeat_n(
        b' ',
        (crate::stage::MAX_MANIFEST_SIZE) as usize,
    ));
    big.push(b']');
    let mut t = Vec::new();
    raw(&mut t, "manifest.json", Regular, "", &big);
    let e = load_err(end(t));
    assert!(e.contains("more than the"), "{e}");
}

#[test]
fn legacy_layer_links_resolve_inside_and_load() {
    use tar::EntryType::*;
    let (config, layer, _) = image_parts("c.json", "");
    let diff = crate::content::sha256_digest(&layer);
    let config2 = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff, diff]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "c.json", "RepoTags": ["one:1"], "Layers": ["a/layer.tar"]},
        {"Config": "c2.json", "RepoTags": ["two:1"], "Layers": ["a/layer.tar", "b/layer.tar"]},
    ]))
    .unwrap();
    let mut t = Vec::new();
    raw(&mut t, "a/", Directory, "", b"");
    raw(&mut t, "a/layer.tar", Regular, "", &layer);
    raw(&mut t, "b/", Directory, "", b"");
    // dockerd writes `../a/layer.tar`; an absolute link resolves in the archive too.
    raw(&mut t, "b/layer.tar", Symlink, "/a/layer.tar", b"");
    raw(&mut t, "c.json", Regular, "", &config);
    raw(&mut t, "c2.json", Symlink, "../../c2real.json", b"");
    raw(&mut t, "c2real.json", Regular, "", &config2);
    raw(&mut t, "manifest.json", Regular, "", &manifest);
    let f = fixture();
    let msgs = f.store.load(&mut &end(t)[..]).unwrap();
    assert_eq!(msgs, vec!["Loaded image: one:1", "Loaded image: two:1"]);
    assert_eq!(dir_count(&f.root.join("tmp")), 0);
}

#[test]
fn zero_runs_in_staged_files_are_holes() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Vec::new();
    let mut data = vec![0u8; 8 << 20];
    data[0] = 1;
    raw(&mut t, "big", tar::EntryType::Regular, "", &data);
    let staged = super::Staged::extract(&end(t)[..], dir.path()).unwrap();
    assert!(staged.is_file("big"));
    let m = fs::metadata(dir.path().join("big")).unwrap();
    assert_eq!(m.len(), 8 << 20);
    assert!(m.blocks() * 512 < 1 << 20, "{} blocks", m.blocks());
}
