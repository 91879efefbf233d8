//! Applying a [`Desired`] state to the load balancer's pinned maps by difference: a changed
//! EndpointSlice costs the entries of the frontends it touches, never a rewrite of the rest.
//!
//! Write order keeps every packet and connect() consistent while a change is half applied:
//! backends before the slots that name them, slots before the service entry that counts them,
//! and removals the other way round. Removing a backend from a service also removes its
//! affinity and conntrack entries at once, so no flow (UDP above all) keeps going to it.
//!
//! A new [`MapSync`] adopts what is already in the maps (an agent restart), so its first
//! `apply` writes only what changed while the agent was away.
//!
//! The maps sit behind [`maps::Maps`]: the kernel's on a node, in-memory ones that record
//! every write in the unit tests (`sync/tests.rs`), which check that order without root.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use skiff_ebpf::lb::{
    self, LbMaps, MAGLEV_SIZE, SocketReaper, addr_of, be_addr, be_port, types::*,
};

use crate::maglev;
use crate::model::{Backend, Desired, Frontend, FrontendSpec};

pub mod maps;
#[cfg(test)]
mod tests;

use maps::{
    Affinity, BackendTraffic, Backends, BpfMaps, Conntrack, Maglev, Maps, NodeAddresses,
    ReverseNat, ServiceTraffic, Services, Snat, SnatAddress, SourceRanges,
};

/// What one `apply` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Frontends created or changed.
    pub frontends_written: usize,
    /// Frontends removed.
    pub frontends_removed: usize,
    /// Backends created.
    pub backends_added: usize,
    /// Backends removed.
    pub backends_removed: usize,
    /// Map entries written or deleted.
    pub map_operations: usize,
    /// Of the time `apply` took, how much went to purging the flow state (affinity,
    /// conntrack, SNAT, connected UDP sockets) of removed backends: after the maps already
    /// send every new connection to the new backends.
    pub purge: std::time::Duration,
    /// Frontends that could not be written (a full map, ...): they stay as they were and the
    /// next `apply` tries again.
    pub errors: Vec<String>,
}

/// One frontend as it is in the maps.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Applied {
    service_id: u32,
    flags: u8,
    affinity_timeout: u32,
    backend_ids: Vec<u32>,
    /// `backend_ids[..inline]` are in the service entry itself, the rest in slot entries
    /// (an agent from before inline ids stored every one in a slot: 0).
    inline: usize,
    source_ranges: Vec<(Ipv4Addr, u8)>,
}

/// How many backend ids a service entry carries itself (`LB_INLINE_BACKENDS`).
fn inline_capacity() -> usize {
    lb4_service::default().inline_ids.len()
}

/// How many of `ids` go into the service entry itself.
fn inline_count(ids: &[u32]) -> usize {
    ids.len().min(inline_capacity())
}

/// The agent's view of the maps, kept in step with them: the kernel's ([`BpfMaps`]) on a
/// node, any other [`Maps`] in tests.
pub struct MapSync<M = BpfMaps> {
    maps: M,
    frontends: BTreeMap<Frontend, Applied>,
    backend_ids: HashMap<Backend, u32>,
    backends: HashMap<u32, Backend>,
    /// How many frontends use each backend: a backend goes when its count reaches zero.
    backend_refs: HashMap<u32, u32>,
    /// Backend ids index arrays: freed ids are handed out again, so they stay dense.
    free_backend_ids: Vec<u32>,
    next_backend_id: u32,
    free_service_ids: Vec<u32>,
    next_service_id: u32,
    node_addresses: BTreeSet<Ipv4Addr>,
    /// Whether a remote backend was ever programmed: only then can flows have been SNATed.
    remote_seen: bool,
}

impl MapSync {
    /// Takes over the kernel's `maps`, adopting the frontends and backends already in them.
    pub fn new(maps: LbMaps) -> MapSync {
        MapSync::adopting(BpfMaps { maps, reaper: None })
    }

