//! MapSync over in-memory maps: the order of its writes, id reuse, adoption, purging, the
//! service entry's layout and node addresses, without root.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use skiff_ebpf::lb::{self, addr_of, be_addr, be_port, types::*};

use super::maps::{
    Affinity, Backends, Conntrack, Maps, MemoryMaps, NodeAddresses, ServiceTraffic, Services, Snat,
    SnatAddress, Write,
};
use super::*;
use crate::model::proto::{TCP, UDP};

fn frontend(last: u8) -> Frontend {
    Frontend {
        address: Ipv4Addr::new(10, 96, 0, last),
        port: 80,
        proto: TCP,
    }
}

fn backend(last: u8) -> Backend {
    Backend {
        address: Ipv4Addr::new(10, 0, 0, last),
        port: 8080,
        proto: TCP,
        remote: false,
    }
}

/// Backends `10.0.0.1..=n`.
fn backends(n: u8) -> Vec<Backend> {
    (1..=n).map(backend).collect()
}

fn spec(backends: Vec<Backend>) -> FrontendSpec {
    FrontendSpec {
        service: "default/web:http".into(),
        flags: 0,
        affinity_timeout: 0,
        backends,
        terminating: BTreeSet::new(),
        source_ranges: Vec::new(),
    }
}

fn desired(frontends: Vec<(Frontend, FrontendSpec)>) -> Desired {
    Desired {
        frontends: frontends.into_iter().collect(),
        skipped: Vec::new(),
    }
}

/// A MapSync on empty maps that has applied `state`, its writes forgotten.
fn synced(state: &Desired) -> MapSync<MemoryMaps> {
    let mut sync = MapSync::adopting(MemoryMaps::default());
    let stats = sync.apply(state);
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    sync.maps.take_writes();
    sync
}

/// A write as a test reads it: `backend 3`, `slot 13`, `-entry`, `zero lb4_service_traffic 1`.
fn label(write: &Write) -> String {
    let sign = if matches!(write, Write::Put { .. }) {
        ""
    } else {
        "-"
    };
    if let Some(key) = write.key::<Services>() {
        return match key.slot {
            0 => format!("{sign}entry"),
            slot => format!("{sign}slot {slot}"),
        };
    }
    if let Some(id) = write.key::<Backends>() {
        return match write.value::<Backends>() {
            Some(b) if b.address != 0 => format!("backend {id}"),
            _ => format!("free backend {id}"),
        };
    }
    if let Some(address) = write.key::<NodeAddresses>() {
        return format!("{sign}node_address {}", addr_of(address));
    }
    if let Some(address) = write.value::<SnatAddress>() {
        return format!("snat_address {}", addr_of(address));
    }
    match write {
        Write::Put { map, .. } | Write::Delete { map, .. } => {
            format!("{sign}{}", map.trim_start_matches("lb4_"))
        }
        Write::Zero { map, id } => format!("zero {map} {id}"),
        Write::Reap { backends } => format!("reap {backends:?}"),
    }
}

/// The writes since the last look, as labels; counter zeroing left out unless `counters`.
fn writes(sync: &mut MapSync<MemoryMaps>, counters: bool) -> Vec<String> {
    sync.maps
        .take_writes()
        .iter()
        .filter(|w| counters || !matches!(w, Write::Zero { .. }))
        .map(label)
        .collect()
}

fn position(log: &[String], label: &str) -> usize {
    log.iter()
        .position(|l| l == label)
        .unwrap_or_else(|| panic!("no {label} in {log:?}"))
}

fn id_of(sync: &MapSync<MemoryMaps>, backend: &Backend) -> u32 {
    sync.backend_ids
        .get(backend)
        .copied()
        .unwrap_or_else(|| panic!("{backend:?} has no id"))
}

fn service_id(sync: &MapSync<MemoryMaps>, f: &Frontend) -> u32 {
    sync.frontends[f].service_id
}

