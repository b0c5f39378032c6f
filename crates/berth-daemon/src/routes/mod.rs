//! The route table, one module per API area (moby's router pattern): each lists its
//! `method, path → handler` and handlers call into the services on [`Daemon`].

use axum::Router;

use crate::state::Daemon;

pub mod archive;
pub mod containers;
pub mod exec;
pub mod export;
pub mod images;
pub mod networks;
pub mod registry;
pub mod system;
pub mod system_df;
pub mod volumes;

pub fn all() -> Router<Daemon> {
    Router::new()
        .merge(system::routes())
        .merge(images::routes())
        .merge(containers::routes())
        .merge(exec::routes())
        .merge(volumes::routes())
        .merge(system_df::routes())
        .merge(export::routes())
        .merge(archive::routes())
        .merge(networks::routes())
        .merge(registry::routes())
        .merge(crate::builds::routes::routes())
}
