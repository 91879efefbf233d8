//! The Kubernetes network model across nodes, with skiff's real parts (root): three "nodes"
//! (network namespaces on one underlay bridge), each set up by the agent's `NodeNetwork`
//! (programs pinned, routes or tunnels to the other nodes, masquerade), with pods created by
//! the real `skiff-cni` binary run inside the node. Then, natively routed and over the VXLAN
//! overlay:
//! - every pod reaches every other pod, and every node reaches every pod and back, each side
//!   seeing the other's real address (no NAT);
//! - bulk transfers (BIG TCP where the underlay takes it) arrive intact, natively routed by the
//!   eBPF programs rather than the host stack;
//! - a pod reaching an address outside the cluster is seen as its node (masquerade);
//! - a node leaving the peer list takes its pods' route with it;
//! - (native) a NodePort reached from outside leads to a pod on this node (client address kept)
//!   and to one on another node (SNATed to the node), through the service LB on the uplink;
//!   48 MiB through it arrive intact (GSO packets translated both ways).
//!
//! Everything (namespaces, pins, data directories) is removed by guards, failures included.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use skiff_ebpf::{PinDir, PinGuard};
use skiff_net::Cidr;
use skiff_net::network::{Mode, NodeNetwork, Setup, VXLAN_PORT};
use skiff_net::node::Peer;
use skiff_netlab::netns::{End, veth};
use skiff_netlab::{NetNs, reach};

const BIN: &str = env!("CARGO_BIN_EXE_skiff-cni");
const NODES: u8 = 3;
const PODS_PER_NODE: u8 = 2;
const PORT: u16 = 7171;
const BULK_PORT: u16 = 7172;
/// The GSO size asked for (BIG TCP).
const BIG_TCP: u32 = 196608;
/// Bytes of one bulk transfer: enough for the sender to build full-size GSO packets.
const BULK_BYTES: usize = 48 << 20;
/// An address on the underlay that is neither a node nor in the cluster: "the internet".
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 254);

fn node_address(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 78, n)
}

fn pod_cidr(n: u8) -> Cidr {
    Cidr::new(Ipv4Addr::new(10, 245, n, 0), 24)
}

fn cluster_cidr() -> Cidr {
    Cidr::new(Ipv4Addr::new(10, 245, 0, 0), 16)
}

struct Node {
    network: Option<NodeNetwork>,
    pods: Vec<(NetNs, Ipv4Addr)>,
    pins: PinGuard,
    /// The pods' GSO size the node setup settled on (BIG TCP).
    gso_max_size: Option<u32>,
    data: tempfile::TempDir,
    // After the pods and pins: the namespace holds the links the pins refer to.
    ns: NetNs,
    n: u8,
}

struct Cluster {
    nodes: Vec<Node>,
    mode: Mode,
    switch: NetNs,
}

