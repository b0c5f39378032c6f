//! `GET /events`' `filters` and `since`/`until`, as moby's `daemon/events/filter.go` and
//! the system router read them.

use std::collections::BTreeMap;

use berth_api::EventMessage;
use chrono::{DateTime, Utc};

use crate::error::ApiError;

/// Docker's filters, key → values.
pub type Filters = BTreeMap<String, Vec<String>>;

/// The filter keys Docker's events endpoint knows.
const KNOWN: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// Refuses filter keys Docker does not know (dockerd 20.10 ignores them silently).
pub fn validate(f: &Filters) -> Result<(), ApiError> {
    match f.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(format!("invalid filter '{k}'"))),
        None => Ok(()),
    }
}

/// `filters.Args.ExactMatch`: no values for `key`, or one equal to `source`.
fn exact(f: &Filters, key: &str, source: &str) -> bool {
    f.get(key)
        .is_none_or(|vs| vs.is_empty() || vs.iter().any(|v| v == source))
}

/// `filters.Args.FuzzyMatch`: as [`exact`], or a value that prefixes `source`.
fn fuzzy(f: &Filters, key: &str, source: &str) -> bool {
    f.get(key)
        .is_none_or(|vs| vs.is_empty() || vs.iter().any(|v| source.starts_with(v.as_str())))
}

fn fuzzy_name(f: &Filters, key: &str, ev: &EventMessage) -> bool {
    let name = ev.actor.attributes.get("name").map_or("", String::as_str);
    fuzzy(f, key, &ev.actor.id) || fuzzy(f, key, name)
}

/// `reference.FamiliarName`: the repository without tag, digest or `docker.io/library/`.
fn strip_tag(image: &str) -> String {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    let repo = match no_digest[last_slash..].rfind(':') {
        Some(i) => &no_digest[..last_slash + i],
        None => no_digest,
    };
    repo.strip_prefix("docker.io/library/")
        .or_else(|| repo.strip_prefix("docker.io/"))
        .unwrap_or(repo)
        .to_string()
}

fn match_image(f: &Filters, ev: &EventMessage) -> bool {
    let attr = if ev.typ == "image" { "name" } else { "image" };
    let name = ev.actor.attributes.get(attr).map_or("", String::as_str);
    exact(f, "image", &ev.actor.id)
        || exact(f, "image", name)
        || exact(f, "image", &strip_tag(&ev.actor.id))
        || exact(f, "image", &strip_tag(name))
}

/// `filters.Args.MatchKVList`: every `label` value (`key` or `key=value`) is among the
/// attributes.
fn match_labels(f: &Filters, attrs: &BTreeMap<String, String>) -> bool {
    let Some(vs) = f.get("label").filter(|vs| !vs.is_empty()) else {
        return true;
    };
    vs.iter().all(|v| match v.split_once('=') {
        Some((k, want)) => attrs.get(k).is_some_and(|have| have == want),
        None => attrs.contains_key(v.as_str()),
    })
}

fn match_event(f: &Filters, action: &str) -> bool {
    // moby#25798: `health_status`, `exec_create` and `exec_start` match their
    // `…: details` forms.
    let fuzzy_actions = ["health_status", "exec_create", "exec_start"];
    let wants_fuzzy = f
        .get("event")
        .is_some_and(|vs| vs.iter().any(|v| fuzzy_actions.contains(&v.as_str())));
    if wants_fuzzy {
        fuzzy(f, "event", action)
    } else {
        exact(f, "event", action)
    }
}

/// The keys matched against the actor's ID or `name` attribute, whatever the event's
/// type (moby's `fuzzyMatchName`): `container=web` leaves out network events about `web`.
const NAME_KEYS: &[&str] = &[
    "daemon",
    "container",
    "plugin",
    "volume",
    "network",
    "node",
    "service",
    "secret",
    "config",
];

/// Whether `ev` passes every filter (values of one key are OR-ed, keys AND-ed; labels
/// AND-ed).
pub fn include(f: &Filters, ev: &EventMessage) -> bool {
    match_event(f, &ev.action)
        && exact(f, "type", &ev.typ)
        && exact(f, "scope", &ev.scope)
        && NAME_KEYS.iter().all(|k| fuzzy_name(f, k, ev))
        && match_image(f, ev)
        && match_labels(f, &ev.actor.attributes)
}

