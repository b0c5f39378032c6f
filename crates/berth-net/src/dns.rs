//! The embedded DNS server of user networks: answers A queries for the names of the
//! containers on the asking container's networks (and their aliases), forwards everything
//! else to the asking container's `--dns` servers, else the daemon's or the host's
//! resolvers. [`crate::resolver`] serves it inside each container at `127.0.0.11`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::{NetError, Result};

/// A parsed question: the lowercase name without the trailing dot, qtype, and the end
/// offset of the question section.
#[derive(Debug, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    pub end: usize,
}

pub const TYPE_A: u16 = 1;

/// The first question of a query (None for anything that is not a plain query).
pub fn parse_query(msg: &[u8]) -> Option<Question> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 || u16::from_be_bytes([msg[4], msg[5]]) < 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        let label = msg.get(i..i + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?]);
    Some(Question {
        name: labels.join("."),
        qtype,
        end: i + 4,
    })
}

/// The answer to `query` (its first question, up to `q.end`) with `addrs` as A records;
/// NXDOMAIN when `addrs` is None.
pub fn answer(query: &[u8], q: &Question, addrs: Option<&[Ipv4Addr]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.end + 16 * addrs.map_or(0, |a| a.len()));
    out.extend_from_slice(&query[0..2]);
    let rd = query[2] & 0x01;
    out.push(0x80 | 0x04 | rd); // QR, AA, RD copied
    out.push(0x80 | if addrs.is_none() { 3 } else { 0 }); // RA, rcode
    out.extend_from_slice(&1u16.to_be_bytes());
    let answers: &[Ipv4Addr] = if q.qtype == TYPE_A {
        addrs.unwrap_or(&[])
    } else {
        &[]
    };
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..q.end]);
    for a in answers {
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        out.extend_from_slice(&600u32.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&a.octets());
    }
    out
}

/// The host's resolvers usable from the daemon (from resolv.conf text), port 53.
pub fn upstreams(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Names → addresses of one network for a query from an address, asked per query (so it
/// follows the containers; links make answers depend on who asks).
pub type Lookup = Arc<dyn Fn(&str, std::net::IpAddr) -> Option<Vec<Ipv4Addr>> + Send + Sync>;

/// A running DNS server; stops when dropped.
pub struct DnsServer {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The servers a query from this address is forwarded to (a container's `--dns`, else
/// the network's).
pub type Upstreams = Arc<dyn Fn(std::net::IpAddr) -> Vec<SocketAddr> + Send + Sync>;

/// Binds `addr` (UDP) and serves; returns the bound address too (for tests).
pub fn serve_on(
    addr: SocketAddr,
    lookup: Lookup,
    upstreams: Upstreams,
) -> Result<(DnsServer, SocketAddr)> {
    let std_sock = std::net::UdpSocket::bind(addr)
        .map_err(|e| NetError::System(format!("binding DNS on {addr}: {e}")))?;
    let local = std_sock
        .local_addr()
        .map_err(|e| NetError::System(e.to_string()))?;
    std_sock
        .set_nonblocking(true)
        .map_err(|e| NetError::System(e.to_string()))?;
    Ok((serve_sockets(std_sock, None, lookup, upstreams)?, local))
}

/// The answer to one query: a name of the network, else the upstreams' answer, else
/// NXDOMAIN. None for what is not a query.
async fn reply(
    msg: &[u8],
    from: std::net::IpAddr,
    lookup: &Lookup,
    upstreams: &Upstreams,
) -> Option<Vec<u8>> {
    let q = parse_query(msg)?;
    let name = q.name.trim_end_matches('.').to_string();
    if let Some(addrs) = lookup(&name, from) {
        return Some(answer(msg, &q, Some(&addrs)));
    }
    let forwarded = forward(msg, &upstreams(from)).await;
    Some(forwarded.unwrap_or_else(|| answer(msg, &q, None)))
}

/// Serves bound non-blocking sockets: UDP, and TCP (length-prefixed messages) when given.
/// Must be called inside a tokio runtime.
pub fn serve_sockets(
    udp: std::net::UdpSocket,
    tcp: Option<std::net::TcpListener>,
    lookup: Lookup,
    upstreams: Upstreams,
) -> Result<DnsServer> {
    let sock = Arc::new(
        tokio::net::UdpSocket::from_std(udp).map_err(|e| NetError::System(e.to_string()))?,
    );
    let tcp = tcp
        .map(tokio::net::TcpListener::from_std)
        .transpose()
        .map_err(|e| NetError::System(e.to_string()))?;
    let mut tasks = Vec::new();
    let (l, u) = (lookup.clone(), upstreams.clone());
    tasks.push(tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            let msg = buf[..n].to_vec();
            let q = parse_query(&msg);
            let local = q
                .as_ref()
                .and_then(|q| l(q.name.trim_end_matches('.'), from.ip()).map(|a| (q, a)));
            if let Some((q, addrs)) = local {
                let _ = sock.send_to(&answer(&msg, q, Some(&addrs)), from).await;
                continue;
            }
            let (sock, l, u) = (sock.clone(), l.clone(), u.clone());
            tokio::spawn(async move {
                if let Some(r) = reply(&msg, from.ip(), &l, &u).await {
                    let _ = sock.send_to(&r, from).await;
                }
            });
        }
    }));
    if let Some(listener) = tcp {
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((conn, from)) = listener.accept().await else {
                    continue;
                };
                let (l, u) = (lookup.clone(), upstreams.clone());
                tokio::spawn(serve_tcp(conn, from.ip(), l, u));
            }
        }));
    }
    Ok(DnsServer { tasks })
}

