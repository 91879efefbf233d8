//! Per-kind strategies: defaulting as Kubernetes' `SetDefaults_*` functions do it, validation,
//! printer columns as `kubectl get` shows them, the extra field selector labels each kind
//! supports, and the life-cycle hooks where a kind differs (names, allocation, deletion).
//!
//! One module per resource in a folder per API group, as Kubernetes'
//! `pkg/registry/<group>/<resource>`; `podspec` and `resources` are the validation shared by
//! pods, templates and the kinds with resource quantities. Kinds not listed here use
//! [`Generic`].

mod admissionregistration;
mod apiregistration;
mod apps;
mod autoscaling;
mod batch;
mod certificates;
mod coordination;
mod core;
mod discovery;
mod networking;
mod podspec;
mod policy;
mod rbac;
mod resources;
mod scheduling;
mod storage;

pub use self::core::{
    ConfigMaps, Endpoints, Events, LimitRanges, Namespaces, Nodes, PersistentVolumeClaims,
    PersistentVolumes, Pods, ReplicationControllers, ResourceQuotas, Secrets, ServiceAccounts,
    Services, default_pod_spec,
};
pub use admissionregistration::{MutatingWebhookConfigurations, ValidatingWebhookConfigurations};
pub use apiregistration::APIServices;
pub use apps::{ControllerRevisions, DaemonSets, Deployments, ReplicaSets, StatefulSets};
pub use autoscaling::HorizontalPodAutoscalers;
pub use batch::{CronJobs, Jobs};
pub use certificates::CertificateSigningRequests;
pub use coordination::Leases;
pub use discovery::EndpointSlices;
pub use networking::{IngressClasses, Ingresses, NetworkPolicies};
pub use policy::PodDisruptionBudgets;
pub use rbac::{Bindings, Roles};
pub use scheduling::PriorityClasses;
pub use storage::StorageClasses;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as ApiSelector;
use serde_json::{Value, json};
use skiff_apimachinery::selector::LabelSelector;

use super::{Column, Strategy};

/// The generic behaviour: no defaulting, validation or printing beyond what every kind gets.
pub struct Generic;

impl<K> Strategy<K> for Generic {}

/// A printer column with the usual `string` type.
pub(crate) const fn col(name: &'static str, priority: u8, description: &'static str) -> Column {
    Column {
        name,
        type_: "string",
        priority,
        description,
    }
}

/// An integer printer column.
pub(crate) const fn int(name: &'static str, priority: u8, description: &'static str) -> Column {
    Column {
        name,
        type_: "integer",
        priority,
        description,
    }
}

/// The `storage` quantity of a capacity, as written (a volume's and a claim's CAPACITY).
pub(crate) fn storage_capacity(capacity: Option<&BTreeMap<String, Quantity>>) -> String {
    capacity
        .and_then(|c| c.get("storage"))
        .map(|q| q.0.clone())
        .unwrap_or_default()
}

/// The addresses of a load balancer status (each ingress point's IP, else its hostname): the
/// same fields in a service's and an ingress's status, of different types.
macro_rules! load_balancer_addresses {
    ($status:expr) => {
        $status
            .iter()
            .flat_map(|s| s.load_balancer.iter())
            .flat_map(|lb| lb.ingress.iter().flatten())
            .filter_map(|i| i.ip.clone().or(i.hostname.clone()))
            .collect::<Vec<String>>()
    };
}
pub(crate) use load_balancer_addresses;

/// The AGE cell of a kind that prints its whole row (AGE not last among the default columns).
pub(crate) fn age_cell(
    created: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
) -> Value {
    json!(created.map_or_else(
        || "<unknown>".to_owned(),
        |t| crate::handlers::human_duration(jiff::Timestamp::now().as_second() - t.0.as_second()),
    ))
}

/// `<none>` for empty cells, as kubectl prints them.
pub(crate) fn or_none(text: String) -> Value {
    if text.is_empty() {
        json!("<none>")
    } else {
        json!(text)
    }
}

pub(crate) const TEMPLATE_COLUMNS: [Column; 3] = [
    col("Containers", 1, "Names of each container in the template."),
    col(
        "Images",
        1,
        "Images referenced by each container in the template.",
    ),
    col("Selector", 1, "Label selector for the pods."),
];

/// The CONTAINERS and IMAGES cells of a pod template.
pub(crate) fn containers_and_images(template: &PodTemplateSpec) -> (Value, Value) {
    let containers = template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = containers
        .iter()
        .filter_map(|c| c.image.as_deref())
        .collect();
    (json!(names.join(",")), json!(images.join(",")))
}

/// A label selector as its canonical string (`app=web,tier in (a,b)`).
pub(crate) fn selector_text(selector: Option<&ApiSelector>) -> Value {
    let text = selector
        .and_then(|s| LabelSelector::from_api(s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    or_none(text)
}

/// Defaults a pod template's spec.
pub(crate) fn default_template(template: &mut PodTemplateSpec) {
    if let Some(spec) = template.spec.as_mut() {
        default_pod_spec(spec);
    }
}
