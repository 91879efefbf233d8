//! ReplicaSets: defaults, validation, the `status.replicas` field selector and the replica
//! columns (which replication controllers share).

use k8s_openapi::api::apps::v1::ReplicaSet;
use serde_json::{Value, json};
use skiff_apimachinery::validation::{FieldError, FieldPath};

use crate::registry::strategies::apps::with_selector_unchanged;
use crate::registry::strategies::podspec::{ALWAYS, validate_replicas, validate_template};
use crate::registry::strategies::{
    TEMPLATE_COLUMNS, containers_and_images, default_template, int, selector_text,
};
use crate::registry::{Column, Strategy};

/// ReplicaSets.
pub struct ReplicaSets;

pub(crate) const REPLICA_COLUMNS: &[Column] = &[
    int("Desired", 0, "Number of desired pods."),
    int("Current", 0, "Number of actually running pods."),
    int("Ready", 0, "Number of ready pods."),
    TEMPLATE_COLUMNS[0],
    TEMPLATE_COLUMNS[1],
    TEMPLATE_COLUMNS[2],
];

impl Strategy<ReplicaSet> for ReplicaSets {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

    fn default(&self, rs: &mut ReplicaSet) {
        {
            let spec = &mut rs.spec;
            spec.replicas.get_or_insert(1);
            if let Some(template) = spec.template.as_mut() {
                default_template(template);
            }
        }
    }

    fn validate(&self, rs: &ReplicaSet) -> Vec<FieldError> {
        let path = FieldPath::new("spec");
        let mut errors = validate_replicas(rs.spec.replicas, &path);
        match &rs.spec.template {
            Some(template) => errors.extend(validate_template(
                Some(&rs.spec.selector),
                template,
                &path,
                ALWAYS,
            )),
            None => errors.push(FieldError::required("spec.template", "")),
        }
        errors
    }

    fn validate_update(&self, new: &ReplicaSet, old: &ReplicaSet) -> Vec<FieldError> {
        with_selector_unchanged(self.validate(new), &new.spec.selector, &old.spec.selector)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }

    fn field(&self, rs: &ReplicaSet, label: &str) -> Option<String> {
        (label == "status.replicas")
            .then(|| rs.status.as_ref().map_or(0, |s| s.replicas).to_string())
    }

    fn columns(&self) -> &'static [Column] {
        REPLICA_COLUMNS
    }

    fn cells(&self, rs: &ReplicaSet) -> Vec<Value> {
        let spec = rs.spec.clone();
        let status = rs.status.clone().unwrap_or_default();
        let (containers, images) = spec
            .template
            .as_ref()
            .map(containers_and_images)
            .unwrap_or((json!(""), json!("")));
        vec![
            json!(spec.replicas.unwrap_or(1)),
            json!(status.replicas),
            json!(status.ready_replicas.unwrap_or(0)),
            containers,
            images,
            selector_text(Some(&spec.selector)),
        ]
    }
}
