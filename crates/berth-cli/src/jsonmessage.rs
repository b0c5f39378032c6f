//! Docker's JSON message stream (pull, push, import, load) rendered as
//! `jsonmessage.DisplayJSONMessagesStream` renders it: in a terminal, one line per
//! layer ID rewritten in place (cursor up, erase line, `\r`) with a progress bar when the
//! terminal is wider than 110 columns; otherwise plain lines, with the progress updates
//! (messages whose progress has numbers) left out.

use std::collections::HashMap;
use std::io::Write;

use serde::Deserialize;
use serde_json::Value as Json;

/// `JSONProgress`.
pub use berth_api::progress::JsonProgress as Progress;

/// `JSONError`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct MessageError {
    pub code: i64,
    pub message: String,
}

/// `JSONMessage`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Message {
    pub stream: String,
    pub status: String,
    #[serde(rename = "progressDetail")]
    pub progress: Option<Progress>,
    #[serde(rename = "progress")]
    pub progress_message: String,
    pub id: String,
    pub from: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    #[serde(rename = "errorDetail")]
    pub error: Option<MessageError>,
    pub aux: Option<Json>,
}

/// `RFC3339NanoFixed` in local time.
fn fixed_time(nanos: i64) -> String {
    use chrono::TimeZone;
    let t = chrono::Local.timestamp_nanos(nanos);
    let offset = t.offset().local_minus_utc();
    let zone = if offset == 0 {
        "Z".to_string()
    } else {
        t.format("%:z").to_string()
    };
    format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S%.9f"))
}

/// How the renderer sees its output.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// The output is a terminal: rewrite lines in place.
    pub terminal: bool,
    /// The terminal's width (200 when unknown, as Go's default).
    pub width: usize,
}

/// An error carried by the stream (`errorDetail`), or a stream that is not JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StreamError(pub String);

/// Renders a JSON message stream fed in arbitrary chunks.
pub struct Renderer<W: Write> {
    out: W,
    mode: Mode,
    ids: HashMap<String, usize>,
    pending: Vec<u8>,
    now: Box<dyn Fn() -> i128>,
    /// The `aux` payloads seen, in order.
    pub aux: Vec<Json>,
}

