//! Reading the json-file log the shim writes (`<root>/containers/<id>/<id>-json.log`,
//! one `{"log":…,"stream":"stdout","time":…}` per line) and Docker's stream framing.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use std::time::Duration;

use super::ContainerService;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Deserialize)]
pub struct LogLine {
    pub log: String,
    #[serde(default)]
    pub stream: String,
    pub time: DateTime<Utc>,
}

/// The query of `GET /containers/{id}/logs`, decoded.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    /// None = all.
    pub tail: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub timestamps: bool,
}

/// `tail=all|N` (Docker treats anything unparsable or negative as all).
pub fn parse_tail(s: &str) -> Option<usize> {
    s.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| n as usize)
}

/// `since`/`until` as the CLI sends them: `1700000000` or `1700000000.123456789`.
/// `0` means unset.
pub fn parse_unix_time(s: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::invalid(format!("invalid timestamp {s:?}"));
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    if secs == 0 && nanos == 0 {
        return Ok(None);
    }
    DateTime::from_timestamp(secs, nanos)
        .map(Some)
        .ok_or_else(bad)
}

impl LogOptions {
    pub fn wants(&self, line: &LogLine) -> bool {
        let stream_ok = match line.stream.as_str() {
            "stderr" => self.stderr,
            _ => self.stdout,
        };
        stream_ok
            && self.since.is_none_or(|s| line.time >= s)
            && self.until.is_none_or(|u| line.time <= u)
    }
}

/// The 8-byte multiplexing header plus payload.
pub fn frame(stream: u8, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + payload.len());
    b.put_u8(stream);
    b.put_bytes(0, 3);
    b.put_u32(payload.len() as u32);
    b.put_slice(payload);
    b.freeze()
}

