//! Go's JSON string escaping and time format (for the json-file log, see
//! [`crate::logformat`]) and attach stream framing.
//!
//! Strings are written with Go's escaping (`<`, `>`, `&`, U+2028 and U+2029 escaped; invalid UTF-8
//! replaced by U+FFFD) and the time always with nine fractional digits.

use chrono::{DateTime, SecondsFormat, Utc};

/// Which output stream a chunk came from; the number is the attach frame's stream byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// RFC 3339 with nine fractional digits, UTC (Docker's `RFC3339NanoFixed`).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Writes `bytes` as a JSON string with Go `encoding/json` escaping.
pub fn write_json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                }
                c if (c as u32) < 0x20 => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// Docker's 8-byte multiplexing header followed by the payload.
pub fn frame(stream: Stream, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.push(stream as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn time_keeps_nine_digits() {
        let whole = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(format_time(whole), "2026-01-02T03:04:05.000000000Z");
    }

    #[test]
    fn escapes_like_go() {
        let mut out = Vec::new();
        write_json_string(&mut out, b"a\"b\\c<>&\x01\t\r\xff\xe2\x80\xa8z\xc3\xa9");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\u003c\\u003e\\u0026\\u0001\\t\\r\\ufffd\\u2028zé\""
        );
        // The output is valid JSON that decodes back (except the replaced byte).
        let mut out = Vec::new();
        write_json_string(&mut out, b"x<y>\n");
        let s: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(s, "x<y>\n");
    }

    #[test]
    fn frame_header() {
        let f = frame(Stream::Stderr, b"hi");
        assert_eq!(f, vec![2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        let f = frame(Stream::Stdout, &[0u8; 300]);
        assert_eq!(&f[..8], &[1, 0, 0, 0, 0, 0, 1, 44]);
    }
}
