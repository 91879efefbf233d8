//! PersistentVolumes: defaults, the capacity rules, and the columns (whose access-mode and
//! capacity cells claims share).

use k8s_openapi::api::core::v1::PersistentVolume;
use serde_json::{Value, json};
use skiff_apimachinery::validation::{FieldError, FieldPath};

use crate::registry::strategies::resources::validate_volume_capacity;
use crate::registry::strategies::{col, or_none, storage_capacity};
use crate::registry::{Column, Strategy};

/// PersistentVolumes.
pub struct PersistentVolumes;

pub(crate) fn access_modes(modes: Option<&Vec<String>>) -> String {
    modes
        .into_iter()
        .flatten()
        .map(|m| match m.as_str() {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Strategy<PersistentVolume> for PersistentVolumes {
    /// Kubernetes' `ReturnDeletedObject`.
    fn returns_deleted_object(&self) -> bool {
        true
    }

    /// Kubernetes' `PrepareForCreate`: a new volume is `Pending`, since now.
    fn prepare_for_create(&self, pv: &mut PersistentVolume) {
        let now = jiff::Timestamp::now();
        let now = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
        pv.status = Some(k8s_openapi::api::core::v1::PersistentVolumeStatus {
            phase: Some("Pending".into()),
            last_phase_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                now,
            )),
            ..Default::default()
        });
    }

    fn default(&self, pv: &mut PersistentVolume) {
        let spec = pv.spec.get_or_insert_with(Default::default);
        spec.persistent_volume_reclaim_policy
            .get_or_insert_with(|| "Retain".into());
        spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
    }

    fn validate(&self, pv: &PersistentVolume) -> Vec<FieldError> {
        let spec = pv.spec.clone().unwrap_or_default();
        validate_volume_capacity(&spec, &FieldPath::new("spec"))
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Capacity", 0, "The capacity of the volume."),
                col("Access Modes", 0, "The access modes of the volume."),
                col(
                    "Reclaim Policy",
                    0,
                    "What happens to the volume when released.",
                ),
                col("Status", 0, "The phase of the volume."),
                col("Claim", 0, "The claim bound to the volume."),
                col("StorageClass", 0, "The storage class of the volume."),
                col(
                    "VolumeAttributesClass",
                    0,
                    "The volume attributes class of the volume.",
                ),
                col("Reason", 0, "Why the volume is in its phase."),
                col("VolumeMode", 1, "Filesystem or Block."),
            ]
        }
    }

    fn cells(&self, pv: &PersistentVolume) -> Vec<Value> {
        let spec = pv.spec.clone().unwrap_or_default();
        let status = pv.status.clone().unwrap_or_default();
        let claim = spec
            .claim_ref
            .as_ref()
            .map(|c| {
                format!(
                    "{}/{}",
                    c.namespace.clone().unwrap_or_default(),
                    c.name.clone().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        vec![
            json!(storage_capacity(spec.capacity.as_ref())),
            json!(access_modes(spec.access_modes.as_ref())),
            json!(spec.persistent_volume_reclaim_policy.unwrap_or_default()),
            json!(status.phase.unwrap_or_else(|| "Pending".into())),
            json!(claim),
            json!(spec.storage_class_name.unwrap_or_default()),
            or_none(spec.volume_attributes_class_name.unwrap_or_default()),
            json!(status.reason.unwrap_or_default()),
            json!(spec.volume_mode.unwrap_or_default()),
        ]
    }
}
