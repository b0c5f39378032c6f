//! Image references with Docker's grammar and normalization (distribution/reference).
//!
//! ```text
//! reference       := name [ ":" tag ] [ "@" digest ]
//! name            := [domain "/"] path-component ["/" path-component]*
//! domain          := domain-component ["." domain-component]* [":" port-number]
//! domain-component:= /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! path-component  := alnum [separator alnum]*      alnum := /[a-z0-9]+/
//! separator       := /[_.]|__|[-]+/
//! tag             := /[\w][\w.-]{0,127}/
//! digest          := "sha256:" 64 lowercase hex (other algorithms are refused)
//! ```
//!
//! Normalization: a first component without `.` or `:` that is not `localhost` (and is
//! lowercase) is not a domain, so `busybox` → `docker.io/library/busybox`, `user/app` →
//! `docker.io/user/app`; `index.docker.io` is spelled `docker.io`. The familiar form drops
//! `docker.io/` and `library/` again for display.

use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A reference error; the message is Docker's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReferenceError(pub String);

fn invalid_format() -> ReferenceError {
    ReferenceError("invalid reference format".into())
}

/// A parsed, normalized reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Docker's `ParseNormalizedNamed`: accepts familiar names and fills in `docker.io`
    /// and `library/`. Does not add a default tag (see [`Reference::with_default_tag`]).
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if is_full_hex_id(s) {
            return Err(ReferenceError(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        let (mut domain, mut remainder) = split_docker_domain(s);
        if domain == LEGACY_DEFAULT_DOMAIN {
            domain = DEFAULT_DOMAIN.to_string();
        }
        if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
            remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
        }
        let remote_name = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => remainder.as_str(),
        };
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError(format!(
                "invalid reference format: repository name ({remote_name}) must be lowercase"
            )));
        }
        Self::parse(&format!("{domain}/{remainder}"))
    }

    /// Docker's `Parse` of a fully qualified reference (`domain/path[:tag][@digest]`);
    /// `s` must already carry its domain.
    fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let (name_and_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        let last_slash = name_and_tag.rfind('/').unwrap_or(0);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_and_tag[..last_slash + i],
                Some(&name_and_tag[last_slash + i + 1..]),
            ),
            None => (name_and_tag, None),
        };
        // distribution's `Parse`: the whole grammar first (the uppercase error when only
        // lowercasing is missing), then the path length, then the digest's own checks.
        let (domain, path) = name.split_once('/').ok_or_else(invalid_format)?;
        let tag_ok = tag.is_none_or(is_tag);
        let digest_ok = digest.is_none_or(digest_grammar_ok);
        if !is_domain(domain) || !is_path(path) || !tag_ok || !digest_ok {
            if name.is_empty() {
                return Err(ReferenceError(
                    "repository name must have at least one component".into(),
                ));
            }
            if tag_ok && digest_ok && is_domain(domain) && is_path(&path.to_lowercase()) {
                return Err(ReferenceError("repository name must be lowercase".into()));
            }
            return Err(invalid_format());
        }
        if path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError(format!(
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }
        if let Some(d) = digest {
            validate_digest(d)?;
        }
        Ok(Reference {
            domain: domain.to_string(),
            path: path.to_string(),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// Adds `:latest` when the reference has neither a tag nor a digest (`TagNameOnly`).
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// Replaces the tag (and drops any digest).
    pub fn with_tag(mut self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError("invalid tag format".into()));
        }
        self.tag = Some(tag.to_string());
        self.digest = None;
        Ok(self)
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Familiar repository name: `busybox`, `user/app`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// Familiar form of the whole reference: `busybox:latest`, `localhost:5000/x:v1`.
    pub fn familiar_string(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    fn with_suffix(&self, mut s: String) -> String {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(self.name()))
    }
}

/// Docker's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            let looks_like_domain =
                first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first;
            if looks_like_domain {
                (first.to_string(), name[i + 1..].to_string())
            } else {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            }
        }
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    }
}

