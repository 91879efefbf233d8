//! The service load balancer's maps and its socket-level programs.
//!
//! [`LbMaps`] opens the pinned maps for the agent's map sync; [`SocketLb::attach`] loads the
//! `cgroup/{connect,sendmsg,recvmsg,getpeername}4` programs of `c/lb_sock.bpf.c` on a cgroup.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use libbpf_rs::{Link, MapCore, MapFlags, MapHandle};

use crate::consts as c;
use crate::object::{self, PinDir};
use crate::plain::{Plain, bytes_of, from_bytes};
use crate::{Context, Error, Result};

crate::skeleton!("lb_sock");

/// The map key and value types, generated from `c/include/lb_structs.h`.
pub mod types {
    pub use super::skel::types::{
        lb_traffic, lb4_affinity, lb4_affinity_key, lb4_backend, lb4_ct_entry, lb4_ct_key, lb4_key,
        lb4_maglev, lb4_reap_key, lb4_reverse_nat, lb4_service, lb4_snat_entry, lb4_snat_key,
        lb4_sock_key, lb4_sock_rev, lb4_source_range_key,
    };
}
use types::*;

// SAFETY: generated from C structs whose padding is spelled out as fields; all integers.
unsafe impl Plain for lb4_key {}
unsafe impl Plain for lb4_service {}
unsafe impl Plain for lb4_backend {}
unsafe impl Plain for lb4_reverse_nat {}
unsafe impl Plain for lb4_affinity_key {}
unsafe impl Plain for lb4_affinity {}
unsafe impl Plain for lb4_sock_key {}
unsafe impl Plain for lb4_sock_rev {}
unsafe impl Plain for lb4_ct_key {}
unsafe impl Plain for lb4_ct_entry {}
unsafe impl Plain for lb4_source_range_key {}
unsafe impl Plain for lb4_maglev {}
unsafe impl Plain for lb_traffic {}
unsafe impl Plain for lb4_reap_key {}
unsafe impl Plain for lb4_snat_key {}
unsafe impl Plain for lb4_snat_entry {}
unsafe impl Plain for u32 {}
unsafe impl Plain for u8 {}

/// The socket programs' object, compiled by `build.rs`.
static LB_SOCK_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lb_sock.bpf.o"));
/// The socket reaper's object.
static LB_SOCK_REAP_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lb_sock_reap.bpf.o"));

/// Flags of a service entry (`lb4_service.flags`), as `c/include/lb_consts.h` defines them.
pub mod flags {
    use crate::consts::{self as c, u8_of};

    /// Key address 0: the port answers on every node address.
    pub const NODEPORT: u8 = u8_of(c::SVC_F_NODEPORT);
    /// An ExternalIP or LoadBalancer IP.
    pub const EXTERNAL: u8 = u8_of(c::SVC_F_EXTERNAL);
    /// sessionAffinity ClientIP.
    pub const AFFINITY: u8 = u8_of(c::SVC_F_AFFINITY);
    /// loadBalancerSourceRanges apply.
    pub const SOURCE_RANGES: u8 = u8_of(c::SVC_F_SOURCE_RANGES);
    /// The per-packet paths choose through the service's Maglev table.
    pub const MAGLEV: u8 = u8_of(c::SVC_F_MAGLEV);
    /// Traffic policy Local: the backends are this node's only.
    pub const LOCAL_ONLY: u8 = u8_of(c::SVC_F_LOCAL_ONLY);
}

/// Backend states (`lb4_backend.state`): a bit set, [`ACTIVE`](backend_state::ACTIVE) (0)
/// for a serving endpoint on this node.
pub mod backend_state {
    use crate::consts::{self as c, u8_of};

    /// Serving, on this node.
    pub const ACTIVE: u8 = u8_of(c::BACKEND_ACTIVE);
    /// Terminating, still used while a service has nothing else.
    pub const TERMINATING: u8 = u8_of(c::BACKEND_TERMINATING);
    /// On another node: the per-packet paths SNAT flows to it unless the service has
    /// traffic policy Local (see [`crate::lb::snat`]).
    pub const REMOTE: u8 = u8_of(c::BACKEND_REMOTE);
}

/// SNAT of per-packet flows to remote backends (`LB_SNAT_*` of `c/include/lb_consts.h`).
pub mod snat {
    use crate::consts::{self as c, u16_of, usize_of};

