//! Golden-packet tests of the pod network's routing programs (`c/net_tc.bpf.c`) and its maps.
//!
//! Every case uses fresh maps in a pin directory of its own (removed by [`PinGuard`]), runs
//! crafted frames through `BPF_PROG_TEST_RUN` (no interface, no traffic: a redirect is only a
//! verdict) and checks the verdict, the frame the program left and the counters. Needs root.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

use libbpf_rs::Object;
use skiff_ebpf::net::{self, Endpoint, Mode, NetConfig, NetMaps, programs, verdict};
use skiff_ebpf::{PinDir, PinGuard};

const POD_A: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 10);
const POD_B: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 11);
const REMOTE_POD: Ipv4Addr = Ipv4Addr::new(10, 244, 2, 20);
const UNKNOWN_NODE_POD: Ipv4Addr = Ipv4Addr::new(10, 244, 9, 20);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
const NODE2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const IF_A: u32 = 100;
const IF_B: u32 = 101;
const POD_A_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
const HOST_A_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 1];
const POD_B_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 2];
const HOST_B_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 2];

static CASE: AtomicU32 = AtomicU32::new(0);

struct Lab {
    maps: NetMaps,
    object: Object,
    _guard: PinGuard,
}

fn lab(mode: Mode) -> Lab {
    let case = CASE.fetch_add(1, Ordering::Relaxed);
    let pins = PinDir::new(format!(
        "/sys/fs/bpf/skiff-net-golden-{}-{case}",
        std::process::id()
    ));
    let guard = PinGuard(pins.clone());
    let maps = NetMaps::open(&pins).expect("maps");
    maps.set_config(&NetConfig {
        cluster_cidr: (Ipv4Addr::new(10, 244, 0, 0), 16),
        pod_cidr: (Ipv4Addr::new(10, 244, 1, 0), 24),
        mode,
    })
    .unwrap();
    for (address, ifindex, pod_mac, host_mac) in [
        (POD_A, IF_A, POD_A_MAC, HOST_A_MAC),
        (POD_B, IF_B, POD_B_MAC, HOST_B_MAC),
    ] {
        maps.put_endpoint(&Endpoint {
            address,
            ifindex,
            pod_mac,
            host_mac,
            identity: u64::from(ifindex),
        })
        .unwrap();
    }
    let object = net::load(&pins).expect("load");
    Lab {
        maps,
        object,
        _guard: guard,
    }
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet + IPv4 + UDP frame from `src` to `dst` with `ttl`, checksummed.
fn frame(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
    let payload = b"skiff pod network";
    let mut f = Vec::new();
    f.extend_from_slice(&HOST_A_MAC); // the pod sends to its gateway
    f.extend_from_slice(&POD_A_MAC);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, ttl, 17, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&4000u16.to_be_bytes());
    f.extend_from_slice(&5000u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no UDP checksum
    f.extend_from_slice(payload);
    f
}

fn ip_header_ok(f: &[u8]) -> bool {
    checksum(&f[14..34]) == 0
}

#[test]
fn maps_round_trip() {
    let case = CASE.fetch_add(1, Ordering::Relaxed);
    let pins = PinDir::new(format!(
        "/sys/fs/bpf/skiff-net-golden-{}-{case}",
        std::process::id()
    ));
    let _guard = PinGuard(pins.clone());
    let maps = NetMaps::open(&pins).unwrap();
    assert_eq!(maps.config().unwrap(), None);
    assert!(maps.endpoints().unwrap().is_empty());
    let ep = Endpoint {
        address: POD_A,
        ifindex: 7,
        pod_mac: POD_A_MAC,
        host_mac: HOST_A_MAC,
        identity: 0xdead_beef_0123,
    };
    maps.put_endpoint(&ep).unwrap();
    // A second open (another CNI ADD) sees the same maps.
    let again = NetMaps::open(&pins).unwrap();
    assert_eq!(again.endpoint(POD_A).unwrap(), Some(ep.clone()));
    assert_eq!(again.endpoint(POD_B).unwrap(), None);
    assert_eq!(again.endpoints().unwrap(), vec![ep]);
    maps.remove_endpoint(POD_A).unwrap();
    maps.remove_endpoint(POD_A).unwrap();
    assert_eq!(again.endpoint(POD_A).unwrap(), None);

    let config = NetConfig {
        cluster_cidr: (Ipv4Addr::new(10, 244, 0, 0), 16),
        pod_cidr: (Ipv4Addr::new(10, 244, 1, 0), 24),
        mode: Mode::Overlay {
            ifindex: 9,
            vni: 42,
        },
    };
    maps.set_config(&config).unwrap();
    assert_eq!(again.config().unwrap(), Some(config));

    // Host bits of a CIDR are dropped.
    maps.put_tunnel((Ipv4Addr::new(10, 244, 2, 7), 24), NODE2)
        .unwrap();
    assert_eq!(
        again.tunnels().unwrap(),
        vec![((Ipv4Addr::new(10, 244, 2, 0), 24), NODE2)]
    );
    maps.remove_tunnel((Ipv4Addr::new(10, 244, 2, 0), 24))
        .unwrap();
    assert!(again.tunnels().unwrap().is_empty());
    assert!(maps.stats().unwrap().iter().all(|(_, n)| *n == 0));
}
