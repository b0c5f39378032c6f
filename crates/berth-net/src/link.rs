//! Links, addresses and namespaces, driven with iproute2 and util-linux. Network
//! namespaces are made by a spawned `unshare --net=<file>` (the daemon is multi-threaded
//! and cannot `unshare(CLONE_NEWNET)` itself), which bind-mounts the new namespace on
//! `<file>`; the runtime then joins it with `NetworkMode::Join(<file>)`.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::ipam::Subnet;
use crate::{NetError, Result};

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetError::System(format!("running {cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(NetError::System(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip_batch(netns: Option<&Path>, script: &str) -> Result<()> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display())).arg("ip");
            c
        }
        None => Command::new("ip"),
    };
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::System(format!("running ip: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NetError::System(format!("writing to ip: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::System(format!("running ip: {e}")))?;
    if !out.status.success() {
        return Err(NetError::System(format!(
            "ip failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Whether a link named `name` exists.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The IPv4 subnets routed on the host, except those on `ignore_dev` (to pick a free one).
pub fn routed_subnets(ignore_dev: &str) -> Vec<Subnet> {
    let Ok(out) = run(Command::new("ip").args(["-4", "-o", "route", "show"])) else {
        return Vec::new();
    };
    out.lines()
        .filter(|l| {
            !l.split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| w[0] == "dev" && w[1] == ignore_dev)
        })
        .filter_map(|l| l.split_whitespace().next())
        .filter(|d| *d != "default")
        .filter_map(|d| {
            if d.contains('/') {
                d.parse().ok()
            } else {
                format!("{d}/32").parse().ok()
            }
        })
        .collect()
}

/// The first IPv4 subnet on an existing `bridge`, if any.
pub fn bridge_subnet(bridge: &str) -> Option<Subnet> {
    let out = run(Command::new("ip").args(["-4", "-o", "addr", "show", "dev", bridge])).ok()?;
    out.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|c| c.parse().ok())
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
/// ([`set_route_localnet`]).
pub fn ensure_bridge(bridge: &str, subnet: &Subnet, mtu: u32) -> Result<()> {
    if !link_exists(bridge) {
        ip_batch(
            None,
            &format!("link add name {bridge} mtu {mtu} type bridge\n"),
        )?;
    }
    let cidr = format!("{}/{}", subnet.gateway(), subnet.prefix);
    let has =
        run(Command::new("ip").args(["-4", "-o", "addr", "show", "dev", bridge]))?.contains(&cidr);
    let mut script = String::new();
    if !has {
        script.push_str(&format!("addr add {cidr} dev {bridge}\n"));
    }
    script.push_str(&format!("link set {bridge} up\n"));
    ip_batch(None, &script)?;
    set_route_localnet(bridge)
}

/// Deletes `bridge` (with its address and any link still enslaved).
pub fn delete_link(name: &str) -> Result<()> {
    if link_exists(name) {
        ip_batch(None, &format!("link del {name}\n"))?;
    }
    Ok(())
}

/// A new network namespace bind-mounted on `path` (the file is created).
pub fn create_netns(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| NetError::System(format!("creating {}: {e}", dir.display())))?;
    }
    std::fs::File::create(path)
        .map_err(|e| NetError::System(format!("creating {}: {e}", path.display())))?;
    if let Err(e) = run(Command::new("unshare")
        .arg(format!("--net={}", path.display()))
        .arg("true"))
    {
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
}

/// Creates the veth pair with one end in `netns`, enslaves the host end to the bridge and
/// configures address, MAC, MTU, loopback and the default route inside.
pub fn attach(netns: &Path, ep: &Endpoint) -> Result<()> {
    let mut host = format!(
        "link add {hv} mtu {mtu} type veth peer name {ifn} mtu {mtu} netns {ns}\n\
         link set {hv} master {br}\n",
        hv = ep.host_veth,
        mtu = ep.mtu,
        ifn = ep.ifname,
        ns = netns.display(),
        br = ep.bridge
    );
    if ep.isolated {
        host.push_str(&format!(
            "link set {} type bridge_slave isolated on\n",
            ep.host_veth
        ));
    }
    host.push_str(&format!("link set {} up\n", ep.host_veth));
    ip_batch(None, &host).inspect_err(|_| {
        let _ = delete_link(ep.host_veth);
    })?;
    let mut inside = format!(
        "link set lo up\nlink set {ifn} address {mac}\naddr add {ip}/{p} dev {ifn}\nlink set {ifn} up\n",
        ifn = ep.ifname,
        mac = ep.mac,
        ip = ep.ip,
        p = ep.prefix
    );
    if let Some(gw) = ep.gateway {
        inside.push_str(&format!("route add default via {gw} dev {}\n", ep.ifname));
    }
    ip_batch(Some(netns), &inside).inspect_err(|_| {
        let _ = delete_link(ep.host_veth);
    })
}

/// The MTU of the host's default-route interface (1500 when unknown).
pub fn default_mtu() -> u32 {
    let dev = run(Command::new("ip").args(["-4", "-o", "route", "show", "default"]))
        .ok()
        .and_then(|o| {
            let w: Vec<String> = o.split_whitespace().map(String::from).collect();
            w.windows(2).find(|w| w[0] == "dev").map(|w| w[1].clone())
        });
    dev.and_then(|d| std::fs::read_to_string(format!("/sys/class/net/{d}/mtu")).ok())
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(1500)
}
