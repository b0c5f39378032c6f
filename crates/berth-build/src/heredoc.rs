//! Here-documents as BuildKit's Dockerfile parser reads them (`parser.go`:
//! `heredocsFromLine`, `reHeredoc`): in RUN, COPY and ADD (not in their JSON forms), every
//! word `[n]<<[-]WORD` of the instruction's logical line opens a here-document whose body
//! is the lines that follow, up to a line equal to `WORD` (leading tabs ignored for
//! `<<-`). A quoted `WORD` (`<<'EOF'`, `<<"EOF"`) marks the body as not expanded.
//!
//! `parse-dockerfile` knows only one heredoc at the start of RUN, so this pre-pass takes
//! every body out of the text first: body and terminator lines become empty lines (line
//! numbers stay), and the `<<` of the instruction line becomes [`SENTINEL`] so the parser
//! sees plain words; [`restore`] turns the sentinel back in the words it returns.

use std::collections::BTreeMap;

use crate::BuildError;

/// What stands for `<<` in the text handed to the parser (same byte length).
pub const SENTINEL: &str = "\u{1}\u{1}";

/// One here-document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (`EOF`); also the file name for COPY.
    pub name: String,
    /// False when the delimiter was quoted: the body is taken literally.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body's lines.
    pub chomp: bool,
    /// `3<<EOF`: the file descriptor (0 when not given).
    pub fd: u32,
    /// The body, each line with its newline, the terminator not included.
    pub content: String,
}

impl Heredoc {
    /// The body as BuildKit uses it: leading tabs removed for `<<-`
    /// (`ChompHeredocContent`).
    pub fn data(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// Undoes the sentinel in a word or line the parser returned.
pub fn restore(s: &str) -> String {
    s.replace(SENTINEL, "<<")
}

/// moby/BuildKit `ParseHeredoc` for one word: `^(\d*)<<(-?)\s*([^<]*)$`.
pub fn parse_word(word: &str) -> Option<Heredoc> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let fd = if digits > 0 {
        word[..digits].parse().ok()?
    } else {
        0
    };
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let mut name = String::new();
    let mut quoted = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => name.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                quoted = true;
            }
            (None, '\\') => {
                quoted = true;
                if let Some(n) = chars.next() {
                    name.push(n);
                }
            }
            (None, c) if c.is_whitespace() => return None,
            (None, c) => name.push(c),
        }
    }
    if quote.is_some() || name.is_empty() {
        return None;
    }
    Some(Heredoc {
        name,
        expand: !quoted,
        chomp,
        fd,
        content: String::new(),
    })
}

/// The heredoc words of a logical line (BuildKit splits it as a shell would, quotes
/// kept).
pub fn words_of_line(line: &str) -> Vec<Heredoc> {
    crate::shell::split_words(line, '\\')
        .iter()
        .filter_map(|w| parse_word(w))
        .collect()
}

/// The escape character of the `# escape=` directive, if the text starts with one.
fn escape_of(text: &str) -> char {
    for line in text.lines() {
        let t = line.trim();
        let Some(c) = t.strip_prefix('#') else {
            break;
        };
        let c = c.trim();
        if let Some((k, v)) = c.split_once('=') {
            if k.trim().eq_ignore_ascii_case("escape") {
                if let Some(ch) = v.trim().chars().next() {
                    return ch;
                }
            }
        } else {
            break;
        }
    }
    '\\'
}

