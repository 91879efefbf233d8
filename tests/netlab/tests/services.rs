//! Services end to end in network namespaces (root, no containerd): "pods" are addresses in a
//! pods namespace answering with their name, a client pod reaches a ClusterIP through the
//! socket-level LB, and an "outside" host reaches a NodePort through the node's tc programs,
//! over TCP and UDP. Backends are added and removed under load without a failed connection to a
//! serving backend.
//!
//! ```text
//!  client ns ── node ns ── pods ns (10.244.0.10, .11, .12)
//!                  │ o0 192.0.2.1 (tc: NodePort DNAT in, reverse NAT out)
//!  outside ns ─────┘ eth0 192.0.2.2
//! ```
//!
//! The test process joins a cgroup with the socket-level LB attached, so its threads in the
//! client namespace are pods of this node; the outside host is a separate process in a cgroup
//! of its own, so only packets can carry its traffic to the service.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use skiff_ebpf::lb::{self, LbMaps, Sizes, SocketLb};
use skiff_ebpf::packet_lb::PacketLb;
use skiff_ebpf::{PinDir, PinGuard};
use skiff_netlab::cgroup::Cgroup;
use skiff_netlab::netns::{End, veth};
use skiff_netlab::topology::ServiceLab;
use skiff_netlab::{NetNs, unique_name};
use skiff_proxy::model::{Backend, Desired, Frontend, FrontendSpec, proto};
use skiff_proxy::sync::MapSync;

const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const NODE_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const NODE_PORT: u16 = 30080;
const TARGET_PORT: u16 = 8080;

