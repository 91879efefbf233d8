//! Printer columns (and the few defaults) of the remaining built-in kinds: ingresses, storage,
//! network policies, disruption budgets, priorities, leases, revisions, autoscalers and RBAC
//! bindings.

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, Subject};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::{col, int, or_none, selector_text};
use crate::registry::{Column, NameRule, Strategy};

/// Ingresses.
pub struct Ingresses;
/// IngressClasses.
pub struct IngressClasses;
/// StorageClasses.
pub struct StorageClasses;
/// NetworkPolicies.
pub struct NetworkPolicies;
/// PodDisruptionBudgets.
pub struct PodDisruptionBudgets;
/// PriorityClasses.
pub struct PriorityClasses;
/// Leases.
pub struct Leases;
/// ControllerRevisions.
pub struct ControllerRevisions;
/// HorizontalPodAutoscalers.
pub struct HorizontalPodAutoscalers;
/// Roles and ClusterRoles.
pub struct Roles;
/// RoleBindings and ClusterRoleBindings.
pub struct Bindings;

/// RBAC names only need to be usable as one URL path segment (Kubernetes'
/// `ValidatePathSegmentName`).
pub fn path_segment_name(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name == "." || name == ".." {
        problems.push(format!("may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            problems.push(format!("may not contain '{bad}'"));
        }
    }
    problems
}

fn int_or_string(v: Option<&IntOrString>) -> Value {
    match v {
        Some(IntOrString::Int(i)) => json!(i.to_string()),
        Some(IntOrString::String(s)) => json!(s),
        None => json!("N/A"),
    }
}

impl Strategy<Ingress> for Ingresses {
    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Class", 0, "The ingress class."),
                col("Hosts", 0, "The hosts the ingress serves."),
                col("Address", 0, "The addresses the ingress is reachable at."),
                col("Ports", 0, "The ports the ingress serves."),
            ]
        }
    }

    fn cells(&self, ing: &Ingress) -> Vec<Value> {
        let spec = ing.spec.clone().unwrap_or_default();
        let hosts: Vec<String> = spec
            .rules
            .iter()
            .flatten()
            .filter_map(|r| r.host.clone())
            .collect();
        let hosts = if hosts.is_empty() {
            "*".to_owned()
        } else {
            hosts.join(",")
        };
        let addresses: Vec<String> = ing
            .status
            .iter()
            .flat_map(|s| s.load_balancer.iter())
            .flat_map(|lb| lb.ingress.iter().flatten())
            .filter_map(|i| i.ip.clone().or(i.hostname.clone()))
            .collect();
        let ports = if spec.tls.as_ref().is_some_and(|t| !t.is_empty()) {
            "80, 443"
        } else {
            "80"
        };
        vec![
            or_none(spec.ingress_class_name.unwrap_or_default()),
            json!(hosts),
            json!(addresses.join(",")),
            json!(ports),
        ]
    }
}

impl Strategy<IngressClass> for IngressClasses {
    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Controller", 0, "The controller of the class."),
                col("Parameters", 0, "The class's parameters."),
            ]
        }
    }

    fn cells(&self, class: &IngressClass) -> Vec<Value> {
        let spec = class.spec.clone().unwrap_or_default();
        let parameters = spec
            .parameters
            .map(|p| format!("{}/{}", p.kind, p.name))
            .unwrap_or_default();
        vec![
            json!(spec.controller.unwrap_or_default()),
            or_none(parameters),
        ]
    }
}

impl Strategy<StorageClass> for StorageClasses {
    fn default(&self, sc: &mut StorageClass) {
        sc.reclaim_policy.get_or_insert_with(|| "Delete".into());
        sc.volume_binding_mode
            .get_or_insert_with(|| "Immediate".into());
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Provisioner", 0, "The provisioner of the class."),
                col("ReclaimPolicy", 0, "What happens to released volumes."),
                col("VolumeBindingMode", 0, "When volumes are bound."),
                col("AllowVolumeExpansion", 0, "Whether volumes may grow."),
            ]
        }
    }

    fn cells(&self, sc: &StorageClass) -> Vec<Value> {
        vec![
            json!(sc.provisioner),
            json!(sc.reclaim_policy.clone().unwrap_or_default()),
            json!(sc.volume_binding_mode.clone().unwrap_or_default()),
            json!(sc.allow_volume_expansion.unwrap_or(false)),
        ]
    }
}

impl Strategy<NetworkPolicy> for NetworkPolicies {
    fn columns(&self) -> &'static [Column] {
        const { &[col("Pod-Selector", 0, "The pods the policy applies to.")] }
    }

    fn cells(&self, np: &NetworkPolicy) -> Vec<Value> {
        vec![selector_text(
            np.spec.as_ref().and_then(|s| s.pod_selector.as_ref()),
        )]
    }
}

impl Strategy<PodDisruptionBudget> for PodDisruptionBudgets {
    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Min Available", 0, "Pods that must stay available."),
                col("Max Unavailable", 0, "Pods that may be unavailable."),
                int("Allowed Disruptions", 0, "Disruptions allowed now."),
            ]
        }
    }

    fn cells(&self, pdb: &PodDisruptionBudget) -> Vec<Value> {
        let spec = pdb.spec.clone().unwrap_or_default();
        let allowed = pdb
            .status
            .as_ref()
            .and_then(|s| s.disruptions_allowed)
            .unwrap_or(0);
        vec![
            int_or_string(spec.min_available.as_ref()),
            int_or_string(spec.max_unavailable.as_ref()),
            json!(allowed),
        ]
    }
}

