//! The rows Docker's formatters build for `ps`, `images` and `history`: one JSON object
//! per row with the fields templates can name, rendered the way docker/cli renders them.

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};

use crate::units::{go_time_string, human_size, human_size_precision, since_unix};

/// `ps` default table.
pub const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
/// `images` default table.
pub const IMAGES_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
/// `images --digests` default table.
pub const IMAGES_DIGESTS_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
/// `history` default table.
pub const HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

/// Column titles of `ps`.
pub fn ps_headers() -> Json {
    json!({"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
        "Names": "NAMES", "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS", "Networks": "NETWORKS",
        "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM"})
}

/// Column titles of `images`.
pub fn images_headers() -> Json {
    json!({"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
        "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"})
}

/// Column titles of `history` (`CREATED AT` for the date column without `-H`).
pub fn history_headers(human: bool) -> Json {
    json!({"ID": "IMAGE", "CreatedSince": if human { "CREATED" } else { "CREATED AT" }, "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
        "Size": "SIZE", "Comment": "COMMENT"})
}

/// docker/cli `TruncateID`: drops the algorithm and keeps 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, h)| h).unwrap_or(id);
    id.chars().take(12).collect()
}

/// docker/cli `Ellipsis`: cuts to `max` columns, the last one being `…`.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn s<'a>(v: &'a Json, k: &str) -> &'a str {
    v.get(k).and_then(Json::as_str).unwrap_or("")
}

fn i(v: &Json, k: &str) -> i64 {
    v.get(k).and_then(Json::as_i64).unwrap_or(0)
}

/// Docker's short, familiar form of an image reference: no default registry, no digest.
pub fn familiar_image(image: &str) -> String {
    let no_digest = image.split('@').next().unwrap_or(image);
    let short = no_digest
        .strip_prefix("docker.io/library/")
        .or_else(|| no_digest.strip_prefix("docker.io/"))
        .unwrap_or(no_digest);
    short.to_string()
}

/// `PORTS`: `0.0.0.0:8080->80/tcp, 443/tcp`.
pub fn display_ports(ports: &[Json]) -> String {
    let mut items: Vec<(String, u64, String)> = ports
        .iter()
        .map(|p| {
            let private = p.get("PrivatePort").and_then(Json::as_u64).unwrap_or(0);
            let public = p.get("PublicPort").and_then(Json::as_u64).unwrap_or(0);
            let proto = p.get("Type").and_then(Json::as_str).unwrap_or("tcp");
            let ip = s(p, "IP");
            let text = if public != 0 {
                let host = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                format!("{host}:{public}->{private}/{proto}")
            } else {
                format!("{private}/{proto}")
            };
            (ip.to_string(), private, text)
        })
        .collect();
    items.sort();
    items.dedup_by(|a, b| a.2 == b.2);
    items
        .into_iter()
        .map(|(_, _, t)| t)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The last line of every prune report: `Total reclaimed space: 2.048kB` from the
/// answer's `SpaceReclaimed`.
pub fn reclaimed_space_line(space_reclaimed: u64) -> String {
    format!(
        "Total reclaimed space: {}\n",
        human_size(space_reclaimed as f64)
    )
}

/// A formatter row under construction: a field is computed only when the template can
/// use it (`want`), so the default tables over thousands of rows skip the rest.
struct RowBuilder<'a> {
    map: serde_json::Map<String, Json>,
    want: &'a dyn Fn(&str) -> bool,
}

impl<'a> RowBuilder<'a> {
    fn new(want: &'a dyn Fn(&str) -> bool) -> Self {
        RowBuilder {
            map: serde_json::Map::new(),
            want,
        }
    }

    fn put(&mut self, key: &str, value: impl FnOnce() -> Json) {
        if (self.want)(key) {
            self.map.insert(key.to_string(), value());
        }
    }

    fn done(self) -> Json {
        Json::Object(self.map)
    }
}

/// Every field: for templates that are more than plain `{{.Field}}`s.
pub fn all_fields(_: &str) -> bool {
    true
}

