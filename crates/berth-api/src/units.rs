//! Docker's human-readable units (go-units) and Go's quoting, shared by the daemon (`ps`
//! status strings, pull/push progress bars), the builder (history texts) and the CLI
//! (`CREATED` and `SIZE` columns).

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};

/// go-units `HumanDuration`: `Less than a second`, `3 seconds`, `About a minute`, …
pub fn human_duration(d: TimeDelta) -> String {
    let seconds = d.num_seconds();
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = d.num_minutes();
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go rounds to the nearest hour here (half away from zero).
    let hours = (d.num_milliseconds() + 1_800_000) / 3_600_000;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", d.num_hours() / 24 / 365)
}

/// Go's `strconv.Quote`, as Docker prints quoted strings (history texts, `--no-trunc`
/// commands in `ps`).
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.ParseDuration` (`1h30m`, `10m`, `1.5s`, `300ms`), as whole nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * mult;
    }
    let ns = total as i128;
    Some(if neg { -ns } else { ns })
}

/// docker/cli `timetypes.GetTimestamp`: turns a `--since`/`--until` value (a Go duration
/// relative to `now`, an RFC 3339 time or date, or a unix timestamp) into the string sent
/// to the daemon.
pub fn get_timestamp(value: &str, now: DateTime<Utc>) -> Result<String, String> {
    if value != "0" {
        if let Some(ns) = parse_go_duration(value) {
            let t = now.timestamp_nanos_opt().unwrap_or(0) as i128 - ns;
            return Ok((t.div_euclid(1_000_000_000)).to_string());
        }
    }
    let parsed: Option<DateTime<Utc>> = if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        Some(t.with_timezone(&Utc))
    } else if value.contains('-') {
        let local = |n: NaiveDateTime| {
            Local
                .from_local_datetime(&n)
                .single()
                .map(|t| t.with_timezone(&Utc))
        };
        [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%dT%H",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .and_then(local)
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .and_then(local)
        })
    } else {
        None
    };
    if let Some(t) = parsed {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    // A unix timestamp, `seconds[.nanoseconds]`, passes through.
    let (secs, nanos) = value.split_once('.').unwrap_or((value, ""));
    if !secs.is_empty()
        && secs
            .trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit())
        && nanos.chars().all(|c| c.is_ascii_digit())
        && nanos.len() <= 9
    {
        return Ok(value.to_string());
    }
    Err(format!(
        "failed to parse value as time or duration: \"{value}\""
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_go_units() {
        assert_eq!(
            human_duration(TimeDelta::milliseconds(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(TimeDelta::seconds(1)), "1 second");
        assert_eq!(human_duration(TimeDelta::seconds(3)), "3 seconds");
        assert_eq!(human_duration(TimeDelta::seconds(59)), "59 seconds");
        assert_eq!(human_duration(TimeDelta::seconds(60)), "About a minute");
        assert_eq!(human_duration(TimeDelta::seconds(119)), "About a minute");
        assert_eq!(human_duration(TimeDelta::seconds(120)), "2 minutes");
        assert_eq!(human_duration(TimeDelta::minutes(59)), "59 minutes");
        assert_eq!(human_duration(TimeDelta::minutes(60)), "About an hour");
        assert_eq!(human_duration(TimeDelta::minutes(89)), "About an hour");
        assert_eq!(human_duration(TimeDelta::minutes(90)), "2 hours");
        assert_eq!(human_duration(TimeDelta::hours(47)), "47 hours");
        assert_eq!(human_duration(TimeDelta::hours(48)), "2 days");
        assert_eq!(human_duration(TimeDelta::days(14)), "2 weeks");
        assert_eq!(human_duration(TimeDelta::days(60)), "2 months");
        assert_eq!(human_duration(TimeDelta::days(800)), "2 years");
    }
}

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Go's `%.*g`: `precision` significant digits, trailing zeros removed, exponent form when
/// the exponent is below -4 or at least the precision.
pub fn go_format_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let p = precision.max(1);
    // Round to p significant digits in scientific form first: that fixes the exponent.
    let sci = format!("{:.*e}", p - 1, value);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, value))
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

fn custom_size(size: f64, base: f64, units: &[&str], precision: usize) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", go_format_g(size, precision), units[i])
}

/// go-units `HumanSizeWithPrecision`: decimal (1000) units, e.g. `4.26MB`, `7.5kB`, `0B`.
pub fn human_size_precision(size: f64, precision: usize) -> String {
    custom_size(size, 1000.0, &DECIMAL_UNITS, precision)
}

/// go-units `HumanSize` (precision 4).
pub fn human_size(size: f64) -> String {
    human_size_precision(size, 4)
}

/// go-units `BytesSize`: binary (1024) units with precision 4, e.g. `1.944GiB`.
pub fn bytes_size(size: f64) -> String {
    custom_size(size, 1024.0, &BINARY_UNITS, 4)
}

fn frac(v: u64, digits: u32) -> String {
    let s = format!("{:0width$}", v, width = digits as usize);
    let s = s.trim_end_matches('0');
    if s.is_empty() {
        String::new()
    } else {
        format!(".{s}")
    }
}

/// Go's `time.Duration(ns).String()`: `0s`, `500ms`, `1.5s`, `1m30s`, `1h0m0s`.
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let body = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}{}µs", u / 1_000, frac(u % 1_000, 3))
    } else if u < 1_000_000_000 {
        format!("{}{}ms", u / 1_000_000, frac(u % 1_000_000, 6))
    } else {
        let secs = u / 1_000_000_000;
        let sub = frac(u % 1_000_000_000, 9);
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        if h > 0 {
            format!("{h}h{m}m{s}{sub}s")
        } else if m > 0 {
            format!("{m}m{s}{sub}s")
        } else {
            format!("{s}{sub}s")
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// Go's `time.Duration.String()` for whole seconds: `0s`, `45s`, `2m5s`, `1h0m3s`, `-5s`.
pub fn go_duration_seconds(secs: i64) -> String {
    if secs == 0 {
        return "0s".to_string();
    }
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn sizes_and_durations_match_go() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(2_345_678.0), "2.346MB");
        assert_eq!(human_size(7_500.0), "7.5kB");
        assert_eq!(bytes_size(2_087_354_368.0), "1.944GiB");
        assert_eq!(go_duration_seconds(0), "0s");
        assert_eq!(go_duration_seconds(125), "2m5s");
        assert_eq!(go_duration_seconds(3603), "1h0m3s");
        assert_eq!(go_duration_seconds(-5), "-5s");
    }
}
