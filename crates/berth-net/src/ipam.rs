//! IPv4 subnets and address allocation. The allocator is pure: the caller passes the
//! addresses in use (persisted by the daemon) and stores what it gets back.

use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::{NetError, Result};

/// An IPv4 subnet such as `172.17.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        if !(8..=30).contains(&prefix) {
            return Err(NetError::Invalid(format!(
                "invalid subnet prefix length {prefix}"
            )));
        }
        let mask = Self::mask_of(prefix);
        Ok(Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    fn mask_of(prefix: u8) -> u32 {
        u32::MAX << (32 - prefix as u32)
    }

    pub fn mask(&self) -> u32 {
        Self::mask_of(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// Whether two subnets share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The first host address, used as the bridge's gateway (`172.17.0.1`).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }
}

/// The addresses a network hands out: its subnet, narrowed by `--ip-range` for the ones
/// it picks itself, less the reserved ones (the gateway, `--aux-address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressSpace {
    pub subnet: Subnet,
    /// `--ip-range`: addresses picked without a request come from here (its own network
    /// address excluded, as Docker's IPAM does); requested ones may lie anywhere in the subnet.
    pub range: Option<Subnet>,
    pub reserved: Vec<Ipv4Addr>,
}

impl AddressSpace {
    fn taken(&self, ip: Ipv4Addr, used: &[Ipv4Addr]) -> bool {
        used.contains(&ip) || self.reserved.contains(&ip)
    }

    /// The lowest free address of the range (or subnet) that is not the network or
    /// broadcast address; a Conflict error when none is left.
    pub fn allocate(&self, used: &[Ipv4Addr]) -> Result<Ipv4Addr> {
        let pool = self.range.unwrap_or(self.subnet);
        let first = u32::from(pool.network) + 1;
        let last = u32::from(pool.broadcast()).min(u32::from(self.subnet.broadcast()) - 1);
        (first..=last)
            .map(Ipv4Addr::from)
            .find(|ip| !self.taken(*ip, used))
            .ok_or_else(|| {
                NetError::Conflict(
                    "no available IPv4 addresses on this network's address pools".into(),
                )
            })
    }

    /// A requested address (`--ip`), checked as Docker's IPAM checks it.
    pub fn check_requested(&self, ip: Ipv4Addr, used: &[Ipv4Addr]) -> Result<Ipv4Addr> {
        if !self.subnet.contains(ip) || ip == self.subnet.network || ip == self.subnet.broadcast() {
            return Err(NetError::Invalid(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
        if self.taken(ip, used) {
            return Err(NetError::Conflict("Address already in use".into()));
        }
        Ok(ip)
    }
}

impl FromStr for Subnet {
    type Err = NetError;
    /// `a.b.c.d/n`; a host address is accepted and masked (`--bip 172.18.0.1/16`).
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = || NetError::Invalid(format!("invalid CIDR address: {s}"));
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
        Subnet::new(addr, prefix)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Docker's MAC for an address: `02:42` followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// Docker's default bridge subnet when free, else the first free /16 of 172.18–172.31
/// (then 192.168.0.0/20 blocks); `taken` are the host's routed subnets.
pub fn pick_default_subnet(taken: &[Subnet]) -> Result<Subnet> {
    let candidates = (17..=31u8)
        .map(|b| Subnet {
            network: Ipv4Addr::new(172, b, 0, 0),
            prefix: 16,
        })
        .chain((0..16u8).map(|i| Subnet {
            network: Ipv4Addr::new(192, 168, i * 16, 0),
            prefix: 20,
        }));
    for c in candidates {
        if !taken.iter().any(|t| t.overlaps(&c)) {
            return Ok(c);
        }
    }
    Err(NetError::Conflict(
        "could not find an available, non-overlapping IPv4 address pool".into(),
    ))
}

/// One `--default-address-pool base=10.10.0.0/16,size=24`: networks created without a
/// subnet get the first free `/size` block of `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPool {
    pub base: Subnet,
    pub size: u8,
}

impl AddressPool {
    /// The `/size` blocks of `base`, lowest first.
    fn blocks(&self) -> impl Iterator<Item = Subnet> + '_ {
        let step = 1u64 << (32 - self.size as u32);
        let count = 1u64 << (self.size - self.base.prefix) as u32;
        let start = u32::from(self.base.network) as u64;
        (0..count).map(move |i| Subnet {
            network: Ipv4Addr::from((start + i * step) as u32),
            prefix: self.size,
        })
    }
}

impl FromStr for AddressPool {
    type Err = NetError;
    /// Docker's syntax: comma-separated `base=CIDR` and `size=N` (both required).
    fn from_str(s: &str) -> Result<AddressPool> {
        let mut base = None;
        let mut size = None;
        for field in s.split(',') {
            let (key, value) = field.split_once('=').ok_or_else(|| {
                NetError::Invalid(format!("invalid field '{field}' must be a key=value pair"))
            })?;
            match key.trim().to_ascii_lowercase().as_str() {
                "base" => base = Some(value.parse::<Subnet>()?),
                "size" => {
                    size = Some(value.parse::<u8>().map_err(|_| {
                        NetError::Invalid(format!("invalid size value {value:?} in '{s}'"))
                    })?)
                }
                _ => {
                    return Err(NetError::Invalid(format!(
                        "unexpected key '{key}' in '{field}'"
                    )))
                }
            }
        }
        let base =
            base.ok_or_else(|| NetError::Invalid(format!("address pool {s:?}: base is required")))?;
        let size =
            size.ok_or_else(|| NetError::Invalid(format!("address pool {s:?}: size is required")))?;
        if size < base.prefix || size > 30 {
            return Err(NetError::Invalid(format!(
                "invalid pool {s:?}: size {size} must be between the base's prefix length {} and 30",
                base.prefix
            )));
        }
        Ok(AddressPool { base, size })
    }
}

/// The subnet for a network created without one: the first block of the first pool that
/// overlaps nothing in `taken` (routes and other networks); with no pools, Docker's defaults
/// ([`pick_default_subnet`]).
pub fn pick_subnet(pools: &[AddressPool], taken: &[Subnet]) -> Result<Subnet> {
    if pools.is_empty() {
        return pick_default_subnet(taken);
    }
    pools
        .iter()
        .flat_map(|p| p.blocks())
        .find(|c| !taken.iter().any(|t| t.overlaps(c)))
        .ok_or_else(|| {
            NetError::Conflict(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
                    .into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_masks() {
        let s: Subnet = "172.18.0.1/16".parse().unwrap();
        assert_eq!(s.to_string(), "172.18.0.0/16");
        assert_eq!(s.gateway(), Ipv4Addr::new(172, 18, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(172, 18, 255, 255));
        assert!("172.18.0.0".parse::<Subnet>().is_err());
        assert!("300.1.0.0/16".parse::<Subnet>().is_err());
        assert!("10.0.0.0/31".parse::<Subnet>().is_err());
    }

    fn space(subnet: &str, range: Option<&str>, reserved: &[Ipv4Addr]) -> AddressSpace {
        AddressSpace {
            subnet: subnet.parse().unwrap(),
            range: range.map(|r| r.parse().unwrap()),
            reserved: reserved.to_vec(),
        }
    }

    #[test]
    fn allocates_lowest_free_and_reuses_released() {
        let s = space("10.1.0.0/29", None, &[Ipv4Addr::new(10, 1, 0, 1)]);
        let a = s.allocate(&[]).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 1, 0, 2));
        let b = s.allocate(&[a]).unwrap();
        assert_eq!(b, Ipv4Addr::new(10, 1, 0, 3));
        // a released: it comes back first
        assert_eq!(s.allocate(&[b]).unwrap(), a);
        let all: Vec<_> = (2..=6).map(|i| Ipv4Addr::new(10, 1, 0, i)).collect();
        assert!(matches!(s.allocate(&all), Err(NetError::Conflict(_))));
    }

    #[test]
    fn ip_range_and_aux_addresses_as_docker_allocates() {
        // dockerd 20.10: --subnet 10.66.0.0/16 --ip-range 10.66.9.0/30 gives .1, .2, .3, then none
        let s = space(
            "10.66.0.0/16",
            Some("10.66.9.0/30"),
            &[Ipv4Addr::new(10, 66, 0, 1)],
        );
        let mut used = Vec::new();
        for want in 1..=3 {
            let ip = s.allocate(&used).unwrap();
            assert_eq!(ip, Ipv4Addr::new(10, 66, 9, want));
            used.push(ip);
        }
        assert!(matches!(s.allocate(&used), Err(NetError::Conflict(_))));
        // a requested address may lie outside the range, not on a reserved one
        assert_eq!(
            s.check_requested(Ipv4Addr::new(10, 66, 0, 9), &used)
                .unwrap(),
            Ipv4Addr::new(10, 66, 0, 9)
        );
        assert!(matches!(
            s.check_requested(Ipv4Addr::new(10, 66, 0, 1), &used),
            Err(NetError::Conflict(_))
        ));
        assert!(matches!(
            s.check_requested(Ipv4Addr::new(10, 67, 0, 1), &used),
            Err(NetError::Invalid(_))
        ));
        assert!(matches!(
            s.check_requested(Ipv4Addr::new(10, 66, 255, 255), &used),
            Err(NetError::Invalid(_))
        ));
        // an aux address is skipped: --ip-range 10.65.9.0/24 --aux-address b=10.65.9.1 starts at .2
        let s = space(
            "10.65.0.0/16",
            Some("10.65.9.0/24"),
            &[Ipv4Addr::new(10, 65, 0, 1), Ipv4Addr::new(10, 65, 9, 1)],
        );
        assert_eq!(s.allocate(&[]).unwrap(), Ipv4Addr::new(10, 65, 9, 2));
        // a range at the end of the subnet never hands out the broadcast address
        let s = space("10.1.0.0/24", Some("10.1.0.252/30"), &[]);
        assert_eq!(
            s.allocate(&[Ipv4Addr::new(10, 1, 0, 253)]).unwrap(),
            Ipv4Addr::new(10, 1, 0, 254)
        );
        assert!(s
            .allocate(&[Ipv4Addr::new(10, 1, 0, 253), Ipv4Addr::new(10, 1, 0, 254)])
            .is_err());
    }

    #[test]
    fn default_subnet_skips_taken_routes() {
        assert_eq!(
            pick_default_subnet(&[]).unwrap().to_string(),
            "172.17.0.0/16"
        );
        let taken = vec![
            "172.17.5.0/24".parse().unwrap(),
            "172.16.0.0/12".parse::<Subnet>().unwrap(),
        ];
        assert_eq!(
            pick_default_subnet(&taken).unwrap().to_string(),
            "192.168.0.0/20"
        );
        let taken = vec!["172.17.0.0/16".parse::<Subnet>().unwrap()];
        assert_eq!(
            pick_default_subnet(&taken).unwrap().to_string(),
            "172.18.0.0/16"
        );
    }

    #[test]
    fn docker_mac() {
        assert_eq!(mac_for(Ipv4Addr::new(172, 17, 0, 2)), "02:42:ac:11:00:02");
    }

    #[test]
    fn parses_address_pools_in_docker_syntax() {
        let p: AddressPool = "base=10.10.0.0/16,size=24".parse().unwrap();
        assert_eq!(p.base.to_string(), "10.10.0.0/16");
        assert_eq!(p.size, 24);
        for bad in [
            "base=10.10.0.0/16",
            "size=24",
            "base=10.10.0.0/16,size=8",
            "base=10.10.0.0/16,size=31",
            "base=10.10.0.0/16,size=x",
            "base=10.10.0.0,size=24",
            "base=10.10.0.0/16,mask=24",
            "10.10.0.0/16",
        ] {
            assert!(bad.parse::<AddressPool>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn pool_blocks_skip_taken_and_move_to_the_next_pool() {
        let pools: Vec<AddressPool> = ["base=10.10.0.0/22,size=24", "base=10.20.0.0/16,size=20"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(
            pick_subnet(&pools, &[]).unwrap().to_string(),
            "10.10.0.0/24"
        );
        // a route inside the first block, a network on the second
        let taken: Vec<Subnet> = vec![
            "10.10.0.128/25".parse().unwrap(),
            "10.10.1.0/24".parse().unwrap(),
        ];
        assert_eq!(
            pick_subnet(&pools, &taken).unwrap().to_string(),
            "10.10.2.0/24"
        );
        // a route wider than a block covers several
        let taken: Vec<Subnet> = vec!["10.10.0.0/23".parse().unwrap()];
        assert_eq!(
            pick_subnet(&pools, &taken).unwrap().to_string(),
            "10.10.2.0/24"
        );
        // the whole first pool taken: the second one's first block
        let taken: Vec<Subnet> = vec!["10.10.0.0/16".parse().unwrap()];
        assert_eq!(
            pick_subnet(&pools, &taken).unwrap().to_string(),
            "10.20.0.0/20"
        );
        let taken: Vec<Subnet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(matches!(
            pick_subnet(&pools, &taken),
            Err(NetError::Conflict(_))
        ));
        // no pools: Docker's defaults
        assert_eq!(pick_subnet(&[], &[]).unwrap().to_string(), "172.17.0.0/16");
    }
}