/// One `ps` row from a `GET /containers/json` entry, with the fields `want` asks for.
pub fn container_row(
    c: &Json,
    trunc: bool,
    now: DateTime<Utc>,
    want: &dyn Fn(&str) -> bool,
) -> Json {
    let mut row = RowBuilder::new(want);
    let id = s(c, "Id");
    let created = i(c, "Created");
    row.put("ID", || {
        Json::from(if trunc {
            truncate_id(id)
        } else {
            id.to_string()
        })
    });
    row.put("Image", || {
        let image = s(c, "Image");
        Json::from(if image.is_empty() {
            "<no image>".to_string()
        } else if trunc
            && (truncate_id(s(c, "ImageID")) == truncate_id(image)
                && image.len() >= 12
                && !image.contains('/'))
        {
            truncate_id(image)
        } else if trunc {
            familiar_image(image)
        } else {
            image.to_string()
        })
    });
    row.put("Command", || {
        let command = s(c, "Command");
        Json::from(berth_api::units::go_quote(&if trunc {
            ellipsis(command, 20)
        } else {
            command.to_string()
        }))
    });
    row.put("CreatedAt", || Json::from(go_time_string(created)));
    row.put("RunningFor", || Json::from(since_unix(created, now)));
    row.put("Ports", || {
        Json::from(
            c.get("Ports")
                .and_then(Json::as_array)
                .map(|p| display_ports(p))
                .unwrap_or_default(),
        )
    });
    row.put("State", || Json::from(s(c, "State")));
    row.put("Status", || Json::from(s(c, "Status")));
    row.put("Size", || {
        let size_rw = i(c, "SizeRw");
        let size_root = i(c, "SizeRootFs");
        Json::from(if size_root > 0 {
            format!(
                "{} (virtual {})",
                human_size_precision(size_rw as f64, 3),
                human_size_precision(size_root as f64, 3)
            )
        } else {
            human_size_precision(size_rw as f64, 3)
        })
    });
    row.put("Names", || {
        let names: Vec<String> = c
            .get("Names")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
                    .collect()
            })
            .unwrap_or_default();
        let names = if trunc {
            names
                .iter()
                .find(|n| !n.contains('/'))
                .map(|n| vec![n.clone()])
                .unwrap_or(names)
        } else {
            names
        };
        Json::from(names.join(","))
    });
    row.put("Labels", || {
        let mut labels: Vec<(String, String)> = c
            .get("Labels")
            .and_then(Json::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        labels.sort();
        Json::from(
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        )
    });
    row.put("Mounts", || {
        let mounts: Vec<String> = c
            .get("Mounts")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .map(|m| {
                        let name = if s(m, "Name").is_empty() {
                            s(m, "Source")
                        } else {
                            s(m, "Name")
                        };
                        if trunc {
                            ellipsis(name, 15)
                        } else {
                            name.to_string()
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Json::from(mounts.join(","))
    });
    row.put("Networks", || {
        let mut networks: Vec<String> = c
            .pointer("/NetworkSettings/Networks")
            .and_then(Json::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        networks.sort();
        Json::from(networks.join(","))
    });
    row.put("LocalVolumes", || {
        let n = c
            .get("Mounts")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter(|m| s(m, "Driver") == "local").count())
            .unwrap_or(0);
        Json::from(n.to_string())
    });
    row.put("Platform", || Json::Null);
    row.put("_labels", || c.get("Labels").cloned().unwrap_or(Json::Null));
    row.done()
}

fn split_repo_tag(r: &str) -> Option<(String, String)> {
    let (name, tag) = r.rsplit_once(':')?;
    if tag.contains('/') {
        return None;
    }
    Some((familiar_image(name), tag.to_string()))
}

/// The `images` rows of one `GET /images/json` entry: one per repository and tag (and
/// digest with `--digests`), or a single `<none>` row for a dangling image.
pub fn image_rows(
    img: &Json,
    trunc: bool,
    digests: bool,
    now: DateTime<Utc>,
    want: &dyn Fn(&str) -> bool,
) -> Vec<Json> {
    let strs = |k: &str| -> Vec<String> {
        img.get(k)
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let tags: Vec<String> = strs("RepoTags")
        .into_iter()
        .filter(|t| t != "<none>:<none>")
        .collect();
    let repo_digests: Vec<String> = strs("RepoDigests")
        .into_iter()
        .filter(|t| t != "<none>@<none>")
        .collect();
    let mut pairs: Vec<(String, String, String)> = Vec::new();
    if tags.is_empty() && repo_digests.is_empty() {
        pairs.push(("<none>".into(), "<none>".into(), "<none>".into()));
    } else {
        let mut by_repo: std::collections::BTreeMap<String, (Vec<String>, Vec<String>)> =
            Default::default();
        for t in &tags {
            if let Some((repo, tag)) = split_repo_tag(t) {
                by_repo.entry(repo).or_default().0.push(tag);
            }
        }
        for d in &repo_digests {
            if let Some((name, dg)) = d.split_once('@') {
                by_repo
                    .entry(familiar_image(name))
                    .or_default()
                    .1
                    .push(dg.to_string());
            }
        }
        for (repo, (tags, dgs)) in by_repo {
            if tags.is_empty() {
                if digests {
                    for d in &dgs {
                        pairs.push((repo.clone(), "<none>".into(), d.clone()));
                    }
                } else {
                    pairs.push((repo.clone(), "<none>".into(), String::new()));
                }
                continue;
            }
            for tag in &tags {
                if !digests || dgs.is_empty() {
                    pairs.push((repo.clone(), tag.clone(), "<none>".into()));
                } else {
                    for d in &dgs {
                        pairs.push((repo.clone(), tag.clone(), d.clone()));
                    }
                }
            }
        }
    }
    let id = s(img, "Id");
    let created = i(img, "Created");
    let size = i(img, "Size");
    let shared = img.get("SharedSize").and_then(Json::as_i64).unwrap_or(-1);
    let containers = img.get("Containers").and_then(Json::as_i64).unwrap_or(-1);
    pairs
        .into_iter()
        .map(|(repo, tag, digest)| {
            let mut row = RowBuilder::new(want);
            row.put("ID", || {
                Json::from(if trunc {
                    truncate_id(id)
                } else {
                    id.to_string()
                })
            });
            row.put("Repository", || Json::from(repo));
            row.put("Tag", || Json::from(tag));
            row.put("Digest", || Json::from(digest));
            row.put("CreatedSince", || Json::from(since_unix(created, now)));
            row.put("CreatedAt", || Json::from(go_time_string(created)));
            row.put("Size", || Json::from(human_size_precision(size as f64, 3)));
            row.put("VirtualSize", || Json::from(human_size(size as f64)));
            row.put("SharedSize", || {
                Json::from(if shared == -1 {
                    "N/A".to_string()
                } else {
                    human_size(shared as f64)
                })
            });
            row.put("UniqueSize", || {
                Json::from(if shared == -1 || size == -1 {
                    "N/A".to_string()
                } else {
                    human_size((size - shared) as f64)
                })
            });
            row.put("Containers", || {
                Json::from(if containers == -1 {
                    "N/A".to_string()
                } else {
                    containers.to_string()
                })
            });
            row.done()
        })
        .collect()
}

/// One `history` row.
pub fn history_row(h: &Json, trunc: bool, human: bool, now: DateTime<Utc>) -> Json {
    let id = s(h, "Id");
    let created = i(h, "Created");
    let created_by = s(h, "CreatedBy").replace('\t', " ");
    let created_at = chrono::DateTime::<Utc>::from_timestamp(created, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    json!({
        "ID": if trunc && id != "<missing>" { truncate_id(id) } else { id.to_string() },
        "CreatedSince": if human { since_unix(created, now) } else { created_at.clone() },
        "CreatedAt": created_at,
        "CreatedBy": if trunc { ellipsis(&created_by, 45) } else { created_by },
        "Size": if human { human_size_precision(i(h, "Size") as f64, 3) } else { i(h, "Size").to_string() },
        "Comment": s(h, "Comment"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Format;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_100, 0).unwrap()
    }

    fn container() -> Json {
        json!({"Id": "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899",
            "Names": ["/web"], "Image": "busybox", "ImageID": "sha256:abcdef0123456789",
            "Command": "sh -c 'while true; do sleep 1; done'", "Created": 1_700_000_095,
            "Ports": [], "Labels": {"b": "2", "a": "1"}, "State": "running", "Status": "Up 4 seconds",
            "SizeRw": 0, "SizeRootFs": 4_264_000})
    }

    #[test]
    fn ps_table_matches_docker() {
        let f = Format::parse_rows(PS_TABLE).unwrap();
        let out = f
            .render(
                &[container_row(&container(), true, now(), &all_fields)],
                &ps_headers(),
            )
            .unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS     NAMES\n\
             3f4e5d6c7b8a   busybox   \"sh -c 'while true; …\"   5 seconds ago   Up 4 seconds             web\n"
        );
    }

    #[test]
    fn ps_empty_prints_only_the_header() {
        let f = Format::parse_rows(PS_TABLE).unwrap();
        assert_eq!(
            f.render(&[], &ps_headers()).unwrap(),
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
    }

    #[test]
    fn ps_fields() {
        let row = container_row(&container(), true, now(), &all_fields);
        assert_eq!(row["Size"], "0B (virtual 4.26MB)");
        assert_eq!(row["Labels"], "a=1,b=2");
        let full = container_row(&container(), false, now(), &all_fields);
        assert_eq!(full["Command"], "\"sh -c 'while true; do sleep 1; done'\"");
        assert_eq!(full["ID"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn ports_display() {
        let ports = vec![
            json!({"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}),
            json!({"PrivatePort": 443, "Type": "tcp"}),
        ];
        assert_eq!(display_ports(&ports), "443/tcp, 0.0.0.0:8080->80/tcp");
    }

    #[test]
    fn images_table_matches_docker() {
        let img = json!({"Id": "sha256:0123456789abcdef0123456789abcdef", "RepoTags": ["busybox:latest", "imported:v1"],
            "RepoDigests": [], "Created": 1_700_000_090, "Size": 4_264_000, "SharedSize": -1, "Containers": -1});
        let dangling = json!({"Id": "sha256:fedcba9876543210", "RepoTags": [], "Created": 1_699_999_000, "Size": 7_500});
        // Rows with only the fields the default table uses, as `images` builds them.
        let table = Format::parse_rows(IMAGES_TABLE).unwrap();
        let want = |f: &str| table.wants(f);
        let mut rows = image_rows(&img, true, false, now(), &want);
        rows.extend(image_rows(&dangling, true, false, now(), &want));
        assert!(rows[0].get("CreatedAt").is_none() && rows[0].get("Size").is_some());
        let out = table.render(&rows, &images_headers()).unwrap();
        assert_eq!(
            out,
            "REPOSITORY   TAG       IMAGE ID       CREATED          SIZE\n\
             busybox      latest    0123456789ab   10 seconds ago   4.26MB\n\
             imported     v1        0123456789ab   10 seconds ago   4.26MB\n\
             <none>       <none>    fedcba987654   18 minutes ago   7.5kB\n"
        );
    }

    #[test]
    fn images_digests_column() {
        let img = json!({"Id": "sha256:0123456789abcdef", "RepoTags": ["docker.io/library/busybox:1"],
            "RepoDigests": ["busybox@sha256:aaaa"], "Created": 1_700_000_090, "Size": 0});
        let rows = image_rows(&img, true, true, now(), &all_fields);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["Repository"], "busybox");
        assert_eq!(rows[0]["Digest"], "sha256:aaaa");
    }

    #[test]
    fn quoting_and_ellipsis() {
        assert_eq!(
            berth_api::units::go_quote("a\"b\\c\n"),
            "\"a\\\"b\\\\c\\n\""
        );
        assert_eq!(
            ellipsis("abcdefghijklmnopqrstuvwxyz", 20),
            "abcdefghijklmnopqrs…"
        );
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(truncate_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}
