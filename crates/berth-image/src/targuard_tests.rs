use super::*;
use std::io::Read;

/// A header block written byte for byte (the tar crate's builder refuses some of these).
pub(crate) fn raw_header(name: &[u8], kind: u8, size: u64) -> [u8; 512] {
    let mut h = tar::Header::new_ustar();
    h.as_mut_bytes()[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(1);
    h.as_mut_bytes()[156] = kind;
    h.set_cksum();
    *h.as_bytes()
}

fn pad(buf: &mut Vec<u8>) {
    let n = (512 - buf.len() % 512) % 512;
    buf.extend(std::iter::repeat_n(0u8, n));
}

fn entry(buf: &mut Vec<u8>, name: &[u8], kind: u8, data: &[u8]) {
    buf.extend_from_slice(&raw_header(name, kind, data.len() as u64));
    buf.extend_from_slice(data);
    pad(buf);
}

fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

fn read_all(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    // Small reads: headers split across reads must be handled.
    let mut g = TarGuard::new(data);
    let mut buf = [0u8; 37];
    loop {
        let n = g.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn names(data: &[u8]) -> io::Result<Vec<String>> {
    let mut ar = tar::Archive::new(TarGuard::new(data));
    let mut out = Vec::new();
    for e in ar.entries()? {
        let e = e?;
        out.push(String::from_utf8_lossy(&e.path_bytes()).into_owned());
    }
    Ok(out)
}

#[test]
fn ordinary_archives_pass_unchanged() {
    let mut b = tar::Builder::new(Vec::new());
    let long = "d/".repeat(120) + "file";
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "l", "t/".repeat(80)).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(1000);
    h.set_mode(0o644);
    b.append_data(&mut h, "plain", &[7u8; 1000][..]).unwrap();
    let tar = b.into_inner().unwrap();
    assert_eq!(read_all(&tar).unwrap(), tar);
    assert_eq!(names(&tar).unwrap(), vec![long, "l".into(), "plain".into()]);
}

#[test]
fn long_names_links_and_pax_headers_above_a_mebibyte_are_refused() {
    for kind in [b'L', b'K', b'x', b'g'] {
        let mut t = Vec::new();
        // The size alone decides: the data need not even be there.
        t.extend_from_slice(&raw_header(b"././@LongLink", kind, MAX_SPECIAL_SIZE + 1));
        t.extend(std::iter::repeat_n(b'a', 4096));
        let e = read_all(&t).unwrap_err();
        assert_eq!(e.to_string(), ERR_FIELD_TOO_LONG, "{}", kind as char);
        let e = names(&t).unwrap_err();
        assert!(e.to_string().contains(ERR_FIELD_TOO_LONG), "{e}");
    }
    // Exactly the limit is fine.
    let mut t = Vec::new();
    entry(
        &mut t,
        b"././@LongLink",
        b'L',
        &vec![b'n'; MAX_SPECIAL_SIZE as usize],
    );
    entry(&mut t, b"short", b'0', b"x");
    t.extend_from_slice(&[0u8; 1024]);
    assert_eq!(names(&t).unwrap()[0].len(), MAX_SPECIAL_SIZE as usize);
}

#[test]
fn the_pax_size_record_moves_the_next_header_as_the_tar_crate_reads_it() {
    // The entry's header says 0 bytes, its PAX header says 1024: a header-looking
    // block inside those 1024 bytes is data, not a long name to refuse.
    let mut t = Vec::new();
    entry(&mut t, b"PaxHeaders/f", b'x', &pax_record("size", "1024"));
    t.extend_from_slice(&raw_header(b"f", b'0', 0));
    t.extend_from_slice(&raw_header(b"fake", b'L', 1 << 40));
    t.extend_from_slice(&[1u8; 512]);
    entry(&mut t, b"after", b'0', b"y");
    t.extend_from_slice(&[0u8; 1024]);
    assert_eq!(read_all(&t).unwrap(), t);
    assert_eq!(names(&t).unwrap(), vec!["f", "after"]);
    // And the other way round: a header whose size hides a huge long name is
    // shortened by its PAX record, the guard sees the long name.
    let mut t = Vec::new();
    entry(&mut t, b"PaxHeaders/f", b'x', &pax_record("size", "0"));
    t.extend_from_slice(&raw_header(b"f", b'0', 512));
    t.extend_from_slice(&raw_header(b"././@LongLink", b'L', 1 << 40));
    t.extend_from_slice(&[0u8; 1024]);
    assert!(read_all(&t).is_err());
}

#[test]
fn pax_sparse_files_are_refused_with_a_clear_error() {
    let mut t = Vec::new();
    let mut recs = pax_record("GNU.sparse.major", "1");
    recs.extend(pax_record("GNU.sparse.minor", "0"));
    recs.extend(pax_record("GNU.sparse.realsize", "1048576"));
    entry(&mut t, b"PaxHeaders/f", b'x', &recs);
    entry(&mut t, b"GNUSparseFile.0/f", b'0', b"1\n0\n512\n");
    let e = names(&t).unwrap_err();
    assert!(
        e.to_string().contains("sparse file in the PAX format"),
        "{e}"
    );
}

#[test]
fn gnu_sparse_maps_have_a_limit() {
    let mut h = tar::Header::new_gnu();
    h.set_path("s").unwrap();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_size(0);
    h.set_mode(0o644);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.isextended[0] = 1;
    h.set_cksum();
    let mut t = h.as_bytes().to_vec();
    let mut ext = tar::GnuExtSparseHeader::new();
    ext.isextended[0] = 1;
    for _ in 0..MAX_SPARSE_EXTENSIONS + 1 {
        t.extend_from_slice(ext.as_bytes());
    }
    let e = read_all(&t).unwrap_err();
    assert!(e.to_string().contains("sparse file map"), "{e}");
}

#[test]
fn after_the_end_block_bytes_only_pass() {
    let mut t = Vec::new();
    entry(&mut t, b"a", b'0', b"1");
    t.extend_from_slice(&[0u8; 1024]);
    t.extend_from_slice(&raw_header(b"x", b'L', 1 << 40));
    assert_eq!(read_all(&t).unwrap(), t);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any bytes: the guard never panics, and what it passes is a prefix of its input.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096),
                                       kinds in proptest::collection::vec(prop_oneof![Just(b'L'), Just(b'K'), Just(b'x'), Just(b'g'), Just(b'S'), Just(b'0'), Just(b'5')], 0..4)) {
            let mut t = Vec::new();
            for (i, k) in kinds.iter().enumerate() {
                let size = (data.len() as u64).wrapping_mul(i as u64 + 1);
                t.extend_from_slice(&raw_header(b"n", *k, size));
                t.extend_from_slice(&data);
            }
            t.extend_from_slice(&data);
            if let Ok(out) = read_all(&t) {
                prop_assert_eq!(out, t.clone());
            }
            let _ = names(&t);
            // And through the layer unpacker.
            let dir = tempfile::tempdir().unwrap();
            let _ = crate::unpack::unpack_layer(&t[..], dir.path());
        }

        /// Archives the tar crate writes (long names, PAX records, any sizes) pass unchanged and
        /// read back the same entries.
        #[test]
        fn built_archives_round_trip(files in proptest::collection::vec(("[a-z]{1,12}(/[a-z]{1,12}){0,30}", proptest::collection::vec(any::<u8>(), 0..2000)), 1..6)) {
            let mut b = tar::Builder::new(Vec::new());
            for (name, data) in &files {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, name, &data[..]).unwrap();
            }
            let tar = b.into_inner().unwrap();
            prop_assert_eq!(read_all(&tar).unwrap(), tar.clone());
            let got = names(&tar).unwrap();
            let want: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
            prop_assert_eq!(got, want);
        }
    }
}
