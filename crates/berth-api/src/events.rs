//! `GET /events`: one JSON object per event (moby `api/types/events.Message`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Who an event is about: its ID and Docker's attributes (name, image, labels, …).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventActor {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event as `GET /events` streams it. `status`, `id` and `from` are the legacy
/// fields Docker still fills for container and image events.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventMessage {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type", default)]
    pub typ: String,
    #[serde(rename = "Action", default)]
    pub action: String,
    #[serde(rename = "Actor", default)]
    pub actor: EventActor,
    #[serde(default)]
    pub scope: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub time: i64,
    #[serde(rename = "timeNano", default, skip_serializing_if = "is_zero")]
    pub time_nano: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_event_round_trips_in_dockers_field_order() {
        let json = r#"{"status":"start","id":"abc","from":"busybox","Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"image":"busybox","name":"web"}},"scope":"local","time":1700000000,"timeNano":1700000000123456789}"#;
        let m: EventMessage = crate::round_trip(json);
        assert_eq!(m.actor.attributes["name"], "web");
    }

    #[test]
    fn a_network_event_has_no_legacy_fields() {
        let json = r#"{"Type":"network","Action":"create","Actor":{"ID":"n1","Attributes":{"name":"front","type":"bridge"}},"scope":"local","time":1,"timeNano":1000000001}"#;
        crate::round_trip::<EventMessage>(json);
    }
}
