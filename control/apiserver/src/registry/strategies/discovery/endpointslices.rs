//! EndpointSlices: the ADDRESSTYPE / PORTS / ENDPOINTS columns.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

use crate::registry::strategies::{col, or_none};
use crate::registry::{Column, Strategy};

/// EndpointSlices.
pub struct EndpointSlices;

impl Strategy<EndpointSlice> for EndpointSlices {
    /// Anything but metadata, and label changes.
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::Tracked {
            metadata: &["labels"],
        }
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("AddressType", 0, "The type of addresses in the slice."),
                col("Ports", 0, "The ports of the slice."),
                col("Endpoints", 0, "The addresses of the slice."),
            ]
        }
    }

    fn cells(&self, slice: &EndpointSlice) -> Vec<Value> {
        let ports: Vec<String> = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.port.map(|n| n.to_string()))
            .collect();
        let addresses: Vec<String> = slice
            .endpoints
            .iter()
            .flatten()
            .flat_map(|e| e.addresses.iter().cloned())
            .collect();
        vec![
            json!(slice.address_type),
            or_none(ports.join(",")),
            or_none(addresses.join(",")),
        ]
    }
}