    /// From now on, UDP sockets connected to a backend that goes are closed (see
    /// [`SocketReaper`]), so connected UDP clients move to a live backend.
    pub fn set_reaper(&mut self, reaper: SocketReaper) {
        self.maps.reaper = Some(reaper);
    }

    /// The maps.
    pub fn maps(&self) -> &LbMaps {
        &self.maps.maps
    }
}

impl<M: Maps> MapSync<M> {
    /// Takes over `maps`, adopting the frontends and backends already in them.
    pub fn adopting(maps: M) -> MapSync<M> {
        let mut sync = MapSync {
            maps,
            frontends: BTreeMap::new(),
            backend_ids: HashMap::new(),
            backends: HashMap::new(),
            backend_refs: HashMap::new(),
            free_backend_ids: Vec::new(),
            next_backend_id: 1,
            free_service_ids: Vec::new(),
            next_service_id: 1,
            node_addresses: BTreeSet::new(),
            remote_seen: false,
        };
        sync.adopt();
        sync
    }

    /// How many frontends and backends are programmed.
    pub fn sizes(&self) -> (usize, usize) {
        (self.frontends.len(), self.backends.len())
    }

    /// Each programmed frontend and its service id (the key of its traffic counters).
    pub fn service_ids(&self) -> impl Iterator<Item = (&Frontend, u32)> {
        self.frontends.iter().map(|(f, a)| (f, a.service_id))
    }

    /// Each programmed backend and its id.
    pub fn backend_ids(&self) -> impl Iterator<Item = (&Backend, u32)> {
        self.backend_ids.iter().map(|(b, id)| (b, *id))
    }

    fn adopt(&mut self) {
        for (id, backend) in self.maps.entries::<Backends>() {
            if backend.address == 0 {
                continue;
            }
            let b = Backend {
                address: addr_of(backend.address),
                port: u16::from_be(backend.port),
                proto: backend.proto,
                remote: backend.state & lb::backend_state::REMOTE != 0,
            };
            self.remote_seen |= b.remote;
            self.backend_ids.insert(b, id);
            self.backends.insert(id, b);
            self.next_backend_id = self.next_backend_id.max(id + 1);
        }
        let entries = self.maps.entries::<Services>();
        let mut slots: HashMap<(u32, u16, u8), BTreeMap<u16, u32>> = HashMap::new();
        for (key, value) in &entries {
            if key.slot != 0 {
                slots
                    .entry((key.address, key.port, key.proto))
                    .or_default()
                    .insert(key.slot, value.backend_id);
            }
        }
        let mut ranges: HashMap<u32, Vec<(Ipv4Addr, u8)>> = HashMap::new();
        for k in self.maps.keys::<SourceRanges>() {
            ranges
                .entry(k.service_id)
                .or_default()
                .push((addr_of(k.address), (k.prefixlen - 32) as u8));
        }
        let mut used_ids = HashSet::new();
        for (key, value) in entries.iter().filter(|(k, _)| k.slot == 0) {
            let frontend = Frontend {
                address: addr_of(key.address),
                port: u16::from_be(key.port),
                proto: key.proto,
            };
            let slots = slots.remove(&(key.address, key.port, key.proto));
            let inline = usize::from(value.inline_count).min(inline_capacity());
            let backend_ids: Vec<u32> = (1..=value.count)
                .map(|s| match usize::from(s) {
                    n if n <= inline => value.inline_ids[n - 1],
                    _ => slots.as_ref().and_then(|m| m.get(&s).copied()).unwrap_or(0),
                })
                .collect();
            let mut source_ranges = ranges.remove(&value.service_id).unwrap_or_default();
            source_ranges.sort();
            used_ids.insert(value.service_id);
            for id in &backend_ids {
                *self.backend_refs.entry(*id).or_default() += 1;
            }
            self.next_service_id = self.next_service_id.max(value.service_id + 1);
            self.frontends.insert(
                frontend,
                Applied {
                    service_id: value.service_id,
                    flags: value.flags,
                    affinity_timeout: value.affinity_timeout,
                    backend_ids,
                    inline,
                    source_ranges,
                },
            );
        }
        self.free_service_ids = (1..self.next_service_id)
            .filter(|id| !used_ids.contains(id))
            .collect();
        self.free_backend_ids = (1..self.next_backend_id)
            .filter(|id| !self.backends.contains_key(id))
            .collect();
        for k in self.maps.keys::<NodeAddresses>() {
            self.node_addresses.insert(addr_of(k));
        }
        // Slots without a service entry are leftovers of an interrupted removal.
        for ((address, port, proto), slots) in slots {
            for slot in slots.keys() {
                let key = lb4_key {
                    address,
                    port,
                    slot: *slot,
                    proto,
                    pad: [0; 3],
                };
                let _ = self.maps.remove::<Services>(&key);
            }
        }
    }

