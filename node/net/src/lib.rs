//! The node agent's pod network (the CNI's node-wide half): this node's podCIDR, the CNI
//! config containerd reads, routes (native) or tunnels (overlay) to the other nodes' podCIDRs,
//! the programs on the uplink and the overlay device, and masquerade for traffic leaving the
//! cluster. The per-pod half is the `skiff-cni` plugin.

pub mod cni_config;
pub mod masquerade;
pub mod network;
pub mod node;
pub mod run;

pub use skiff_netlink::Cidr;
