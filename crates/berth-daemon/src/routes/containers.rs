//! Containers routes.

use axum::Router;

use crate::state::Daemon;

pub fn routes() -> Router<Daemon> {
    Router::new()
}