#[test]
fn a_new_frontend_is_written_backends_then_slots_then_its_entry() {
    let mut sync = synced(&Desired::default());
    sync.apply(&desired(vec![(frontend(1), spec(backends(14)))]));
    let mut expected: Vec<String> = (1..=14)
        .flat_map(|id| {
            [
                format!("backend {id}"),
                format!("zero lb4_backend_traffic {id}"),
            ]
        })
        .collect();
    expected.extend(
        [
            "slot 13",
            "slot 14",
            "entry",
            "reverse_nat",
            "zero lb4_service_traffic 1",
        ]
        .map(String::from),
    );
    assert_eq!(writes(&mut sync, true), expected);
}

#[test]
fn a_changed_frontend_writes_new_backends_and_slots_before_its_entry_and_frees_after() {
    let mut sync = synced(&desired(vec![(frontend(1), spec(backends(13)))]));
    // The 13th backend goes, two new ones come.
    let mut now = backends(12);
    now.extend([backend(14), backend(15)]);
    let stats = sync.apply(&desired(vec![(frontend(1), spec(now))]));
    assert_eq!(
        writes(&mut sync, false),
        [
            "backend 14",
            "backend 15",
            "slot 13",
            "slot 14",
            "entry",
            "free backend 13"
        ]
    );
    assert_eq!((stats.backends_added, stats.backends_removed), (2, 1));
}

#[test]
fn a_shrinking_frontend_drops_its_entry_count_before_slots_and_backends() {
    let mut sync = synced(&desired(vec![(frontend(1), spec(backends(14)))]));
    sync.apply(&desired(vec![(frontend(1), spec(backends(12)))]));
    let log = writes(&mut sync, false);
    assert_eq!(log[..3], ["entry", "-slot 13", "-slot 14"]);
    let mut freed = log[3..].to_vec();
    freed.sort();
    assert_eq!(freed, ["free backend 13", "free backend 14"]);
}

#[test]
fn a_removed_frontend_goes_entry_first_then_slots_then_backends() {
    let mut sync = synced(&desired(vec![(frontend(1), spec(backends(13)))]));
    let stats = sync.apply(&Desired::default());
    let log = writes(&mut sync, true);
    assert_eq!(
        log[..5],
        [
            "-entry",
            "-slot 13",
            "-maglev",
            "-reverse_nat",
            "zero lb4_service_traffic 1"
        ]
    );
    // Then every backend is freed (in no particular order), each with its counter zeroed.
    let freed: BTreeSet<&str> = log[5..]
        .iter()
        .filter(|l| l.starts_with("free"))
        .map(String::as_str)
        .collect();
    assert_eq!(freed.len(), 13);
    assert_eq!(log.len(), 5 + 2 * 13);
    assert_eq!((stats.frontends_removed, stats.backends_removed), (1, 13));
    assert_eq!(sync.sizes(), (0, 0));
    assert!(sync.maps.entries::<Services>().is_empty());
}

#[test]
fn a_freed_backend_id_is_handed_out_again() {
    let (b1, b2, b3) = (backend(1), backend(2), backend(3));
    let mut sync = synced(&desired(vec![(frontend(1), spec(vec![b1, b2]))]));
    assert_eq!((id_of(&sync, &b1), id_of(&sync, &b2)), (1, 2));
    sync.apply(&desired(vec![(frontend(1), spec(vec![b1]))]));
    assert!(!sync.backend_ids.contains_key(&b2));
    sync.apply(&desired(vec![(frontend(1), spec(vec![b1, b3]))]));
    assert_eq!(id_of(&sync, &b3), 2);
    // Ids stay dense: nothing past the highest id in use was taken.
    assert_eq!(sync.next_backend_id, 3);
}

#[test]
fn a_shared_backend_keeps_its_id_while_any_frontend_uses_it() {
    let (b1, b2) = (backend(1), backend(2));
    let mut sync = synced(&desired(vec![
        (frontend(1), spec(vec![b1])),
        (frontend(2), spec(vec![b1, b2])),
    ]));
    let id = id_of(&sync, &b1);
    assert_eq!(sync.sizes(), (2, 2));
    sync.apply(&desired(vec![(frontend(2), spec(vec![b1, b2]))]));
    let log = writes(&mut sync, false);
    assert!(!log.iter().any(|l| l.starts_with("free")), "{log:?}");
    assert_eq!(id_of(&sync, &b1), id);
    assert_eq!(
        sync.maps.get::<Backends>(&id).unwrap().address,
        be_addr(b1.address)
    );
    sync.apply(&desired(vec![(frontend(2), spec(vec![b2]))]));
    assert_eq!(
        writes(&mut sync, false),
        ["entry", format!("free backend {id}").as_str()]
    );
}

