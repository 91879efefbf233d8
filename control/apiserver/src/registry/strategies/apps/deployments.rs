//! Deployments: defaults (the rolling update), validation and columns.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use skiff_apimachinery::validation::{FieldError, FieldPath};

use crate::registry::strategies::apps::with_selector_unchanged;
use crate::registry::strategies::podspec::{ALWAYS, validate_replicas, validate_template};
use crate::registry::strategies::{
    TEMPLATE_COLUMNS, col, containers_and_images, default_template, int, selector_text,
};
use crate::registry::{Column, Strategy};

/// Deployments.
pub struct Deployments;

fn percent(p: &str) -> IntOrString {
    IntOrString::String(p.into())
}

const DEPLOYMENT_COLUMNS: &[Column] = &[
    col("Ready", 0, "Number of the pod with ready state."),
    int(
        "Up-to-date",
        0,
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    int(
        "Available",
        0,
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    TEMPLATE_COLUMNS[0],
    TEMPLATE_COLUMNS[1],
    TEMPLATE_COLUMNS[2],
];

impl Strategy<Deployment> for Deployments {
    /// Spec changes and annotation changes (Kubernetes copies a Deployment's annotations to
    /// its ReplicaSets).
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::Tracked {
            metadata: &["annotations"],
        }
    }

    fn default(&self, d: &mut Deployment) {
        let spec = &mut d.spec;
        spec.replicas.get_or_insert(1);
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        let strategy = spec
            .strategy
            .get_or_insert_with(DeploymentStrategy::default);
        let kind = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
        if kind == "RollingUpdate" {
            let rolling = strategy
                .rolling_update
                .get_or_insert_with(RollingUpdateDeployment::default);
            rolling.max_surge.get_or_insert_with(|| percent("25%"));
            rolling
                .max_unavailable
                .get_or_insert_with(|| percent("25%"));
        }
        default_template(&mut spec.template);
    }

    fn validate(&self, d: &Deployment) -> Vec<FieldError> {
        let path = FieldPath::new("spec");
        let mut errors = validate_replicas(d.spec.replicas, &path);
        errors.extend(validate_template(
            Some(&d.spec.selector),
            &d.spec.template,
            &path,
            ALWAYS,
        ));
        errors
    }

    fn validate_update(&self, new: &Deployment, old: &Deployment) -> Vec<FieldError> {
        with_selector_unchanged(self.validate(new), &new.spec.selector, &old.spec.selector)
    }

    fn columns(&self) -> &'static [Column] {
        DEPLOYMENT_COLUMNS
    }

    fn cells(&self, d: &Deployment) -> Vec<Value> {
        let status = d.status.clone().unwrap_or_default();
        let (containers, images) = containers_and_images(&d.spec.template);
        vec![
            json!(format!(
                "{}/{}",
                status.ready_replicas.unwrap_or(0),
                d.spec.replicas.unwrap_or(1)
            )),
            json!(status.updated_replicas.unwrap_or(0)),
            json!(status.available_replicas.unwrap_or(0)),
            containers,
            images,
            selector_text(Some(&d.spec.selector)),
        ]
    }
}
