//! Variable substitution as moby's `shell.Lex` does it for the instructions that expand
//! (`ProcessWord`): `$V`, `${V}`, `${V:-word}`, `${V:+word}`, BuildKit's `${V#p}`,
//! `${V##p}`, `${V%p}`, `${V%%p}`, `${V/a/b}`, `${V//a/b}` (patterns in
//! [`crate::shell_pattern`]), quotes removed, the escape
//! character escaping the next character (`\$` is a literal `$`), single quotes literal.
//! Also the word splitting of ENV/LABEL/ARG (`parseWords` in moby's parser), which keeps
//! quotes for the later `ProcessWord`.

use crate::BuildError;

/// Looks a variable up (the environment of the step; later entries win).
pub fn lookup<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter().rev().find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        (k == name).then_some(v)
    })
}

/// moby `ProcessWord`: one word in, one word out (no field splitting).
pub fn process_word(word: &str, env: &[String], escape: char) -> Result<String, BuildError> {
    let mut lex = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        escape,
        env,
        skip_quotes: false,
    };
    lex.process(None)
}

/// BuildKit's expansion of a here-document body (`SkipProcessQuotes`): variables
/// expanded, quotes kept as they are, `\` escaping the next character.
pub fn process_heredoc(word: &str, env: &[String]) -> Result<String, BuildError> {
    let mut lex = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        escape: '\\',
        env,
        skip_quotes: true,
    };
    lex.process(None)
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: &'a [String],
    /// Quotes are plain characters (here-document bodies).
    skip_quotes: bool,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Reads until `stop` (not consumed) or the end.
    fn process(&mut self, stop: Option<char>) -> Result<String, BuildError> {
        self.process_inner(stop, false)
    }

    /// [`Self::process`]; with `raw_escapes` an escape and what it escapes are both kept
    /// (the patterns of `${V#p}`, `${V/a/b}`: BuildKit `processStopOn(…, true)`).
    fn process_inner(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<String, BuildError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                break;
            }
            self.pos += 1;
            match c {
                '\'' | '"' if self.skip_quotes => out.push(c),
                '\'' => out.push_str(&self.single_quoted()?),
                '"' => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => match self.next() {
                    Some(n) if raw_escapes => {
                        out.push('\\');
                        out.push(n);
                    }
                    Some(n) => out.push(n),
                    None => out.push(c),
                },
                c => out.push(c),
            }
        }
        Ok(out)
    }

    /// `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}` (`op` is `#` or `%`).
    fn trim(&mut self, name: &str, op: char) -> Result<String, BuildError> {
        let word = self.process_inner(Some('}'), true)?;
        if self.next() != Some('}') {
            return Err(BuildError::invalid("syntax error: missing '}'"));
        }
        let value = lookup(self.env, name).unwrap_or_default();
        let (greedy, word) = match word.strip_prefix(op) {
            Some(w) => (true, w.to_string()),
            None => (false, word),
        };
        crate::shell_pattern::trim(&word, value, greedy, op == '%')
    }

    /// `${V/a/b}` and `${V//a/b}`.
    fn replace(&mut self, name: &str) -> Result<String, BuildError> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = self.process_inner(Some('/'), true)?;
        if self.next() != Some('/') {
            return Err(BuildError::invalid("syntax error: missing '/' in ${}"));
        }
        let replacement = self.process_inner(Some('}'), true)?;
        if self.next() != Some('}') {
            return Err(BuildError::invalid("syntax error: missing '}'"));
        }
        let value = lookup(self.env, name).unwrap_or_default();
        crate::shell_pattern::replace(&pattern, &replacement, value, all)
    }

    fn single_quoted(&mut self) -> Result<String, BuildError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(BuildError::invalid(
                        "unexpected end of statement while looking for matching single-quote",
                    ))
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, BuildError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(BuildError::invalid(
                        "unexpected end of statement while looking for matching double-quote",
                    ))
                }
                Some('"') => return Ok(out),
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    fn dollar(&mut self) -> Result<String, BuildError> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err(BuildError::invalid(format!(
                        "failed to process \"{}\": missing ':' in substitution",
                        self.chars.iter().collect::<String>()
                    )));
                }
                match self.next() {
                    Some('}') => Ok(lookup(self.env, &name).unwrap_or_default().to_string()),
                    Some(op @ ('#' | '%')) => self.trim(&name, op),
                    Some('/') => self.replace(&name),
                    Some(':') => {
                        let op = self.next();
                        let word = self.process(Some('}'))?;
                        if self.next() != Some('}') {
                            return Err(BuildError::invalid(
                                "syntax error: missing '}'".to_string(),
                            ));
                        }
                        let value = lookup(self.env, &name).unwrap_or_default();
                        match op {
                            Some(o @ ('#' | '%')) => Err(BuildError::invalid(format!(
                                "unsupported modifier (:{o}) in substitution"
                            ))),
                            Some('-') if value.is_empty() => Ok(word),
                            Some('-') => Ok(value.to_string()),
                            Some('+') if value.is_empty() => Ok(String::new()),
                            Some('+') => Ok(word),
                            Some('?') if value.is_empty() => {
                                let why = if word.is_empty() {
                                    "is not allowed to be empty".to_string()
                                } else {
                                    word
                                };
                                Err(BuildError::invalid(format!("{name}: {why}")))
                            }
                            Some('?') => Ok(value.to_string()),
                            Some(o) => Err(BuildError::invalid(format!(
                                "unsupported modifier ({o}) in substitution"
                            ))),
                            None => Err(BuildError::invalid("syntax error: missing '}'")),
                        }
                    }
                    _ => Err(BuildError::invalid("missing ':' in substitution")),
                }
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok(lookup(self.env, &name).unwrap_or_default().to_string())
            }
            _ => Ok("$".to_string()),
        }
    }
}

