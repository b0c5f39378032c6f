//! Build secrets (`RUN --mount=type=secret`). Docker's classic `POST /build` has no way
//! to send them (BuildKit uses its session protocol), so Berth takes them in its own
//! request header (its wire format in [`berth_api::build_secrets`]). `berth build
//! --secret id=x,src=FILE|env=VAR` sends it; the Docker CLI cannot, so a required secret of a
//! build it starts fails with BuildKit's `secret x: not found`.
//!
//! A secret's value lives in memory and, while one step runs, in a 0400 file of the
//! build's private directory bound read-only into that step's container; it is never
//! in a layer, in the history or in the cache key (which holds the mount as written).

use std::collections::BTreeMap;

use berth_api::build_secrets::{decode, HEADER};

use crate::error::{ApiError, ApiResult};

/// The secrets of a request (none without the header).
pub fn from_headers(headers: &http::HeaderMap) -> ApiResult<BTreeMap<String, Vec<u8>>> {
    let Some(v) = headers.get(HEADER) else {
        return Ok(BTreeMap::new());
    };
    let bad = |e: String| ApiError::invalid(format!("invalid X-Berth-Build-Secrets header: {e}"));
    decode(v.to_str().map_err(|_| bad("not ASCII".into()))?).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_the_request_headers() {
        let mut s = BTreeMap::new();
        s.insert("tok".to_string(), b"s3cret\n".to_vec());
        let mut h = http::HeaderMap::new();
        h.insert(
            HEADER,
            berth_api::build_secrets::encode(&s).parse().unwrap(),
        );
        assert_eq!(from_headers(&h).unwrap(), s);
        h.insert(HEADER, "%%%".parse().unwrap());
        assert!(from_headers(&h)
            .unwrap_err()
            .message
            .starts_with("invalid X-Berth-Build-Secrets header: "));
        assert!(from_headers(&http::HeaderMap::new()).unwrap().is_empty());
    }
}
