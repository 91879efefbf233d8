//! The lab services are measured in: a client "pod", a node that routes between pods (where a
//! node's iptables or nftables service rules sit, as on a kube-proxy node), and a namespace
//! holding the backend pods' addresses.
//!
//! ```text
//!  client ns                node ns                         pods ns
//!  eth0 10.244.1.2/24 ── c0 10.244.1.1/24
//!                           p0 10.244.0.1/24 ── eth0 10.244.0.10, .11, ... /24
//! ```
//!
//! Pod traffic to a ClusterIP enters the node through `c0` (PREROUTING, as pod traffic does on
//! a kube-proxy node) and is forwarded to the pods through `p0`.

use std::io;
use std::net::Ipv4Addr;

use crate::NetNs;
use crate::netns::{End, veth};

/// The cluster's pod CIDR (kube-proxy's `--cluster-cidr`).
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";

/// The client pod's address.
pub const CLIENT_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);

/// A client, a node and the pods, wired and addressed; everything goes with the namespaces.
#[derive(Debug)]
pub struct ServiceLab {
    /// The pods (field order: dropped first, so nothing routes to a vanished peer meanwhile).
    pub pods: NetNs,
    /// The client pod.
    pub client: NetNs,
    /// The node: routes between pods, holds service rules.
    pub node: NetNs,
    /// The backend pods' addresses, all in `pods`.
    pub backends: Vec<Ipv4Addr>,
}

impl ServiceLab {
    /// Creates the three namespaces with `backends` pod addresses (10.244.0.10 onwards).
    pub fn create(backends: usize) -> io::Result<ServiceLab> {
        assert!(backends <= 240, "the pods' /24 holds 240 backends");
        let lab = ServiceLab {
            pods: NetNs::create("pods")?,
            client: NetNs::create("client")?,
            node: NetNs::create("node")?,
            backends: (0..backends)
                .map(|i| Ipv4Addr::new(10, 244, 0, 10 + i as u8))
                .collect(),
        };
        let client_cidr = format!("{CLIENT_ADDRESS}/24");
        veth(
            End {
                ns: &lab.client,
                name: "eth0",
                addresses: &[&client_cidr],
            },
            End {
                ns: &lab.node,
                name: "c0",
                addresses: &["10.244.1.1/24"],
            },
        )?;
        let pod_cidrs: Vec<String> = lab.backends.iter().map(|a| format!("{a}/24")).collect();
        let pod_cidrs: Vec<&str> = pod_cidrs.iter().map(String::as_str).collect();
        veth(
            End {
                ns: &lab.node,
                name: "p0",
                addresses: &["10.244.0.1/24"],
            },
            End {
                ns: &lab.pods,
                name: "eth0",
                addresses: &pod_cidrs,
            },
        )?;
        lab.client
            .ip(&["route", "add", "default", "via", "10.244.1.1"])?;
        lab.pods
            .ip(&["route", "add", "default", "via", "10.244.0.1"])?;
        lab.node.sysctl("net.ipv4.ip_forward", "1")?;
        // Many short connections: reuse ports at once and keep no TIME_WAIT sockets, whose
        // PAWS checks would otherwise reject reused 4-tuples (seen as 1 s SYN retransmits).
        for ns in [&lab.client, &lab.pods] {
            ns.sysctl("net.ipv4.tcp_max_tw_buckets", "0")?;
            ns.sysctl("net.ipv4.ip_local_port_range", "1024 65000")?;
            ns.sysctl("net.core.somaxconn", "4096")?;
        }
        Ok(lab)
    }
}
