//! The node-wide half of the pod network, without the API: forwarding on, the programs loaded
//! and pinned (so every CNI ADD only links them), the routing config in the maps, the overlay
//! device, the uplink programs, the masquerade table, and the way to every other node's
//! podCIDR (a route via that node in native mode, a tunnel entry in overlay mode), applied by
//! difference so a restart or a resync converges without churn.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use anyhow::Context;
use skiff_ebpf::PinDir;
use skiff_ebpf::net::{self, NetConfig, NetMaps, PodNet};
use skiff_netlink::Netlink;
use skiff_netlink::route::Route;

use crate::node::Peer;
use crate::{Cidr, masquerade};

/// The overlay device's name.
pub const OVERLAY_DEVICE: &str = "skiff_vxlan";
/// VXLAN's IANA port.
pub const VXLAN_PORT: u16 = 4789;
/// What VXLAN over IPv4 adds to a frame: pods in overlay mode get the uplink's MTU minus this.
pub const VXLAN_OVERHEAD: u32 = 50;

/// How pods on other nodes are reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The underlay routes pod CIDRs: a route per node, `podCIDR via nodeIP`.
    Native,
    /// VXLAN between nodes (for networks that cannot route pod CIDRs).
    Overlay { vni: u32, port: u16 },
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "native" => Ok(Mode::Native),
            "overlay" | "vxlan" => Ok(Mode::Overlay {
                vni: 1,
                port: VXLAN_PORT,
            }),
            other => Err(format!(
                "unknown pod network mode {other:?} (native or overlay)"
            )),
        }
    }
}

/// The kernel's IPv4 GSO size without BIG TCP.
const GSO_LEGACY_MAX: u32 = 65536;

/// What the node's pod network is made of.
#[derive(Clone, Debug)]
pub struct Setup {
    pub pod_cidr: Cidr,
    pub cluster_cidr: Cidr,
    pub mode: Mode,
    /// Interfaces traffic from other nodes arrives on (get the to-pod program).
    pub uplinks: Vec<String>,
    pub pins: PinDir,
    /// Install the masquerade table for traffic leaving the cluster.
    pub masquerade: bool,
    /// BIG TCP: the IPv4 GSO size wanted for pods (above 64 KiB; `None`: the kernel's 64 KiB),
    /// as large as every uplink (and the overlay device) takes
    /// ([`NodeNetwork::pod_gso_max_size`]).
    pub gso_max_size: Option<u32>,
}

/// The node's pod network, set up; [`NodeNetwork::apply_peers`] keeps the other nodes current.
pub struct NodeNetwork {
    setup: Setup,
    netlink: Netlink,
    maps: NetMaps,
    /// Other nodes' podCIDRs → node address, as installed.
    installed: BTreeMap<Cidr, Ipv4Addr>,
    /// Node addresses in the masquerade exclusion set.
    nodes: Vec<Ipv4Addr>,
    /// The GSO size pods get (BIG TCP), when the uplinks take more than 64 KiB.
    pod_gso_max_size: Option<u32>,
}

