//! What every route reads from a request: the query string ([`Query`], with Docker's
//! boolean rule and filters) and a JSON body ([`JsonBody`], [`OptionalJsonBody`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::containers::filters::Filters;
use crate::error::{ApiError, ApiResult};

/// The decoded query string, keeping repeated keys (`changes=…&changes=…`); a key's
/// first value wins, as with Go's `Form.Get`.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query(pairs)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, "" when absent.
    pub fn str(&self, key: &str) -> String {
        self.get(key).unwrap_or_default().to_string()
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's `BoolValue`: anything but "", "0", "no", "false", "none" is true.
    pub fn bool(&self, key: &str) -> bool {
        let v = self
            .get(key)
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
    }

    /// The `filters` parameter, decoded.
    pub fn filters(&self) -> ApiResult<Filters> {
        parse_filters(self.get("filters").unwrap_or_default())
    }

    /// An integer parameter; absent or blank is `None`.
    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key).map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::invalid(format!("invalid value for {key}: {v}"))),
        }
    }
}

/// Docker's `filters` JSON: `{"k":{"v":true}}`, the old `{"k":["v"]}`, or `{"k":"v"}`.
pub fn parse_filters(json: &str) -> ApiResult<Filters> {
    let mut out = Filters::new();
    if json.trim().is_empty() {
        return Ok(out);
    }
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| ApiError::invalid(format!("invalid filter: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| ApiError::invalid("invalid filter: not an object"))?;
    for (k, v) in obj {
        let values: Vec<String> = match v {
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(_, on)| on.as_bool() != Some(false))
                .map(|(s, _)| s.clone())
                .collect(),
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            _ => return Err(ApiError::invalid(format!("invalid filter '{k}'"))),
        };
        out.insert(k.clone(), values);
    }
    Ok(out)
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Query::parse(parts.uri.query()))
    }
}

/// Decodes a JSON request body; a blank body is `None`.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<Option<T>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))
}

/// The body, or axum's own answer when it cannot be read (413 over the size limit).
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Response> {
    Bytes::from_request(req, state)
        .await
        .map_err(IntoResponse::into_response)
}

/// A required JSON body (a blank one is "invalid JSON: body is empty").
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        decode_json(&body_bytes(req, state).await?)
            .and_then(|v| v.ok_or_else(|| ApiError::invalid("invalid JSON: body is empty")))
            .map(JsonBody)
            .map_err(IntoResponse::into_response)
    }
}

/// A JSON body that may be left out (blank).
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        decode_json(&body_bytes(req, state).await?)
            .map(OptionalJsonBody)
            .map_err(IntoResponse::into_response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_follow_docker() {
        let q = Query::parse(Some(
            "a=1&b=true&c=0&d=false&e=&f=no&g=none&h=yes&i=True&j=2",
        ));
        for k in ["a", "b", "h", "i", "j"] {
            assert!(q.bool(k), "{k}");
        }
        for k in ["c", "d", "e", "f", "g", "missing"] {
            assert!(!q.bool(k), "{k}");
        }
        assert_eq!(q.int("e").unwrap(), None);
        assert_eq!(q.int("j").unwrap(), Some(2));
        assert!(q.int("b").is_err());
    }

    #[test]
    fn query_keeps_repeated_keys_and_decodes() {
        let q = Query::parse(Some(
            "fromSrc=-&repo=imported%3Av1&changes=CMD+%5B%22sh%22%5D&changes=ENV%20A%3D1&all=1&x",
        ));
        assert_eq!(q.str("repo"), "imported:v1");
        assert_eq!(q.all("changes"), vec!["CMD [\"sh\"]", "ENV A=1"]);
        assert!(q.bool("all"));
        assert!(!q.bool("x"));
        assert!(!q.bool("missing"));
        assert_eq!(Query::parse(Some("k=a%2")).str("k"), "a%2");
        assert_eq!(Query::parse(Some("k=%zz%C3%A9")).str("k"), "%zzé");
    }

    #[test]
    fn json_bodies() {
        let v: Option<serde_json::Value> = decode_json(b" \n").unwrap();
        assert_eq!(v, None);
        let v: Option<serde_json::Value> = decode_json(br#"{"a":1}"#).unwrap();
        assert_eq!(v.unwrap()["a"], 1);
        let e = decode_json::<serde_json::Value>(b"{").unwrap_err();
        assert!(e.message.starts_with("invalid JSON: "), "{}", e.message);
    }

    #[test]
    fn filters_in_both_forms() {
        let f = parse_filters(r#"{"dangling":{"true":true},"label":["a=b"]}"#).unwrap();
        assert_eq!(f["dangling"], vec!["true"]);
        assert_eq!(f["label"], vec!["a=b"]);
        assert!(parse_filters("").unwrap().is_empty());
        assert!(parse_filters("[1]").is_err());
    }
}
