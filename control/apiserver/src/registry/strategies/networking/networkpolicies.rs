//! NetworkPolicies: the POD-SELECTOR column.

use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::Value;

use crate::registry::strategies::{col, selector_text};
use crate::registry::{Column, Strategy};

/// NetworkPolicies.
pub struct NetworkPolicies;

impl Strategy<NetworkPolicy> for NetworkPolicies {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

    fn columns(&self) -> &'static [Column] {
        const { &[col("Pod-Selector", 0, "The pods the policy applies to.")] }
    }

    fn cells(&self, np: &NetworkPolicy) -> Vec<Value> {
        vec![selector_text(
            np.spec.as_ref().and_then(|s| s.pod_selector.as_ref()),
        )]
    }
}
