//! Ingresses: the CLASS / HOSTS / ADDRESS / PORTS columns.

use k8s_openapi::api::networking::v1::Ingress;
use serde_json::{Value, json};

use crate::registry::strategies::load_balancer_addresses;
use crate::registry::strategies::{col, or_none};
use crate::registry::{Column, Strategy};

/// Ingresses.
pub struct Ingresses;

impl Strategy<Ingress> for Ingresses {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

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
        let addresses = load_balancer_addresses!(ing.status);
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