impl Cluster {
    fn create(mode: Mode) -> Result<Cluster> {
        // Tests run in parallel: each cluster has its own pins (maps) per node.
        static LABS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let lab = LABS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let switch = NetNs::create("switch")?;
        switch.ip(&["link", "add", "br0", "type", "bridge"])?;
        switch.ip(&["addr", "add", &format!("{OUTSIDE}/24"), "dev", "br0"])?;
        switch.ip(&["link", "set", "br0", "up"])?;
        let mut cluster = Cluster {
            nodes: Vec::new(),
            mode,
            switch,
        };
        for n in 1..=NODES {
            let ns = NetNs::create(&format!("node{n}"))?;
            veth(
                End {
                    ns: &ns,
                    name: "ul0",
                    addresses: &[&format!("{}/24", node_address(n))],
                },
                End {
                    ns: &cluster.switch,
                    name: &format!("n{n}"),
                    addresses: &[],
                },
            )?;
            cluster
                .switch
                .ip(&["link", "set", &format!("n{n}"), "master", "br0"])?;
            let kind = match mode {
                Mode::Native => "native",
                Mode::Overlay { .. } => "overlay",
            };
            let pins = PinDir::new(format!(
                "/sys/fs/bpf/skiff-test-multinode-{}-{kind}{lab}-{n}",
                std::process::id()
            ));
            let setup = Setup {
                pod_cidr: pod_cidr(n),
                cluster_cidr: cluster_cidr(),
                mode,
                uplinks: vec!["ul0".into()],
                pins: pins.clone(),
                masquerade: true,
                gso_max_size: Some(BIG_TCP),
            };
            let pins = PinGuard(pins);
            // Set up inside the node: sysctls, netlink, nft and the tcx links are per namespace.
            let network = ns.within(move || NodeNetwork::setup(setup))??;
            if mode == Mode::Native {
                // The underlay veth takes 512 KiB: BIG TCP for the pods.
                assert_eq!(network.pod_gso_max_size(), Some(BIG_TCP));
            }
            let gso_max_size = network.pod_gso_max_size();
            cluster.nodes.push(Node {
                gso_max_size,
                network: Some(network),
                pods: Vec::new(),
                pins,
                data: tempfile::tempdir()?,
                ns,
                n,
            });
        }
        cluster.apply_peers(&(1..=NODES).collect::<Vec<_>>())?;
        for i in 0..cluster.nodes.len() {
            for p in 1..=PODS_PER_NODE {
                let pod = NetNs::create(&format!("n{}p{p}", cluster.nodes[i].n))?;
                let address = cluster.nodes[i].add(&format!("pod-{p}"), &pod, mode)?;
                cluster.nodes[i].pods.push((pod, address));
            }
        }
        Ok(cluster)
    }

    /// Gives every node the peers among `present` (what the agent derives from Node objects).
    fn apply_peers(&mut self, present: &[u8]) -> Result<()> {
        let peers: Vec<Peer> = present
            .iter()
            .map(|&n| Peer {
                name: format!("node{n}"),
                pod_cidr: pod_cidr(n),
                address: node_address(n),
            })
            .collect();
        for node in &mut self.nodes {
            let mut network = node.network.take().context("network")?;
            let mine: Vec<Peer> = peers
                .iter()
                .filter(|p| p.name != format!("node{}", node.n))
                .cloned()
                .collect();
            let (network, result) = node.ns.within(move || {
                let result = network.apply_peers(&mine);
                (network, result)
            })?;
            node.network = Some(network);
            result?;
        }
        Ok(())
    }

    fn hosts(&self) -> Vec<(&NetNs, Ipv4Addr)> {
        let mut hosts = Vec::new();
        for node in &self.nodes {
            hosts.push((&node.ns, node_address(node.n)));
            for (ns, address) in &node.pods {
                hosts.push((ns, *address));
            }
        }
        hosts
    }
}

impl Node {
    /// CNI ADD through the real plugin, run inside this node; the pod's address.
    fn add(&self, id: &str, pod: &NetNs, mode: Mode) -> Result<Ipv4Addr> {
        let mtu = match mode {
            Mode::Native => 1500,
            Mode::Overlay { .. } => 1500 - skiff_net::network::VXLAN_OVERHEAD,
        };
        let conf = json!({
            "cniVersion": "1.1.0",
            "name": "skiff",
            "type": "skiff-cni",
            "podCIDR": pod_cidr(self.n).to_string(),
            "clusterCIDR": cluster_cidr().to_string(),
            "mtu": mtu,
            "gsoMaxSize": self.gso_max_size,
            "bpfPinDir": self.pins.0.path(),
            "dataDir": self.data.path(),
        });
        let mut command = self.ns.command(BIN)?;
        command
            .env_clear()
            .env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", pod.path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", "/opt/cni/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(conf.to_string().as_bytes())?;
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "ADD {id} on node{}: {} {}",
                self.n,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let result: Value = serde_json::from_slice(&output.stdout)?;
        let address = result["ips"][0]["address"]
            .as_str()
            .context("no address in the result")?;
        let address: Cidr = address.parse().map_err(anyhow::Error::msg)?;
        anyhow::ensure!(pod_cidr(self.n).contains(address.network));
        Ok(address.network)
    }
}

