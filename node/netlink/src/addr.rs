//! IPv4 addresses.

use std::net::Ipv4Addr;

use crate::message::{
    Message, NLM_F_CREATE, NLM_F_EXCL, RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR, attrs, ipv4_of,
};
use crate::{Netlink, Result};

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

fn ifaddrmsg(prefix: u8, index: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = libc::AF_INET as u8;
    b[1] = prefix;
    b[3] = 0; // RT_SCOPE_UNIVERSE
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b
}

impl Netlink {
    /// Adds `address/prefix` to link `index` (EEXIST when it is there already).
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut m = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.raw(&ifaddrmsg(prefix, index));
        m.attr(IFA_LOCAL, &address.octets());
        m.attr(IFA_ADDRESS, &address.octets());
        self.execute(m, &|| {
            format!("adding address {address}/{prefix} to link {index}")
        })
    }

    /// Removes `address/prefix` from link `index`.
    pub fn delete_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut m = Message::new(RTM_DELADDR, 0);
        m.raw(&ifaddrmsg(prefix, index));
        m.attr(IFA_LOCAL, &address.octets());
        m.attr(IFA_ADDRESS, &address.octets());
        self.execute(m, &|| {
            format!("deleting address {address}/{prefix} from link {index}")
        })
    }

    /// The IPv4 addresses of link `index`.
    pub fn addresses(&mut self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>> {
        let mut m = Message::new(RTM_GETADDR, 0);
        m.raw(&ifaddrmsg(0, 0));
        let mut found = Vec::new();
        self.dump(m, &|| "listing addresses".to_owned(), &mut |_, payload| {
            let Some(header) = payload.get(..8) else {
                return;
            };
            let link = u32::from_ne_bytes(header[4..8].try_into().unwrap());
            if header[0] != libc::AF_INET as u8 || link != index {
                return;
            }
            let mut local = None;
            let mut address = None;
            for (kind, value) in attrs(&payload[8..]) {
                match kind {
                    IFA_LOCAL => local = ipv4_of(value),
                    IFA_ADDRESS => address = ipv4_of(value),
                    _ => {}
                }
            }
            if let Some(ip) = local.or(address) {
                found.push((ip, header[1]));
            }
        })?;
        Ok(found)
    }
}
