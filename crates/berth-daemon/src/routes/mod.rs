//! The route tables, one per API area (moby's router pattern): each lists its
//! `method, path → handler` and handlers call into the services on [`Daemon`].
//!
//! | area | table | handlers |
//! |---|---|---|
//! | `/_ping`, `/version`, `/info`, `/system/*` | [`system`] | `system`, `system_df` |
//! | `/events` | [`events`] | `events` |
//! | `/containers/{id}/stats` | [`stats`] | `stats` |
//! | `/containers/*`, `/commit` | [`containers`] | `containers`, `exec`, `archive`, `export` |
//! | `/exec/*` | [`exec`] | `exec` |
//! | `/images/*` | [`images`] | `images` |
//! | `/networks/*` | [`networks`] | `networks` |
//! | `/volumes/*` | [`volumes`] | `volumes` |
//! | `/auth`, `/distribution/*` | [`registry`] | `registry` |
//! | `/swarm/*` | [`swarm`] | `swarm` |

use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use http::{Method, Uri};

use crate::state::Daemon;

pub mod archive;
pub mod containers;
pub mod events;
pub mod exec;
pub mod export;
pub mod extract;
pub mod images;
pub mod networks;
pub mod registry;
pub mod stats;
pub mod swarm;
pub mod system;
pub mod system_df;
pub mod volumes;

/// A `200` of type `media` whose body is `stream` (logs, wait, a plain attach or exec).
pub(crate) fn stream_response<S>(media: &str, stream: S) -> Response
where
    S: futures_util::TryStream + Send + 'static,
    S::Ok: Into<axum::body::Bytes>,
    S::Error: Into<axum::BoxError>,
{
    Response::builder()
        .header(http::header::CONTENT_TYPE, media)
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_default()
}

pub fn all() -> Router<Daemon> {
    Router::new()
        .merge(system::routes())
        .merge(events::routes())
        .merge(stats::routes())
        .merge(containers::routes())
        .merge(exec::routes())
        .merge(images::routes())
        .merge(networks::routes())
        .merge(volumes::routes())
        .merge(registry::routes())
        .merge(swarm::routes())
        .merge(crate::builds::routes::routes())
}

/// The routes whose `{name}` is an image reference, which may hold `/`
/// (`localhost:5000/a/b:v1`): `(method, prefix, action)`.
const NAMED_ACTIONS: &[(Method, &str, &str)] = &[
    (Method::GET, "/images/", "/json"),
    (Method::GET, "/images/", "/history"),
    (Method::GET, "/images/", "/get"),
    (Method::POST, "/images/", "/tag"),
    (Method::POST, "/images/", "/push"),
    (Method::DELETE, "/images/", ""),
    (Method::GET, "/distribution/", "/json"),
];

/// A `{name}` segment cannot span `/`: before routing, the `/` of an image reference in
/// one of `NAMED_ACTIONS` is percent-encoded, so the tables name each action
/// (`/images/{name}/json`) and `Path` decodes the reference back.
pub fn one_segment_names(req: &mut Request) {
    let path = req.uri().path();
    let Some((prefix, name, action)) = NAMED_ACTIONS
        .iter()
        .filter(|(method, _, _)| method == req.method())
        .find_map(|(_, prefix, action)| {
            let name = path.strip_prefix(prefix)?.strip_suffix(action)?;
            Some((prefix, name, action))
        })
    else {
        return;
    };
    if !name.contains('/') {
        return;
    }
    let mut encoded = format!("{prefix}{}{action}", name.replace('/', "%2F"));
    if let Some(q) = req.uri().query() {
        encoded = format!("{encoded}?{q}");
    }
    if let Ok(uri) = encoded.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(method: Method, uri: &str) -> String {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        one_segment_names(&mut req);
        req.uri().to_string()
    }

    #[test]
    fn image_references_become_one_segment() {
        let cases = [
            (
                Method::GET,
                "/images/localhost:5000/a/b:v1/json",
                "/images/localhost:5000%2Fa%2Fb:v1/json",
            ),
            (
                Method::POST,
                "/images/a/b/tag?repo=x&tag=y",
                "/images/a%2Fb/tag?repo=x&tag=y",
            ),
            (Method::GET, "/images/busybox/json", "/images/busybox/json"),
            // Deleting an image named `a/json` keeps its whole name.
            (Method::DELETE, "/images/a/json", "/images/a%2Fjson"),
            // `tag` is a POST: a GET names no action.
            (Method::GET, "/images/a/b/tag", "/images/a/b/tag"),
            (
                Method::GET,
                "/distribution/docker.io/library/x/json",
                "/distribution/docker.io%2Flibrary%2Fx/json",
            ),
        ];
        for (method, uri, want) in cases {
            assert_eq!(rewritten(method, uri), want, "{uri}");
        }
    }
}