/// A state with every kind of entry: slots, affinity, Maglev, source ranges.
fn rich_state() -> Desired {
    let mut affinity = spec(backends(3));
    affinity.flags = lb::flags::AFFINITY | lb::flags::MAGLEV | lb::flags::SOURCE_RANGES;
    affinity.affinity_timeout = 600;
    affinity.source_ranges = vec![
        (Ipv4Addr::new(192, 168, 0, 0), 16),
        (Ipv4Addr::new(10, 0, 0, 0), 8),
    ];
    let mut many = backends(20);
    many.reverse();
    desired(vec![(frontend(1), affinity), (frontend(2), spec(many))])
}

#[test]
fn a_new_map_sync_adopts_the_pinned_state_and_writes_nothing_for_it() {
    let state = rich_state();
    let before = synced(&state);
    let ids: BTreeMap<Backend, u32> = before.backend_ids().map(|(b, id)| (*b, id)).collect();
    let services: BTreeMap<Frontend, u32> = before.service_ids().map(|(f, id)| (*f, id)).collect();
    let mut sync = MapSync::adopting(before.maps);
    assert_eq!(writes(&mut sync, true), Vec::<String>::new());
    let stats = sync.apply(&state);
    let purge = Default::default();
    assert_eq!(SyncStats { purge, ..stats }, SyncStats::default());
    assert_eq!(writes(&mut sync, true), Vec::<String>::new());
    assert_eq!(
        sync.backend_ids()
            .map(|(b, id)| (*b, id))
            .collect::<BTreeMap<_, _>>(),
        ids
    );
    assert_eq!(
        sync.service_ids()
            .map(|(f, id)| (*f, id))
            .collect::<BTreeMap<_, _>>(),
        services
    );
    // New ids continue after the adopted ones.
    let mut more = state.clone();
    more.frontends.insert(frontend(3), spec(vec![backend(99)]));
    sync.apply(&more);
    assert_eq!(id_of(&sync, &backend(99)), 21);
    assert_eq!(service_id(&sync, &frontend(3)), 3);
}

#[test]
fn adoption_removes_stale_entries_and_reuses_their_ids() {
    let mut old = synced(&desired(vec![
        (frontend(1), spec(backends(2))),
        (frontend(2), spec(vec![backend(3)])),
    ]));
    // An interrupted removal: slots of a frontend whose entry is already gone.
    for slot in [13u16, 14] {
        let key = lb::frontend_key(Ipv4Addr::new(10, 96, 0, 9), 80, TCP, slot);
        old.maps
            .put::<Services>(&key, &lb4_service::default())
            .unwrap();
    }
    old.maps.take_writes();
    let mut sync = MapSync::adopting(old.maps);
    let mut log = writes(&mut sync, true);
    log.sort();
    assert_eq!(log, ["-slot 13", "-slot 14"]);
    // frontend(2)'s Service was deleted while no agent watched: the first apply removes it.
    let stats = sync.apply(&desired(vec![(frontend(1), spec(backends(2)))]));
    assert_eq!((stats.frontends_removed, stats.frontends_written), (1, 0));
    assert_eq!(
        writes(&mut sync, false),
        ["-entry", "-maglev", "-reverse_nat", "free backend 3"]
    );
    // Its ids are free again.
    sync.apply(&desired(vec![
        (frontend(1), spec(backends(2))),
        (frontend(4), spec(vec![backend(4)])),
    ]));
    assert_eq!(id_of(&sync, &backend(4)), 3);
    assert_eq!(service_id(&sync, &frontend(4)), 2);
}

