//! ReplicationControllers: defaults (the selector from the template's labels) and the
//! replica columns.

use k8s_openapi::api::core::v1::ReplicationController;
use serde_json::{Value, json};

use crate::registry::strategies::apps::REPLICA_COLUMNS;
use crate::registry::strategies::default_template;
use crate::registry::{Column, Strategy};

/// ReplicationControllers.
pub struct ReplicationControllers;

impl Strategy<ReplicationController> for ReplicationControllers {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

    fn default(&self, rc: &mut ReplicationController) {
        if let Some(spec) = rc.spec.as_mut() {
            spec.replicas.get_or_insert(1);
            if let Some(template) = spec.template.as_mut() {
                // An RC without a selector selects its template's labels.
                if spec.selector.is_none() {
                    spec.selector = template.metadata.as_ref().and_then(|m| m.labels.clone());
                }
                default_template(template);
            }
        }
    }

    fn columns(&self) -> &'static [Column] {
        &REPLICA_COLUMNS[..3]
    }

    fn cells(&self, rc: &ReplicationController) -> Vec<Value> {
        let spec = rc.spec.clone().unwrap_or_default();
        let status = rc.status.clone().unwrap_or_default();
        vec![
            json!(spec.replicas.unwrap_or(1)),
            json!(status.replicas),
            json!(status.ready_replicas.unwrap_or(0)),
        ]
    }
}
