//! The route table, one module per API area (moby's router pattern): each lists its
//! `method, path → handler` and handlers call into the services on [`Daemon`].

use axum::Router;

use crate::state::Daemon;

pub mod containers;
pub mod exec;
pub mod images;
pub mod networks;
pub mod system;

pub fn all() -> Router<Daemon> {
    Router::new()
        .merge(system::routes())
        .merge(images::routes())
        .merge(containers::routes())
        .merge(exec::routes())
        .merge(networks::routes())
}
