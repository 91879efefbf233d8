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

fn from_pod(lab: &Lab, packet: &[u8], ingress: u32) -> net::RunOutput {
    net::run(&lab.object, programs::FROM_POD, packet, ingress).unwrap()
}

fn stat(lab: &Lab, name: &str) -> u64 {
    lab.maps.stat(name).unwrap()
}

#[test]
fn from_pod_to_local_endpoint() {
    let lab = lab(Mode::Native);
    let sent = frame(POD_A, POD_B, 64);
    let out = from_pod(&lab, &sent, IF_A);
    assert_eq!(out.verdict, verdict::TC_REDIRECT);
    assert_eq!(&out.packet[0..6], &POD_B_MAC);
    assert_eq!(&out.packet[6..12], &HOST_B_MAC);
    // Same L2 segment as far as the pod knows: the IP header is untouched.
    assert_eq!(&out.packet[12..], &sent[12..]);
    assert_eq!(stat(&lab, "redirect_local"), 1);
}

#[test]
fn from_pod_spoofed_source_dropped() {
    let lab = lab(Mode::Native);
    // B's address, sent from A's veth.
    let out = from_pod(&lab, &frame(POD_B, POD_A, 64), IF_A);
    assert_eq!(out.verdict, verdict::TC_SHOT);
    // An address no pod owns.
    let out = from_pod(
        &lab,
        &frame(Ipv4Addr::new(10, 244, 1, 99), OUTSIDE, 64),
        IF_A,
    );
    assert_eq!(out.verdict, verdict::TC_SHOT);
    assert_eq!(stat(&lab, "drop_spoof"), 2);
    // 0.0.0.0 (DHCP-like) goes on, here to the stack.
    let out = from_pod(&lab, &frame(Ipv4Addr::UNSPECIFIED, OUTSIDE, 64), IF_A);
    assert_eq!(out.verdict, verdict::TC_OK);
    assert_eq!(stat(&lab, "drop_spoof"), 2);
}

#[test]
fn from_pod_outside_cluster_and_own_cidr_pass() {
    let lab = lab(Mode::Native);
    for dst in [OUTSIDE, NODE2, Ipv4Addr::new(10, 244, 1, 200)] {
        let sent = frame(POD_A, dst, 64);
        let out = from_pod(&lab, &sent, IF_A);
        assert_eq!(out.verdict, verdict::TC_OK, "{dst}");
        assert_eq!(out.packet, sent, "{dst} untouched");
    }
    assert_eq!(stat(&lab, "pass"), 3);
}

#[test]
fn from_pod_non_ipv4_and_truncated_pass() {
    let lab = lab(Mode::Native);
    let mut arp = frame(POD_A, POD_B, 64);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    arp.truncate(42);
    let mut ipv6 = frame(POD_A, POD_B, 64);
    ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let full = frame(POD_A, POD_B, 64);
    let mut bad_version = full.clone();
    bad_version[14] = 0x65;
    for (what, packet) in [
        ("arp", arp),
        ("ipv6", ipv6),
        ("ihl 4", {
            let mut f = full.clone();
            f[14] = 0x44;
            f
        }),
        ("version 6 in an IPv4 frame", bad_version),
    ] {
        let out = net::run(&lab.object, programs::FROM_POD, &packet, IF_A)
            .unwrap_or_else(|err| panic!("{what}: {err}"));
        assert_eq!(out.verdict, verdict::TC_OK, "{what}");
    }
    // An IPv4 frame cut before or inside its IP header: test_run itself refuses to build that skb
    // (EINVAL); if a kernel takes it, the program must still pass it.
    for cut in [14, 30] {
        if let Ok(out) = net::run(&lab.object, programs::FROM_POD, &full[..cut], IF_A) {
            assert_eq!(out.verdict, verdict::TC_OK, "cut at {cut}");
        }
    }
    assert_eq!(stat(&lab, "redirect_local"), 0);
}

#[test]
fn from_pod_overlay_tunnel_hit_and_miss() {
    let lab = lab(Mode::Overlay { ifindex: 1, vni: 7 });
    lab.maps
        .put_tunnel((Ipv4Addr::new(10, 244, 2, 0), 24), NODE2)
        .unwrap();
    let sent = frame(POD_A, REMOTE_POD, 64);
    let out = from_pod(&lab, &sent, IF_A);
    assert_eq!(out.verdict, verdict::TC_REDIRECT);
    assert_eq!(out.packet[22], 63, "TTL decremented");
    assert!(ip_header_ok(&out.packet), "header checksum fixed");
    assert_eq!(stat(&lab, "redirect_tunnel"), 1);

    let sent = frame(POD_A, UNKNOWN_NODE_POD, 64);
    let out = from_pod(&lab, &sent, IF_A);
    assert_eq!(out.verdict, verdict::TC_OK);
    assert_eq!(out.packet, sent);
    assert_eq!(stat(&lab, "no_tunnel"), 1);

    // TTL running out: the stack answers with time exceeded.
    let out = from_pod(&lab, &frame(POD_A, REMOTE_POD, 1), IF_A);
    assert_eq!(out.verdict, verdict::TC_OK);
}

#[test]
fn ttl_checksum_carry() {
    // A header whose checksum field is 0xffff-adjacent still comes out valid: try many IDs.
    let lab = lab(Mode::Overlay { ifindex: 1, vni: 7 });
    lab.maps
        .put_tunnel((Ipv4Addr::new(10, 244, 2, 0), 24), NODE2)
        .unwrap();
    for id in (0u16..=0xffff).step_by(251) {
        let mut sent = frame(POD_A, REMOTE_POD, 64);
        sent[18..20].copy_from_slice(&id.to_be_bytes());
        sent[24..26].copy_from_slice(&[0, 0]);
        let c = checksum(&sent[14..34]);
        sent[24..26].copy_from_slice(&c.to_be_bytes());
        let out = from_pod(&lab, &sent, IF_A);
        assert!(ip_header_ok(&out.packet), "id {id}");
    }
}

