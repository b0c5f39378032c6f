//! One log message as each driver stores it, both ways.
//!
//! - json-file: `{"log":"hi\n","stream":"stdout","attrs":{…},"time":"…"}` per line; a
//!   partial message (a piece of a line over 16 KiB, or the unterminated tail of the
//!   output) has no newline at the end of `log`.
//! - local: a big-endian u32 length, a protobuf `LogEntry` (moby
//!   `api/types/plugins/logdriver/entry.proto`), the same length again (so the file can be
//!   read backwards). The line is stored without its newline; `partial` says there was none.
//! - cri: `2016-10-06T00:17:09.669794202Z stdout F the line` per line (the kubelet's
//!   `pkg/kubelet/kuberuntime/logs` reads it): `F` for a full line (its newline is the
//!   record's), `P` for a piece of a longer line or an unterminated tail.

use crate::jsonlog::{self, Stream};
use crate::logspec::LogFormat;
use chrono::{DateTime, Utc};
use prost::Message as _;
use std::collections::BTreeMap;

/// Docker's largest `local` entry (moby `daemon/logger/local`: 1e6 bytes).
const MAX_LOCAL_MSG: usize = 1_000_000;

/// A message to write or one read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub stream: Stream,
    pub time: DateTime<Utc>,
    /// The bytes as `docker logs` prints them: a complete line ends with its newline.
    pub line: Vec<u8>,
    /// Set on the pieces of a split line (json-file keeps no such mark).
    pub partial: Option<PartialMeta>,
    pub attrs: BTreeMap<String, String>,
}

/// The protobuf `PartialLogEntryMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PartialMeta {
    #[prost(bool, tag = "1")]
    pub last: bool,
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(int32, tag = "3")]
    pub ordinal: i32,
}

/// The protobuf `LogEntry` of Docker's local driver.
#[derive(Clone, PartialEq, prost::Message)]
struct LocalEntry {
    #[prost(string, tag = "1")]
    source: String,
    #[prost(int64, tag = "2")]
    time_nano: i64,
    #[prost(bytes = "vec", tag = "3")]
    line: Vec<u8>,
    #[prost(bool, tag = "4")]
    partial: bool,
    #[prost(message, optional, tag = "5")]
    partial_log_metadata: Option<PartialMeta>,
}

impl Entry {
    /// Whether the line is unfinished (no newline at its end).
    fn is_partial(&self) -> bool {
        !self.line.ends_with(b"\n")
    }
}

/// The bytes `entry` takes in a file of `format`.
pub fn encode(format: LogFormat, entry: &Entry) -> Vec<u8> {
    match format {
        LogFormat::JsonFile => encode_json(entry),
        LogFormat::Local => encode_local(entry),
        LogFormat::Cri => encode_cri(entry),
    }
}

fn encode_cri(e: &Entry) -> Vec<u8> {
    let partial = e.is_partial();
    let line = if partial {
        &e.line[..]
    } else {
        &e.line[..e.line.len() - 1]
    };
    let time = jsonlog::format_time(e.time);
    let mut out = Vec::with_capacity(line.len() + time.len() + 12);
    out.extend_from_slice(time.as_bytes());
    out.push(b' ');
    out.extend_from_slice(e.stream.name().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(line);
    out.push(b'\n');
    out
}

/// One CRI record (without its newline), as the kubelet's `parseCRILog` reads it.
fn decode_cri_line(l: &[u8]) -> Option<Entry> {
    let mut parts = l.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let tag = parts.next()?;
    let mut line = parts.next().unwrap_or_default().to_vec();
    // Tags are `:`-separated; the first is F or P.
    match tag.split(|b| *b == b':').next() {
        Some(b"F") => line.push(b'\n'),
        Some(b"P") => {}
        _ => return None,
    }
    Some(Entry {
        stream,
        time,
        line,
        partial: None,
        attrs: BTreeMap::new(),
    })
}

fn decode_cri(buf: &[u8]) -> (Vec<Entry>, usize) {
    let end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let entries = buf[..end]
        .split(|b| *b == b'\n')
        .filter_map(decode_cri_line)
        .collect();
    (entries, end)
}

fn encode_json(e: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.line.len() + 96);
    out.extend_from_slice(b"{\"log\":");
    jsonlog::write_json_string(&mut out, &e.line);
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(e.stream.name().as_bytes());
    out.push(b'"');
    if !e.attrs.is_empty() {
        out.extend_from_slice(b",\"attrs\":{");
        for (i, (k, v)) in e.attrs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            jsonlog::write_json_string(&mut out, k.as_bytes());
            out.push(b':');
            jsonlog::write_json_string(&mut out, v.as_bytes());
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"time\":\"");
    out.extend_from_slice(jsonlog::format_time(e.time).as_bytes());
    out.extend_from_slice(b"\"}\n");
    out
}

