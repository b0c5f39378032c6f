//! Reading a container's log across its rotated files, and following it.
//!
//! The writer ([`crate::logwriter`]) gives every message a strictly later time than the
//! one before, and only ever renames files. So a reader that holds the live file open
//! and sees, at its end, that the name now points at another file knows a rotation
//! happened: it takes the messages later than the last one it returned from the files
//! rotated since (newest first, until it reaches the one it was reading), then goes on
//! with the new live file. Nothing is lost or repeated, however many rotations happened
//! in between, as long as the files have not been rotated away entirely.

use crate::logformat::{self, Entry};
use crate::logspec::{self, LogFormat};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How much is read at a time: a log is never held in memory whole.
const CHUNK: usize = 1 << 20;

/// Opens a rotated file (decompressing `.gz`); None when it is gone meanwhile.
fn open_rotated(path: &Path, gz: bool) -> io::Result<Option<Box<dyn Read>>> {
    match File::open(path) {
        Ok(f) if gz => Ok(Some(Box::new(flate2::read::GzDecoder::new(f)))),
        Ok(f) => Ok(Some(Box::new(f))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads `r` to its end a chunk at a time, handing over the complete entries of each;
/// `carry` keeps the bytes of an unfinished entry. Stops when `sink` says so (false).
fn stream(
    r: &mut dyn Read,
    format: LogFormat,
    carry: &mut Vec<u8>,
    sink: &mut dyn FnMut(Vec<Entry>) -> bool,
) -> io::Result<bool> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A compressed file caught half-written reads as far as it goes.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::InvalidInput
                        | io::ErrorKind::InvalidData
                ) =>
            {
                return Ok(true)
            }
            Err(e) => return Err(e),
        };
        carry.extend_from_slice(&buf[..n]);
        let (entries, used) = logformat::decode(format, carry);
        carry.drain(..used);
        if !entries.is_empty() && !sink(entries) {
            return Ok(false);
        }
    }
}

/// The last `n` entries of `r` (those `keep` accepts).
fn last_entries(
    r: &mut dyn Read,
    format: LogFormat,
    n: usize,
    carry: &mut Vec<u8>,
    keep: &dyn Fn(&Entry) -> bool,
) -> io::Result<VecDeque<Entry>> {
    let mut ring = VecDeque::new();
    stream(r, format, carry, &mut |entries| {
        for e in entries.into_iter().filter(|e| keep(e)) {
            if ring.len() == n {
                ring.pop_front();
            }
            if n > 0 {
                ring.push_back(e);
            }
        }
        true
    })?;
    Ok(ring)
}

/// The time of the first entry of the live file, read without moving its offset.
fn first_time(file: &File, format: LogFormat) -> Option<DateTime<Utc>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 128 << 10];
    let n = file.read_at(&mut buf, 0).ok()?;
    logformat::decode(format, &buf[..n])
        .0
        .first()
        .map(|e| e.time)
}

fn ino_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// The live file, held open, and where the reader is.
pub struct Follower {
    path: PathBuf,
    format: LogFormat,
    file: Option<File>,
    ino: u64,
    /// Bytes of an entry not complete yet.
    pending: Vec<u8>,
    last_time: Option<DateTime<Utc>>,
}

impl Follower {
    /// Like [`Self::open_with`], collecting what is in the log.
    pub fn open(
        path: &Path,
        format: LogFormat,
        tail: Option<usize>,
    ) -> io::Result<(Follower, Vec<Entry>)> {
        let mut all = Vec::new();
        let f = Self::open_with(path, format, tail, &mut |batch| {
            all.extend(batch);
            true
        })?;
        Ok((f, all))
    }

