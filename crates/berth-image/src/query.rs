//! Read-side operations: `list` (`GET /images/json`), `inspect`, `history`.

use std::collections::BTreeMap;

use berth_api::{GraphDriver, HistoryItem, ImageInspect, ImageMetadata, ImageSummary, RootFs};

use crate::reference::Reference;
use crate::schema::{decode, ImageMeta, IMAGES, TAGS};
use crate::{
    split_references, split_refs, unix_seconds, ImageConfig, ImageError, ImageStore, ListOptions,
};

const ACCEPTED_FILTERS: &[&str] = &["before", "dangling", "label", "reference", "since", "until"];
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Docker's `invalid filter 'name=value'`.
fn invalid_filter(name: &str, values: &[String]) -> ImageError {
    ImageError::InvalidArgument(format!("invalid filter '{name}={}'", values.join(",")))
}

/// One element of a glob pattern.
enum Glob {
    Star,
    Any,
    Class { neg: bool, items: Vec<char> },
    Lit(char),
}

/// The pattern as elements; `None` for an unclosed `[` (matches nothing, as Go's
/// `ErrBadPattern`).
fn glob_tokens(p: &[char]) -> Option<Vec<Glob>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => out.push(Glob::Star),
            '?' => out.push(Glob::Any),
            '[' => {
                let end = i + p[i..].iter().position(|&c| c == ']')?;
                let class = &p[i + 1..end];
                let (neg, class) = match class.first() {
                    Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                out.push(Glob::Class {
                    neg,
                    items: class.to_vec(),
                });
                i = end;
            }
            '\\' if i + 1 < p.len() => {
                out.push(Glob::Lit(p[i + 1]));
                i += 1;
            }
            c => out.push(Glob::Lit(c)),
        }
        i += 1;
    }
    Some(out)
}

fn class_hit(class: &[char], c: char) -> bool {
    let mut hit = false;
    let mut i = 0;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == '-' {
            hit |= class[i] <= c && c <= class[i + 2];
            i += 3;
        } else {
            hit |= class[i] == c;
            i += 1;
        }
    }
    hit
}

/// Go's `path.Match` subset: `*`, `?`, `[...]` classes (not crossing `/` for `*`/`?`).
/// Dynamic programming over the name, so any pattern costs at most pattern × name steps
/// (a backtracking matcher is exponential in the number of `*`).
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let Some(tokens) = glob_tokens(&p) else {
        return false;
    };
    // row[j]: the tokens so far match the first j characters of the name.
    let mut row = vec![false; n.len() + 1];
    row[0] = true;
    let mut next = vec![false; n.len() + 1];
    for t in &tokens {
        match t {
            Glob::Star => {
                next[0] = row[0];
                for j in 1..=n.len() {
                    next[j] = row[j] || (next[j - 1] && n[j - 1] != '/');
                }
            }
            other => {
                next[0] = false;
                for j in 1..=n.len() {
                    let c = n[j - 1];
                    let ok = match other {
                        Glob::Any => c != '/',
                        Glob::Class { neg, items } => class_hit(items, c) != *neg,
                        Glob::Lit(l) => *l == c,
                        Glob::Star => false,
                    };
                    next[j] = row[j - 1] && ok;
                }
            }
        }
        std::mem::swap(&mut row, &mut next);
    }
    row[n.len()]
}

/// Docker's `reference.FamiliarMatch`: the pattern against the familiar string, then
/// against the familiar name.
fn familiar_match(pattern: &str, r: &Reference) -> bool {
    glob_match(pattern, &r.familiar_string()) || glob_match(pattern, &r.familiar_name())
}

/// `key` or `key=value` label filters, all of which must match.
fn labels_match(filters: &[String], labels: &BTreeMap<String, String>) -> bool {
    filters.iter().all(|f| match f.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(f.as_str()),
    })
}

/// Unix seconds from a Docker `until` value: a unix timestamp, RFC 3339, or a Go
/// duration before now (`10m`, `1h30m`).
fn parse_timestamp(s: &str) -> Option<i64> {
    if let Ok(f) = s.parse::<f64>() {
        return Some(f as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
    }
    let mut secs = 0i64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        secs += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
    }
    if !num.is_empty() {
        return None;
    }
    Some(chrono::Utc::now().timestamp() - secs)
}

struct Row {
    id: String,
    meta: ImageMeta,
    config: std::sync::Arc<ImageConfig>,
    refs: Vec<Reference>,
}

