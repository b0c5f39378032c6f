//! The filters every `POST /…/prune` of containers and networks takes, as moby's
//! `pruneFilters`: `until` (a unix time or an RFC 3339 time; objects created before it),
//! `label` (all must match) and `label!` (none may match), each `key` or `key=value`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::containers::filters::Filters;
use crate::containers::{logs, parse_time};
use crate::error::{ApiError, ApiResult};

/// Parsed prune filters.
#[derive(Debug, Default)]
pub struct PruneFilter {
    until: Option<DateTime<Utc>>,
    labels: Vec<String>,
    not_labels: Vec<String>,
}

impl PruneFilter {
    /// Checks the keys (`invalid filter 'k'` otherwise) and parses `until`.
    pub fn parse(f: &Filters) -> ApiResult<PruneFilter> {
        for k in f.keys() {
            if !matches!(k.as_str(), "label" | "label!" | "until") {
                return Err(ApiError::invalid(format!("invalid filter '{k}'")));
            }
        }
        let until = match f.get("until").and_then(|v| v.first()) {
            Some(v) => Some(parse_until(v)?),
            None => None,
        };
        let list = |k: &str| f.get(k).cloned().unwrap_or_default();
        Ok(PruneFilter {
            until,
            labels: list("label"),
            not_labels: list("label!"),
        })
    }

    /// Whether an object created at `created` with `labels` is to be pruned.
    pub fn selects(&self, created: DateTime<Utc>, labels: &BTreeMap<String, String>) -> bool {
        let has = |l: &String| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l),
        };
        self.until.is_none_or(|u| created < u)
            && self.labels.iter().all(has)
            && !self.not_labels.iter().any(has)
    }
}

/// `until`: a unix timestamp or an RFC 3339 time.
fn parse_until(v: &str) -> ApiResult<DateTime<Utc>> {
    if let Some(t) = parse_time(v) {
        return Ok(t);
    }
    logs::parse_unix_time(v)?
        .ok_or_else(|| ApiError::invalid(format!("invalid filter 'until={v}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(pairs: &[(&str, &str)]) -> Filters {
        let mut f = Filters::new();
        for (k, v) in pairs {
            f.entry(k.to_string()).or_default().push(v.to_string());
        }
        f
    }

    #[test]
    fn labels_until_and_unknown_keys() {
        let labels: BTreeMap<String, String> = [("tier".to_string(), "front".to_string())].into();
        let t = |s: &str| parse_time(s).unwrap();
        let created = t("2026-01-01T00:00:00Z");
        let sel = |pairs: &[(&str, &str)]| {
            PruneFilter::parse(&filters(pairs))
                .unwrap()
                .selects(created, &labels)
        };
        assert!(sel(&[]));
        assert!(sel(&[("label", "tier")]));
        assert!(sel(&[("label", "tier=front")]));
        assert!(!sel(&[("label", "tier=back")]));
        assert!(!sel(&[("label!", "tier")]));
        assert!(sel(&[("label!", "tier=back")]));
        assert!(sel(&[("until", "2026-06-01T00:00:00Z")]));
        assert!(!sel(&[("until", "2025-06-01T00:00:00Z")]));
        assert!(sel(&[("until", "1800000000")]));
        let err = PruneFilter::parse(&filters(&[("dangling", "true")])).unwrap_err();
        assert_eq!(err.to_string(), "invalid filter 'dangling'");
    }
}
