//! A user network's driver options (`network create -o`), read as Docker's bridge driver
//! reads them. The options Berth applies are parsed; the bridge options it does not apply
//! are refused; any other key is kept for `inspect` only, as Docker keeps it.

use std::collections::BTreeMap;

use crate::error::{ApiError, ApiResult};

pub const BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const ENABLE_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const ENABLE_IP_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const MTU: &str = "com.docker.network.driver.mtu";

/// Bridge options Docker applies and Berth does not yet: refused.
const NOT_APPLIED: &[&str] = &[
    "com.docker.network.bridge.host_binding_ipv4",
    "com.docker.network.bridge.default_bridge",
    "com.docker.network.bridge.inhibit_ipv4",
    "com.docker.network.bridge.gateway_mode_ipv4",
    "com.docker.network.bridge.gateway_mode_ipv6",
    "com.docker.network.container_iface_prefix",
    "com.docker.network.enable_ipv6",
];

/// What the options change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeOptions {
    /// The Linux bridge's name instead of one derived from the network ID.
    pub name: Option<String>,
    /// False: containers on the network cannot reach each other (only the gateway).
    pub icc: bool,
    /// False: no masquerade for traffic leaving the network.
    pub masquerade: bool,
    pub mtu: Option<u32>,
}

fn parse_bool(key: &str, v: &str) -> ApiResult<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err(ApiError::invalid(format!(
            "failed to parse {key} value: invalid boolean value {v:?}"
        ))),
    }
}

impl BridgeOptions {
    pub fn parse(options: &BTreeMap<String, String>) -> ApiResult<BridgeOptions> {
        let mut out = BridgeOptions {
            name: None,
            icc: true,
            masquerade: true,
            mtu: None,
        };
        for (key, value) in options {
            match key.as_str() {
                BRIDGE_NAME => {
                    let valid = !value.is_empty()
                        && value.len() <= 15
                        && !value.contains(['/', ' ', ':'])
                        && value != "."
                        && value != "..";
                    if !valid {
                        return Err(ApiError::invalid(format!("invalid bridge name {value:?}")));
                    }
                    out.name = Some(value.clone());
                }
                ENABLE_ICC => out.icc = parse_bool(key, value)?,
                ENABLE_IP_MASQUERADE => out.masquerade = parse_bool(key, value)?,
                MTU => {
                    let mtu: u32 = value.parse().map_err(|_| {
                        ApiError::invalid(format!(
                            "failed to parse {key} value: invalid MTU {value:?}"
                        ))
                    })?;
                    if !(68..=65535).contains(&mtu) {
                        return Err(ApiError::invalid(format!("invalid MTU number: {mtu}")));
                    }
                    out.mtu = Some(mtu);
                }
                k if NOT_APPLIED.contains(&k) => {
                    return Err(ApiError::invalid(format!(
                        "network driver option {k} is not supported by Berth yet"
                    )))
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_applied_options() {
        let d = BridgeOptions::parse(&opts(&[("foo", "bar")])).unwrap();
        assert_eq!(
            d,
            BridgeOptions {
                name: None,
                icc: true,
                masquerade: true,
                mtu: None
            }
        );
        let o = BridgeOptions::parse(&opts(&[
            (BRIDGE_NAME, "br-mine"),
            (ENABLE_ICC, "false"),
            (ENABLE_IP_MASQUERADE, "0"),
            (MTU, "1400"),
        ]))
        .unwrap();
        assert_eq!(
            o,
            BridgeOptions {
                name: Some("br-mine".into()),
                icc: false,
                masquerade: false,
                mtu: Some(1400)
            }
        );
    }

    #[test]
    fn bad_values_and_unapplied_options_are_refused() {
        for bad in [
            (ENABLE_ICC, "nope"),
            (MTU, "big"),
            (MTU, "20"),
            (BRIDGE_NAME, "a-name-longer-than-15"),
            (BRIDGE_NAME, "a/b"),
            ("com.docker.network.bridge.host_binding_ipv4", "127.0.0.1"),
            ("com.docker.network.container_iface_prefix", "en"),
        ] {
            let e = BridgeOptions::parse(&opts(&[bad])).unwrap_err();
            assert!(
                matches!(e.kind, berth_api::ErrorKind::InvalidArgument),
                "{bad:?}"
            );
        }
    }
}