    /// Opens the log at `path` and hands what is in it to `sink`, oldest first, in
    /// batches (never the whole log at once); with `tail`, only the last `tail`
    /// messages, reading older files only as far as needed. `sink` returns false to stop.
    pub fn open_with(
        path: &Path,
        format: LogFormat,
        tail: Option<usize>,
        sink: &mut dyn FnMut(Vec<Entry>) -> bool,
    ) -> io::Result<Follower> {
        let mut f = Follower {
            path: path.to_path_buf(),
            format,
            file: None,
            ino: 0,
            pending: Vec::new(),
            last_time: None,
        };
        // The live file first: a rotation from now on moves it, never loses it.
        match File::open(path) {
            Ok(file) => {
                f.ino = file.metadata()?.ino();
                f.file = Some(file);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // A file rotated (and compressed) after we opened the live one holds what we
        // read from it: older files count only up to its first entry.
        let first_live = f.file.as_ref().and_then(|file| first_time(file, format));
        let keep = move |e: &Entry| first_live.is_none_or(|t| e.time < t);
        let held = f.ino;
        let rotated: Vec<_> = logspec::list_rotated(path)
            .into_iter()
            .filter(|r| !(f.file.is_some() && !r.gz && ino_of(&r.path) == Some(held)))
            .collect();
        let mut last = None;
        match tail {
            Some(n) => {
                let mut pending = Vec::new();
                let live = match f.file.as_mut() {
                    Some(file) => last_entries(file, format, n, &mut pending, &|_| true)?,
                    None => VecDeque::new(),
                };
                f.pending = pending;
                let mut have = live.len();
                let mut older = Vec::new();
                for r in &rotated {
                    if have >= n {
                        break;
                    }
                    let Some(mut rd) = open_rotated(&r.path, r.gz)? else {
                        continue;
                    };
                    let ring = last_entries(&mut *rd, format, n - have, &mut Vec::new(), &keep)?;
                    have += ring.len();
                    older.push(ring);
                }
                let all: Vec<Entry> = older.into_iter().rev().flatten().chain(live).collect();
                last = all.last().map(|e| e.time);
                if !all.is_empty() {
                    sink(all);
                }
            }
            None => {
                let mut go_on = true;
                let mut counting = |batch: Vec<Entry>| {
                    last = batch.last().map(|e| e.time).or(last);
                    sink(batch)
                };
                for r in rotated.iter().rev() {
                    let Some(mut rd) = open_rotated(&r.path, r.gz)? else {
                        continue;
                    };
                    go_on = stream(&mut *rd, format, &mut Vec::new(), &mut |batch| {
                        let batch: Vec<Entry> = batch.into_iter().filter(|e| keep(e)).collect();
                        batch.is_empty() || counting(batch)
                    })?;
                    if !go_on {
                        break;
                    }
                }
                if go_on {
                    let mut pending = Vec::new();
                    if let Some(file) = f.file.as_mut() {
                        stream(file, format, &mut pending, &mut counting)?;
                    }
                    f.pending = pending;
                }
            }
        }
        f.last_time = last;
        Ok(f)
    }

    /// Opens the live file and reads it to its end.
    fn open_live(&mut self) -> io::Result<Vec<Entry>> {
        match File::open(&self.path) {
            Ok(file) => {
                self.ino = file.metadata()?.ino();
                self.file = Some(file);
                self.pending.clear();
                self.read_more()
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.file = None;
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    fn read_more(&mut self) -> io::Result<Vec<Entry>> {
        let Some(file) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        let start = self.pending.len();
        file.read_to_end(&mut self.pending)?;
        if self.pending.len() == start {
            return Ok(Vec::new());
        }
        let (entries, used) = logformat::decode(self.format, &self.pending);
        self.pending.drain(..used);
        Ok(entries)
    }

    /// What was written since the last call, across rotations, oldest first.
    pub fn poll(&mut self) -> io::Result<Vec<Entry>> {
        let got = self.read_more()?;
        if !got.is_empty() {
            self.last_time = got.last().map(|e| e.time);
            return Ok(got);
        }
        let now_ino = ino_of(&self.path);
        if self.file.is_some() && now_ino == Some(self.ino) {
            return Ok(Vec::new());
        }
        if self.file.is_none() && now_ino.is_none() {
            return Ok(Vec::new());
        }
        // Rotated: our file is complete now (the writer renames it only between
        // messages), but it may have been written to after the read above and before
        // the rename: read its end again. Then the files rotated after it, newest first.
        let ours = self.read_more()?;
        if let Some(e) = ours.last() {
            self.last_time = Some(e.time);
        }
        let mut newer: Vec<Vec<Entry>> = Vec::new();
        if self.file.is_some() {
            for r in logspec::list_rotated(&self.path) {
                if !r.gz && ino_of(&r.path) == Some(self.ino) {
                    break;
                }
                let Some(mut rd) = open_rotated(&r.path, r.gz)? else {
                    continue;
                };
                let mut entries = Vec::new();
                stream(&mut *rd, self.format, &mut Vec::new(), &mut |b| {
                    entries.extend(b);
                    true
                })?;
                let is_newer = match (entries.first(), self.last_time) {
                    (Some(e), Some(last)) => e.time > last,
                    (Some(_), None) => true,
                    (None, _) => continue,
                };
                newer.push(self.after_last(entries));
                if !is_newer {
                    break;
                }
            }
        }
        let live = self.open_live()?;
        let mut out = ours;
        out.extend(newer.into_iter().rev().flatten());
        out.extend(self.after_last(live));
        if let Some(e) = out.last() {
            self.last_time = Some(e.time);
        }
        Ok(out)
    }

    fn after_last(&self, mut entries: Vec<Entry>) -> Vec<Entry> {
        if let Some(last) = self.last_time {
            entries.retain(|e| e.time > last);
        }
        entries
    }
}

#[cfg(test)]
#[path = "logreader_tests.rs"]
mod tests;
