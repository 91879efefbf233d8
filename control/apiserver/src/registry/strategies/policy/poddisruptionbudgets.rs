//! PodDisruptionBudgets: the MIN AVAILABLE / MAX UNAVAILABLE / ALLOWED DISRUPTIONS columns.

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::registry::strategies::{col, int};
use crate::registry::{Column, Strategy};

/// PodDisruptionBudgets.
pub struct PodDisruptionBudgets;

fn int_or_string(v: Option<&IntOrString>) -> Value {
    match v {
        Some(IntOrString::Int(i)) => json!(i.to_string()),
        Some(IntOrString::String(s)) => json!(s),
        None => json!("N/A"),
    }
}

impl Strategy<PodDisruptionBudget> for PodDisruptionBudgets {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

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
