//! The maps [`MapSync`](super::MapSync) writes, behind one small interface ([`Maps`]): the
//! kernel's pinned maps ([`BpfMaps`]) on a node, an in-memory stand-in ([`MemoryMaps`]) that
//! records every write for tests, as Katran's BPF adapter and Cilium's mock lbmap do.
//!
//! A map is named by a [`Table`] type that carries its key and value types, so the sync's
//! code reads like the map operations it performs and both implementations stay generic.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use skiff_ebpf::lb::{self, LbMaps, SocketReaper, types::*};
use skiff_ebpf::libbpf_rs::{self, MapCore, MapFlags, MapHandle};
use skiff_ebpf::plain::{Plain, bytes_of, from_bytes};
use skiff_ebpf::{Error, Result};

/// One of the load balancer's maps, with its key and value types.
pub trait Table {
    /// The map's name (`lb_maps.h`).
    const NAME: &'static str;
    /// Its key.
    type Key: Plain;
    /// Its value (per CPU for a [`PerCpu`] map).
    type Value: Plain;
    /// The pinned map.
    fn of(maps: &LbMaps) -> &MapHandle;
}

/// A per-CPU traffic counter map: written only by [`Maps::zero_traffic`].
pub trait PerCpu: Table<Key = u32> {}

macro_rules! tables {
    ($($(#[$doc:meta])* $table:ident = $name:literal, $field:ident: $key:ty => $value:ty;)*) => {$(
        $(#[$doc])*
        pub struct $table;
        impl Table for $table {
            const NAME: &'static str = $name;
            type Key = $key;
            type Value = $value;
            fn of(maps: &LbMaps) -> &MapHandle {
                &maps.$field
            }
        }
    )*};
}

tables! {
    /// Frontend entries (slot 0) and their backend slots.
    Services = "lb4_services", services: lb4_key => lb4_service;
    /// Backend id -> address (an array: address 0 marks a free id).
    Backends = "lb4_backends", backends: u32 => lb4_backend;
    /// Service id -> frontend, for replies.
    ReverseNat = "lb4_reverse_nat", reverse_nat: u32 => lb4_reverse_nat;
    /// Where NodePorts answer.
    NodeAddresses = "lb4_node_addresses", node_addresses: u32 => u8;
    /// Session affinity (LRU).
    Affinity = "lb4_affinity", affinity: lb4_affinity_key => lb4_affinity;
    /// Per-packet conntrack (LRU).
    Conntrack = "lb4_ct", conntrack: lb4_ct_key => lb4_ct_entry;
    /// SNATed flows to remote backends (LRU).
    Snat = "lb4_snat", snat: lb4_snat_key => lb4_snat_entry;
    /// Entry 0: the address flows to remote backends are SNATed to.
    SnatAddress = "lb4_snat_address", snat_address: u32 => u32;
    /// loadBalancerSourceRanges (LPM trie).
    SourceRanges = "lb4_source_ranges", source_ranges: lb4_source_range_key => u8;
    /// Maglev tables by service id.
    Maglev = "lb4_maglev", maglev: u32 => lb4_maglev;
    /// Traffic per service id (an array, per CPU).
    ServiceTraffic = "lb4_service_traffic", service_traffic: u32 => lb_traffic;
    /// Traffic per backend id (an array, per CPU).
    BackendTraffic = "lb4_backend_traffic", backend_traffic: u32 => lb_traffic;
}

impl PerCpu for ServiceTraffic {}
impl PerCpu for BackendTraffic {}

/// The operations the map sync performs.
pub trait Maps {
    /// Every entry of `T` (for an array: every index, used or not).
    fn entries<T: Table>(&self) -> Vec<(T::Key, T::Value)>;
    /// Every key of `T`.
    fn keys<T: Table>(&self) -> Vec<T::Key>;
    /// Writes `value` at `key`.
    fn put<T: Table>(&mut self, key: &T::Key, value: &T::Value) -> Result<()>;
    /// Removes `key`; a missing key is not an error.
    fn remove<T: Table>(&mut self, key: &T::Key) -> Result<()>;
    /// Deletes the entries for which `stale(key, value)` holds; returns how many map
    /// operations that took (an empty map costs one lookup).
    fn purge<T: Table>(&mut self, stale: impl Fn(&T::Key, &T::Value) -> bool) -> usize;
    /// How many entries `T` holds at most.
    fn max_entries<T: Table>(&self) -> u32;
    /// Starts counter `id` of `T` at zero on every CPU, so the datapath only adds to it.
    fn zero_traffic<T: PerCpu>(&mut self, id: u32);
    /// `lb_stats` counter `index`, summed over CPUs.
    fn stat(&self, index: u32) -> Result<u64>;
    /// Closes this node's UDP sockets connected to one of `backends` (address, port), where
    /// a socket reaper is loaded.
    fn reap_udp(&mut self, backends: &[(Ipv4Addr, u16)]) -> Result<()>;
}

/// The kernel's pinned maps, and the socket reaper once it is loaded.
pub struct BpfMaps {
    /// The maps.
    pub maps: LbMaps,
    /// Closes connected UDP sockets of removed backends.
    pub reaper: Option<SocketReaper>,
}

impl Maps for BpfMaps {
    fn entries<T: Table>(&self) -> Vec<(T::Key, T::Value)> {
        lb::entries(T::of(&self.maps))
    }

    fn keys<T: Table>(&self) -> Vec<T::Key> {
        T::of(&self.maps)
            .keys()
            .filter_map(|k| from_bytes(&k))
            .collect()
    }

    fn put<T: Table>(&mut self, key: &T::Key, value: &T::Value) -> Result<()> {
        lb::put(T::of(&self.maps), key, value)
    }

    fn remove<T: Table>(&mut self, key: &T::Key) -> Result<()> {
        lb::remove(T::of(&self.maps), key)
    }

    fn purge<T: Table>(&mut self, stale: impl Fn(&T::Key, &T::Value) -> bool) -> usize {
        let map = T::of(&self.maps);
        let mut operations = 1;
        let doomed: Vec<Vec<u8>> = map
            .keys()
            .filter(|k| {
                operations += 1;
                let key = from_bytes::<T::Key>(k);
                let value = map.lookup(k, MapFlags::ANY).ok().flatten();
                match (key, value.and_then(|v| from_bytes::<T::Value>(&v))) {
                    (Some(key), Some(value)) => stale(&key, &value),
                    _ => false,
                }
            })
            .collect();
        for key in doomed {
            let _ = map.delete(&key);
            operations += 1;
        }
        operations
    }

    fn max_entries<T: Table>(&self) -> u32 {
        T::of(&self.maps).max_entries()
    }

    fn zero_traffic<T: PerCpu>(&mut self, id: u32) {
        // Read once: it is a sysfs file, and this runs for every backend and frontend written.
        static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let cpus = *CPUS.get_or_init(|| libbpf_rs::num_possible_cpus().unwrap_or(1));
        let zero = vec![vec![0u8; size_of::<T::Value>()]; cpus];
        let _ = T::of(&self.maps).update_percpu(&id.to_ne_bytes(), &zero, MapFlags::ANY);
    }

    fn stat(&self, index: u32) -> Result<u64> {
        lb::percpu_sum(&self.maps.stats, &index)
    }

    fn reap_udp(&mut self, backends: &[(Ipv4Addr, u16)]) -> Result<()> {
        match &self.reaper {
            Some(reaper) => reaper.reap(&self.maps, backends),
            None => Ok(()),
        }
    }
}

/// One write [`MemoryMaps`] recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// An entry written.
    Put {
        /// The map's name.
        map: &'static str,
        /// The key's bytes.
        key: Vec<u8>,
        /// The value's bytes.
        value: Vec<u8>,
    },
    /// An entry deleted (by `remove` or a purge).
    Delete {
        /// The map's name.
        map: &'static str,
        /// The key's bytes.
        key: Vec<u8>,
    },
    /// A per-CPU counter zeroed.
    Zero {
        /// The map's name.
        map: &'static str,
        /// The counter's id.
        id: u32,
    },
    /// Connected UDP sockets of these backends closed.
    Reap {
        /// (address, port) of each.
        backends: Vec<(Ipv4Addr, u16)>,
    },
}

impl Write {
    /// The key, if this wrote or deleted an entry of `T`.
    pub fn key<T: Table>(&self) -> Option<T::Key> {
        match self {
            Write::Put { map, key, .. } | Write::Delete { map, key } if *map == T::NAME => {
                from_bytes(key)
            }
            _ => None,
        }
    }

    /// The value, if this wrote an entry of `T`.
    pub fn value<T: Table>(&self) -> Option<T::Value> {
        match self {
            Write::Put { map, value, .. } if *map == T::NAME => from_bytes(value),
            _ => None,
        }
    }
}

/// Maps in memory, for tests: entries by map name, every write recorded in order, a size
/// limit per map (a full map refuses new keys as the kernel's does), stats set by hand.
#[derive(Debug, Default)]
pub struct MemoryMaps {
    maps: HashMap<&'static str, BTreeMap<Vec<u8>, Vec<u8>>>,
    limits: HashMap<&'static str, u32>,
    stats: HashMap<u32, u64>,
    writes: Vec<Write>,
}

impl MemoryMaps {
    /// Lets `T` hold at most `entries` (unlimited otherwise).
    pub fn limit<T: Table>(mut self, entries: u32) -> MemoryMaps {
        self.limits.insert(T::NAME, entries);
        self
    }

    /// Sets `lb_stats` counter `index`, as the datapath would have counted it.
    pub fn set_stat(&mut self, index: u32, value: u64) {
        self.stats.insert(index, value);
    }

    /// The value at `key` in `T`.
    pub fn get<T: Table>(&self, key: &T::Key) -> Option<T::Value> {
        from_bytes(self.maps.get(T::NAME)?.get(bytes_of(key))?)
    }

    /// The writes since the last call, oldest first.
    pub fn take_writes(&mut self) -> Vec<Write> {
        std::mem::take(&mut self.writes)
    }

    fn table(&self, name: &str) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.maps.get(name).into_iter().flatten()
    }
}