    /// Makes NodePorts answer on exactly `addresses`; the first that is not loopback is the
    /// source of SNATed flows to remote backends that did not arrive on a node address.
    pub fn set_node_addresses(&mut self, addresses: &BTreeSet<Ipv4Addr>) -> skiff_ebpf::Result<()> {
        let snat = addresses.iter().copied().find(|a| !a.is_loopback());
        self.maps.put::<SnatAddress>(&0, &snat.map_or(0, be_addr))?;
        for added in addresses.difference(&self.node_addresses) {
            self.maps.put::<NodeAddresses>(&be_addr(*added), &1)?;
        }
        for removed in self.node_addresses.difference(addresses) {
            self.maps.remove::<NodeAddresses>(&be_addr(*removed))?;
        }
        self.node_addresses = addresses.clone();
        Ok(())
    }

    /// Brings the maps to `desired`, touching only what differs. Comparing costs a walk over
    /// every frontend; a caller that knows what changed uses [`MapSync::apply_changes`].
    pub fn apply(&mut self, desired: &Desired) -> SyncStats {
        let mut changes: BTreeMap<Frontend, Option<&FrontendSpec>> = BTreeMap::new();
        for (frontend, spec) in &desired.frontends {
            if !self
                .frontends
                .get(frontend)
                .is_some_and(|c| self.matches(c, spec))
            {
                changes.insert(*frontend, Some(spec));
            }
        }
        for frontend in self.frontends.keys() {
            if !desired.frontends.contains_key(frontend) {
                changes.insert(*frontend, None);
            }
        }
        self.apply_changes(changes)
    }

    /// Writes the given frontends (`None`: remove it), skipping those already as asked.
    pub fn apply_changes<'a>(
        &mut self,
        changes: impl IntoIterator<Item = (Frontend, Option<&'a FrontendSpec>)>,
    ) -> SyncStats {
        let mut stats = SyncStats::default();
        // (service, backend) pairs that ended, and whether that service had affinity.
        let mut dropped: HashMap<(u32, u32), bool> = HashMap::new();
        for (frontend, spec) in changes {
            match spec {
                Some(spec) => {
                    if self
                        .frontends
                        .get(&frontend)
                        .is_some_and(|c| self.matches(c, spec))
                    {
                        continue;
                    }
                    let old_flags = self.frontends.get(&frontend).map_or(0, |a| a.flags);
                    match self.write_frontend(&frontend, spec, &mut stats) {
                        Ok((applied, lost)) => {
                            let affinity = (old_flags | applied.flags) & lb::flags::AFFINITY != 0;
                            dropped.extend(
                                lost.into_iter()
                                    .map(|b| ((applied.service_id, b), affinity)),
                            );
                            self.frontends.insert(frontend, applied);
                            stats.frontends_written += 1;
                        }
                        Err(err) => stats
                            .errors
                            .push(format!("{} ({frontend:?}): {err}", spec.service)),
                    }
                }
                None => {
                    let Some(applied) = self.frontends.remove(&frontend) else {
                        continue;
                    };
                    let affinity = applied.flags & lb::flags::AFFINITY != 0;
                    dropped.extend(
                        applied
                            .backend_ids
                            .iter()
                            .map(|b| ((applied.service_id, *b), affinity)),
                    );
                    self.remove_frontend(&frontend, &applied, &mut stats);
                    stats.frontends_removed += 1;
                }
            }
        }
        let purging = std::time::Instant::now();
        self.collect_backends(&dropped, &mut stats);
        stats.purge = purging.elapsed();
        stats
    }

