//! Links: veth pairs (the peer created directly in another namespace), VXLAN in
//! collect-metadata mode, up/down, MTU, lookup by name, deletion.

use std::os::fd::AsRawFd;

use crate::message::{
    Message, NLM_F_CREATE, NLM_F_EXCL, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, attrs, ifinfomsg,
    str_of, u32_of,
};
use crate::{Netlink, NetnsFile, Result};

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_TSO_MAX_SIZE: u16 = 59;
const IFLA_GSO_IPV4_MAX_SIZE: u16 = 63;
const IFLA_GRO_IPV4_MAX_SIZE: u16 = 64;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_VXLAN_LEARNING: u16 = 7;
const IFLA_VXLAN_PORT: u16 = 15;
const IFLA_VXLAN_COLLECT_METADATA: u16 = 25;

const IFF_UP: u32 = libc::IFF_UP as u32;
const IFF_NOARP: u32 = libc::IFF_NOARP as u32;

/// What a link lookup reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// IFF_UP is set (administratively up).
    pub up: bool,
    /// The largest IPv4 GSO packet the stack builds for this link (64 KiB unless BIG TCP).
    pub gso_ipv4_max: u32,
    /// The largest segmentation offload packet the device can take (BIG TCP's ceiling).
    pub tso_max: u32,
}

/// One end of a veth pair to create.
#[derive(Clone, Copy, Debug)]
pub struct VethEnd<'a> {
    pub name: &'a str,
    /// The namespace to create it in; `None`: the socket's namespace.
    pub netns: Option<&'a NetnsFile>,
    pub mtu: Option<u32>,
    /// IPv4 GSO/GRO packets up to this size (BIG TCP, above 64 KiB; Linux 6.3+).
    pub gso_ipv4_max: Option<u32>,
}

fn name_attrs(m: &mut Message, end: &VethEnd<'_>) {
    m.attr_str(IFLA_IFNAME, end.name);
    if let Some(mtu) = end.mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    if let Some(size) = end.gso_ipv4_max {
        gso_attrs(m, size);
    }
    if let Some(netns) = end.netns {
        m.attr_u32(IFLA_NET_NS_FD, netns.fd().as_raw_fd() as u32);
    }
}

impl Netlink {
    /// Creates a veth pair in one request; each end may be placed in another namespace, so no
    /// later move (and no rename) is needed. Fails with EEXIST when a name is taken.
    pub fn create_veth(&mut self, local: VethEnd<'_>, peer: VethEnd<'_>) -> Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.raw(&ifinfomsg(libc::AF_UNSPEC as u8, 0, 0, 0));
        name_attrs(&mut m, &local);
        let info = m.begin_nested(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        let data = m.begin_nested(IFLA_INFO_DATA);
        let peer_nest = m.begin_nested(VETH_INFO_PEER);
        m.raw(&ifinfomsg(libc::AF_UNSPEC as u8, 0, 0, 0));
        name_attrs(&mut m, &peer);
        m.end_nested(peer_nest);
        m.end_nested(data);
        m.end_nested(info);
        self.execute(m, &|| {
            format!("creating veth {} / {}", local.name, peer.name)
        })
    }

    /// Creates a VXLAN device in collect-metadata ("external") mode: one device for every
    /// remote, the tunnel key set per packet by BPF. Learning is off.
    pub fn create_vxlan_external(
        &mut self,
        name: &str,
        dstport: u16,
        mtu: Option<u32>,
    ) -> Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.raw(&ifinfomsg(libc::AF_UNSPEC as u8, 0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        if let Some(mtu) = mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        let info = m.begin_nested(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "vxlan");
        let data = m.begin_nested(IFLA_INFO_DATA);
        m.attr(IFLA_VXLAN_COLLECT_METADATA, &[1]);
        m.attr(IFLA_VXLAN_LEARNING, &[0]);
        m.attr(IFLA_VXLAN_PORT, &dstport.to_be_bytes());
        m.end_nested(data);
        m.end_nested(info);
        self.execute(m, &|| {
            format!("creating vxlan {name} (external, port {dstport})")
        })
    }

    /// Sets a link administratively up or down.
    pub fn set_up(&mut self, index: u32, up: bool) -> Result<()> {
        self.set_flag(index, IFF_UP, up, if up { "up" } else { "down" })
    }

    /// Turns ARP on or off on a link (`ip link set ... arp on|off`).
    pub fn set_arp(&mut self, index: u32, arp: bool) -> Result<()> {
        self.set_flag(
            index,
            IFF_NOARP,
            !arp,
            if arp { "arp on" } else { "arp off" },
        )
    }

    fn set_flag(&mut self, index: u32, flag: u32, on: bool, what: &str) -> Result<()> {
        let mut m = Message::new(RTM_NEWLINK, 0);
        m.raw(&ifinfomsg(
            libc::AF_UNSPEC as u8,
            index as i32,
            if on { flag } else { 0 },
            flag,
        ));
        self.execute(m, &|| format!("setting link {index} {what}"))
    }

    /// Sets a link's MTU.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        let mut m = Message::new(RTM_NEWLINK, 0);
        m.raw(&ifinfomsg(libc::AF_UNSPEC as u8, index as i32, 0, 0));
        m.attr_u32(IFLA_MTU, mtu);
        self.execute(m, &|| format!("setting link {index} mtu {mtu}"))
    }

