use super::*;
use crate::logformat::decode;
use crate::logspec::{list_files, LogFormat};
use std::io::Read;

fn spec(format: LogFormat, max_size: Option<u64>, max_file: u32, compress: bool) -> LogSpec {
    LogSpec {
        format,
        max_size,
        max_file,
        compress,
        attrs: Default::default(),
    }
}

fn read_all(live: &Path, format: LogFormat) -> Vec<Entry> {
    let mut out = Vec::new();
    for f in list_files(live) {
        let mut buf = Vec::new();
        if let Ok(file) = File::open(&f.path) {
            if f.gz {
                flate2::read::GzDecoder::new(file)
                    .read_to_end(&mut buf)
                    .unwrap();
            } else {
                let mut file = file;
                file.read_to_end(&mut buf).unwrap();
            }
        }
        out.extend(decode(format, &buf).0);
    }
    out
}

#[test]
fn each_line_gets_its_own_later_time() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("c-json.log");
    let mut w = LogWriter::open(&live, spec(LogFormat::JsonFile, None, 1, false)).unwrap();
    w.write(Stream::Stdout, b"a\nb\nc\nd\n").unwrap();
    let got = read_all(&live, LogFormat::JsonFile);
    assert_eq!(got.len(), 4);
    for pair in got.windows(2) {
        assert!(pair[0].time < pair[1].time, "{pair:?}");
    }
}

#[test]
fn lines_split_as_dockers_copier() {
    for format in [LogFormat::JsonFile, LogFormat::Local] {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("log");
        let mut w = LogWriter::open(&live, spec(format, None, 1, false)).unwrap();
        // A line arriving in pieces is one message; a 20000-byte line is two.
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stdout, b"lo\n").unwrap();
        let mut long = vec![b'a'; 20000];
        long.push(b'\n');
        w.write(Stream::Stderr, &long[..7000]).unwrap();
        w.write(Stream::Stderr, &long[7000..]).unwrap();
        w.write(Stream::Stdout, b"tail").unwrap();
        w.close_stream(Stream::Stdout).unwrap();
        w.close_stream(Stream::Stderr).unwrap();
        let got = read_all(&live, format);
        let lens: Vec<(Stream, usize)> = got.iter().map(|e| (e.stream, e.line.len())).collect();
        assert_eq!(
            lens,
            [
                (Stream::Stdout, 6),
                (Stream::Stderr, 16384),
                (Stream::Stderr, 3617),
                (Stream::Stdout, 4)
            ],
            "{format:?}"
        );
        assert_eq!(got[0].line, b"hello\n");
        assert!(!got[1].line.ends_with(b"\n"));
        assert_eq!(got[3].line, b"tail");
        if format == LogFormat::Local {
            let p1 = got[1].partial.clone().unwrap();
            let p2 = got[2].partial.clone().unwrap();
            assert_eq!(
                (p1.ordinal, p1.last, p2.ordinal, p2.last),
                (1, false, 2, true)
            );
            assert_eq!(p1.id, p2.id);
        }
    }
}

#[test]
fn rotation_keeps_max_file_files_near_max_size() {
    for compress in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("c-json.log");
        let mut w =
            LogWriter::open(&live, spec(LogFormat::JsonFile, Some(1024), 3, compress)).unwrap();
        for i in 0..500 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        let files = list_files(&live);
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            assert_eq!(f.gz, compress && f.index > 0, "{f:?}");
            let size = std::fs::metadata(&f.path).unwrap().len();
            assert!(size <= 1024, "{f:?} {size}");
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let want: Vec<&str> = if compress {
            vec!["c-json.log", "c-json.log.1.gz", "c-json.log.2.gz"]
        } else {
            vec!["c-json.log", "c-json.log.1", "c-json.log.2"]
        };
        assert_eq!(names, want);
        // The newest lines, in order, without a gap.
        let got = read_all(&live, LogFormat::JsonFile);
        assert_eq!(got.last().unwrap().line, b"line 499\n");
        let first: usize = String::from_utf8_lossy(&got[0].line)[5..]
            .trim()
            .parse()
            .unwrap();
        for (k, e) in got.iter().enumerate() {
            assert_eq!(e.line, format!("line {}\n", first + k).as_bytes());
        }
        assert!(first > 400, "only about 3 KiB are kept, from line {first}");
    }
}