    /// The lowest SNAT port: above Linux's default ephemeral range (32768-60999), so the
    /// node's own sockets do not pick the same ports.
    pub const PORT_MIN: u16 = u16_of(c::LB_SNAT_PORT_MIN);
    /// The highest SNAT port.
    pub const PORT_MAX: u16 = u16_of(c::LB_SNAT_PORT_MAX);
    /// Ports a new flow tries before it is dropped (`snat_exhausted`).
    pub const PROBES: usize = usize_of(c::LB_SNAT_PROBES);
}

/// The size of a service's Maglev table (`LB_MAGLEV_SIZE`).
pub const MAGLEV_SIZE: usize = crate::consts::usize_of(c::LB_MAGLEV_SIZE);

/// Counter indexes of `lb_stats`: `enum lb_stat`'s members, lower-cased without `LB_STAT_`.
pub const STAT_NAMES: [&str; c::LB_STAT_NAMES.len()] = c::LB_STAT_NAMES;

/// An IPv4 address as the maps hold it (network byte order in memory).
pub fn be_addr(address: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(address.octets())
}

/// The address in a map field.
pub fn addr_of(field: u32) -> Ipv4Addr {
    Ipv4Addr::from(field.to_ne_bytes())
}

/// A port as the maps hold it.
pub fn be_port(port: u16) -> u16 {
    port.to_be()
}

/// A frontend key: `(address, port, proto)` and the slot (0: the service entry).
pub fn frontend_key(address: Ipv4Addr, port: u16, proto: u8, slot: u16) -> lb4_key {
    lb4_key {
        address: be_addr(address),
        port: be_port(port),
        slot,
        proto,
        pad: [0; 3],
    }
}

/// Map sizes for maps created by a load; maps that already exist keep theirs.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Frontend entries: one per (frontend, slot), so services x (1 + backends).
    pub services: u32,
    /// Backends (and their traffic counters).
    pub backends: u32,
    /// Reverse NAT entries, Maglev tables and traffic counters, one per service.
    pub service_ids: u32,
    /// Per-packet conntrack entries (LRU).
    pub conntrack: u32,
    /// Session affinity and unconnected-UDP reverse NAT entries (LRU).
    pub affinity: u32,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            services: 1 << 20,
            backends: 1 << 18,
            service_ids: 1 << 17,
            conntrack: 1 << 18,
            affinity: 1 << 16,
        }
    }
}

impl Sizes {
    /// Small maps (a few thousand entries each), for tests and labs.
    pub fn small() -> Sizes {
        Sizes {
            services: 4096,
            backends: 1024,
            service_ids: 1024,
            conntrack: 4096,
            affinity: 1024,
        }
    }

    pub(crate) fn for_map(&self, name: &str) -> Option<u32> {
        Some(match name {
            "lb4_services" => self.services,
            "lb4_backends" | "lb4_backend_traffic" => self.backends,
            "lb4_reverse_nat" | "lb4_service_traffic" => self.service_ids,
            "lb4_ct" | "lb4_snat" => self.conntrack,
            "lb4_affinity" | "lb4_sock_rev" => self.affinity,
            _ => return None,
        })
    }
}

/// The load balancer's pinned maps, for the agent's sync.
#[derive(Debug)]
pub struct LbMaps {
    /// `lb4_services`: frontend slots.
    pub services: MapHandle,
    /// `lb4_backends`: backend id -> address (an array; address 0 marks a free id).
    pub backends: MapHandle,
    /// `lb4_reverse_nat`: service id -> frontend.
    pub reverse_nat: MapHandle,
    /// `lb4_node_addresses`: where NodePorts answer.
    pub node_addresses: MapHandle,
    /// `lb4_affinity`: session affinity (LRU).
    pub affinity: MapHandle,
    /// `lb4_sock_rev`: socket reverse NAT (LRU).
    pub sock_rev: MapHandle,
    /// `lb4_ct`: per-packet conntrack (LRU).
    pub conntrack: MapHandle,
    /// `lb4_source_ranges`: loadBalancerSourceRanges (LPM trie).
    pub source_ranges: MapHandle,
    /// `lb4_maglev`: Maglev tables by service id.
    pub maglev: MapHandle,
    /// `lb4_service_traffic`: packets and bytes per service id, per CPU (an array).
    pub service_traffic: MapHandle,
    /// `lb4_backend_traffic`: packets and bytes per backend id, per CPU (an array).
    pub backend_traffic: MapHandle,
    /// `lb_stats`: datapath counters, per CPU.
    pub stats: MapHandle,
    /// `lb4_reap`: removed backends whose connected UDP sockets the reaper closes.
    pub reap: MapHandle,
    /// `lb4_snat`: SNATed flows to remote backends by reply tuple (LRU); purge them by
    /// `(service_id, backend_id)` like conntrack.
    pub snat: MapHandle,
    /// `lb4_snat_address`: entry 0, the address flows to remote backends are SNATed to when
    /// the client did not reach a node address (see [`set_snat_address`]).
    pub snat_address: MapHandle,
}

