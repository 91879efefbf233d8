//! StatefulSets: defaults, validation (containers may mount the claims of the claim templates)
//! and columns.

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::Volume;
use serde_json::{Value, json};
use skiff_apimachinery::validation::{FieldError, FieldPath};

use crate::registry::strategies::apps::with_selector_unchanged;
use crate::registry::strategies::podspec::{ALWAYS, validate_replicas, validate_template};
use crate::registry::strategies::resources::decode_claim_resources;
use crate::registry::strategies::{TEMPLATE_COLUMNS, col, containers_and_images, default_template};
use crate::registry::{Column, Strategy};

/// StatefulSets.
pub struct StatefulSets;

const STATEFUL_COLUMNS: &[Column] = &[
    col("Ready", 0, "Number of the pod with ready state."),
    TEMPLATE_COLUMNS[0],
    TEMPLATE_COLUMNS[1],
];

impl Strategy<StatefulSet> for StatefulSets {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

    fn default(&self, sts: &mut StatefulSet) {
        {
            let spec = &mut sts.spec;
            spec.replicas.get_or_insert(1);
            spec.pod_management_policy
                .get_or_insert_with(|| "OrderedReady".into());
            spec.revision_history_limit.get_or_insert(10);
            let update = spec
                .update_strategy
                .get_or_insert_with(StatefulSetUpdateStrategy::default);
            if update.type_.get_or_insert_with(|| "RollingUpdate".into()) == "RollingUpdate" {
                let rolling = update
                    .rolling_update
                    .get_or_insert_with(RollingUpdateStatefulSetStrategy::default);
                rolling.partition.get_or_insert(0);
            }
            let retention = spec
                .persistent_volume_claim_retention_policy
                .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
            retention
                .when_deleted
                .get_or_insert_with(|| "Retain".into());
            retention.when_scaled.get_or_insert_with(|| "Retain".into());
            default_template(&mut spec.template);
        }
    }

    fn validate(&self, sts: &StatefulSet) -> Vec<FieldError> {
        let path = FieldPath::new("spec");
        let mut errors = validate_replicas(sts.spec.replicas, &path);
        // Containers may mount the claims the StatefulSet creates from its templates.
        let mut template = sts.spec.template.clone();
        if let Some(pod) = template.spec.as_mut() {
            let claims = sts.spec.volume_claim_templates.iter().flatten();
            let volumes = pod.volumes.get_or_insert_with(Vec::new);
            volumes.extend(
                claims
                    .filter_map(|c| c.metadata.name.clone())
                    .map(|name| Volume {
                        name,
                        ..Default::default()
                    }),
            );
        }
        errors.extend(validate_template(
            Some(&sts.spec.selector),
            &template,
            &path,
            ALWAYS,
        ));
        for (i, claim) in sts.spec.volume_claim_templates.iter().flatten().enumerate() {
            let at = path.child("volumeClaimTemplates").index(i).child("spec");
            let spec = claim.spec.clone().unwrap_or_default();
            errors.extend(decode_claim_resources(&spec, &at));
        }
        errors
    }

    fn validate_update(&self, new: &StatefulSet, old: &StatefulSet) -> Vec<FieldError> {
        with_selector_unchanged(self.validate(new), &new.spec.selector, &old.spec.selector)
    }

    fn columns(&self) -> &'static [Column] {
        STATEFUL_COLUMNS
    }

    fn cells(&self, sts: &StatefulSet) -> Vec<Value> {
        let spec = sts.spec.clone();
        let status = sts.status.clone().unwrap_or_default();
        let (containers, images) = containers_and_images(&spec.template);
        vec![
            json!(format!(
                "{}/{}",
                status.ready_replicas.unwrap_or(0),
                spec.replicas.unwrap_or(1)
            )),
            containers,
            images,
        ]
    }
}
