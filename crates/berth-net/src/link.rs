//! Links, addresses and namespaces. Everything on a container's start and stop path
//! (bridge, veth, addresses, routes, namespaces) goes through netlink ([`crate::rtnl`])
//! without spawning a process; a namespace is bind-mounted on `<file>` and the runtime
//! joins it with `NetworkMode::Join(<file>)`. The look-ups (routed subnets, a bridge's
//! subnet, the default MTU) are netlink dumps too: no `ip` is ever run.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::ipam::Subnet;
use crate::rtnl;
use crate::{NetError, Result};

/// Whether a link named `name` exists.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The IPv4 subnets routed on the host, except those on `ignore_dev` (to pick a free one).
pub fn routed_subnets(ignore_dev: &str) -> Vec<Subnet> {
    rtnl::ipv4_routes()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.prefix > 0 && r.dev.as_deref() != Some(ignore_dev))
        .filter_map(|r| format!("{}/{}", r.destination, r.prefix).parse().ok())
        .collect()
}

/// The first IPv4 subnet on an existing `bridge`, if any.
pub fn bridge_subnet(bridge: &str) -> Option<Subnet> {
    let (addr, prefix) = rtnl::ipv4_addresses(bridge).ok()?.into_iter().next()?;
    format!("{addr}/{prefix}").parse().ok()
}

/// Sets `net.ipv4.conf.<bridge>.route_localnet` on Berth's own `bridge` (never a host-wide
/// setting): connections to a port published on 127.0.0.1 are DNATed to a container
/// behind it, and their packets (source 127.0.0.1 until masqueraded) and the answers
/// (to 127.0.0.1 after un-NAT) may then be routed through this bridge.
pub fn set_route_localnet(bridge: &str) -> Result<()> {
    if bridge.is_empty() || bridge.contains('/') || bridge.starts_with('.') {
        return Err(NetError::Invalid(format!("invalid bridge name {bridge:?}")));
    }
    let path = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    std::fs::write(&path, "1").map_err(|e| NetError::System(format!("writing {path}: {e}")))
}

/// Creates `bridge` with `subnet`'s gateway address and brings it up; an existing bridge
/// keeps its links and gets the address if it lacks it. `route_localnet` is set on it
/// ([`set_route_localnet`]). Netlink, no process.
pub fn ensure_bridge(bridge: &str, subnet: &Subnet, mtu: u32) -> Result<()> {
    rtnl::ensure_bridge(bridge, mtu, subnet.gateway(), subnet.prefix)?;
    set_route_localnet(bridge)
}

/// Gives `bridge` its IPv6 gateway address (a dual-stack network). Netlink.
pub fn add_bridge_ipv6(bridge: &str, gateway: Ipv6Addr, prefix: u8) -> Result<()> {
    rtnl::add_address(bridge, IpAddr::V6(gateway), prefix)
}

/// Deletes link `name` (a bridge with its address, a veth with its peer). Netlink.
pub fn delete_link(name: &str) -> Result<()> {
    if link_exists(name) {
        rtnl::delete_link(name)?;
    }
    Ok(())
}

/// Deletes the links `names` off the caller's path: their indexes are taken now and a
/// thread of its own deletes them (a veth's deletion waits for the kernel's RCU grace
/// periods, tens of ms; the namespace's end goes with the namespace anyway).
pub fn delete_links_later(names: &[String]) {
    let idxs: Vec<u32> = names.iter().filter_map(|n| rtnl::link_index(n)).collect();
    if idxs.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("berth-link-del".into())
        .spawn(move || {
            for idx in idxs {
                if let Err(e) = rtnl::delete_index(idx) {
                    tracing::warn!(error = %e, "deleting a container's veth");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "deleting a container's veth");
    }
}

/// A new network namespace bind-mounted on `path` (the file is created). Made on a thread
/// of the daemon's own (see [`rtnl::create_netns`]), no process.
pub fn create_netns(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| NetError::System(format!("creating {}: {e}", dir.display())))?;
    }
    std::fs::File::create(path)
        .map_err(|e| NetError::System(format!("creating {}: {e}", path.display())))?;
    if let Err(e) = rtnl::create_netns(path) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

/// Unmounts and removes a namespace file made by [`create_netns`]; the namespace (and the
/// veth end inside it) goes away with its last user.
pub fn remove_netns(path: &Path) {
    if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) {
        // SAFETY: a valid NUL-terminated path; MNT_DETACH has no other preconditions.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    let _ = std::fs::remove_file(path);
}

/// One container's interface on a bridge.
#[derive(Debug, Clone)]
pub struct Endpoint<'a> {
    pub bridge: &'a str,
    /// Host end of the veth pair.
    pub host_veth: &'a str,
    /// Name inside the namespace (`eth0`).
    pub ifname: &'a str,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    /// Default route; `None` on internal networks.
    pub gateway: Option<Ipv4Addr>,
    pub mac: &'a str,
    pub mtu: u32,
    /// An isolated bridge port: it reaches the bridge (gateway, host) but no other
    /// isolated port (`com.docker.network.bridge.enable_icc=false`).
    pub isolated: bool,
    /// The IPv6 address and prefix on a dual-stack network.
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// The IPv6 default route (`None` on internal networks or without IPv6).
    pub gateway6: Option<Ipv6Addr>,
    /// Link-local IPs (`--link-local-ip`).
    pub link_local: &'a [IpAddr],
}

/// Creates the veth pair with one end in `netns`, enslaves the host end to the bridge and
/// configures address, MAC, MTU, loopback and the default route inside. Netlink.
pub fn attach(netns: &Path, ep: &Endpoint) -> Result<()> {
    // the flows of the address's last user must be gone before it is used again
    let t = crate::timing::Step::new("net.conntrack_wait");
    crate::conntrack::wait_forgotten(ep.ip);
    drop(t);
    let spec = rtnl::VethSpec {
        bridge: ep.bridge.to_string(),
        host_veth: ep.host_veth.to_string(),
        ifname: ep.ifname.to_string(),
        ip: ep.ip,
        prefix: ep.prefix,
        gateway: ep.gateway,
        mac: ep.mac.to_string(),
        mtu: ep.mtu,
        isolated: ep.isolated,
        ip6: ep.ip6,
        gateway6: ep.gateway6,
        extra_addrs: ep
            .link_local
            .iter()
            .map(|ip| (*ip, crate::ipam6::link_local_prefix(*ip)))
            .collect(),
    };
    let _t = crate::timing::Step::new("net.rtnl_attach");
    rtnl::attach(netns, &spec).inspect_err(|_| {
        let _ = delete_link(ep.host_veth);
    })
}

/// The MTU of the host's default-route interface (1500 when unknown).
pub fn default_mtu() -> u32 {
    rtnl::ipv4_routes()
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.prefix == 0)
        .and_then(|r| r.dev)
        .and_then(|d| std::fs::read_to_string(format!("/sys/class/net/{d}/mtu")).ok())
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(1500)
}