#[test]
fn one_file_starts_afresh_and_unlimited_never_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("log");
    let mut w = LogWriter::open(&live, spec(LogFormat::Local, Some(200), 1, false)).unwrap();
    for i in 0..100 {
        w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
            .unwrap();
    }
    assert_eq!(list_files(&live).len(), 1);
    assert!(std::fs::metadata(&live).unwrap().len() <= 200);
    assert_eq!(
        read_all(&live, LogFormat::Local).last().unwrap().line,
        b"line 99\n"
    );

    let live = dir.path().join("big");
    let mut w = LogWriter::open(&live, spec(LogFormat::JsonFile, None, 5, false)).unwrap();
    for i in 0..100 {
        w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
            .unwrap();
    }
    assert_eq!(list_files(&live).len(), 1);
    assert_eq!(read_all(&live, LogFormat::JsonFile).len(), 100);
}

#[test]
fn fewer_files_configured_drops_the_extra_ones() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("log");
    let mut w = LogWriter::open(&live, spec(LogFormat::JsonFile, Some(100), 5, false)).unwrap();
    for i in 0..50 {
        w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
            .unwrap();
    }
    assert_eq!(list_files(&live).len(), 5);
    drop(w);
    let mut w = LogWriter::open(&live, spec(LogFormat::JsonFile, Some(100), 2, false)).unwrap();
    for i in 0..5 {
        w.write(Stream::Stdout, format!("more {i}\n").as_bytes())
            .unwrap();
    }
    assert_eq!(list_files(&live).len(), 2);
}

#[test]
fn a_reopened_log_goes_on_after_its_last_time() {
    for format in [LogFormat::JsonFile, LogFormat::Local] {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("log");
        // An entry stamped an hour ahead, as if the clock went back since.
        let ahead = Utc::now() + chrono::Duration::hours(1);
        let e = Entry {
            stream: Stream::Stdout,
            time: ahead,
            line: b"before\n".to_vec(),
            partial: None,
            attrs: Default::default(),
        };
        std::fs::write(&live, logformat::encode(format, &e)).unwrap();
        let mut w = LogWriter::open(&live, spec(format, None, 1, false)).unwrap();
        w.write(Stream::Stdout, b"after\n").unwrap();
        let got = read_all(&live, format);
        assert_eq!(got.len(), 2);
        assert!(got[1].time > ahead, "{format:?}: {:?}", got[1].time);
    }
}

#[test]
fn cri_logs_split_long_lines_and_reopen_after_a_rename() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("pods/app/0.log");
    let mut w = LogWriter::open(&live, spec(LogFormat::Cri, None, 1, false)).unwrap();
    let long = vec![b'x'; MAX_LINE + 10];
    w.write(Stream::Stdout, &long).unwrap();
    w.write(Stream::Stdout, b"\nshort\n").unwrap();
    let text = std::fs::read_to_string(&live).unwrap();
    let tags: Vec<&str> = text.lines().map(|l| l.split(' ').nth(2).unwrap()).collect();
    assert_eq!(tags, ["P", "F", "F"], "{text}");
    // The kubelet renames the file, then asks for a reopen: new lines go to a new file.
    let rotated = dir.path().join("pods/app/0.log.1");
    std::fs::rename(&live, &rotated).unwrap();
    w.reopen().unwrap();
    w.write(Stream::Stderr, b"after\n").unwrap();
    let new = std::fs::read_to_string(&live).unwrap();
    assert!(new.ends_with(" stderr F after\n"), "{new}");
    assert_eq!(new.lines().count(), 1);
    assert_eq!(std::fs::read_to_string(&rotated).unwrap(), text);
    // Times go on increasing across the reopen.
    let all = read_all(&rotated, LogFormat::Cri);
    let after = decode(LogFormat::Cri, new.as_bytes()).0;
    assert!(after[0].time > all.last().unwrap().time);
}
