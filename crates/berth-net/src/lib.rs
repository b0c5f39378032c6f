//! Berth's container networking: the default bridge, veth pairs into per-container
//! network namespaces, endpoint bookkeeping ([`endpoint`]), IP allocation, `/etc/hosts`-style files, nftables NAT rules in
//! Berth's own table, and the userland proxy for published ports.
//!
//! Links and addresses are driven with iproute2 (`ip`), rules with `nft -f -`; every rule
//! lives in one table per daemon (named after its bridge), rebuilt whole and atomically.

pub mod conntrack;
mod dl;
pub mod dns;
pub mod endpoint;
pub mod files;
pub mod ipam;
pub mod ipam6;
pub mod link;
pub mod links;
pub mod nft;
pub mod nft_lib;
pub mod ports;
pub mod proxy;
pub mod resolver;
pub mod rtnl;
pub mod timing;

use berth_api::ErrorKind;

/// A networking failure.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Bad input from the request (a malformed `-p`, a bad subnet).
    #[error("{0}")]
    Invalid(String),
    /// A resource is taken (a host port, all addresses of a subnet).
    #[error("{0}")]
    Conflict(String),
    /// A command (`ip`, `nft`, `unshare`) or syscall failed.
    #[error("{0}")]
    System(String),
}

impl NetError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetError::Invalid(_) => ErrorKind::InvalidArgument,
            NetError::Conflict(_) => ErrorKind::Conflict,
            NetError::System(_) => ErrorKind::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, NetError>;