#[test]
fn adoption_finds_ids_freed_before_the_restart() {
    let mut old = synced(&desired(vec![
        (frontend(1), spec(backends(3))),
        (frontend(2), spec(vec![backend(1)])),
    ]));
    old.apply(&desired(vec![(
        frontend(2),
        spec(vec![backend(1), backend(3)]),
    )]));
    // Backend 2 and service id 1 were freed; the new agent hands them out again.
    let mut sync = MapSync::adopting(old.maps);
    sync.apply(&desired(vec![
        (frontend(2), spec(vec![backend(1), backend(3)])),
        (frontend(3), spec(vec![backend(7)])),
    ]));
    assert_eq!(id_of(&sync, &backend(7)), 2);
    assert_eq!(service_id(&sync, &frontend(3)), 1);
}

/// Affinity, conntrack and SNAT entries of `service` for each of `backends`, plus a reply
/// conntrack entry from each backend's address.
fn flow_state(sync: &mut MapSync<MemoryMaps>, service: u32, backends: &[Backend]) {
    for (client, b) in backends.iter().enumerate() {
        let id = id_of(sync, b);
        let client = client as u32 + 1;
        let maps = &mut sync.maps;
        let key = lb4_affinity_key {
            client: u64::from(client),
            service_id: service,
            ..Default::default()
        };
        let value = lb4_affinity {
            backend_id: id,
            ..Default::default()
        };
        maps.put::<Affinity>(&key, &value).unwrap();
        let forward = lb4_ct_key {
            saddr: client,
            daddr: be_addr(frontend(1).address),
            sport: be_port(40000),
            dport: be_port(80),
            proto: TCP,
            ..Default::default()
        };
        let entry = lb4_ct_entry {
            backend_id: id,
            service_id: service,
            ..Default::default()
        };
        maps.put::<Conntrack>(&forward, &entry).unwrap();
        let reply = lb4_ct_key {
            saddr: be_addr(b.address),
            sport: be_port(b.port),
            daddr: client,
            dport: be_port(40000),
            proto: TCP,
            reply: 1,
            ..Default::default()
        };
        maps.put::<Conntrack>(&reply, &lb4_ct_entry::default())
            .unwrap();
        let snat = lb4_snat_key {
            backend: be_addr(b.address),
            port: be_port(60000 + client as u16),
            ..Default::default()
        };
        let value = lb4_snat_entry {
            backend_id: id,
            service_id: service,
            ..Default::default()
        };
        maps.put::<Snat>(&snat, &value).unwrap();
    }
    sync.maps.take_writes();
}

/// The backend ids the flow state of `map` still names.
fn flows_to<T: super::maps::Table>(
    sync: &MapSync<MemoryMaps>,
    backend_id: impl Fn(&T::Key, &T::Value) -> u32,
) -> BTreeSet<u32> {
    sync.maps
        .entries::<T>()
        .iter()
        .map(|(k, v)| backend_id(k, v))
        .collect()
}

#[test]
fn removing_a_backend_purges_its_flows_and_keeps_the_others() {
    let (b1, b2) = (
        backend(1),
        Backend {
            remote: true,
            ..backend(2)
        },
    );
    let mut affinity = spec(vec![b1, b2]);
    affinity.flags = lb::flags::AFFINITY;
    affinity.affinity_timeout = 10;
    let mut sync = synced(&desired(vec![(frontend(1), affinity.clone())]));
    let (id1, id2) = (id_of(&sync, &b1), id_of(&sync, &b2));
    let svc = service_id(&sync, &frontend(1));
    flow_state(&mut sync, svc, &[b1, b2]);
    // Another service's affinity to b1 is not this service's to lose.
    let other = lb4_affinity_key {
        client: 7,
        service_id: svc + 1,
        ..Default::default()
    };
    let to_b1 = lb4_affinity {
        backend_id: id1,
        ..Default::default()
    };
    sync.maps.put::<Affinity>(&other, &to_b1).unwrap();
    // The per-packet paths have translated packets: conntrack is in use.
    sync.maps.set_stat(STAT_PKT_TRANSLATED, 5);
    sync.maps.take_writes();

    affinity.backends = vec![b2];
    let stats = sync.apply(&desired(vec![(frontend(1), affinity)]));
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    let affinity_left: BTreeSet<(u32, u32)> = sync
        .maps
        .entries::<Affinity>()
        .iter()
        .map(|(k, v)| (k.service_id, v.backend_id))
        .collect();
    assert_eq!(affinity_left, BTreeSet::from([(svc, id2), (svc + 1, id1)]));
    // Forward entries by their backend id; replies by the backend address they come from.
    let forward = flows_to::<Conntrack>(&sync, |k, v| if k.reply == 0 { v.backend_id } else { 0 });
    assert_eq!(forward, BTreeSet::from([0, id2]));
    let replies: BTreeSet<u32> = sync
        .maps
        .entries::<Conntrack>()
        .iter()
        .filter(|(k, _)| k.reply != 0)
        .map(|(k, _)| k.saddr)
        .collect();
    assert_eq!(replies, BTreeSet::from([be_addr(b2.address)]));
    assert_eq!(
        flows_to::<Snat>(&sync, |_, v| v.backend_id),
        BTreeSet::from([id2])
    );
    // Purged only after the entry already sends new connections elsewhere.
    let log = writes(&mut sync, false);
    assert!(
        position(&log, "entry") < position(&log, "-affinity"),
        "{log:?}"
    );
}

