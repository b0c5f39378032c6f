//! Network events (`create`, `destroy`, `connect`, `disconnect`) with Docker's
//! attributes: `name`, `type` (the driver: `bridge`, `host`, `null`) and, for endpoints,
//! `container`.

use std::collections::BTreeMap;

use super::{uses_bridge, NetworkService};
use crate::containers::record::ContainerRecord;
use crate::events::EventType;

impl NetworkService {
    /// One network event; `container` is set for `connect` and `disconnect`.
    pub fn emit_network_event(
        &self,
        action: &str,
        id: &str,
        name: &str,
        driver: &str,
        container: Option<&str>,
    ) {
        let mut a = BTreeMap::new();
        a.insert("name".to_string(), name.to_string());
        a.insert("type".to_string(), driver.to_string());
        if let Some(c) = container {
            a.insert("container".to_string(), c.to_string());
        }
        self.events.emit(EventType::Network, action, id, a);
    }

    /// The networks the container is on, as `(ID, name, driver)`: the one it was created
    /// on (unless disconnected from it) and those added with `network connect`.
    fn container_networks(&self, rec: &ContainerRecord) -> Vec<(String, String, String)> {
        let mode = rec.host_config.network_mode.as_str();
        match mode {
            "host" => return vec![(self.predefined_id("host"), "host".into(), "host".into())],
            "none" => return vec![(self.predefined_id("none"), "none".into(), "null".into())],
            _ if mode.starts_with("container:") => return Vec::new(),
            _ if !self.enabled => return Vec::new(),
            _ => {}
        }
        let st = self.lock();
        let mut out = Vec::new();
        if !st.endpoints.config(&rec.id).disconnected {
            if uses_bridge(rec) {
                out.push((
                    self.predefined_id("bridge"),
                    "bridge".into(),
                    "bridge".into(),
                ));
            } else if let Some(n) = Self::find_network(&st, mode) {
                out.push((n.id.clone(), n.name.clone(), "bridge".into()));
            }
        }
        for x in st.endpoints.extras_of(&rec.id) {
            if let Some(n) = st.networks.get(&x.network) {
                out.push((n.id.clone(), n.name.clone(), "bridge".into()));
            }
        }
        out
    }

    /// `connect` (at start) or `disconnect` (at exit) for each network of the container.
    pub fn emit_endpoint_events(&self, rec: &ContainerRecord, action: &str) {
        for (id, name, driver) in self.container_networks(rec) {
            self.emit_network_event(action, &id, &name, &driver, Some(&rec.id));
        }
    }
}
