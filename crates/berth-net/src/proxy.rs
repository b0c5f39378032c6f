//! The host-port holder for published ports, like docker-proxy: it binds the host port
//! (which is how a second container asking for it gets Docker's "port is already
//! allocated", and keeps other programs off it) and forwards whatever reaches it to the
//! container. The traffic itself, 127.0.0.1 included, is kernel NAT (see [`crate::nft`])
//! and is DNATed before it could reach this socket, so it keeps flowing while the daemon
//! that holds these sockets is down; the forwarding here is only a fallback.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::ports::{port_taken, PortMapping, PortRequest, Proto};
use crate::{NetError, Result};

/// A running forwarder; stops (and frees the port) when dropped.
pub struct Proxy {
    pub mapping: PortMapping,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Bound {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

fn bind_one(proto: Proto, addr: SocketAddrV4) -> std::io::Result<Bound> {
    Ok(match proto {
        Proto::Tcp => Bound::Tcp(std::net::TcpListener::bind(addr)?),
        Proto::Udp => Bound::Udp(std::net::UdpSocket::bind(addr)?),
    })
}

/// Binds the host port of `req` (the first free one of its range, or any free port) and
/// forwards to `target:req.container_port`. Must be called inside a tokio runtime.
pub fn start(req: &PortRequest, target: Ipv4Addr) -> Result<Proxy> {
    let (bound, port) = match req.host_ports {
        None => {
            let b = bind_one(req.proto, SocketAddrV4::new(req.host_ip, 0))
                .map_err(|e| NetError::System(format!("binding a port on {}: {e}", req.host_ip)))?;
            let port = match &b {
                Bound::Tcp(l) => l.local_addr(),
                Bound::Udp(s) => s.local_addr(),
            }
            .map(|a| a.port())
            .map_err(|e| NetError::System(e.to_string()))?;
            (b, port)
        }
        Some((first, last)) => {
            let mut found = None;
            for p in first..=last {
                if let Ok(b) = bind_one(req.proto, SocketAddrV4::new(req.host_ip, p)) {
                    found = Some((b, p));
                    break;
                }
            }
            found.ok_or_else(|| port_taken(req.host_ip, first))?
        }
    };
    let to = SocketAddr::V4(SocketAddrV4::new(target, req.container_port));
    let task = match bound {
        Bound::Tcp(l) => {
            l.set_nonblocking(true)
                .map_err(|e| NetError::System(e.to_string()))?;
            let l = tokio::net::TcpListener::from_std(l)
                .map_err(|e| NetError::System(e.to_string()))?;
            tokio::spawn(tcp_loop(l, to))
        }
        Bound::Udp(s) => {
            s.set_nonblocking(true)
                .map_err(|e| NetError::System(e.to_string()))?;
            let s =
                tokio::net::UdpSocket::from_std(s).map_err(|e| NetError::System(e.to_string()))?;
            tokio::spawn(udp_loop(Arc::new(s), to))
        }
    };
    Ok(Proxy {
        mapping: PortMapping {
            proto: req.proto,
            container_port: req.container_port,
            host_ip: req.host_ip,
            host_port: port,
        },
        task,
    })
}

async fn tcp_loop(listener: tokio::net::TcpListener, to: SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            match tokio::net::TcpStream::connect(to).await {
                Ok(mut outbound) => {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                Err(e) => tracing::debug!(%to, error = %e, "proxy: connecting to the container"),
            }
        });
    }
}

/// One upstream socket per client address, closed after 30 s without replies (as
/// docker-proxy's UDP conntrack timeout).
async fn udp_loop(sock: Arc<tokio::net::UdpSocket>, to: SocketAddr) {
    let clients: Arc<tokio::sync::Mutex<HashMap<SocketAddr, Arc<tokio::net::UdpSocket>>>> =
        Default::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let upstream = {
            let mut map = clients.lock().await;
            if let Some(u) = map.get(&from) {
                u.clone()
            } else {
                let Ok(u) = tokio::net::UdpSocket::bind("0.0.0.0:0").await else {
                    continue;
                };
                if u.connect(to).await.is_err() {
                    continue;
                }
                let u = Arc::new(u);
                map.insert(from, u.clone());
                let (u2, sock2, clients2) = (u.clone(), sock.clone(), clients.clone());
                tokio::spawn(async move {
                    let mut b = vec![0u8; 65536];
                    while let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(30), u2.recv(&mut b)).await
                    {
                        let _ = sock2.send_to(&b[..n], from).await;
                    }
                    clients2.lock().await.remove(&from);
                });
                u
            }
        };
        let _ = upstream.send(&buf[..n]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn forwards_tcp_and_holds_the_port() {
        let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bport = backend.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = backend.accept().await.unwrap();
            s.write_all(b"hello").await.unwrap();
        });
        let req = PortRequest {
            proto: Proto::Tcp,
            container_port: bport,
            host_ip: Ipv4Addr::LOCALHOST,
            host_ports: None,
        };
        let p = start(&req, Ipv4Addr::LOCALHOST).unwrap();
        let port = p.mapping.host_port;
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello");
        let again = PortRequest {
            host_ports: Some((port, port)),
            ..req.clone()
        };
        let err = start(&again, Ipv4Addr::LOCALHOST).err().unwrap();
        assert_eq!(
            err.to_string(),
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
        drop(p);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            start(&again, Ipv4Addr::LOCALHOST).is_ok(),
            "dropping the proxy frees the port"
        );
    }

    #[tokio::test]
    async fn forwards_udp_both_ways() {
        let backend = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let bport = backend.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut b = [0u8; 64];
            let (n, from) = backend.recv_from(&mut b).await.unwrap();
            let reply = [b"echo ".as_slice(), &b[..n]].concat();
            backend.send_to(&reply, from).await.unwrap();
        });
        let req = PortRequest {
            proto: Proto::Udp,
            container_port: bport,
            host_ip: Ipv4Addr::LOCALHOST,
            host_ports: None,
        };
        let p = start(&req, Ipv4Addr::LOCALHOST).unwrap();
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(b"ping", ("127.0.0.1", p.mapping.host_port))
            .await
            .unwrap();
        let mut b = [0u8; 64];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), c.recv_from(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b[..n], b"echo ping");
    }
}
