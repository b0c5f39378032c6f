//! Links, addresses, routes and network namespaces through rtnetlink, without spawning a
//! process. Every call runs on a short-lived thread of its own with a current-thread tokio
//! runtime for the netlink connection: callers stay synchronous (from a tokio worker or
//! not), and a call that works inside a container's namespace `setns`es only that thread,
//! which then exits, so no thread of the daemon is ever left in a foreign namespace.

use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rtnetlink::packet_route::address::AddressHeaderFlags;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::{NetError, Result};

fn sys(what: &str, e: impl std::fmt::Display) -> NetError {
    NetError::System(format!("{what}: {e}"))
}

/// Whether a netlink error is EEXIST.
fn exists(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.to_io().raw_os_error() == Some(libc::EEXIST))
}

/// Joins the network namespace bound on `ns` (this thread only).
fn enter_netns(ns: &Path) -> Result<()> {
    let f = File::open(ns).map_err(|e| sys(&format!("opening {}", ns.display()), e))?;
    // SAFETY: a valid open namespace fd; setns changes only the calling thread, which is
    // a thread of our own that exits after this call's work.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(sys(
            &format!("joining {}", ns.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Runs `f` with a netlink handle on a fresh thread, inside `netns` when given.
fn run<T, F, Fut>(netns: Option<PathBuf>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>>,
{
    std::thread::Builder::new()
        .name("berth-rtnl".into())
        .spawn(move || {
            if let Some(ns) = &netns {
                enter_netns(ns)?;
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .map_err(|e| sys("netlink runtime", e))?;
            rt.block_on(async move {
                let (conn, handle, _) =
                    rtnetlink::new_connection().map_err(|e| sys("netlink socket", e))?;
                let task = tokio::spawn(conn);
                let out = f(handle).await;
                task.abort();
                out
            })
        })
        .map_err(|e| sys("netlink thread", e))?
        .join()
        .map_err(|_| NetError::System("netlink thread panicked".into()))?
}

/// The index of link `name` in the calling thread's namespace.
fn index_of(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|e| sys("link name", e))?;
    // SAFETY: a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(sys(
            &format!("link {name}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(idx)
}

fn parse_mac(mac: &str) -> Result<Vec<u8>> {
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| NetError::Invalid(format!("invalid MAC address: {mac}")))?;
    if bytes.len() != 6 {
        return Err(NetError::Invalid(format!("invalid MAC address: {mac}")));
    }
    Ok(bytes)
}

/// Creates bridge `name` (when missing) with MTU `mtu`, gives it `addr/prefix` (when it
/// lacks it) and brings it up.
pub fn ensure_bridge(name: &str, mtu: u32, addr: Ipv4Addr, prefix: u8) -> Result<()> {
    let name = name.to_string();
    run(None, move |h| async move {
        if index_of(&name).is_err() {
            let msg = LinkBridge::new(&name).mtu(mtu).build();
            if let Err(e) = h.link().add(msg).execute().await {
                if !exists(&e) {
                    return Err(sys(&format!("creating bridge {name}"), e));
                }
            }
        }
        let idx = index_of(&name)?;
        if let Err(e) = h
            .address()
            .add(idx, IpAddr::V4(addr), prefix)
            .execute()
            .await
        {
            if !exists(&e) {
                return Err(sys(&format!("adding {addr}/{prefix} to {name}"), e));
            }
        }
        h.link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(|e| sys(&format!("bringing {name} up"), e))
    })
}

/// The index of link `name` in the daemon's namespace.
pub fn link_index(name: &str) -> Option<u32> {
    index_of(name).ok()
}

/// Deletes link number `idx` if it still exists (indexes are not reused soon, unlike
/// names: a veth of the same name made meanwhile is never touched).
pub fn delete_index(idx: u32) -> Result<()> {
    run(None, move |h| async move {
        match h.link().del(idx).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(m))
                if m.to_io().raw_os_error() == Some(libc::ENODEV) =>
            {
                Ok(())
            }
            Err(e) => Err(sys(&format!("deleting link {idx}"), e)),
        }
    })
}

/// Deletes link `name` if it exists (a veth takes its peer with it).
pub fn delete_link(name: &str) -> Result<()> {
    let name = name.to_string();
    run(None, move |h| async move {
        let Ok(idx) = index_of(&name) else {
            return Ok(());
        };
        match h.link().del(idx).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(m))
                if m.to_io().raw_os_error() == Some(libc::ENODEV) =>
            {
                Ok(())
            }
            Err(e) => Err(sys(&format!("deleting {name}"), e)),
        }
    })
}

