//! DaemonSets: defaults, validation and columns.

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use skiff_apimachinery::validation::{FieldError, FieldPath};

use crate::registry::strategies::apps::with_selector_unchanged;
use crate::registry::strategies::podspec::{ALWAYS, validate_template};
use crate::registry::strategies::{
    TEMPLATE_COLUMNS, col, containers_and_images, default_template, int, or_none, selector_text,
};
use crate::registry::{Column, Strategy};

/// DaemonSets.
pub struct DaemonSets;

const DAEMON_COLUMNS: &[Column] = &[
    int(
        "Desired",
        0,
        "The number of nodes that should be running the daemon pod.",
    ),
    int(
        "Current",
        0,
        "The number of nodes running at least one daemon pod.",
    ),
    int(
        "Ready",
        0,
        "The number of nodes running a ready daemon pod.",
    ),
    int(
        "Up-to-date",
        0,
        "The number of nodes running the updated daemon pod.",
    ),
    int(
        "Available",
        0,
        "The number of nodes running an available daemon pod.",
    ),
    col("Node Selector", 0, "The node selector of the daemon pods."),
    TEMPLATE_COLUMNS[0],
    TEMPLATE_COLUMNS[1],
    TEMPLATE_COLUMNS[2],
];

impl Strategy<DaemonSet> for DaemonSets {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

    fn default(&self, ds: &mut DaemonSet) {
        {
            let spec = &mut ds.spec;
            spec.revision_history_limit.get_or_insert(10);
            let update = spec
                .update_strategy
                .get_or_insert_with(DaemonSetUpdateStrategy::default);
            if update.type_.get_or_insert_with(|| "RollingUpdate".into()) == "RollingUpdate" {
                let rolling = update
                    .rolling_update
                    .get_or_insert_with(RollingUpdateDaemonSet::default);
                rolling.max_unavailable.get_or_insert(IntOrString::Int(1));
                rolling.max_surge.get_or_insert(IntOrString::Int(0));
            }
            default_template(&mut spec.template);
        }
    }

    fn validate(&self, ds: &DaemonSet) -> Vec<FieldError> {
        validate_template(
            Some(&ds.spec.selector),
            &ds.spec.template,
            &FieldPath::new("spec"),
            ALWAYS,
        )
    }

    fn validate_update(&self, new: &DaemonSet, old: &DaemonSet) -> Vec<FieldError> {
        with_selector_unchanged(self.validate(new), &new.spec.selector, &old.spec.selector)
    }

    fn columns(&self) -> &'static [Column] {
        DAEMON_COLUMNS
    }

    fn cells(&self, ds: &DaemonSet) -> Vec<Value> {
        let spec = ds.spec.clone();
        let status = ds.status.clone().unwrap_or_default();
        let node_selector = spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.node_selector.clone())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let (containers, images) = containers_and_images(&spec.template);
        vec![
            json!(status.desired_number_scheduled),
            json!(status.current_number_scheduled),
            json!(status.number_ready),
            json!(status.updated_number_scheduled.unwrap_or(0)),
            json!(status.number_available.unwrap_or(0)),
            or_none(node_selector),
            containers,
            images,
            selector_text(Some(&spec.selector)),
        ]
    }
}