impl LbMaps {
    /// Opens the maps pinned under `pins` (a program object must have been loaded there).
    pub fn open(pins: &PinDir) -> Result<LbMaps> {
        let open = |name: &str| {
            let path = pins.map(name);
            MapHandle::from_pinned_path(&path).context(|| format!("opening {}", path.display()))
        };
        Ok(LbMaps {
            services: open("lb4_services")?,
            backends: open("lb4_backends")?,
            reverse_nat: open("lb4_reverse_nat")?,
            node_addresses: open("lb4_node_addresses")?,
            affinity: open("lb4_affinity")?,
            sock_rev: open("lb4_sock_rev")?,
            conntrack: open("lb4_ct")?,
            source_ranges: open("lb4_source_ranges")?,
            maglev: open("lb4_maglev")?,
            service_traffic: open("lb4_service_traffic")?,
            backend_traffic: open("lb4_backend_traffic")?,
            stats: open("lb_stats")?,
            reap: open("lb4_reap")?,
            snat: open("lb4_snat")?,
            snat_address: open("lb4_snat_address")?,
        })
    }

    /// Creates the maps under `pins` (or adopts those already there) without attaching
    /// anything, then opens them.
    pub fn create(pins: &PinDir, sizes: &Sizes) -> Result<LbMaps> {
        object::load(LB_SOCK_OBJECT, pins, &|name| sizes.for_map(name))?;
        LbMaps::open(pins)
    }
}

/// Sets the address flows to remote backends are SNATed to when the client reached an
/// ExternalIP or LoadBalancer IP that is no node address (the node's primary address);
/// `None` clears it (such flows are then DNATed only and counted as `snat_no_address`).
pub fn set_snat_address(maps: &LbMaps, address: Option<Ipv4Addr>) -> Result<()> {
    put(&maps.snat_address, &0u32, &address.map_or(0, be_addr))
}

/// Writes `value` at `key` in `map`.
pub fn put<K: Plain, V: Plain>(map: &MapHandle, key: &K, value: &V) -> Result<()> {
    map.update(bytes_of(key), bytes_of(value), MapFlags::ANY)
        .map_err(|err| full_or(map, err))
}

/// Removes `key` from `map`; a missing key is not an error.
pub fn remove<K: Plain>(map: &MapHandle, key: &K) -> Result<()> {
    match map.delete(bytes_of(key)) {
        Err(err) if err.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
        other => other.context(|| format!("deleting from {}", map.name().to_string_lossy())),
    }
}

/// The value at `key` in `map`.
pub fn get<K: Plain, V: Plain>(map: &MapHandle, key: &K) -> Result<Option<V>> {
    let value = map
        .lookup(bytes_of(key), MapFlags::ANY)
        .context(|| format!("reading {}", map.name().to_string_lossy()))?;
    Ok(value.and_then(|bytes| from_bytes(&bytes)))
}

/// Every entry of `map` (keys and values), read one by one.
/// Every entry of `map` (keys and values): in batches where the kernel supports it, else one
/// by one. For an array, that is every index, used or not.
pub fn entries<K: Plain, V: Plain>(map: &MapHandle) -> Vec<(K, V)> {
    if let Ok(batches) = map.lookup_batch(4096, MapFlags::ANY, MapFlags::ANY) {
        let all: Vec<(K, V)> = batches
            .filter_map(|(key, value)| Some((from_bytes(&key)?, from_bytes(&value)?)))
            .collect();
        if !all.is_empty() || map.keys().next().is_none() {
            return all;
        }
    }
    map.keys()
        .filter_map(|key| {
            let value = map.lookup(&key, MapFlags::ANY).ok()??;
            Some((from_bytes(&key)?, from_bytes(&value)?))
        })
        .collect()
}