/// moby `parseWords`: splits on whitespace outside quotes, keeping quotes and escapes in
/// the words (they are removed by [`process_word`] later).
pub fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        if c == escape {
            escaped = true;
            cur.push(c);
            continue;
        }
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// moby `parseNameVal` for ENV and LABEL (and ARG's `k=v` words): `k=v k2=v2`, or the
/// old `k v w` form (one pair, the value the rest of the line).
pub fn name_values(
    instr: &str,
    rest: &str,
    escape: char,
) -> Result<Vec<(String, String)>, BuildError> {
    let words = split_words(rest, escape);
    if words.is_empty() {
        return Err(BuildError::invalid(format!(
            "{instr} requires at least one argument"
        )));
    }
    if !words[0].contains('=') {
        // Old form: `ENV key value with spaces`.
        let trimmed = rest.trim_start();
        let key = words[0].clone();
        let value = trimmed[key.len()..].trim_start().to_string();
        if value.is_empty() {
            return Err(BuildError::invalid(format!(
                "{instr} must have two arguments"
            )));
        }
        return Ok(vec![(key, value)]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(BuildError::invalid(format!(
                "Syntax error - can't find = in \"{w}\". Must be of the form: name=value"
            )));
        };
        if k.is_empty() {
            return Err(BuildError::invalid(format!(
                "Syntax error - can't find = in \"{w}\". Must be of the form: name=value"
            )));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<String> {
        vec!["A=1".into(), "EMPTY=".into(), "B=two words".into()]
    }

    #[test]
    fn substitutions() {
        let e = env();
        let w = |s: &str| process_word(s, &e, '\\').unwrap();
        assert_eq!(w("$A"), "1");
        assert_eq!(w("${A}x"), "1x");
        assert_eq!(w("${NOPE:-dflt}"), "dflt");
        assert_eq!(w("${EMPTY:-dflt}"), "dflt");
        assert_eq!(w("${A:-dflt}"), "1");
        assert_eq!(w("${A:+set}"), "set");
        assert_eq!(w("${NOPE:+set}"), "");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$B\""), "two words");
        assert_eq!(w("\"a\\\"b\""), "a\"b");
        assert_eq!(w("$"), "$");
        assert_eq!(w("a$NOPE.b"), "a.b");
        assert_eq!(process_word("`$A", &e, '`').unwrap(), "$A");
        assert_eq!(process_word("C:\\x", &e, '`').unwrap(), "C:\\x");
    }

    #[test]
    fn heredoc_bodies_keep_quotes() {
        let e = env();
        assert_eq!(
            process_heredoc("echo \"$A\" '$B' \\$A\n", &e).unwrap(),
            "echo \"1\" 'two words' $A\n"
        );
    }

    #[test]
    fn buildkit_pattern_forms() {
        let e = vec![
            "P=/usr/local/lib/libfoo.so.1.2".to_string(),
            "V=a-b-c".to_string(),
            "S=x*y".to_string(),
        ];
        let w = |s: &str| process_word(s, &e, '\\').unwrap();
        assert_eq!(w("${P#*/}"), "usr/local/lib/libfoo.so.1.2");
        assert_eq!(w("${P##*/}"), "libfoo.so.1.2");
        assert_eq!(w("${P%.*}"), "/usr/local/lib/libfoo.so.1");
        assert_eq!(w("${P%%.*}"), "/usr/local/lib/libfoo");
        assert_eq!(w("${V/-/+}"), "a+b-c");
        assert_eq!(w("${V//-/+}"), "a+b+c");
        assert_eq!(w("${V/?/z}"), "z-b-c");
        assert_eq!(w("${V#nomatch}"), "a-b-c");
        assert_eq!(w("${NOPE%x}"), "");
        assert_eq!(w("${S/\\*/-}"), "x-y");
        assert_eq!(
            process_word("${V//b}", &e, '\\').unwrap_err().to_string(),
            "syntax error: missing '/' in ${}"
        );
        assert_eq!(
            process_word("${V:#a}", &e, '\\').unwrap_err().to_string(),
            "unsupported modifier (:#) in substitution"
        );
    }

    #[test]
    fn required_variables() {
        let e = env();
        assert_eq!(process_word("${A:?need A}", &e, '\\').unwrap(), "1");
        assert_eq!(
            process_word("${NOPE:?need it}", &e, '\\')
                .unwrap_err()
                .to_string(),
            "NOPE: need it"
        );
        assert_eq!(
            process_word("${EMPTY:?}", &e, '\\')
                .unwrap_err()
                .to_string(),
            "EMPTY: is not allowed to be empty"
        );
        assert_eq!(
            process_word("${A-x}", &e, '\\').unwrap_err().to_string(),
            "missing ':' in substitution"
        );
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert!(process_word("\"abc", &env(), '\\').is_err());
        assert!(process_word("${A", &env(), '\\').is_err());
    }

    #[test]
    fn env_words() {
        let kv = name_values("ENV", "X=1 Y=\"two words\" Z=$X", '\\').unwrap();
        assert_eq!(
            kv,
            vec![
                ("X".to_string(), "1".to_string()),
                ("Y".to_string(), "\"two words\"".to_string()),
                ("Z".to_string(), "$X".to_string())
            ]
        );
        let old = name_values("ENV", "KEY value with  spaces", '\\').unwrap();
        assert_eq!(old, vec![("KEY".into(), "value with  spaces".into())]);
        assert!(name_values("ENV", "", '\\').is_err());
        assert!(name_values("ENV", "a=1 b", '\\').is_err());
        assert_eq!(
            name_values("LABEL", "\"c d\"=\"e f\"", '\\').unwrap(),
            vec![("\"c d\"".into(), "\"e f\"".into())]
        );
    }
}
