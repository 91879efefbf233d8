//! The socket-level load balancer with real `connect()`/`sendto()` calls (root): the test
//! process moves itself into a cgroup of its own with the programs attached, and its "pods"
//! are servers on loopback addresses. Programs and maps are pinned under a private bpffs
//! directory; everything is removed at the end, also when a check fails.
//!
//! One test function: a process is in one cgroup at a time, so the steps share it.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use skiff_ebpf::lb::{self, LbMaps, Sizes, SocketLb};
use skiff_ebpf::{PinDir, PinGuard};
use skiff_netlab::Cgroup;
use skiff_proxy::model::{Backend, Desired, Frontend, FrontendSpec, proto};
use skiff_proxy::sync::MapSync;

/// A TCP "pod" on a loopback address that answers each connection with its name.
fn tcp_backend(address: Ipv4Addr, name: &'static str) -> SocketAddr {
    tcp_backend_on(address, 0, name)
}

/// The same on `port` (0: any).
fn tcp_backend_on(address: Ipv4Addr, port: u16, name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind((address, port)).unwrap();
    let local = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.write_all(name.as_bytes());
        }
    });
    local
}

/// A UDP "pod" that answers each datagram with its name.
fn udp_backend(address: Ipv4Addr, name: &'static str) -> SocketAddr {
    let socket = UdpSocket::bind((address, 0)).unwrap();
    let local = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((_, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(name.as_bytes(), from);
        }
    });
    local
}

fn backend(addr: SocketAddr, proto: u8) -> Backend {
    let SocketAddr::V4(v4) = addr else {
        unreachable!()
    };
    Backend {
        address: *v4.ip(),
        port: v4.port(),
        proto,
        remote: false,
    }
}

fn spec(backends: Vec<Backend>, flags: u8, timeout: u32) -> FrontendSpec {
    let mut backends = backends;
    backends.sort();
    FrontendSpec {
        service: "test/web:http".into(),
        flags,
        affinity_timeout: timeout,
        backends,
        terminating: BTreeSet::new(),
        source_ranges: Vec::new(),
    }
}

/// Connects to `to` and returns who answered and what getpeername() said.
fn ask_tcp(to: SocketAddr) -> std::io::Result<(String, SocketAddr)> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
    let peer = stream.peer_addr()?;
    let mut name = String::new();
    stream.read_to_string(&mut name)?;
    Ok((name, peer))
}

