//! A corpus of hostile archives, made here byte for byte (the `tar` crate's builder refuses
//! most of them). Every absolute host path they aim at lies in a [`Host`] sandbox the test
//! owns: a secret file (its content must never show up anywhere) and an empty directory
//! (nothing may ever be written there).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The content of the host file the archives try to read.
pub const SECRET: &str = "HOST-SECRET-7f3a9c-never-in-an-image";

/// What the archives aim at on the host.
pub struct Host {
    pub dir: tempfile::TempDir,
}

impl Host {
    pub fn new() -> Host {
        let dir = tempfile::Builder::new()
            .prefix("be2e-hostile-")
            .tempdir()
            .expect("temp dir");
        std::fs::write(dir.path().join("secret"), SECRET).expect("secret");
        std::fs::create_dir(dir.path().join("target")).expect("target dir");
        Host { dir }
    }
    pub fn secret(&self) -> String {
        self.dir.path().join("secret").display().to_string()
    }
    pub fn target(&self) -> String {
        self.dir.path().join("target").display().to_string()
    }
    /// Panics when anything reached the host: a file in `target`, anything new next to
    /// the secret, a second link to the secret, or a changed secret.
    pub fn assert_untouched(&self, what: &str) {
        let target: Vec<_> = std::fs::read_dir(self.target())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(target.is_empty(), "{what}: written on the host: {target:?}");
        let mut top: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        top.sort();
        assert_eq!(
            top,
            vec!["secret", "target"],
            "{what}: written next to the secret"
        );
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(self.secret()).unwrap();
        assert_eq!(m.nlink(), 1, "{what}: the host secret was hardlinked");
        assert_eq!(
            std::fs::read_to_string(self.secret()).unwrap(),
            SECRET,
            "{what}: the host secret changed"
        );
    }
}

/// An entry type, as tar's type flag.
#[derive(Clone, Copy)]
pub enum K {
    File,
    Dir,
    Sym,
    Hard,
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
    Raw(u8),
}

/// A tar being written.
#[derive(Default)]
pub struct Tar(pub Vec<u8>);

fn header(name: &[u8], k: K, link: &[u8], size: u64, mode: u32) -> [u8; 512] {
    let mut h = tar::Header::new_gnu();
    let n = name.len().min(100);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    let l = link.len().min(100);
    h.as_old_mut().linkname[..l].copy_from_slice(&link[..l]);
    let flag = match k {
        K::File => b'0',
        K::Dir => b'5',
        K::Sym => b'2',
        K::Hard => b'1',
        K::Char(..) => b'3',
        K::Block(..) => b'4',
        K::Fifo => b'6',
        K::Raw(b) => b,
    };
    h.as_mut_bytes()[156] = flag;
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    if let K::Char(ma, mi) | K::Block(ma, mi) = k {
        h.set_device_major(ma).unwrap();
        h.set_device_minor(mi).unwrap();
    }
    h.set_cksum();
    *h.as_bytes()
}