/// One TCP client: length-prefixed queries until it closes (or 10 s idle).
async fn serve_tcp(
    mut conn: tokio::net::TcpStream,
    from: std::net::IpAddr,
    lookup: Lookup,
    upstreams: Upstreams,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let mut len = [0u8; 2];
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut len)).await;
        if !matches!(read, Ok(Ok(_))) {
            return;
        }
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        if conn.read_exact(&mut msg).await.is_err() {
            return;
        }
        let Some(r) = reply(&msg, from, &lookup, &upstreams).await else {
            return;
        };
        let mut out = (r.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&r);
        if conn.write_all(&out).await.is_err() {
            return;
        }
    }
}

async fn forward(msg: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for up in upstream {
        let bind = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let Ok(s) = tokio::net::UdpSocket::bind(bind).await else {
            continue;
        };
        if s.send_to(msg, up).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(3), s.recv_from(&mut buf)).await
        {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m
    }

    #[test]
    fn parses_and_answers() {
        let m = query("Web.Example", TYPE_A);
        let q = parse_query(&m).unwrap();
        assert_eq!(
            q,
            Question {
                name: "web.example".into(),
                qtype: 1,
                end: m.len()
            }
        );
        let a = answer(&m, &q, Some(&[Ipv4Addr::new(10, 1, 2, 3)]));
        assert_eq!(&a[0..2], &[0x12, 0x34]);
        assert_eq!(a[3] & 0x0f, 0);
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 4..], &[10, 1, 2, 3]);
        let nx = answer(&m, &q, None);
        assert_eq!(nx[3] & 0x0f, 3);
        assert_eq!(u16::from_be_bytes([nx[6], nx[7]]), 0);
        assert!(parse_query(&[0; 5]).is_none());
        assert_eq!(
            upstreams("nameserver 10.0.0.1\nsearch x\nnameserver ::1\n").len(),
            2
        );
    }

    #[tokio::test]
    async fn serves_names_and_forwards_the_rest() {
        // a fake upstream on loopback that answers everything with 9.9.9.9
        let up = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = vec![0u8; 512];
            let (n, from) = up.recv_from(&mut b).await.unwrap();
            let q = parse_query(&b[..n]).unwrap();
            up.send_to(
                &answer(&b[..n], &q, Some(&[Ipv4Addr::new(9, 9, 9, 9)])),
                from,
            )
            .await
            .unwrap();
        });
        let lookup: Lookup =
            Arc::new(|n: &str, _| (n == "web").then(|| vec![Ipv4Addr::new(10, 0, 0, 2)]));
        let upstreams: Upstreams = Arc::new(move |_| vec![up_addr]);
        let (_srv, addr) = serve_on("127.0.0.1:0".parse().unwrap(), lookup, upstreams).unwrap();
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut b = vec![0u8; 512];
        for (name, want) in [("web", [10, 0, 0, 2]), ("other.example", [9, 9, 9, 9])] {
            c.send_to(&query(name, TYPE_A), addr).await.unwrap();
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), c.recv_from(&mut b))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&b[n - 4..n], &want, "{name}");
        }
    }
}