impl ImageStore {
    fn rows(&self) -> Result<Vec<Row>, ImageError> {
        let rtxn = self.db.begin_read()?;
        let images = crate::schema::all_bytes(&rtxn.open_table(IMAGES)?)?;
        let tags = crate::schema::all_strs(&rtxn.open_table(TAGS)?)?;
        drop(rtxn);
        // References grouped by image once (not a scan of every tag per image).
        let mut by_image: std::collections::HashMap<String, Vec<Reference>> =
            std::collections::HashMap::new();
        for (k, t) in tags {
            if let Ok(r) = Reference::parse_normalized(&k) {
                by_image.entry(t).or_default().push(r);
            }
        }
        let mut out = Vec::with_capacity(images.len());
        for (id, v) in images {
            let meta: ImageMeta = decode(&v, "image record")?;
            let config = self.image_config_shared(&id)?;
            let refs = by_image.remove(&id).unwrap_or_default();
            out.push(Row {
                id,
                meta,
                config,
                refs,
            });
        }
        Ok(out)
    }

    fn created_of(&self, name: &str) -> Result<i64, ImageError> {
        let id = self.resolve_id(name)?;
        Ok(unix_seconds(
            self.image_config(&id)?
                .created
                .as_deref()
                .unwrap_or_default(),
        ))
    }

