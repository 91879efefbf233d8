//! Golden-packet tests of the per-packet load balancer (`c/lb_tc.bpf.c`, `c/lb_xdp.bpf.c`).
//!
//! Every case loads the programs against fresh maps in its own pin directory, writes its
//! services, runs crafted frames through `BPF_PROG_TEST_RUN` (no interface, no traffic), and
//! compares the verdict, the output frame byte for byte (expected frames are built from
//! scratch, with full checksums, so the programs' incremental checksum updates are checked
//! too) and the counters. The same table runs on tc and on XDP, each in a network namespace
//! of its own whose routes and neighbours (`golden_topology`) give the FIB lookups of the
//! SNAT path fixed answers. Needs root.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};

use libbpf_rs::{MapCore, MapFlags, Object};
use skiff_ebpf::lb::{self, LbMaps, Sizes, be_addr, be_port, flags, frontend_key, types::*};
use skiff_ebpf::packet_lb::{self, PacketLb, programs, verdict};
use skiff_ebpf::{PinDir, PinGuard};

// ---------------------------------------------------------------------------------------------
// Addresses of the scenarios.

const CLIENT: &str = "192.0.2.10";
const CLUSTER_IP: &str = "10.96.0.10";
const NODE: &str = "198.51.100.1";
const OTHER_HOST: &str = "198.51.100.99";
const EXTERNAL_IP: &str = "203.0.113.5";
const B1: &str = "10.244.1.11";
const B2: &str = "10.244.2.12";
const B3: &str = "10.244.3.13";
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
const NODE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The node that routes to the remote backend B2 (`golden_topology`).
const REMOTE_NODE: &str = "198.51.100.2";
const REMOTE_NODE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const TCP: u8 = 6;
const UDP: u8 = 17;
const SCTP: u8 = 132;
const ICMP: u8 = 1;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// A small packet builder: Ethernet, IPv4 (options, fragments), TCP/UDP/SCTP/ICMP, with
// correct checksums unless told otherwise.

#[derive(Clone, Debug)]
enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
    },
    Udp {
        sport: u16,
        dport: u16,
        no_checksum: bool,
    },
    /// SCTP's common header; its CRC32c is left as given (the programs never touch it).
    Sctp {
        sport: u16,
        dport: u16,
        crc: u32,
    },
    Icmp {
        kind: u8,
        code: u8,
    },
}

#[derive(Clone, Debug)]
struct Packet {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    id: u16,
    options: Vec<u8>,
    l4: L4,
    payload: Vec<u8>,
}

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Packet {
    Packet {
        src_mac: CLIENT_MAC,
        dst_mac: NODE_MAC,
        src: ip(src),
        dst: ip(dst),
        ttl: 63,
        id: 0x1234,
        options: vec![],
        l4: L4::Tcp {
            sport,
            dport,
            seq: 1000,
            ack: 0,
            flags: SYN,
            window: 64240,
        },
        payload: vec![],
    }
}

fn udp(src: &str, sport: u16, dst: &str, dport: u16) -> Packet {
    Packet {
        l4: L4::Udp {
            sport,
            dport,
            no_checksum: false,
        },
        payload: b"hello, service".to_vec(),
        ..tcp(src, sport, dst, dport)
    }
}

fn sum16(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    sum16(&src.octets()) + sum16(&dst.octets()) + u32::from(proto) + len as u32
}

impl Packet {
    fn proto(&self) -> u8 {
        match self.l4 {
            L4::Tcp { .. } => TCP,
            L4::Udp { .. } => UDP,
            L4::Sctp { .. } => SCTP,
            L4::Icmp { .. } => ICMP,
        }
    }

    /// The L4 segment with its checksum.
    fn l4_bytes(&self) -> Vec<u8> {
        let mut seg = Vec::new();
        match self.l4 {
            L4::Tcp {
                sport,
                dport,
                seq,
                ack,
                flags,
                window,
            } => {
                seg.extend(sport.to_be_bytes());
                seg.extend(dport.to_be_bytes());
                seg.extend(seq.to_be_bytes());
                seg.extend(ack.to_be_bytes());
                seg.extend([5 << 4, flags]);
                seg.extend(window.to_be_bytes());
                seg.extend([0, 0, 0, 0]);
                seg.extend(&self.payload);
                let sum = fold(sum16(&seg) + pseudo(self.src, self.dst, TCP, seg.len()));
                seg[16..18].copy_from_slice(&sum.to_be_bytes());
            }
            L4::Udp {
                sport,
                dport,
                no_checksum,
            } => {
                seg.extend(sport.to_be_bytes());
                seg.extend(dport.to_be_bytes());
                seg.extend(((8 + self.payload.len()) as u16).to_be_bytes());
                seg.extend([0, 0]);
                seg.extend(&self.payload);
                if !no_checksum {
                    let mut sum = fold(sum16(&seg) + pseudo(self.src, self.dst, UDP, seg.len()));
                    if sum == 0 {
                        sum = 0xffff;
                    }
                    seg[6..8].copy_from_slice(&sum.to_be_bytes());
                }
            }
            L4::Sctp { sport, dport, crc } => {
                seg.extend(sport.to_be_bytes());
                seg.extend(dport.to_be_bytes());
                seg.extend(0x0102_0304u32.to_be_bytes()); // verification tag
                seg.extend(crc.to_be_bytes());
                seg.extend(&self.payload);
            }
            L4::Icmp { kind, code } => {
                seg.extend([kind, code, 0, 0, 0, 0, 0, 0]);
                seg.extend(&self.payload);
                let sum = fold(sum16(&seg));
                seg[2..4].copy_from_slice(&sum.to_be_bytes());
            }
        }
        seg
    }

    /// The IPv4 header for `payload_len` bytes after it, fragment field `frag`.
    fn ip_header(&self, payload_len: usize, frag: u16) -> Vec<u8> {
        let ihl = 20 + self.options.len();
        assert_eq!(ihl % 4, 0, "options pad to 32 bits");
        let mut h = vec![0x40 | (ihl / 4) as u8, 0];
        h.extend(((ihl + payload_len) as u16).to_be_bytes());
        h.extend(self.id.to_be_bytes());
        h.extend(frag.to_be_bytes());
        h.extend([self.ttl, self.proto(), 0, 0]);
        h.extend(self.src.octets());
        h.extend(self.dst.octets());
        h.extend(&self.options);
        let sum = fold(sum16(&h));
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        h
    }

    fn eth(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend(self.dst_mac);
        f.extend(self.src_mac);
        f.extend([0x08, 0x00]);
        f
    }

    /// The whole frame.
    fn build(&self) -> Vec<u8> {
        let seg = self.l4_bytes();
        let mut f = self.eth();
        f.extend(self.ip_header(seg.len(), 0));
        f.extend(seg);
        f
    }

    /// The datagram cut in two fragments, the first carrying `first` bytes of IP payload.
    fn fragments(&self, first: usize) -> (Vec<u8>, Vec<u8>) {
        assert_eq!(first % 8, 0);
        let seg = self.l4_bytes();
        let mut a = self.eth();
        a.extend(self.ip_header(first, 0x2000));
        a.extend(&seg[..first]);
        let mut b = self.eth();
        b.extend(self.ip_header(seg.len() - first, (first / 8) as u16));
        b.extend(&seg[first..]);
        (a, b)
    }

    /// The same packet with another destination: what DNAT must produce.
    fn to(&self, addr: &str, port: u16) -> Packet {
        let mut p = self.clone();
        p.dst = ip(addr);
        p.set_ports(None, Some(port));
        p
    }

    /// The same packet with another source: what reverse NAT must produce.
    fn from(&self, addr: &str, port: u16) -> Packet {
        let mut p = self.clone();
        p.src = ip(addr);
        p.set_ports(Some(port), None);
        p
    }

    fn set_ports(&mut self, src: Option<u16>, dst: Option<u16>) {
        match &mut self.l4 {
            L4::Tcp { sport, dport, .. }
            | L4::Udp { sport, dport, .. }
            | L4::Sctp { sport, dport, .. } => {
                *sport = src.unwrap_or(*sport);
                *dport = dst.unwrap_or(*dport);
            }
            L4::Icmp { .. } => {}
        }
    }

    fn sport(&self) -> u16 {
        match self.l4 {
            L4::Tcp { sport, .. } | L4::Udp { sport, .. } | L4::Sctp { sport, .. } => sport,
            L4::Icmp { .. } => 0,
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Packet)) -> Packet {
        f(&mut self);
        self
    }
}