impl Tar {
    fn pad(&mut self) {
        let n = (512 - self.0.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, n));
    }
    /// A GNU long name (`L`) then the entry, when the name is longer than 100 bytes.
    pub fn entry(&mut self, name: &str, k: K, link: &str, data: &[u8], mode: u32) -> &mut Self {
        if name.len() > 100 {
            self.special(b'L', name.as_bytes());
        }
        if link.len() > 100 {
            self.special(b'K', link.as_bytes());
        }
        self.0.extend_from_slice(&header(
            name.as_bytes(),
            k,
            link.as_bytes(),
            data.len() as u64,
            mode,
        ));
        self.0.extend_from_slice(data);
        self.pad();
        self
    }
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, K::File, "", data, 0o644)
    }
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, K::Dir, "", b"", 0o755)
    }
    pub fn sym(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, K::Sym, target, b"", 0o777)
    }
    pub fn hard(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, K::Hard, target, b"", 0o644)
    }
    /// A long name, long link or PAX header with this content.
    pub fn special(&mut self, kind: u8, data: &[u8]) -> &mut Self {
        let mut h = header(
            b"././@LongLink",
            K::Raw(kind),
            b"",
            data.len() as u64,
            0o644,
        );
        h[257..263].copy_from_slice(b"ustar ");
        h[263..265].copy_from_slice(b" \0");
        let mut hh = tar::Header::new_old();
        hh.as_mut_bytes().copy_from_slice(&h);
        hh.set_cksum();
        self.0.extend_from_slice(hh.as_bytes());
        self.0.extend_from_slice(data);
        self.pad();
        self
    }
    /// Only a header claiming `size` bytes of a special kind; the data follows from
    /// `fill` (zeros), cut at `written` bytes.
    pub fn special_claim(&mut self, kind: u8, size: u64, written: usize) -> &mut Self {
        let mut h = header(b"././@LongLink", K::Raw(kind), b"", size, 0o644);
        h[257..263].copy_from_slice(b"ustar ");
        h[263..265].copy_from_slice(b" \0");
        let mut hh = tar::Header::new_old();
        hh.as_mut_bytes().copy_from_slice(&h);
        hh.set_cksum();
        self.0.extend_from_slice(hh.as_bytes());
        self.0.extend(std::iter::repeat_n(b'a', written));
        self
    }
    pub fn pax(&mut self, records: &[(&str, &str)]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = format!(" {k}={v}\n");
            let mut len = body.len() + 1;
            while format!("{len}{body}").len() != len {
                len += 1;
            }
            data.extend_from_slice(format!("{len}{body}").as_bytes());
        }
        self.special(b'x', &data)
    }
    /// A GNU sparse file of `real` bytes with one 512-byte block of `b` at each offset.
    pub fn sparse(&mut self, name: &str, real: u64, offsets: &[u64], b: u8) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::GNUSparse);
        h.set_mode(0o644);
        h.set_size(512 * offsets.len() as u64);
        h.set_mtime(1);
        let gnu = h.as_gnu_mut().unwrap();
        for (slot, off) in gnu.sparse.iter_mut().zip(offsets) {
            slot.offset
                .copy_from_slice(format!("{off:011o}\0").as_bytes());
            slot.numbytes.copy_from_slice(b"00000001000\0");
        }
        gnu.realsize
            .copy_from_slice(format!("{real:011o}\0").as_bytes());
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        for _ in offsets {
            self.0.extend_from_slice(&[b; 512]);
        }
        self
    }
    pub fn end(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.0);
        v.extend_from_slice(&[0u8; 1024]);
        v
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// gzip of a stream: `head`, then `zeros` zero bytes, then `tail` (made without holding it).
pub fn gzip_stream(head: &[u8], zeros: u64, tail: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(head).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        e.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    e.write_all(tail).unwrap();
    e.finish().unwrap()
}

/// zstd of the same kind of stream.
pub fn zstd_stream(head: &[u8], zeros: u64, tail: &[u8]) -> Vec<u8> {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    e.write_all(head).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        e.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    e.write_all(tail).unwrap();
    e.finish().unwrap()
}

