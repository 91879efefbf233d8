//! StorageClasses: defaults and columns.

use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{Value, json};

use crate::registry::strategies::col;
use crate::registry::{Column, Strategy};

/// StorageClasses.
pub struct StorageClasses;

impl Strategy<StorageClass> for StorageClasses {
    /// Kubernetes' `ReturnDeletedObject`.
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn default(&self, sc: &mut StorageClass) {
        sc.reclaim_policy.get_or_insert_with(|| "Delete".into());
        sc.volume_binding_mode
            .get_or_insert_with(|| "Immediate".into());
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Provisioner", 0, "The provisioner of the class."),
                col("ReclaimPolicy", 0, "What happens to released volumes."),
                col("VolumeBindingMode", 0, "When volumes are bound."),
                col("AllowVolumeExpansion", 0, "Whether volumes may grow."),
            ]
        }
    }

    fn cells(&self, sc: &StorageClass) -> Vec<Value> {
        vec![
            json!(sc.provisioner),
            json!(sc.reclaim_policy.clone().unwrap_or_default()),
            json!(sc.volume_binding_mode.clone().unwrap_or_default()),
            json!(sc.allow_volume_expansion.unwrap_or(false)),
        ]
    }
}
