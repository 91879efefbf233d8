//! Pod networking end to end (root): three "nodes" joined by an underlay, two pods on each,
//! wired the way skiff's CNI wires them, routed by the eBPF programs of `skiff_ebpf::net`.
//!
//! ```text
//!            switch ns: bridge br0
//!         ┌────────────┼────────────┐
//!   node1 ul0 192.168.77.1  node2 .2   node3 .3      (native: podCIDR via node; overlay: VXLAN skv)
//!     vp1 vp2 (tcx: net4_from_pod)    ...
//!     │    │
//!   pod 10.244.1.11/32, 10.244.1.12/32  (default via 169.254.1.1, permanent neighbour)
//! ```
//!
//! Every pod connects over TCP to every other pod and to every node address, every node to
//! every pod; the server answers with the peer address of the accepted socket, which must be
//! the client's own address: no NAT anywhere. Each node has its own pin directory (its own
//! maps), removed with the namespaces by guards, failures included.

use std::net::Ipv4Addr;

use anyhow::{Context, Result, bail};
use skiff_ebpf::net::{Endpoint, Mode, NetConfig, NetMaps, PodNet};
use skiff_ebpf::{PinDir, PinGuard};
use skiff_netlab::netns::{End, veth};
use skiff_netlab::{NetNs, reach};

const NODES: u8 = 3;
const PODS_PER_NODE: u8 = 2;
const PORT: u16 = 7070;
const VNI: u32 = 4242;
const GATEWAY: &str = "169.254.1.1";

fn node_address(node: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 77, node)
}

fn pod_address(node: u8, pod: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, node, 10 + pod)
}

fn pod_cidr(node: u8) -> (Ipv4Addr, u8) {
    (Ipv4Addr::new(10, 244, node, 0), 24)
}

/// (ifindex, MAC) of `dev` in `ns`.
fn link_info(ns: &NetNs, dev: &str) -> Result<(u32, [u8; 6])> {
    let out = ns.run("ip", &["-j", "link", "show", "dev", dev])?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let link = &json[0];
    let ifindex = link["ifindex"].as_u64().context("ifindex")? as u32;
    let mac = link["address"].as_str().context("address")?;
    let mut bytes = [0u8; 6];
    for (byte, part) in bytes.iter_mut().zip(mac.split(':')) {
        *byte = u8::from_str_radix(part, 16)?;
    }
    Ok((ifindex, bytes))
}

