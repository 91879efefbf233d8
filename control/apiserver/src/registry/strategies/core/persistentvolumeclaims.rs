//! PersistentVolumeClaims: defaults, the resource rules and the columns.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use serde_json::{Value, json};
use skiff_apimachinery::validation::{FieldError, FieldPath};

use crate::registry::strategies::core::persistentvolumes::access_modes;
use crate::registry::strategies::resources::{decode_resource_list, validate_claim_spec};
use crate::registry::strategies::{col, or_none, storage_capacity};
use crate::registry::{Column, Strategy};

/// PersistentVolumeClaims.
pub struct PersistentVolumeClaims;

impl Strategy<PersistentVolumeClaim> for PersistentVolumeClaims {
    /// Kubernetes' `ReturnDeletedObject`.
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn default(&self, pvc: &mut PersistentVolumeClaim) {
        let spec = pvc.spec.get_or_insert_with(Default::default);
        spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
    }

    fn validate(&self, pvc: &PersistentVolumeClaim) -> Vec<FieldError> {
        let spec = pvc.spec.clone().unwrap_or_default();
        let mut errors = validate_claim_spec(&spec, &FieldPath::new("spec"));
        let status = pvc.status.clone().unwrap_or_default();
        let status_path = FieldPath::new("status");
        errors.extend(decode_resource_list(
            status.capacity.as_ref(),
            &status_path.child("capacity"),
        ));
        errors.extend(decode_resource_list(
            status.allocated_resources.as_ref(),
            &status_path.child("allocatedResources"),
        ));
        errors
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Status", 0, "The phase of the claim."),
                col("Volume", 0, "The volume bound to the claim."),
                col("Capacity", 0, "The capacity of the bound volume."),
                col("Access Modes", 0, "The access modes of the bound volume."),
                col("StorageClass", 0, "The storage class of the claim."),
                col(
                    "VolumeAttributesClass",
                    0,
                    "The volume attributes class of the claim.",
                ),
                col("VolumeMode", 1, "Filesystem or Block."),
            ]
        }
    }

    fn cells(&self, pvc: &PersistentVolumeClaim) -> Vec<Value> {
        let spec = pvc.spec.clone().unwrap_or_default();
        let status = pvc.status.clone().unwrap_or_default();
        vec![
            json!(status.phase.unwrap_or_else(|| "Pending".into())),
            json!(spec.volume_name.unwrap_or_default()),
            json!(storage_capacity(status.capacity.as_ref())),
            json!(access_modes(status.access_modes.as_ref())),
            json!(spec.storage_class_name.unwrap_or_default()),
            or_none(spec.volume_attributes_class_name.unwrap_or_default()),
            json!(spec.volume_mode.unwrap_or_default()),
        ]
    }
}
