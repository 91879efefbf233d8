//! Nodes: their resources, the `spec.unschedulable` field selector and the STATUS/ROLES/VERSION
//! columns.

use k8s_openapi::api::core::v1::Node;
use serde_json::{Value, json};
use skiff_apimachinery::validation::FieldError;

use crate::registry::strategies::resources::validate_node_resources;
use crate::registry::strategies::{col, or_none};
use crate::registry::{Column, Strategy};

/// Nodes.
pub struct Nodes;

const NODE_COLUMNS: &[Column] = &[
    col("Status", 0, "The status of the node."),
    col("Roles", 0, "The roles of the node."),
    col("Version", 0, "The kubelet version of the node."),
    col("Internal-IP", 1, "The node's internal IP."),
    col("External-IP", 1, "The node's external IP."),
    col("OS-Image", 1, "The OS image of the node."),
    col("Kernel-Version", 1, "The kernel version of the node."),
    col("Container-Runtime", 1, "The container runtime of the node."),
];

impl Strategy<Node> for Nodes {
    /// The kubelet registers its node with a status.
    fn creator_sets_status(&self) -> bool {
        true
    }

    fn validate(&self, node: &Node) -> Vec<FieldError> {
        validate_node_resources(node)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["spec.unschedulable"]
    }

    fn field(&self, node: &Node, label: &str) -> Option<String> {
        (label == "spec.unschedulable").then(|| {
            node.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
                .to_string()
        })
    }

    fn columns(&self) -> &'static [Column] {
        NODE_COLUMNS
    }

    fn cells(&self, node: &Node) -> Vec<Value> {
        let status = node.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready");
        let mut state = match ready.map(|c| c.status.as_str()) {
            Some("True") => "Ready".to_owned(),
            _ => "NotReady".to_owned(),
        };
        if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
            state.push_str(",SchedulingDisabled");
        }
        let roles: Vec<&str> = node
            .metadata
            .labels
            .iter()
            .flatten()
            .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
            .collect();
        let address = |kind: &str| {
            status
                .addresses
                .iter()
                .flatten()
                .find(|a| a.type_ == kind)
                .map(|a| a.address.clone())
                .unwrap_or_default()
        };
        let info = status.node_info.clone().unwrap_or_default();
        vec![
            json!(state),
            or_none(roles.join(",")),
            json!(info.kubelet_version),
            or_none(address("InternalIP")),
            or_none(address("ExternalIP")),
            json!(info.os_image),
            json!(info.kernel_version),
            json!(info.container_runtime_version),
        ]
    }
}
