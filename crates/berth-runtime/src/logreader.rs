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
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Reads a whole rotated file (decompressing `.gz`); a file gone meanwhile reads empty.
fn read_file(path: &Path, gz: bool) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(buf),
        Err(e) => return Err(e),
    };
    if gz {
        // A file caught half-written reads as far as it goes.
        let _ = flate2::read::GzDecoder::new(f).read_to_end(&mut buf);
    } else {
        let mut f = f;
        f.read_to_end(&mut buf)?;
    }
    Ok(buf)
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
    /// Opens the log at `path` and returns what is in it, oldest first. With `tail`,
    /// older files are read only as far as needed for at least `tail` messages.
    pub fn open(
        path: &Path,
        format: LogFormat,
        tail: Option<usize>,
    ) -> io::Result<(Follower, Vec<Entry>)> {
        let mut f = Follower {
            path: path.to_path_buf(),
            format,
            file: None,
            ino: 0,
            pending: Vec::new(),
            last_time: None,
        };
        // The live file first: a rotation from now on moves it, never loses it.
        let current = f.open_live()?;
        let mut older: Vec<Entry> = Vec::new();
        for r in logspec::list_rotated(path) {
            if tail.is_some_and(|n| older.len() + current.len() >= n) {
                break;
            }
            if !r.gz && ino_of(&r.path) == Some(f.ino) && f.file.is_some() {
                continue; // the file we hold, rotated just now
            }
            let (mut entries, _) = logformat::decode(format, &read_file(&r.path, r.gz)?);
            entries.append(&mut older);
            older = entries;
        }
        // A file rotated (and compressed) after we opened it holds what we read already.
        if let Some(first) = current.first() {
            older.retain(|e| e.time < first.time);
        }
        older.extend(current);
        f.last_time = older.last().map(|e| e.time).or(f.last_time);
        Ok((f, older))
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
        // Rotated: our file is complete (the writer renames it only between messages),
        // and read to its end above. Collect the files rotated after it, newest first.
        let mut newer: Vec<Vec<Entry>> = Vec::new();
        if self.file.is_some() {
            for r in logspec::list_rotated(&self.path) {
                if !r.gz && ino_of(&r.path) == Some(self.ino) {
                    break;
                }
                let (entries, _) = logformat::decode(self.format, &read_file(&r.path, r.gz)?);
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
        let mut out: Vec<Entry> = newer.into_iter().rev().flatten().collect();
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