/// A backend pod: TCP and UDP on `address:TARGET_PORT` in the pods namespace, answering with
/// `name`. Serving stops when `running` turns false.
fn start_pod(pods: &NetNs, address: Ipv4Addr, name: &'static str, running: Arc<AtomicBool>) {
    let (tcp, udp) = pods
        .within(move || {
            let tcp = TcpListener::bind((address, TARGET_PORT)).unwrap();
            let udp = UdpSocket::bind((address, TARGET_PORT)).unwrap();
            (tcp, udp)
        })
        .unwrap();
    tcp.set_nonblocking(true).unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let r = running.clone();
    std::thread::spawn(move || {
        while r.load(Ordering::Relaxed) {
            match tcp.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.write_all(name.as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while running.load(Ordering::Relaxed) {
            if let Ok((_, from)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(name.as_bytes(), from);
            }
        }
    });
}

fn backend(address: Ipv4Addr, proto: u8) -> Backend {
    Backend {
        address,
        port: TARGET_PORT,
        proto,
        remote: false,
    }
}

/// The ClusterIP and NodePort frontends of one service, TCP and UDP, over `pods`.
fn desired(pods: &[Ipv4Addr]) -> Desired {
    let mut desired = Desired::default();
    for proto in [proto::TCP, proto::UDP] {
        let spec = |flags| FrontendSpec {
            service: "default/web:http".into(),
            flags,
            affinity_timeout: 0,
            backends: pods.iter().map(|a| backend(*a, proto)).collect(),
            terminating: BTreeSet::new(),
            source_ranges: Vec::new(),
        };
        desired.frontends.insert(
            Frontend {
                address: CLUSTER_IP,
                port: 80,
                proto,
            },
            spec(0),
        );
        desired.frontends.insert(
            Frontend {
                address: Ipv4Addr::UNSPECIFIED,
                port: NODE_PORT,
                proto,
            },
            spec(lb::flags::NODEPORT | lb::flags::EXTERNAL | lb::flags::MAGLEV),
        );
    }
    desired
}

/// One TCP request from the client pod through the ClusterIP: who answered, and the peer
/// address the socket reports.
fn ask_tcp(client: &NetNs) -> std::io::Result<(String, SocketAddr)> {
    client.within(|| {
        let to = SocketAddr::from((CLUSTER_IP, 80));
        let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let peer = stream.peer_addr()?;
        let mut name = String::new();
        stream.read_to_string(&mut name)?;
        Ok((name, peer))
    })?
}

/// One UDP request from the client pod: who answered, and from which address.
fn ask_udp(client: &NetNs) -> std::io::Result<(String, SocketAddr)> {
    client.within(|| {
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        socket.send_to(b"q", (CLUSTER_IP, 80))?;
        let mut buf = [0u8; 64];
        let (n, from) = socket.recv_from(&mut buf)?;
        Ok((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
    })?
}

/// An "outside" host wired to `node`: its `o0` is the node address, the host is 192.0.2.2.
fn outside_of(node: &NetNs) -> NetNs {
    let outside = NetNs::create("outside").unwrap();
    veth(
        End {
            ns: node,
            name: "o0",
            addresses: &["192.0.2.1/24"],
        },
        End {
            ns: &outside,
            name: "eth0",
            addresses: &["192.0.2.2/24"],
        },
    )
    .unwrap();
    outside
}

/// A request from the outside host to the NodePort, by a bash process (outside the socket
/// LB's cgroup): what came back.
fn ask_outside(outside: &NetNs, cgroup: &Cgroup, proto: &str) -> String {
    ask_outside_at(outside, cgroup, proto, NODE_PORT)
}

fn ask_outside_at(outside: &NetNs, cgroup: &Cgroup, proto: &str, port: u16) -> String {
    let script = match proto {
        "tcp" => format!("exec 3<>/dev/tcp/{NODE_ADDRESS}/{port} && timeout 2 cat <&3"),
        _ => format!(
            "exec 3<>/dev/udp/{NODE_ADDRESS}/{port} && printf q >&3 && timeout 2 dd bs=64 count=1 status=none <&3"
        ),
    };
    let mut command = outside.command("bash").unwrap();
    command.args(["-c", &script]);
    cgroup.enter_in(&mut command).unwrap();
    let output = command.output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn services_from_pods_and_from_outside_across_backend_changes() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "needs root (run it through `cargo xtask test ebpf`)"
    );
    let lab = ServiceLab::create(3).unwrap();
    let outside = outside_of(&lab.node);

    let pins = PinGuard(PinDir::new(format!(
        "/sys/fs/bpf/{}",
        unique_name("services")
    )));
    let sizes = Sizes::small();
    let pods_cgroup = Cgroup::create("pods").unwrap();
    let outside_cgroup = Cgroup::create("outside").unwrap();
    let _socket_lb = SocketLb::attach(&pins.0, pods_cgroup.path(), &sizes).unwrap();
    let (p0, sz) = (pins.0.clone(), sizes.clone());
    lab.node
        .within(move || {
            // SAFETY: a valid C string; the thread is in the node namespace.
            let ifindex = unsafe { libc::if_nametoindex(c"o0".as_ptr()) };
            assert_ne!(ifindex, 0);
            PacketLb::attach_tc(&p0, ifindex, &sz).map(|_| ())
        })
        .unwrap()
        .unwrap();
    let mut sync = MapSync::new(LbMaps::open(&pins.0).unwrap());
    sync.set_node_addresses(&[NODE_ADDRESS].into()).unwrap();

    let [a, b, c] = [lab.backends[0], lab.backends[1], lab.backends[2]];
    let (run_a, run_b, run_c) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(true)),
    );
    start_pod(&lab.pods, a, "a", run_a.clone());
    start_pod(&lab.pods, b, "b", run_b.clone());
    start_pod(&lab.pods, c, "c", run_c.clone());
    let stats = sync.apply(&desired(&[a, b]));
    assert!(stats.errors.is_empty(), "{stats:?}");
    let joined = pods_cgroup.join().unwrap();

    // From a pod: TCP and UDP through the ClusterIP, answered by both backends, and the
    // client sees the service address (no NAT visible to it).
    let service = SocketAddr::from((CLUSTER_IP, 80));
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let (name, peer) = ask_tcp(&lab.client).unwrap();
        assert_eq!(peer, service);
        seen.insert(name);
        let (name, from) = ask_udp(&lab.client).unwrap();
        assert_eq!(from, service);
        seen.insert(name);
    }
    assert_eq!(seen, BTreeSet::from(["a".into(), "b".into()]));

    // From outside: the NodePort on the node's address, through tc, TCP and UDP.
    for proto in ["tcp", "udp"] {
        let answer = ask_outside(&outside, &outside_cgroup, proto);
        assert!(
            answer == "a" || answer == "b",
            "{proto} NodePort from outside answered {answer:?}"
        );
    }

    // Under load from the pod: add c, then take a out of the service (a still serves while it
    // drains, as a terminating pod does); no request may fail.
    let load = Arc::new(AtomicBool::new(true));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let client_threads: Vec<_> = (0..2)
        .map(|_| {
            let (load, ok, failed) = (load.clone(), ok.clone(), failed.clone());
            lab.client
                .spawn(move || {
                    let mut names = BTreeSet::new();
                    while load.load(Ordering::Relaxed) {
                        let to = SocketAddr::from((CLUSTER_IP, 80));
                        let answer = TcpStream::connect_timeout(&to, Duration::from_secs(2))
                            .and_then(|mut s| {
                                let mut name = String::new();
                                s.read_to_string(&mut name).map(|_| name)
                            });
                        match answer {
                            Ok(name) if !name.is_empty() => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                names.insert(name);
                            }
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    names
                })
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let stats = sync.apply(&desired(&[a, b, c]));
    assert_eq!(stats.backends_added, 2, "c over TCP and UDP: {stats:?}");
    std::thread::sleep(Duration::from_millis(300));
    let stats = sync.apply(&desired(&[b, c]));
    assert_eq!(stats.backends_removed, 2, "a over TCP and UDP: {stats:?}");
    std::thread::sleep(Duration::from_millis(300));
    // a is out of every frontend: it stops, and nothing may notice.
    run_a.store(false, Ordering::Relaxed);
    let after = ok.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    load.store(false, Ordering::Relaxed);
    let mut names = BTreeSet::new();
    for t in client_threads {
        names.extend(t.join().unwrap());
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no failed request ({} succeeded)",
        ok.load(Ordering::Relaxed)
    );
    assert!(
        ok.load(Ordering::Relaxed) > after,
        "traffic went on after a stopped"
    );
    assert!(names.contains("c"), "the added backend served: {names:?}");
    for _ in 0..20 {
        assert_ne!(
            ask_tcp(&lab.client).unwrap().0,
            "a",
            "a is out of the service"
        );
    }
    for proto in ["tcp", "udp"] {
        let answer = ask_outside(&outside, &outside_cgroup, proto);
        assert!(
            answer == "b" || answer == "c",
            "{proto} NodePort after the change answered {answer:?}"
        );
    }

    // The datapath counted what it did.
    let translated = lb::percpu_sum(&sync.maps().stats, &0u32).unwrap();
    let packets = lb::percpu_sum(&sync.maps().stats, &2u32).unwrap();
    assert!(translated > 40, "socket translations: {translated}");
    assert!(packets > 0, "packets translated at tc: {packets}");

    run_b.store(false, Ordering::Relaxed);
    run_c.store(false, Ordering::Relaxed);
    drop(joined);
    drop(sync);
}

/// A NodePort whose only backend is a pod on another node: the node SNATs the flow to its own
/// address (externalTrafficPolicy Cluster), so the remote pod's reply comes back through it
/// and is translated back; the client sees the NodePort answer, the pod sees the node.
///
/// ```text
///  outside ns ── o0 192.0.2.1 [node ns] n2 172.16.0.1 ── eth0 172.16.0.2 [node2 ns]
///                                                         pod 10.244.2.10 on lo
/// ```
#[test]
fn node_port_to_a_pod_on_another_node_is_snated() {
    assert_eq!(unsafe { libc::geteuid() }, 0, "needs root");
    let node = NetNs::create("node").unwrap();
    let node2 = NetNs::create("node2").unwrap();
    let outside = outside_of(&node);
    veth(
        End {
            ns: &node,
            name: "n2",
            addresses: &["172.16.0.1/24"],
        },
        End {
            ns: &node2,
            name: "eth0",
            addresses: &["172.16.0.2/24"],
        },
    )
    .unwrap();
    node.sysctl("net.ipv4.ip_forward", "1").unwrap();
    node.ip(&["route", "add", "10.244.2.0/24", "via", "172.16.0.2"])
        .unwrap();
    node2
        .ip(&["addr", "add", "10.244.2.10/32", "dev", "lo"])
        .unwrap();
    node2.ip(&["link", "set", "lo", "up"]).unwrap();
    node2
        .ip(&["route", "add", "default", "via", "172.16.0.1"])
        .unwrap();

    let pins = PinGuard(PinDir::new(format!("/sys/fs/bpf/{}", unique_name("snat"))));
    let sizes = Sizes::small();
    let outside_cgroup = Cgroup::create("outside").unwrap();
    let (p0, sz) = (pins.0.clone(), sizes.clone());
    node.within(move || {
        // Outside clients arrive on o0; the remote pod's replies on n2.
        for name in [c"o0", c"n2"] {
            // SAFETY: a valid C string; the thread is in the node namespace.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            assert_ne!(ifindex, 0);
            PacketLb::attach_tc(&p0, ifindex, &sz).unwrap();
        }
    })
    .unwrap();
    let mut sync = MapSync::new(LbMaps::open(&pins.0).unwrap());
    sync.set_node_addresses(&[NODE_ADDRESS].into()).unwrap();

    // The remote pod answers with the address it saw the request come from.
    let running = Arc::new(AtomicBool::new(true));
    let (tcp, udp) = node2
        .within(|| {
            let pod = Ipv4Addr::new(10, 244, 2, 10);
            (
                TcpListener::bind((pod, TARGET_PORT)).unwrap(),
                UdpSocket::bind((pod, TARGET_PORT)).unwrap(),
            )
        })
        .unwrap();
    tcp.set_nonblocking(true).unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let r = running.clone();
    std::thread::spawn(move || {
        while r.load(Ordering::Relaxed) {
            match tcp.accept() {
                Ok((mut stream, peer)) => {
                    let _ = stream.write_all(format!("r {}", peer.ip()).as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    let r = running.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while r.load(Ordering::Relaxed) {
            if let Ok((_, from)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(format!("r {}", from.ip()).as_bytes(), from);
            }
        }
    });

    let mut desired = Desired::default();
    for proto in [proto::TCP, proto::UDP] {
        desired.frontends.insert(
            Frontend {
                address: Ipv4Addr::UNSPECIFIED,
                port: 30090,
                proto,
            },
            FrontendSpec {
                service: "default/remote:http".into(),
                flags: lb::flags::NODEPORT | lb::flags::EXTERNAL,
                affinity_timeout: 0,
                backends: vec![Backend {
                    address: Ipv4Addr::new(10, 244, 2, 10),
                    port: TARGET_PORT,
                    proto,
                    remote: true,
                }],
                terminating: BTreeSet::new(),
                source_ranges: Vec::new(),
            },
        );
    }
    let stats = sync.apply(&desired);
    assert!(stats.errors.is_empty(), "{stats:?}");

    for proto in ["tcp", "udp"] {
        for _ in 0..3 {
            let answer = ask_outside_at(&outside, &outside_cgroup, proto, 30090);
            assert_eq!(
                answer,
                format!("r {NODE_ADDRESS}"),
                "{proto}: the remote pod answered through the node, which SNATed the flow"
            );
        }
    }
    let snat = skiff_ebpf::libbpf_rs::MapHandle::from_pinned_path(pins.0.map("lb4_snat")).unwrap();
    assert!(
        skiff_ebpf::libbpf_rs::MapCore::keys(&snat).count() >= 2,
        "SNAT entries for the TCP and UDP flows"
    );
    // Removing the service purges its SNAT entries.
    let stats = sync.apply(&Desired::default());
    assert!(stats.errors.is_empty(), "{stats:?}");
    assert_eq!(skiff_ebpf::libbpf_rs::MapCore::keys(&snat).count(), 0);
    running.store(false, Ordering::Relaxed);
    drop(sync);
}