fn is_node(address: Ipv4Addr) -> bool {
    address.octets()[0] == 192
}

fn model_holds(cluster: &Cluster) -> Result<()> {
    // Node to node is the plain underlay, not ours.
    let failures = reach::all_pairs(&cluster.hosts(), PORT, |from, to| {
        !(is_node(from) && is_node(to))
    })?;
    if !failures.is_empty() {
        bail!(
            "{} of the pairs failed ({:?}):\n{}",
            failures.len(),
            cluster.mode,
            failures.join("\n")
        );
    }
    Ok(())
}

/// A bulk TCP transfer from `from_ns` to `to` (a server on `to`'s address at [`BULK_PORT`]
/// inside `to_ns`) arrives whole and in order (the receiver checks every byte against the
/// pattern sent). The client connects to `via` (`to` itself, or a service in front of it).
fn bulk_transfer(from_ns: &NetNs, to_ns: &NetNs, to: Ipv4Addr, via: SocketAddr) -> Result<()> {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    let pattern = |i: usize| (i % 251) as u8;
    let listener = to_ns.within(move || TcpListener::bind((to, BULK_PORT)))??;
    let receiver = std::thread::spawn(move || -> Result<usize> {
        let (mut conn, _) = listener.accept()?;
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        let mut buffer = vec![0u8; 1 << 16];
        let mut got = 0usize;
        loop {
            let n = conn.read(&mut buffer)?;
            if n == 0 {
                return Ok(got);
            }
            if let Some(bad) = (0..n).find(|k| buffer[*k] != pattern(got + k)) {
                bail!("byte {} differs from what was sent", got + bad);
            }
            got += n;
        }
    });
    from_ns.within(move || -> Result<()> {
        let mut conn = TcpStream::connect(via)?;
        let data: Vec<u8> = (0..BULK_BYTES).map(pattern).collect();
        conn.write_all(&data)?;
        Ok(())
    })??;
    let got = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("the receiver panicked"))??;
    anyhow::ensure!(got == BULK_BYTES, "{got} of {BULK_BYTES} bytes arrived");
    Ok(())
}

/// Bulk transfers to a pod on the same node and on another node arrive intact, and (native
/// mode) take the eBPF path: the FIB lookup must pass GSO packets, BIG TCP ones included,
/// not hand them to the host stack.
fn bulk_transfers_take_the_ebpf_path(cluster: &Cluster) -> Result<()> {
    let node1 = &cluster.nodes[0];
    let maps = skiff_ebpf::net::NetMaps::open(&node1.pins.0)?;
    let before = (maps.stat("redirect_native")?, maps.stat("fib_fail")?);
    let (from_ns, _) = &node1.pods[0];
    let (same_ns, same) = &node1.pods[1];
    let (other_ns, other) = &cluster.nodes[1].pods[0];
    bulk_transfer(from_ns, same_ns, *same, (*same, BULK_PORT).into())
        .context("to a pod on the same node")?;
    bulk_transfer(from_ns, other_ns, *other, (*other, BULK_PORT).into())
        .context("to a pod on another node")?;
    if cluster.mode == Mode::Native {
        let native = maps.stat("redirect_native")? - before.0;
        let failed = maps.stat("fib_fail")? - before.1;
        // 48 MiB in GSO packets of up to 192 KiB is at least 256 of them; the FIB lookup
        // fails none (a route to the other node exists, the next hop is resolved).
        assert!(
            native >= 256 && failed == 0,
            "{native} packets redirected to the other node, {failed} handed to the stack"
        );
    }
    Ok(())
}