#[test]
fn flow_state_is_left_alone_where_nothing_can_have_written_it() {
    // No affinity, no translated packet, no remote backend: no scans, so nothing purged.
    let mut sync = synced(&desired(vec![(frontend(1), spec(backends(2)))]));
    let svc = service_id(&sync, &frontend(1));
    flow_state(&mut sync, svc, &backends(2));
    sync.apply(&desired(vec![(frontend(1), spec(vec![backend(2)]))]));
    assert_eq!(writes(&mut sync, false), ["entry", "free backend 1"]);
    assert_eq!(sync.maps.entries::<Affinity>().len(), 2);
    assert_eq!(sync.maps.entries::<Conntrack>().len(), 4);
    assert_eq!(sync.maps.entries::<Snat>().len(), 2);
}

#[test]
fn a_backend_another_frontend_still_uses_keeps_its_replies_and_sockets() {
    let udp = |last| Backend {
        proto: UDP,
        ..backend(last)
    };
    let dns = |last| Frontend {
        proto: UDP,
        ..frontend(last)
    };
    let (u1, u2) = (udp(1), udp(2));
    let mut sync = synced(&desired(vec![
        (dns(1), spec(vec![u1, u2])),
        (dns(2), spec(vec![u1])),
    ]));
    let svc = service_id(&sync, &dns(1));
    flow_state(&mut sync, svc, &[u1]);
    sync.maps.set_stat(STAT_PKT_TRANSLATED, 1);
    sync.maps.take_writes();
    // dns(1) drops u1, which dns(2) still uses: its flows of dns(1) go, its replies and
    // connected sockets stay.
    sync.apply(&desired(vec![
        (dns(1), spec(vec![u2])),
        (dns(2), spec(vec![u1])),
    ]));
    let log = writes(&mut sync, false);
    assert!(
        !log.iter()
            .any(|l| l.starts_with("reap") || l.starts_with("free")),
        "{log:?}"
    );
    let conntrack = sync.maps.entries::<Conntrack>();
    assert_eq!(conntrack.len(), 1);
    assert_eq!(conntrack[0].0.reply, 1);
    // Once no frontend uses it, its connected UDP sockets are closed (after the entry).
    sync.apply(&desired(vec![
        (dns(1), spec(vec![u2])),
        (dns(2), spec(vec![u2])),
    ]));
    let log = writes(&mut sync, false);
    let reap = format!("reap {:?}", [(u1.address, u1.port)]);
    assert!(position(&log, "entry") < position(&log, &reap), "{log:?}");
    assert!(
        position(&log, &reap) < position(&log, "free backend 1"),
        "{log:?}"
    );
    assert!(sync.maps.entries::<Conntrack>().is_empty());
}

#[test]
fn a_tcp_backend_has_no_sockets_to_reap() {
    let mut sync = synced(&desired(vec![(frontend(1), spec(backends(2)))]));
    sync.apply(&desired(vec![(frontend(1), spec(vec![backend(2)]))]));
    let log = writes(&mut sync, true);
    assert!(!log.iter().any(|l| l.starts_with("reap")), "{log:?}");
}

