//! The shim's log writer: splits the container's output into messages as Docker's copier
//! does (moby `daemon/logger/copier.go`), stamps each with its own time, and writes them
//! to the live file, rotating it (moby `daemon/logger/loggerutils/logfile.go`).
//!
//! - A message is a line with its newline. A line longer than [`MAX_LINE`] is written in
//!   pieces of [`MAX_LINE`] bytes, each without a newline; what is left when a stream
//!   ends is a last piece without a newline.
//! - Times strictly increase from one message to the next, so two lines never share one
//!   and a reader can tell where it stopped across a rotation.
//! - Before a write would make the live file larger than `max-size`, it is rotated:
//!   `NAME.i` becomes `NAME.i+1` (the oldest beyond `max-file - 1` is removed), `NAME`
//!   becomes `NAME.1`, compressed to `NAME.1.gz` when asked, and a new `NAME` is
//!   created. With `max-file=1` the old file is removed and a new one started. Each step
//!   is a rename, so a reader always finds every line in exactly one file.
//!
//! Rotation happens here, in the shim, so it goes on while the daemon is down.

use crate::jsonlog::Stream;
use crate::logformat::{self, Entry, PartialMeta};
use crate::logspec::{self, LogFormat, LogSpec};
use chrono::{DateTime, Utc};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Docker's copier buffer: longer lines are split into pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;

pub struct LogWriter {
    path: PathBuf,
    spec: LogSpec,
    file: Option<File>,
    size: u64,
    /// Per stream (stdout, stderr): bytes of a line not finished yet, and the split
    /// line's id and last ordinal when pieces of it were written.
    pending: [Vec<u8>; 2],
    series: [Option<(String, i32)>; 2],
    last_time: Option<DateTime<Utc>>,
    /// A write failed and was reported; later failures are not (a full disk would
    /// otherwise fill the shim's own log), until a write succeeds again.
    failing: bool,
}

fn slot(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

fn open_live(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o640)
        .open(path)
}

/// A 64-hex id for the pieces of one split line (Docker uses a random one too).
fn random_id() -> String {
    let mut b = [0u8; 32];
    // SAFETY: the kernel writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        let t = Utc::now().timestamp_nanos_opt().unwrap_or(0) as u128;
        b[..16].copy_from_slice(&(t ^ (std::process::id() as u128) << 64).to_le_bytes());
    }
    hex::encode(b)
}

impl LogWriter {
    /// Opens (or creates) the live file for appending; an existing log goes on, its
    /// times after the last one written (even if the clock went back meanwhile).
    pub fn open(path: &Path, spec: LogSpec) -> io::Result<LogWriter> {
        let file = open_live(path)?;
        let size = file.metadata()?.len();
        let last_time = last_time_in(&file, size, spec.format);
        Ok(LogWriter {
            path: path.to_path_buf(),
            spec,
            file: Some(file),
            size,
            pending: [Vec::new(), Vec::new()],
            series: [None, None],
            last_time,
            failing: false,
        })
    }