/// One log line as sent to the client: framed without TTY, raw with TTY, with the
/// RFC 3339 nanosecond timestamp prefix when asked.
pub fn encode(line: &LogLine, timestamps: bool, tty: bool) -> Bytes {
    let mut payload = Vec::with_capacity(line.log.len() + 32);
    if timestamps {
        payload.extend_from_slice(super::record::rfc3339_nanos(&line.time).as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(line.log.as_bytes());
    if tty {
        Bytes::from(payload)
    } else {
        frame(if line.stream == "stderr" { 2 } else { 1 }, &payload)
    }
}

/// Parses complete lines of log text, skipping ones that do not parse.
pub fn parse_lines(text: &str) -> Vec<LogLine> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Applies `tail` and then the filters to what is already in the log, in Docker's order:
/// `tail` counts the last lines of the file, whatever their stream or time.
pub fn select(mut lines: Vec<LogLine>, opts: &LogOptions) -> Vec<LogLine> {
    if let Some(n) = opts.tail {
        if n < lines.len() {
            lines.drain(..lines.len() - n);
        }
    }
    lines.into_iter().filter(|l| opts.wants(l)).collect()
}

impl ContainerService {
    /// `GET /containers/{id}/logs`: a channel of encoded chunks.
    pub fn logs(
        &self,
        name_or_id: &str,
        opts: LogOptions,
    ) -> ApiResult<(bool, tokio::sync::mpsc::Receiver<bytes::Bytes>)> {
        let rec = self.get(name_or_id)?;
        if !opts.stdout && !opts.stderr {
            return Err(ApiError::invalid(
                "Bad parameters: you must choose at least one stream",
            ));
        }
        if rec.log_path.as_os_str().is_empty() {
            return Err(ApiError::invalid(
                "configured logging driver does not support reading",
            ));
        }
        let tty = rec.config.tty;
        let mut rx_events = self.subscribe(&rec.id)?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let path = rec.log_path.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut pending: Vec<u8> = Vec::new();
            let mut file: Option<tokio::fs::File> = None;
            let mut first = true;
            loop {
                if file.is_none() {
                    file = tokio::fs::File::open(&path).await.ok();
                }
                let mut got = 0;
                if let Some(f) = file.as_mut() {
                    let mut buf = Vec::new();
                    got = f.read_to_end(&mut buf).await.unwrap_or(0);
                    pending.extend_from_slice(&buf);
                }
                let complete = pending
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map(|i| i + 1)
                    .unwrap_or(0);
                let text: Vec<u8> = pending.drain(..complete).collect();
                let lines = parse_lines(&String::from_utf8_lossy(&text));
                let selected = if first {
                    select(lines, &opts)
                } else {
                    lines.into_iter().filter(|l| opts.wants(l)).collect()
                };
                first = false;
                for line in selected {
                    if tx.send(encode(&line, opts.timestamps, tty)).await.is_err() {
                        return;
                    }
                }
                if !opts.follow {
                    return;
                }
                if opts.until.is_some_and(|u| u <= Utc::now()) {
                    return;
                }
                if got == 0 {
                    let ev = rx_events.borrow_and_update().clone();
                    if !ev.running || ev.removed {
                        // One last read happened above after the exit: done.
                        return;
                    }
                    let _ =
                        tokio::time::timeout(Duration::from_millis(100), rx_events.changed()).await;
                    if tx.is_closed() {
                        return;
                    }
                }
            }
        });
        Ok((tty, rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = concat!(
        r#"{"log":"one\n","stream":"stdout","time":"2026-01-01T00:00:01.5Z"}"#,
        "\n",
        r#"{"log":"err\n","stream":"stderr","time":"2026-01-01T00:00:02Z"}"#,
        "\n",
        r#"{"log":"three\n","stream":"stdout","time":"2026-01-01T00:00:03Z"}"#,
        "\n",
        "garbage\n",
    );

    fn opts() -> LogOptions {
        LogOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        }
    }

    #[test]
    fn tail_and_streams() {
        let lines = parse_lines(LOG);
        assert_eq!(lines.len(), 3);
        let mut o = opts();
        o.tail = Some(2);
        let sel = select(lines.clone(), &o);
        assert_eq!(
            sel.iter().map(|l| l.log.as_str()).collect::<Vec<_>>(),
            ["err\n", "three\n"]
        );
        let mut o = opts();
        o.stderr = false;
        assert_eq!(select(lines.clone(), &o).len(), 2);
        let mut o = opts();
        o.tail = Some(2);
        o.stderr = false;
        assert_eq!(
            select(lines.clone(), &o)
                .iter()
                .map(|l| l.log.as_str())
                .collect::<Vec<_>>(),
            ["three\n"]
        );
        let mut o = opts();
        o.tail = Some(0);
        assert!(select(lines, &o).is_empty());
    }

    #[test]
    fn since_and_until() {
        let lines = parse_lines(LOG);
        let mut o = opts();
        o.since = parse_unix_time(&format!(
            "{}.6",
            DateTime::parse_from_rfc3339("2026-01-01T00:00:01Z")
                .unwrap()
                .timestamp()
        ))
        .unwrap();
        assert_eq!(select(lines.clone(), &o).len(), 2);
        // since is inclusive, as in Docker.
        o.since = parse_unix_time(&format!(
            "{}.5",
            DateTime::parse_from_rfc3339("2026-01-01T00:00:01Z")
                .unwrap()
                .timestamp()
        ))
        .unwrap();
        assert_eq!(select(lines.clone(), &o).len(), 3);
        let mut o = opts();
        o.until = parse_unix_time(
            &DateTime::parse_from_rfc3339("2026-01-01T00:00:02Z")
                .unwrap()
                .timestamp()
                .to_string(),
        )
        .unwrap();
        assert_eq!(select(lines, &o).len(), 2);
        assert_eq!(parse_unix_time("0").unwrap(), None);
        assert!(parse_unix_time("abc").is_err());
        assert_eq!(
            parse_unix_time("1.5")
                .unwrap()
                .unwrap()
                .timestamp_subsec_nanos(),
            500_000_000
        );
    }

    #[test]
    fn tail_parsing() {
        assert_eq!(parse_tail("all"), None);
        assert_eq!(parse_tail("5"), Some(5));
        assert_eq!(parse_tail("-1"), None);
    }

    #[test]
    fn framing_and_timestamps() {
        let line = &parse_lines(LOG)[1];
        let b = encode(line, false, false);
        assert_eq!(&b[..8], &[2, 0, 0, 0, 0, 0, 0, 4]);
        assert_eq!(&b[8..], b"err\n");
        let b = encode(line, true, true);
        assert_eq!(&b[..], b"2026-01-01T00:00:02.000000000Z err\n");
    }
}