/// A new network namespace bind-mounted on `path` (which must exist as a file): made by
/// `unshare(CLONE_NEWNET)` on a thread of our own, which then exits.
pub fn create_netns(path: &Path) -> Result<()> {
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || -> Result<()> {
            // SAFETY: unshare of the network namespace affects only this thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(sys(
                    "unshare(CLONE_NEWNET)",
                    std::io::Error::last_os_error(),
                ));
            }
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            let src = std::ffi::CString::new(format!("/proc/self/task/{tid}/ns/net"))
                .map_err(|e| sys("netns path", e))?;
            let dst = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
                .map_err(|e| sys("netns path", e))?;
            // SAFETY: valid NUL-terminated paths; a bind mount with no data.
            let rc = unsafe {
                libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                return Err(sys(
                    &format!("bind-mounting the namespace on {}", path.display()),
                    std::io::Error::last_os_error(),
                ));
            }
            Ok(())
        })
        .map_err(|e| sys("netns thread", e))?
        .join()
        .map_err(|_| NetError::System("netns thread panicked".into()))?
}

/// What [`attach`] sets up.
#[derive(Debug, Clone)]
pub struct VethSpec {
    pub bridge: String,
    pub host_veth: String,
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub mac: String,
    pub mtu: u32,
    pub isolated: bool,
    /// The IPv6 address and prefix on a dual-stack network.
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// The IPv6 default route's gateway.
    pub gateway6: Option<Ipv6Addr>,
    /// Further addresses (link-local IPs) with their prefixes.
    pub extra_addrs: Vec<(IpAddr, u8)>,
}

/// Adds `ip/prefix` to link `idx`; an IPv6 address skips duplicate address detection
/// (it is usable at once, as Docker's are: no settle wait).
async fn add_addr(h: &Handle, idx: u32, ip: IpAddr, prefix: u8) -> Result<()> {
    let mut req = h.address().add(idx, ip, prefix);
    if ip.is_ipv6() {
        req.message_mut().header.flags = AddressHeaderFlags::Nodad;
    }
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if exists(&e) => Ok(()),
        Err(e) => Err(sys(&format!("adding {ip}/{prefix}"), e)),
    }
}

/// Gives link `name` the address `ip/prefix` (kept when it has it already).
pub fn add_address(name: &str, ip: IpAddr, prefix: u8) -> Result<()> {
    let name = name.to_string();
    run(None, move |h| async move {
        let idx = index_of(&name)?;
        add_addr(&h, idx, ip, prefix).await
    })
}

/// The veth pair with its peer made directly in `netns` (so its name never meets the
/// host's), the host end enslaved to the bridge and up; inside: loopback up, MAC,
/// address, link up and the default route.
pub fn attach(netns: &Path, spec: &VethSpec) -> Result<()> {
    let s = spec.clone();
    let ns = netns.to_path_buf();
    let mac = parse_mac(&spec.mac)?;
    run(None, move |h| async move {
        let ns_file = File::open(&ns).map_err(|e| sys(&format!("opening {}", ns.display()), e))?;
        let peer = LinkMessageBuilder::<LinkUnspec>::default()
            .name(s.ifname.clone())
            .mtu(s.mtu)
            .address(mac)
            .setns_by_fd(ns_file.as_raw_fd())
            .build();
        let msg = LinkVeth::new(&s.host_veth, &s.ifname)
            .mtu(s.mtu)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        h.link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| sys(&format!("creating veth {}", s.host_veth), e))?;
        let hidx = index_of(&s.host_veth)?;
        let bidx = index_of(&s.bridge)?;
        h.link()
            .set(LinkUnspec::new_with_index(hidx).controller(bidx).build())
            .execute()
            .await
            .map_err(|e| sys(&format!("adding {} to {}", s.host_veth, s.bridge), e))?;
        if s.isolated {
            h.link()
                .set_port(LinkBridgePort::new(hidx).isolated(true).build())
                .execute()
                .await
                .map_err(|e| sys(&format!("isolating {}", s.host_veth), e))?;
        }
        h.link()
            .set(LinkUnspec::new_with_index(hidx).up().build())
            .execute()
            .await
            .map_err(|e| sys(&format!("bringing {} up", s.host_veth), e))
    })?;
    let s = spec.clone();
    run(Some(netns.to_path_buf()), move |h| async move {
        let lo = index_of("lo")?;
        h.link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(|e| sys("bringing lo up", e))?;
        let idx = index_of(&s.ifname)?;
        h.address()
            .add(idx, IpAddr::V4(s.ip), s.prefix)
            .execute()
            .await
            .map_err(|e| sys(&format!("adding {}/{}", s.ip, s.prefix), e))?;
        h.link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(|e| sys(&format!("bringing {} up", s.ifname), e))?;
        if let Some((ip6, prefix6)) = s.ip6 {
            add_addr(&h, idx, IpAddr::V6(ip6), prefix6).await?;
        }
        for (ip, prefix) in &s.extra_addrs {
            add_addr(&h, idx, *ip, *prefix).await?;
        }
        if let Some(gw) = s.gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(idx)
                .build();
            h.route()
                .add(route)
                .execute()
                .await
                .map_err(|e| sys(&format!("adding the default route via {gw}"), e))?;
        }
        if let Some(gw) = s.gateway6 {
            let route = RouteMessageBuilder::<Ipv6Addr>::new()
                .gateway(gw)
                .output_interface(idx)
                .build();
            h.route()
                .add(route)
                .execute()
                .await
                .map_err(|e| sys(&format!("adding the default route via {gw}"), e))?;
        }
        Ok(())
    })
}

