//! `.dockerignore` with Docker's semantics (moby `patternmatcher` and
//! `ignorefile.ReadAll`): one pattern a line, `#` comment lines, surrounding spaces
//! trimmed, paths cleaned and a leading `/` dropped, `!` for exceptions (the last
//! matching pattern wins), `*` and `?` within one path element, `**` across elements, and
//! a pattern matching a directory matches everything under it.

use regex::Regex;

use crate::BuildError;

#[derive(Debug, Clone)]
struct Pattern {
    exclusion: bool,
    regex: Regex,
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// Go's `filepath.Clean` for slash paths.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn to_regex(pattern: &str) -> Result<Regex, BuildError> {
    let bad = || BuildError::invalid(format!("syntax error in pattern {pattern:?}"));
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    i += 1;
                    // `**/` matches zero or more directories.
                    if chars.get(i + 1) == Some(&'/') {
                        i += 1;
                        re.push_str("(.*/)?");
                    } else {
                        re.push_str(".*");
                    }
                } else {
                    re.push_str("[^/]*");
                }
            }
            '?' => re.push_str("[^/]"),
            '.' | '$' | '(' | ')' | '|' | '+' | '^' | '{' | '}' => {
                re.push('\\');
                re.push(c);
            }
            '\\' => {
                i += 1;
                let n = *chars.get(i).ok_or_else(bad)?;
                re.push_str(&regex::escape(&n.to_string()));
            }
            '[' => {
                let end = chars[i..].iter().position(|&x| x == ']').ok_or_else(bad)? + i;
                let mut class: String = chars[i + 1..end].iter().collect();
                if let Some(rest) = class.strip_prefix('!') {
                    class = format!("^{rest}");
                }
                re.push('[');
                re.push_str(&class);
                re.push(']');
                i = end;
            }
            c => re.push(c),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|_| bad())
}

impl DockerIgnore {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, BuildError> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if body.is_empty() {
                return Err(BuildError::invalid("illegal exclusion pattern: \"!\""));
            }
            let mut text = clean(body);
            if let Some(stripped) = text.strip_prefix('/') {
                text = if stripped.is_empty() {
                    ".".into()
                } else {
                    stripped.to_string()
                };
            }
            let regex = to_regex(&text)?;
            patterns.push(Pattern { exclusion, regex });
        }
        Ok(DockerIgnore { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when `path` (relative to the context, `/`-separated) is excluded.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let hit =
                p.regex.is_match(&path) || parents.iter().any(|parent| p.regex.is_match(parent));
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// True when some exception pattern could re-include something under `dir` (a walker
    /// must then descend into an excluded directory).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_semantics() {
        let di = DockerIgnore::parse(
            "# comment\n*.log\n!keep.log\n/build\n**/tmp\ndocs/*.md\n  spaced  \nDockerfile\n",
        )
        .unwrap();
        assert!(di.excluded("a.log"));
        assert!(!di.excluded("keep.log"));
        assert!(!di.excluded("sub/a.log"), "* stays within one element");
        assert!(di.excluded("build"));
        assert!(
            di.excluded("build/x/y"),
            "a directory pattern covers its contents"
        );
        assert!(di.excluded("tmp"));
        assert!(di.excluded("a/b/tmp/c"));
        assert!(di.excluded("docs/x.md"));
        assert!(!di.excluded("docs/sub/x.md"));
        assert!(di.excluded("spaced"));
        assert!(di.excluded("Dockerfile"));
        assert!(!di.excluded("src/main.rs"));
    }

    #[test]
    fn last_match_wins_and_exceptions_inside_excluded_dirs() {
        let di = DockerIgnore::parse("dir\n!dir/keep\n").unwrap();
        assert!(di.excluded("dir/other"));
        assert!(!di.excluded("dir/keep"));
        assert!(di.has_exceptions());
        let all = DockerIgnore::parse("*\n!src\n").unwrap();
        assert!(all.excluded("README"));
        assert!(!all.excluded("src"));
        assert!(!all.excluded("src/lib.rs"));
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("./a//b/../c/"), "a/c");
        assert_eq!(clean("/"), "/");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("../x"), "../x");
    }

    #[test]
    fn question_mark_and_classes() {
        let di = DockerIgnore::parse("file?.txt\n[ab].c\n").unwrap();
        assert!(di.excluded("file1.txt"));
        assert!(!di.excluded("file10.txt"));
        assert!(di.excluded("a.c"));
        assert!(!di.excluded("c.c"));
        assert!(DockerIgnore::parse("!").is_err());
    }
}
