//! IPv4 neighbour entries.

use std::net::Ipv4Addr;

use crate::message::{
    Message, NLM_F_CREATE, NLM_F_REPLACE, RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH, attrs, ipv4_of,
};
use crate::{Netlink, Result};

const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NUD_PERMANENT: u16 = 0x80;

fn ndmsg(index: u32, state: u16) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0] = libc::AF_INET as u8;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..10].copy_from_slice(&state.to_ne_bytes());
    b
}

/// A neighbour entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    pub dev: u32,
    pub address: Ipv4Addr,
    pub mac: Option<[u8; 6]>,
    pub permanent: bool,
}

impl Netlink {
    /// Adds (or replaces) a PERMANENT entry `address lladdr mac dev index`: never resolved,
    /// never expires.
    pub fn add_permanent_neighbour(
        &mut self,
        index: u32,
        address: Ipv4Addr,
        mac: [u8; 6],
    ) -> Result<()> {
        let mut m = Message::new(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
        m.raw(&ndmsg(index, NUD_PERMANENT));
        m.attr(NDA_DST, &address.octets());
        m.attr(NDA_LLADDR, &mac);
        self.execute(m, &|| format!("adding neighbour {address} dev {index}"))
    }

    /// Deletes the entry for `address` on link `index`.
    pub fn delete_neighbour(&mut self, index: u32, address: Ipv4Addr) -> Result<()> {
        let mut m = Message::new(RTM_DELNEIGH, 0);
        m.raw(&ndmsg(index, 0));
        m.attr(NDA_DST, &address.octets());
        self.execute(m, &|| format!("deleting neighbour {address} dev {index}"))
    }

    /// The IPv4 neighbour entries.
    pub fn neighbours(&mut self) -> Result<Vec<Neighbour>> {
        let mut m = Message::new(RTM_GETNEIGH, 0);
        m.raw(&ndmsg(0, 0));
        let mut found = Vec::new();
        self.dump(m, &|| "listing neighbours".to_owned(), &mut |_, payload| {
            let Some(header) = payload.get(..12) else {
                return;
            };
            if header[0] != libc::AF_INET as u8 {
                return;
            }
            let mut entry = Neighbour {
                dev: u32::from_ne_bytes(header[4..8].try_into().unwrap()),
                address: Ipv4Addr::UNSPECIFIED,
                mac: None,
                permanent: u16::from_ne_bytes([header[8], header[9]]) & NUD_PERMANENT != 0,
            };
            for (kind, value) in attrs(&payload[12..]) {
                match kind {
                    NDA_DST => entry.address = ipv4_of(value).unwrap_or(Ipv4Addr::UNSPECIFIED),
                    NDA_LLADDR if value.len() == 6 => entry.mac = Some(value.try_into().unwrap()),
                    _ => {}
                }
            }
            found.push(entry);
        })?;
        Ok(found)
    }
}
