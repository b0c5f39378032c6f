//! Go's formatting where Docker's history texts use it: `%q` of strings and string
//! slices, `%v` of string slices, `time.Duration.String()`, and the `%q` of a
//! HEALTHCHECK config (`&{["CMD-SHELL" "x"] "5s" "0s" "0s" '\x00'}`).

pub use berth_api::units::go_quote as quote;

/// `fmt.Sprintf("%q", []string{…})`.
pub fn quote_slice(v: &[String]) -> String {
    let parts: Vec<String> = v.iter().map(|s| quote(s)).collect();
    format!("[{}]", parts.join(" "))
}

/// `fmt.Sprintf("%v", []string{…})`.
pub fn plain_slice(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// `%q` of an int (a rune literal).
pub fn quote_rune(n: i64) -> String {
    match u32::try_from(n).ok().and_then(char::from_u32) {
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        Some(c) if (' '..='~').contains(&c) => format!("'{c}'"),
        Some(c) if (c as u32) < 0x80 => format!("'\\x{:02x}'", c as u32),
        Some(c) if (c as u32) < 0x10000 => format!("'\\u{:04x}'", c as u32),
        Some(c) => format!("'\\U{:08x}'", c as u32),
        None => format!("%!q(int={n})"),
    }
}

pub use berth_api::units::go_duration as duration;

/// `time.ParseDuration` for the HEALTHCHECK flags (`1m30s`, `500ms`, `2h`).
pub fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_texts() {
        assert_eq!(
            quote_slice(&["cat".into(), "/greeting".into()]),
            r#"["cat" "/greeting"]"#
        );
        assert_eq!(quote("a\"b\\"), r#""a\"b\\""#);
        assert_eq!(plain_slice(&["/a".into(), "/b".into()]), "[/a /b]");
        assert_eq!(quote_rune(0), r"'\x00'");
        assert_eq!(quote_rune(3), r"'\x03'");
        assert_eq!(quote_rune(65), "'A'");
        assert_eq!(duration(5_000_000_000), "5s");
        assert_eq!(duration(90_000_000_000), "1m30s");
        assert_eq!(duration(500_000_000), "500ms");
        assert_eq!(duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(duration(1_500_000_000), "1.5s");
        assert_eq!(duration(0), "0s");
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("x"), None);
    }
}