fn masquerades_outside(cluster: &Cluster) -> Result<()> {
    reach::serve_peer_address(&cluster.switch, OUTSIDE, PORT)?;
    for node in &cluster.nodes {
        let (pod, _) = &node.pods[0];
        let seen = reach::peer_seen(pod, OUTSIDE, PORT)?;
        assert_eq!(
            seen,
            node_address(node.n).to_string(),
            "a pod of node{} reaching outside the cluster is seen as its node",
            node.n
        );
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root");
    }
    root
}

fn run(mode: Mode) -> Result<()> {
    let mut cluster = Cluster::create(mode)?;
    model_holds(&cluster)?;
    bulk_transfers_take_the_ebpf_path(&cluster)?;
    masquerades_outside(&cluster)?;
    // node3 leaves: node1 loses the way to its pods, and keeps the way to node2's.
    cluster.apply_peers(&[1, 2])?;
    let (pod, _) = &cluster.nodes[0].pods[0];
    let gone = cluster.nodes[2].pods[0].1;
    let kept = cluster.nodes[1].pods[0].1;
    assert!(
        reach::peer_seen(pod, gone, PORT).is_err(),
        "{gone} is still reachable after its node left"
    );
    assert_eq!(
        reach::peer_seen(pod, kept, PORT)?,
        cluster.nodes[0].pods[0].1.to_string()
    );
    Ok(())
}

#[test]
fn native_routing() -> Result<()> {
    if !is_root() {
        return Ok(());
    }
    run(Mode::Native)
}

#[test]
fn vxlan_overlay() -> Result<()> {
    if !is_root() {
        return Ok(());
    }
    run(Mode::Overlay {
        vni: 7,
        port: VXLAN_PORT,
    })
}

/// Pods behind a NodePort reached from outside the cluster: node 1's uplink carries the
/// per-packet load balancer as well as the pod network's delivery program. A local backend
/// sees the client's own address (no SNAT); a backend on node 2 sees node 1's (SNAT, traffic
/// policy Cluster), and the reply finds its way back through node 1 in both cases.
#[test]
fn nodeport_from_outside_reaches_pods_on_any_node() -> Result<()> {
    use skiff_ebpf::lb::flags;
    use skiff_ebpf::lb::{LbMaps, Sizes};
    use skiff_ebpf::packet_lb::PacketLb;
    use skiff_proxy::model::{Backend, Desired, Frontend, FrontendSpec, proto};
    use skiff_proxy::sync::MapSync;

    if !is_root() {
        return Ok(());
    }
    let cluster = Cluster::create(Mode::Native)?;
    let node1 = &cluster.nodes[0];
    let (local_ns, local) = &node1.pods[0];
    let (remote_ns, remote) = &cluster.nodes[1].pods[0];
    reach::serve_peer_address(local_ns, *local, PORT)?;
    reach::serve_peer_address(remote_ns, *remote, PORT)?;

    let sizes = Sizes::small();
    let pins = node1.pins.0.clone();
    let lb_pins = pins.clone();
    let _lb = node1.ns.within(move || -> Result<PacketLb> {
        let uplink = skiff_netlink::Netlink::open()?
            .link_by_name("ul0")?
            .context("ul0")?;
        Ok(PacketLb::attach_tc(&lb_pins, uplink.index, &sizes)?)
    })??;
    let mut sync = MapSync::new(LbMaps::open(&pins)?);
    sync.set_node_addresses(&[node_address(1)].into())?;
    let frontend = Frontend {
        address: Ipv4Addr::UNSPECIFIED,
        port: 30080,
        proto: proto::TCP,
    };
    let backend = |address: Ipv4Addr, remote: bool| Backend {
        address,
        port: PORT,
        proto: proto::TCP,
        remote,
    };
    let mut desired = Desired::default();
    let spec = |backends: Vec<Backend>| FrontendSpec {
        service: "test/web:http".into(),
        flags: flags::NODEPORT | flags::EXTERNAL,
        affinity_timeout: 0,
        backends,
        terminating: Default::default(),
        source_ranges: Vec::new(),
    };
    // Bulk through the NodePort to the pod on node 2: GSO packets (BIG TCP on the pods' side)
    // are translated and forwarded by the tc LB both ways.
    let bulk = Frontend {
        port: 30081,
        ..frontend
    };
    desired.frontends.insert(
        bulk,
        spec(vec![Backend {
            port: BULK_PORT,
            ..backend(*remote, true)
        }]),
    );
    for (only, expect_seen) in [
        (backend(*local, false), OUTSIDE),
        (backend(*remote, true), node_address(1)),
    ] {
        desired.frontends.insert(frontend, spec(vec![only]));
        let stats = sync.apply(&desired);
        anyhow::ensure!(stats.errors.is_empty(), "{stats:?}");
        for _ in 0..5 {
            let seen = reach::peer_seen(&cluster.switch, node_address(1), 30080)
                .with_context(|| format!("NodePort to {}", only.address))?;
            assert_eq!(
                seen,
                expect_seen.to_string(),
                "the backend {} saw the client as",
                only.address
            );
        }
    }
    bulk_transfer(
        &cluster.switch,
        remote_ns,
        *remote,
        (node_address(1), bulk.port).into(),
    )
    .context("through the NodePort to a pod on node 2")?;
    Ok(())
}