    fn matches(&self, applied: &Applied, spec: &FrontendSpec) -> bool {
        applied.flags == spec.flags
            && applied.affinity_timeout == spec.affinity_timeout
            && applied.source_ranges == sorted(&spec.source_ranges)
            && applied.backend_ids.len() == spec.backends.len()
            && applied
                .backend_ids
                .iter()
                .zip(&spec.backends)
                .all(|(id, b)| self.backend_ids.get(b) == Some(id))
    }

    fn backend_id(&mut self, backend: &Backend, stats: &mut SyncStats) -> skiff_ebpf::Result<u32> {
        if let Some(id) = self.backend_ids.get(backend) {
            return Ok(*id);
        }
        let id = match self.free_backend_ids.pop() {
            Some(id) => id,
            None if self.next_backend_id < self.maps.max_entries::<Backends>() => {
                self.next_backend_id += 1;
                self.next_backend_id - 1
            }
            None => {
                return Err(skiff_ebpf::Error::MapFull {
                    map: "lb4_backends",
                });
            }
        };
        let value = lb4_backend {
            address: be_addr(backend.address),
            port: be_port(backend.port),
            proto: backend.proto,
            state: if backend.remote {
                lb::backend_state::REMOTE
            } else {
                lb::backend_state::ACTIVE
            },
        };
        self.maps.put::<Backends>(&id, &value)?;
        self.maps.zero_traffic::<BackendTraffic>(id);
        stats.map_operations += 2;
        stats.backends_added += 1;
        self.remote_seen |= backend.remote;
        self.backend_ids.insert(*backend, id);
        self.backends.insert(id, *backend);
        Ok(id)
    }

