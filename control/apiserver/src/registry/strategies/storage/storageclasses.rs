//! StorageClasses: defaults, validation as `ValidateStorageClass` (a qualified provisioner,
//! parameters within their limits, reclaim policy, binding mode, allowed topologies), the fields
//! an update may not change, and the row kube-apiserver prints (`(default)` after the default
//! class's name).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::TopologySelectorTerm;
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{Value, json};
use skiff_apimachinery::validation::{
    FieldError, FieldPath, is_qualified_name, validate_immutable_field, validate_label_name,
};

use crate::registry::strategies::{age_cell, col};
use crate::registry::{Column, Strategy};

/// At most this many parameters (`maxProvisionerParameterLen`)...
const MAX_PARAMETERS: usize = 512;
/// ...of at most this many bytes, keys and values together (`maxProvisionerParameterSize`).
const MAX_PARAMETERS_SIZE: usize = 256 * 1024;

/// The annotations that mark the cluster's default class (`IsDefaultAnnotation`).
const DEFAULT_CLASS_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

/// `ValidateStorageClass` beyond metadata.
fn validate_storage_class(sc: &StorageClass) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let provisioner = FieldPath::new("provisioner");
    if sc.provisioner.is_empty() {
        errors.push(FieldError::required(&provisioner, ""));
    } else {
        let lower = sc.provisioner.to_lowercase();
        for msg in is_qualified_name(&lower) {
            errors.push(FieldError::invalid(&provisioner, lower.as_str(), msg));
        }
    }
    errors.extend(validate_parameters(sc.parameters.as_ref()));
    let policy = sc.reclaim_policy.as_deref().unwrap_or_default();
    if !policy.is_empty() && !["Delete", "Retain"].contains(&policy) {
        errors.push(FieldError::not_supported(
            "reclaimPolicy",
            policy,
            &["Delete", "Retain"],
        ));
    }
    match sc.volume_binding_mode.as_deref() {
        None => errors.push(FieldError::required("volumeBindingMode", "")),
        Some("Immediate" | "WaitForFirstConsumer") => {}
        Some(mode) => errors.push(FieldError::not_supported(
            "volumeBindingMode",
            mode,
            &["Immediate", "WaitForFirstConsumer"],
        )),
    }
    errors.extend(validate_allowed_topologies(
        sc.allowed_topologies.as_deref().unwrap_or_default(),
        &FieldPath::new("allowedTopologies"),
    ));
    errors
}

/// `validateParameters`: a bounded count and size, no empty key.
fn validate_parameters(parameters: Option<&BTreeMap<String, String>>) -> Vec<FieldError> {
    let path = FieldPath::new("parameters");
    let parameters = parameters.cloned().unwrap_or_default();
    if parameters.len() > MAX_PARAMETERS {
        return vec![FieldError::too_long(&path, "", MAX_PARAMETERS)];
    }
    let mut errors = Vec::new();
    let mut size = 0usize;
    for (key, value) in &parameters {
        if key.is_empty() {
            errors.push(FieldError::invalid(
                &path,
                key.as_str(),
                "field can not be empty.",
            ));
        }
        size += key.len() + value.len();
    }
    if size > MAX_PARAMETERS_SIZE {
        errors.push(FieldError::too_long(&path, "", MAX_PARAMETERS_SIZE));
    }
    errors
}

/// `validateAllowedTopologies` with `ValidateTopologySelectorTerm`: each expression a label key
/// with distinct values, no key twice in a term, no term twice.
pub(crate) fn validate_allowed_topologies(
    terms: &[TopologySelectorTerm],
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut seen: Vec<BTreeMap<String, BTreeSet<String>>> = Vec::new();
    for (i, term) in terms.iter().enumerate() {
        let exprs_path = path.index(i).child("matchLabelExpressions");
        let mut term_map = BTreeMap::new();
        for (j, expr) in term.match_label_expressions.iter().flatten().enumerate() {
            let at = exprs_path.index(j);
            let values_path = at.child("values");
            if expr.values.is_empty() {
                errors.push(FieldError::required(&values_path, ""));
            }
            let mut values = BTreeSet::new();
            for (k, value) in expr.values.iter().enumerate() {
                if !values.insert(value.clone()) {
                    errors.push(FieldError::duplicate(values_path.index(k), value.as_str()));
                }
            }
            errors.extend(validate_label_name(&expr.key, &at.child("key")));
            if term_map.insert(expr.key.clone(), values).is_some() {
                errors.push(FieldError::duplicate(at.child("key"), expr.key.as_str()));
            }
        }
        if seen.contains(&term_map) {
            errors.push(FieldError::duplicate(&exprs_path, ""));
        }
        seen.push(term_map);
    }
    errors
}

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

    fn validate(&self, sc: &StorageClass) -> Vec<FieldError> {
        validate_storage_class(sc)
    }

    /// `ValidateStorageClassUpdate`: what provisions volumes of the class never changes.
    fn validate_update(&self, new: &StorageClass, old: &StorageClass) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let parameters = |sc: &StorageClass| sc.parameters.clone().unwrap_or_default();
        if parameters(new) != parameters(old) {
            errors.push(FieldError::forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        if new.provisioner != old.provisioner {
            errors.push(FieldError::forbidden(
                "provisioner",
                "updates to provisioner are forbidden.",
            ));
        }
        if new.reclaim_policy != old.reclaim_policy {
            errors.push(FieldError::forbidden(
                "reclaimPolicy",
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        errors.extend(validate_immutable_field(
            &new.volume_binding_mode,
            &old.volume_binding_mode,
            &FieldPath::new("volumeBindingMode"),
        ));
        errors
    }

    fn whole_row(&self) -> bool {
        true
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Name", 0, "Name must be unique within a namespace."),
                col("Provisioner", 0, "The provisioner of the class."),
                col("ReclaimPolicy", 0, "What happens to released volumes."),
                col("VolumeBindingMode", 0, "When volumes are bound."),
                col("AllowVolumeExpansion", 0, "Whether volumes may grow."),
                col("Age", 0, "Time since the object was created."),
            ]
        }
    }

    fn cells(&self, sc: &StorageClass) -> Vec<Value> {
        let mut name = sc.metadata.name.clone().unwrap_or_default();
        let annotations = sc.metadata.annotations.clone().unwrap_or_default();
        if DEFAULT_CLASS_ANNOTATIONS
            .iter()
            .any(|a| annotations.get(*a).is_some_and(|v| v == "true"))
        {
            name.push_str(" (default)");
        }
        vec![
            json!(name),
            json!(sc.provisioner),
            json!(sc.reclaim_policy.clone().unwrap_or_default()),
            json!(sc.volume_binding_mode.clone().unwrap_or_default()),
            json!(sc.allow_volume_expansion.unwrap_or(false)),
            age_cell(sc.metadata.creation_timestamp.as_ref()),
        ]
    }
}
