//! Network models: create, inspect and list, connect and disconnect, prune (moby
//! `api/types/network` and `types.NetworkResource`), and the endpoint settings that
//! container create bodies and container inspect carry.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::container::null_as_default;

/// The body of `POST /networks/create` (moby `types.NetworkCreateRequest`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateRequest {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_duplicate: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub driver: String,
    #[serde(deserialize_with = "null_as_default")]
    pub internal: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attachable: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub ingress: bool,
    #[serde(rename = "IPAM", skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    #[serde(rename = "EnableIPv6", deserialize_with = "null_as_default")]
    pub enable_ipv6: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// `IPAM` of a network (moby `network.IPAM`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    #[serde(deserialize_with = "null_as_default")]
    pub driver: String,
    /// `null` on the predefined networks.
    pub options: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "null_as_default")]
    pub config: Vec<IpamConfig>,
}

/// One address pool of a network (moby `network.IPAMConfig`); Docker leaves out the
/// fields that are empty, and docker-py sends `null` for them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub subnet: String,
    #[serde(
        rename = "IPRange",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub ip_range: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub gateway: String,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub auxiliary_addresses: BTreeMap<String, String>,
}

/// `POST /networks/create` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateResponse {
    pub id: String,
    pub warning: String,
}

/// `GET /networks/{id}` and one entry of `GET /networks` (moby `types.NetworkResource`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkResource {
    pub name: String,
    pub id: String,
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigReference,
    pub config_only: bool,
    /// Container ID → its endpoint on this network.
    #[serde(deserialize_with = "null_as_default")]
    pub containers: BTreeMap<String, EndpointResource>,
    #[serde(deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// `ConfigFrom` of a network: the config-only network it was made from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConfigReference {
    pub network: String,
}

/// One container on a network, as network inspect lists it (moby `EndpointResource`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointResource {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// The body of `POST /networks/{id}/connect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnectRequest {
    pub container: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_config: Option<EndpointSettings>,
}

/// The body of `POST /networks/{id}/disconnect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkDisconnectRequest {
    pub container: String,
    #[serde(deserialize_with = "null_as_default")]
    pub force: bool,
}

/// `POST /networks/prune` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkPruneResponse {
    pub networks_deleted: Option<Vec<String>>,
}

/// `NetworkingConfig` of a container create body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    /// Network name → the container's endpoint settings on it.
    #[serde(deserialize_with = "null_as_default")]
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

/// A container's endpoint on one network (moby `network.EndpointSettings`), in create
/// and connect bodies and in container inspect's `NetworkSettings.Networks`. Go decodes
/// `null` into a plain field as "leave it", so every field here takes `null` too.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    pub links: Option<Vec<String>>,
    pub aliases: Option<Vec<String>>,
    #[serde(deserialize_with = "null_as_default")]
    pub mac_address: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
    #[serde(rename = "EndpointID", deserialize_with = "null_as_default")]
    pub endpoint_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub gateway: String,
    #[serde(rename = "IPAddress", deserialize_with = "null_as_default")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen", deserialize_with = "null_as_default")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway", deserialize_with = "null_as_default")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address", deserialize_with = "null_as_default")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen", deserialize_with = "null_as_default")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
}