/// Takes the here-documents out of a Dockerfile. Returns the text for the parser and
/// the heredocs by the 1-based line of their instruction's keyword.
pub fn extract(text: &str) -> Result<(String, BTreeMap<usize, Vec<Heredoc>>), BuildError> {
    let escape = escape_of(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let mut docs = BTreeMap::new();
    let mut i = 0;
    while i < lines.len() {
        let first = lines[i].trim_start();
        if first.is_empty() || first.starts_with('#') {
            i += 1;
            continue;
        }
        // The logical line: continuations joined, comment lines inside skipped.
        let start = i;
        let mut logical = String::new();
        loop {
            let raw = lines[i].trim_end_matches(['\n', '\r']);
            let t = raw.trim_start();
            if i > start && (t.starts_with('#') || t.is_empty()) {
                i += 1;
                if i >= lines.len() {
                    break;
                }
                continue;
            }
            let trimmed = raw.trim_end_matches([' ', '\t']);
            i += 1;
            match trimmed.strip_suffix(escape) {
                Some(cont) if i < lines.len() => logical.push_str(cont),
                Some(cont) => {
                    logical.push_str(cont);
                    break;
                }
                None => {
                    logical.push_str(raw);
                    break;
                }
            }
        }
        if !logical.contains("<<") || !can_contain_heredoc(&logical) {
            continue;
        }
        let mut found = words_of_line(&logical);
        if found.is_empty() {
            continue;
        }
        for l in out.iter_mut().take(i).skip(start) {
            *l = l.replace("<<", SENTINEL);
        }
        for doc in &mut found {
            let mut terminated = false;
            while i < lines.len() {
                let body = lines[i];
                out[i] = if body.ends_with('\n') {
                    "\n".into()
                } else {
                    String::new()
                };
                i += 1;
                let mut candidate = body.trim_end_matches(['\n', '\r']);
                if doc.chomp {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == doc.name {
                    terminated = true;
                    break;
                }
                doc.content.push_str(body);
                if !body.ends_with('\n') {
                    // The last line of a file without a final newline.
                    doc.content.push('\n');
                }
            }
            if !terminated {
                return Err(BuildError::invalid(format!(
                    "dockerfile parse error line {}: unterminated heredoc",
                    start + 1
                )));
            }
        }
        docs.insert(start + 1, found);
    }
    Ok((out.concat(), docs))
}

/// RUN, COPY, ADD (or ONBUILD with one of them), not in the JSON form.
fn can_contain_heredoc(logical: &str) -> bool {
    let mut words = logical.split_whitespace();
    let mut kw = words.next().unwrap_or_default().to_ascii_uppercase();
    let mut rest_start = logical.trim_start()[kw.len()..].trim_start();
    if kw == "ONBUILD" {
        kw = words.next().unwrap_or_default().to_ascii_uppercase();
        rest_start = rest_start[kw.len().min(rest_start.len())..].trim_start();
    }
    if !matches!(kw.as_str(), "RUN" | "COPY" | "ADD") {
        return false;
    }
    // Flags first, then a JSON array is the exec form.
    let mut rest = rest_start;
    while rest.starts_with("--") {
        rest = rest
            .find(char::is_whitespace)
            .map(|p| rest[p..].trim_start())
            .unwrap_or("");
    }
    let t = rest.trim_end();
    !(t.starts_with('[') && t.ends_with(']') && serde_json::from_str::<Vec<String>>(t).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        let h = parse_word("<<EOF").unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.chomp, h.fd),
            ("EOF", true, false, 0)
        );
        let h = parse_word("<<-'END'").unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.chomp), ("END", false, true));
        let h = parse_word("3<<\"X\"").unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.fd), ("X", false, 3));
        assert!(parse_word("<<").is_none());
        assert!(parse_word("a<<b").is_none());
        assert!(parse_word("<<a<b").is_none());
        assert!(parse_word("echo").is_none());
    }

    #[test]
    fn bodies_are_taken_out_and_lines_kept() {
        let text = "FROM x\nRUN <<A cat /dev/stdin; <<-B cat\nhello $X\nA\n\tworld\n\tB\nCMD x\n";
        let (rest, docs) = extract(text).unwrap();
        assert_eq!(
            rest,
            "FROM x\nRUN \u{1}\u{1}A cat /dev/stdin; \u{1}\u{1}-B cat\n\n\n\n\nCMD x\n"
        );
        let d = &docs[&2];
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].content, "hello $X\n");
        assert_eq!(d[1].content, "\tworld\n");
        assert_eq!(d[1].data(), "world\n");
    }

    #[test]
    fn json_form_and_other_instructions_have_none() {
        let text = "FROM x\nRUN [\"echo\", \"<<EOF\"]\nENV A=<<EOF\n";
        let (rest, docs) = extract(text).unwrap();
        assert_eq!(rest, text);
        assert!(docs.is_empty());
    }

    #[test]
    fn continuation_before_the_body() {
        let text = "FROM x\nCOPY --chmod=755 \\\n  <<one.sh <<two.sh /bin/\necho 1\none.sh\necho 2\ntwo.sh\n";
        let (_, docs) = extract(text).unwrap();
        let d = &docs[&2];
        assert_eq!(d[0].name, "one.sh");
        assert_eq!(d[1].content, "echo 2\n");
    }

    #[test]
    fn unterminated_is_an_error() {
        let e = extract("FROM x\nRUN <<EOF\necho hi\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dockerfile parse error line 2: unterminated heredoc"
        );
    }
}