/// One IPv4 route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Addr,
    pub prefix: u8,
    /// The output interface's name.
    pub dev: Option<String>,
}

fn name_of(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    Some(
        unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// The IPv4 routes of the main table (what `ip -4 route show` lists).
pub fn ipv4_routes() -> Result<Vec<Route>> {
    use futures_util::TryStreamExt;
    use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader};
    run(None, |h| async move {
        let mut stream = h
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        let mut out = Vec::new();
        while let Some(m) = stream
            .try_next()
            .await
            .map_err(|e| sys("listing routes", e))?
        {
            let mut table = u32::from(m.header.table);
            let mut destination = Ipv4Addr::UNSPECIFIED;
            let mut dev = None;
            for a in &m.attributes {
                match a {
                    RouteAttribute::Table(t) => table = *t,
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => destination = *d,
                    RouteAttribute::Oif(i) => dev = name_of(*i),
                    _ => {}
                }
            }
            if table == u32::from(RouteHeader::RT_TABLE_MAIN) {
                out.push(Route {
                    destination,
                    prefix: m.header.destination_prefix_length,
                    dev,
                });
            }
        }
        Ok(out)
    })
}

/// The IPv4 addresses (with prefix length) on link `dev`.
pub fn ipv4_addresses(dev: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
    use futures_util::TryStreamExt;
    use rtnetlink::packet_route::address::AddressAttribute;
    let dev = dev.to_string();
    run(None, move |h| async move {
        let idx = index_of(&dev)?;
        let mut stream = h.address().get().set_link_index_filter(idx).execute();
        let mut out = Vec::new();
        while let Some(m) = stream
            .try_next()
            .await
            .map_err(|e| sys(&format!("listing the addresses of {dev}"), e))?
        {
            if m.header.index != idx {
                continue;
            }
            for a in &m.attributes {
                if let AddressAttribute::Address(IpAddr::V4(v4)) = a {
                    out.push((*v4, m.header.prefix_len));
                }
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            vec![2, 0x42, 0xac, 0x11, 0, 2]
        );
        assert!(parse_mac("02:42").is_err());
        assert!(parse_mac("zz:42:ac:11:00:02").is_err());
    }

    #[test]
    fn loopback_has_its_address_and_routes_list() {
        assert!(ipv4_addresses("lo")
            .unwrap()
            .contains(&(Ipv4Addr::LOCALHOST, 8)));
        let ours = || -> Vec<String> {
            ipv4_routes()
                .unwrap()
                .iter()
                .map(|r| match r.prefix {
                    0 => "default".to_string(),
                    32 => r.destination.to_string(),
                    p => format!("{}/{p}", r.destination),
                })
                .collect()
        };
        let theirs = || -> Option<Vec<String>> {
            let out = std::process::Command::new("ip")
                .args(["-4", "-o", "route", "show"])
                .output()
                .ok()?;
            Some(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| l.split_whitespace().next().map(String::from))
                    .collect(),
            )
        };
        // what iproute2 lists, where it is installed (other tests add and remove routes
        // meanwhile: a few tries)
        if theirs().is_some() {
            let same = (0..5).any(|_| {
                let (t, o) = (theirs().unwrap_or_default(), ours());
                t.iter().all(|r| o.contains(r))
            });
            assert!(same, "{:?} vs {:?}", theirs(), ours());
        }
    }
}
