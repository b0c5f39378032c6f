//! Docker's progress bars (`jsonmessage.JSONProgress`): the `progressDetail` of a pull,
//! push or load message, and the `progress` string rendered from it — by the daemon for
//! its `progress` field and by the CLI for a terminal of its own width.

use serde::{Deserialize, Serialize};

use crate::units::{go_duration_seconds, human_size};

/// `progressDetail`: bytes (or `units`) done and expected, and when the transfer started
/// (unix seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonProgress {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub total: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub start: i64,
    #[serde(rename = "hidecounts", skip_serializing_if = "std::ops::Not::not")]
    pub hide_counts: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub units: String,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl JsonProgress {
    /// `JSONProgress.String()` for a terminal `width` columns wide at `now_nanos` (unix
    /// nanoseconds): `[=====>     ]  1.2MB/3.4MB 5s` — the bar only above 110 columns
    /// (the daemon renders for Docker's 200), the time left only above 50 and while
    /// unfinished.
    pub fn render(&self, width: usize, now_nanos: i128) -> String {
        if self.current <= 0 && self.total <= 0 {
            return String::new();
        }
        if self.total <= 0 {
            return if self.units.is_empty() {
                format!("{:>8}", human_size(self.current as f64))
            } else {
                format!("{} {}", self.current, self.units)
            };
        }
        let percentage = (((self.current as f64 / self.total as f64) * 100.0) as i64 / 2).min(50);
        let mut bar = String::new();
        if width > 110 {
            let spaces = (50 - percentage).max(0) as usize;
            bar = format!(
                "[{}>{}] ",
                "=".repeat(percentage.max(0) as usize),
                " ".repeat(spaces)
            );
        }
        let numbers = if self.hide_counts {
            String::new()
        } else if self.units.is_empty() {
            let cur = human_size(self.current as f64);
            if self.current > self.total {
                format!("{cur:>8}")
            } else {
                format!("{cur:>8}/{}", human_size(self.total as f64))
            }
        } else if self.current > self.total {
            format!("{} {}", self.current, self.units)
        } else {
            format!("{}/{} {}", self.current, self.total, self.units)
        };
        let mut left = String::new();
        if width > 50 && self.current > 0 && self.start > 0 && percentage < 50 {
            let from_start = now_nanos - i128::from(self.start) * 1_000_000_000;
            let per_entry = from_start / i128::from(self.current);
            let nanos = i128::from(self.total - self.current) * per_entry;
            // time.Duration.Round(time.Second): halves away from zero.
            let secs = (nanos
                + if nanos >= 0 {
                    500_000_000
                } else {
                    -500_000_000
                })
                / 1_000_000_000;
            left = format!(" {}", go_duration_seconds(secs as i64));
        }
        format!("{bar}{numbers}{left}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i128 = 1_000_000_000;

    #[test]
    fn renders_like_docker() {
        let p = JsonProgress {
            current: 1_000_000,
            total: 4_000_000,
            start: 100,
            ..Default::default()
        };
        assert_eq!(
            p.render(200, 103 * SEC),
            format!("[============>{}]      1MB/4MB 9s", " ".repeat(38))
        );
        assert_eq!(p.render(80, 103 * SEC), "     1MB/4MB 9s");
        let done = JsonProgress {
            current: 4_000_000,
            total: 4_000_000,
            start: 100,
            ..Default::default()
        };
        assert_eq!(
            done.render(200, 103 * SEC),
            format!("[{}>]      4MB/4MB", "=".repeat(50))
        );
        assert_eq!(
            JsonProgress {
                current: 512,
                ..Default::default()
            }
            .render(200, 0),
            "    512B"
        );
        let units = JsonProgress {
            current: 3,
            total: 7,
            units: "layers".into(),
            ..Default::default()
        };
        assert_eq!(units.render(80, 0), "3/7 layers");
        assert_eq!(JsonProgress::default().render(200, 0), "");
        assert_eq!(
            serde_json::to_string(&JsonProgress::default()).unwrap(),
            "{}"
        );
    }
}