/// BIG TCP goes only as far as every way out takes it: the uplinks are raised to the size
/// asked for, but a default route's device that is not an uplink is only respected — while it
/// takes 64 KiB the pods keep 64 KiB, once it takes more they get BIG TCP.
#[test]
fn big_tcp_only_as_far_as_the_exits_take_it() -> Result<()> {
    if !is_root() {
        return Ok(());
    }
    let ns = NetNs::create("bigtcp")?;
    let peer = NetNs::create("bigtcp-peer")?;
    veth(
        End {
            ns: &ns,
            name: "ul0",
            addresses: &["192.168.79.1/24"],
        },
        End {
            ns: &peer,
            name: "ul0",
            addresses: &["192.168.79.2/24"],
        },
    )?;
    veth(
        End {
            ns: &ns,
            name: "ext0",
            addresses: &["198.51.100.1/24"],
        },
        End {
            ns: &peer,
            name: "ext1",
            addresses: &[],
        },
    )?;
    ns.ip(&["route", "add", "default", "via", "198.51.100.254"])?;
    let pins = PinDir::new(format!(
        "/sys/fs/bpf/skiff-test-multinode-{}-bigtcp",
        std::process::id()
    ));
    let _pins = PinGuard(pins.clone());
    let setup = move || Setup {
        pod_cidr: pod_cidr(1),
        cluster_cidr: cluster_cidr(),
        mode: Mode::Native,
        uplinks: vec!["ul0".into()],
        pins: pins.clone(),
        masquerade: false,
        gso_max_size: Some(BIG_TCP),
    };
    let first = setup();
    let (pods, uplink) = ns.within(move || -> Result<(Option<u32>, u32)> {
        let network = NodeNetwork::setup(first)?;
        let uplink = skiff_netlink::Netlink::open()?
            .link_by_name("ul0")?
            .context("ul0")?;
        Ok((network.pod_gso_max_size(), uplink.gso_ipv4_max))
    })??;
    assert_eq!(uplink, BIG_TCP, "the uplink is raised");
    assert_eq!(pods, None, "ext0, the default route's device, takes 64 KiB");

    let again = setup();
    let pods = ns.within(move || -> Result<Option<u32>> {
        let mut nl = skiff_netlink::Netlink::open()?;
        let ext = nl.link_by_name("ext0")?.context("ext0")?;
        nl.set_gso_ipv4_max(ext.index, BIG_TCP)?;
        Ok(NodeNetwork::setup(again)?.pod_gso_max_size())
    })??;
    assert_eq!(pods, Some(BIG_TCP), "every way out takes 192 KiB now");
    Ok(())
}