impl NodeNetwork {
    /// Sets the node up in the calling thread's network namespace. Idempotent: run again (a
    /// restarted agent) it adopts what is there.
    pub fn setup(setup: Setup) -> anyhow::Result<NodeNetwork> {
        skiff_netlink::sysctl_set("net.ipv4.ip_forward", "1")?;
        let mut netlink = Netlink::open()?;
        PodNet::load_and_pin(&setup.pins).context("loading the pod network programs")?;
        let maps = NetMaps::open(&setup.pins)?;
        // Pods attached by tc filter keep the program they were given: move them to the one
        // just pinned (an upgraded agent's). Pods attached by tcx link were switched in place.
        for endpoint in maps.endpoints()? {
            let ifindex = endpoint.ifindex;
            if PodNet::pod_link_pinned(&setup.pins, ifindex) {
                continue;
            }
            if let Err(err) = PodNet::attach_pod_filter(&mut netlink, &setup.pins, ifindex) {
                tracing::warn!(pod = %endpoint.address, ifindex, error = %err, "re-attaching a pod's program");
            }
        }
        let mode = match setup.mode {
            Mode::Native => net::Mode::Native,
            Mode::Overlay { vni, port } => {
                let ifindex = overlay_device(&mut netlink, port)?;
                // A pod's traffic to another node's address leaves on the underlay, its reply
                // comes back through the tunnel: strict reverse-path filtering would drop it.
                skiff_netlink::sysctl_set(
                    &format!("net/ipv4/conf/{OVERLAY_DEVICE}/rp_filter"),
                    "2",
                )?;
                PodNet::attach_tunnel(&setup.pins, ifindex)?;
                net::Mode::Overlay { ifindex, vni }
            }
        };
        maps.set_config(&NetConfig {
            cluster_cidr: setup.cluster_cidr.pair(),
            pod_cidr: setup.pod_cidr.pair(),
            mode,
        })?;
        let mut uplinks = Vec::new();
        for name in &setup.uplinks {
            let link = netlink
                .link_by_name(name)?
                .with_context(|| format!("no interface named {name}"))?;
            PodNet::attach_uplink(&setup.pins, link.index)?;
            uplinks.push(link);
        }
        let pod_gso_max_size = match setup.gso_max_size.filter(|size| *size > GSO_LEGACY_MAX) {
            Some(wanted) => big_tcp(&mut netlink, uplinks, mode, wanted)?,
            None => None,
        };
        // Adopt what an earlier run installed: routes via a gateway into the cluster CIDR (the
        // per-pod routes have none), or the tunnel table.
        let installed = match setup.mode {
            Mode::Native => netlink
                .routes()?
                .into_iter()
                .filter_map(|r| {
                    let cidr = Cidr::new(r.dst.0, r.dst.1);
                    let via = r.via?;
                    (cidr.prefix >= setup.cluster_cidr.prefix
                        && setup.cluster_cidr.contains(cidr.network)
                        && cidr != setup.pod_cidr)
                        .then_some((cidr, via))
                })
                .collect(),
            Mode::Overlay { .. } => maps
                .tunnels()?
                .into_iter()
                .map(|((network, prefix), node)| (Cidr::new(network, prefix), node))
                .collect(),
        };
        if setup.masquerade {
            masquerade::apply(setup.pod_cidr, setup.cluster_cidr, &[])?;
        }
        Ok(NodeNetwork {
            setup,
            netlink,
            maps,
            installed,
            nodes: Vec::new(),
            pod_gso_max_size,
        })
    }

    /// The IPv4 GSO size for pods' veths (the CNI config's `gsoMaxSize`): BIG TCP when the
    /// setup asked for it and every uplink takes it; `None`: the kernel's 64 KiB.
    pub fn pod_gso_max_size(&self) -> Option<u32> {
        self.pod_gso_max_size
    }

    /// Makes the way to the other nodes' pods exactly `peers`: adds and changes what differs,
    /// removes what is no longer there.
    pub fn apply_peers(&mut self, peers: &[Peer]) -> anyhow::Result<()> {
        let desired: BTreeMap<Cidr, Ipv4Addr> = peers
            .iter()
            .filter(|p| p.pod_cidr != self.setup.pod_cidr)
            .map(|p| (p.pod_cidr, p.address))
            .collect();
        for (&cidr, &node) in &desired {
            if self.installed.get(&cidr) == Some(&node) {
                continue;
            }
            match self.setup.mode {
                Mode::Native => self
                    .netlink
                    .replace_route(&Route::via(cidr.pair(), node, None))?,
                Mode::Overlay { .. } => {
                    self.maps.put_tunnel(cidr.pair(), node)?;
                    // The node's own traffic to those pods: into the overlay device, whose
                    // egress program sets the tunnel key.
                    let device = self.overlay_ifindex()?;
                    self.netlink
                        .replace_route(&Route::link(cidr.pair(), device))?;
                }
            }
            tracing::info!(%cidr, %node, "pods of another node reachable");
            self.installed.insert(cidr, node);
        }
        let gone: Vec<(Cidr, Ipv4Addr)> = self
            .installed
            .iter()
            .filter(|(cidr, _)| !desired.contains_key(cidr))
            .map(|(c, n)| (*c, *n))
            .collect();
        for (cidr, node) in gone {
            let result = match self.setup.mode {
                Mode::Native => ignore_missing(self.netlink.delete_route(&Route::via(
                    cidr.pair(),
                    node,
                    None,
                ))),
                Mode::Overlay { .. } => {
                    let device = self.overlay_ifindex()?;
                    ignore_missing(self.netlink.delete_route(&Route::link(cidr.pair(), device)))
                        .and_then(|()| self.maps.remove_tunnel(cidr.pair()).map_err(Into::into))
                }
            };
            result?;
            tracing::info!(%cidr, %node, "node gone: its pods' route removed");
            self.installed.remove(&cidr);
        }
        let mut nodes: Vec<Ipv4Addr> = peers.iter().map(|p| p.address).collect();
        nodes.sort();
        nodes.dedup();
        if self.setup.masquerade && nodes != self.nodes {
            masquerade::apply(self.setup.pod_cidr, self.setup.cluster_cidr, &nodes)?;
        }
        self.nodes = nodes;
        Ok(())
    }

