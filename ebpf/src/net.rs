//! Pod networking in eBPF (the CNI's dataplane): `c/net_tc.bpf.c` and the pinned maps of
//! `c/include/net_*.h`.
//!
//! CONTRACT (filled in by the ebpf-net work; signatures are what `skiff-cni` and `skiff-net`
//! call):
//! - [`NetMaps`]: the pinned maps: endpoints (pod IPv4 → host-side veth ifindex, MACs, identity),
//!   the node's routing config, and the overlay's tunnel table (pod CIDR → node address).
//! - [`PodNet`]: attaches the routing programs through pinned tcx links: a pod's host-side veth
//!   (traffic from the pod), the node's uplink (traffic to local pods), the overlay device.

use std::net::Ipv4Addr;

use crate::object::PinDir;
use crate::Result;

/// A pod endpoint on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod's IPv4 address.
    pub address: Ipv4Addr,
    /// The host-side veth's ifindex (in the node's network namespace).
    pub ifindex: u32,
    /// The pod-side interface's MAC.
    pub pod_mac: [u8; 6],
    /// The host-side veth's MAC.
    pub host_mac: [u8; 6],
    /// Which sandbox owns it: a hash of the CNI container id (for CHECK/GC and debugging).
    pub identity: u64,
}

/// How pods on other nodes are reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Native routes to each node's podCIDR (FIB lookup + `bpf_redirect_neigh`).
    Native,
    /// Encapsulated through a collect-metadata VXLAN device.
    Overlay {
        /// The VXLAN device's ifindex.
        ifindex: u32,
        /// The VXLAN network identifier.
        vni: u32,
    },
}

/// The node's pod-network settings, read by the programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The whole cluster's pod CIDR (address, prefix length).
    pub cluster_cidr: (Ipv4Addr, u8),
    /// This node's podCIDR.
    pub pod_cidr: (Ipv4Addr, u8),
    pub mode: Mode,
}

/// The pinned pod-network maps under a [`PinDir`].
pub struct NetMaps {
    _private: (),
}

impl NetMaps {
    /// Opens the maps pinned under `pins`, creating (and pinning) them when missing.
    pub fn open(pins: &PinDir) -> Result<NetMaps> {
        let _ = pins;
        todo!()
    }
    pub fn put_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        let _ = endpoint;
        todo!()
    }
    pub fn remove_endpoint(&self, address: Ipv4Addr) -> Result<()> {
        let _ = address;
        todo!()
    }
    pub fn endpoint(&self, address: Ipv4Addr) -> Result<Option<Endpoint>> {
        let _ = address;
        todo!()
    }
    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        todo!()
    }
    pub fn set_config(&self, config: &NetConfig) -> Result<()> {
        let _ = config;
        todo!()
    }
    pub fn config(&self) -> Result<Option<NetConfig>> {
        todo!()
    }
    /// Overlay: pods in `pod_cidr` live on the node at `node`.
    pub fn put_tunnel(&self, pod_cidr: (Ipv4Addr, u8), node: Ipv4Addr) -> Result<()> {
        let _ = (pod_cidr, node);
        todo!()
    }
    pub fn remove_tunnel(&self, pod_cidr: (Ipv4Addr, u8)) -> Result<()> {
        let _ = pod_cidr;
        todo!()
    }
    pub fn tunnels(&self) -> Result<Vec<((Ipv4Addr, u8), Ipv4Addr)>> {
        todo!()
    }
}

/// Attachment of the routing programs (links pinned under the [`PinDir`], named by ifindex).
pub struct PodNet;

impl PodNet {
    /// tcx ingress of a pod's host-side veth: routes the pod's traffic. Uses the program
    /// pinned by [`PodNet::load_and_pin`] when there is one (cheap: no load, no verifier), else
    /// loads and pins it first.
    pub fn attach_pod(pins: &PinDir, ifindex: u32) -> Result<()> {
        let _ = (pins, ifindex);
        todo!()
    }
    /// tcx ingress of the node's uplink: delivers traffic for local pods.
    pub fn attach_uplink(pins: &PinDir, ifindex: u32) -> Result<()> {
        let _ = (pins, ifindex);
        todo!()
    }
    /// tcx ingress of the overlay device: delivers decapsulated traffic for local pods.
    pub fn attach_tunnel(pins: &PinDir, ifindex: u32) -> Result<()> {
        let _ = (pins, ifindex);
        todo!()
    }
    /// Removes this module's pinned links for `ifindex` (detaching them when still attached).
    pub fn detach(pins: &PinDir, ifindex: u32) -> Result<()> {
        let _ = (pins, ifindex);
        todo!()
    }
    /// Loads the programs against the maps under `pins` and pins the programs themselves, so
    /// CNI ADDs only create links. Replaces programs pinned by an older agent.
    pub fn load_and_pin(pins: &PinDir) -> Result<()> {
        let _ = pins;
        todo!()
    }
}