/// The sum over CPUs of a per-CPU `u64` counter.
pub fn percpu_sum<K: Plain>(map: &MapHandle, key: &K) -> Result<u64> {
    let values = map
        .lookup_percpu(bytes_of(key), MapFlags::ANY)
        .context(|| format!("reading {}", map.name().to_string_lossy()))?;
    Ok(values
        .unwrap_or_default()
        .iter()
        .filter_map(|v| from_bytes::<u64>(&v[..8.min(v.len())]))
        .sum())
}

// SAFETY: an integer.
unsafe impl Plain for u64 {}

fn full_or(map: &MapHandle, err: libbpf_rs::Error) -> Error {
    let name = map.name().to_string_lossy().into_owned();
    if err.kind() == libbpf_rs::ErrorKind::OutOfMemory
        || err.to_string().contains("No space left") // E2BIG from a full hash map
        || err.to_string().contains("Argument list too long")
    {
        return Error::MapFull {
            map: Box::leak(name.into_boxed_str()),
        };
    }
    Error::Bpf {
        what: format!("writing {name}"),
        source: err,
    }
}

/// The socket-level load balancer attached to one cgroup (the cgroup2 root on a node).
pub struct SocketLb {
    _links: Vec<Link>,
}

impl SocketLb {
    /// The programs, in attach order.
    const PROGRAMS: [&'static str; 4] = [
        "lb4_connect",
        "lb4_sendmsg",
        "lb4_recvmsg",
        "lb4_getpeername",
    ];

    /// Loads the socket programs (creating or adopting the maps under `pins`) and attaches
    /// them to `cgroup`, or switches the links already pinned there to the new programs.
    pub fn attach(pins: &PinDir, cgroup: &Path, sizes: &Sizes) -> Result<SocketLb> {
        let object = object::load(LB_SOCK_OBJECT, pins, &|name| sizes.for_map(name))?;
        let dir =
            std::fs::File::open(cgroup).context(|| format!("opening {}", cgroup.display()))?;
        let mut links = Vec::new();
        for name in Self::PROGRAMS {
            let prog = object::program(&object, name).expect("lb_sock.bpf.c defines it");
            links.push(object::attach_pinned(pins, name, &prog, |p| {
                p.attach_cgroup(dir.as_raw_fd())
            })?);
        }
        Ok(SocketLb { _links: links })
    }
}

/// Closes this node's UDP sockets that are connected to removed backends (see
/// `c/lb_sock_reap.bpf.c`): the socket-level counterpart of deleting stale conntrack entries.
pub struct SocketReaper {
    _object: libbpf_rs::Object,
    link: Link,
}

impl SocketReaper {
    /// Loads the reaper against the maps under `pins`.
    pub fn load(pins: &PinDir, sizes: &Sizes) -> Result<SocketReaper> {
        let object = object::load(LB_SOCK_REAP_OBJECT, pins, &|name| sizes.for_map(name))?;
        let prog = object::program(&object, "lb4_reap_udp").expect("lb_sock_reap.bpf.c defines it");
        let link = prog
            .attach()
            .context(|| "attaching the UDP socket iterator".into())?;
        Ok(SocketReaper {
            _object: object,
            link,
        })
    }

    /// Closes every UDP socket connected to one of `backends` (address, port).
    pub fn reap(&self, maps: &LbMaps, backends: &[(Ipv4Addr, u16)]) -> Result<()> {
        if backends.is_empty() {
            return Ok(());
        }
        let keys: Vec<lb4_reap_key> = backends
            .iter()
            .map(|(address, port)| lb4_reap_key {
                address: be_addr(*address),
                port: be_port(*port),
                pad: 0,
            })
            .collect();
        for key in &keys {
            put(&maps.reap, key, &1u8)?;
        }
        // Reading the iterator to its end runs the program over every UDP socket.
        let run = libbpf_rs::Iter::new(&self.link)
            .context(|| "starting the UDP socket iterator".into())
            .and_then(|mut iter| {
                std::io::copy(&mut iter, &mut std::io::sink())
                    .context(|| "running the UDP socket iterator".into())
            });
        for key in &keys {
            remove(&maps.reap, key)?;
        }
        run.map(|_| ())
    }
}