/// The TCP RST a client must get for `syn` (to a service without endpoints).
fn rst_for(p: &Packet) -> Vec<u8> {
    let L4::Tcp {
        sport,
        dport,
        seq,
        ack,
        flags,
        ..
    } = p.l4
    else {
        unreachable!()
    };
    let seg_len = p.payload.len() as u32 + u32::from(flags & SYN != 0) + u32::from(flags & 1);
    let (seq, ack, flags) = if flags & ACK != 0 {
        (ack, 0, RST)
    } else {
        (0, seq.wrapping_add(seg_len), RST | ACK)
    };
    Packet {
        src_mac: p.dst_mac,
        dst_mac: p.src_mac,
        src: p.dst,
        dst: p.src,
        ttl: 64,
        id: 0,
        options: vec![],
        l4: L4::Tcp {
            sport: dport,
            dport: sport,
            seq,
            ack,
            flags,
            window: 0,
        },
        payload: vec![],
    }
    .build()
}

/// The ICMP port unreachable a client must get for `frame` (RFC 792: its IP header and the
/// first 8 bytes after it).
fn port_unreachable_for(p: &Packet, frame: &[u8]) -> Vec<u8> {
    Packet {
        src_mac: p.dst_mac,
        dst_mac: p.src_mac,
        src: p.dst,
        dst: p.src,
        ttl: 64,
        id: 0,
        options: vec![],
        l4: L4::Icmp { kind: 3, code: 3 },
        payload: frame[14..14 + 28].to_vec(),
    }
    .build()
}

/// Checks every checksum of an IPv4 frame (IP header; TCP, UDP, ICMP of whole datagrams).
fn verify_checksums(f: &[u8]) -> Result<(), String> {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return Ok(());
    }
    let ihl = usize::from(f[14] & 0xf) * 4;
    let tot = usize::from(u16::from_be_bytes([f[16], f[17]]));
    if fold(sum16(&f[14..14 + ihl])) != 0 {
        return Err("bad IP header checksum".into());
    }
    let frag = u16::from_be_bytes([f[20], f[21]]);
    if frag & 0x3fff != 0 {
        return Ok(()); // a fragment: the L4 checksum spans the datagram
    }
    let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
    let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
    let seg = &f[14 + ihl..14 + tot];
    let ok = match f[23] {
        TCP => fold(sum16(seg) + pseudo(src, dst, TCP, seg.len())) == 0,
        UDP => seg[6..8] == [0, 0] || fold(sum16(seg) + pseudo(src, dst, UDP, seg.len())) == 0,
        ICMP => fold(sum16(seg)) == 0,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("bad L4 checksum (protocol {})", f[23]))
    }
}

/// A frame as named fields, for readable diffs.
fn fields(f: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut put = |name: &str, value: String| out.push((name.to_owned(), value));
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if f.len() < 14 {
        put("frame", hex(f));
        return out;
    }
    put("eth.dst", hex(&f[0..6]));
    put("eth.src", hex(&f[6..12]));
    put("eth.type", hex(&f[12..14]));
    if f[12..14] != [0x08, 0x00] || f.len() < 34 {
        put("rest", hex(&f[14..]));
        return out;
    }
    let ihl = (usize::from(f[14] & 0xf) * 4).clamp(20, f.len() - 14);
    put("ip.version_ihl", hex(&f[14..15]));
    put("ip.tos", hex(&f[15..16]));
    put("ip.tot_len", u16::from_be_bytes([f[16], f[17]]).to_string());
    put("ip.id", hex(&f[18..20]));
    put("ip.frag", hex(&f[20..22]));
    put("ip.ttl", f[22].to_string());
    put("ip.proto", f[23].to_string());
    put("ip.check", hex(&f[24..26]));
    put(
        "ip.src",
        Ipv4Addr::new(f[26], f[27], f[28], f[29]).to_string(),
    );
    put(
        "ip.dst",
        Ipv4Addr::new(f[30], f[31], f[32], f[33]).to_string(),
    );
    put("ip.options", hex(&f[34..14 + ihl]));
    let l4 = &f[14 + ihl..];
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]).to_string();
    match f[23] {
        TCP if l4.len() >= 20 => {
            put("tcp.sport", port(&l4[0..]));
            put("tcp.dport", port(&l4[2..]));
            put("tcp.seq", hex(&l4[4..8]));
            put("tcp.ack", hex(&l4[8..12]));
            put("tcp.off_flags", hex(&l4[12..14]));
            put("tcp.window", hex(&l4[14..16]));
            put("tcp.check", hex(&l4[16..18]));
            put("tcp.rest", hex(&l4[18..]));
        }
        UDP if l4.len() >= 8 => {
            put("udp.sport", port(&l4[0..]));
            put("udp.dport", port(&l4[2..]));
            put("udp.len", port(&l4[4..]));
            put("udp.check", hex(&l4[6..8]));
            put("udp.payload", hex(&l4[8..]));
        }
        ICMP if l4.len() >= 8 => {
            put("icmp.type_code", hex(&l4[0..2]));
            put("icmp.check", hex(&l4[2..4]));
            put("icmp.rest", hex(&l4[4..8]));
            put("icmp.quoted", hex(&l4[8..]));
        }
        _ => put("l4", hex(l4)),
    }
    out
}