/// `NetworkSettings` of container inspect (moby `types.NetworkSettings`), in the field
/// order of API 1.44+.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    pub sandbox_key: String,
    /// `"80/tcp"` → its host bindings (`null` when exposed but not published).
    pub ports: Value,
    pub hairpin_mode: bool,
    #[serde(rename = "LinkLocalIPv6Address")]
    pub link_local_ipv6_address: String,
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    pub link_local_ipv6_prefix_len: i64,
    #[serde(rename = "SecondaryIPAddresses")]
    pub secondary_ip_addresses: Option<Vec<Value>>,
    #[serde(rename = "SecondaryIPv6Addresses")]
    pub secondary_ipv6_addresses: Option<Vec<Value>>,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    pub mac_address: String,
    /// Network name → the container's endpoint on it.
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// `NetworkSettings` of a `GET /containers/json` row.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct SummaryNetworkSettings {
    #[serde(deserialize_with = "null_as_default")]
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// `IPAMConfig` of an endpoint: the addresses a client asks for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EndpointIpamConfig {
    #[serde(
        rename = "IPv4Address",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub ipv4_address: String,
    #[serde(
        rename = "IPv6Address",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub ipv6_address: String,
    #[serde(
        rename = "LinkLocalIPs",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub link_local_ips: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::round_trip;

    // Captured from dockerd 20.10.
    const INSPECT: &str = r#"{"Name":"typedref1","Id":"0211f20d8653f332a7e85abf7caee62bb8119d22318a4a14b0fecfcea7acdbdc","Created":"2026-12-03T09:35:31.428377904Z","Scope":"local","Driver":"bridge","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.199.0.0/24","Gateway":"10.199.0.1"}]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigFrom":{"Network":""},"ConfigOnly":false,"Containers":{"a4017f16ba2fa5efb632b614cef2d82d19ec9809c1357c6c282ea3914c52203f":{"Name":"typedrefc","EndpointID":"87a0da248125f5a1d29ff4bb3860ed085ce00934096b4416acd0836530b75de4","MacAddress":"02:42:0a:c7:00:02","IPv4Address":"10.199.0.2/24","IPv6Address":""}},"Options":{},"Labels":{"a":"b"}}"#;
    const BRIDGE: &str = r#"{"Name":"bridge","Id":"7302d6e5806bd9c647368de9f8b1127392828b2575ed3a06ed032f76735ef3da","Created":"2026-12-03T09:35:21.274037514Z","Scope":"local","Driver":"bridge","EnableIPv6":false,"IPAM":{"Driver":"default","Options":null,"Config":[{"Subnet":"172.30.0.0/16","Gateway":"172.30.0.1"}]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigFrom":{"Network":""},"ConfigOnly":false,"Containers":{},"Options":{"com.docker.network.bridge.default_bridge":"true","com.docker.network.bridge.enable_icc":"true","com.docker.network.bridge.enable_ip_masquerade":"false","com.docker.network.bridge.host_binding_ipv4":"0.0.0.0","com.docker.network.bridge.name":"anchor0","com.docker.network.driver.mtu":"1500"},"Labels":{}}"#;

    #[test]
    fn inspect_round_trips_dockers_json() {
        let n: NetworkResource = round_trip(INSPECT);
        assert_eq!(n.ipam.config[0].gateway, "10.199.0.1");
        let e = &n.containers["a4017f16ba2fa5efb632b614cef2d82d19ec9809c1357c6c282ea3914c52203f"];
        assert_eq!(e.ipv4_address, "10.199.0.2/24");
        assert_eq!(n.labels["a"], "b");
        let b: NetworkResource = round_trip(BRIDGE);
        assert_eq!(b.ipam.options, None);
        let list: Vec<NetworkResource> = round_trip(&format!("[{BRIDGE},{INSPECT}]"));
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn create_request_reads_the_docker_clis_body() {
        // What the Docker CLI 28 sends for `network create --subnet … --gateway … --label q=r`.
        let r: NetworkCreateRequest =
            serde_json::from_str(include_str!("../testdata/docker-cli-network-create.json"))
                .unwrap();
        assert_eq!(r.name, "typedref2");
        assert_eq!(r.check_duplicate, Some(true));
        let ipam = r.ipam.clone().unwrap();
        assert_eq!(ipam.config[0].subnet, "10.198.0.0/24");
        assert_eq!(r.labels["q"], "r");
        let again: NetworkCreateRequest =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(again, r);
        // docker-py sends nulls for what it leaves out.
        let r: NetworkCreateRequest = serde_json::from_str(
            r#"{"Name":"n","Labels":null,"Options":null,"IPAM":null,"EnableIPv6":null}"#,
        )
        .unwrap();
        assert!(r.labels.is_empty() && r.ipam.is_none() && !r.enable_ipv6);
        // docker-py's IPAMPool sends every field, null when not given.
        let r: NetworkCreateRequest = serde_json::from_str(
            r#"{"Name":"n","IPAM":{"Driver":"default","Config":[{"Subnet":"10.1.0.0/16","IPRange":null,"Gateway":null,"AuxiliaryAddresses":null}],"Options":null}}"#,
        )
        .unwrap();
        let pool = &r.ipam.unwrap().config[0];
        assert_eq!(
            (pool.subnet.as_str(), pool.gateway.as_str()),
            ("10.1.0.0/16", "")
        );
    }

    #[test]
    fn create_response_and_prune_round_trip() {
        round_trip::<NetworkCreateResponse>(
            r#"{"Id":"0211f20d8653f332a7e85abf7caee62bb8119d22318a4a14b0fecfcea7acdbdc","Warning":""}"#,
        );
        round_trip::<NetworkPruneResponse>(r#"{"NetworksDeleted":null}"#);
        round_trip::<NetworkPruneResponse>(r#"{"NetworksDeleted":["a","b"]}"#);
    }

    #[test]
    fn connect_and_disconnect_bodies() {
        // The Docker CLI 28's `network connect --alias z`.
        let c: NetworkConnectRequest = serde_json::from_str(
            r#"{"Container":"typedrefc","EndpointConfig":{"IPAMConfig":{},"Links":null,"Aliases":["z"],"MacAddress":"","DriverOpts":{},"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}"#,
        )
        .unwrap();
        let ep = c.endpoint_config.unwrap();
        assert_eq!(ep.aliases, Some(vec!["z".to_string()]));
        assert_eq!(ep.ipam_config, Some(EndpointIpamConfig::default()));
        let ipam: EndpointIpamConfig = serde_json::from_str(
            r#"{"IPv4Address":"172.28.5.24","IPv6Address":null,"LinkLocalIPs":null}"#,
        )
        .unwrap();
        assert_eq!(ipam.ipv4_address, "172.28.5.24");
        assert_eq!(
            serde_json::to_string(&ipam).unwrap(),
            r#"{"IPv4Address":"172.28.5.24"}"#
        );
        let d: NetworkDisconnectRequest = round_trip(r#"{"Container":"typedrefc","Force":false}"#);
        assert!(!d.force);
    }

    #[test]
    fn endpoint_settings_round_trip_container_inspect() {
        // `NetworkSettings.Networks.typedref1` of a dockerd 20.10 container inspect, in
        // the field order of API 1.44+ (which added DNSNames).
        round_trip::<EndpointSettings>(
            r#"{"IPAMConfig":null,"Links":null,"Aliases":["al1","a4017f16ba2f"],"MacAddress":"02:42:0a:c7:00:02","DriverOpts":null,"NetworkID":"0211f20d8653f332a7e85abf7caee62bb8119d22318a4a14b0fecfcea7acdbdc","EndpointID":"87a0da248125f5a1d29ff4bb3860ed085ce00934096b4416acd0836530b75de4","Gateway":"10.199.0.1","IPAddress":"10.199.0.2","IPPrefixLen":24,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}"#,
        );
        round_trip::<NetworkingConfig>(r#"{"EndpointsConfig":{}}"#);
    }

    #[test]
    fn network_settings_round_trip_container_inspect() {
        // dockerd 20.10's, in the order of API 1.44+ (SandboxKey and Ports moved up).
        round_trip::<NetworkSettings>(
            r#"{"Bridge":"","SandboxID":"987ccf11e6bff59f2e62f2251f0eab62f935652b8654273c4db41a4c48844fe7","SandboxKey":"/run/docker-anchor/netns/987ccf11e6bf","Ports":{},"HairpinMode":false,"LinkLocalIPv6Address":"","LinkLocalIPv6PrefixLen":0,"SecondaryIPAddresses":null,"SecondaryIPv6Addresses":null,"EndpointID":"","Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","MacAddress":"","Networks":{"typedref1":{"IPAMConfig":null,"Links":null,"Aliases":["al1","a4017f16ba2f"],"MacAddress":"02:42:0a:c7:00:02","DriverOpts":null,"NetworkID":"0211f20d8653f332a7e85abf7caee62bb8119d22318a4a14b0fecfcea7acdbdc","EndpointID":"87a0da248125f5a1d29ff4bb3860ed085ce00934096b4416acd0836530b75de4","Gateway":"10.199.0.1","IPAddress":"10.199.0.2","IPPrefixLen":24,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}"#,
        );
        round_trip::<SummaryNetworkSettings>(r#"{"Networks":{}}"#);
    }
}
