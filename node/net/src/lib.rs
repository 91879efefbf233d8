//! The node agent's pod network (the CNI's node-wide half): this node's podCIDR, the CNI
//! config containerd reads, routes (native) or tunnels (overlay) to the other nodes' podCIDRs,
//! the programs on the uplink and the overlay device, and masquerade for traffic leaving the
//! cluster. The per-pod half is the `skiff-cni` plugin.

pub mod cni_config;
pub mod masquerade;
pub mod network;
pub mod node;
pub mod run;

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 CIDR, normalised to its network address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn new(address: Ipv4Addr, prefix: u8) -> Cidr {
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Cidr {
            network: Ipv4Addr::from(u32::from(address) & mask),
            prefix,
        }
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        Cidr::new(address, self.prefix).network == self.network
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (address, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (address/prefix)"))?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("{s:?} is not an IPv4 CIDR"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{s:?} has a bad prefix length"))?;
        Ok(Cidr::new(address, prefix))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}