/// A zstd frame that asks the decoder for a 2 GiB window.
pub fn zstd_huge_window(data: &[u8]) -> Vec<u8> {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    e.set_parameter(zstd::zstd_safe::CParameter::WindowLog(31))
        .unwrap();
    e.set_parameter(zstd::zstd_safe::CParameter::EnableLongDistanceMatching(
        true,
    ))
    .unwrap();
    e.include_contentsize(false).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// How much a bomb layer expands to.
const BOMB: u64 = 128 << 20;

/// One hostile layer (a root filesystem tar, maybe compressed).
pub struct Case {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    /// A part of the error every entry point must give, when it must fail.
    pub error: Option<&'static str>,
}

fn case(name: &'static str, bytes: Vec<u8>, error: Option<&'static str>) -> Case {
    Case { name, bytes, error }
}

/// The layer-level corpus: every case aims at `host`.
pub fn layers(host: &Host) -> Vec<Case> {
    let secret = host.secret();
    let target = host.target();
    let up = "../".repeat(40);
    let rel_target = format!("{up}{}", target.trim_start_matches('/'));
    let rel_secret = format!("{up}{}", secret.trim_start_matches('/'));
    let deep = "d/".repeat(3000);
    let mut v = vec![
        case(
            "dotdot",
            Tar::default()
                .file(&format!("{rel_target}/dotdot"), b"x")
                .end(),
            None,
        ),
        case(
            "dotdot-inner",
            Tar::default().file("a/../../../x", b"x").end(),
            None,
        ),
        case(
            "absolute",
            Tar::default()
                .file(&format!("{target}/absolute"), b"x")
                .end(),
            None,
        ),
        case(
            "symlink-write-through",
            Tar::default()
                .sym("esc", &target)
                .file("esc/pwned", b"x")
                .end(),
            None,
        ),
        case(
            "symlink-relative-write-through",
            Tar::default()
                .sym("esc", &rel_target)
                .file("esc/pwned", b"x")
                .end(),
            None,
        ),
        case(
            "dir-becomes-symlink",
            Tar::default()
                .file("d/ok", b"1")
                .sym("d", &target)
                .file("d/pwned", b"x")
                .end(),
            None,
        ),
        case(
            "dir-entry-becomes-symlink-gzip",
            gzip(
                &Tar::default()
                    .dir("d")
                    .sym("d", &target)
                    .file("d/pwned", b"x")
                    .end(),
            ),
            None,
        ),
        case(
            "symlink-then-overwrite",
            Tar::default().sym("f", &secret).file("f", b"PWNED").end(),
            None,
        ),
        case(
            "symlink-then-hardlink-over",
            Tar::default()
                .sym("f", &secret)
                .file("g", b"1")
                .hard("f", "g")
                .end(),
            None,
        ),
        case(
            "hardlink-host-absolute",
            Tar::default().hard("h", &secret).end(),
            None,
        ),
        case(
            "hardlink-host-relative",
            Tar::default().hard("h", &rel_secret).end(),
            None,
        ),
        case(
            "hardlink-through-symlinked-dir",
            Tar::default()
                .sym("s", host.dir.path().to_str().unwrap())
                .hard("h", "s/secret")
                .end(),
            None,
        ),
        case(
            "hardlink-to-symlink-out",
            Tar::default().sym("s", &secret).hard("h", "s").end(),
            None,
        ),
        case(
            "hardlink-dev-zero",
            Tar::default().hard("z", "/dev/zero").end(),
            None,
        ),
        case(
            "symlink-dev-zero",
            Tar::default().sym("z", "/dev/zero").end(),
            None,
        ),
        case(
            "fifo",
            Tar::default().entry("fifo", K::Fifo, "", b"", 0o644).end(),
            None,
        ),
        case(
            "device-nodes",
            Tar::default()
                .entry("zero", K::Char(1, 5), "", b"", 0o666)
                .entry("sda", K::Block(8, 0), "", b"", 0o660)
                .end(),
            None,
        ),
        case(
            "setuid-root",
            Tar::default()
                .entry("suid", K::File, "", b"#!/bin/sh\n", 0o4755)
                .end(),
            None,
        ),
        case(
            "symlink-loop",
            Tar::default()
                .sym("a", "b")
                .sym("b", "a")
                .file("a/x", b"1")
                .end(),
            None,
        ),
        case(
            "whiteout-dotdot",
            Tar::default().file("d/f", b"1").file("d/.wh...", b"").end(),
            None,
        ),
        case(
            "whiteout-dot",
            Tar::default().file("d/f", b"1").file("d/.wh..", b"").end(),
            None,
        ),
        case(
            "huge-pax-header",
            Tar::default()
                .special(b'x', &vec![b'a'; 2 << 20])
                .file("f", b"1")
                .end(),
            Some("archive/tar: header field too long"),
        ),
        case(
            "huge-long-name",
            Tar::default()
                .special(b'L', &vec![b'n'; 2 << 20])
                .file("f", b"1")
                .end(),
            Some("archive/tar: header field too long"),
        ),
        case(
            "huge-long-link",
            Tar::default()
                .special(b'K', &vec![b'n'; 2 << 20])
                .sym("f", "x")
                .end(),
            Some("archive/tar: header field too long"),
        ),
        case(
            "pax-header-bomb-zstd",
            zstd_stream(
                &Tar::default().special_claim(b'x', 4 << 30, 0).0,
                256 << 20,
                &[],
            ),
            Some("archive/tar: header field too long"),
        ),
        case(
            "long-name-bomb-gzip",
            gzip_stream(
                &Tar::default().special_claim(b'L', 1 << 40, 0).0,
                64 << 20,
                &[],
            ),
            Some("archive/tar: header field too long"),
        ),
        case(
            "deep-nesting",
            Tar::default().file(&format!("{deep}f"), b"1").end(),
            None,
        ),
        case(
            "pax-sparse",
            Tar::default()
                .pax(&[
                    ("GNU.sparse.major", "1"),
                    ("GNU.sparse.minor", "0"),
                    ("GNU.sparse.realsize", "4096"),
                ])
                .file("GNUSparseFile.0/f", b"1\n0\n512\n")
                .end(),
            Some("sparse file in the PAX format"),
        ),
        case(
            "gnu-sparse-4g",
            Tar::default()
                .sparse("sparse", 4 << 30, &[0, (4 << 30) - 512], b's')
                .end(),
            None,
        ),
        case(
            "unknown-type",
            Tar::default()
                .entry("vol", K::Raw(b'V'), "", b"", 0o644)
                .end(),
            Some("unhandled tar header type 86"),
        ),
        case(
            "zstd-huge-window",
            zstd_huge_window(&Tar::default().file("f", &[7u8; 4096]).end()),
            Some("Frame requires too much memory"),
        ),
    ];
    // Bombs that are valid layers: 128 MiB of zeros from a few hundred KiB.
    let head = Tar::default()
        .entry("zeros", K::File, "", b"", 0o644)
        .0
        .clone();
    let mut bomb_head = head.clone();
    // The file's size: rewrite the header for 256 MiB.
    let h = header(b"zeros", K::File, b"", BOMB, 0o644);
    bomb_head[..512].copy_from_slice(&h);
    v.push(case(
        "gzip-bomb",
        gzip_stream(&bomb_head, BOMB, &[0u8; 1024]),
        None,
    ));
    v.push(case(
        "zstd-bomb",
        zstd_stream(&bomb_head, BOMB, &[0u8; 1024]),
        None,
    ));
    v
}

/// One hostile `docker save` archive (for `load` only).
pub struct SaveCase {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    /// A part of the error `load` must give.
    pub error: &'static str,
}

/// A small valid layer and the config that names it.
pub fn image_parts() -> (Vec<u8>, Vec<u8>) {
    let layer = Tar::default().file("hello", b"world").end();
    let diff = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&layer))
    );
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff]},
    }))
    .unwrap();
    (config, layer)
}