/// `since`/`until`: unix seconds with an optional fraction (what the CLI sends), an RFC
/// 3339 time, or a Go duration back from `now` (`10m`). "" is unset.
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let unix = berth_api::units::get_timestamp(s, now).map_err(ApiError::invalid)?;
    let (secs, frac) = unix.split_once('.').unwrap_or((&unix, ""));
    let bad = || ApiError::invalid(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    DateTime::from_timestamp(secs, nanos)
        .map(Some)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::EventActor;

    fn ev(typ: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            typ: typ.into(),
            action: action.into(),
            scope: "local".into(),
            actor: EventActor {
                id: id.into(),
                attributes: attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            ..Default::default()
        }
    }

    fn filters(pairs: &[(&str, &str)]) -> Filters {
        let mut f = Filters::new();
        for (k, v) in pairs {
            f.entry(k.to_string()).or_default().push(v.to_string());
        }
        f
    }

    #[test]
    fn container_filters_match_id_prefixes_and_names_only_on_their_actor() {
        let start = ev(
            "container",
            "start",
            "abcdef",
            &[("name", "web"), ("image", "busybox")],
        );
        let connect = ev(
            "network",
            "connect",
            "n1",
            &[("name", "bridge"), ("container", "abcdef")],
        );
        for value in ["abc", "abcdef", "web", "we"] {
            assert!(
                include(&filters(&[("container", value)]), &start),
                "{value}"
            );
        }
        assert!(!include(&filters(&[("container", "xyz")]), &start));
        assert!(!include(&filters(&[("container", "web")]), &connect));
        assert!(include(&filters(&[("network", "bridge")]), &connect));
        assert!(!include(&filters(&[("network", "bridge")]), &start));
    }

    #[test]
    fn values_of_one_key_are_ored_and_keys_anded() {
        let start = ev("container", "start", "c1", &[("name", "web")]);
        let f = filters(&[("event", "stop"), ("event", "start"), ("type", "container")]);
        assert!(include(&f, &start));
        let f = filters(&[("event", "start"), ("type", "image")]);
        assert!(!include(&f, &start));
        assert!(include(&filters(&[("scope", "local")]), &start));
        assert!(!include(&filters(&[("scope", "swarm")]), &start));
    }

    #[test]
    fn exec_and_health_events_match_without_their_details() {
        let e = ev("container", "exec_start: sh -c true", "c1", &[]);
        assert!(include(&filters(&[("event", "exec_start")]), &e));
        assert!(!include(&filters(&[("event", "exec_die")]), &e));
        let h = ev("container", "health_status: healthy", "c1", &[]);
        assert!(include(&filters(&[("event", "health_status")]), &h));
        // Exact otherwise: `sta` is not `start`.
        let s = ev("container", "start", "c1", &[]);
        assert!(!include(&filters(&[("event", "sta")]), &s));
    }

    #[test]
    fn image_filters_match_names_with_or_without_tags() {
        let start = ev("container", "start", "c1", &[("image", "busybox:latest")]);
        assert!(include(&filters(&[("image", "busybox")]), &start));
        assert!(include(&filters(&[("image", "busybox:latest")]), &start));
        assert!(!include(&filters(&[("image", "alpine")]), &start));
        let tag = ev(
            "image",
            "tag",
            "sha256:aa",
            &[("name", "localhost:5000/x/app:v1")],
        );
        assert!(include(
            &filters(&[("image", "localhost:5000/x/app")]),
            &tag
        ));
        assert!(include(&filters(&[("image", "sha256:aa")]), &tag));
        assert_eq!(
            strip_tag("docker.io/library/busybox:1@sha256:ff"),
            "busybox"
        );
    }

    #[test]
    fn labels_are_anded_with_or_without_values() {
        let e = ev("container", "start", "c1", &[("app", "x"), ("tier", "web")]);
        assert!(include(&filters(&[("label", "app")]), &e));
        assert!(include(
            &filters(&[("label", "app=x"), ("label", "tier=web")]),
            &e
        ));
        assert!(!include(
            &filters(&[("label", "app=x"), ("label", "tier=db")]),
            &e
        ));
        assert!(!include(&filters(&[("label", "other")]), &e));
    }

    #[test]
    fn unknown_filters_are_refused() {
        assert_eq!(
            validate(&filters(&[("foo", "bar")]))
                .unwrap_err()
                .to_string(),
            "invalid filter 'foo'"
        );
        validate(&filters(&[("container", "x"), ("type", "volume")])).unwrap();
    }

    #[test]
    fn times_in_dockers_formats() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t = |s| {
            parse_time(s, now)
                .unwrap()
                .map(|t| t.timestamp_nanos_opt().unwrap())
        };
        assert_eq!(t(""), None);
        assert_eq!(t("1700000000"), Some(1_700_000_000_000_000_000));
        assert_eq!(t("1700000000.5"), Some(1_700_000_000_500_000_000));
        assert_eq!(t("1700000000.000000001"), Some(1_700_000_000_000_000_001));
        assert_eq!(t("2023-11-14T22:13:20Z"), Some(1_700_000_000_000_000_000));
        assert_eq!(t("10m"), Some(1_699_999_400_000_000_000));
        assert!(parse_time("abc", now).is_err());
    }
}