    /// Writes one frontend; returns what is now applied and the backend ids it no longer has.
    fn write_frontend(
        &mut self,
        frontend: &Frontend,
        spec: &FrontendSpec,
        stats: &mut SyncStats,
    ) -> skiff_ebpf::Result<(Applied, Vec<u32>)> {
        let old = self.frontends.get(frontend).cloned();
        let service_id = match &old {
            Some(a) => a.service_id,
            None => match self.free_service_ids.pop() {
                Some(id) => id,
                // Service ids index the traffic counters' array.
                None if self.next_service_id < self.maps.max_entries::<ServiceTraffic>() => {
                    self.next_service_id += 1;
                    self.next_service_id - 1
                }
                None => {
                    return Err(skiff_ebpf::Error::MapFull {
                        map: "lb4_service_traffic",
                    });
                }
            },
        };
        let mut ids = Vec::with_capacity(spec.backends.len());
        for backend in &spec.backends {
            ids.push(self.backend_id(backend, stats)?);
        }
        let old_ids = old
            .as_ref()
            .map(|a| a.backend_ids.clone())
            .unwrap_or_default();
        let key = |slot: u16| {
            let mut k = lb::frontend_key(frontend.address, frontend.port, frontend.proto, slot);
            k.slot = slot;
            k
        };
        let new_ranges = sorted(&spec.source_ranges);
        let old_ranges = old
            .as_ref()
            .map(|a| a.source_ranges.clone())
            .unwrap_or_default();
        // Slot entries that hold backends, before and after.
        let old_inline = old.as_ref().map_or(0, |a| a.inline);
        let inline = inline_count(&ids);
        let old_slot = |i: usize| (i >= old_inline).then(|| old_ids.get(i)).flatten();
        // 1. What the service entry will point at: slots, Maglev table, source ranges.
        for (i, id) in ids.iter().enumerate().skip(inline) {
            if old_slot(i) != Some(id) {
                let value = lb4_service {
                    backend_id: *id,
                    service_id,
                    ..Default::default()
                };
                self.maps.put::<Services>(&key(i as u16 + 1), &value)?;
                stats.map_operations += 1;
            }
        }
        if spec.flags & lb::flags::MAGLEV != 0 && (ids != old_ids || old.is_none()) {
            let names: Vec<String> = spec
                .backends
                .iter()
                .map(|b| format!("{}:{}", b.address, b.port))
                .collect();
            let table = maglev::table(&names, MAGLEV_SIZE);
            let mut value = lb4_maglev::default();
            for (entry, index) in value.backends.iter_mut().zip(&table) {
                *entry = ids[*index as usize];
            }
            self.maps.put::<Maglev>(&service_id, &value)?;
            stats.map_operations += 1;
        }
        for range in new_ranges.iter().filter(|r| !old_ranges.contains(r)) {
            self.maps
                .put::<SourceRanges>(&range_key(service_id, *range), &1)?;
            stats.map_operations += 1;
        }
        // 2. The service entry: from here on the new backends are used.
        let mut entry = lb4_service {
            backend_id: 0,
            service_id,
            count: ids.len() as u16,
            flags: spec.flags,
            inline_count: inline as u8,
            affinity_timeout: spec.affinity_timeout,
            ..Default::default()
        };
        entry.inline_ids[..inline].copy_from_slice(&ids[..inline]);
        self.maps.put::<Services>(&key(0), &entry)?;
        stats.map_operations += 1;
        if old.is_none() {
            let rev = lb4_reverse_nat {
                address: be_addr(frontend.address),
                port: be_port(frontend.port),
                pad: 0,
            };
            self.maps.put::<ReverseNat>(&service_id, &rev)?;
            self.maps.zero_traffic::<ServiceTraffic>(service_id);
            stats.map_operations += 2;
        }
        // 3. What nothing points at any more: old slot entries now inline or past the end.
        for i in (old_inline..old_ids.len()).filter(|&i| i < inline || i >= ids.len()) {
            self.maps.remove::<Services>(&key(i as u16 + 1))?;
            stats.map_operations += 1;
        }
        for range in old_ranges.iter().filter(|r| !new_ranges.contains(r)) {
            self.maps
                .remove::<SourceRanges>(&range_key(service_id, *range))?;
            stats.map_operations += 1;
        }
        if spec.flags & lb::flags::MAGLEV == 0
            && old
                .as_ref()
                .is_some_and(|a| a.flags & lb::flags::MAGLEV != 0)
        {
            self.maps.remove::<Maglev>(&service_id)?;
            stats.map_operations += 1;
        }
        for id in &ids {
            *self.backend_refs.entry(*id).or_default() += 1;
        }
        for id in &old_ids {
            self.release(*id);
        }
        let kept: HashSet<u32> = ids.iter().copied().collect();
        let lost = old_ids
            .into_iter()
            .filter(|id| !kept.contains(id))
            .collect();
        Ok((
            Applied {
                service_id,
                flags: spec.flags,
                affinity_timeout: spec.affinity_timeout,
                backend_ids: ids,
                inline,
                source_ranges: new_ranges,
            },
            lost,
        ))
    }

    fn remove_frontend(&mut self, frontend: &Frontend, applied: &Applied, stats: &mut SyncStats) {
        let key =
            |slot: u16| lb::frontend_key(frontend.address, frontend.port, frontend.proto, slot);
        // The service entry first: from then on nothing reads the rest.
        let mut results = vec![self.maps.remove::<Services>(&key(0))];
        for slot in applied.inline + 1..=applied.backend_ids.len() {
            results.push(self.maps.remove::<Services>(&key(slot as u16)));
        }
        for range in &applied.source_ranges {
            results.push(
                self.maps
                    .remove::<SourceRanges>(&range_key(applied.service_id, *range)),
            );
        }
        results.push(self.maps.remove::<Maglev>(&applied.service_id));
        results.push(self.maps.remove::<ReverseNat>(&applied.service_id));
        self.maps.zero_traffic::<ServiceTraffic>(applied.service_id);
        stats.map_operations += results.len();
        for err in results.into_iter().filter_map(Result::err) {
            stats.errors.push(format!("removing {frontend:?}: {err}"));
        }
        self.free_service_ids.push(applied.service_id);
        for id in &applied.backend_ids {
            self.release(*id);
        }
    }