    /// `GET /images/json`: summaries newest first, with Docker's filters
    /// (`dangling`, `label`, `reference`, `since`, `before`, `until`). Untagged images
    /// have empty `RepoTags` (API ≥ 1.43; the route adds `<none>:<none>` for older).
    pub fn list(&self, opts: &ListOptions) -> Result<Vec<ImageSummary>, ImageError> {
        for key in opts.filters.keys() {
            if !ACCEPTED_FILTERS.contains(&key.as_str()) {
                return Err(ImageError::InvalidArgument(format!(
                    "invalid filter '{key}'"
                )));
            }
        }
        let get = |k: &str| opts.filters.get(k).cloned().unwrap_or_default();
        let dangling = match get("dangling").as_slice() {
            [] => None,
            v if v.iter().all(|x| x.eq_ignore_ascii_case("true") || x == "1") => Some(true),
            v if v
                .iter()
                .all(|x| x.eq_ignore_ascii_case("false") || x == "0") =>
            {
                Some(false)
            }
            v => return Err(invalid_filter("dangling", v)),
        };
        let mut since = None;
        for s in get("since") {
            since = Some(self.created_of(&s)?);
        }
        let mut before = None;
        for s in get("before") {
            before = Some(self.created_of(&s)?);
        }
        let mut until = None;
        for s in get("until") {
            until = Some(
                parse_timestamp(&s)
                    .ok_or_else(|| invalid_filter("until", std::slice::from_ref(&s)))?,
            );
        }
        let labels = get("label");
        let patterns = get("reference");

        let rows = self.rows()?;
        let parents: std::collections::HashSet<String> =
            rows.iter().map(|r| r.meta.parent.clone()).collect();
        let mut out = Vec::new();
        for mut row in rows {
            let created = unix_seconds(row.config.created.as_deref().unwrap_or_default());
            if since.is_some_and(|t| created <= t)
                || before.is_some_and(|t| created >= t)
                || until.is_some_and(|t| created >= t)
            {
                continue;
            }
            // Without `all`, untagged images that others were committed from are
            // intermediate layers of those images: hidden, as Docker does.
            if !opts.all && row.refs.is_empty() && parents.contains(&row.id) {
                continue;
            }
            // moby: dangling means no tag; an image left with only `name@digest`
            // references (a pulled image whose tag moved) is dangling too.
            match dangling {
                Some(true) if row.refs.iter().any(|r| r.digest().is_none()) => continue,
                Some(false) if row.refs.is_empty() => continue,
                _ => {}
            }
            if !labels_match(&labels, &row.config.config.labels) {
                continue;
            }
            if !patterns.is_empty() {
                row.refs
                    .retain(|r| patterns.iter().any(|p| familiar_match(p, r)));
                if row.refs.is_empty() {
                    continue;
                }
            }
            let (repo_tags, repo_digests) = split_references(&row.refs);
            out.push(ImageSummary {
                containers: -1,
                created,
                id: row.id,
                labels: row.config.config.labels.clone(),
                parent_id: row.meta.parent.clone(),
                repo_digests,
                repo_tags,
                shared_size: -1,
                size: row.meta.size,
                virtual_size: Some(row.meta.size),
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `GET /images/{name}/json`.
    pub fn inspect(&self, name: &str) -> Result<ImageInspect, ImageError> {
        let id = self.resolve_id(name)?;
        let meta = self.image_meta(&id)?;
        let config = self.image_config(&id)?;
        let (repo_tags, repo_digests) = split_refs(&self.refs_of(&id)?);
        let mut dirs: Vec<String> = meta
            .chain_ids
            .iter()
            .rev()
            .map(|c| self.layer_path(c).display().to_string())
            .collect();
        let mut data = BTreeMap::new();
        if !dirs.is_empty() {
            data.insert("UpperDir".to_string(), dirs.remove(0));
        }
        if !dirs.is_empty() {
            data.insert("LowerDir".to_string(), dirs.join(":"));
        }
        Ok(ImageInspect {
            id,
            repo_tags,
            repo_digests,
            parent: config.parent.clone(),
            comment: config.comment.clone(),
            created: config
                .created
                .clone()
                .unwrap_or_else(|| ZERO_TIME.to_string()),
            container: config.container.clone(),
            container_config: config.container_config.clone().unwrap_or_default(),
            docker_version: config.docker_version.clone(),
            author: config.author.clone(),
            config: config.config.clone(),
            architecture: config.architecture.clone(),
            variant: (!config.variant.is_empty()).then(|| config.variant.clone()),
            os: config.os.clone(),
            size: meta.size,
            virtual_size: meta.size,
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data,
            },
            root_fs: RootFs {
                kind: config.rootfs.kind.clone(),
                layers: config.rootfs.diff_ids.clone(),
            },
            metadata: ImageMetadata {
                last_tag_time: if meta.last_tag_time.is_empty() {
                    ZERO_TIME.to_string()
                } else {
                    meta.last_tag_time
                },
            },
        })
    }

    /// `GET /images/{name}/history`: newest first; the top entry carries the image ID and
    /// its tags, older entries `<missing>` (as Docker shows layers it has no image for).
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>, ImageError> {
        let id = self.resolve_id(name)?;
        let meta = self.image_meta(&id)?;
        let config = self.image_config(&id)?;
        let sizes = self.layer_sizes(&meta.chain_ids)?;
        let mut layer = 0usize;
        let mut items = Vec::new();
        for h in &config.history {
            let size = if h.empty_layer {
                0
            } else {
                let s = sizes.get(layer).copied().unwrap_or(0);
                layer += 1;
                s
            };
            items.push(HistoryItem {
                id: "<missing>".into(),
                created: unix_seconds(h.created.as_deref().unwrap_or_default()),
                created_by: h.created_by.clone(),
                tags: None,
                size,
                comment: h.comment.clone(),
            });
        }
        items.reverse();
        // Newest first: the image, then its parent, grandparent... (commits), as far as
        // they are still stored; older entries stay `<missing>`.
        let mut current = Some(id);
        for item in items.iter_mut() {
            let Some(img) = current.take() else { break };
            item.id = img.clone();
            let (tags, _) = split_refs(&self.refs_of(&img)?);
            item.tags = (!tags.is_empty()).then_some(tags);
            let parent = self
                .image_config(&img)
                .map(|c| c.parent)
                .unwrap_or_default();
            if !parent.is_empty() && self.image_meta(&parent).is_ok() {
                current = Some(parent);
            }
        }
        Ok(items)
    }

    fn layer_sizes(&self, chains: &[String]) -> Result<Vec<i64>, ImageError> {
        let rtxn = self.db.begin_read()?;
        let layers = rtxn.open_table(crate::schema::LAYERS)?;
        let mut out = Vec::new();
        for c in chains {
            let size = match layers.get(c.as_str())? {
                Some(v) => decode::<crate::schema::LayerMeta>(v.value(), "layer record")?.size,
                None => 0,
            };
            out.push(size);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_stars_do_not_backtrack() {
        // A backtracking matcher takes ~C(200,30) steps here; this one 31 × 201.
        let pattern = "*a".repeat(30) + "b";
        assert!(!glob_match(&pattern, &"a".repeat(200)));
        assert!(glob_match(&pattern, &("a".repeat(200) + "b")));
    }

    /// The matcher this one replaced (exponential, but right): the oracle.
    fn backtracking(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != '/')
                .any(|i| backtracking(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && n[0] != '/' && backtracking(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|&c| c == ']') else {
                    return false;
                };
                let Some(&c) = n.first() else { return false };
                let class = &p[1..end];
                let (neg, class) = match class.first() {
                    Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                class_hit(class, c) != neg && backtracking(&p[end + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => {
                !n.is_empty() && n[0] == p[1] && backtracking(&p[2..], &n[1..])
            }
            Some(&c) => !n.is_empty() && n[0] == c && backtracking(&p[1..], &n[1..]),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, failure_persistence: None, ..Default::default() })]
        #[test]
        fn glob_agrees_with_the_backtracking_matcher(p in "[ab*?/\\[\\]^-]{0,8}", n in "[ab/\\-^]{0,8}") {
            let pc: Vec<char> = p.chars().collect();
            let nc: Vec<char> = n.chars().collect();
            proptest::prop_assert_eq!(glob_match(&p, &n), backtracking(&pc, &nc), "{:?} {:?}", p, n);
        }
    }

    #[test]
    fn glob() {
        assert!(glob_match("busy*", "busybox:latest"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(!glob_match("*", "a/b"));
        assert!(glob_match("*/*", "a/b"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert!(!glob_match("busy", "busybox"));
    }

    #[test]
    fn label_filters() {
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        assert!(labels_match(&["a".into()], &l));
        assert!(labels_match(&["a=1".into()], &l));
        assert!(!labels_match(&["a=2".into()], &l));
        assert!(!labels_match(&["b".into()], &l));
    }
}