impl Strategy<PriorityClass> for PriorityClasses {
    fn default(&self, pc: &mut PriorityClass) {
        pc.preemption_policy
            .get_or_insert_with(|| "PreemptLowerPriority".into());
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                int("Value", 0, "The priority value."),
                col(
                    "Global-Default",
                    0,
                    "Whether pods without a class get this one.",
                ),
                col(
                    "PreemptionPolicy",
                    0,
                    "Whether pods of this class preempt others.",
                ),
            ]
        }
    }

    fn cells(&self, pc: &PriorityClass) -> Vec<Value> {
        vec![
            json!(pc.value),
            json!(pc.global_default.unwrap_or(false)),
            json!(pc.preemption_policy.clone().unwrap_or_default()),
        ]
    }
}

impl Strategy<Lease> for Leases {
    fn columns(&self) -> &'static [Column] {
        const { &[col("Holder", 0, "Who holds the lease.")] }
    }

    fn cells(&self, lease: &Lease) -> Vec<Value> {
        vec![json!(
            lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default()
        )]
    }
}

impl Strategy<ControllerRevision> for ControllerRevisions {
    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Controller", 0, "The object owning the revision."),
                int("Revision", 0, "The revision number."),
            ]
        }
    }

    fn cells(&self, rev: &ControllerRevision) -> Vec<Value> {
        let owner = rev
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| format!("{}/{}", o.kind.to_lowercase(), o.name))
            .unwrap_or_default();
        vec![or_none(owner), json!(rev.revision)]
    }
}

impl Strategy<HorizontalPodAutoscaler> for HorizontalPodAutoscalers {
    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Reference", 0, "The scaled object."),
                col("Targets", 0, "The metrics' current and target values."),
                int("MinPods", 0, "The fewest replicas."),
                int("MaxPods", 0, "The most replicas."),
                int("Replicas", 0, "The current replicas."),
            ]
        }
    }

    fn cells(&self, hpa: &HorizontalPodAutoscaler) -> Vec<Value> {
        let spec = hpa.spec.clone();
        let target = &spec.scale_target_ref;
        let reference = format!("{}/{}", target.kind, target.name);
        let targets = if spec.metrics.as_ref().is_some_and(|m| !m.is_empty()) {
            "<unknown>"
        } else {
            "<none>"
        };
        vec![
            json!(reference),
            json!(targets),
            json!(spec.min_replicas.unwrap_or(1)),
            json!(spec.max_replicas),
            json!(
                hpa.status
                    .as_ref()
                    .and_then(|s| s.current_replicas)
                    .unwrap_or(0)
            ),
        ]
    }
}

const BINDING_COLUMNS: &[Column] = &[
    col("Role", 0, "The role granted."),
    col("Users", 1, "The users granted the role."),
    col("Groups", 1, "The groups granted the role."),
    col(
        "ServiceAccounts",
        1,
        "The service accounts granted the role.",
    ),
];

fn binding_cells(kind: &str, role: &str, subjects: Option<&Vec<Subject>>) -> Vec<Value> {
    let of = |wanted: &str| {
        subjects
            .into_iter()
            .flatten()
            .filter(|s| s.kind == wanted)
            .map(|s| match (&s.namespace, wanted) {
                (Some(ns), "ServiceAccount") => format!("{ns}/{}", s.name),
                _ => s.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        json!(format!("{kind}/{role}")),
        json!(of("User")),
        json!(of("Group")),
        json!(of("ServiceAccount")),
    ]
}

impl Strategy<Role> for Roles {
    fn name_rule(&self) -> NameRule {
        path_segment_name
    }
}

impl Strategy<ClusterRole> for Roles {
    fn name_rule(&self) -> NameRule {
        path_segment_name
    }
}

impl Strategy<RoleBinding> for Bindings {
    fn name_rule(&self) -> NameRule {
        path_segment_name
    }

    fn columns(&self) -> &'static [Column] {
        BINDING_COLUMNS
    }

    fn cells(&self, b: &RoleBinding) -> Vec<Value> {
        binding_cells(&b.role_ref.kind, &b.role_ref.name, b.subjects.as_ref())
    }
}

impl Strategy<ClusterRoleBinding> for Bindings {
    fn name_rule(&self) -> NameRule {
        path_segment_name
    }

    fn columns(&self) -> &'static [Column] {
        BINDING_COLUMNS
    }

    fn cells(&self, b: &ClusterRoleBinding) -> Vec<Value> {
        binding_cells(&b.role_ref.kind, &b.role_ref.name, b.subjects.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbac_names_only_need_to_be_path_segments() {
        assert!(path_segment_name("system:controller:foo").is_empty());
        assert_eq!(path_segment_name("a/b"), ["may not contain '/'"]);
        assert_eq!(path_segment_name(".."), ["may not be '..'"]);
    }
}