impl<W: Write> Renderer<W> {
    pub fn new(out: W, mode: Mode) -> Renderer<W> {
        let now = Box::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i128)
                .unwrap_or(0)
        });
        Renderer {
            out,
            mode,
            ids: HashMap::new(),
            pending: Vec::new(),
            now,
            aux: Vec::new(),
        }
    }

    /// Fixes the clock used for time-left estimates (tests).
    pub fn with_clock(mut self, now: impl Fn() -> i128 + 'static) -> Renderer<W> {
        self.now = Box::new(now);
        self
    }

    /// Feeds bytes; renders every complete message. Stops at the first error.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), StreamError> {
        self.pending.extend_from_slice(data);
        let mut consumed = 0;
        let mut result = Ok(());
        {
            let mut it = serde_json::Deserializer::from_slice(&self.pending).into_iter::<Message>();
            loop {
                match it.next() {
                    None => {
                        consumed = it.byte_offset();
                        break;
                    }
                    Some(Ok(m)) => {
                        consumed = it.byte_offset();
                        let pending_msg = m;
                        // Render outside the borrow of `pending`.
                        if let Err(e) = Self::display_one(
                            &mut self.out,
                            self.mode,
                            &mut self.ids,
                            &mut self.aux,
                            &*self.now,
                            pending_msg,
                        ) {
                            result = Err(e);
                            break;
                        }
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => {
                        result = Err(StreamError(e.to_string()));
                        break;
                    }
                }
            }
        }
        self.pending.drain(..consumed);
        let _ = self.out.flush();
        result
    }

    /// Ends the stream: leftover bytes that are not whitespace are an error.
    pub fn finish(mut self) -> Result<W, StreamError> {
        let _ = self.out.flush();
        if self.pending.iter().any(|b| !b.is_ascii_whitespace()) {
            return Err(StreamError("unexpected EOF".to_string()));
        }
        Ok(self.out)
    }

    fn display_one(
        out: &mut W,
        mode: Mode,
        ids: &mut HashMap<String, usize>,
        aux: &mut Vec<Json>,
        now: &dyn Fn() -> i128,
        m: Message,
    ) -> Result<(), StreamError> {
        if let Some(a) = m.aux {
            aux.push(a);
            return Ok(());
        }
        let mut diff = 0usize;
        if !m.id.is_empty() && (m.progress.is_some() || !m.progress_message.is_empty()) {
            let line = match ids.get(&m.id) {
                Some(l) => *l,
                None => {
                    let l = ids.len();
                    ids.insert(m.id.clone(), l);
                    if mode.terminal {
                        let _ = out.write_all(b"\n");
                    }
                    l
                }
            };
            diff = ids.len() - line;
            if mode.terminal && diff > 0 {
                let _ = write!(out, "\x1b[{diff}A");
            }
        } else {
            ids.clear();
        }
        let r = Self::display(out, mode, now, &m);
        if !m.id.is_empty() && mode.terminal && diff > 0 {
            let _ = write!(out, "\x1b[{diff}B");
        }
        r
    }

    /// `JSONMessage.Display`.
    fn display(
        out: &mut W,
        mode: Mode,
        now: &dyn Fn() -> i128,
        m: &Message,
    ) -> Result<(), StreamError> {
        if let Some(e) = &m.error {
            return Err(StreamError(e.message.clone()));
        }
        let progress = m.progress.as_ref().map(|p| p.render(mode.width, now()));
        let mut endl = "";
        if mode.terminal && m.stream.is_empty() && m.progress.is_some() {
            let _ = out.write_all(b"\x1b[2K\r");
            endl = "\r";
        } else if progress.as_deref().is_some_and(|p| !p.is_empty()) {
            return Ok(());
        }
        let mut s = String::new();
        if m.time_nano != 0 {
            s.push_str(&format!("{} ", fixed_time(m.time_nano)));
        } else if m.time != 0 {
            s.push_str(&format!(
                "{} ",
                fixed_time(m.time.saturating_mul(1_000_000_000))
            ));
        }
        if !m.id.is_empty() {
            s.push_str(&format!("{}: ", m.id));
        }
        if !m.from.is_empty() {
            s.push_str(&format!("(from {}) ", m.from));
        }
        match (&progress, mode.terminal) {
            (Some(p), true) => s.push_str(&format!("{} {p}{endl}", m.status)),
            _ if !m.progress_message.is_empty() => {
                s.push_str(&format!("{} {}{endl}", m.status, m.progress_message))
            }
            _ if !m.stream.is_empty() => s.push_str(&format!("{}{endl}", m.stream)),
            _ => s.push_str(&format!("{}{endl}\n", m.status)),
        }
        let _ = out.write_all(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders a whole fixture, fed in small chunks to exercise message splitting.
    fn render(input: &str, terminal: bool, width: usize) -> (String, Result<(), StreamError>) {
        let mut r = Renderer::new(Vec::new(), Mode { terminal, width }).with_clock(|| 0);
        let mut res = Ok(());
        for chunk in input.as_bytes().chunks(7) {
            res = r.feed(chunk);
            if res.is_err() {
                break;
            }
        }
        match res {
            Ok(()) => {
                let leftover = r.pending.iter().any(|b| !b.is_ascii_whitespace());
                let out = String::from_utf8(r.out.clone()).unwrap();
                let res = if leftover {
                    r.finish().map(|_| ())
                } else {
                    Ok(())
                };
                (out, res)
            }
            Err(e) => (String::from_utf8(r.out).unwrap(), Err(e)),
        }
    }

    // The fixtures are what dockerd 20.10 sent; the expected outputs are what the Docker
    // CLI 28.2.2 printed for them (captured in a pty with `-onlcr`, 120 and 80 columns,
    // and through a pipe).
    const PULL: &str = include_str!("../testdata/jsonmessage/pull_multi.json");
    const PUSH: &str = include_str!("../testdata/jsonmessage/push_progress.json");
    const ERR: &str = include_str!("../testdata/jsonmessage/pull_error.json");

    #[test]
    fn pull_in_a_wide_terminal_matches_docker() {
        let (out, res) = render(PULL, true, 120);
        res.unwrap();
        assert_eq!(
            out,
            include_str!("../testdata/jsonmessage/pull_multi.tty120")
        );
    }

    #[test]
    fn pull_in_a_narrow_terminal_has_no_bar() {
        let (out, _) = render(PULL, true, 80);
        assert_eq!(
            out,
            include_str!("../testdata/jsonmessage/pull_multi.tty80")
        );
    }

    #[test]
    fn pull_through_a_pipe_skips_progress() {
        let (out, _) = render(PULL, false, 200);
        assert_eq!(
            out,
            include_str!("../testdata/jsonmessage/pull_multi.plain")
        );
    }

    #[test]
    fn push_units_counts_times_and_streams() {
        std::env::set_var("TZ", "UTC");
        let (out, _) = render(PUSH, true, 120);
        assert_eq!(
            out,
            include_str!("../testdata/jsonmessage/push_progress.tty120")
        );
        let (out, _) = render(PUSH, true, 80);
        assert_eq!(
            out,
            include_str!("../testdata/jsonmessage/push_progress.tty80")
        );
        let (out, _) = render(PUSH, false, 200);
        assert_eq!(
            out,
            include_str!("../testdata/jsonmessage/push_progress.plain")
        );
    }

    #[test]
    fn error_detail_stops_the_stream() {
        let (out, res) = render(ERR, false, 200);
        assert_eq!(
            res.unwrap_err().0,
            "read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer"
        );
        assert_eq!(
            out,
            "latest: Pulling from library/busybox\n6bb2e4aa69b6: Pulling fs layer\n"
        );
        let (out, _) = render(ERR, true, 120);
        assert_eq!(
            out,
            include_str!("../testdata/jsonmessage/pull_error.tty120")
        );
    }

    #[test]
    fn aux_is_collected_not_printed() {
        let mut r = Renderer::new(
            Vec::new(),
            Mode {
                terminal: false,
                width: 200,
            },
        );
        r.feed(br#"{"progressDetail":{},"aux":{"Tag":"v1","Size":950}}"#)
            .unwrap();
        assert_eq!(r.aux, vec![serde_json::json!({"Tag":"v1","Size":950})]);
        assert!(r.finish().unwrap().is_empty());
    }

    #[test]
    fn time_left_and_bad_json() {
        std::env::set_var("TZ", "UTC");
        let p = Progress {
            current: 25,
            total: 100,
            start: 10,
            ..Default::default()
        };
        // 5 s for 25 units: 15 s for the other 75.
        assert_eq!(
            p.render(120, 15_000_000_000),
            format!("[{}>{}]      25B/100B 15s", "=".repeat(12), " ".repeat(38))
        );
        assert_eq!(p.render(40, 15_000_000_000), "     25B/100B");
        assert_eq!(berth_api::units::go_duration_seconds(3725), "1h2m5s");
        let (_, res) = render("{\"status\":\"a\"}\nnot json\n", false, 200);
        assert!(res.is_err());
        let (_, res) = render("{\"status\":\"a\"", false, 200);
        assert_eq!(res.unwrap_err().0, "unexpected EOF");
    }
}
