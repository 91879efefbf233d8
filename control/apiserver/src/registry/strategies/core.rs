//! The plainer core kinds: namespaces, nodes, config maps, secrets, service accounts,
//! persistent volumes and claims, limit ranges, resource quotas, events — columns, defaults,
//! field selectors, and the validation of their resource quantities.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, LimitRange, Namespace, Node, PersistentVolume, PersistentVolumeClaim,
    ResourceQuota, Secret, ServiceAccount,
};
use serde_json::{Value, json};
use skiff_apimachinery::validation::{self, FieldError, FieldPath};

use super::resources::{
    decode_resource_list, validate_claim_spec, validate_limit_range_item, validate_node_resources,
    validate_resource_quota, validate_volume_capacity,
};
use super::{col, int, or_none};
use crate::meta;
use crate::namespaces::IMMORTAL;
use crate::registry::{Column, NameRule, Strategy};

/// Namespaces.
pub struct Namespaces;
/// Nodes.
pub struct Nodes;
/// ConfigMaps.
pub struct ConfigMaps;
/// Secrets.
pub struct Secrets;
/// ServiceAccounts.
pub struct ServiceAccounts;
/// PersistentVolumes.
pub struct PersistentVolumes;
/// PersistentVolumeClaims.
pub struct PersistentVolumeClaims;
/// Events.
pub struct Events;
/// LimitRanges.
pub struct LimitRanges;
/// ResourceQuotas.
pub struct ResourceQuotas;

impl Strategy<Namespace> for Namespaces {
    fn name_rule(&self) -> NameRule {
        validation::is_dns1123_label
    }

    /// A new namespace is Active, finalized by `kubernetes`, and labelled with its name.
    fn prepare_body_for_create(&self, obj: &mut Value) {
        let name = meta::name(obj).unwrap_or_default().to_owned();
        let Some(map) = obj.as_object_mut() else {
            return;
        };
        map.insert("status".into(), json!({ "phase": "Active" }));
        let spec = map.entry("spec").or_insert_with(|| json!({}));
        if let Some(spec) = spec.as_object_mut() {
            spec.entry("finalizers")
                .or_insert_with(|| json!(["kubernetes"]));
        }
        let m = meta::metadata_mut(obj);
        if let Some(labels) = m
            .entry("labels")
            .or_insert_with(|| json!({}))
            .as_object_mut()
        {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }

    fn validate_delete(&self, name: &str) -> Result<(), String> {
        if IMMORTAL.contains(&name) {
            return Err(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            ));
        }
        Ok(())
    }

    /// `crate::namespaces` empties it, then drops its finalizer.
    fn finalized_by_spec(&self, ns: &Namespace) -> bool {
        ns.spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| !f.is_empty())
    }

    fn prepare_for_delete(&self, ns: &mut Namespace) {
        ns.status.get_or_insert_with(Default::default).phase = Some("Terminating".into());
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.phase"]
    }

    fn field(&self, ns: &Namespace, label: &str) -> Option<String> {
        (label == "status.phase").then(|| {
            ns.status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default()
        })
    }

    fn columns(&self) -> &'static [Column] {
        const { &[col("Status", 0, "The phase of the namespace.")] }
    }

    fn cells(&self, ns: &Namespace) -> Vec<Value> {
        vec![json!(
            ns.status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Active".into())
        )]
    }
}

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

impl Strategy<ConfigMap> for ConfigMaps {
    fn columns(&self) -> &'static [Column] {
        const { &[int("Data", 0, "The number of keys in the config map.")] }
    }

    fn cells(&self, cm: &ConfigMap) -> Vec<Value> {
        let data = cm.data.as_ref().map_or(0, |d| d.len())
            + cm.binary_data.as_ref().map_or(0, |d| d.len());
        vec![json!(data)]
    }
}

impl Strategy<Secret> for Secrets {
    /// `stringData` is write-only: its values go into `data` (winning over the same keys
    /// there) and it is never stored, on create and update alike.
    fn convert(&self, secret: &mut Secret) -> &'static [&'static str] {
        if let Some(strings) = secret.string_data.take() {
            let data = secret.data.get_or_insert_with(Default::default);
            for (key, value) in strings {
                data.insert(key, ByteString(value.into_bytes()));
            }
        }
        &["stringData"]
    }

    fn default(&self, secret: &mut Secret) {
        secret.type_.get_or_insert_with(|| "Opaque".into());
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["type"]
    }

    fn field(&self, secret: &Secret, label: &str) -> Option<String> {
        (label == "type").then(|| secret.type_.clone().unwrap_or_default())
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Type", 0, "The type of the secret."),
                int("Data", 0, "The number of keys in the secret."),
            ]
        }
    }

    fn cells(&self, secret: &Secret) -> Vec<Value> {
        let data = secret.data.as_ref().map_or(0, |d| d.len());
        vec![json!(secret.type_.clone().unwrap_or_default()), json!(data)]
    }
}