    /// Logs what the container wrote on `stream`. Only the first of a run of failed
    /// writes is returned as an error.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let r = self.write_lines(stream, data);
        self.report(r)
    }

    fn report(&mut self, r: io::Result<()>) -> io::Result<()> {
        match r {
            Ok(()) => {
                self.failing = false;
                Ok(())
            }
            Err(_) if self.failing => Ok(()),
            Err(e) => {
                self.failing = true;
                Err(e)
            }
        }
    }

    fn write_lines(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let s = slot(stream);
        self.pending[s].extend_from_slice(data);
        let mut res = Ok(());
        loop {
            let buf = &self.pending[s];
            let window = &buf[..buf.len().min(MAX_LINE)];
            let (cut, complete) = match window.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None if buf.len() >= MAX_LINE => (MAX_LINE, false),
                None => break,
            };
            let line: Vec<u8> = self.pending[s].drain(..cut).collect();
            let r = self.put(stream, line, complete);
            if res.is_ok() {
                res = r;
            }
        }
        res
    }

    /// The stream ended: what is left of an unfinished line is written as it is.
    pub fn close_stream(&mut self, stream: Stream) -> io::Result<()> {
        let s = slot(stream);
        if self.pending[s].is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.pending[s]);
        let r = self.put(stream, line, false);
        self.series[s] = None;
        self.report(r)
    }

    /// Now, or just after the previous message's time when the clock has not moved on.
    fn next_time(&mut self) -> DateTime<Utc> {
        let now = Utc::now();
        let t = match self.last_time {
            Some(last) if now <= last => last + chrono::Duration::nanoseconds(1),
            _ => now,
        };
        self.last_time = Some(t);
        t
    }

    /// Writes one message: `complete` lines end with their newline.
    fn put(&mut self, stream: Stream, line: Vec<u8>, complete: bool) -> io::Result<()> {
        let s = slot(stream);
        let partial = match (&mut self.series[s], complete) {
            (None, true) => None,
            (Some((id, ord)), true) => {
                let meta = PartialMeta {
                    last: true,
                    id: id.clone(),
                    ordinal: *ord + 1,
                };
                self.series[s] = None;
                Some(meta)
            }
            (series, false) => {
                let (id, ord) = series.get_or_insert_with(|| (random_id(), 0));
                *ord += 1;
                Some(PartialMeta {
                    last: false,
                    id: id.clone(),
                    ordinal: *ord,
                })
            }
        };
        let entry = Entry {
            stream,
            time: self.next_time(),
            line,
            partial,
            attrs: self.spec.attrs.clone(),
        };
        let bytes = logformat::encode(self.spec.format, &entry);
        if let Some(max) = self.spec.max_size {
            if self.size > 0 && self.size + bytes.len() as u64 > max {
                self.rotate()?;
            }
        }
        let file = match self.file.as_mut() {
            Some(f) => f,
            None => {
                // A failed rotation left no live file: try again to open one.
                self.size = 0;
                self.file.insert(open_live(&self.path)?)
            }
        };
        file.write_all(&bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Closes the live file and opens the one now at its path (created if absent): after
    /// someone else rotated it (the kubelet renames a CRI log, then asks to reopen).
    pub fn reopen(&mut self) -> io::Result<()> {
        self.file = None;
        let file = open_live(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    /// Moves the live file aside (see the module's doc) and starts a new one.
    pub fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let max_file = self.spec.max_file.max(1);
        if max_file == 1 {
            match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        } else {
            for r in logspec::list_rotated(&self.path).into_iter().rev() {
                if r.index + 1 >= max_file {
                    let _ = std::fs::remove_file(&r.path);
                    // The plain twin of a file caught while being compressed.
                    let _ = std::fs::remove_file(logspec::rotated_path(&self.path, r.index, !r.gz));
                } else {
                    std::fs::rename(
                        &r.path,
                        logspec::rotated_path(&self.path, r.index + 1, r.gz),
                    )?;
                }
            }
            let first = logspec::rotated_path(&self.path, 1, false);
            std::fs::rename(&self.path, &first)?;
            if self.spec.compress {
                compress(&first)?;
            }
        }
        self.file = Some(open_live(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

/// The time of the last entry of a log file of `size` bytes.
fn last_time_in(file: &File, size: u64, format: LogFormat) -> Option<DateTime<Utc>> {
    use std::os::unix::fs::FileExt;
    let read_at = |len: u64, at: u64| -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, at).ok()?;
        Some(buf)
    };
    let tail = match format {
        LogFormat::JsonFile | LogFormat::Cri => {
            // A json-file entry is at most 16 KiB of text, escaped: 100 KiB holds one.
            let len = size.min(100 << 10);
            let buf = read_at(len, size - len)?;
            let start = if len < size {
                buf.iter().position(|b| *b == b'\n')? + 1
            } else {
                0
            };
            buf[start..].to_vec()
        }
        LogFormat::Local => {
            // The frame's length is repeated at its end.
            let len = read_at(4, size.checked_sub(4)?)?;
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as u64 + 8;
            read_at(len, size.checked_sub(len)?)?
        }
    };
    logformat::decode(format, &tail).0.last().map(|e| e.time)
}

/// `NAME.1` → `NAME.1.gz` (written aside, then renamed; then the plain file removed).
fn compress(plain: &Path) -> io::Result<()> {
    let mut gz_name = plain.as_os_str().to_os_string();
    gz_name.push(".gz");
    let gz = PathBuf::from(gz_name);
    let mut tmp_name = gz.as_os_str().to_os_string();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let result = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        let mut input = File::open(plain)?;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o640)
            .open(&tmp)?;
        let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
        io::copy(&mut input, &mut enc)?;
        enc.finish()?;
        std::fs::rename(&tmp, &gz)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        // Left plain: still read, still rotated.
        return result;
    }
    std::fs::remove_file(plain)
}

#[cfg(test)]
#[path = "logwriter_tests.rs"]
mod tests;
