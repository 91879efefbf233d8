//! IngressClasses: the CONTROLLER and PARAMETERS columns.

use k8s_openapi::api::networking::v1::IngressClass;
use serde_json::{Value, json};

use crate::registry::strategies::{col, or_none};
use crate::registry::{Column, Strategy};

/// IngressClasses.
pub struct IngressClasses;

impl Strategy<IngressClass> for IngressClasses {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

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