fn encode_local(e: &Entry) -> Vec<u8> {
    let partial = e.is_partial();
    let line = if partial {
        e.line.clone()
    } else {
        e.line[..e.line.len() - 1].to_vec()
    };
    let msg = LocalEntry {
        source: e.stream.name().into(),
        time_nano: e.time.timestamp_nanos_opt().unwrap_or(0),
        line,
        partial,
        partial_log_metadata: e.partial.clone(),
    };
    let body = msg.encode_to_vec();
    let len = (body.len() as u32).to_be_bytes();
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&len);
    out.extend_from_slice(&body);
    out.extend_from_slice(&len);
    out
}

#[derive(serde::Deserialize)]
struct JsonEntry {
    log: String,
    #[serde(default)]
    stream: String,
    time: DateTime<Utc>,
    #[serde(default)]
    attrs: BTreeMap<String, String>,
}

fn stream_of(name: &str) -> Stream {
    if name == "stderr" {
        Stream::Stderr
    } else {
        Stream::Stdout
    }
}

/// Decodes the complete entries at the start of `buf`; returns them and how many bytes
/// they took (an entry still being written stays for the next read). Damaged entries are
/// skipped, as Docker's readers do.
pub fn decode(format: LogFormat, buf: &[u8]) -> (Vec<Entry>, usize) {
    match format {
        LogFormat::JsonFile => decode_json(buf),
        LogFormat::Local => decode_local(buf),
        LogFormat::Cri => decode_cri(buf),
    }
}

fn decode_json(buf: &[u8]) -> (Vec<Entry>, usize) {
    let end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let entries = buf[..end]
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<JsonEntry>(l).ok())
        .map(|j| Entry {
            stream: stream_of(&j.stream),
            time: j.time,
            line: j.log.into_bytes(),
            partial: None,
            attrs: j.attrs,
        })
        .collect();
    (entries, end)
}

