//! The skiff-cni plugin (CNI 1.0/1.1, results also in the 0.3/0.4 shapes).
//!
//! - [`spec`]: what the CNI spec fixes: versions, error codes, the result and error JSON.
//! - [`config`]: the network configuration on stdin and the `CNI_*` environment.
//! - [`ipam`]: file-backed IPv4 allocation from the node's podCIDR, safe across processes.
//! - [`plugin`]: the commands: ADD, DEL, CHECK, GC, STATUS, VERSION.
//!
//! The pod's network: a veth pair whose pod end (CNI_IFNAME) holds the pod IP as a /32 and
//! routes everything via the link-local 169.254.1.1, pinned to the host end's MAC by a
//! PERMANENT neighbour entry (no ARP, no proxy_arp); the host end (`skf<hash>`) has no address,
//! a `podIP/32 scope link` route, and the eBPF routing program on its tcx ingress; the pod is
//! registered in the pinned endpoint map.

pub mod config;
pub mod ipam;
pub mod plugin;
pub mod spec;
