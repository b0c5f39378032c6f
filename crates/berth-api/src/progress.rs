//! Docker's progress bars (`jsonmessage.JSONProgress`): the `progressDetail` of a pull,
//! push or load message and the `progress` string rendered from it.

use serde::{Deserialize, Serialize};

use crate::units::{go_duration_seconds, human_size};

/// `progressDetail`: bytes done and expected, and when the transfer started (unix seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonProgress {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub total: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub start: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl JsonProgress {
    /// The `progress` string for a terminal `width` columns wide (the daemon renders with
    /// Docker's 200): `[=====>     ]  1.2MB/3.4MB 5s` — the bar only above 110 columns,
    /// the time left only above 50 and while unfinished; `now` is unix seconds.
    pub fn render(&self, width: usize, now: i64) -> String {
        if self.current <= 0 && self.total <= 0 {
            return String::new();
        }
        if self.total <= 0 {
            return format!("{:>8}", human_size(self.current as f64));
        }
        let percentage = ((self.current as f64 / self.total as f64 * 100.0) as i64 / 2).clamp(0, 50);
        let mut out = String::new();
        if width > 110 {
            out.push('[');
            out.push_str(&"=".repeat(percentage as usize));
            out.push('>');
            out.push_str(&" ".repeat((50 - percentage) as usize));
            out.push_str("] ");
        }
        let current = human_size(self.current as f64);
        if self.current > self.total {
            out.push_str(&format!("{current:>8}"));
        } else {
            out.push_str(&format!("{current:>8}/{}", human_size(self.total as f64)));
        }
        if self.current > 0 && self.start > 0 && percentage < 50 && width > 50 {
            let elapsed = (now - self.start).max(0) as f64;
            let left = ((self.total - self.current) as f64 * elapsed / self.current as f64) as i64;
            out.push(' ');
            out.push_str(&go_duration_seconds(left));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_docker() {
        let p = JsonProgress { current: 1_000_000, total: 4_000_000, start: 100 };
        assert_eq!(
            p.render(200, 103),
            format!("[============>{}]      1MB/4MB 9s", " ".repeat(38))
        );
        assert_eq!(p.render(80, 103), "     1MB/4MB 9s");
        let done = JsonProgress { current: 4_000_000, total: 4_000_000, start: 100 };
        assert_eq!(done.render(200, 103), format!("[{}>]      4MB/4MB", "=".repeat(50)));
        assert_eq!(JsonProgress { current: 512, ..Default::default() }.render(200, 0), "    512B");
        assert_eq!(JsonProgress::default().render(200, 0), "");
        assert_eq!(serde_json::to_string(&JsonProgress::default()).unwrap(), "{}");
    }
}
