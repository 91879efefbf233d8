//! PriorityClasses: the default preemption policy and columns.

use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde_json::{Value, json};

use crate::registry::strategies::{col, int};
use crate::registry::{Column, Strategy};

/// PriorityClasses.
pub struct PriorityClasses;

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