fn mac_string(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

struct Pod {
    ns: NetNs,
    address: Ipv4Addr,
}

struct Node {
    ns: NetNs,
    address: Ipv4Addr,
    pins: PinDir,
    pods: Vec<Pod>,
    _pins: PinGuard,
}

/// The lab; drops the pins (links, maps) and every namespace.
struct Cluster {
    nodes: Vec<Node>,
    _switch: NetNs,
}

impl Cluster {
    fn create(overlay: bool) -> Result<Cluster> {
        let switch = NetNs::create("sw")?;
        switch.ip(&["link", "add", "br0", "type", "bridge"])?;
        switch.ip(&["link", "set", "br0", "up"])?;
        let mut cluster = Cluster {
            nodes: Vec::new(),
            _switch: switch,
        };
        for n in 1..=NODES {
            let ns = NetNs::create(&format!("node{n}"))?;
            let pins = PinDir::new(format!(
                "/sys/fs/bpf/skiff-podnet-{}-{}-{n}",
                std::process::id(),
                if overlay { "overlay" } else { "native" }
            ));
            let guard = PinGuard(pins.clone());
            cluster.nodes.push(Node {
                ns,
                address: node_address(n),
                pins,
                pods: Vec::new(),
                _pins: guard,
            });
        }
        for n in 1..=NODES {
            cluster.wire_node(n, overlay)?;
        }
        Ok(cluster)
    }

    fn wire_node(&mut self, n: u8, overlay: bool) -> Result<()> {
        let switch = &self._switch;
        let node = &mut self.nodes[usize::from(n - 1)];
        let ns = &node.ns;
        ns.sysctl("net.ipv4.ip_forward", "1")?;
        for scope in ["all", "default"] {
            // Overlay replies come back through the tunnel, requests went out on the
            // underlay: no strict reverse-path filter.
            ns.sysctl(&format!("net.ipv4.conf.{scope}.rp_filter"), "0")?;
        }
        let address = format!("{}/24", node.address);
        veth(
            End {
                ns,
                name: "ul0",
                addresses: &[&address],
            },
            End {
                ns: switch,
                name: &format!("n{n}"),
                addresses: &[],
            },
        )?;
        switch.ip(&["link", "set", &format!("n{n}"), "master", "br0"])?;
        let maps = NetMaps::open(&node.pins)?;
        let mode = if overlay {
            ns.ip(&[
                "link", "add", "skv", "type", "vxlan", "external", "dstport", "4789",
            ])?;
            // Host traffic routed into the tunnel must not wait for ARP over it.
            ns.ip(&["link", "set", "skv", "arp", "off", "up"])?;
            let (ifindex, _) = link_info(ns, "skv")?;
            Mode::Overlay { ifindex, vni: VNI }
        } else {
            Mode::Native
        };
        maps.set_config(&NetConfig {
            cluster_cidr: (Ipv4Addr::new(10, 244, 0, 0), 16),
            pod_cidr: pod_cidr(n),
            mode,
        })?;
        for other in (1..=NODES).filter(|o| *o != n) {
            let cidr = format!("{}/{}", pod_cidr(other).0, pod_cidr(other).1);
            if overlay {
                maps.put_tunnel(pod_cidr(other), node_address(other))?;
                ns.ip(&["route", "add", &cidr, "dev", "skv"])?;
            } else {
                let via = node_address(other).to_string();
                ns.ip(&["route", "add", &cidr, "via", &via])?;
            }
        }
        PodNet::load_and_pin(&node.pins)?;
        let (uplink, _) = link_info(ns, "ul0")?;
        let mut attach: Vec<(u32, bool)> = vec![(uplink, false)];
        if let Mode::Overlay { ifindex, .. } = mode {
            attach.push((ifindex, true));
        }
        for p in 1..=PODS_PER_NODE {
            let pod_ns = NetNs::create(&format!("n{n}p{p}"))?;
            let host = format!("vp{p}");
            let pod_ip = pod_address(n, p);
            veth(
                End {
                    ns,
                    name: &host,
                    addresses: &[],
                },
                End {
                    ns: &pod_ns,
                    name: "eth0",
                    addresses: &[&format!("{pod_ip}/32")],
                },
            )?;
            let (host_ifindex, host_mac) = link_info(ns, &host)?;
            let (_, pod_mac) = link_info(&pod_ns, "eth0")?;
            if overlay {
                // Room for the VXLAN header on the underlay's 1500.
                pod_ns.ip(&["link", "set", "eth0", "mtu", "1450"])?;
            }
            pod_ns.ip(&[
                "neigh",
                "add",
                GATEWAY,
                "lladdr",
                &mac_string(host_mac),
                "dev",
                "eth0",
                "nud",
                "permanent",
            ])?;
            pod_ns.ip(&[
                "route", "add", "default", "via", GATEWAY, "dev", "eth0", "onlink",
            ])?;
            ns.ip(&["route", "add", &format!("{pod_ip}/32"), "dev", &host])?;
            maps.put_endpoint(&Endpoint {
                address: pod_ip,
                ifindex: host_ifindex,
                pod_mac,
                host_mac,
                identity: u64::from(n) << 8 | u64::from(p),
            })?;
            let pins = node.pins.clone();
            ns.within(move || PodNet::attach_pod(&pins, host_ifindex))??;
            node.pods.push(Pod {
                ns: pod_ns,
                address: pod_ip,
            });
        }
        for (ifindex, tunnel) in attach {
            let pins = node.pins.clone();
            ns.within(move || {
                if tunnel {
                    PodNet::attach_tunnel(&pins, ifindex)
                } else {
                    PodNet::attach_uplink(&pins, ifindex)
                }
            })??;
        }
        Ok(())
    }

    /// Every (namespace, address) that serves and connects: pods and nodes.
    fn hosts(&self) -> Vec<(&NetNs, Ipv4Addr)> {
        let mut all = Vec::new();
        for node in &self.nodes {
            all.push((&node.ns, node.address));
            for pod in &node.pods {
                all.push((&pod.ns, pod.address));
            }
        }
        all
    }
}

fn all_to_all(cluster: &Cluster) -> Result<()> {
    // Node to node is the plain underlay, not ours.
    let failures = reach::all_pairs(&cluster.hosts(), PORT, |from, to| {
        from.octets()[0] != 192 || to.octets()[0] != 192
    })?;
    if !failures.is_empty() {
        for node in &cluster.nodes {
            let maps = NetMaps::open(&node.pins)?;
            eprintln!("{}: {:?}", node.address, maps.stats()?);
        }
        bail!("{} failed:\n{}", failures.len(), failures.join("\n"));
    }
    Ok(())
}

fn counters(cluster: &Cluster, name: &str) -> Result<u64> {
    let mut sum = 0;
    for node in &cluster.nodes {
        sum += NetMaps::open(&node.pins)?.stat(name)?;
    }
    Ok(sum)
}

/// The id of the program behind the pinned object at `path` (`bpftool -j`).
fn prog_id(path: &std::path::Path, kind: &str) -> Result<u64> {
    let out = std::process::Command::new("bpftool")
        .args(["-j", kind, "show", "pinned"])
        .arg(path)
        .output()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("bpftool {kind} show {}", path.display()))?;
    let key = if kind == "link" { "prog_id" } else { "id" };
    json[key].as_u64().context("no program id")
}

#[test]
fn native_routing_all_to_all() -> Result<()> {
    let cluster = Cluster::create(false)?;
    all_to_all(&cluster)?;
    assert!(counters(&cluster, "redirect_local")? > 0);
    assert!(counters(&cluster, "redirect_native")? > 0);
    assert_eq!(counters(&cluster, "drop_spoof")?, 0);

    // An agent upgrade: programs pinned again, links switched in place, traffic flows on.
    let node = &cluster.nodes[0];
    let link = node
        .pins
        .link("net4_from_pod-if")
        .with_file_name(format!("net4_from_pod-if{}", link_info(&node.ns, "vp1")?.0));
    let before = prog_id(&link, "link")?;
    PodNet::load_and_pin(&node.pins)?;
    let after = prog_id(&link, "link")?;
    let pinned = node.pins.path().join("progs").join("net4_from_pod");
    assert_ne!(before, after, "link switched to the new program");
    assert_eq!(after, prog_id(&pinned, "prog")?);
    let remote = &cluster.nodes[1].pods[0];
    assert_eq!(
        reach::peer_seen(&node.pods[0].ns, remote.address, PORT)?,
        node.pods[0].address.to_string()
    );

    // CNI DEL: the link pin goes.
    PodNet::detach(&node.pins, link_info(&node.ns, "vp1")?.0)?;
    assert!(!link.exists());
    Ok(())
}

#[test]
fn overlay_all_to_all() -> Result<()> {
    let cluster = Cluster::create(true)?;
    all_to_all(&cluster)?;
    assert!(counters(&cluster, "redirect_local")? > 0);
    assert!(counters(&cluster, "redirect_tunnel")? > 0);
    assert_eq!(counters(&cluster, "drop_spoof")?, 0);
    Ok(())
}
