//! Registry errors, worded as dockerd words them.
//!
//! Two layers: [`ApiError`] is what one HTTP exchange with a registry answered (status and
//! the `errors` array of the distribution spec), and [`RegistryError`] is what an operation
//! reports to the daemon, with Docker's text and a [`berth_api::ErrorKind`].

use berth_api::ErrorKind;
use serde::Deserialize;

/// An error of a registry operation. `Display` is Docker's text for the same failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Bad input: an unparsable platform, a schema1 manifest, an unsupported media type.
    #[error("{0}")]
    InvalidArgument(String),
    /// The repository, tag, manifest or platform does not exist (or access was denied,
    /// which registries answer for unknown repositories).
    #[error("{0}")]
    NotFound(String),
    /// Credentials refused.
    #[error("{0}")]
    Unauthorized(String),
    /// The registry could not be reached: connection refused, DNS, TLS, timeouts.
    /// Go-style text: `Get "https://host/v2/": dial tcp host: connect: connection refused`.
    #[error("{0}")]
    Unreachable(String),
    /// Content did not match its digest or size.
    #[error("{0}")]
    Verification(String),
    /// Any other answer of the registry (its error code and message, Docker-formatted).
    #[error("{0}")]
    Registry(String),
    /// A local failure (reading a file to upload).
    #[error("{0}")]
    Io(String),
}

impl RegistryError {
    /// The class of the error, which the daemon maps to an HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            RegistryError::NotFound(_) => ErrorKind::NotFound,
            RegistryError::Unauthorized(_) => ErrorKind::Unauthorized,
            RegistryError::Unreachable(_)
            | RegistryError::Verification(_)
            | RegistryError::Registry(_)
            | RegistryError::Io(_) => ErrorKind::Internal,
        }
    }

    /// True when the failure is about reaching the registry (so another endpoint, a
    /// reconnect or the plain-HTTP fallback may help).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RegistryError::Unreachable(_))
    }
}

/// One entry of the distribution spec's `{"errors": [...]}` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ErrorEntry {
    pub code: String,
    pub message: String,
}

impl ErrorEntry {
    /// docker/distribution's `errcode.Error.Error()`: the code lowercased with spaces,
    /// `": "`, the message (`manifest unknown: manifest unknown`).
    pub fn docker_text(&self) -> String {
        let code = self.code.to_lowercase().replace('_', " ");
        format!("{code}: {}", self.message)
    }
}

/// What a registry answered to one request that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// The first entry of `errors`, or one synthesised from a Bearer challenge's `error`
    /// parameter or a 401 without a body.
    pub entry: Option<ErrorEntry>,
    /// Docker's text for the answer (`unauthorized: authentication required`,
    /// `unexpected status code 500 Internal Server Error`...).
    pub text: String,
}

#[derive(Deserialize)]
struct ErrorsBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
    #[serde(default)]
    details: String,
}

/// Default messages of the errcode codes dockerd may synthesise.
fn default_message(code: &str) -> &'static str {
    match code {
        "UNAUTHORIZED" => "authentication required",
        "DENIED" => "requested access to the resource is denied",
        "TOOMANYREQUESTS" => "too many requests",
        _ => "unknown error",
    }
}

impl ApiError {
    /// docker/distribution's `HandleErrorResponse`: the `error` parameter of a Bearer
    /// challenge first (`invalid_token` → unauthorized, `insufficient_scope` → denied),
    /// then a `{"details": ...}` body (token servers), then the `errors` array.
    pub fn from_response(status: u16, www_authenticate: Option<&str>, body: &[u8]) -> ApiError {
        let parsed: Option<ErrorsBody> = serde_json::from_slice(body).ok();
        let mut entry = None;
        if (400..500).contains(&status) {
            if let Some(ch) = www_authenticate.and_then(crate::auth::Challenge::parse) {
                if ch.scheme == "bearer" {
                    let code = match ch.param("error") {
                        Some("invalid_token") => Some("UNAUTHORIZED"),
                        Some("insufficient_scope") => Some("DENIED"),
                        _ => None,
                    };
                    if let Some(code) = code {
                        let message = ch
                            .param("error_description")
                            .filter(|d| !d.is_empty())
                            .unwrap_or(default_message(code))
                            .to_string();
                        entry = Some(ErrorEntry {
                            code: code.into(),
                            message,
                        });
                    }
                }
            }
            if entry.is_none() {
                if let Some(p) = &parsed {
                    if !p.details.is_empty() {
                        let code = match status {
                            401 => "UNAUTHORIZED",
                            429 => "TOOMANYREQUESTS",
                            _ => "UNKNOWN",
                        };
                        entry = Some(ErrorEntry {
                            code: code.into(),
                            message: p.details.clone(),
                        });
                    } else if let Some(first) = p.errors.first() {
                        entry = Some(first.clone());
                    }
                }
            }
            if entry.is_none() && status == 401 {
                entry = Some(ErrorEntry {
                    code: "UNAUTHORIZED".into(),
                    message: default_message("UNAUTHORIZED").into(),
                });
            }
        } else if let Some(first) = parsed.as_ref().and_then(|p| p.errors.first()) {
            entry = Some(first.clone());
        }
        let text = match &entry {
            Some(e) => e.docker_text(),
            None => format!("unexpected status code {}", status_line(status)),
        };
        ApiError {
            status,
            entry,
            text,
        }
    }

    pub fn code(&self) -> &str {
        self.entry.as_ref().map(|e| e.code.as_str()).unwrap_or("")
    }

