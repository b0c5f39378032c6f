//! API version negotiation: strips the `/vN.M` prefix before routing, refuses versions
//! outside [MIN_API_VERSION, API_VERSION] with Docker's texts, and stamps every response
//! with the headers clients negotiate from.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use berth_api::{parse_api_version, API_VERSION, MIN_API_VERSION};
use http::{HeaderValue, Uri};

use crate::error::ApiError;

/// The API version a request asked for (its `/vN.M` prefix, or the maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn at_least(&self, v: &str) -> bool {
        parse_api_version(v).is_some_and(|(a, b)| (self.0, self.1) >= (a, b))
    }

    /// The newest version this daemon speaks.
    pub fn max() -> ApiVersion {
        let (a, b) = parse_api_version(API_VERSION).unwrap_or((1, 45));
        ApiVersion(a, b)
    }
}

/// A handler's `version: ApiVersion`: what [`negotiate`] recorded, else the newest.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ApiVersion {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .unwrap_or_else(ApiVersion::max))
    }
}

pub const SERVER_HEADER: &str = concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)");

/// Splits `/v1.41/containers/json` into `(Some("1.41"), "/containers/json")`.
fn split_version_prefix(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let candidate = &rest[..end];
        if !candidate.is_empty() && candidate.chars().all(|c| c.is_ascii_digit() || c == '.') {
            let tail = &rest[end..];
            return (Some(candidate), if tail.is_empty() { "/" } else { tail });
        }
    }
    (None, path)
}

/// Checks the requested version and rewrites the URI; the version goes into the
/// request's extensions as [`ApiVersion`].
pub fn negotiate(mut req: Request) -> Result<Request, Box<Response>> {
    let path = req.uri().path().to_string();
    let (requested, rest) = split_version_prefix(&path);
    let max = parse_api_version(API_VERSION).unwrap_or((1, 45));
    let min = parse_api_version(MIN_API_VERSION).unwrap_or((1, 24));
    let version = match requested {
        None => max,
        Some(v) => {
            let parsed = parse_api_version(v).ok_or_else(|| {
                Box::new(with_headers(
                    ApiError::invalid(format!("invalid API version: {v}")).into_response(),
                ))
            })?;
            if parsed > max {
                return Err(Box::new(with_headers(
                    ApiError::invalid(format!(
                        "client version {v} is too new. Maximum supported API version is {API_VERSION}"
                    ))
                    .into_response(),
                )));
            }
            if parsed < min {
                return Err(Box::new(with_headers(
                    ApiError::invalid(format!(
                        "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                    ))
                    .into_response(),
                )));
            }
            parsed
        }
    };
    if requested.is_some() {
        let new_uri = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        if let Ok(uri) = new_uri.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut()
        .insert(ApiVersion(version.0, version.1));
    Ok(req)
}

/// Adds the headers every Engine API response carries.
pub fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert(
        http::header::SERVER,
        HeaderValue::from_static(SERVER_HEADER),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix_is_split_off() {
        assert_eq!(
            split_version_prefix("/v1.41/containers/json"),
            (Some("1.41"), "/containers/json")
        );
        assert_eq!(split_version_prefix("/_ping"), (None, "/_ping"));
        assert_eq!(split_version_prefix("/v1.45"), (Some("1.45"), "/"));
        assert_eq!(split_version_prefix("/volumes"), (None, "/volumes"));
    }

    fn request(path: &str) -> Request {
        Request::builder()
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn too_new_and_too_old_are_refused() {
        let r = negotiate(request("/v1.99/version")).unwrap_err();
        assert_eq!(r.status(), 400);
        let r = negotiate(request("/v1.11/version")).unwrap_err();
        assert_eq!(r.status(), 400);
        let ok = negotiate(request("/v1.41/containers/json?all=1")).unwrap();
        assert_eq!(ok.uri().path(), "/containers/json");
        assert_eq!(ok.uri().query(), Some("all=1"));
        assert_eq!(
            ok.extensions().get::<ApiVersion>(),
            Some(&ApiVersion(1, 41))
        );
        let unversioned = negotiate(request("/info")).unwrap();
        assert_eq!(
            unversioned.extensions().get::<ApiVersion>(),
            Some(&ApiVersion(1, 45))
        );
    }
}