    /// Lets the stack build IPv4 GSO packets (and GRO merge them) up to `size` bytes on a link:
    /// BIG TCP when above 64 KiB. The kernel refuses more than the device's `tso_max`.
    pub fn set_gso_ipv4_max(&mut self, index: u32, size: u32) -> Result<()> {
        let mut m = Message::new(RTM_NEWLINK, 0);
        m.raw(&ifinfomsg(libc::AF_UNSPEC as u8, index as i32, 0, 0));
        gso_attrs(&mut m, size);
        self.execute(m, &|| {
            format!("setting link {index} gso_ipv4_max_size {size}")
        })
    }

    /// Deletes a link (a veth's peer goes with it).
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        let mut m = Message::new(RTM_DELLINK, 0);
        m.raw(&ifinfomsg(libc::AF_UNSPEC as u8, index as i32, 0, 0));
        self.execute(m, &|| format!("deleting link {index}"))
    }

    /// Looks a link up by name; `None` when there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        let mut m = Message::new(RTM_GETLINK, 0);
        m.raw(&ifinfomsg(libc::AF_UNSPEC as u8, 0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        let mut found = None;
        let result = self.get(
            m,
            &|| format!("looking up link {name}"),
            &mut |kind, payload| {
                if kind == RTM_NEWLINK {
                    found = parse_link(payload);
                }
            },
        );
        match result {
            Ok(()) => Ok(found),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Every link in the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let mut m = Message::new(RTM_GETLINK, 0);
        m.raw(&ifinfomsg(libc::AF_UNSPEC as u8, 0, 0, 0));
        let mut links = Vec::new();
        self.dump(m, &|| "listing links".to_owned(), &mut |kind, payload| {
            if kind == RTM_NEWLINK {
                links.extend(parse_link(payload));
            }
        })?;
        Ok(links)
    }
}

fn gso_attrs(m: &mut Message, size: u32) {
    m.attr_u32(IFLA_GSO_IPV4_MAX_SIZE, size);
    m.attr_u32(IFLA_GRO_IPV4_MAX_SIZE, size);
}

fn parse_link(payload: &[u8]) -> Option<Link> {
    let header = payload.get(..16)?;
    let index = i32::from_ne_bytes(header[4..8].try_into().ok()?) as u32;
    let flags = u32::from_ne_bytes(header[8..12].try_into().ok()?);
    let mut link = Link {
        index,
        name: String::new(),
        mac: [0; 6],
        mtu: 0,
        up: flags & IFF_UP != 0,
        gso_ipv4_max: 0,
        tso_max: 0,
    };
    for (kind, value) in attrs(&payload[16..]) {
        match kind {
            IFLA_IFNAME => link.name = str_of(value),
            IFLA_MTU => link.mtu = u32_of(value).unwrap_or(0),
            IFLA_GSO_IPV4_MAX_SIZE => link.gso_ipv4_max = u32_of(value).unwrap_or(0),
            IFLA_TSO_MAX_SIZE => link.tso_max = u32_of(value).unwrap_or(0),
            IFLA_ADDRESS if value.len() == 6 => link.mac.copy_from_slice(value),
            _ => {}
        }
    }
    Some(link)
}
