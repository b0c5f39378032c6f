//! Swarm routes: Berth is never part of a swarm and answers as Docker does outside swarm
//! mode. Clients (docker-py's network tests) leave any swarm before making networks.

use axum::routing::post;
use axum::Router;

use crate::error::ApiError;
use crate::state::Daemon;

pub fn routes() -> Router<Daemon> {
    Router::new().route("/swarm/leave", post(leave))
}

async fn leave() -> ApiError {
    ApiError::new(
        berth_api::ErrorKind::Unavailable,
        "This node is not part of a swarm",
    )
}
