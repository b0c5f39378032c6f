//! SPDY/3.1, as far as Kubernetes streaming needs it: frames and header compression
//! ([`frame`]) and the server side of a connection ([`conn`]).

pub mod conn;
mod dictionary;
pub mod frame;