fn diff(expected: &[u8], actual: &[u8]) -> String {
    let (e, a) = (fields(expected), fields(actual));
    let mut s = String::new();
    for i in 0..e.len().max(a.len()) {
        let ev = e.get(i).map(|(n, v)| format!("{n}={v}"));
        let av = a.get(i).map(|(n, v)| format!("{n}={v}"));
        if ev != av {
            let _ = writeln!(
                s,
                "    expected {:<40} got {}",
                ev.unwrap_or_default(),
                av.unwrap_or_default()
            );
        }
    }
    if s.is_empty() {
        s = format!("    expected {expected:02x?}\n    got      {actual:02x?}\n");
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Per-case environment: its own pin directory (removed on drop, even on panic) and maps.

struct Env {
    maps: LbMaps,
    object: Object,
    /// The tc object, for the reply hook when the case runs on XDP.
    tc: Option<Object>,
    pins: PinGuard,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Hook {
    Tc,
    Xdp,
}

fn pin_guard(tag: &str) -> PinGuard {
    let dir = PinDir::new(format!(
        "/sys/fs/bpf/skiff-test-golden-{}-{tag}",
        std::process::id()
    ));
    let _ = dir.remove();
    PinGuard(dir)
}

impl Env {
    fn new(hook: Hook, case: &str) -> Env {
        let pins = pin_guard(&format!("{hook:?}-{case}"));
        let sizes = Sizes::small();
        let (object, tc) = match hook {
            Hook::Tc => (packet_lb::load_tc(&pins.0, &sizes).expect("load tc"), None),
            Hook::Xdp => (
                packet_lb::load_xdp(&pins.0, &sizes).expect("load xdp"),
                Some(packet_lb::load_tc(&pins.0, &sizes).expect("load tc")),
            ),
        };
        let maps = LbMaps::open(&pins.0).expect("open maps");
        Env {
            maps,
            object,
            tc,
            pins,
        }
    }

    fn backend(&self, id: u32, addr: &str, port: u16, proto: u8) {
        let value = lb4_backend {
            address: be_addr(ip(addr)),
            port: be_port(port),
            proto,
            state: 0,
        };
        lb::put(&self.maps.backends, &id, &value).unwrap();
        zero_percpu(&self.maps.backend_traffic, id);
    }

    /// A backend on another node (`BACKEND_REMOTE`).
    fn remote_backend(&self, id: u32, addr: &str, port: u16, proto: u8) {
        self.backend(id, addr, port, proto);
        let mut value: lb4_backend = lb::get(&self.maps.backends, &id).unwrap().unwrap();
        value.state = lb::backend_state::REMOTE;
        lb::put(&self.maps.backends, &id, &value).unwrap();
    }

    fn snat_address(&self, addr: &str) {
        lb::set_snat_address(&self.maps, Some(ip(addr))).unwrap();
    }

    /// A SNAT entry holding (backend, node address, port, proto) for another client.
    fn snat_taken(
        &self,
        backend: (&str, u16),
        address: &str,
        port: u16,
        proto: u8,
        idle_s: u64,
        closed: bool,
    ) {
        let key = snat_key(backend, address, port, proto);
        let value = lb4_snat_entry {
            last_seen_ns: monotonic_ns() - idle_s * 1_000_000_000,
            client: be_addr(ip("192.0.2.99")),
            frontend: be_addr(ip(NODE)),
            client_port: be_port(1234),
            frontend_port: be_port(30080),
            backend_id: 9,
            service_id: 9,
            closed: u8::from(closed),
            ..Default::default()
        };
        lb::put(&self.maps.snat, &key, &value).unwrap();
    }

    /// A service frontend with backends in slots 1..; counters start at zero.
    fn service(&self, fe: (&str, u16, u8), id: u32, flags: u8, backends: &[u32]) {
        let (addr, port, proto) = fe;
        let head = lb4_service {
            service_id: id,
            count: backends.len() as u16,
            flags,
            affinity_timeout: 10,
            ..Default::default()
        };
        lb::put(
            &self.maps.services,
            &frontend_key(ip(addr), port, proto, 0),
            &head,
        )
        .unwrap();
        for (i, backend) in backends.iter().enumerate() {
            let slot = lb4_service {
                backend_id: *backend,
                service_id: id,
                ..Default::default()
            };
            let key = frontend_key(ip(addr), port, proto, i as u16 + 1);
            lb::put(&self.maps.services, &key, &slot).unwrap();
        }
        zero_percpu(&self.maps.service_traffic, id);
    }

    fn node_address(&self, addr: &str) {
        lb::put(&self.maps.node_addresses, &be_addr(ip(addr)), &1u8).unwrap();
    }

    fn source_range(&self, service_id: u32, cidr: &str, len: u32) {
        let key = lb4_source_range_key {
            prefixlen: 32 + len,
            service_id,
            address: be_addr(ip(cidr)),
        };
        lb::put(&self.maps.source_ranges, &key, &1u8).unwrap();
    }

    fn affinity(&self, client: &str, service_id: u32, backend_id: u32, last_used_ns: u64) {
        let key = lb4_affinity_key {
            client: u64::from(be_addr(ip(client))),
            service_id,
            ..Default::default()
        };
        let value = lb4_affinity {
            last_used_ns,
            backend_id,
            ..Default::default()
        };
        lb::put(&self.maps.affinity, &key, &value).unwrap();
    }

    fn stat(&self, index: u32) -> u64 {
        lb::percpu_sum(&self.maps.stats, &index).unwrap()
    }

    /// (packets, bytes) of a per-CPU traffic counter.
    fn traffic(map: &libbpf_rs::MapHandle, id: u32) -> (u64, u64) {
        let values = map
            .lookup_percpu(&id.to_ne_bytes(), MapFlags::ANY)
            .unwrap()
            .unwrap_or_default();
        values.iter().fold((0, 0), |(p, b), v| {
            (
                p + u64::from_ne_bytes(v[0..8].try_into().unwrap()),
                b + u64::from_ne_bytes(v[8..16].try_into().unwrap()),
            )
        })
    }
}

fn snat_key(backend: (&str, u16), address: &str, port: u16, proto: u8) -> lb4_snat_key {
    lb4_snat_key {
        backend: be_addr(ip(backend.0)),
        address: be_addr(ip(address)),
        backend_port: be_port(backend.1),
        port: be_port(port),
        proto,
        pad: [0; 3],
    }
}

/// The SNAT ports the flow of `p` (as it arrives) tries.
fn snat_ports_of(p: &Packet) -> [u16; lb::snat::PROBES] {
    let (sport, dport) = match p.l4 {
        L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport, .. } => (sport, dport),
        _ => unreachable!(),
    };
    packet_lb::snat_ports(
        SocketAddrV4::new(p.src, sport),
        SocketAddrV4::new(p.dst, dport),
        p.proto(),
    )
}

/// `p` as lb4_tc_route sends it on: TTL - 1, from the uplink's MAC to `next_hop`.
fn routed(mut p: Packet, next_hop: [u8; 6]) -> Packet {
    p.ttl -= 1;
    p.src_mac = NODE_MAC;
    p.dst_mac = next_hop;
    p
}

fn zero_percpu(map: &libbpf_rs::MapHandle, id: u32) {
    let cpus = libbpf_rs::num_possible_cpus().unwrap();
    let values = vec![vec![0u8; 16]; cpus];
    map.update_percpu(&id.to_ne_bytes(), &values, MapFlags::ANY)
        .unwrap();
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

// ---------------------------------------------------------------------------------------------
// The table.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    /// On to the stack (tc: next program), translated or not.
    Pass,
    Drop,
    /// The answer goes back out of the interface (tc: redirect, XDP: TX).
    Bounce,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dir {
    /// Towards the service: tc ingress, or XDP.
    Forward,
    /// A backend's reply: tc (reply hook on the tc run, egress hook on the XDP run).
    Reply,
    /// tc ingress of the uplink on both runs (a remote backend's reply to a SNAT port; on the
    /// XDP run, what the stack hands to tc after XDP_PASS).
    Uplink,
}

enum Expect {
    Unchanged,
    Frame(Vec<u8>),
    /// The output of an earlier step.
    SameAs(usize),
    /// Not compared (dropped packets).
    Ignored,
}

type EnvFn = Box<dyn Fn(&Env)>;
type CheckFn = Box<dyn Fn(&Env) -> Result<(), String>>;

struct Step {
    before: Option<EnvFn>,
    dir: Dir,
    input: Vec<u8>,
    verdict: Verdict,
    output: Expect,
}

struct Case {
    name: &'static str,
    /// Runs on tc (the kernel refuses tc test runs of IPv4 frames shorter than an IP header).
    tc: bool,
    /// Runs on XDP (cases of what only tc does, SNAT, do not).
    xdp: bool,
    setup: EnvFn,
    steps: Vec<Step>,
    /// Every `lb_stats` counter not listed must be 0.
    stats: Vec<(u32, u64)>,
    check: Option<CheckFn>,
}

const TRANSLATED: u32 = 2;
const REVERSED: u32 = 3;
const NO_BACKEND: u32 = 4;
const SOURCE_DENIED: u32 = 5;
const MALFORMED: u32 = 6;
const SNAT_EXHAUSTED: u32 = 9;
const SNAT_NO_ADDRESS: u32 = 10;

fn step(input: Vec<u8>, verdict: Verdict, output: Expect) -> Step {
    Step {
        before: None,
        dir: Dir::Forward,
        input,
        verdict,
        output,
    }
}

fn reply(input: Vec<u8>, output: Expect) -> Step {
    Step {
        dir: Dir::Reply,
        ..step(input, Verdict::Pass, output)
    }
}

fn uplink(input: Vec<u8>, verdict: Verdict, output: Expect) -> Step {
    Step {
        dir: Dir::Uplink,
        ..step(input, verdict, output)
    }
}

fn case(name: &'static str, setup: impl Fn(&Env) + 'static, steps: Vec<Step>) -> Case {
    Case {
        name,
        tc: true,
        xdp: true,
        setup: Box::new(setup),
        steps,
        stats: vec![],
        check: None,
    }
}

impl Case {
    fn stats(mut self, stats: &[(u32, u64)]) -> Case {
        self.stats = stats.to_vec();
        self
    }

    fn check(mut self, f: impl Fn(&Env) -> Result<(), String> + 'static) -> Case {
        self.check = Some(Box::new(f));
        self
    }

    fn xdp_only(mut self) -> Case {
        self.tc = false;
        self
    }

    fn tc_only(mut self) -> Case {
        self.xdp = false;
        self
    }
}

/// ClusterIP 10.96.0.10:80/TCP (service 1) -> backend 1 = B1:8080.
fn clusterip_tcp(env: &Env) {
    env.backend(1, B1, 8080, TCP);
    env.service((CLUSTER_IP, 80, TCP), 1, 0, &[1]);
}

fn clusterip_udp(env: &Env) {
    env.backend(1, B1, 5353, UDP);
    env.service((CLUSTER_IP, 53, UDP), 1, 0, &[1]);
}

fn table() -> Vec<Case> {
    use Expect::*;
    use Verdict::*;
    let syn = tcp(CLIENT, 40000, CLUSTER_IP, 80);
    let dns = udp(CLIENT, 40001, CLUSTER_IP, 53);
    let data_len = syn.build().len() as u64;
    let mut big = udp(CLIENT, 40002, CLUSTER_IP, 53);
    big.payload = (0..64u8).collect();
    let (frag1, frag2) = big.fragments(16);
    let (nat1, nat2) = big.to(B1, 5353).fragments(16);
    let reply_pkt = tcp(B1, 8080, CLIENT, 40000).with(|p| {
        p.src_mac = NODE_MAC;
        p.dst_mac = CLIENT_MAC;
        p.l4 = L4::Tcp {
            sport: 8080,
            dport: 40000,
            seq: 5000,
            ack: 1001,
            flags: SYN | ACK,
            window: 65000,
        };
    });
    let truncated = |len: usize| syn.build()[..len].to_vec();
    let mut ihl4 = syn.build();
    ihl4[14] = 0x44;
    let mut too_long = syn.build();
    too_long[16..18].copy_from_slice(&200u16.to_be_bytes());
    // A TCP header cut to 10 bytes, the IP header consistent with that.
    let short_tcp = {
        let p = syn.build();
        let mut f = p[..14 + 20 + 10].to_vec();
        f[16..18].copy_from_slice(&30u16.to_be_bytes());
        f[24..26].copy_from_slice(&[0, 0]);
        let sum = fold(sum16(&f[14..34]));
        f[24..26].copy_from_slice(&sum.to_be_bytes());
        f
    };
    let options = syn.clone().with(|p| p.options = vec![0x94, 0x04, 0, 0]); // router alert
    let arp = {
        let mut f = vec![0xff; 6];
        f.extend(CLIENT_MAC);
        f.extend([0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend(CLIENT_MAC);
        f.extend(ip(CLIENT).octets());
        f.extend([0; 6]);
        f.extend(ip(CLUSTER_IP).octets());
        f
    };
    let ipv6 = {
        let mut f = NODE_MAC.to_vec();
        f.extend(CLIENT_MAC);
        f.extend([0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, 17, 64]);
        f.extend(
            [0x20, 0x01, 0x0d, 0xb8]
                .iter()
                .chain([0u8; 11].iter())
                .chain([1].iter()),
        );
        f.extend(
            [0x20, 0x01, 0x0d, 0xb8]
                .iter()
                .chain([0u8; 11].iter())
                .chain([2].iter()),
        );
        f.extend([0x9c, 0x40, 0, 80, 0, 8, 0, 0]);
        f
    };
    let ack_data = syn.clone().with(|p| {
        p.l4 = L4::Tcp {
            sport: 40000,
            dport: 80,
            seq: 7000,
            ack: 9000,
            flags: ACK | PSH,
            window: 501,
        };
        p.payload = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    });
    let sctp = |dport: u16| Packet {
        l4: L4::Sctp {
            sport: 40003,
            dport,
            crc: 0xdead_beef,
        },
        payload: vec![0; 16],
        ..tcp(CLIENT, 40003, CLUSTER_IP, dport)
    };
    let icmp_echo = Packet {
        l4: L4::Icmp { kind: 8, code: 0 },
        payload: vec![1, 2, 3, 4],
        ..tcp(CLIENT, 0, CLUSTER_IP, 0)
    };
    let maglev_flow = tcp(CLIENT, 41000, CLUSTER_IP, 80);

    vec![
        case(
            "clusterip_tcp_dnat",
            clusterip_tcp,
            vec![step(syn.build(), Pass, Frame(syn.to(B1, 8080).build()))],
        )
        .stats(&[(TRANSLATED, 1)])
        .check(move |env| {
            let want = (1, data_len);
            let got = Env::traffic(&env.maps.service_traffic, 1);
            let got_b = Env::traffic(&env.maps.backend_traffic, 1);
            if got == want && got_b == want {
                Ok(())
            } else {
                Err(format!(
                    "traffic service {got:?} backend {got_b:?}, want {want:?}"
                ))
            }
        }),
        case(
            "clusterip_udp_dnat",
            clusterip_udp,
            vec![step(dns.build(), Pass, Frame(dns.to(B1, 5353).build()))],
        )
        .stats(&[(TRANSLATED, 1)]),
        case(
            "udp_without_checksum_keeps_none",
            clusterip_udp,
            vec![{
                let p = dns.clone().with(|p| {
                    p.l4 = L4::Udp {
                        sport: 40001,
                        dport: 53,
                        no_checksum: true,
                    }
                });
                step(p.build(), Pass, Frame(p.to(B1, 5353).build()))
            }],
        )
        .stats(&[(TRANSLATED, 1)]),
        case(
            "nodeport_on_node_address",
            |env| {
                env.node_address(NODE);
                env.backend(1, B1, 8080, TCP);
                env.service(("0.0.0.0", 30080, TCP), 1, flags::NODEPORT, &[1]);
            },
            {
                let p = tcp(CLIENT, 40000, NODE, 30080);
                vec![step(p.build(), Pass, Frame(p.to(B1, 8080).build()))]
            },
        )
        .stats(&[(TRANSLATED, 1)]),
        case(
            "nodeport_not_on_other_addresses",
            |env| {
                env.node_address(NODE);
                env.backend(1, B1, 8080, TCP);
                env.service(("0.0.0.0", 30080, TCP), 1, flags::NODEPORT, &[1]);
            },
            vec![step(
                tcp(CLIENT, 40000, OTHER_HOST, 30080).build(),
                Pass,
                Unchanged,
            )],
        ),
        case(
            "external_ip",
            |env| {
                env.backend(1, B1, 8443, TCP);
                env.service((EXTERNAL_IP, 443, TCP), 1, flags::EXTERNAL, &[1]);
            },
            {
                let p = tcp(CLIENT, 40000, EXTERNAL_IP, 443);
                vec![step(p.build(), Pass, Frame(p.to(B1, 8443).build()))]
            },
        )
        .stats(&[(TRANSLATED, 1)]),
        case(
            "reverse_nat_of_the_reply",
            clusterip_tcp,
            vec![
                step(syn.build(), Pass, Frame(syn.to(B1, 8080).build())),
                reply(
                    reply_pkt.build(),
                    Frame(reply_pkt.from(CLUSTER_IP, 80).build()),
                ),
            ],
        )
        .stats(&[(TRANSLATED, 1), (REVERSED, 1)]),
        case(
            "reply_without_flow_untouched",
            clusterip_tcp,
            vec![reply(reply_pkt.build(), Unchanged)],
        ),
        case(
            "existing_flow_keeps_its_backend",
            clusterip_tcp,
            vec![
                step(syn.build(), Pass, Frame(syn.to(B1, 8080).build())),
                // A retransmitted SYN: the same translation.
                step(syn.build(), Pass, SameAs(0)),
                // The service now has backend 2 only; backend 1 still exists.
                Step {
                    before: Some(Box::new(|env: &Env| {
                        env.backend(2, B2, 8080, TCP);
                        env.service((CLUSTER_IP, 80, TCP), 1, 0, &[2]);
                    })),
                    ..step(ack_data.build(), Pass, Frame(ack_data.to(B1, 8080).build()))
                },
                // A new flow gets the new backend.
                {
                    let p = tcp(CLIENT, 40100, CLUSTER_IP, 80);
                    step(p.build(), Pass, Frame(p.to(B2, 8080).build()))
                },
            ],
        )
        .stats(&[(TRANSLATED, 4)]),
        case(
            "affinity_hit",
            |env| {
                env.backend(1, B1, 8080, TCP);
                env.backend(2, B2, 8080, TCP);
                env.service((CLUSTER_IP, 80, TCP), 1, flags::AFFINITY, &[1, 2]);
                env.affinity(CLIENT, 1, 2, monotonic_ns());
            },
            (0..8)
                .map(|i| {
                    let p = tcp(CLIENT, 42000 + i, CLUSTER_IP, 80);
                    step(p.build(), Pass, Frame(p.to(B2, 8080).build()))
                })
                .collect(),
        )
        .stats(&[(TRANSLATED, 8)]),
        case(
            "affinity_expired_picks_again",
            |env| {
                env.backend(1, B1, 8080, TCP);
                env.backend(2, B2, 8080, TCP);
                // Backend 2 is affine but its 10 s ran out; the service has backend 1.
                env.service((CLUSTER_IP, 80, TCP), 1, flags::AFFINITY, &[1]);
                env.affinity(CLIENT, 1, 2, monotonic_ns() - 11_000_000_000);
            },
            vec![step(syn.build(), Pass, Frame(syn.to(B1, 8080).build()))],
        )
        .stats(&[(TRANSLATED, 1)])
        .check(|env| {
            let key = lb4_affinity_key {
                client: u64::from(be_addr(ip(CLIENT))),
                service_id: 1,
                ..Default::default()
            };
            let entry: Option<lb4_affinity> = lb::get(&env.maps.affinity, &key).unwrap();
            match entry {
                Some(e) if e.backend_id == 1 && monotonic_ns() - e.last_used_ns < 5_000_000_000 => {
                    Ok(())
                }
                other => Err(format!("affinity now {other:?}, want backend 1, fresh")),
            }
        }),
        case(
            "maglev_pick_is_the_table_entry",
            move |env| {
                env.backend(1, B1, 8080, TCP);
                env.backend(3, B3, 8080, TCP);
                // Random choice would give backend 1; the table says 3 at this flow's index.
                env.service((CLUSTER_IP, 80, TCP), 1, flags::MAGLEV, &[1]);
                let mut table = lb4_maglev {
                    backends: [1; lb::MAGLEV_SIZE],
                };
                let index = packet_lb::maglev_index(
                    SocketAddrV4::new(ip(CLIENT), 41000),
                    SocketAddrV4::new(ip(CLUSTER_IP), 80),
                    TCP,
                );
                table.backends[index] = 3;
                lb::put(&env.maps.maglev, &1u32, &table).unwrap();
            },
            vec![step(
                maglev_flow.build(),
                Pass,
                Frame(maglev_flow.to(B3, 8080).build()),
            )],
        )
        .stats(&[(TRANSLATED, 1)]),
        case(
            "local_policy_without_local_backend_drops",
            |env| {
                env.node_address(NODE);
                env.service(
                    ("0.0.0.0", 30080, TCP),
                    1,
                    flags::NODEPORT | flags::LOCAL_ONLY,
                    &[],
                );
            },
            vec![step(tcp(CLIENT, 40000, NODE, 30080).build(), Drop, Ignored)],
        )
        .stats(&[(NO_BACKEND, 1)]),
        case(
            "no_endpoint_syn_gets_rst",
            |env| env.service((CLUSTER_IP, 80, TCP), 1, 0, &[]),
            vec![step(syn.build(), Bounce, Frame(rst_for(&syn)))],
        )
        .stats(&[(NO_BACKEND, 1)]),
        case(
            "no_endpoint_ack_gets_rst_at_its_ack",
            |env| env.service((CLUSTER_IP, 80, TCP), 1, 0, &[]),
            vec![step(ack_data.build(), Bounce, Frame(rst_for(&ack_data)))],
        )
        .stats(&[(NO_BACKEND, 1)]),
        case(
            "no_endpoint_rst_is_not_answered",
            |env| env.service((CLUSTER_IP, 80, TCP), 1, 0, &[]),
            vec![step(
                syn.clone()
                    .with(|p| {
                        p.l4 = L4::Tcp {
                            sport: 40000,
                            dport: 80,
                            seq: 1,
                            ack: 0,
                            flags: RST,
                            window: 0,
                        }
                    })
                    .build(),
                Drop,
                Ignored,
            )],
        )
        .stats(&[(NO_BACKEND, 1)]),
        case(
            "no_endpoint_udp_gets_port_unreachable",
            |env| env.service((CLUSTER_IP, 53, UDP), 1, 0, &[]),
            vec![step(
                dns.build(),
                Bounce,
                Frame(port_unreachable_for(&dns, &dns.build())),
            )],
        )
        .stats(&[(NO_BACKEND, 1)]),
        case(
            "source_range_allows",
            |env| {
                env.backend(1, B1, 8443, TCP);
                env.service(
                    (EXTERNAL_IP, 443, TCP),
                    1,
                    flags::EXTERNAL | flags::SOURCE_RANGES,
                    &[1],
                );
                env.source_range(1, "198.18.0.0", 15);
                env.source_range(1, "192.0.2.0", 24);
            },
            {
                let p = tcp(CLIENT, 40000, EXTERNAL_IP, 443);
                vec![step(p.build(), Pass, Frame(p.to(B1, 8443).build()))]
            },
        )
        .stats(&[(TRANSLATED, 1)]),
        case(
            "source_range_denies",
            |env| {
                env.backend(1, B1, 8443, TCP);
                env.service(
                    (EXTERNAL_IP, 443, TCP),
                    1,
                    flags::EXTERNAL | flags::SOURCE_RANGES,
                    &[1],
                );
                env.source_range(1, "198.18.0.0", 15);
                // The client's range, but for another service.
                env.source_range(2, "192.0.2.0", 24);
            },
            vec![step(
                tcp(CLIENT, 40000, EXTERNAL_IP, 443).build(),
                Drop,
                Ignored,
            )],
        )
        .stats(&[(SOURCE_DENIED, 1)]),
        case(
            "non_service_untouched",
            clusterip_tcp,
            vec![
                step(tcp(CLIENT, 40000, B2, 80).build(), Pass, Unchanged),
                step(tcp(CLIENT, 40000, CLUSTER_IP, 81).build(), Pass, Unchanged),
                step(udp(CLIENT, 40000, CLUSTER_IP, 80).build(), Pass, Unchanged),
                step(icmp_echo.build(), Pass, Unchanged),
            ],
        ),
        case(
            "truncated_ip_header",
            clusterip_tcp,
            vec![step(truncated(14 + 12), Pass, Unchanged)],
        )
        .stats(&[(MALFORMED, 1)])
        .xdp_only(),
        case(
            "ihl_below_5",
            clusterip_tcp,
            vec![step(ihl4, Pass, Unchanged)],
        )
        .stats(&[(MALFORMED, 1)]),
        case(
            "total_length_beyond_packet",
            clusterip_tcp,
            vec![step(too_long, Pass, Unchanged)],
        )
        .stats(&[(MALFORMED, 1)]),
        case(
            "truncated_tcp_header",
            clusterip_tcp,
            vec![step(short_tcp, Pass, Unchanged)],
        )
        .stats(&[(MALFORMED, 1)]),
        case(
            "ip_options_translated",
            clusterip_tcp,
            vec![step(
                options.build(),
                Pass,
                Frame(options.to(B1, 8080).build()),
            )],
        )
        .stats(&[(TRANSLATED, 1)]),
        case(
            "fragments_follow_the_first",
            clusterip_udp,
            vec![
                step(frag1, Pass, Frame(nat1)),
                step(frag2.clone(), Pass, Frame(nat2)),
            ],
        )
        .stats(&[(TRANSLATED, 2)]),
        case(
            "unknown_later_fragment_untouched",
            clusterip_udp,
            vec![step(frag2, Pass, Unchanged)],
        ),
        case(
            "sctp_same_port_translated",
            |env| {
                env.backend(1, B1, 9000, SCTP);
                env.service((CLUSTER_IP, 9000, SCTP), 1, 0, &[1]);
            },
            vec![step(
                sctp(9000).build(),
                Pass,
                Frame(sctp(9000).to(B1, 9000).build()),
            )],
        )
        .stats(&[(TRANSLATED, 1)]),
        case(
            "sctp_port_change_untouched",
            |env| {
                env.backend(1, B1, 9999, SCTP);
                env.service((CLUSTER_IP, 9000, SCTP), 1, 0, &[1]);
            },
            vec![step(sctp(9000).build(), Pass, Unchanged)],
        ),
        case(
            "arp_untouched",
            clusterip_tcp,
            vec![step(arp, Pass, Unchanged)],
        ),
        case(
            "ipv6_untouched",
            clusterip_tcp,
            vec![step(ipv6, Pass, Unchanged)],
        ),
    ]
    .into_iter()
    .chain(snat_cases())
    .collect()
}

/// NodePort 30080/TCP (service 1) on NODE -> backend 2 = B2:8080, on another node.
fn nodeport_remote(env: &Env) {
    env.node_address(NODE);
    env.remote_backend(2, B2, 8080, TCP);
    env.service(("0.0.0.0", 30080, TCP), 1, flags::NODEPORT, &[2]);
}

fn ct_entry(env: &Env, key: lb4_ct_key) -> Option<lb4_ct_entry> {
    lb::get(&env.maps.conntrack, &key).unwrap()
}

fn ct_key(src: (&str, u16), dst: (&str, u16), proto: u8, reply: u8) -> lb4_ct_key {
    lb4_ct_key {
        saddr: be_addr(ip(src.0)),
        daddr: be_addr(ip(dst.0)),
        sport: be_port(src.1),
        dport: be_port(dst.1),
        proto,
        reply,
        pad: [0; 2],
    }
}

/// SNAT of flows to remote backends (tc), and XDP handing them to tc.
fn snat_cases() -> Vec<Case> {
    use Expect::*;
    use Verdict::*;
    let syn = tcp(CLIENT, 40000, NODE, 30080);
    let port = snat_ports_of(&syn);
    let data = syn.clone().with(|p| {
        p.l4 = L4::Tcp {
            sport: 40000,
            dport: 30080,
            seq: 1001,
            ack: 5001,
            flags: ACK | PSH,
            window: 501,
        };
        p.payload = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    });
    // What leaves for the remote backend: from the node address and a SNAT port.
    let snat =
        |p: &Packet, port: u16| routed(p.to(B2, 8080).from(NODE, port), REMOTE_NODE_MAC).build();
    // The remote backend's answer, as it comes back in on the uplink, and as it goes on.
    let answer = tcp(B2, 8080, NODE, port[0]).with(|p| {
        p.src_mac = REMOTE_NODE_MAC;
        p.dst_mac = NODE_MAC;
        p.l4 = L4::Tcp {
            sport: 8080,
            dport: port[0],
            seq: 5000,
            ack: 1001,
            flags: SYN | ACK,
            window: 65000,
        };
    });
    let answered = routed(answer.from(NODE, 30080).to(CLIENT, 40000), CLIENT_MAC).build();
    let dns = udp(CLIENT, 40001, EXTERNAL_IP, 53);
    let dns_port = snat_ports_of(&dns)[0];
    let dns_answer = udp(B2, 5353, NODE, dns_port).with(|p| {
        p.src_mac = REMOTE_NODE_MAC;
        p.dst_mac = NODE_MAC;
        p.payload = b"answer".to_vec();
    });
    let local_flow = tcp(CLIENT, 40000, NODE, 30080);
    let remote_flow = tcp(CLIENT, 40500, NODE, 30080);
    let remote_port = snat_ports_of(&remote_flow)[0];
    let sctp = Packet {
        l4: L4::Sctp {
            sport: 40003,
            dport: 9000,
            crc: 0xdead_beef,
        },
        payload: vec![0; 16],
        ..tcp(CLIENT, 40003, NODE, 9000)
    };
    let port0 = port[0];

    vec![
        case(
            "snat_remote_backend_then_same_port_then_reply",
            nodeport_remote,
            vec![
                step(syn.build(), Bounce, Frame(snat(&syn, port[0]))),
                step(data.build(), Bounce, Frame(snat(&data, port[0]))),
                uplink(answer.build(), Bounce, Frame(answered.clone())),
            ],
        )
        .stats(&[(TRANSLATED, 2), (REVERSED, 1)])
        .check(move |env| {
            let forward = ct_entry(env, ct_key((CLIENT, 40000), (NODE, 30080), TCP, 0))
                .ok_or("no forward conntrack entry")?;
            if (forward.nat_address, forward.nat_port) != (be_addr(ip(NODE)), be_port(port0)) {
                return Err(format!("forward entry {forward:?}: want the SNAT source"));
            }
            if ct_entry(env, ct_key((B2, 8080), (CLIENT, 40000), TCP, 1)).is_some() {
                return Err("a reply conntrack entry for a SNATed flow".into());
            }
            let key = snat_key((B2, 8080), NODE, port0, TCP);
            let e: lb4_snat_entry = lb::get(&env.maps.snat, &key)
                .unwrap()
                .ok_or("no SNAT entry")?;
            let want = (
                be_addr(ip(CLIENT)),
                be_port(40000),
                be_addr(ip(NODE)),
                be_port(30080),
                2,
                1,
            );
            let got = (
                e.client,
                e.client_port,
                e.frontend,
                e.frontend_port,
                e.backend_id,
                e.service_id,
            );
            if got != want || monotonic_ns() - e.last_seen_ns > 5_000_000_000 || e.closed != 0 {
                return Err(format!("SNAT entry {e:?}"));
            }
            Ok(())
        })
        .tc_only(),
        case(
            "xdp_passes_remote_flows_to_tc",
            nodeport_remote,
            vec![
                step(syn.build(), Pass, Unchanged),
                uplink(syn.build(), Bounce, Frame(snat(&syn, port[0]))),
                step(data.build(), Pass, Unchanged),
                uplink(data.build(), Bounce, Frame(snat(&data, port[0]))),
                // The answer is no service: XDP leaves it to tc.
                step(answer.build(), Pass, Unchanged),
                uplink(answer.build(), Bounce, Frame(answered)),
            ],
        )
        .stats(&[(TRANSLATED, 2), (REVERSED, 1)])
        .xdp_only(),
        case(
            "snat_udp_external_ip_from_the_snat_address",
            |env| {
                env.remote_backend(2, B2, 5353, UDP);
                env.service((EXTERNAL_IP, 53, UDP), 1, flags::EXTERNAL, &[2]);
                env.snat_address(NODE);
            },
            vec![
                step(
                    dns.build(),
                    Bounce,
                    Frame(routed(dns.to(B2, 5353).from(NODE, dns_port), REMOTE_NODE_MAC).build()),
                ),
                uplink(
                    dns_answer.build(),
                    Bounce,
                    Frame(
                        routed(
                            dns_answer.from(EXTERNAL_IP, 53).to(CLIENT, 40001),
                            CLIENT_MAC,
                        )
                        .build(),
                    ),
                ),
            ],
        )
        .stats(&[(TRANSLATED, 1), (REVERSED, 1)])
        .tc_only(),
        case(
            "snat_only_for_the_remote_backend_of_a_service",
            |env| {
                env.node_address(NODE);
                env.backend(1, B1, 8080, TCP);
                env.remote_backend(2, B2, 8080, TCP);
                env.service(
                    ("0.0.0.0", 30080, TCP),
                    1,
                    flags::NODEPORT | flags::MAGLEV,
                    &[1, 2],
                );
                let index = |sport| {
                    packet_lb::maglev_index(
                        SocketAddrV4::new(ip(CLIENT), sport),
                        SocketAddrV4::new(ip(NODE), 30080),
                        TCP,
                    )
                };
                assert_ne!(index(40000), index(40500));
                let mut table = lb4_maglev {
                    backends: [1; lb::MAGLEV_SIZE],
                };
                table.backends[index(40500)] = 2;
                lb::put(&env.maps.maglev, &1u32, &table).unwrap();
            },
            vec![
                step(
                    local_flow.build(),
                    Pass,
                    Frame(local_flow.to(B1, 8080).build()),
                ),
                step(
                    remote_flow.build(),
                    Bounce,
                    Frame(snat(&remote_flow, remote_port)),
                ),
            ],
        )
        .stats(&[(TRANSLATED, 2)])
        .tc_only(),
        case(
            "local_policy_never_snats",
            |env| {
                env.node_address(NODE);
                env.remote_backend(2, B2, 8080, TCP);
                env.service(
                    ("0.0.0.0", 30080, TCP),
                    1,
                    flags::NODEPORT | flags::LOCAL_ONLY,
                    &[2],
                );
            },
            vec![step(syn.build(), Pass, Frame(syn.to(B2, 8080).build()))],
        )
        .stats(&[(TRANSLATED, 1)]),
        case(
            "node_address_without_snat_flow_untouched",
            nodeport_remote,
            vec![
                uplink(answer.build(), Pass, Unchanged),
                uplink(tcp(B2, 8080, NODE, 22).build(), Pass, Unchanged),
                uplink(udp(B2, 8080, NODE, port[0]).build(), Pass, Unchanged),
            ],
        ),
        case(
            "snat_ports_exhausted_drops",
            move |env| {
                nodeport_remote(env);
                for p in port {
                    env.snat_taken((B2, 8080), NODE, p, TCP, 0, false);
                }
            },
            vec![step(syn.build(), Drop, Ignored)],
        )
        .stats(&[(SNAT_EXHAUSTED, 1)])
        .check(
            |env| match ct_entry(env, ct_key((CLIENT, 40000), (NODE, 30080), TCP, 0)) {
                None => Ok(()),
                Some(e) => Err(format!("conntrack entry {e:?} for a dropped flow")),
            },
        )
        .tc_only(),
        case(
            "snat_takes_the_next_free_or_expired_port",
            move |env| {
                nodeport_remote(env);
                env.snat_taken((B2, 8080), NODE, port[0], TCP, 0, false);
                // Closed (FIN or RST seen) 11 s ago: past LB_SNAT_TCP_CLOSED_SEC.
                env.snat_taken((B2, 8080), NODE, port[1], TCP, 11, true);
            },
            vec![step(syn.build(), Bounce, Frame(snat(&syn, port[1])))],
        )
        .stats(&[(TRANSLATED, 1)])
        .tc_only(),
        case(
            "snat_without_address_dnat_only",
            |env| {
                env.remote_backend(2, B2, 8443, TCP);
                env.service((EXTERNAL_IP, 443, TCP), 1, flags::EXTERNAL, &[2]);
            },
            {
                let p = tcp(CLIENT, 40000, EXTERNAL_IP, 443);
                vec![step(p.build(), Pass, Frame(p.to(B2, 8443).build()))]
            },
        )
        .stats(&[(TRANSLATED, 1), (SNAT_NO_ADDRESS, 1)])
        .tc_only(),
        case(
            "sctp_to_remote_backend_untouched",
            |env| {
                env.node_address(NODE);
                env.remote_backend(2, B2, 9000, SCTP);
                env.service(("0.0.0.0", 9000, SCTP), 1, flags::NODEPORT, &[2]);
            },
            vec![step(sctp.build(), Pass, Unchanged)],
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// The runner.

fn verdict_value(hook: Hook, dir: Dir, v: Verdict) -> i32 {
    match (hook, dir, v) {
        (Hook::Xdp, Dir::Forward, Verdict::Pass) => verdict::XDP_PASS,
        (Hook::Xdp, Dir::Forward, Verdict::Drop) => verdict::XDP_DROP,
        (Hook::Xdp, Dir::Forward, Verdict::Bounce) => verdict::XDP_TX,
        (_, _, Verdict::Pass) => verdict::TC_NEXT,
        (_, _, Verdict::Drop) => verdict::TC_SHOT,
        (_, _, Verdict::Bounce) => verdict::TC_REDIRECT,
    }
}

fn run_case(hook: Hook, case: &Case) -> Result<(), String> {
    let env = Env::new(hook, case.name);
    (case.setup)(&env);
    let mut outputs: Vec<Vec<u8>> = Vec::new();
    for (i, step) in case.steps.iter().enumerate() {
        if let Some(before) = &step.before {
            before(&env);
        }
        let (object, program) = match (hook, step.dir) {
            (Hook::Tc, Dir::Forward) => (&env.object, programs::TC_INGRESS),
            (Hook::Tc, Dir::Reply) => (&env.object, programs::TC_REPLY),
            (Hook::Xdp, Dir::Forward) => (&env.object, programs::XDP),
            (Hook::Xdp, Dir::Reply) => (env.tc.as_ref().unwrap(), programs::TC_EGRESS),
            (Hook::Tc, Dir::Uplink) => (&env.object, programs::TC_INGRESS),
            (Hook::Xdp, Dir::Uplink) => (env.tc.as_ref().unwrap(), programs::TC_INGRESS),
        };
        let out = packet_lb::run(object, program, &step.input, 1)
            .map_err(|e| format!("step {i}: {e}"))?;
        let mut want = verdict_value(hook, step.dir, step.verdict);
        // A reply translated on a pod veth goes straight to the host stack, past the pod
        // network's source check (its source is the frontend now, not the pod).
        if hook == Hook::Tc
            && step.dir == Dir::Reply
            && step.verdict == Verdict::Pass
            && out.packet != step.input
        {
            want = verdict::TC_OK;
        }
        if out.verdict != want {
            return Err(format!(
                "step {i} ({program}): verdict {} want {want} ({:?})",
                out.verdict, step.verdict
            ));
        }
        let expected = match &step.output {
            Expect::Unchanged => Some(step.input.clone()),
            Expect::Frame(f) => Some(f.clone()),
            Expect::SameAs(j) => Some(outputs[*j].clone()),
            Expect::Ignored => None,
        };
        if let Some(expected) = expected {
            if out.packet != expected {
                return Err(format!(
                    "step {i} ({program}): output differs\n{}",
                    diff(&expected, &out.packet)
                ));
            }
            if !matches!(step.output, Expect::Unchanged) {
                verify_checksums(&out.packet).map_err(|e| format!("step {i}: {e}"))?;
            }
        }
        outputs.push(out.packet);
    }
    for index in 0..lb::STAT_NAMES.len() as u32 {
        let want = case
            .stats
            .iter()
            .find(|(i, _)| *i == index)
            .map_or(0, |(_, v)| *v);
        let got = env.stat(index);
        if got != want {
            return Err(format!(
                "counter {} is {got}, want {want}",
                lb::STAT_NAMES[index as usize]
            ));
        }
    }
    if let Some(check) = &case.check {
        check(&env)?;
    }
    Ok(())
}

fn run_table(hook: Hook) {
    let mut failures = Vec::new();
    let cases = table();
    for case in &cases {
        if (hook == Hook::Tc && !case.tc) || (hook == Hook::Xdp && !case.xdp) {
            continue;
        }
        match run_case(hook, case) {
            Ok(()) => eprintln!("ok   {hook:?} {}", case.name),
            Err(err) => {
                eprintln!("FAIL {hook:?} {}: {err}", case.name);
                failures.push(case.name);
            }
        }
    }
    assert!(failures.is_empty(), "{hook:?} failures: {failures:?}");
}

/// The namespace the tables run in: an uplink `up0` (MAC NODE_MAC) with the node address and
/// the client's subnet, the remote backends' pod subnet routed via REMOTE_NODE; neighbours
/// permanent, forwarding on. A test run's packet enters on loopback.
fn golden_topology() {
    sh("sysctl -q -w net.ipv4.conf.all.forwarding=1");
    sh("ip link add up0 address 02:00:00:00:00:01 type veth peer name up0p");
    sh("ip link set up0 up");
    sh("ip link set up0p up");
    sh(&format!("ip addr add {NODE}/24 dev up0"));
    sh("ip addr add 192.0.2.1/24 dev up0");
    sh(&format!(
        "ip neigh add {REMOTE_NODE} lladdr 02:00:00:00:00:02 dev up0 nud permanent"
    ));
    sh(&format!(
        "ip neigh add {CLIENT} lladdr 02:00:00:00:00:0c dev up0 nud permanent"
    ));
    sh(&format!(
        "ip route add 10.244.2.0/24 via {REMOTE_NODE} dev up0"
    ));
}

#[test]
fn tc_golden() {
    in_private_netns(|| {
        golden_topology();
        run_table(Hook::Tc);
    });
}

#[test]
fn xdp_golden() {
    in_private_netns(|| {
        golden_topology();
        run_table(Hook::Xdp);
    });
}

/// Frames shorter than an Ethernet header never reach either program, nor (on tc) IPv4
/// frames shorter than an IP header: the kernel refuses such test runs, as its receive path
/// never delivers them. The programs check anyway (lb4_parse); XDP covers the truncated IP
/// header in the table.
#[test]
fn runts_are_refused_by_the_kernel() {
    let pins = pin_guard("runts");
    let tc = packet_lb::load_tc(&pins.0, &Sizes::small()).unwrap();
    let xdp = packet_lb::load_xdp(&pins.0, &Sizes::small()).unwrap();
    let frame = tcp(CLIENT, 40000, CLUSTER_IP, 80).build();
    assert!(packet_lb::run(&xdp, programs::XDP, &frame[..10], 1).is_err());
    assert!(packet_lb::run(&tc, programs::TC_INGRESS, &frame[..10], 1).is_err());
    assert!(packet_lb::run(&tc, programs::TC_INGRESS, &frame[..26], 1).is_err());
}

/// The builder itself: its frames carry valid checksums.
#[test]
fn builder_checksums() {
    for p in [
        tcp(CLIENT, 1, CLUSTER_IP, 2),
        udp(CLIENT, 1, CLUSTER_IP, 2),
        tcp(CLIENT, 1, CLUSTER_IP, 2).with(|p| p.options = vec![1, 1, 1, 0]),
    ] {
        verify_checksums(&p.build()).unwrap();
    }
    let syn = tcp(CLIENT, 1, CLUSTER_IP, 2);
    verify_checksums(&rst_for(&syn)).unwrap();
    let dns = udp(CLIENT, 1, CLUSTER_IP, 2);
    verify_checksums(&port_unreachable_for(&dns, &dns.build())).unwrap();
    assert_eq!(dns.sport(), 1);
}

/// The micro-benchmark helper gives a time per packet.
#[test]
fn bench_helper_times_packets() {
    let pins = pin_guard("bench");
    let object = packet_lb::load_tc(&pins.0, &Sizes::small()).unwrap();
    let frame = tcp(CLIENT, 40000, B2, 80).build();
    let ns = packet_lb::ns_per_packet(&object, programs::TC_INGRESS, &frame, 1000).unwrap();
    assert!(ns > 0.0 && ns < 100_000.0, "{ns} ns per packet");
}

// ---------------------------------------------------------------------------------------------
// Attached for real, inside a network namespace of the test's own (its loopback and veth
// devices only; nothing leaves it). The namespace goes away with the test's thread.

/// Runs `f` on a thread of its own in a new, empty network namespace.
fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::spawn(move || {
        // SAFETY: a plain syscall; it moves only this thread.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        f()
    });
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Runs a command (`ip`, `sysctl`) in the calling thread's network namespace.
fn sh(cmd: &str) {
    let mut parts = cmd.split_whitespace();
    let status = std::process::Command::new(parts.next().unwrap())
        .args(parts)
        .status()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(status.success(), "{cmd}: {status}");
}

fn ifindex(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: a valid C string.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert_ne!(index, 0, "no interface {name}");
    index
}

/// tcx links on loopback: a TCP connection and a UDP exchange to a ClusterIP reach their
/// backend and the replies come back from the ClusterIP; services without endpoints refuse
/// (RST for TCP, ICMP port unreachable for UDP); attaching again replaces the programs in
/// the pinned links; detach removes them.
#[test]
fn tc_attached_on_loopback_translates_real_traffic() {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::time::Duration;

    in_private_netns(|| {
        let pins = pin_guard("attach-tc");
        sh("ip link set lo up");
        sh("ip addr add 10.96.0.10/32 dev lo");
        sh("ip addr add 10.96.0.11/32 dev lo");
        let lo = ifindex("lo");
        let sizes = Sizes::small();
        let attached = PacketLb::attach_tc(&pins.0, lo, &sizes).unwrap();
        for name in ["lb4_tc_ingress", "lb4_tc_egress"] {
            let path = pins.0.link(&format!("{name}-if{lo}"));
            let link = libbpf_rs::Link::open(&path).unwrap();
            match link.info().unwrap().info {
                libbpf_rs::query::LinkTypeInfo::Tcx(info) => assert_eq!(info.ifindex, lo),
                other => panic!("{name}: {other:?}"),
            }
        }
        // A second agent generation: same links, new programs.
        drop(attached);
        let _attached = PacketLb::attach_tc(&pins.0, lo, &sizes).unwrap();

        let env_maps = LbMaps::open(&pins.0).unwrap();
        let put_backend = |id: u32, port: u16, proto: u8| {
            let value = lb4_backend {
                address: be_addr(Ipv4Addr::LOCALHOST),
                port: be_port(port),
                proto,
                state: 0,
            };
            lb::put(&env_maps.backends, &id, &value).unwrap();
        };
        let put_service = |port: u16, proto: u8, backends: &[u32]| {
            let head = lb4_service {
                service_id: u32::from(port),
                count: backends.len() as u16,
                ..Default::default()
            };
            let addr = ip("10.96.0.10");
            lb::put(
                &env_maps.services,
                &frontend_key(addr, port, proto, 0),
                &head,
            )
            .unwrap();
            for (i, b) in backends.iter().enumerate() {
                let slot = lb4_service {
                    backend_id: *b,
                    service_id: u32::from(port),
                    ..Default::default()
                };
                let key = frontend_key(addr, port, proto, i as u16 + 1);
                lb::put(&env_maps.services, &key, &slot).unwrap();
            }
        };

        // TCP: 10.96.0.10:80 -> 127.0.0.1:8080.
        let listener = TcpListener::bind("0.0.0.0:8080").unwrap();
        put_backend(1, 8080, TCP);
        put_service(80, TCP, &[1]);
        let server = std::thread::spawn(move || {
            let (mut conn, peer) = listener.accept().unwrap();
            let mut buf = [0u8; 4];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(b"pong").unwrap();
            (buf, peer)
        });
        let mut client =
            TcpStream::connect_timeout(&"10.96.0.10:80".parse().unwrap(), Duration::from_secs(3))
                .unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        assert_eq!(
            client.peer_addr().unwrap(),
            "10.96.0.10:80".parse().unwrap()
        );
        client.write_all(b"ping").unwrap();
        let mut answer = [0u8; 4];
        client.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"pong");
        let (got, peer) = server.join().unwrap();
        assert_eq!(&got, b"ping");
        assert_eq!(peer.port(), client.local_addr().unwrap().port());

        // UDP: 10.96.0.10:53 -> 127.0.0.1:5353.
        // Bound to the backend address: an unbound server would answer from the address the
        // route picks (10.96.0.10 here, all being local), which no conntrack entry knows.
        let udp_server = UdpSocket::bind("127.0.0.1:5353").unwrap();
        udp_server
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        put_backend(2, 5353, UDP);
        put_service(53, UDP, &[2]);
        let udp_client = UdpSocket::bind("0.0.0.0:0").unwrap();
        udp_client
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        udp_client.connect("10.96.0.10:53").unwrap();
        udp_client.send(b"query").unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = udp_server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"query");
        udp_server.send_to(b"answer", from).unwrap();
        let n = udp_client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"answer");

        // No endpoints: refused at once, not timed out.
        put_service(81, TCP, &[]);
        let err =
            TcpStream::connect_timeout(&"10.96.0.10:81".parse().unwrap(), Duration::from_secs(3))
                .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
        put_service(54, UDP, &[]);
        let refused = UdpSocket::bind("0.0.0.0:0").unwrap();
        refused
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        refused.connect("10.96.0.10:54").unwrap();
        refused.send(b"query").unwrap();
        let err = refused.recv(&mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");

        let stat = |i: u32| lb::percpu_sum(&env_maps.stats, &i).unwrap();
        assert!(stat(TRANSLATED) >= 4, "translated {}", stat(TRANSLATED));
        assert!(stat(REVERSED) >= 3, "reversed {}", stat(REVERSED));
        assert_eq!(stat(NO_BACKEND), 2);

        PacketLb::detach(&pins.0, lo).unwrap();
        assert!(!pins.0.link(&format!("lb4_tc_ingress-if{lo}")).exists());
    });
}

/// XDP: attached through a pinned link; a translated packet whose backend the FIB puts
/// behind the interface it came in on leaves at once (XDP_TX) with the neighbour's MAC, the
/// interface's MAC and TTL - 1; a backend behind another interface, or without a resolved
/// neighbour, goes to the stack (XDP_PASS), translated.
#[test]
fn xdp_transmits_when_the_fib_says_same_interface() {
    in_private_netns(|| {
        sh("sysctl -q -w net.ipv4.conf.all.forwarding=1");
        sh("ip link add d0 address 02:00:00:00:00:d0 type veth peer name d0p");
        sh("ip link add d1 address 02:00:00:00:00:d1 type veth peer name d1p");
        for dev in ["d0", "d0p", "d1", "d1p"] {
            sh(&format!("ip link set {dev} up"));
        }
        sh("ip addr add 10.244.0.1/16 dev d0");
        sh("ip addr add 10.245.0.1/16 dev d1");
        sh("ip neigh add 10.244.1.11 lladdr 02:00:00:00:00:b1 dev d0 nud permanent");
        sh("ip neigh add 10.245.1.11 lladdr 02:00:00:00:00:b2 dev d1 nud permanent");
        let d0 = ifindex("d0");
        let env = Env::new(Hook::Xdp, "xdp-fib");
        let _link = PacketLb::attach_xdp(&env.pins.0, d0, &Sizes::small()).unwrap();
        assert!(env.pins.0.link(&format!("lb4_xdp-if{d0}")).exists());

        env.backend(1, B1, 8080, TCP); // 10.244.1.11: behind d0, neighbour known
        env.backend(2, "10.245.1.11", 8080, TCP); // behind d1
        env.backend(3, "10.244.9.9", 8080, TCP); // behind d0, no neighbour
        env.service((CLUSTER_IP, 80, TCP), 1, 0, &[1]);
        env.service((CLUSTER_IP, 81, TCP), 2, 0, &[2]);
        env.service((CLUSTER_IP, 82, TCP), 3, 0, &[3]);

        let run = |frame: &[u8]| {
            let prog = skiff_ebpf::object::program(&env.object, programs::XDP).unwrap();
            // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, ...
            let mut ctx = [0u32; 6];
            ctx[1] = frame.len() as u32;
            ctx[3] = d0;
            let mut ctx_bytes: Vec<u8> = ctx.iter().flat_map(|w| w.to_ne_bytes()).collect();
            let mut out = vec![0u8; frame.len() + 64];
            let input = libbpf_rs::ProgramInput {
                context_in: Some(&mut ctx_bytes),
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..Default::default()
            };
            let output = prog.test_run(input).unwrap();
            let len = output.data.as_ref().unwrap().len();
            let verdict = output.return_value as i32;
            out.truncate(len);
            (verdict, out)
        };

        let p = tcp(CLIENT, 40000, CLUSTER_IP, 80);
        let (verdict, out) = run(&p.build());
        let mut want = p.to(B1, 8080);
        want.ttl -= 1;
        want.dst_mac = [2, 0, 0, 0, 0, 0xb1];
        want.src_mac = [2, 0, 0, 0, 0, 0xd0];
        assert_eq!(out, want.build(), "\n{}", diff(&want.build(), &out));
        assert_eq!(verdict, verdict::XDP_TX);

        let p = tcp(CLIENT, 40000, CLUSTER_IP, 81);
        let (verdict, out) = run(&p.build());
        assert_eq!(verdict, verdict::XDP_PASS);
        assert_eq!(out, p.to("10.245.1.11", 8080).build());

        let p = tcp(CLIENT, 40000, CLUSTER_IP, 82);
        let (verdict, out) = run(&p.build());
        assert_eq!(verdict, verdict::XDP_PASS);
        assert_eq!(out, p.to("10.244.9.9", 8080).build());

        PacketLb::detach(&env.pins.0, d0).unwrap();
        assert!(!env.pins.0.link(&format!("lb4_xdp-if{d0}")).exists());
    });
}

/// Prints ns per packet of the main paths (`cargo test ... -- --ignored --nocapture`).
#[test]
#[ignore]
fn print_timings() {
    let env = Env::new(Hook::Xdp, "timings");
    clusterip_tcp(&env);
    env.node_address(NODE);
    let tc = env.tc.as_ref().unwrap();
    let miss = tcp(CLIENT, 40000, B2, 80).build();
    let to_node = tcp(CLIENT, 40000, NODE, 22).build();
    let service = tcp(CLIENT, 40000, CLUSTER_IP, 80).build();
    for (what, object, program, frame, repeat) in [
        (
            "tc ingress, not a service",
            tc,
            programs::TC_INGRESS,
            &miss,
            1_000_000,
        ),
        (
            "tc ingress, node address",
            tc,
            programs::TC_INGRESS,
            &to_node,
            1_000_000,
        ),
        (
            "tc egress, not a reply",
            tc,
            programs::TC_EGRESS,
            &miss,
            1_000_000,
        ),
        (
            "xdp, not a service",
            &env.object,
            programs::XDP,
            &miss,
            1_000_000,
        ),
    ] {
        let ns = packet_lb::ns_per_packet(object, program, frame, repeat).unwrap();
        eprintln!("{what:<28} {ns:>8.1} ns");
    }
    // A rewriting program sees its own output on repeats: time single runs of a fresh copy
    // instead (an existing flow: conntrack hit, DNAT, checksums).
    for (what, object, program) in [
        ("tc ingress, DNAT of a flow", tc, programs::TC_INGRESS),
        ("xdp, DNAT of a flow", &env.object, programs::XDP),
    ] {
        let runs = 20_000;
        let total: f64 = (0..runs)
            .map(|_| packet_lb::ns_per_packet(object, program, &service, 1).unwrap())
            .sum();
        eprintln!("{what:<28} {:>8.1} ns", total / f64::from(runs));
    }
}