/// True for exactly 64 lowercase hex characters.
pub fn is_full_hex_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The reference grammar's digest: `algorithm ":" [0-9a-fA-F]{32,}`, algorithm being
/// `[A-Za-z][A-Za-z0-9]*` components joined by `[-_+.]`.
fn digest_grammar_ok(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|c| {
        c.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && c.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// go-digest's validation of a digest that fits the grammar: sha256 only, 64 lowercase
/// hex characters.
fn validate_digest(d: &str) -> Result<(), ReferenceError> {
    let (alg, hex) = d.split_once(':').ok_or_else(invalid_format)?;
    if alg != "sha256" {
        return Err(ReferenceError("unsupported digest algorithm".into()));
    }
    if hex.len() != 64 {
        return Err(ReferenceError("invalid checksum digest length".into()));
    }
    if !is_full_hex_id(hex) {
        return Err(ReferenceError("invalid checksum digest format".into()));
    }
    Ok(())
}

fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

fn is_domain(d: &str) -> bool {
    if let Some(rest) = d.strip_prefix('[') {
        // IPv6 literal: [hex:...][:port]
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        return addr_ok && (after.is_empty() || after.strip_prefix(':').is_some_and(is_port));
    }
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port {
        if !is_port(p) {
            return false;
        }
    }
    !host.is_empty() && host.split('.').all(is_domain_component)
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
}

fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
}

fn is_path(p: &str) -> bool {
    !p.is_empty() && p.split('/').all(is_path_component)
}

/// `alnum [separator alnum]*` with alnum `[a-z0-9]+` and separator `[_.]|__|[-]+`.
fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "_" || sep == "." || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse_normalized(s).unwrap().to_string()
    }
    fn err(s: &str) -> String {
        Reference::parse_normalized(s).unwrap_err().0
    }
    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes_familiar_names() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox");
        assert_eq!(
            Reference::parse_normalized("busybox")
                .unwrap()
                .with_default_tag()
                .to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/app"), "docker.io/user/app");
        assert_eq!(norm("user/app:v2"), "docker.io/user/app:v2");
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox"
        );
        assert_eq!(norm("docker.io/busybox"), "docker.io/library/busybox");
        assert_eq!(norm("localhost/x"), "localhost/x");
        assert_eq!(norm("localhost:5000/x"), "localhost:5000/x");
        assert_eq!(
            norm("host.example.com:5000/a/b/c:tag"),
            "host.example.com:5000/a/b/c:tag"
        );
        assert_eq!(norm("[::1]:5000/x:v1"), "[::1]:5000/x:v1");
        assert_eq!(
            norm(&format!("busybox@sha256:{HEX}")),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
        assert_eq!(
            norm(&format!("busybox:1@sha256:{HEX}")),
            format!("docker.io/library/busybox:1@sha256:{HEX}")
        );
        assert_eq!(norm("a__b-c---d/f_g.h"), "docker.io/a__b-c---d/f_g.h");
        assert_eq!(err("a__b.c/x"), "invalid reference format");
    }

    #[test]
    fn splits_parts() {
        let r = Reference::parse_normalized("localhost:5000/a/b:v1").unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "a/b");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.name(), "localhost:5000/a/b");
    }

    #[test]
    fn familiar_forms() {
        let f = |s: &str| {
            Reference::parse_normalized(s)
                .unwrap()
                .with_default_tag()
                .familiar_string()
        };
        assert_eq!(f("busybox"), "busybox:latest");
        assert_eq!(f("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(f("user/app"), "user/app:latest");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b:latest");
        assert_eq!(f("localhost:5000/x:v1"), "localhost:5000/x:v1");
        assert_eq!(
            f(&format!("busybox@sha256:{HEX}")),
            format!("busybox@sha256:{HEX}")
        );
    }

    #[test]
    fn errors_in_dockers_words() {
        assert_eq!(
            err("Busybox"),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            err("user/App:v1"),
            "invalid reference format: repository name (user/App) must be lowercase"
        );
        assert_eq!(err("busybox:"), "invalid reference format");
        assert_eq!(err(":tag"), "invalid reference format");
        assert_eq!(err(""), "invalid reference format");
        assert_eq!(err("a//b"), "invalid reference format");
        assert_eq!(err("-a"), "invalid reference format");
        assert_eq!(err("a-"), "invalid reference format");
        assert_eq!(err("a..b"), "invalid reference format");
        assert_eq!(err("a___b"), "invalid reference format");
        assert_eq!(err("busybox:t@g"), "invalid reference format");
        assert_eq!(err("busybox:.tag"), "invalid reference format");
        assert_eq!(
            err(&format!("busybox:{}", "a".repeat(129))),
            "invalid reference format"
        );
        assert_eq!(err("busybox@sha256:abc"), "invalid reference format");
        assert_eq!(
            err(&format!("busybox@md5:{HEX}")),
            "unsupported digest algorithm"
        );
        assert_eq!(err("busybox@"), "invalid reference format");
        assert_eq!(
            err(HEX),
            format!("invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings")
        );
        assert_eq!(
            err(&"a".repeat(256)),
            "repository name must not be more than 255 characters"
        );
        assert_eq!(err("host:port/x"), "invalid reference format");
        assert_eq!(err("-host.com/x"), "invalid reference format");
    }

    #[test]
    fn tags_accept_word_chars() {
        assert!(Reference::parse_normalized("a:V1_2.3-x").is_ok());
        assert!(Reference::parse_normalized(&format!("a:{}", "b".repeat(128))).is_ok());
        let r = Reference::parse_normalized("a")
            .unwrap()
            .with_tag("v2")
            .unwrap();
        assert_eq!(r.to_string(), "docker.io/library/a:v2");
        assert!(Reference::parse_normalized("a")
            .unwrap()
            .with_tag("-x")
            .is_err());
    }

    /// distribution/reference `TestReferenceParse`, through `ParseNormalizedNamed`
    /// (names without a domain gain `docker.io/library/` or `docker.io/`).
    /// One row: input, full name, domain, tag, digest.
    type ParsedRow<'a> = (String, &'a str, &'a str, Option<&'a str>, Option<&'a str>);

    /// Columns: input, full name, domain, tag, digest, or `Err(message)`.
    #[test]
    fn distribution_reference_parse_table() {
        let ff = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        let ok: Vec<ParsedRow> = vec![
            (
                "test_com".into(),
                "docker.io/library/test_com",
                "docker.io",
                None,
                None,
            ),
            (
                "test.com:tag".into(),
                "docker.io/library/test.com",
                "docker.io",
                Some("tag"),
                None,
            ),
            (
                "test.com:5000".into(),
                "docker.io/library/test.com",
                "docker.io",
                Some("5000"),
                None,
            ),
            (
                "test.com/repo:tag".into(),
                "test.com/repo",
                "test.com",
                Some("tag"),
                None,
            ),
            (
                "test:5000/repo".into(),
                "test:5000/repo",
                "test:5000",
                None,
                None,
            ),
            (
                "test:5000/repo:tag".into(),
                "test:5000/repo",
                "test:5000",
                Some("tag"),
                None,
            ),
            (
                format!("test:5000/repo@{ff}"),
                "test:5000/repo",
                "test:5000",
                None,
                Some(ff),
            ),
            (
                format!("test:5000/repo:tag@{ff}"),
                "test:5000/repo",
                "test:5000",
                Some("tag"),
                Some(ff),
            ),
            (
                "lowercase:Uppercase".into(),
                "docker.io/library/lowercase",
                "docker.io",
                Some("Uppercase"),
                None,
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux".into(),
                "sub-dom1.foo.com/bar/baz/quux",
                "sub-dom1.foo.com",
                None,
                None,
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
                "sub-dom1.foo.com/bar/baz/quux",
                "sub-dom1.foo.com",
                Some("some-long-tag"),
                None,
            ),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com".into(),
                "b.gcr.io/test.example.com/my-app",
                "b.gcr.io",
                Some("test.example.com"),
                None,
            ),
            (
                "xn--n3h.com/myimage:xn--n3h.com".into(),
                "xn--n3h.com/myimage",
                "xn--n3h.com",
                Some("xn--n3h.com"),
                None,
            ),
            (
                format!("xn--7o8h.com/myimage:xn--7o8h.com@{ff}"),
                "xn--7o8h.com/myimage",
                "xn--7o8h.com",
                Some("xn--7o8h.com"),
                Some(ff),
            ),
            (
                "foo_bar.com:8080".into(),
                "docker.io/library/foo_bar.com",
                "docker.io",
                Some("8080"),
                None,
            ),
            (
                "foo/foo_bar.com:8080".into(),
                "docker.io/foo/foo_bar.com",
                "docker.io",
                Some("8080"),
                None,
            ),
            (
                "192.168.1.1".into(),
                "docker.io/library/192.168.1.1",
                "docker.io",
                None,
                None,
            ),
            (
                "192.168.1.1:tag".into(),
                "docker.io/library/192.168.1.1",
                "docker.io",
                Some("tag"),
                None,
            ),
            (
                "192.168.1.1:5000".into(),
                "docker.io/library/192.168.1.1",
                "docker.io",
                Some("5000"),
                None,
            ),
            (
                "192.168.1.1/repo".into(),
                "192.168.1.1/repo",
                "192.168.1.1",
                None,
                None,
            ),
            (
                "192.168.1.1:5000/repo".into(),
                "192.168.1.1:5000/repo",
                "192.168.1.1:5000",
                None,
                None,
            ),
            (
                "192.168.1.1:5000/repo:5050".into(),
                "192.168.1.1:5000/repo",
                "192.168.1.1:5000",
                Some("5050"),
                None,
            ),
            (
                "[2001:db8::1]/repo".into(),
                "[2001:db8::1]/repo",
                "[2001:db8::1]",
                None,
                None,
            ),
            (
                "[2001:db8:1:2:3:4:5:6]/repo:tag".into(),
                "[2001:db8:1:2:3:4:5:6]/repo",
                "[2001:db8:1:2:3:4:5:6]",
                Some("tag"),
                None,
            ),
            (
                "[2001:db8::1]:5000/repo".into(),
                "[2001:db8::1]:5000/repo",
                "[2001:db8::1]:5000",
                None,
                None,
            ),
            (
                "[2001:db8::1]:5000/repo:tag".into(),
                "[2001:db8::1]:5000/repo",
                "[2001:db8::1]:5000",
                Some("tag"),
                None,
            ),
            (
                format!("[2001:db8::1]:5000/repo@{ff}"),
                "[2001:db8::1]:5000/repo",
                "[2001:db8::1]:5000",
                None,
                Some(ff),
            ),
            (
                format!("[2001:db8::1]:5000/repo:tag@{ff}"),
                "[2001:db8::1]:5000/repo",
                "[2001:db8::1]:5000",
                Some("tag"),
                Some(ff),
            ),
            (
                "[2001:db8::]:5000/repo".into(),
                "[2001:db8::]:5000/repo",
                "[2001:db8::]:5000",
                None,
                None,
            ),
            (
                "[::1]:5000/repo".into(),
                "[::1]:5000/repo",
                "[::1]:5000",
                None,
                None,
            ),
            (
                "localhost:5000/x".into(),
                "localhost:5000/x",
                "localhost:5000",
                None,
                None,
            ),
            (
                "host:5000/path/name:tag".into(),
                "host:5000/path/name",
                "host:5000",
                Some("tag"),
                None,
            ),
            (
                format!("name@{ff}"),
                "docker.io/library/name",
                "docker.io",
                None,
                Some(ff),
            ),
        ];
        for (input, name, domain, tag, digest) in &ok {
            let r = Reference::parse_normalized(input)
                .unwrap_or_else(|e| panic!("{input}: unexpected error {e}"));
            assert_eq!(r.name(), *name, "{input}");
            assert_eq!(r.domain(), *domain, "{input}");
            assert_eq!(r.tag(), *tag, "{input}");
            assert_eq!(r.digest(), *digest, "{input}");
        }
        // The path may be 255 characters; the domain does not count.
        let long = format!("example.com/{}:tag", "a".repeat(255));
        assert_eq!(
            Reference::parse_normalized(&long).unwrap().path().len(),
            255
        );
        let deep = format!("{}a:tag-puts-this-over-max", "a/".repeat(127));
        let r = Reference::parse_normalized(&deep).unwrap();
        assert_eq!((r.domain(), r.path().len()), ("docker.io", 255));

        let bad: Vec<(String, &str)> = vec![
            (String::new(), "invalid reference format"),
            (":justtag".into(), "invalid reference format"),
            (format!("@{ff}"), "invalid reference format"),
            (
                "repo@sha256:ffffffffffffffffffffffffffffffffff".into(),
                "invalid checksum digest length",
            ),
            (
                format!("validname@invaliddigest:{}", &ff[7..]),
                "unsupported digest algorithm",
            ),
            (
                format!("validname@sha512:{}{}", &ff[7..], &ff[7..]),
                "unsupported digest algorithm",
            ),
            (
                format!("validname@sha256:{}", ff[7..].to_uppercase()),
                "invalid checksum digest format",
            ),
            ("repo@sha256:fff".into(), "invalid reference format"),
            (
                "repo@1sha256:ffffffffffffffffffffffffffffffffff".into(),
                "invalid reference format",
            ),
            (
                "Uppercase:tag".into(),
                "invalid reference format: repository name (library/Uppercase) must be lowercase",
            ),
            (
                "test:5000/Uppercase/lowercase:tag".into(),
                "invalid reference format: repository name (Uppercase/lowercase) must be lowercase",
            ),
            (
                format!("domain.com/{}:tag", "a".repeat(256)),
                "repository name must not be more than 255 characters",
            ),
            ("aa/asdf$$^/aa".into(), "invalid reference format"),
            ("[2001:db8::1]".into(), "invalid reference format"),
            ("[2001:db8::1]:5000".into(), "invalid reference format"),
            ("[2001:db8::1]:tag".into(), "invalid reference format"),
            (
                "[fe80::1%eth0]:5000/repo".into(),
                "invalid reference format",
            ),
            (
                "[fe80::1%@invalidzone]:5000/repo".into(),
                "invalid reference format",
            ),
        ];
        for (input, want) in &bad {
            match Reference::parse_normalized(input) {
                Ok(r) => panic!("{input:?} parsed as {r}, expected {want:?}"),
                Err(e) => assert_eq!(e.0, *want, "{input:?}"),
            }
        }
    }

    /// distribution/reference `TestValidateReferenceName` and `TestValidateRemoteName`.
    #[test]
    fn distribution_name_validity_tables() {
        let valid = [
            "docker/docker",
            "library/debian",
            "debian",
            "localhost/library/debian",
            "localhost/debian",
            "LOCALDOMAIN/library/debian",
            "LOCALDOMAIN/debian",
            "docker.io/docker/docker",
            "docker.io/library/debian",
            "docker.io/debian",
            "index.docker.io/docker/docker",
            "index.docker.io/library/debian",
            "index.docker.io/debian",
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/library/debian",
            "127.0.0.1:5000/debian",
            "192.168.0.1",
            "192.168.0.1:80",
            "192.168.0.1:8/debian",
            "192.168.0.2:25000/debian",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "[fc00::1]:5000/docker",
            "[fc00::1]:5000/docker/docker",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "Docker/docker",
            "DOCKER/docker",
            "docker-rules/docker",
            "docker---rules/docker",
            "doc/docker",
            "d/docker",
            "jess/t",
            "dock__er/docker",
        ];
        for name in valid {
            assert!(
                Reference::parse_normalized(name).is_ok(),
                "{name} should be valid"
            );
        }
        let invalid = [
            "https://github.com/docker/docker", "docker/Docker", "-docker", "-docker/docker",
            "-docker.io/docker/docker", "docker///docker", "docker.io/docker/Docker",
            "docker.io/docker///docker", "[fc00::1]", "[fc00::1]:5000", "fc00::1:5000/debian",
            "[fe80::1%eth0]:5000/debian", "[2001:db8:3:4::192.0.2.33]:5000/debian",
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "docker-/docker", "-docker-/docker", "____/____", "_docker/_docker",
            "dock..er/docker", "dock_.er/docker", "dock-.er/docker", "docker/",
            "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker",
        ];
        for name in invalid {
            assert!(
                Reference::parse_normalized(name).is_err(),
                "{name} should be invalid"
            );
        }
    }

    /// distribution/reference `TestParseRepositoryInfo`: (path, familiar, full, other
    /// spellings that normalize the same, domain).
    #[test]
    fn distribution_repository_info_table() {
        let table: &[(&str, &str, &str, &[&str], &str)] = &[
            ("fooo", "localhost/fooo", "localhost/fooo", &[], "localhost"),
            (
                "fooo/bar",
                "localhost/fooo/bar",
                "localhost/fooo/bar",
                &[],
                "localhost",
            ),
            (
                "fooo",
                "LOCALDOMAIN/fooo",
                "LOCALDOMAIN/fooo",
                &[],
                "LOCALDOMAIN",
            ),
            (
                "fooo/bar",
                "fooo/bar",
                "docker.io/fooo/bar",
                &["index.docker.io/fooo/bar"],
                "docker.io",
            ),
            (
                "library/ubuntu",
                "ubuntu",
                "docker.io/library/ubuntu",
                &["library/ubuntu"],
                "docker.io",
            ),
            (
                "nonlibrary/ubuntu",
                "nonlibrary/ubuntu",
                "docker.io/nonlibrary/ubuntu",
                &[],
                "docker.io",
            ),
            (
                "other/library",
                "other/library",
                "docker.io/other/library",
                &[],
                "docker.io",
            ),
            (
                "private/moonbase",
                "127.0.0.1:8000/private/moonbase",
                "127.0.0.1:8000/private/moonbase",
                &[],
                "127.0.0.1:8000",
            ),
            (
                "privatebase",
                "example.com:8000/privatebase",
                "example.com:8000/privatebase",
                &[],
                "example.com:8000",
            ),
            (
                "library/ubuntu-12.04-base",
                "ubuntu-12.04-base",
                "docker.io/library/ubuntu-12.04-base",
                &["index.docker.io/library/ubuntu-12.04-base"],
                "docker.io",
            ),
            (
                "library/foo",
                "foo",
                "docker.io/library/foo",
                &["docker.io/foo"],
                "docker.io",
            ),
            (
                "library/foo/bar",
                "library/foo/bar",
                "docker.io/library/foo/bar",
                &[],
                "docker.io",
            ),
            (
                "store/foo/bar",
                "store/foo/bar",
                "docker.io/store/foo/bar",
                &[],
                "docker.io",
            ),
            ("bar", "Foo/bar", "Foo/bar", &[], "Foo"),
            ("bar", "FOO/bar", "FOO/bar", &[], "FOO"),
        ];
        for (path, familiar, full, others, domain) in table {
            for input in [*familiar, *full].iter().chain(others.iter()) {
                let r = Reference::parse_normalized(input).unwrap();
                assert_eq!(r.path(), *path, "{input}");
                assert_eq!(r.familiar_name(), *familiar, "{input}");
                assert_eq!(r.name(), *full, "{input}");
                assert_eq!(r.domain(), *domain, "{input}");
            }
        }
    }
}
