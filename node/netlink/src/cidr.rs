//! IPv4 networks (`address/prefix`), as routes, pod CIDRs and cluster CIDRs are written.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network with its host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl Cidr {
    /// The network of `address` with `prefix` (host bits cleared). `prefix` must be <= 32.
    pub fn new(address: Ipv4Addr, prefix: u8) -> Cidr {
        assert!(prefix <= 32, "prefix {prefix} > 32");
        Cidr {
            network: Ipv4Addr::from(u32::from(address) & mask(prefix)),
            prefix,
        }
    }

    /// Parses `a.b.c.d/n`; the host bits must be zero (a typo there is refused, not guessed).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a CIDR (address/prefix)"))?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("{text:?}: {address:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{text:?}: prefix must be 0..=32"))?;
        let cidr = Cidr::new(address, prefix);
        if cidr.network != address {
            return Err(format!("{text:?} has host bits set (network is {cidr})"));
        }
        Ok(cidr)
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & mask(self.prefix) == u32::from(self.network)
    }

    /// The number of addresses in the network.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The range of assignable addresses (as u32): without the network and broadcast
    /// addresses, except in /31 and /32 where every address is usable.
    pub fn usable(&self) -> (u32, u32) {
        let first = u32::from(self.network);
        let last = first | !mask(self.prefix);
        if self.prefix >= 31 {
            (first, last)
        } else {
            (first + 1, last - 1)
        }
    }

    /// As the routes of this crate take it.
    pub fn pair(&self) -> (Ipv4Addr, u8) {
        (self.network, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        Cidr::parse(s)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_contains_and_ranges() {
        let c: Cidr = "10.244.1.0/24".parse().unwrap();
        assert!(c.contains(Ipv4Addr::new(10, 244, 1, 200)));
        assert!(!c.contains(Ipv4Addr::new(10, 244, 2, 1)));
        assert_eq!(c.size(), 256);
        assert_eq!(
            c.usable(),
            (
                u32::from(Ipv4Addr::new(10, 244, 1, 1)),
                u32::from(Ipv4Addr::new(10, 244, 1, 254))
            )
        );
        assert!(
            "10.244.1.5/24"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("host bits")
        );
        assert!("10.244.1.0/33".parse::<Cidr>().is_err());
        assert!("10.244.1.0".parse::<Cidr>().is_err());
        assert_eq!(
            Cidr::new(Ipv4Addr::new(10, 244, 1, 5), 16).to_string(),
            "10.244.0.0/16"
        );
        assert!(Cidr::new(Ipv4Addr::UNSPECIFIED, 0).contains(Ipv4Addr::new(8, 8, 8, 8)));
    }
}