impl Maps for MemoryMaps {
    fn entries<T: Table>(&self) -> Vec<(T::Key, T::Value)> {
        self.table(T::NAME)
            .filter_map(|(k, v)| Some((from_bytes(k)?, from_bytes(v)?)))
            .collect()
    }

    fn keys<T: Table>(&self) -> Vec<T::Key> {
        self.table(T::NAME)
            .filter_map(|(k, _)| from_bytes(k))
            .collect()
    }

    fn put<T: Table>(&mut self, key: &T::Key, value: &T::Value) -> Result<()> {
        let limit = self.max_entries::<T>();
        let map = self.maps.entry(T::NAME).or_default();
        let key = bytes_of(key).to_vec();
        if !map.contains_key(&key) && map.len() >= limit as usize {
            return Err(Error::MapFull { map: T::NAME });
        }
        let value = bytes_of(value).to_vec();
        map.insert(key.clone(), value.clone());
        self.writes.push(Write::Put {
            map: T::NAME,
            key,
            value,
        });
        Ok(())
    }

    fn remove<T: Table>(&mut self, key: &T::Key) -> Result<()> {
        let key = bytes_of(key).to_vec();
        if let Some(map) = self.maps.get_mut(T::NAME) {
            map.remove(&key);
        }
        self.writes.push(Write::Delete { map: T::NAME, key });
        Ok(())
    }

    fn purge<T: Table>(&mut self, stale: impl Fn(&T::Key, &T::Value) -> bool) -> usize {
        let doomed: Vec<T::Key> = self
            .entries::<T>()
            .into_iter()
            .filter(|(k, v)| stale(k, v))
            .map(|(k, _)| k)
            .collect();
        let operations = 1 + self.keys::<T>().len() + doomed.len();
        for key in &doomed {
            let _ = self.remove::<T>(key);
        }
        operations
    }

    fn max_entries<T: Table>(&self) -> u32 {
        self.limits.get(T::NAME).copied().unwrap_or(u32::MAX)
    }

    fn zero_traffic<T: PerCpu>(&mut self, id: u32) {
        self.writes.push(Write::Zero { map: T::NAME, id });
    }

    fn stat(&self, index: u32) -> Result<u64> {
        Ok(self.stats.get(&index).copied().unwrap_or(0))
    }

    fn reap_udp(&mut self, backends: &[(Ipv4Addr, u16)]) -> Result<()> {
        // As the kernel's: nothing to close costs nothing.
        if !backends.is_empty() {
            self.writes.push(Write::Reap {
                backends: backends.to_vec(),
            });
        }
        Ok(())
    }
}
