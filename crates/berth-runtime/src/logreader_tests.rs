use super::*;
use crate::jsonlog::Stream;
use crate::logspec::LogSpec;
use crate::logwriter::LogWriter;

fn spec(format: LogFormat, max_size: Option<u64>, max_file: u32, compress: bool) -> LogSpec {
    LogSpec {
        format,
        max_size,
        max_file,
        compress,
        attrs: Default::default(),
    }
}

fn text(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.line).trim_end().to_string())
        .collect()
}

#[test]
fn reads_across_rotated_files_in_order() {
    for (format, compress) in [
        (LogFormat::JsonFile, false),
        (LogFormat::JsonFile, true),
        (LogFormat::Local, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("log");
        let mut w = LogWriter::open(&live, spec(format, Some(300), 4, compress)).unwrap();
        for i in 0..40 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        let (_, all) = Follower::open(&live, format, None).unwrap();
        let all = text(&all);
        assert_eq!(all.last().unwrap(), "line 39");
        let first: usize = all[0][5..].parse().unwrap();
        assert!(first > 0, "some lines were rotated away");
        let want: Vec<String> = (first..40).map(|i| format!("line {i}")).collect();
        assert_eq!(all, want, "{format:?} {compress}");
        // tail reads only as many files as it needs, and at least `tail` lines.
        let (_, some) = Follower::open(&live, format, Some(3)).unwrap();
        assert!(some.len() >= 3);
        assert_eq!(
            text(&some[some.len() - 3..]),
            ["line 37", "line 38", "line 39"]
        );
    }
}

#[test]
fn follows_across_rotations_without_loss_or_repeat() {
    for (format, compress, max_file) in [
        (LogFormat::JsonFile, false, 3),
        (LogFormat::JsonFile, true, 3),
        (LogFormat::Local, false, 2),
        (LogFormat::JsonFile, false, 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("log");
        let mut w = LogWriter::open(&live, spec(format, Some(400), max_file, compress)).unwrap();
        w.write(Stream::Stdout, b"first\n").unwrap();
        let (mut f, got) = Follower::open(&live, format, None).unwrap();
        let mut seen = text(&got);
        let mut n = 0;
        // Poll after 1, 2, 3… lines: sometimes within a file, sometimes after one or
        // more rotations (never more than the files hold, so nothing is rotated away
        // before it is read: a file holds about 5 json lines of 70 bytes).
        for step in 1..12 {
            for _ in 0..step.min(if max_file == 1 { 4 } else { 8 }) {
                w.write(Stream::Stdout, format!("line {n}\n").as_bytes())
                    .unwrap();
                n += 1;
            }
            // The daemon polls again at once after a poll that found something.
            loop {
                let got = f.poll().unwrap();
                if got.is_empty() {
                    break;
                }
                seen.extend(text(&got));
            }
        }
        let mut want = vec!["first".to_string()];
        want.extend((0..n).map(|i| format!("line {i}")));
        assert_eq!(
            seen, want,
            "{format:?} compress={compress} max_file={max_file}"
        );
        assert!(f.poll().unwrap().is_empty());
    }
}

#[test]
fn a_log_that_appears_later_is_followed_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("log");
    let (mut f, got) = Follower::open(&live, LogFormat::JsonFile, None).unwrap();
    assert!(got.is_empty());
    assert!(f.poll().unwrap().is_empty());
    let mut w = LogWriter::open(&live, spec(LogFormat::JsonFile, None, 1, false)).unwrap();
    w.write(Stream::Stderr, b"x\ny\n").unwrap();
    assert_eq!(text(&f.poll().unwrap()), ["x", "y"]);
}

#[test]
fn a_big_log_is_handed_over_in_batches_and_reading_can_stop() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("log");
    let mut w = LogWriter::open(&live, spec(LogFormat::JsonFile, None, 1, false)).unwrap();
    let line = format!("{}\n", "x".repeat(1000));
    for _ in 0..3000 {
        w.write(Stream::Stdout, line.as_bytes()).unwrap();
    }
    let mut batches = 0;
    let mut total = 0;
    Follower::open_with(&live, LogFormat::JsonFile, None, &mut |b| {
        batches += 1;
        total += b.len();
        true
    })
    .unwrap();
    assert_eq!(total, 3000);
    assert!(batches >= 3, "about 3 MB in 1 MB reads: {batches} batches");
    let mut seen = 0;
    Follower::open_with(&live, LogFormat::JsonFile, None, &mut |b| {
        seen += b.len();
        false
    })
    .unwrap();
    assert!(seen < 3000);
    // --tail keeps only what it needs.
    let (_, last) = Follower::open(&live, LogFormat::JsonFile, Some(2)).unwrap();
    assert_eq!(last.len(), 2);
}

#[test]
fn a_damaged_compressed_file_reads_as_far_as_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("log");
    let mut w = LogWriter::open(&live, spec(LogFormat::JsonFile, Some(2000), 3, true)).unwrap();
    for i in 0..60 {
        w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
            .unwrap();
    }
    let gz = crate::logspec::rotated_path(&live, 2, true);
    let data = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &data[..data.len() / 2]).unwrap();
    let (_, all) = Follower::open(&live, LogFormat::JsonFile, None).unwrap();
    let all = text(&all);
    assert_eq!(all.last().unwrap(), "line 59");
}
