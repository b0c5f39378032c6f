//! The daemon's nftables table and its published ports (see [`berth_net::nft`]).
//!
//! The whole table is rendered from the state and replaced at daemon start, when a network
//! comes or goes and when a container leaves its network ([`NetworkService::sync_rules`]).
//! A start adds its published ports' map elements in one small transaction under the state
//! lock ([`NetworkService::add_ports`]; an add costs the kernel next to nothing). A stop's
//! deletes are queued under the state lock and applied off it ([`NetworkService::
//! flush_port_deletes`]): a delete costs the kernel an RCU grace period per transaction,
//! so concurrent stops share one, and no start waits for them, unless it adds an element a
//! queued delete is about (then the queue goes first). Every change is made or queued
//! under the state lock, so the table always follows the state's order.

use std::net::Ipv4Addr;
use std::sync::Mutex;

use berth_net::nft;
use berth_net::ports::PortMapping;

use super::bridge_options::BridgeOptions;
use super::{net_err, NetworkService, State, UserNetwork};
use crate::error::ApiResult;

/// Queued deletes of published ports' elements.
#[derive(Default)]
pub(super) struct PortRules {
    pending: Mutex<Pending>,
    /// Held while queued deletes are applied, or the table replaced.
    applying: Mutex<()>,
}

#[derive(Default)]
struct Pending {
    /// (element keys, script) of each stop, in the order queued (under the state lock).
    queued: Vec<(Vec<String>, String)>,
    /// The element keys of the deletes being applied.
    applying: Vec<String>,
}

impl Pending {
    /// Whether a delete of one of `keys` is queued or being applied.
    fn touches(&self, keys: &[String]) -> bool {
        self.queued
            .iter()
            .flat_map(|(k, _)| k)
            .chain(&self.applying)
            .any(|k| keys.contains(k))
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NetworkService {
    /// Replaces this daemon's nftables table with the rules for the current endpoints
    /// (call under the state lock, which orders every change of the table). Queued
    /// deletes are dropped: the state they came from is rendered.
    pub(super) fn sync_rules(&self, st: &State) -> ApiResult<()> {
        if !self.enabled {
            return Ok(());
        }
        let _t = berth_net::timing::Step::new("net.sync_rules");
        let _applying = locked(&self.port_rules.applying);
        locked(&self.port_rules.pending).queued.clear();
        let published_on = |net: &str| st.endpoints.published_on(net);
        let mut rules = vec![nft::BridgeRules {
            bridge: self.bridge.clone(),
            subnet: self.subnet,
            internal: false,
            masquerade: true,
            published: published_on(""),
        }];
        let mut nets: Vec<&UserNetwork> = st.networks.values().collect();
        nets.sort_by(|a, b| a.bridge.cmp(&b.bridge));
        for n in nets {
            let Ok(subnet) = n.subnet.parse() else {
                continue;
            };
            let masquerade = BridgeOptions::parse(&n.options).map_or(true, |o| o.masquerade);
            rules.push(nft::BridgeRules {
                bridge: n.bridge.clone(),
                subnet,
                internal: n.internal,
                masquerade,
                published: published_on(&n.id),
            });
        }
        nft::apply(&nft::render(&self.table, &rules)).map_err(net_err)
    }

    /// The bridge of network `network` (empty: the default bridge).
    fn bridge_of<'a>(&'a self, st: &'a State, network: &str) -> Option<&'a str> {
        if network.is_empty() {
            Some(self.bridge.as_str())
        } else {
            st.networks.get(network).map(|n| n.bridge.as_str())
        }
    }

    /// Adds the nftables elements of the published ports `ports` of the container at `ip`
    /// on network `network` (empty: the default bridge) in one small transaction (call
    /// under the state lock). Should the table not take them (someone changed it), the
    /// whole table is rebuilt instead.
    pub(super) fn add_ports(
        &self,
        st: &State,
        network: &str,
        ip: Ipv4Addr,
        ports: &[PortMapping],
    ) -> ApiResult<()> {
        if !self.enabled || ports.is_empty() {
            return Ok(());
        }
        let _t = berth_net::timing::Step::new("net.add_ports");
        let Some(bridge) = self.bridge_of(st, network) else {
            return self.sync_rules(st);
        };
        let published: Vec<_> = ports.iter().map(|m| (ip, m.clone())).collect();
        let keys = nft::element_keys(bridge, &published);
        // a delete of one of these elements (its host port's last user), queued or being
        // applied, goes first
        let touched = locked(&self.port_rules.pending).touches(&keys);
        if touched {
            self.flush_port_deletes();
        }
        let script = nft::port_elements(&self.table, bridge, &published, true);
        if let Err(e) = nft::apply(&script) {
            tracing::warn!(error = %e, "adding published ports; rebuilding the nftables table");
            return self.sync_rules(st);
        }
        Ok(())
    }

    /// Queues the deletes of the nftables elements of the published ports `ports` of the
    /// container at `ip` on `network` (call under the state lock), for
    /// [`Self::flush_port_deletes`].
    pub(super) fn queue_port_deletes(
        &self,
        st: &State,
        network: &str,
        ip: Ipv4Addr,
        ports: &[PortMapping],
    ) {
        if !self.enabled || ports.is_empty() {
            return;
        }
        // a network gone meanwhile took its maps with it
        let Some(bridge) = self.bridge_of(st, network) else {
            return;
        };
        let published: Vec<_> = ports.iter().map(|m| (ip, m.clone())).collect();
        let keys = nft::element_keys(bridge, &published);
        let script = nft::port_elements(&self.table, bridge, &published, false);
        locked(&self.port_rules.pending).queued.push((keys, script));
    }

    /// Applies every queued delete in one transaction (call off the state lock). Returns
    /// once those queued before the call are applied: by this call or by one that was
    /// applying them meanwhile.
    pub(super) fn flush_port_deletes(&self) {
        let _applying = locked(&self.port_rules.applying);
        let queued = {
            let mut p = locked(&self.port_rules.pending);
            let queued = std::mem::take(&mut p.queued);
            p.applying = queued.iter().flat_map(|(k, _)| k.clone()).collect();
            queued
        };
        if queued.is_empty() {
            return;
        }
        let _t = berth_net::timing::Step::new("net.delete_ports");
        let script: String = queued.iter().map(|(_, s)| s.as_str()).collect();
        if nft::apply(&script).is_err() {
            // one at a time: a delete the table refuses (its element holds another
            // container's address) is the only one left out
            for (keys, s) in &queued {
                if let Err(e) = nft::apply(s) {
                    tracing::warn!(elements = ?keys, error = %e, "deleting published ports");
                }
            }
        }
        locked(&self.port_rules.pending).applying.clear();
    }
}
