//! The shell patterns of BuildKit's `${V#p}`, `${V%p}` and `${V/a/b}`
//! (`shell/lex.go` `convertShellPatternToRegex`, `trimPrefix`, `trimSuffix`): `*` and
//! `?` are wildcards (no bracket expressions), `\` escapes `*`, `?` and `\` (and the `}`
//! or `/` that would end the part), everything else is literal.

use regex::Regex;

use crate::BuildError;

fn to_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, BuildError> {
    let invalid = |e: String| {
        BuildError::invalid(format!("invalid pattern ({pattern}) in substitution: {e}"))
    };
    let mut out = String::new();
    if anchored {
        out.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(star),
            '?' => out.push('.'),
            '\\' => {
                if matches!(chars.peek(), Some('}') | Some('/')) {
                    continue;
                }
                match chars.next() {
                    Some(n @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(n);
                    }
                    Some(n) => return Err(invalid(format!("invalid escape '\\{n}'"))),
                    None => return Err(invalid("invalid escape '\\'".into())),
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    Regex::new(&out).map_err(|e| invalid(e.to_string()))
}

/// Reverses a pattern, keeping escapes before what they escape (`a\*c` → `c\*a`).
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            units.push(format!("\\{}", chars[i + 1]));
            i += 2;
        } else {
            units.push(chars[i].to_string());
            i += 1;
        }
    }
    units.reverse();
    units.concat()
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, BuildError> {
    let re = to_regex(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// `${V#p}` / `${V##p}` (`suffix` false) and `${V%p}` / `${V%%p}` (`suffix` true).
pub fn trim(pattern: &str, value: &str, greedy: bool, suffix: bool) -> Result<String, BuildError> {
    if !suffix {
        return trim_prefix(pattern, value, greedy);
    }
    let rev: String = value.chars().rev().collect();
    let out = trim_prefix(&reverse_pattern(pattern), &rev, greedy)?;
    Ok(out.chars().rev().collect())
}

/// `${V/p/r}` (first match) and `${V//p/r}` (every match); the replacement is literal.
pub fn replace(
    pattern: &str,
    replacement: &str,
    value: &str,
    all: bool,
) -> Result<String, BuildError> {
    let re = to_regex(pattern, true, false)?;
    let rep = regex::NoExpand(replacement);
    Ok(if all {
        re.replace_all(value, rep).into_owned()
    } else {
        re.replace(value, rep).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(trim("a*", "abcabc", false, false).unwrap(), "bcabc");
        assert_eq!(trim("a*", "abcabc", true, false).unwrap(), "");
        assert_eq!(trim("*c", "abcabc", false, true).unwrap(), "abcab");
        assert_eq!(trim("*c", "abcabc", true, true).unwrap(), "");
        assert_eq!(trim("b\\*", "ab*", false, true).unwrap(), "a");
        assert_eq!(replace("b", "$1", "abc", false).unwrap(), "a$1c");
        assert_eq!(replace(".", "-", "a.b.c", true).unwrap(), "a-b-c");
        assert!(trim("\\x", "x", false, false).is_err());
    }
}