impl Strategy<ServiceAccount> for ServiceAccounts {
    fn columns(&self) -> &'static [Column] {
        const {
            &[int(
                "Secrets",
                0,
                "The number of secrets of the service account.",
            )]
        }
    }

    fn cells(&self, sa: &ServiceAccount) -> Vec<Value> {
        vec![json!(sa.secrets.as_ref().map_or(0, Vec::len))]
    }
}

fn access_modes(modes: Option<&Vec<String>>) -> String {
    modes
        .into_iter()
        .flatten()
        .map(|m| match m.as_str() {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Strategy<PersistentVolume> for PersistentVolumes {
    fn default(&self, pv: &mut PersistentVolume) {
        let spec = pv.spec.get_or_insert_with(Default::default);
        spec.persistent_volume_reclaim_policy
            .get_or_insert_with(|| "Retain".into());
        spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
    }

    fn validate(&self, pv: &PersistentVolume) -> Vec<FieldError> {
        let spec = pv.spec.clone().unwrap_or_default();
        validate_volume_capacity(&spec, &FieldPath::new("spec"))
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Capacity", 0, "The capacity of the volume."),
                col("Access Modes", 0, "The access modes of the volume."),
                col(
                    "Reclaim Policy",
                    0,
                    "What happens to the volume when released.",
                ),
                col("Status", 0, "The phase of the volume."),
                col("Claim", 0, "The claim bound to the volume."),
                col("StorageClass", 0, "The storage class of the volume."),
                col(
                    "VolumeAttributesClass",
                    0,
                    "The volume attributes class of the volume.",
                ),
                col("Reason", 0, "Why the volume is in its phase."),
                col("VolumeMode", 1, "Filesystem or Block."),
            ]
        }
    }

    fn cells(&self, pv: &PersistentVolume) -> Vec<Value> {
        let spec = pv.spec.clone().unwrap_or_default();
        let status = pv.status.clone().unwrap_or_default();
        let capacity = spec
            .capacity
            .as_ref()
            .and_then(|c| c.get("storage"))
            .map(|q| q.0.clone())
            .unwrap_or_default();
        let claim = spec
            .claim_ref
            .as_ref()
            .map(|c| {
                format!(
                    "{}/{}",
                    c.namespace.clone().unwrap_or_default(),
                    c.name.clone().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        vec![
            json!(capacity),
            json!(access_modes(spec.access_modes.as_ref())),
            json!(spec.persistent_volume_reclaim_policy.unwrap_or_default()),
            json!(status.phase.unwrap_or_else(|| "Pending".into())),
            json!(claim),
            json!(spec.storage_class_name.unwrap_or_default()),
            or_none(spec.volume_attributes_class_name.unwrap_or_default()),
            json!(status.reason.unwrap_or_default()),
            json!(spec.volume_mode.unwrap_or_default()),
        ]
    }
}

impl Strategy<PersistentVolumeClaim> for PersistentVolumeClaims {
    fn default(&self, pvc: &mut PersistentVolumeClaim) {
        let spec = pvc.spec.get_or_insert_with(Default::default);
        spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
    }

    fn validate(&self, pvc: &PersistentVolumeClaim) -> Vec<FieldError> {
        let spec = pvc.spec.clone().unwrap_or_default();
        let mut errors = validate_claim_spec(&spec, &FieldPath::new("spec"));
        let status = pvc.status.clone().unwrap_or_default();
        let status_path = FieldPath::new("status");
        errors.extend(decode_resource_list(
            status.capacity.as_ref(),
            &status_path.child("capacity"),
        ));
        errors.extend(decode_resource_list(
            status.allocated_resources.as_ref(),
            &status_path.child("allocatedResources"),
        ));
        errors
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Status", 0, "The phase of the claim."),
                col("Volume", 0, "The volume bound to the claim."),
                col("Capacity", 0, "The capacity of the bound volume."),
                col("Access Modes", 0, "The access modes of the bound volume."),
                col("StorageClass", 0, "The storage class of the claim."),
                col(
                    "VolumeAttributesClass",
                    0,
                    "The volume attributes class of the claim.",
                ),
                col("VolumeMode", 1, "Filesystem or Block."),
            ]
        }
    }

    fn cells(&self, pvc: &PersistentVolumeClaim) -> Vec<Value> {
        let spec = pvc.spec.clone().unwrap_or_default();
        let status = pvc.status.clone().unwrap_or_default();
        let capacity = status
            .capacity
            .as_ref()
            .and_then(|c| c.get("storage"))
            .map(|q| q.0.clone())
            .unwrap_or_default();
        vec![
            json!(status.phase.unwrap_or_else(|| "Pending".into())),
            json!(spec.volume_name.unwrap_or_default()),
            json!(capacity),
            json!(access_modes(status.access_modes.as_ref())),
            json!(spec.storage_class_name.unwrap_or_default()),
            or_none(spec.volume_attributes_class_name.unwrap_or_default()),
            json!(spec.volume_mode.unwrap_or_default()),
        ]
    }
}

impl Strategy<LimitRange> for LimitRanges {
    fn validate(&self, range: &LimitRange) -> Vec<FieldError> {
        let path = FieldPath::new("spec").child("limits");
        let items = range.spec.iter().flat_map(|s| s.limits.iter());
        items
            .enumerate()
            .flat_map(|(i, item)| validate_limit_range_item(item, &path.index(i)))
            .collect()
    }
}

impl Strategy<ResourceQuota> for ResourceQuotas {
    fn validate(&self, quota: &ResourceQuota) -> Vec<FieldError> {
        validate_resource_quota(quota)
    }
}

impl Strategy<Event> for Events {
    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]
    }

    fn field(&self, ev: &Event, label: &str) -> Option<String> {
        let o = &ev.involved_object;
        let value = match label {
            "involvedObject.kind" => o.kind.clone(),
            "involvedObject.namespace" => o.namespace.clone(),
            "involvedObject.name" => o.name.clone(),
            "involvedObject.uid" => o.uid.clone(),
            "involvedObject.apiVersion" => o.api_version.clone(),
            "involvedObject.resourceVersion" => o.resource_version.clone(),
            "involvedObject.fieldPath" => o.field_path.clone(),
            "reason" => ev.reason.clone(),
            "reportingComponent" => ev.reporting_component.clone(),
            "source" => ev.source.as_ref().and_then(|s| s.component.clone()),
            "type" => ev.type_.clone(),
            _ => return None,
        };
        Some(value.unwrap_or_default())
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Last Seen", 0, "When the event last happened."),
                col("Type", 0, "The type of the event."),
                col("Reason", 0, "Why the event happened."),
                col("Object", 0, "The object the event is about."),
                col("Subobject", 1, "The part of the object (a container)."),
                col("Source", 1, "The component that reported the event."),
                col("Message", 0, "What happened."),
                col("First Seen", 1, "When the event first happened."),
                col("Count", 1, "How often the event happened."),
                col("Name", 1, "The event's name."),
            ]
        }
    }

    fn whole_row(&self) -> bool {
        true
    }

    fn cells(&self, ev: &Event) -> Vec<Value> {
        let o = &ev.involved_object;
        let since = |time: Option<jiff::Timestamp>| match time {
            Some(time) => crate::handlers::human_duration(
                jiff::Timestamp::now().as_second() - time.as_second(),
            ),
            None => "<unknown>".into(),
        };
        // As Kubernetes prints them: lastTimestamp (firstTimestamp), else eventTime, else
        // the creation time.
        let or_fallbacks = |time: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            time.map(|t| t.0)
                .or_else(|| ev.event_time.as_ref().map(|t| t.0))
                .or_else(|| ev.metadata.creation_timestamp.as_ref().map(|t| t.0))
        };
        let last = or_fallbacks(ev.last_timestamp.as_ref());
        let first = or_fallbacks(ev.first_timestamp.as_ref());
        let count = ev.count.unwrap_or(1);
        let last_seen = if count > 1 {
            format!("{} (x{count} over {})", since(last), since(first))
        } else {
            since(last)
        };
        let source = ev.source.clone().unwrap_or_default();
        let source = match (source.component, source.host) {
            (Some(component), Some(host)) if !host.is_empty() => format!("{component}, {host}"),
            (Some(component), _) => component,
            _ => ev.reporting_component.clone().unwrap_or_default(),
        };
        vec![
            json!(last_seen),
            json!(ev.type_.clone().unwrap_or_default()),
            json!(ev.reason.clone().unwrap_or_default()),
            json!(format!(
                "{}/{}",
                o.kind.clone().unwrap_or_default().to_lowercase(),
                o.name.clone().unwrap_or_default()
            )),
            json!(o.field_path.clone().unwrap_or_default()),
            json!(source),
            json!(ev.message.clone().unwrap_or_default()),
            json!(since(first)),
            json!(count),
            json!(ev.metadata.name.clone().unwrap_or_default()),
        ]
    }
}