#[test]
fn to_pod_hit_and_miss() {
    let lab = lab(Mode::Native);
    let sent = frame(REMOTE_POD, POD_B, 63);
    let out = net::run(&lab.object, programs::TO_POD, &sent, 2).unwrap();
    assert_eq!(out.verdict, verdict::TC_REDIRECT);
    assert_eq!(&out.packet[0..6], &POD_B_MAC);
    assert_eq!(&out.packet[6..12], &HOST_B_MAC);
    assert_eq!(&out.packet[12..], &sent[12..]);

    for dst in [UNKNOWN_NODE_POD, OUTSIDE] {
        let sent = frame(REMOTE_POD, dst, 63);
        let out = net::run(&lab.object, programs::TO_POD, &sent, 2).unwrap();
        assert_eq!(out.verdict, verdict::TC_NEXT, "{dst}");
        assert_eq!(out.packet, sent);
    }
    let arp = {
        let mut f = frame(REMOTE_POD, POD_B, 63);
        f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        f
    };
    let out = net::run(&lab.object, programs::TO_POD, &arp, 2).unwrap();
    assert_eq!(out.verdict, verdict::TC_NEXT);
}

#[test]
fn unconfigured_node_passes_remote_traffic() {
    let case = CASE.fetch_add(1, Ordering::Relaxed);
    let pins = PinDir::new(format!(
        "/sys/fs/bpf/skiff-net-golden-{}-{case}",
        std::process::id()
    ));
    let _guard = PinGuard(pins.clone());
    let maps = NetMaps::open(&pins).unwrap();
    maps.put_endpoint(&Endpoint {
        address: POD_A,
        ifindex: IF_A,
        pod_mac: POD_A_MAC,
        host_mac: HOST_A_MAC,
        identity: 1,
    })
    .unwrap();
    let object = net::load(&pins).unwrap();
    let out = net::run(
        &object,
        programs::FROM_POD,
        &frame(POD_A, REMOTE_POD, 64),
        IF_A,
    )
    .unwrap();
    assert_eq!(out.verdict, verdict::TC_OK);
}

/// Runs `ip args...` in the network namespace of thread `tid` of this process.
fn ip_in(tid: i32, args: &str) {
    let out = std::process::Command::new("nsenter")
        .arg(format!(
            "--net=/proc/{}/task/{tid}/ns/net",
            std::process::id()
        ))
        .arg("ip")
        .args(args.split_whitespace())
        .output()
        .expect("nsenter");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn from_pod_native_fib() {
    // bpf_fib_lookup answers from the caller's namespace: a private one, on a thread of its
    // own, with a fake pod veth (ifindex IF_A) and an uplink whose routes and neighbours
    // are fixed.
    std::thread::spawn(|| {
        // SAFETY: only this thread changes namespace.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
        // SAFETY: no arguments.
        let tid = unsafe { libc::gettid() };
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
        // (No dummy driver on every kernel: veth pairs, both ends up.)
        ip_in(
            tid,
            &format!("link add pa index {IF_A} type veth peer name pb"),
        );
        ip_in(
            tid,
            "link add ul index 50 address 02:dd:00:00:00:01 type veth peer name ulp",
        );
        for dev in ["pa", "pb", "ul", "ulp"] {
            ip_in(tid, &format!("link set {dev} up"));
        }
        ip_in(tid, "addr add 198.51.100.1/24 dev ul");
        ip_in(tid, "route add 10.244.2.0/24 via 198.51.100.2");
        ip_in(tid, "route add 10.244.3.0/24 via 198.51.100.3");
        ip_in(
            tid,
            "neigh add 198.51.100.2 lladdr 02:cc:00:00:00:02 dev ul nud permanent",
        );
        let lab = lab(Mode::Native);

        // Resolved neighbour: MACs from the FIB, TTL decremented, out of the uplink.
        let out = from_pod(&lab, &frame(POD_A, REMOTE_POD, 64), IF_A);
        assert_eq!(out.verdict, verdict::TC_REDIRECT);
        assert_eq!(&out.packet[0..6], &[0x02, 0xcc, 0, 0, 0, 2]);
        assert_eq!(&out.packet[6..12], &[0x02, 0xdd, 0, 0, 0, 1]);
        assert_eq!(out.packet[22], 63);
        assert!(ip_header_ok(&out.packet));
        // Unresolved neighbour: bpf_redirect_neigh.
        let out = from_pod(&lab, &frame(POD_A, Ipv4Addr::new(10, 244, 3, 5), 64), IF_A);
        assert_eq!(out.verdict, verdict::TC_REDIRECT);
        assert_eq!(stat(&lab, "redirect_native"), 2);
        // No route: the stack (ICMP unreachable).
        let sent = frame(POD_A, UNKNOWN_NODE_POD, 64);
        let out = from_pod(&lab, &sent, IF_A);
        assert_eq!(out.verdict, verdict::TC_OK);
        assert_eq!(out.packet, sent);
        assert_eq!(stat(&lab, "fib_fail"), 1);
        // TTL 1: the stack (time exceeded).
        let out = from_pod(&lab, &frame(POD_A, REMOTE_POD, 1), IF_A);
        assert_eq!(out.verdict, verdict::TC_OK);
    })
    .join()
    .expect("native FIB case");
}
