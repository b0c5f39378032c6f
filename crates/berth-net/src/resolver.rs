//! The embedded resolver at `127.0.0.11` inside a container on a user network, as
//! Docker's: the daemon binds a UDP and a TCP socket on `127.0.0.11:53` *inside the
//! container's network namespace* (from a short-lived thread of its own that `setns`es,
//! binds and exits; the sockets stay in that namespace) and serves them from its runtime.
//! No process and no packet rewriting: the container's `resolv.conf` names
//! `127.0.0.11`. Made at each start (and again for the running containers when the
//! daemon starts), dropped at stop.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::dns::{self, DnsServer, Lookup, Upstreams};
use crate::{NetError, Result};

/// Docker's embedded resolver address.
pub const RESOLVER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

fn sys(what: &str, e: impl std::fmt::Display) -> NetError {
    NetError::System(format!("{what}: {e}"))
}

/// Binds `127.0.0.11:53` UDP and TCP in the namespace (an address of its `lo`'s
/// 127.0.0.0/8, so `lo` must be up: the endpoint's set-up brings it up).
fn bind_in(ns: PathBuf) -> Result<(UdpSocket, TcpListener)> {
    std::thread::Builder::new()
        .name("berth-resolver".into())
        .spawn(move || -> Result<(UdpSocket, TcpListener)> {
            let f = std::fs::File::open(&ns)
                .map_err(|e| sys(&format!("opening {}", ns.display()), e))?;
            // SAFETY: a valid namespace fd; setns changes only this thread, which exits
            // right after binding.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(sys(
                    &format!("joining {}", ns.display()),
                    std::io::Error::last_os_error(),
                ));
            }
            let addr = SocketAddr::new(RESOLVER_IP.into(), 53);
            let udp = UdpSocket::bind(addr).map_err(|e| sys(&format!("binding {addr}"), e))?;
            let tcp =
                TcpListener::bind(addr).map_err(|e| sys(&format!("binding {addr}/tcp"), e))?;
            udp.set_nonblocking(true)
                .map_err(|e| sys("resolver socket", e))?;
            tcp.set_nonblocking(true)
                .map_err(|e| sys("resolver socket", e))?;
            Ok((udp, tcp))
        })
        .map_err(|e| sys("resolver thread", e))?
        .join()
        .map_err(|_| NetError::System("resolver thread panicked".into()))?
}

/// The resolver of one container: serves until dropped. Must be called inside a tokio
/// runtime.
pub fn start(netns: &Path, lookup: Lookup, upstreams: Upstreams) -> Result<DnsServer> {
    let (udp, tcp) = bind_in(netns.to_path_buf())?;
    dns::serve_sockets(udp, Some(tcp), lookup, upstreams)
}