/// The service entry of `f` and the slots it has in the maps.
fn layout(sync: &MapSync<MemoryMaps>, f: &Frontend) -> (lb4_service, Vec<(u16, u32)>) {
    let mut entry = None;
    let mut slots = Vec::new();
    for (key, value) in sync.maps.entries::<Services>() {
        if addr_of(key.address) != f.address {
            continue;
        }
        match key.slot {
            0 => entry = Some(value),
            slot => slots.push((slot, value.backend_id)),
        }
    }
    slots.sort();
    (entry.expect("a service entry"), slots)
}

#[test]
fn up_to_twelve_backends_are_inline_and_the_rest_in_slots() {
    assert_eq!(inline_capacity(), 12);
    let f = frontend(1);
    let mut sync = synced(&desired(vec![(f, spec(backends(12)))]));
    let (entry, slots) = layout(&sync, &f);
    assert_eq!((entry.count, entry.inline_count), (12, 12));
    assert_eq!(entry.inline_ids.to_vec(), (1..=12).collect::<Vec<u32>>());
    assert!(slots.is_empty());

    sync.apply(&desired(vec![(f, spec(backends(13)))]));
    assert_eq!(writes(&mut sync, false), ["backend 13", "slot 13", "entry"]);
    let (entry, slots) = layout(&sync, &f);
    assert_eq!((entry.count, entry.inline_count), (13, 12));
    assert_eq!(slots, [(13, 13)]);

    sync.apply(&desired(vec![(f, spec(backends(12)))]));
    assert_eq!(
        writes(&mut sync, false),
        ["entry", "-slot 13", "free backend 13"]
    );
    let (entry, slots) = layout(&sync, &f);
    assert_eq!((entry.count, entry.inline_count), (12, 12));
    assert!(slots.is_empty());
}

#[test]
fn node_addresses_change_by_difference() {
    let a = |last| Ipv4Addr::new(10, 0, 0, last);
    let mut sync = synced(&Desired::default());
    sync.set_node_addresses(&BTreeSet::from([Ipv4Addr::LOCALHOST, a(1), a(2)]))
        .unwrap();
    assert_eq!(
        writes(&mut sync, true),
        [
            "snat_address 10.0.0.1",
            "node_address 10.0.0.1",
            "node_address 10.0.0.2",
            "node_address 127.0.0.1"
        ]
    );
    sync.set_node_addresses(&BTreeSet::from([Ipv4Addr::LOCALHOST, a(2), a(3)]))
        .unwrap();
    assert_eq!(
        writes(&mut sync, true),
        [
            "snat_address 10.0.0.2",
            "node_address 10.0.0.3",
            "-node_address 10.0.0.1"
        ]
    );
    // A restarted agent adopts them: the same addresses change nothing but the SNAT source.
    let mut sync = MapSync::adopting(sync.maps);
    sync.set_node_addresses(&BTreeSet::from([Ipv4Addr::LOCALHOST, a(2), a(3)]))
        .unwrap();
    assert_eq!(writes(&mut sync, true), ["snat_address 10.0.0.2"]);
    // Loopback alone: no SNAT source.
    sync.set_node_addresses(&BTreeSet::from([Ipv4Addr::LOCALHOST]))
        .unwrap();
    assert_eq!(writes(&mut sync, true)[0], "snat_address 0.0.0.0");
}

#[test]
fn a_frontend_that_does_not_fit_is_reported_and_tried_again() {
    let maps = MemoryMaps::default().limit::<ServiceTraffic>(2);
    let mut sync = MapSync::adopting(maps);
    let state = desired(vec![
        (frontend(1), spec(vec![backend(1)])),
        (frontend(2), spec(vec![backend(2)])),
    ]);
    let stats = sync.apply(&state);
    assert_eq!(stats.frontends_written, 1);
    assert_eq!(stats.errors.len(), 1, "{:?}", stats.errors);
    assert!(
        stats.errors[0].contains("lb4_service_traffic"),
        "{:?}",
        stats.errors
    );
    // Only service id 1 fits (ids index the counters, 0 is unused): frontend(2) waits.
    assert_eq!(sync.sizes(), (1, 1));
    sync.apply(&desired(vec![(frontend(2), spec(vec![backend(2)]))]));
    assert_eq!(sync.sizes(), (1, 1));
    assert_eq!(service_id(&sync, &frontend(2)), 1);
}
