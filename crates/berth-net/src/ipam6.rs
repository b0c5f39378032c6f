//! IPv6 subnets and address allocation for dual-stack networks (`--ipv6 --subnet
//! fd00::/64`), the counterpart of [`crate::ipam`]: pure, the caller passes the addresses
//! in use. Addresses are handed out from the subnet's (or `--ip-range`'s) network address
//! + 1 up, as Docker's default IPAM does, skipping the gateway.

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use crate::{NetError, Result};

/// An IPv6 subnet such as `fd00::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet6 {
    /// The network address (host bits zero).
    pub network: Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    fn mask(&self) -> u128 {
        if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - self.prefix as u32)
        }
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.network)
    }

    pub fn overlaps(&self, other: &Subnet6) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The first host address: the bridge's gateway when none is given (`fd00::1`).
    pub fn gateway(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network) + 1)
    }

    fn last(&self) -> u128 {
        u128::from(self.network) | !self.mask()
    }
}

impl FromStr for Subnet6 {
    type Err = NetError;
    /// `addr/n`; host bits are masked off.
    fn from_str(s: &str) -> Result<Subnet6> {
        let bad = || NetError::Invalid(format!("invalid CIDR address: {s}"));
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 128).ok_or_else(bad)?;
        if prefix > 126 {
            return Err(bad());
        }
        let mut s = Subnet6 {
            network: addr,
            prefix,
        };
        s.network = Ipv6Addr::from(u128::from(addr) & s.mask());
        Ok(s)
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The IPv6 side of a network: where its addresses come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space6 {
    pub subnet: Subnet6,
    pub gateway: Ipv6Addr,
    /// `--ip-range` for IPv6: addresses picked without a request come from here.
    pub range: Option<Subnet6>,
}

impl Space6 {
    /// The lowest free address of the range (or subnet).
    pub fn allocate(&self, used: &[Ipv6Addr]) -> Result<Ipv6Addr> {
        let pool = self.range.unwrap_or(self.subnet);
        let first = u128::from(pool.network) + 1;
        let last = pool.last().min(self.subnet.last());
        // a /64 has 2^64 addresses: look at a bounded window past the used ones
        let tries = used.len() as u128 + 2;
        (first..=last)
            .take(tries as usize)
            .map(Ipv6Addr::from)
            .find(|ip| *ip != self.gateway && !used.contains(ip))
            .ok_or_else(|| {
                NetError::Conflict(
                    "no available IPv6 addresses on this network's address pools".into(),
                )
            })
    }

    /// A requested address (`--ip6`), checked as Docker's IPAM checks it.
    pub fn check_requested(&self, ip: Ipv6Addr, used: &[Ipv6Addr]) -> Result<Ipv6Addr> {
        if !self.subnet.contains(ip) || ip == self.subnet.network {
            return Err(NetError::Invalid(format!(
                "Invalid address {ip}: It does not belong to any of this network's subnets"
            )));
        }
        if ip == self.gateway || used.contains(&ip) {
            return Err(NetError::Conflict("Address already in use".into()));
        }
        Ok(ip)
    }
}

/// A link-local address (`--link-local-ip`) as Docker checks them: IPv4 in
/// 169.254.0.0/16, IPv6 in fe80::/10. Docker's text for a bad one.
pub fn parse_link_local(ips: &[String]) -> Result<Vec<IpAddr>> {
    ips.iter()
        .map(|s| {
            let ip: IpAddr = s.parse().map_err(|_| {
                NetError::Invalid(format!(
                    "Invalid link-local IP address: [{}]",
                    ips.join(" ")
                ))
            })?;
            let link_local = match ip {
                IpAddr::V4(v4) => v4.is_link_local(),
                IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
            };
            if !link_local {
                return Err(NetError::Invalid(format!(
                    "Invalid link-local IP address: [{}]",
                    ips.join(" ")
                )));
            }
            Ok(ip)
        })
        .collect()
}

/// The prefix a link-local address gets on the interface (Docker: /16 and /64).
pub fn link_local_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 16,
        IpAddr::V6(_) => 64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_allocate_and_check_as_docker() {
        let s: Subnet6 = "2001:389::1/64".parse().unwrap();
        assert_eq!(s.to_string(), "2001:389::/64");
        let space = Space6 {
            subnet: s,
            gateway: s.gateway(),
            range: None,
        };
        let a = space.allocate(&[]).unwrap();
        assert_eq!(a, "2001:389::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            space.allocate(&[a]).unwrap(),
            "2001:389::3".parse::<Ipv6Addr>().unwrap()
        );
        let f00d: Ipv6Addr = "2001:389::f00d".parse().unwrap();
        assert_eq!(space.check_requested(f00d, &[]).unwrap(), f00d);
        assert!(matches!(
            space.check_requested(f00d, &[f00d]),
            Err(NetError::Conflict(_))
        ));
        let out = space
            .check_requested("fd00:2::5".parse().unwrap(), &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            out,
            "Invalid address fd00:2::5: It does not belong to any of this network's subnets"
        );
        assert!("fd00::/127".parse::<Subnet6>().is_err());
        assert!("10.0.0.0/8".parse::<Subnet6>().is_err());
    }

    #[test]
    fn link_local_addresses_are_checked() {
        let ok = parse_link_local(&["169.254.8.8".into(), "fe80::5".into()]).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(link_local_prefix(ok[0]), 16);
        let bad = parse_link_local(&["zz".into()]).unwrap_err().to_string();
        assert_eq!(bad, "Invalid link-local IP address: [zz]");
        assert!(parse_link_local(&["10.0.0.1".into()]).is_err());
    }
}
