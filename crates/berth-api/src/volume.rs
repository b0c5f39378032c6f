//! Volume models: create, inspect, list, prune (moby `api/types/volume`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::container::null_as_default;

/// The body of `POST /volumes/create` (moby `volume.CreateOptions`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreateRequest {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub driver: String,
    #[serde(deserialize_with = "null_as_default")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// `GET /volumes/{name}`, one entry of `GET /volumes`, and the `POST /volumes/create`
/// answer (moby `volume.Volume`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    pub created_at: String,
    pub driver: String,
    /// `null` when the volume was made without labels (an anonymous volume).
    pub labels: Option<BTreeMap<String, String>>,
    pub mountpoint: String,
    pub name: String,
    pub options: Option<BTreeMap<String, String>>,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<BTreeMap<String, Value>>,
    /// Only in `GET /system/df`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<VolumeUsageData>,
}

/// How much a volume holds and how many containers use it; -1 when not known.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeUsageData {
    pub size: i64,
    pub ref_count: i64,
}

/// `GET /volumes` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeListResponse {
    #[serde(deserialize_with = "null_as_default")]
    pub volumes: Vec<Volume>,
    pub warnings: Option<Vec<String>>,
}

/// `POST /volumes/prune` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumePruneResponse {
    pub volumes_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::round_trip;

    // Captured from dockerd 20.10.
    const NAMED: &str = r#"{"CreatedAt":"2026-12-03T09:35:31Z","Driver":"local","Labels":{"a":"b"},"Mountpoint":"/var/lib/docker-anchor/volumes/typedrefvol/_data","Name":"typedrefvol","Options":{"device":"tmpfs","type":"tmpfs"},"Scope":"local"}"#;
    const ANONYMOUS: &str = r#"{"CreatedAt":"2026-12-03T09:35:31Z","Driver":"local","Labels":null,"Mountpoint":"/var/lib/docker-anchor/volumes/0305b13519ea5ab20662c4b5b6970f5139e2b44e096fd351b4c46c339188cbd2/_data","Name":"0305b13519ea5ab20662c4b5b6970f5139e2b44e096fd351b4c46c339188cbd2","Options":null,"Scope":"local"}"#;

    #[test]
    fn inspect_and_list_round_trip_dockers_json() {
        let v: Volume = round_trip(NAMED);
        assert_eq!(v.options.unwrap()["type"], "tmpfs");
        let a: Volume = round_trip(ANONYMOUS);
        assert_eq!((a.labels, a.options), (None, None));
        let l: VolumeListResponse =
            round_trip(&format!(r#"{{"Volumes":[{NAMED}],"Warnings":null}}"#));
        assert_eq!(l.volumes[0].name, "typedrefvol");
    }

    #[test]
    fn usage_data_as_system_df_has_it() {
        let json = r#"{"CreatedAt":"2026-12-03T09:35:31Z","Driver":"local","Labels":{},"Mountpoint":"/m","Name":"v","Options":{},"Scope":"local","UsageData":{"Size":2048,"RefCount":1}}"#;
        let v: Volume = round_trip(json);
        assert_eq!(
            v.usage_data,
            Some(VolumeUsageData {
                size: 2048,
                ref_count: 1
            })
        );
    }

    #[test]
    fn create_request_reads_the_docker_clis_body() {
        // The Docker CLI 28's `volume create --label a=b -o type=tmpfs typedrefvol2`.
        let r: VolumeCreateRequest =
            serde_json::from_str(include_str!("../testdata/docker-cli-volume-create.json"))
                .unwrap();
        assert_eq!(r.name, "typedrefvol2");
        assert_eq!(r.driver_opts["type"], "tmpfs");
        assert_eq!(r.labels["a"], "b");
        let r: VolumeCreateRequest =
            serde_json::from_str(r#"{"Name":null,"DriverOpts":null,"Labels":null}"#).unwrap();
        assert_eq!(r, VolumeCreateRequest::default());
    }

    #[test]
    fn prune_response_round_trips() {
        round_trip::<VolumePruneResponse>(r#"{"VolumesDeleted":["a","b"],"SpaceReclaimed":2048}"#);
        round_trip::<VolumePruneResponse>(r#"{"VolumesDeleted":null,"SpaceReclaimed":0}"#);
    }
}
