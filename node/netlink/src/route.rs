//! IPv4 routes in the main table.

use std::net::Ipv4Addr;

use crate::message::{
    Message, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTM_DELROUTE, RTM_GETROUTE, RTM_NEWROUTE,
    attrs, ipv4_of, u32_of,
};
use crate::{Netlink, Result};

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;
const RTNH_F_ONLINK: u32 = 4;

/// A route's scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Reachable through a gateway (RT_SCOPE_UNIVERSE).
    Universe,
    /// Directly attached (RT_SCOPE_LINK).
    Link,
    /// Another value.
    Other(u8),
}

impl Scope {
    fn value(self) -> u8 {
        match self {
            Scope::Universe => 0,
            Scope::Link => 253,
            Scope::Other(v) => v,
        }
    }
    fn from_value(v: u8) -> Scope {
        match v {
            0 => Scope::Universe,
            253 => Scope::Link,
            v => Scope::Other(v),
        }
    }
}

/// An IPv4 unicast route in the main table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination network and prefix length (`0.0.0.0/0` is the default route).
    pub dst: (Ipv4Addr, u8),
    /// Gateway.
    pub via: Option<Ipv4Addr>,
    /// Output interface index.
    pub dev: Option<u32>,
    pub scope: Scope,
    /// The gateway is on the link even without a matching connected route.
    pub onlink: bool,
}

impl Route {
    /// `dst dev <index> scope link`.
    pub fn link(dst: (Ipv4Addr, u8), dev: u32) -> Route {
        Route {
            dst,
            via: None,
            dev: Some(dev),
            scope: Scope::Link,
            onlink: false,
        }
    }

    /// `dst via <gw> [dev <index>]`.
    pub fn via(dst: (Ipv4Addr, u8), gw: Ipv4Addr, dev: Option<u32>) -> Route {
        Route {
            dst,
            via: Some(gw),
            dev,
            scope: Scope::Universe,
            onlink: false,
        }
    }

    fn message(&self, kind: u16, flags: u16) -> Message {
        let mut m = Message::new(kind, flags);
        let mut rtmsg = [0u8; 12];
        rtmsg[0] = libc::AF_INET as u8;
        rtmsg[1] = self.dst.1;
        rtmsg[4] = RT_TABLE_MAIN;
        rtmsg[5] = RTPROT_BOOT;
        rtmsg[6] = self.scope.value();
        rtmsg[7] = RTN_UNICAST;
        let flags = if self.onlink { RTNH_F_ONLINK } else { 0 };
        rtmsg[8..12].copy_from_slice(&flags.to_ne_bytes());
        m.raw(&rtmsg);
        m.attr(RTA_DST, &self.dst.0.octets());
        if let Some(via) = self.via {
            m.attr(RTA_GATEWAY, &via.octets());
        }
        if let Some(dev) = self.dev {
            m.attr_u32(RTA_OIF, dev);
        }
        m
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.dst.0, self.dst.1)?;
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        if let Some(dev) = self.dev {
            write!(f, " dev {dev}")?;
        }
        if self.scope == Scope::Link {
            write!(f, " scope link")?;
        }
        if self.onlink {
            write!(f, " onlink")?;
        }
        Ok(())
    }
}

impl Netlink {
    /// Adds a route (EEXIST when one for the same destination is there).
    pub fn add_route(&mut self, route: &Route) -> Result<()> {
        let m = route.message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        self.execute(m, &|| format!("adding route {route}"))
    }

    /// Adds a route or replaces the one for the same destination.
    pub fn replace_route(&mut self, route: &Route) -> Result<()> {
        let m = route.message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
        self.execute(m, &|| format!("replacing route {route}"))
    }

    /// Deletes a route (ESRCH when there is none).
    pub fn delete_route(&mut self, route: &Route) -> Result<()> {
        let m = route.message(RTM_DELROUTE, 0);
        self.execute(m, &|| format!("deleting route {route}"))
    }

    /// The IPv4 unicast routes of the main table.
    pub fn routes(&mut self) -> Result<Vec<Route>> {
        let mut m = Message::new(RTM_GETROUTE, 0);
        let mut rtmsg = [0u8; 12];
        rtmsg[0] = libc::AF_INET as u8;
        m.raw(&rtmsg);
        let mut routes = Vec::new();
        self.dump(m, &|| "listing routes".to_owned(), &mut |_, payload| {
            let Some(header) = payload.get(..12) else {
                return;
            };
            let mut table = u32::from(header[4]);
            let mut route = Route {
                dst: (Ipv4Addr::UNSPECIFIED, header[1]),
                via: None,
                dev: None,
                scope: Scope::from_value(header[6]),
                onlink: u32::from_ne_bytes(header[8..12].try_into().unwrap()) & RTNH_F_ONLINK != 0,
            };
            for (kind, value) in attrs(&payload[12..]) {
                match kind {
                    RTA_DST => route.dst.0 = ipv4_of(value).unwrap_or(Ipv4Addr::UNSPECIFIED),
                    RTA_GATEWAY => route.via = ipv4_of(value),
                    RTA_OIF => route.dev = u32_of(value),
                    RTA_TABLE => table = u32_of(value).unwrap_or(table),
                    _ => {}
                }
            }
            if header[0] == libc::AF_INET as u8
                && table == u32::from(RT_TABLE_MAIN)
                && header[7] == RTN_UNICAST
            {
                routes.push(route);
            }
        })?;
        Ok(routes)
    }
}
