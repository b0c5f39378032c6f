//! `GET /containers/json?filters=…`: checking Docker's filters and matching records.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::record::{ContainerRecord, Status};
use crate::error::ApiError;

/// Docker's filters, key → values (decoded by [`crate::routes::extract::Query::filters`]).
pub type Filters = BTreeMap<String, Vec<String>>;

const KNOWN: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

/// moby `IsValidHealthString`.
const HEALTH_VALUES: &[&str] = &["starting", "healthy", "unhealthy", "none"];

/// Looks up the reference containers of `before`/`since` and the images of `ancestor`.
pub struct Context {
    pub before: Option<DateTime<Utc>>,
    pub since: Option<DateTime<Utc>>,
    /// Image IDs that `ancestor` values resolve to, plus the values themselves.
    pub ancestors: Vec<String>,
}

/// Checks the filter names and values that need no lookup.
pub fn validate(f: &Filters) -> Result<(), ApiError> {
    for (k, values) in f {
        if !KNOWN.contains(&k.as_str()) {
            return Err(ApiError::invalid(format!("invalid filter '{k}'")));
        }
        for v in values {
            match k.as_str() {
                "status" if Status::parse(v).is_none() => {
                    return Err(ApiError::invalid(format!("invalid filter 'status={v}'")))
                }
                "exited" if v.parse::<i64>().is_err() => {
                    return Err(ApiError::invalid(format!("invalid filter 'exited={v}'")))
                }
                "health" if !HEALTH_VALUES.contains(&v.as_str()) => {
                    return Err(ApiError::invalid(format!(
                        "Unrecognised filter value for health: {v}"
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A simple stand-in for Go's regexp match on names and IDs: substring, with `^`/`$`
/// anchors honoured.
fn pattern_match(pattern: &str, s: &str) -> bool {
    let (anchored_start, p) = match pattern.strip_prefix('^') {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    let (anchored_end, p) = match p.strip_suffix('$') {
        Some(p) => (true, p),
        None => (false, p),
    };
    match (anchored_start, anchored_end) {
        (true, true) => s == p,
        (true, false) => s.starts_with(p),
        (false, true) => s.ends_with(p),
        (false, false) => s.contains(p),
    }
}

/// Whether `rec` passes every filter (values of one filter are OR-ed).
pub fn matches(f: &Filters, ctx: &Context, rec: &ContainerRecord) -> bool {
    for (k, values) in f {
        if values.is_empty() {
            continue;
        }
        let ok = match k.as_str() {
            "status" => values
                .iter()
                .any(|v| Status::parse(v) == Some(rec.state.status)),
            "name" => {
                let bare = rec.name.trim_start_matches('/');
                values
                    .iter()
                    .any(|v| pattern_match(v, bare) || pattern_match(v, &rec.name))
            }
            "id" => values.iter().any(|v| pattern_match(v, &rec.id)),
            "label" => values.iter().all(|v| match v.split_once('=') {
                Some((key, val)) => rec.config.labels.get(key).is_some_and(|x| x == val),
                None => rec.config.labels.contains_key(v),
            }),
            "exited" => {
                rec.state.status == Status::Exited
                    && values
                        .iter()
                        .any(|v| v.parse::<i64>().ok() == Some(rec.state.exit_code))
            }
            "ancestor" => ctx
                .ancestors
                .iter()
                .any(|a| a == &rec.image_id || a == &rec.image),
            "before" => ctx.before.is_some_and(|t| rec.created < t),
            "since" => ctx.since.is_some_and(|t| rec.created > t),
            "isolation" => values.iter().any(|v| v == "default" || v.is_empty()),
            "is-task" => values.iter().any(|v| v == "false"),
            "health" => {
                let health = rec
                    .state
                    .health
                    .as_ref()
                    .map_or("none", |h| h.status.as_str());
                values.iter().any(|v| v == health)
            }
            // Filters Berth cannot match yet (networks, volumes, published ports).
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::record::StateRecord;
    use crate::routes::extract::parse_filters as parse;

    fn rec(name: &str, status: Status, code: i64) -> ContainerRecord {
        let mut r = ContainerRecord {
            id: format!("{:0<64}", "abc"),
            name: format!("/{name}"),
            image: "busybox".into(),
            image_id: "sha256:1".into(),
            state: StateRecord {
                status,
                exit_code: code,
                ..Default::default()
            },
            ..Default::default()
        };
        r.config.labels.insert("a".into(), "b".into());
        r
    }

    fn ctx() -> Context {
        Context {
            before: None,
            since: None,
            ancestors: vec![],
        }
    }

    #[test]
    fn parses_both_shapes() {
        let f = parse(r#"{"status":{"running":true},"name":["c1"]}"#).unwrap();
        assert_eq!(f["status"], vec!["running"]);
        assert_eq!(f["name"], vec!["c1"]);
        assert!(parse("[1]").is_err());
        assert!(validate(&parse(r#"{"status":{"nope":true}}"#).unwrap()).is_err());
        assert!(validate(&parse(r#"{"bogus":{"x":true}}"#).unwrap()).is_err());
    }

    #[test]
    fn matching() {
        let r = rec("web1", Status::Exited, 3);
        let m = |json: &str| matches(&parse(json).unwrap(), &ctx(), &r);
        assert!(m(r#"{"status":{"exited":true}}"#));
        assert!(!m(r#"{"status":{"running":true}}"#));
        assert!(m(r#"{"status":{"running":true,"exited":true}}"#));
        assert!(m(r#"{"name":{"web":true}}"#));
        assert!(m(r#"{"name":{"^web1$":true}}"#));
        assert!(!m(r#"{"name":{"^eb":true}}"#));
        assert!(m(r#"{"id":{"abc":true}}"#));
        assert!(m(r#"{"label":{"a=b":true}}"#));
        assert!(m(r#"{"label":{"a":true}}"#));
        assert!(!m(r#"{"label":{"a=c":true}}"#));
        assert!(m(r#"{"exited":{"3":true}}"#));
        assert!(!m(r#"{"exited":{"0":true}}"#));
        assert!(m(r#"{"health":{"none":true}}"#));
        assert!(!m(r#"{"health":{"healthy":true}}"#));
        let mut h = r.clone();
        h.state.health = Some(Default::default());
        let mh = |json: &str| matches(&parse(json).unwrap(), &ctx(), &h);
        assert!(mh(r#"{"health":{"starting":true}}"#));
        assert!(mh(r#"{"health":{"healthy":true,"starting":true}}"#));
        assert!(!mh(r#"{"health":{"none":true}}"#));
        assert_eq!(
            validate(&parse(r#"{"health":{"bogus":true}}"#).unwrap())
                .unwrap_err()
                .message,
            "Unrecognised filter value for health: bogus"
        );
        let c = Context {
            ancestors: vec!["sha256:1".into()],
            ..ctx()
        };
        assert!(matches(
            &parse(r#"{"ancestor":{"busybox":true}}"#).unwrap(),
            &c,
            &r
        ));
        assert!(!matches(
            &parse(r#"{"ancestor":{"x":true}}"#).unwrap(),
            &ctx(),
            &r
        ));
    }
}
