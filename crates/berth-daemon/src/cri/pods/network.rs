//! The pod network: a Berth bridge network, `berth-cri`, made on first use with a
//! subnet of its own (from the daemon's address pools), labelled so that its
//! containers get no embedded DNS server ([`crate::network::OWN_DNS_LABEL`]).

use std::collections::BTreeMap;

use berth_api::ErrorKind;

use crate::error::ApiResult;
use crate::network::{NetworkService, NetworkSpec, OWN_DNS_LABEL};

/// The network pods get their addresses on.
pub const POD_NETWORK: &str = "berth-cri";

/// Makes the pod network unless it exists.
pub fn ensure(net: &NetworkService) -> ApiResult<()> {
    match net.inspect_network(POD_NETWORK, &|_| None) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let spec = NetworkSpec {
        name: POD_NETWORK.into(),
        labels: BTreeMap::from([(OWN_DNS_LABEL.to_string(), "true".to_string())]),
        check_duplicate: true,
        ..Default::default()
    };
    match net.create_network(spec) {
        Ok(_) => Ok(()),
        // made by a RunPodSandbox running at the same time
        Err(e) if e.kind == ErrorKind::Conflict => Ok(()),
        Err(e) => Err(e),
    }
}