    /// The generic translation (push, list tags...): unauthorized stays unauthorized,
    /// unknown things are not found, the rest is the registry's text.
    pub fn into_error(self) -> RegistryError {
        match self.code() {
            "UNAUTHORIZED" => RegistryError::Unauthorized(self.text),
            "NAME_UNKNOWN" | "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN" => {
                RegistryError::NotFound(self.text)
            }
            _ if self.status == 404 => RegistryError::NotFound(self.text),
            _ => RegistryError::Registry(self.text),
        }
    }
}

/// `"404 Not Found"`, as Go's `resp.Status`.
pub fn status_line(status: u16) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("{status} {reason}").trim_end().to_string()
}

/// Go's `url.Error` operation name: `Get`, `Head`, `Put`...
pub(crate) fn go_op(method: &reqwest::Method) -> String {
    let m = method.as_str();
    let mut out = m[..1].to_uppercase();
    out.push_str(&m[1..].to_lowercase());
    out
}

/// A transport failure in Go's words: `Get "URL": dial tcp HOST:PORT: connect: connection
/// refused`, `...: http: server gave HTTP response to HTTPS client`, `...: x509: ...`.
pub fn transport_error(
    method: &reqwest::Method,
    url: &url::Url,
    err: &reqwest::Error,
) -> RegistryError {
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(443);
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let cause = describe_cause(err, host, &addr);
    RegistryError::Unreachable(format!("{} \"{}\": {}", go_op(method), url, cause))
}

fn describe_cause(err: &reqwest::Error, host: &str, addr: &str) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut io_kind = None;
    let mut texts = Vec::new();
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return describe_tls(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return describe_tls(tls);
            }
        }
        texts.push(e.to_string());
        source = e.source();
    }
    let all = texts.join(": ");
    // The rustls error may sit behind wrappers that hide it from `source()`.
    if all.contains("InvalidContentType") {
        return "http: server gave HTTP response to HTTPS client".to_string();
    }
    if all.contains("UnknownIssuer") {
        return "tls: failed to verify certificate: x509: certificate signed by unknown authority"
            .into();
    }
    if all.contains("dns error") || all.contains("failed to lookup address") {
        return match first_nameserver() {
            Some(ns) => format!("dial tcp: lookup {host} on {ns}: no such host"),
            None => format!("dial tcp: lookup {host}: no such host"),
        };
    }
    use std::io::ErrorKind as K;
    match io_kind {
        Some(K::ConnectionRefused) => format!("dial tcp {addr}: connect: connection refused"),
        Some(K::ConnectionReset) => format!("read tcp {addr}: read: connection reset by peer"),
        Some(K::TimedOut) => format!("dial tcp {addr}: i/o timeout"),
        Some(K::UnexpectedEof) => "EOF".to_string(),
        _ if err.is_timeout() => format!("dial tcp {addr}: i/o timeout"),
        _ if all.contains("connection closed before message completed") => "EOF".to_string(),
        _ => texts.last().cloned().unwrap_or(all),
    }
}

/// The first `nameserver` of /etc/resolv.conf as `ip:53` (Go names it in DNS errors).
fn first_nameserver() -> Option<String> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    let ip: std::net::IpAddr = conf.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("nameserver")).then(|| words.next()?.parse().ok())?
    })?;
    Some(std::net::SocketAddr::new(ip, 53).to_string())
}

fn describe_tls(err: &rustls::Error) -> String {
    use rustls::{CertificateError, Error as E, InvalidMessage};
    match err {
        E::InvalidMessage(InvalidMessage::InvalidContentType)
        | E::InvalidMessage(InvalidMessage::UnknownProtocolVersion) => {
            "http: server gave HTTP response to HTTPS client".to_string()
        }
        E::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
                .into()
        }
        E::InvalidCertificate(CertificateError::Expired) => {
            "tls: failed to verify certificate: x509: certificate has expired or is not yet valid"
                .into()
        }
        E::InvalidCertificate(CertificateError::NotValidForName)
        | E::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
            "tls: failed to verify certificate: x509: certificate is not valid for this name".into()
        }
        other => format!("tls: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_body_first_entry_in_dockers_words() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        let e = ApiError::from_response(404, None, body);
        assert_eq!(e.text, "manifest unknown: manifest unknown");
        assert_eq!(e.code(), "MANIFEST_UNKNOWN");
        assert_eq!(e.clone().into_error().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn bearer_challenge_error_wins() {
        let ch = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull",error="insufficient_scope""#;
        let e = ApiError::from_response(
            401,
            Some(ch),
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
        assert_eq!(e.text, "denied: requested access to the resource is denied");
        let ch = r#"Bearer realm="x",error="invalid_token",error_description="expired""#;
        assert_eq!(
            ApiError::from_response(401, Some(ch), b"").text,
            "unauthorized: expired"
        );
    }

    #[test]
    fn token_server_details_and_bare_401() {
        let e = ApiError::from_response(
            401,
            None,
            br#"{"details":"incorrect username or password"}"#,
        );
        assert_eq!(e.text, "unauthorized: incorrect username or password");
        assert_eq!(e.into_error().kind(), ErrorKind::Unauthorized);
        let e = ApiError::from_response(401, None, b"");
        assert_eq!(e.text, "unauthorized: authentication required");
        let e = ApiError::from_response(500, None, b"oops");
        assert_eq!(e.text, "unexpected status code 500 Internal Server Error");
        assert_eq!(e.into_error().kind(), ErrorKind::Internal);
    }
}