fn manifest(config: &str, layer: &str) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!([{"Config": config, "RepoTags": ["hostile:load"], "Layers": [layer]}]),
    )
    .unwrap()
}

/// A save archive with one image whose only layer is `layer` (any tar, even hostile).
pub fn save_of_layer(layer: &[u8]) -> Vec<u8> {
    let diff = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(layer))
    );
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff]},
    }))
    .unwrap();
    let mut t = Tar::default();
    t.file("config.json", &config)
        .file("layer.tar", layer)
        .file("manifest.json", &manifest("config.json", "layer.tar"));
    t.end()
}

pub fn saves(host: &Host) -> Vec<SaveCase> {
    let secret = host.secret();
    let target = host.target();
    let (config, layer) = image_parts();
    let m = manifest("config.json", "layer.tar");
    let rel_secret = format!("{}{}", "../".repeat(40), secret.trim_start_matches('/'));
    let with_config = |k: K, link: &str| {
        let mut t = Tar::default();
        t.entry("config.json", k, link, b"", 0o644)
            .file("layer.tar", &layer)
            .file("manifest.json", &m);
        t.end()
    };
    let with_layer = |k: K, link: &str| {
        let mut t = Tar::default();
        t.file("config.json", &config)
            .entry("layer.tar", k, link, b"", 0o644)
            .file("manifest.json", &m);
        t.end()
    };
    let s = |name, bytes, error| SaveCase { name, bytes, error };
    let mut big_manifest = b"[".to_vec();
    big_manifest.extend(std::iter::repeat_n(b' ', 9 << 20));
    big_manifest.push(b']');
    let nested_index = {
        // index.json → index → index → … deeper than any image layout has.
        let mut t = Tar::default();
        let mut digest = String::new();
        for i in 0..20 {
            let doc = if i == 0 {
                serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []})
            } else {
                serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": 1}]})
            };
            let bytes = serde_json::to_vec(&doc).unwrap();
            let hexd = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
            t.file(&format!("blobs/sha256/{hexd}"), &bytes);
            digest = format!("sha256:{hexd}");
        }
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": 1}]});
        t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
            .file("index.json", &serde_json::to_vec(&index).unwrap());
        t.end()
    };
    vec![
        s(
            "config-symlink-host",
            with_config(K::Sym, &secret),
            "config.json",
        ),
        s(
            "config-symlink-relative",
            with_config(K::Sym, &rel_secret),
            "config.json",
        ),
        s(
            "config-symlink-dev-zero",
            with_config(K::Sym, "/dev/zero"),
            "config.json",
        ),
        s(
            "config-symlink-proc",
            with_config(K::Sym, "/proc/self/root/etc/passwd"),
            "config.json",
        ),
        s(
            "config-hardlink-host",
            with_config(K::Hard, &secret),
            "config.json",
        ),
        s(
            "config-hardlink-dev-zero",
            with_config(K::Hard, "/dev/zero"),
            "config.json",
        ),
        s(
            "config-char-device",
            with_config(K::Char(1, 5), ""),
            "config.json",
        ),
        s("config-fifo", with_config(K::Fifo, ""), "config.json"),
        s(
            "layer-symlink-dev-zero",
            with_layer(K::Sym, "/dev/zero"),
            "layer.tar",
        ),
        s(
            "layer-symlink-host",
            with_layer(K::Sym, &secret),
            "layer.tar",
        ),
        s(
            "layer-block-device",
            with_layer(K::Block(8, 0), ""),
            "layer.tar",
        ),
        s(
            "manifest-symlink-host",
            Tar::default().sym("manifest.json", &secret).end(),
            "manifest.json",
        ),
        s(
            "manifest-too-big",
            Tar::default().file("manifest.json", &big_manifest).end(),
            "more than the",
        ),
        s(
            "write-through-symlinked-dir",
            Tar::default()
                .sym("blobs", &target)
                .file("blobs/pwned", b"x")
                .end(),
            "symlink",
        ),
        s(
            "dotdot-entry",
            Tar::default().file("../../../../pwned", b"x").end(),
            "outside of the archive",
        ),
        s(
            "absolute-entry",
            Tar::default().file(&format!("{target}/pwned"), b"x").end(),
            "manifest.json",
        ),
        s(
            "config-too-big-gzip",
            gzip_stream(
                &{
                    let mut t = Tar::default();
                    t.file("manifest.json", &m);
                    let mut h = t.0;
                    h.extend_from_slice(&header(b"config.json", K::File, b"", 64 << 20, 0o644));
                    h
                },
                64 << 20,
                &Tar::default().file("layer.tar", &layer).end(),
            ),
            "more than the",
        ),
        s("nested-indexes", nested_index, "nested too deep"),
        s(
            "hostile-layer-inside",
            save_of_layer(
                &Tar::default()
                    .sym("esc", &target)
                    .file("esc/pwned", b"x")
                    .end(),
            ),
            "symlink",
        ),
        s(
            "deep-nesting-save",
            Tar::default()
                .file(&format!("{}f", "d/".repeat(3000)), b"x")
                .end(),
            "nested too deep",
        ),
        s(
            "huge-header-in-save",
            Tar::default()
                .special(b'x', &vec![b'a'; 2 << 20])
                .file("manifest.json", &m)
                .end(),
            "archive/tar: header field too long",
        ),
    ]
}

/// Every regular file under `root` (not following links) whose bytes contain `needle`.
pub fn files_containing(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        } else if m.is_file() && m.len() < (64 << 20) {
            if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    out.push(p);
                }
            }
        }
    }
    out
}
