//! PersistentVolumeClaims: defaults, validation as `ValidatePersistentVolumeClaimSpec` (access
//! modes, the storage request, selector, class, volume mode, data sources), the spec fixed once
//! created except what Kubernetes lets change (the volume name once, a class where there was
//! none, a bound claim's storage request), and the columns.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec};
use serde_json::{Value, json};
use skiff_apimachinery::quantity::Quantity;
use skiff_apimachinery::validation::{
    FieldError, FieldPath, is_dns1123_label, is_dns1123_subdomain, validate_immutable_field,
    validate_label_selector,
};

use crate::registry::strategies::core::persistentvolumes::{
    access_modes, validate_access_modes, validate_volume_mode,
};
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
        let path = FieldPath::new("spec");
        let mut errors = validate_access_modes(
            spec.access_modes.as_deref(),
            &path,
            "at least 1 access mode is required",
        );
        if let Some(selector) = &spec.selector {
            errors.extend(validate_label_selector(selector, &path.child("selector")));
        }
        errors.extend(validate_claim_spec(&spec, &path));
        errors.extend(validate_claim_sources(&spec, &path));
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

    fn validate_update(
        &self,
        new: &PersistentVolumeClaim,
        old: &PersistentVolumeClaim,
    ) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        errors.extend(validate_claim_update(new, old));
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

/// The annotation that named a claim's class before `storageClassName`.
const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// The class, volume mode and data sources of a claim's spec.
fn validate_claim_sources(spec: &PersistentVolumeClaimSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(class) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        for msg in is_dns1123_subdomain(class) {
            errors.push(FieldError::invalid(
                path.child("storageClassName"),
                class,
                msg,
            ));
        }
    }
    errors.extend(validate_volume_mode(spec.volume_mode.as_deref(), path));
    let reference = |at: FieldPath, group: Option<&str>, kind: &str, name: &str| {
        let mut errors = Vec::new();
        if name.is_empty() {
            errors.push(FieldError::required(at.child("name"), ""));
        }
        if kind.is_empty() {
            errors.push(FieldError::required(at.child("kind"), ""));
        }
        let group = group.unwrap_or_default();
        if group.is_empty() && kind != "PersistentVolumeClaim" {
            errors.push(FieldError::invalid(
                &at,
                kind,
                "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
            ));
        }
        for msg in is_dns1123_subdomain(group)
            .into_iter()
            .filter(|_| !group.is_empty())
        {
            errors.push(FieldError::invalid(at.child("apiGroup"), group, msg));
        }
        errors
    };
    if let Some(source) = &spec.data_source {
        errors.extend(reference(
            path.child("dataSource"),
            source.api_group.as_deref(),
            &source.kind,
            &source.name,
        ));
    }
    if let Some(source) = &spec.data_source_ref {
        let at = path.child("dataSourceRef");
        errors.extend(reference(
            at.clone(),
            source.api_group.as_deref(),
            &source.kind,
            &source.name,
        ));
        if let Some(namespace) = source.namespace.as_deref().filter(|n| !n.is_empty()) {
            for msg in is_dns1123_label(namespace) {
                errors.push(FieldError::invalid(at.child("namespace"), namespace, msg));
            }
        }
    }
    let data_source_path = path.child("dataSource").to_string();
    match (&spec.data_source, &spec.data_source_ref) {
        (Some(_), Some(r)) if r.namespace.as_deref().is_some_and(|n| !n.is_empty()) => {
            errors.push(FieldError::invalid(
                path,
                data_source_path,
                "may not be specified when dataSourceRef.namespace is specified",
            ));
        }
        (Some(s), Some(r))
            if s.api_group != r.api_group || s.kind != r.kind || s.name != r.name =>
        {
            errors.push(FieldError::invalid(
                path,
                data_source_path,
                "must match dataSourceRef",
            ));
        }
        _ => {}
    }
    errors
}

/// The storage request of a spec, if it parses.
fn storage_request(spec: &PersistentVolumeClaimSpec) -> Option<Quantity> {
    let requests = spec.resources.as_ref()?.requests.as_ref()?;
    Quantity::from_api(requests.get("storage")?).ok()
}

/// `ValidatePersistentVolumeClaimUpdate`'s immutability rules.
fn validate_claim_update(
    new: &PersistentVolumeClaim,
    old: &PersistentVolumeClaim,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let new_spec = new.spec.clone().unwrap_or_default();
    let old_spec = old.spec.clone().unwrap_or_default();
    let (mut new_clone, mut old_clone) = (new_spec.clone(), old_spec.clone());
    // The binder sets the volume name once.
    if old_spec
        .volume_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        old_clone.volume_name = new_clone.volume_name.clone();
    }
    let annotation = |pvc: &PersistentVolumeClaim| {
        pvc.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
            .cloned()
    };
    let (new_annotation, old_annotation) = (annotation(new), annotation(old));
    if old_annotation.is_some()
        && old_spec.storage_class_name.is_none()
        && new_spec.storage_class_name == old_annotation
        && new_annotation == old_annotation
    {
        // Moving the class from the beta annotation to the field.
        new_clone.storage_class_name = None;
    } else {
        if new_annotation != old_annotation {
            errors.push(FieldError::invalid(
                FieldPath::new("metadata")
                    .child("annotations")
                    .child(BETA_CLASS_ANNOTATION),
                new_annotation.unwrap_or_default(),
                "field is immutable",
            ));
        }
        // A claim without a class may be given one (retroactive default class).
        if old_annotation.is_none()
            && old_spec.storage_class_name.is_none()
            && new_spec.storage_class_name.is_some()
        {
            new_clone.storage_class_name = None;
        }
    }
    let bound = new.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if bound {
        // A bound claim may ask for more storage (resizing).
        let old_storage = old_spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .cloned();
        if let Some(requests) = new_clone
            .resources
            .as_mut()
            .and_then(|r| r.requests.as_mut())
        {
            match old_storage {
                Some(q) => requests.insert("storage".into(), q),
                None => requests.remove("storage"),
            };
        }
    }
    new_clone.volume_attributes_class_name = old_clone.volume_attributes_class_name.clone();
    if new_clone != old_clone {
        let before = serde_json::to_value(&old_clone).unwrap_or_default();
        let after = serde_json::to_value(&new_clone).unwrap_or_default();
        errors.push(FieldError::forbidden(
            "spec",
            format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n-\t{before}\n+\t{after}"
            ),
        ));
    }
    if let (Some(new_size), Some(old_size)) =
        (storage_request(&new_spec), storage_request(&old_spec))
        && new_size < old_size
    {
        // `RecoverVolumeExpansionFailure`: a request may go back down, but not to the capacity
        // the claim reports, so a failed expansion can be undone.
        let capacity = old
            .status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage"))
            .and_then(|q| Quantity::from_api(q).ok());
        if capacity.is_some_and(|c| new_size <= c) {
            errors.push(FieldError::forbidden(
                "spec.resources.requests.storage",
                "field can not be less than status.capacity",
            ));
        }
    }
    errors.extend(validate_immutable_field(
        &new_spec.volume_mode,
        &old_spec.volume_mode,
        &FieldPath::new("volumeMode"),
    ));
    errors
}
