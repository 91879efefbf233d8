//! This node's Node object, as the pod network needs it: its podCIDR (taken from the Node, or
//! written there from the agent's `--pod-cidr` until a controller assigns podCIDRs), the
//! `NetworkUnavailable` condition, and the other nodes' podCIDRs and addresses.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeSpec, NodeStatus};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::Cidr;

/// Another node's pods: where its podCIDR is reached.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub name: String,
    pub pod_cidr: Cidr,
    /// The node's InternalIP (else its first IPv4 address).
    pub address: Ipv4Addr,
}

/// The node's first IPv4 InternalIP, else its first IPv4 address of any type.
pub fn node_address(node: &Node) -> Option<Ipv4Addr> {
    let addresses = node.status.as_ref()?.addresses.as_ref()?;
    let ipv4 = |a: &&NodeAddress| a.address.parse::<Ipv4Addr>().ok();
    addresses
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| ipv4(&a))
        .or_else(|| addresses.iter().find_map(|a| ipv4(&a)))
}

/// The node's IPv4 podCIDR, if it has one that parses.
pub fn pod_cidr(node: &Node) -> Option<Cidr> {
    let spec = node.spec.as_ref()?;
    spec.pod_cidr
        .iter()
        .chain(spec.pod_cidrs.iter().flatten())
        .find_map(|c| c.parse().ok())
}

/// The nodes other than `me` whose pods can be routed to: they have a podCIDR and an address.
pub fn peers<'a>(nodes: impl IntoIterator<Item = &'a Node>, me: &str) -> Vec<Peer> {
    let mut peers: Vec<Peer> = nodes
        .into_iter()
        .filter(|n| n.metadata.name.as_deref() != Some(me))
        .filter_map(|n| {
            Some(Peer {
                name: n.metadata.name.clone()?,
                pod_cidr: pod_cidr(n)?,
                address: node_address(n)?,
            })
        })
        .collect();
    peers.sort();
    peers
}

/// Makes sure this node's Node exists and has a podCIDR, and returns it. A Node is created
/// when missing (the kubelet's registration, minimal until the kubelet issue lands); an empty
/// podCIDR is filled from `configured`; a podCIDR already set wins over the flag (it is
/// immutable in Kubernetes) and a different flag is reported. `None` when neither has one: a
/// controller has yet to assign it.
pub async fn ensure_pod_cidr(
    client: &Client,
    name: &str,
    address: Option<Ipv4Addr>,
    configured: Option<Cidr>,
) -> anyhow::Result<Option<Cidr>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = match nodes.get_opt(name).await? {
        Some(node) => node,
        None => {
            let node = Node {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.into()),
                    labels: Some(
                        [
                            ("kubernetes.io/hostname".to_owned(), name.to_owned()),
                            ("kubernetes.io/os".to_owned(), "linux".to_owned()),
                        ]
                        .into(),
                    ),
                    ..Default::default()
                },
                spec: Some(NodeSpec::default()),
                status: Some(NodeStatus::default()),
            };
            match nodes.create(&PostParams::default(), &node).await {
                Ok(created) => {
                    tracing::info!(node = name, "registered the Node");
                    created
                }
                // The kubelet (same agent) registered it meanwhile.
                Err(kube::Error::Api(status)) if status.code == 409 => nodes.get(name).await?,
                Err(err) => return Err(err.into()),
            }
        }
    };
    if let Some(address) = address
        && node_address(&node).is_none()
    {
        let patch = json!({"status": {"addresses": [
            {"type": "InternalIP", "address": address.to_string()},
            {"type": "Hostname", "address": name},
        ]}});
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await?;
    }
    match (pod_cidr(&node), configured) {
        (Some(assigned), Some(flag)) if assigned != flag => {
            tracing::warn!(node = name, %assigned, %flag, "the Node's podCIDR differs from --pod-cidr; using the Node's");
            Ok(Some(assigned))
        }
        (Some(assigned), _) => Ok(Some(assigned)),
        (None, Some(flag)) => {
            let patch =
                json!({"spec": {"podCIDR": flag.to_string(), "podCIDRs": [flag.to_string()]}});
            nodes
                .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
            tracing::info!(node = name, pod_cidr = %flag, "wrote the podCIDR into the Node");
            Ok(Some(flag))
        }
        (None, None) => Ok(None),
    }
}

/// Reports the pod network up: the `NetworkUnavailable` condition False, as network plugins do.
pub async fn set_network_available(client: &Client, name: &str) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)?
        .to_string();
    let patch = json!({"status": {"conditions": [{
        "type": "NetworkUnavailable",
        "status": "False",
        "reason": "SkiffIsUp",
        "message": "skiff's pod network is configured on this node",
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }]}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cidr: Option<&str>, address: Option<&str>) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"podCIDR": cidr},
            "status": {"addresses": address.map(|a| vec![
                json!({"type": "Hostname", "address": name}),
                json!({"type": "InternalIP", "address": a}),
            ])},
        }))
        .unwrap()
    }

    #[test]
    fn peers_are_the_other_routable_nodes() {
        let nodes = [
            node("a", Some("10.244.0.0/24"), Some("192.168.1.1")),
            node("b", Some("10.244.1.0/24"), Some("192.168.1.2")),
            node("c", None, Some("192.168.1.3")),
            node("d", Some("10.244.3.0/24"), None),
            node("e", Some("not a cidr"), Some("192.168.1.5")),
        ];
        let peers = peers(&nodes, "a");
        assert_eq!(
            peers,
            vec![Peer {
                name: "b".into(),
                pod_cidr: "10.244.1.0/24".parse().unwrap(),
                address: Ipv4Addr::new(192, 168, 1, 2),
            }]
        );
    }

    #[test]
    fn internal_ip_is_preferred() {
        let n = node("a", None, Some("192.168.1.1"));
        assert_eq!(node_address(&n), Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(pod_cidr(&n), None);
    }
}
