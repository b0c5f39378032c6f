//! Registry credentials as the Engine API carries them.
//!
//! `POST /auth` takes an [`AuthConfig`] as its JSON body and answers [`AuthResponse`].
//! Pull and push take the same structure in the `X-Registry-Auth` header, as base64url
//! JSON ([`AuthConfig::to_header`] / [`AuthConfig::from_header`]); builds take a map of them
//! (server address → config) in `X-Registry-Config`.

use base64::Engine;
use serde::{Deserialize, Serialize};

/// Docker's `registry.AuthConfig` (moby `api/types/registry/authconfig.go`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// `base64(username:password)`, as stored in `~/.docker/config.json`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(rename = "serveraddress", skip_serializing_if = "String::is_empty")]
    pub server_address: String,
    /// A refresh token for the registry's token server (OAuth2 `refresh_token` grant).
    #[serde(rename = "identitytoken", skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
    /// A bearer token sent to the registry as is.
    #[serde(rename = "registrytoken", skip_serializing_if = "String::is_empty")]
    pub registry_token: String,
}

impl AuthConfig {
    /// The value of an `X-Registry-Auth` header: base64url of the JSON.
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    /// Decodes an `X-Registry-Auth` header as moby does: base64url with or without
    /// padding (standard alphabet tolerated too). An empty header or `{}` is "no
    /// credentials" (`None`); anything undecodable is an error.
    pub fn from_header(value: &str) -> Result<Option<AuthConfig>, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let trimmed = value.trim_end_matches('=');
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(trimmed)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
            .map_err(|e| format!("invalid X-Registry-Auth header: {e}"))?;
        let cfg: AuthConfig = serde_json::from_slice(&bytes)
            .map_err(|e| format!("invalid X-Registry-Auth header: {e}"))?;
        Ok(if cfg == AuthConfig::default() {
            None
        } else {
            Some(cfg)
        })
    }

    /// Username and password, from the explicit fields or else from `auth`.
    pub fn credentials(&self) -> Option<(String, String)> {
        if !self.username.is_empty() || !self.password.is_empty() {
            return Some((self.username.clone(), self.password.clone()));
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.auth.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (user, pass) = text.split_once(':')?;
        Some((user.to_string(), pass.to_string()))
    }
}

/// The answer of `POST /auth`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthResponse {
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "IdentityToken", skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_empty_forms() {
        let cfg = AuthConfig {
            username: "u".into(),
            password: "p?>".into(),
            server_address: "127.0.0.1:5000".into(),
            ..Default::default()
        };
        assert_eq!(
            AuthConfig::from_header(&cfg.to_header()).unwrap(),
            Some(cfg)
        );
        assert_eq!(AuthConfig::from_header("").unwrap(), None);
        assert_eq!(AuthConfig::from_header("e30=").unwrap(), None); // "{}"
        assert!(AuthConfig::from_header("!!!").is_err());
    }

    #[test]
    fn credentials_from_auth_field() {
        let cfg = AuthConfig {
            auth: "dXNlcjpwYTpzcw==".into(),
            ..Default::default()
        };
        assert_eq!(cfg.credentials(), Some(("user".into(), "pa:ss".into())));
        assert_eq!(AuthConfig::default().credentials(), None);
    }
}
