//! Endpoints: the ENDPOINTS column.

use k8s_openapi::api::core::v1::Endpoints as EndpointsObject;
use serde_json::Value;

use crate::registry::strategies::{col, or_none};
use crate::registry::{Column, Strategy};

/// Endpoints.
pub struct Endpoints;

impl Strategy<EndpointsObject> for Endpoints {
    fn columns(&self) -> &'static [Column] {
        const {
            &[col(
                "Endpoints",
                0,
                "The addresses and ports of the endpoints.",
            )]
        }
    }

    fn cells(&self, ep: &EndpointsObject) -> Vec<Value> {
        let mut all = Vec::new();
        for subset in ep.subsets.iter().flatten() {
            for address in subset.addresses.iter().flatten() {
                for port in subset.ports.iter().flatten() {
                    all.push(format!("{}:{}", address.ip, port.port));
                }
            }
        }
        let shown = all.iter().take(3).cloned().collect::<Vec<_>>().join(",");
        let more = all.len().saturating_sub(3);
        vec![or_none(if more > 0 {
            format!("{shown} + {more} more...")
        } else {
            shown
        })]
    }
}