    fn overlay_ifindex(&mut self) -> anyhow::Result<u32> {
        Ok(self
            .netlink
            .link_by_name(OVERLAY_DEVICE)?
            .context("the overlay device is gone")?
            .index)
    }

    /// Other nodes' podCIDRs as installed.
    pub fn installed(&self) -> &BTreeMap<Cidr, Ipv4Addr> {
        &self.installed
    }
}

/// A deletion that found nothing to delete succeeded.
fn ignore_missing(result: skiff_netlink::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(err) if !err.is_not_found() => Err(err.into()),
        _ => Ok(()),
    }
}

/// The overlay device (created when missing, without ARP: its neighbours are the tunnel
/// table's nodes, and the receiving node rewrites the inner Ethernet header anyway; set up),
/// its ifindex.
/// BIG TCP for pods: the GSO size pods may use, `wanted` or less, or `None` (64 KiB). A pod's
/// packet leaves through an uplink (or the overlay device, then an uplink) as it is
/// (bpf_redirect): a device whose GSO size is smaller would segment it in software. Uplinks
/// and the overlay device are ours to raise (up to what the device takes); the device of the
/// default route, where the host stack sends pods' traffic to the outside, is only respected.
fn big_tcp(
    netlink: &mut Netlink,
    uplinks: Vec<skiff_netlink::link::Link>,
    mode: net::Mode,
    wanted: u32,
) -> anyhow::Result<Option<u32>> {
    let links = netlink.links()?;
    let mut exits: Vec<_> = uplinks.into_iter().map(|link| (link, true)).collect();
    if let net::Mode::Overlay { ifindex, .. } = mode {
        exits.extend(
            links
                .iter()
                .find(|l| l.index == ifindex)
                .map(|l| (l.clone(), true)),
        );
    }
    for route in netlink.routes()? {
        if route.dst.1 == 0
            && let Some(dev) = route.dev
            && !exits.iter().any(|(l, _)| l.index == dev)
        {
            exits.extend(
                links
                    .iter()
                    .find(|l| l.index == dev)
                    .map(|l| (l.clone(), false)),
            );
        }
    }
    let mut size = wanted;
    for (link, ours) in exits {
        size = size.min(if ours {
            link.tso_max
        } else {
            link.gso_ipv4_max
        });
        if size <= GSO_LEGACY_MAX {
            return Ok(None);
        }
        if ours && link.gso_ipv4_max < size {
            netlink.set_gso_ipv4_max(link.index, size)?;
        }
    }
    // Encapsulated, a pod's packet grows by the tunnel's headers: keep it within the uplink's.
    if let net::Mode::Overlay { .. } = mode {
        size -= VXLAN_OVERHEAD;
    }
    Ok((size > GSO_LEGACY_MAX).then_some(size))
}

fn overlay_device(netlink: &mut Netlink, port: u16) -> anyhow::Result<u32> {
    if netlink.link_by_name(OVERLAY_DEVICE)?.is_none() {
        netlink.create_vxlan_external(OVERLAY_DEVICE, port, None)?;
    }
    let link = netlink
        .link_by_name(OVERLAY_DEVICE)?
        .context("the overlay device vanished")?;
    netlink.set_arp(link.index, false)?;
    netlink.set_up(link.index, true)?;
    Ok(link.index)
}
