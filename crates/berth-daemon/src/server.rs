//! Listening on the unix socket and serving the route table with version negotiation.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use tower::ServiceExt as _;

use crate::state::Daemon;
use crate::version;

/// The full application: version negotiation and [`crate::routes::one_segment_names`]
/// run before routing (both rewrite the URI),
/// and every response gets the API headers.
pub fn app(daemon: Daemon) -> Router {
    let routes = crate::routes::all().with_state(daemon);
    Router::new().fallback_service(tower::service_fn(move |req: Request| {
        let routes = routes.clone();
        async move {
            let resp: Response = match version::negotiate(req) {
                Ok(mut req) => {
                    crate::routes::one_segment_names(&mut req);
                    match routes.oneshot(req).await {
                        Ok(resp) => resp,
                        Err(never) => match never {},
                    }
                }
                Err(resp) => resp,
            };
            Ok::<_, std::convert::Infallible>(version::with_headers(resp))
        }
    }))
}

/// Binds the socket with mode 0660, replacing a stale socket file.
pub fn bind(socket: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing stale {}", socket.display())),
    }
    let listener = tokio::net::UnixListener::bind(socket)
        .with_context(|| format!("listening on {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting mode of {}", socket.display()))?;
    Ok(listener)
}
