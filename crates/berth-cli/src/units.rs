//! Docker's units: go-units sizes and durations, memory flags, and the `--since`/`--until`
//! timestamps the CLI sends.

use chrono::{DateTime, Local, TimeZone, Utc};

pub use berth_api::units::human_duration;
pub use berth_api::units::{bytes_size, go_format_g, human_size, human_size_precision};

/// `HumanDuration(now - created) + " ago"` for a unix timestamp.
pub fn since_unix(created: i64, now: DateTime<Utc>) -> String {
    let then = Utc.timestamp_opt(created, 0).single().unwrap_or(now);
    format!("{} ago", human_duration(now - then))
}

/// Go's `time.Time.String()` in local time: `2024-01-02 15:04:05 +0000 UTC`.
pub fn go_time_string(unix: i64) -> String {
    let Some(t) = Local.timestamp_opt(unix, 0).single() else {
        return String::new();
    };
    let offset = t.format("%z").to_string();
    let zone = if offset == "+0000" {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    format!("{} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

/// go-units `RAMInBytes`: `64m`, `1g`, `512k`, `100` (bytes); binary multipliers.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let err = || format!("invalid size: '{s}'");
    let t = s.trim_end_matches(['b', 'B']);
    let t = t.trim_end_matches(['i', 'I']);
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], Some(c.to_ascii_lowercase())),
        _ => (t, None),
    };
    let num = num.strip_suffix(' ').unwrap_or(num);
    if num.is_empty() || !num.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return Err(err());
    }
    if !num.chars().all(|c| c.is_ascii_digit() || c == '.') || num.ends_with('.') {
        return Err(err());
    }
    // A unit-less "100i" or "100ib" is not valid in go-units.
    if unit.is_none() && t.len() != s.trim_end_matches(['b', 'B']).len() {
        return Err(err());
    }
    let value: f64 = num.parse().map_err(|_| err())?;
    let mult: f64 = match unit {
        None => 1.0,
        Some('k') => 1024.0,
        Some('m') => 1024.0f64.powi(2),
        Some('g') => 1024.0f64.powi(3),
        Some('t') => 1024.0f64.powi(4),
        Some('p') => 1024.0f64.powi(5),
        Some(_) => return Err(err()),
    };
    Ok((value * mult) as i64)
}

pub use berth_api::units::{get_timestamp, parse_go_duration};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_match_go_units() {
        assert_eq!(human_size_precision(4_264_000.0, 3), "4.26MB");
        assert_eq!(human_size_precision(7_500.0, 3), "7.5kB");
        assert_eq!(human_size_precision(0.0, 3), "0B");
        assert_eq!(human_size_precision(999.0, 3), "999B");
        assert_eq!(human_size_precision(1_000.0, 3), "1kB");
        assert_eq!(human_size_precision(123_456_789.0, 3), "123MB");
        assert_eq!(human_size(1_234_567.0), "1.235MB");
        assert_eq!(bytes_size(2_087_354_368.0), "1.944GiB");
        assert_eq!(go_format_g(999.9, 3), "1e+03");
    }

    #[test]
    fn durations_match_go_units() {
        let d = chrono::Duration::seconds;
        assert_eq!(
            human_duration(chrono::Duration::milliseconds(500)),
            "Less than a second"
        );
        assert_eq!(human_duration(d(1)), "1 second");
        assert_eq!(human_duration(d(5)), "5 seconds");
        assert_eq!(human_duration(d(60)), "About a minute");
        assert_eq!(human_duration(d(150)), "2 minutes");
        assert_eq!(human_duration(d(3600)), "About an hour");
        assert_eq!(human_duration(d(3 * 3600)), "3 hours");
        assert_eq!(human_duration(d(3 * 86400)), "3 days");
        assert_eq!(human_duration(d(20 * 86400)), "2 weeks");
        assert_eq!(human_duration(d(90 * 86400)), "3 months");
        assert_eq!(human_duration(d(800 * 86400)), "2 years");
    }

    #[test]
    fn memory_units() {
        assert_eq!(ram_in_bytes("64m"), Ok(64 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1GB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("512KiB"), Ok(512 * 1024));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("abc"), Err("invalid size: 'abc'".to_string()));
        assert!(ram_in_bytes("10x").is_err());
        assert!(ram_in_bytes("").is_err());
    }

    #[test]
    fn since_and_until() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert_eq!(get_timestamp("10m", now).unwrap(), "1699999400");
        assert_eq!(get_timestamp("1h30m", now).unwrap(), "1699994600");
        assert_eq!(
            get_timestamp("2023-11-14T22:13:20Z", now).unwrap(),
            "1700000000.000000000"
        );
        assert_eq!(
            get_timestamp("2023-11-14T22:13:20.5+00:00", now).unwrap(),
            "1700000000.500000000"
        );
        assert_eq!(get_timestamp("1700000000", now).unwrap(), "1700000000");
        assert_eq!(
            get_timestamp("1700000000.123", now).unwrap(),
            "1700000000.123"
        );
        assert!(get_timestamp("yesterday", now).is_err());
    }
}