fn decode_local(buf: &[u8]) -> (Vec<Entry>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while buf.len() - pos >= 4 {
        let len = u32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        if len > MAX_LOCAL_MSG {
            // Not a frame: the rest of the file cannot be trusted.
            return (out, buf.len());
        }
        if buf.len() - pos < len + 8 {
            break;
        }
        let body = &buf[pos + 4..pos + 4 + len];
        pos += len + 8;
        let Ok(m) = LocalEntry::decode(body) else {
            continue;
        };
        let mut line = m.line;
        if !m.partial {
            line.push(b'\n');
        }
        out.push(Entry {
            stream: stream_of(&m.source),
            time: DateTime::from_timestamp_nanos(m.time_nano),
            line,
            partial: m.partial_log_metadata,
            attrs: BTreeMap::new(),
        });
    }
    (out, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_records_both_ways() {
        let t = Utc.with_ymd_and_hms(2016, 10, 6, 0, 17, 9).unwrap()
            + chrono::Duration::nanoseconds(669_794_202);
        let full = Entry {
            stream: Stream::Stdout,
            time: t,
            line: b"hello world\n".to_vec(),
            partial: None,
            attrs: BTreeMap::new(),
        };
        let piece = Entry {
            stream: Stream::Stderr,
            line: b"no end".to_vec(),
            ..full.clone()
        };
        let mut buf = encode(LogFormat::Cri, &full);
        assert_eq!(
            String::from_utf8(buf.clone()).unwrap(),
            "2016-10-06T00:17:09.669794202Z stdout F hello world\n"
        );
        buf.extend(encode(LogFormat::Cri, &piece));
        assert!(buf.ends_with(b"stderr P no end\n"));
        buf.extend_from_slice(b"2016-10-06T00:17:09Z stdout F unfinis");
        let (got, used) = decode(LogFormat::Cri, &buf);
        assert_eq!(got, vec![full, piece]);
        assert_eq!(
            used,
            buf.len() - b"2016-10-06T00:17:09Z stdout F unfinis".len()
        );
        // An empty full line, and damaged records skipped.
        let (got, _) = decode(
            LogFormat::Cri,
            b"2016-10-06T00:17:09Z stdout F \nbad line\n",
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].line, b"\n");
    }
    use chrono::TimeZone;

    fn entry(line: &[u8], stream: Stream) -> Entry {
        Entry {
            stream,
            time: Utc.with_ymd_and_hms(2026, 11, 23, 15, 4, 5).unwrap()
                + chrono::Duration::nanoseconds(123_456_789),
            line: line.to_vec(),
            partial: None,
            attrs: BTreeMap::new(),
        }
    }

    #[test]
    fn json_entry_matches_docker() {
        let mut e = entry(b"hello\n", Stream::Stdout);
        assert_eq!(
            String::from_utf8(encode(LogFormat::JsonFile, &e)).unwrap(),
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-23T15:04:05.123456789Z\"}\n"
        );
        e.attrs.insert("com.x".into(), "a<b".into());
        assert_eq!(
            String::from_utf8(encode(LogFormat::JsonFile, &e)).unwrap(),
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"attrs\":{\"com.x\":\"a\\u003cb\"},\"time\":\"2026-11-23T15:04:05.123456789Z\"}\n"
        );
    }

    #[test]
    fn both_formats_round_trip_and_keep_partial_entries() {
        for format in [LogFormat::JsonFile, LogFormat::Local] {
            let mut buf = Vec::new();
            let a = entry(b"one\n", Stream::Stdout);
            let mut b = entry(b"par", Stream::Stderr);
            if format == LogFormat::Local {
                b.partial = Some(PartialMeta {
                    last: false,
                    id: "x".into(),
                    ordinal: 1,
                });
            }
            buf.extend(encode(format, &a));
            buf.extend(encode(format, &b));
            let whole = buf.len();
            // Half an entry more: left for the next read.
            let c = encode(format, &entry(b"three\n", Stream::Stdout));
            buf.extend_from_slice(&c[..c.len() / 2]);
            let (got, used) = decode(format, &buf);
            assert_eq!(used, whole, "{format:?}");
            assert_eq!(got, vec![a.clone(), b.clone()], "{format:?}");
        }
    }

    #[test]
    fn local_frame_is_dockers() {
        let e = entry(b"hello\n", Stream::Stdout);
        let b = encode(LogFormat::Local, &e);
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        assert_eq!(b.len(), len + 8);
        assert_eq!(&b[b.len() - 4..], &b[..4]);
        // field 1 (source) "stdout", then field 2 (time_nano) varint, field 3 the line.
        assert_eq!(&b[4..12], b"\x0a\x06stdout");
        assert!(b.windows(7).any(|w| w == b"\x1a\x05hello"));
    }

    #[test]
    fn damaged_json_lines_are_skipped() {
        let mut buf = b"garbage\n".to_vec();
        buf.extend(encode(LogFormat::JsonFile, &entry(b"ok\n", Stream::Stdout)));
        let (got, used) = decode(LogFormat::JsonFile, &buf);
        assert_eq!(used, buf.len());
        assert_eq!(got.len(), 1);
    }
}