#[test]
fn socket_lb_translates_connections_and_datagrams() {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "the socket-LB test needs root (run it through `cargo xtask test ebpf`)"
    );
    let id = std::process::id();
    let pins = PinGuard(PinDir::new(format!("/sys/fs/bpf/skiff-test-sock-{id}")));
    let cgroup = Cgroup::create("socket-lb").unwrap();
    let _joined = cgroup.join().unwrap();
    let sizes = Sizes::small();
    let _socket_lb = SocketLb::attach(&pins.0, cgroup.path(), &sizes).unwrap();
    let mut sync = MapSync::new(LbMaps::open(&pins.0).unwrap());

    let a = tcp_backend(Ipv4Addr::new(127, 0, 0, 2), "a");
    let b = tcp_backend(Ipv4Addr::new(127, 0, 0, 3), "b");
    let ua = udp_backend(Ipv4Addr::new(127, 0, 0, 2), "ua");
    let ub = udp_backend(Ipv4Addr::new(127, 0, 0, 3), "ub");
    let vip = Ipv4Addr::new(10, 96, 77, 7);
    let web = Frontend {
        address: vip,
        port: 80,
        proto: proto::TCP,
    };
    let dns = Frontend {
        address: vip,
        port: 53,
        proto: proto::UDP,
    };
    let node_port = Frontend {
        address: Ipv4Addr::UNSPECIFIED,
        port: 30080,
        proto: proto::TCP,
    };
    let empty = Frontend {
        address: Ipv4Addr::new(10, 96, 77, 8),
        port: 80,
        proto: proto::TCP,
    };
    let mut desired = Desired::default();
    let both = vec![backend(a, proto::TCP), backend(b, proto::TCP)];
    desired.frontends.insert(web, spec(both.clone(), 0, 0));
    desired.frontends.insert(
        dns,
        spec(vec![backend(ua, proto::UDP), backend(ub, proto::UDP)], 0, 0),
    );
    desired.frontends.insert(
        node_port,
        spec(both.clone(), lb::flags::NODEPORT | lb::flags::EXTERNAL, 0),
    );
    desired.frontends.insert(empty, spec(Vec::new(), 0, 0));
    let stats = sync.apply(&desired);
    assert!(stats.errors.is_empty(), "{stats:?}");
    assert_eq!(stats.frontends_written, 4);
    assert_eq!(stats.backends_added, 4);
    sync.set_node_addresses(&[Ipv4Addr::new(127, 0, 0, 1)].into())
        .unwrap();

    // TCP through the ClusterIP: both backends answer, and the socket shows the ClusterIP.
    let service = SocketAddr::from((vip, 80));
    let mut seen = BTreeSet::new();
    for _ in 0..64 {
        let (name, peer) = ask_tcp(service).unwrap();
        assert_eq!(peer, service, "getpeername() reports the service address");
        seen.insert(name);
    }
    assert_eq!(seen, BTreeSet::from(["a".to_owned(), "b".to_owned()]));

    // A NodePort on a node address.
    let (name, peer) = ask_tcp(SocketAddr::from(([127, 0, 0, 1], 30080))).unwrap();
    assert!(name == "a" || name == "b");
    assert_eq!(peer, SocketAddr::from(([127, 0, 0, 1], 30080)));

    // UDP, unconnected: sendto() the service, recvfrom() shows the service as the sender.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let dns_addr = SocketAddr::from((vip, 53));
    let mut names = BTreeSet::new();
    for _ in 0..32 {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        client.send_to(b"q", dns_addr).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, dns_addr, "recvfrom() reports the service address");
        names.insert(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(names.len(), 2, "both UDP backends answer: {names:?}");
    // Connected UDP: the peer is the service too.
    let connected = UdpSocket::bind("127.0.0.1:0").unwrap();
    connected.connect(dns_addr).unwrap();
    assert_eq!(connected.peer_addr().unwrap(), dns_addr);
    connected
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    connected.send(b"q").unwrap();
    let mut buf = [0u8; 16];
    let n = connected.recv(&mut buf).unwrap();
    let chosen = String::from_utf8_lossy(&buf[..n]).into_owned();
    // Its backend goes: the reaper closes the socket (no datagram keeps going to a dead
    // backend), and a new socket reaches the other one.
    sync.set_reaper(lb::SocketReaper::load(&pins.0, &sizes).unwrap());
    let (gone, kept) = if chosen == "ua" { (ua, ub) } else { (ub, ua) };
    desired
        .frontends
        .insert(dns, spec(vec![backend(kept, proto::UDP)], 0, 0));
    let stats = sync.apply(&desired);
    assert!(stats.errors.is_empty(), "{stats:?}");
    assert_eq!(stats.backends_removed, 1, "{stats:?}");
    assert!(
        connected.peer_addr().is_err(),
        "the socket connected to {gone} was disconnected"
    );
    let err = connected.recv(&mut buf).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECONNABORTED), "{err}");
    let fresh = UdpSocket::bind("127.0.0.1:0").unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    fresh.connect(dns_addr).unwrap();
    fresh.send(b"q").unwrap();
    let n = fresh.recv(&mut buf).unwrap();
    assert_ne!(String::from_utf8_lossy(&buf[..n]), chosen);

    // A service without endpoints refuses instead of hanging.
    let err = TcpStream::connect_timeout(
        &SocketAddr::from((empty.address, 80)),
        Duration::from_secs(2),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    let refused = lb::percpu_sum(&sync.maps().stats, &1u32).unwrap();
    assert!(refused >= 1, "counted as sock_no_backend");

    // An address that is not a service is untouched.
    let direct = ask_tcp(a).unwrap();
    assert_eq!(direct, ("a".to_owned(), a));

    // Session affinity: every connection of this client goes to one backend.
    desired
        .frontends
        .insert(web, spec(both.clone(), lb::flags::AFFINITY, 60));
    let stats = sync.apply(&desired);
    assert_eq!(stats.frontends_written, 1, "{stats:?}");
    let first = ask_tcp(service).unwrap().0;
    for _ in 0..32 {
        assert_eq!(ask_tcp(service).unwrap().0, first, "affinity holds");
    }
    // Removing that backend moves the client at once, and its affinity entry is gone.
    let survivor = if first == "a" { b } else { a };
    desired.frontends.insert(
        web,
        spec(vec![backend(survivor, proto::TCP)], lb::flags::AFFINITY, 60),
    );
    let stats = sync.apply(&desired);
    assert_eq!(stats.frontends_written, 1, "{stats:?}");
    assert!(stats.errors.is_empty(), "{stats:?}");
    for _ in 0..16 {
        assert_ne!(
            ask_tcp(service).unwrap().0,
            first,
            "no connection to the removed backend"
        );
    }

    // Restarting the agent: a new MapSync adopts the maps, and the same state writes nothing;
    // attaching again switches the pinned links in place.
    drop(sync);
    let _again = SocketLb::attach(&pins.0, cgroup.path(), &sizes).unwrap();
    let mut sync = MapSync::new(LbMaps::open(&pins.0).unwrap());
    let stats = sync.apply(&desired);
    assert_eq!(stats.frontends_written, 0, "{stats:?}");
    assert_eq!(stats.frontends_removed, 0, "{stats:?}");
    assert_ne!(ask_tcp(service).unwrap().0, first);

    // A service with more backends than its entry carries (LB_INLINE_BACKENDS): the first
    // ones inline, the rest in slot entries; every one of them gets connections; shrinking
    // and growing across the boundary leaves exactly the slot entries needed; a new MapSync
    // reads the inline ids back.
    let capacity = lb::types::lb4_service::default().inline_ids.len();
    let names: Vec<&'static str> = (0..capacity + 2)
        .map(|i| &*Box::leak(format!("m{i}").into_boxed_str()))
        .collect();
    // One port for all, as an EndpointSlice's port is shared by its endpoints.
    let first = tcp_backend(Ipv4Addr::new(127, 0, 1, 10), names[0]);
    let many: Vec<Backend> = std::iter::once(first)
        .chain((1..names.len()).map(|i| {
            tcp_backend_on(
                Ipv4Addr::new(127, 0, 1, 10 + i as u8),
                first.port(),
                names[i],
            )
        }))
        .map(|addr| backend(addr, proto::TCP))
        .collect();
    let wide = Frontend {
        address: Ipv4Addr::new(10, 96, 77, 9),
        port: 80,
        proto: proto::TCP,
    };
    let wide_at = SocketAddr::from((wide.address, 80));
    let slot_entries = |sync: &MapSync| {
        lb::entries::<lb::types::lb4_key, lb::types::lb4_service>(&sync.maps().services)
            .iter()
            .filter(|(k, _)| lb::addr_of(k.address) == wide.address && k.slot != 0)
            .map(|(k, _)| k.slot)
            .collect::<BTreeSet<u16>>()
    };
    desired.frontends.insert(wide, spec(many.clone(), 0, 0));
    let stats = sync.apply(&desired);
    assert!(stats.errors.is_empty(), "{stats:?}");
    assert_eq!(
        slot_entries(&sync),
        ((capacity as u16 + 1)..=(capacity as u16 + 2)).collect(),
        "slot entries only past the inline ids"
    );
    let mut seen = BTreeSet::new();
    for _ in 0..400 {
        seen.insert(ask_tcp(wide_at).unwrap().0);
    }
    assert_eq!(seen.len(), many.len(), "every backend answers: {seen:?}");
    desired
        .frontends
        .insert(wide, spec(many[..3].to_vec(), 0, 0));
    sync.apply(&desired);
    assert!(
        slot_entries(&sync).is_empty(),
        "no slot entry for 3 backends"
    );
    desired.frontends.insert(wide, spec(many.clone(), 0, 0));
    sync.apply(&desired);
    drop(sync);
    let mut sync = MapSync::new(LbMaps::open(&pins.0).unwrap());
    let stats = sync.apply(&desired);
    assert_eq!(stats.frontends_written, 0, "adopted as written: {stats:?}");
    desired.frontends.remove(&wide);
    let stats = sync.apply(&desired);
    assert_eq!(stats.frontends_removed, 1, "{stats:?}");
    assert!(slot_entries(&sync).is_empty());

    // Removing every service leaves empty maps.
    let stats = sync.apply(&Desired::default());
    assert_eq!(stats.frontends_removed, 4, "{stats:?}");
    assert_eq!(stats.backends_removed, 3, "{stats:?}");
    assert!(
        lb::entries::<lb::types::lb4_key, lb::types::lb4_service>(&sync.maps().services).is_empty()
    );
    assert!(
        lb::entries::<u32, lb::types::lb4_backend>(&sync.maps().backends)
            .iter()
            .all(|(_, b)| b.address == 0),
        "every backend id is free again"
    );
}
