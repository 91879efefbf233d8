//! ResourceQuotas: the quantities of their hard limits, and the REQUEST / LIMIT columns
//! (`used/hard` of every resource the status tracks, `limits.*` in LIMIT).

use k8s_openapi::api::core::v1::ResourceQuota;
use serde_json::{Value, json};
use skiff_apimachinery::quantity::Quantity;
use skiff_apimachinery::validation::FieldError;

use crate::registry::strategies::resources::validate_resource_quota;
use crate::registry::strategies::{age_cell, col};
use crate::registry::{Column, Strategy};

/// ResourceQuotas.
pub struct ResourceQuotas;

/// A quantity as Kubernetes prints it (its canonical form; what does not parse as written).
fn canonical(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> String {
    match q {
        None => "0".into(),
        Some(q) => Quantity::from_api(q).map_or_else(|_| q.0.clone(), |q| q.to_string()),
    }
}

impl Strategy<ResourceQuota> for ResourceQuotas {
    fn validate(&self, quota: &ResourceQuota) -> Vec<FieldError> {
        validate_resource_quota(quota)
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Name", 0, "Name must be unique within a namespace."),
                col("Age", 0, "Time since the object was created."),
                col(
                    "Request",
                    0,
                    "Request represents a minimum amount of cpu/memory that a container may consume.",
                ),
                col(
                    "Limit",
                    0,
                    "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
                ),
            ]
        }
    }

    /// `printResourceQuota`: AGE comes before REQUEST and LIMIT there, which the registry's
    /// layout (AGE after the default columns) cannot express, so the row is whole.
    fn whole_row(&self) -> bool {
        true
    }

    fn cells(&self, quota: &ResourceQuota) -> Vec<Value> {
        let status = quota.status.clone().unwrap_or_default();
        let hard = status.hard.unwrap_or_default();
        let used = status.used.unwrap_or_default();
        let (mut requests, mut limits) = (Vec::new(), Vec::new());
        // `hard` is a BTreeMap: the names come sorted, as Kubernetes sorts them.
        for (name, limit) in &hard {
            let entry = format!(
                "{name}: {}/{}",
                canonical(used.get(name)),
                canonical(Some(limit))
            );
            if name.split('.').next() == Some("limits") && name.contains('.') {
                limits.push(entry);
            } else {
                requests.push(entry);
            }
        }
        vec![
            json!(quota.metadata.name.clone().unwrap_or_default()),
            age_cell(quota.metadata.creation_timestamp.as_ref()),
            json!(requests.join(", ")),
            json!(limits.join(", ")),
        ]
    }
}
