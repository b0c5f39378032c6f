//! Build secrets (`RUN --mount=type=secret`). Docker's classic `POST /build` has no way
//! to send them (BuildKit uses its session protocol), so Berth takes them in its own
//! request header [`HEADER`]: standard base64 of a JSON object mapping each secret ID
//! to its value, itself base64 (`{"npmrc": "dG9rZW4="}`). `berth build --secret
//! id=x,src=FILE|env=VAR` sends it; the Docker CLI cannot, so a required secret of a
//! build it starts fails with BuildKit's `secret x: not found`.
//!
//! A secret's value lives in memory and, while one step runs, in a 0400 file of the
//! build's private directory bound read-only into that step's container; it is never
//! in a layer, in the history or in the cache key (which holds the mount as written).

use std::collections::BTreeMap;

use base64::Engine;

use crate::error::{ApiError, ApiResult};

pub const HEADER: &str = "x-berth-build-secrets";

/// The secrets of a request (none without the header).
pub fn from_headers(headers: &http::HeaderMap) -> ApiResult<BTreeMap<String, Vec<u8>>> {
    let Some(v) = headers.get(HEADER) else {
        return Ok(BTreeMap::new());
    };
    let bad = |e: String| ApiError::invalid(format!("invalid X-Berth-Build-Secrets header: {e}"));
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = v.to_str().map_err(|_| bad("not ASCII".into()))?;
    let json = b64.decode(text.trim()).map_err(|e| bad(e.to_string()))?;
    let map: BTreeMap<String, String> =
        serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (id, value) in map {
        if id.is_empty() {
            return Err(bad("empty secret ID".into()));
        }
        out.insert(id, b64.decode(value).map_err(|e| bad(e.to_string()))?);
    }
    Ok(out)
}

/// The header's value for `secrets` (the CLI's side).
pub fn header_value(secrets: &BTreeMap<String, Vec<u8>>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let map: BTreeMap<&String, String> = secrets.iter().map(|(k, v)| (k, b64.encode(v))).collect();
    b64.encode(serde_json::to_vec(&map).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut s = BTreeMap::new();
        s.insert("tok".to_string(), b"s3cret\n".to_vec());
        let mut h = http::HeaderMap::new();
        h.insert(HEADER, header_value(&s).parse().unwrap());
        assert_eq!(from_headers(&h).unwrap(), s);
        h.insert(HEADER, "%%%".parse().unwrap());
        assert!(from_headers(&h).is_err());
        assert!(from_headers(&http::HeaderMap::new()).unwrap().is_empty());
    }
}
