//! Listening on the unix socket and serving the route table with version negotiation.

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
                Err(resp) => *resp,
            };
            Ok::<_, std::convert::Infallible>(version::with_headers(resp))
        }
    }))
}