    fn release(&mut self, backend: u32) {
        if let Some(refs) = self.backend_refs.get_mut(&backend) {
            *refs = refs.saturating_sub(1);
        }
    }

    /// Removes the affinity and conntrack state of dropped (service, backend) pairs, and the
    /// backends no frontend uses any more. The scans run only when there can be something to
    /// find (a service with affinity; a conntrack map in use), so an endpoint change of a
    /// service reached through the socket LB costs a handful of map operations.
    fn collect_backends(&mut self, dropped: &HashMap<(u32, u32), bool>, stats: &mut SyncStats) {
        if dropped.is_empty() {
            return;
        }
        let unused: HashSet<u32> = dropped
            .keys()
            .map(|(_, b)| *b)
            .filter(|b| self.backend_refs.get(b).is_none_or(|r| *r == 0))
            .collect();
        if dropped.values().any(|affinity| *affinity) {
            stats.map_operations += self.maps.purge::<Affinity>(|key, value| {
                dropped.contains_key(&(key.service_id, value.backend_id))
            });
        }
        // Conntrack of the per-packet paths: flows to a dropped pair, and replies from a
        // backend that is gone.
        let gone_addresses: HashSet<(u32, u16)> = unused
            .iter()
            .filter_map(|id| self.backends.get(id))
            .map(|b| (be_addr(b.address), be_port(b.port)))
            .collect();
        // Only the per-packet paths write these two maps. Until they have translated a packet
        // the maps are empty, and finding that out by walking them costs a scan of every
        // bucket in the kernel (a third of a millisecond each): one counter says it at once.
        let packets = self.maps.stat(STAT_PKT_TRANSLATED).unwrap_or(1);
        stats.map_operations += 1;
        if packets > 0 {
            // SNATed flows to a dropped pair (their replies would find nobody).
            if self.remote_seen {
                stats.map_operations += self.maps.purge::<Snat>(|_, value| {
                    dropped.contains_key(&(value.service_id, value.backend_id))
                });
            }
            stats.map_operations += self.maps.purge::<Conntrack>(|key, value| {
                (key.reply != 0 && gone_addresses.contains(&(key.saddr, key.sport)))
                    || dropped.contains_key(&(value.service_id, value.backend_id))
            });
        }
        let udp_gone: Vec<(Ipv4Addr, u16)> = unused
            .iter()
            .filter_map(|id| self.backends.get(id))
            .filter(|b| b.proto == crate::model::proto::UDP)
            .map(|b| (b.address, b.port))
            .collect();
        if let Err(err) = self.maps.reap_udp(&udp_gone) {
            stats
                .errors
                .push(format!("closing UDP sockets of removed backends: {err}"));
        }
        for id in unused {
            // An array entry is freed by zeroing it (address 0: no backend).
            if let Err(err) = self.maps.put::<Backends>(&id, &lb4_backend::default()) {
                stats.errors.push(format!("removing backend {id}: {err}"));
            }
            self.maps.zero_traffic::<BackendTraffic>(id);
            stats.map_operations += 2;
            self.free_backend_ids.push(id);
            if let Some(backend) = self.backends.remove(&id) {
                self.backend_ids.remove(&backend);
            }
            self.backend_refs.remove(&id);
            stats.backends_removed += 1;
        }
    }
}

/// `LB_STAT_PKT_TRANSLATED`, the index in `lb_stats` of packets the per-packet paths DNATed.
const STAT_PKT_TRANSLATED: u32 = 2;

fn sorted(ranges: &[(Ipv4Addr, u8)]) -> Vec<(Ipv4Addr, u8)> {
    let mut r = ranges.to_vec();
    r.sort();
    r.dedup();
    r
}

fn range_key(service_id: u32, (address, len): (Ipv4Addr, u8)) -> lb4_source_range_key {
    lb4_source_range_key {
        prefixlen: 32 + u32::from(len),
        service_id,
        address: be_addr(address),
    }
}
