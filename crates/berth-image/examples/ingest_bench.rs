//! Times the pull-side ingest of a large layer (gzip and zstd), and the decoders alone.
//! `cargo run -p berth-image --example ingest_bench -- [MB]`
use std::fs;
use std::io::{self, BufReader, Write};
use std::sync::Arc;
use std::time::Instant;

use berth_image::{BlobInfo, Compression, ImageStore};
use sha2::{Digest, Sha256};

fn peak_rss_mb() -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn ingest_child(args: &[String]) {
    let (path, digest, size, mt, diff_id, root) =
        (&args[2], &args[3], &args[4], &args[5], &args[6], &args[7]);
    let info = BlobInfo {
        digest: digest.clone(),
        size: size.parse().unwrap(),
        media_type: mt.clone(),
    };
    fs::create_dir_all(root).unwrap();
    let db =
        Arc::new(berth_image::MetaDb::open(&std::path::Path::new(root).join("meta.db")).unwrap());
    let store = ImageStore::open(std::path::Path::new(root), db).unwrap();
    let lease = store.lease();
    let mut f = fs::File::open(path).unwrap();
    let t = Instant::now();
    store
        .ingest_layer(&lease, &mut f, &info, diff_id, diff_id, None, &mut |_| {})
        .unwrap();
    eprintln!(
        "ingest {mt}: {:?}, peak RSS {} MB",
        t.elapsed(),
        peak_rss_mb()
    );
    std::mem::forget(lease);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("ingest") {
        return ingest_child(&args);
    }
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    // Second argument: file size in KiB (default 256; real base images are mostly small files).
    let file_kb: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = if std::env::var_os("BENCH_KEEP").is_some() {
        let p = dir.keep();
        eprintln!("keeping {}", p.display());
        tempfile::TempDir::new_in(&p).unwrap()
    } else {
        dir
    };
    // A tar of files with compressible pseudo-random content (about 3:1).
    let tar_path = dir.path().join("layer.tar");
    {
        let mut b = tar::Builder::new(io::BufWriter::new(fs::File::create(&tar_path).unwrap()));
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let file_size = file_kb * 1024;
        for i in 0..(mb * 1024 * 1024 / file_size) {
            let data: Vec<u8> = (0..file_size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"abcdefghijklmnop"[(x % 16) as usize]
                })
                .collect();
            let mut h = tar::Header::new_gnu();
            h.set_path(format!("usr/share/d{}/e{}/f{i}", i % 20, i % 97))
                .unwrap();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        }
        b.into_inner().unwrap().flush().unwrap();
    }
    let tar = fs::read(&tar_path).unwrap();
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
    let t = Instant::now();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    eprintln!("gzip -6: {:?}", t.elapsed());
    let t = Instant::now();
    let zs = zstd::encode_all(&tar[..], 3).unwrap();
    eprintln!("zstd -3: {:?}", t.elapsed());
    drop(tar);
    eprintln!(
        "tar {} MB, gzip {} MB, zstd {} MB",
        mb,
        gz.len() >> 20,
        zs.len() >> 20
    );

    for (name, bytes, c) in [
        ("gzip", &gz, Compression::Gzip),
        ("zstd", &zs, Compression::Zstd),
    ] {
        let t = Instant::now();
        let mut d = c
            .decoder(BufReader::with_capacity(256 * 1024, &bytes[..]))
            .unwrap();
        let n = io::copy(&mut d, &mut io::sink()).unwrap();
        eprintln!("decode {name}: {n} bytes in {:?}", t.elapsed());
    }
    let gz_path = dir.path().join("blob.gz");
    let zs_path = dir.path().join("blob.zst");
    fs::write(&gz_path, &gz).unwrap();
    fs::write(&zs_path, &zs).unwrap();
    let infos = [
        (
            gz_path,
            BlobInfo {
                digest: format!("sha256:{}", hex::encode(Sha256::digest(&gz))),
                size: gz.len() as u64,
                media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
            },
        ),
        (
            zs_path,
            BlobInfo {
                digest: format!("sha256:{}", hex::encode(Sha256::digest(&zs))),
                size: zs.len() as u64,
                media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
            },
        ),
    ];
    drop(gz);
    drop(zs);
    for (path, info) in &infos {
        let root = dir.path().join(format!("root-{}", &info.digest[7..15]));
        let st = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "ingest",
                path.to_str().unwrap(),
                &info.digest,
                &info.size.to_string(),
                &info.media_type,
                &diff_id,
                root.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(st.success());
        if std::env::var_os("BENCH_KEEP").is_some() {
            eprintln!(
                "child args: ingest {} {} {} {} {diff_id} ROOT",
                path.display(),
                info.digest,
                info.size,
                info.media_type
            );
        }
    }
    if std::env::var_os("BENCH_KEEP").is_some() {
        let _ = dir.keep();
    }
}
