//! Image references as the Docker CLI parses them before it talks to the daemon
//! (`distribution/reference.ParseNormalizedNamed`): the registry domain picks the stored
//! credentials, the normalized name goes into `fromImage`, and bad names are refused with
//! Docker's messages before any request.

use std::fmt;

/// Docker Hub's domain in normalized names.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A parsed, normalized reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Why a reference was refused; the text is Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReferenceError(pub String);

fn err(s: impl Into<String>) -> ReferenceError {
    ReferenceError(s.into())
}

impl Reference {
    /// `ParseNormalizedNamed`: `busybox` → `docker.io/library/busybox`.
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or(&remainder);
        if remote.to_lowercase() != remote {
            return Err(err(format!(
                "invalid reference format: repository name ({remote}) must be lowercase"
            )));
        }
        parse_full(&format!("{domain}/{remainder}"))
    }

    /// The name without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// True when there is neither a tag nor a digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// `TagNameOnly`: adds `:latest` to a bare name.
    pub fn with_default_tag(mut self) -> Reference {
        if self.is_name_only() {
            self.tag = Some("latest".to_string());
        }
        self
    }

    /// The name as users type it: `busybox`, `user/app`, `127.0.0.1:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// `FamiliarString`: the familiar name with its tag and digest.
    pub fn familiar_string(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    /// The `tag` query value of `POST /images/create` (`getAPITagFromNamedRef`): the
    /// digest, else the tag, else `latest`.
    pub fn api_tag(&self) -> String {
        self.digest
            .clone()
            .or_else(|| self.tag.clone())
            .unwrap_or_else(|| "latest".to_string())
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(self.name()))
    }
}

/// `splitDockerDomain`: the first component is a registry when it has a `.` or `:`, is
/// `localhost`, or has upper case letters.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// `reference.Parse` of `domain/path[:tag][@digest]` (the domain is always present here).
fn parse_full(s: &str) -> Result<Reference, ReferenceError> {
    match parse_grammar(s) {
        Some(r) => {
            if r.path.len() > NAME_TOTAL_LENGTH_MAX {
                return Err(err(format!(
                    "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
                )));
            }
            if let Some(d) = &r.digest {
                check_digest(d)?;
            }
            Ok(r)
        }
        None if s.is_empty() => Err(err("repository name must have at least one component")),
        None if parse_grammar(&s.to_lowercase()).is_some() => {
            Err(err("repository name must be lowercase"))
        }
        None => Err(err("invalid reference format")),
    }
}

fn parse_grammar(s: &str) -> Option<Reference> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        if !is_digest(d) {
            return None;
        }
    }
    let slash = rest.rfind('/')?;
    let (name, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        if !is_tag(t) {
            return None;
        }
    }
    let (domain, path) = name.split_once('/')?;
    if !is_domain_and_port(domain) || !path.split('/').all(is_path_component) {
        return None;
    }
    Some(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
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
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `(?:domainName|\[ipv6\])(?::[0-9]+)?`
fn is_domain_and_port(d: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = d.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        let inner_ok =
            !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        return inner_ok && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok));
    }
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if port.is_some_and(|p| !port_ok(p)) {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// `[\w][\w.-]{0,127}`
fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn is_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|c| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `digest.Parse`'s checks of a well-formed digest.
fn check_digest(d: &str) -> Result<(), ReferenceError> {
    let (alg, hex) = d.split_once(':').unwrap_or((d, ""));
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(err("unsupported digest algorithm")),
    };
    if hex.len() != len {
        return Err(err("invalid checksum digest length"));
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(err("invalid checksum digest format"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:6e6c1579fd0a2b3b60bdb26f4b05eab3a38c1b3bbfc9eccd12f5559ccbf956ce";

    fn norm(s: &str) -> String {
        Reference::parse_normalized(s).unwrap().to_string()
    }

    fn fails(s: &str) -> String {
        Reference::parse_normalized(s).unwrap_err().0
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/app"), "docker.io/user/app");
        assert_eq!(norm("index.docker.io/user/app:v1"), "docker.io/user/app:v1");
        assert_eq!(norm("index.docker.io/busybox"), "docker.io/library/busybox");
        assert_eq!(norm("localhost/x"), "localhost/x");
        assert_eq!(norm("localhost:5000/x"), "localhost:5000/x");
        assert_eq!(norm("127.0.0.1:5911/multi:v1"), "127.0.0.1:5911/multi:v1");
        assert_eq!(norm("[::1]:5000/a/b:t"), "[::1]:5000/a/b:t");
        assert_eq!(
            norm(&format!("busybox@{D}")),
            format!("docker.io/library/busybox@{D}")
        );
        assert_eq!(norm(&format!("h.io/a/b:t@{D}")), format!("h.io/a/b:t@{D}"));
        assert_eq!(norm("a__b/c-d--e/f.g_h"), "docker.io/a__b/c-d--e/f.g_h");
        assert_eq!(norm("Host.IO/x"), "Host.IO/x");
    }

    #[test]
    fn familiar_forms_and_api_tag() {
        let r = Reference::parse_normalized("busybox").unwrap();
        assert!(r.is_name_only());
        assert_eq!(r.api_tag(), "latest");
        let r = r.with_default_tag();
        assert_eq!(r.familiar_string(), "busybox:latest");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let r = Reference::parse_normalized("user/app:v2").unwrap();
        assert_eq!(r.familiar_string(), "user/app:v2");
        let r = Reference::parse_normalized("docker.io/library/a/b").unwrap();
        assert_eq!(r.familiar_name(), "library/a/b");
        let r = Reference::parse_normalized(&format!("127.0.0.1:5000/x@{D}")).unwrap();
        assert_eq!(r.api_tag(), D);
        assert_eq!(r.familiar_string(), format!("127.0.0.1:5000/x@{D}"));
    }

    #[test]
    fn refuses_bad_names_with_docker_messages() {
        assert_eq!(
            fails("Busybox"),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            fails("user/App:v1"),
            "invalid reference format: repository name (user/App) must be lowercase"
        );
        assert_eq!(
            fails(&"a".repeat(64).replace('a', "f")),
            format!(
                "invalid repository name ({}), cannot specify 64-byte hexadecimal strings",
                "f".repeat(64)
            )
        );
        assert_eq!(fails("busybox:"), "invalid reference format");
        assert_eq!(fails("busybox:-x"), "invalid reference format");
        assert_eq!(fails("-busybox"), "invalid reference format");
        assert_eq!(fails("bus..box"), "invalid reference format");
        assert_eq!(fails("a/b//c"), "invalid reference format");
        assert_eq!(fails(""), "invalid reference format");
        assert_eq!(fails("x@sha256:abc"), "invalid reference format");
        assert_eq!(
            fails(&format!("x:{}", "t".repeat(129))),
            "invalid reference format"
        );
        assert_eq!(fails("h.io:port/x"), "invalid reference format");
        assert_eq!(
            fails(&format!("x@sha256:{}", "a".repeat(32))),
            "invalid checksum digest length"
        );
        assert_eq!(
            fails(&format!("x@md5:{}", "a".repeat(32))),
            "unsupported digest algorithm"
        );
        assert_eq!(
            fails(&format!("h.io/{}", "a".repeat(256))),
            "repository name must not be more than 255 characters"
        );
    }
}
