//! Berth's build-secrets header: Docker's classic `POST /build` has no field for
//! `RUN --mount=type=secret` values (BuildKit sends them over its session), so `berth
//! build --secret` sends them in [`HEADER`]: standard base64 of a JSON object mapping
//! each secret ID to its value, itself standard base64 (`{"npmrc": "dG9rZW4="}`).
//! [`encode`] is the client's side, [`decode`] the daemon's.

use std::collections::BTreeMap;

use base64::Engine;

/// The header's name (lowercase, as `http::HeaderName` keeps it).
pub const HEADER: &str = "x-berth-build-secrets";

/// The header's value for `secrets`.
pub fn encode(secrets: &BTreeMap<String, Vec<u8>>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let map: BTreeMap<&String, String> = secrets.iter().map(|(k, v)| (k, b64.encode(v))).collect();
    b64.encode(serde_json::to_vec(&map).unwrap_or_default())
}

/// The secrets of a header value; the error says what is wrong with it.
pub fn decode(value: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let json = b64.decode(value.trim()).map_err(|e| e.to_string())?;
    let map: BTreeMap<String, String> = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (id, value) in map {
        if id.is_empty() {
            return Err("empty secret ID".into());
        }
        out.insert(id, b64.decode(value).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_wire_form_and_errors() {
        let mut s = BTreeMap::new();
        s.insert("tok".to_string(), b"s3cret\n".to_vec());
        s.insert("bin".to_string(), vec![0, 255, 10]);
        let v = encode(&s);
        assert_eq!(decode(&v).unwrap(), s);
        // The wire form: base64 of a JSON object of base64 values.
        let one: BTreeMap<String, Vec<u8>> = [("b".to_string(), b"from-env".to_vec())].into();
        let json = base64::engine::general_purpose::STANDARD
            .decode(encode(&one))
            .unwrap();
        assert_eq!(String::from_utf8(json).unwrap(), "{\"b\":\"ZnJvbS1lbnY=\"}");
        assert!(decode("%%%").is_err());
        let not_json = base64::engine::general_purpose::STANDARD.encode("[1]");
        assert!(decode(&not_json).is_err());
        let empty_id = base64::engine::general_purpose::STANDARD.encode("{\"\":\"eA==\"}");
        assert_eq!(decode(&empty_id).unwrap_err(), "empty secret ID");
        assert!(decode(&encode(&BTreeMap::new())).unwrap().is_empty());
    }
}
