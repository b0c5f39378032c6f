//! `GET /containers/{id}/logs`: the log the shim writes (json-file or local, across its
//! rotated files, see [`berth_runtime::logreader`]) in Docker's stream framing.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};

use std::time::Duration;

use berth_runtime::jsonlog::Stream;
use berth_runtime::logformat::Entry;
use berth_runtime::logreader::Follower;

use super::ContainerService;
use crate::error::{ApiError, ApiResult};

/// One message of the log.
pub type LogLine = Entry;

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
    /// `--details`: each line starts with its attrs (`k=v,k2=v2 `).
    pub details: bool,
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
        let stream_ok = match line.stream {
            Stream::Stderr => self.stderr,
            Stream::Stdout => self.stdout,
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

/// Go's `url.QueryEscape`, which Docker applies to the attrs `--details` shows.
fn query_escape(s: &str, out: &mut Vec<u8>) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b),
            b' ' => out.push(b'+'),
            b => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
}

/// One log line as sent to the client: framed without TTY, raw with TTY, with the
/// RFC 3339 nanosecond timestamp and (`details`) the attrs in front when asked.
pub fn encode(line: &LogLine, opts: &LogOptions, tty: bool) -> Bytes {
    let mut payload = Vec::with_capacity(line.line.len() + 32);
    if opts.timestamps {
        payload.extend_from_slice(super::record::rfc3339_nanos(&line.time).as_bytes());
        payload.push(b' ');
    }
    if opts.details {
        for (i, (k, v)) in line.attrs.iter().enumerate() {
            if i > 0 {
                payload.push(b',');
            }
            query_escape(k, &mut payload);
            payload.push(b'=');
            query_escape(v, &mut payload);
        }
        payload.push(b' ');
    }
    payload.extend_from_slice(&line.line);
    if tty {
        Bytes::from(payload)
    } else {
        frame(line.stream as u8, &payload)
    }
}

/// Applies `tail` and then the filters to what is already in the log, in Docker's order:
/// `tail` counts the last messages of the log, whatever their stream or time.
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
        let format = super::log_config::format(&rec.host_config);
        let mut rx_events = self.subscribe(&rec.id)?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let path = rec.log_path.clone();
        tokio::spawn(async move {
            // File reads run on the blocking pool, a batch at a time (a log is never held
            // in memory whole); the follower comes back for the follow loop.
            let (o, t) = (opts.clone(), tx.clone());
            let opened = tokio::task::spawn_blocking(move || {
                Follower::open_with(&path, format, o.tail, &mut |batch| {
                    // `tail` counted every message; the filters come after, as in Docker.
                    batch
                        .iter()
                        .filter(|l| o.wants(l))
                        .all(|l| t.blocking_send(encode(l, &o, tty)).is_ok())
                })
            })
            .await;
            let mut follower = match opened {
                Ok(Ok(f)) => f,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "reading a container log");
                    return;
                }
                Err(_) => return,
            };
            let mut batch: Vec<LogLine> = Vec::new();
            loop {
                for line in batch.drain(..) {
                    if tx.send(encode(&line, &opts, tty)).await.is_err() {
                        return;
                    }
                }
                if !opts.follow || opts.until.is_some_and(|u| u <= Utc::now()) {
                    return;
                }
                // The state before the read: an exit seen here means the read below
                // already has everything the container wrote.
                let ev = rx_events.borrow_and_update().clone();
                let polled = tokio::task::spawn_blocking(move || {
                    let got = follower.poll();
                    (follower, got)
                })
                .await;
                let got = match polled {
                    Ok((f, Ok(got))) => {
                        follower = f;
                        got
                    }
                    Ok((_, Err(e))) => {
                        tracing::warn!(error = %e, "following a container log");
                        return;
                    }
                    Err(_) => return,
                };
                if got.is_empty() {
                    if !ev.running || ev.removed {
                        return;
                    }
                    let _ =
                        tokio::time::timeout(Duration::from_millis(100), rx_events.changed()).await;
                    if tx.is_closed() {
                        return;
                    }
                }
                batch = got.into_iter().filter(|l| opts.wants(l)).collect();
            }
        });
        Ok((tty, rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_lines(text: &str) -> Vec<LogLine> {
        berth_runtime::logformat::decode(
            berth_runtime::logspec::LogFormat::JsonFile,
            text.as_bytes(),
        )
        .0
    }

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
            sel.iter().map(|l| l.line.as_slice()).collect::<Vec<_>>(),
            [&b"err\n"[..], b"three\n"]
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
                .map(|l| l.line.as_slice())
                .collect::<Vec<_>>(),
            [b"three\n"]
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
        let b = encode(line, &opts(), false);
        assert_eq!(&b[..8], &[2, 0, 0, 0, 0, 0, 0, 4]);
        assert_eq!(&b[8..], b"err\n");
        let mut o = opts();
        o.timestamps = true;
        let b = encode(line, &o, true);
        assert_eq!(&b[..], b"2026-01-01T00:00:02.000000000Z err\n");
        // --details as Docker shows it: sorted, query-escaped attrs, then a space (also
        // when there are none).
        o.details = true;
        assert_eq!(
            &encode(line, &o, true)[..],
            b"2026-01-01T00:00:02.000000000Z  err\n"
        );
        let mut l = line.clone();
        l.attrs.insert("a".into(), "b c".into());
        l.attrs.insert("E".into(), "x/y".into());
        o.timestamps = false;
        assert_eq!(&encode(&l, &o, true)[..], b"E=x%2Fy,a=b+c err\n");
    }
}
