//! PersistentVolumes: defaults, validation as `ValidatePersistentVolumeSpec` (access modes,
//! capacity, exactly one volume source, reclaim policy, node affinity, class, volume mode), the
//! source fixed once created, and the columns (whose access-mode and capacity cells claims
//! share).

use k8s_openapi::api::core::v1::{NodeSelector, PersistentVolume, PersistentVolumeSpec};
use serde_json::{Value, json};
use skiff_apimachinery::validation::{
    FieldError, FieldPath, is_dns1123_subdomain, validate_immutable_field, validate_label_name,
};

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
        let path = FieldPath::new("spec");
        let mut errors = validate_access_modes(spec.access_modes.as_deref(), &path, "");
        errors.extend(validate_volume_capacity(&spec, &path));
        errors.extend(validate_volume_spec(&spec, &path));
        errors
    }

    /// `ValidatePersistentVolumeUpdate`: the source, the volume mode and a node affinity once
    /// set stay as they are.
    fn validate_update(&self, new: &PersistentVolume, old: &PersistentVolume) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        let (new_spec, old_spec) = (
            new.spec.clone().unwrap_or_default(),
            old.spec.clone().unwrap_or_default(),
        );
        let (new_source, old_source) = (volume_source(&new_spec), volume_source(&old_spec));
        if new_source != old_source {
            errors.push(FieldError::forbidden(
                "spec.persistentvolumesource",
                format!(
                    "spec.persistentvolumesource is immutable after creation\n-\t{}\n+\t{}",
                    Value::Object(old_source),
                    Value::Object(new_source)
                ),
            ));
        }
        // Kubernetes names these two paths without `spec.`.
        errors.extend(validate_immutable_field(
            &new_spec.volume_mode,
            &old_spec.volume_mode,
            &FieldPath::new("volumeMode"),
        ));
        if old_spec.node_affinity.is_some() {
            errors.extend(validate_immutable_field(
                &new_spec.node_affinity,
                &old_spec.node_affinity,
                &FieldPath::new("nodeAffinity"),
            ));
        }
        errors
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

/// The access modes Kubernetes knows, sorted as its messages list them.
const ACCESS_MODES: [&str; 4] = [
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// A volume's or a claim's access modes: required (with the claim's `detail`), known, and
/// `ReadWriteOncePod` alone.
pub(crate) fn validate_access_modes(
    modes: Option<&[String]>,
    path: &FieldPath,
    detail: &str,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let modes = modes.unwrap_or_default();
    let at = path.child("accessModes");
    if modes.is_empty() {
        errors.push(FieldError::required(&at, detail));
    }
    let (mut once_pod, mut others) = (false, false);
    for mode in modes {
        if !ACCESS_MODES.contains(&mode.as_str()) {
            errors.push(FieldError::not_supported(&at, mode.as_str(), &ACCESS_MODES));
        } else if mode == "ReadWriteOncePod" {
            once_pod = true;
        } else {
            others = true;
        }
    }
    if once_pod && others {
        errors.push(FieldError::forbidden(
            &at,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errors
}

/// `Block` or `Filesystem`.
pub(crate) fn validate_volume_mode(mode: Option<&str>, path: &FieldPath) -> Vec<FieldError> {
    match mode {
        None | Some("Block" | "Filesystem") => Vec::new(),
        Some(other) => vec![FieldError::not_supported(
            path.child("volumeMode"),
            other,
            &["Block", "Filesystem"],
        )],
    }
}

/// The spec fields that are not the volume source (`PersistentVolumeSource` is embedded).
const NOT_SOURCE: [&str; 9] = [
    "accessModes",
    "capacity",
    "claimRef",
    "mountOptions",
    "nodeAffinity",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "volumeAttributesClassName",
    "volumeMode",
];

/// The order in which `ValidatePersistentVolumeSpec` looks at the sources.
const SOURCE_ORDER: [&str; 22] = [
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

/// The volume sources a spec sets, by field name.
fn volume_source(spec: &PersistentVolumeSpec) -> serde_json::Map<String, Value> {
    let Ok(Value::Object(mut fields)) = serde_json::to_value(spec) else {
        return serde_json::Map::new();
    };
    fields.retain(|name, value| !NOT_SOURCE.contains(&name.as_str()) && !value.is_null());
    fields
}

/// The rest of `ValidatePersistentVolumeSpec`: one source, its required fields for the sources
/// skiff's nodes can use, reclaim policy, node affinity, class and volume mode.
fn validate_volume_spec(spec: &PersistentVolumeSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let policy = spec
        .persistent_volume_reclaim_policy
        .as_deref()
        .unwrap_or_default();
    if !policy.is_empty() && !["Delete", "Recycle", "Retain"].contains(&policy) {
        errors.push(FieldError::not_supported(
            path.child("persistentVolumeReclaimPolicy"),
            policy,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    let mut affinity = false;
    if let Some(node_affinity) = &spec.node_affinity {
        affinity = true;
        let at = path.child("nodeAffinity").child("required");
        match &node_affinity.required {
            Some(selector) => errors.extend(validate_node_selector(selector, &at)),
            None => errors.push(FieldError::required(
                &at,
                "must specify required node constraints",
            )),
        }
    }
    // Sources in Kubernetes' order: the first counts, later ones are "more than 1".
    let given = volume_source(spec);
    let mut sources: Vec<&str> = SOURCE_ORDER
        .iter()
        .copied()
        .filter(|s| given.contains_key(*s))
        .collect();
    sources.extend(
        given
            .keys()
            .map(String::as_str)
            .filter(|s| !SOURCE_ORDER.contains(s)),
    );
    for (i, name) in sources.iter().enumerate() {
        if i > 0 {
            errors.push(FieldError::forbidden(
                path.child(name),
                "may not specify more than 1 volume type",
            ));
        }
    }
    let required = |errors: &mut Vec<FieldError>, at: FieldPath, value: &str| {
        if value.is_empty() {
            errors.push(FieldError::required(at, ""));
        }
    };
    match sources.first().copied() {
        None => errors.push(FieldError::required(path, "must specify a volume type")),
        Some("hostPath") => {
            let host = spec.host_path.clone().unwrap_or_default();
            required(
                &mut errors,
                path.child("hostPath").child("path"),
                &host.path,
            );
            let kinds = [
                "",
                "BlockDevice",
                "CharDevice",
                "Directory",
                "DirectoryOrCreate",
                "File",
                "FileOrCreate",
                "Socket",
            ];
            if let Some(kind) = &host.type_
                && !kinds.contains(&kind.as_str())
            {
                errors.push(FieldError::not_supported(
                    path.child("hostPath").child("type"),
                    kind.as_str(),
                    &kinds,
                ));
            }
            if policy == "Recycle"
                && host.path.trim_end_matches('/').is_empty()
                && !host.path.is_empty()
            {
                errors.push(FieldError::forbidden(
                    path.child("persistentVolumeReclaimPolicy"),
                    "may not be 'recycle' for a hostPath mount of '/'",
                ));
            }
        }
        Some("local") => {
            let local = spec.local.clone().unwrap_or_default();
            required(&mut errors, path.child("local").child("path"), &local.path);
            if !affinity {
                errors.push(FieldError::required(
                    path.child("nodeAffinity"),
                    "Local volume requires node affinity",
                ));
            }
        }
        Some("nfs") => {
            let nfs = spec.nfs.clone().unwrap_or_default();
            required(&mut errors, path.child("nfs").child("server"), &nfs.server);
            let at = path.child("nfs").child("path");
            if nfs.path.is_empty() {
                errors.push(FieldError::required(&at, ""));
            } else if !nfs.path.starts_with('/') {
                errors.push(FieldError::invalid(
                    &at,
                    nfs.path.as_str(),
                    "must be an absolute path",
                ));
            }
        }
        Some("csi") => {
            let csi = spec.csi.clone().unwrap_or_default();
            let at = path.child("csi");
            if csi.driver.is_empty() {
                errors.push(FieldError::required(at.child("driver"), ""));
            }
            required(&mut errors, at.child("volumeHandle"), &csi.volume_handle);
        }
        Some(_) => {}
    }
    let class = spec.storage_class_name.as_deref().unwrap_or_default();
    if !class.is_empty() {
        for msg in is_dns1123_subdomain(class) {
            errors.push(FieldError::invalid(
                path.child("storageClassName"),
                class,
                msg,
            ));
        }
    }
    errors.extend(validate_volume_mode(spec.volume_mode.as_deref(), path));
    errors
}

/// `ValidateNodeSelector`: at least one term, each requirement with an operator Kubernetes
/// knows and the values it needs.
pub(crate) fn validate_node_selector(selector: &NodeSelector, path: &FieldPath) -> Vec<FieldError> {
    let terms_path = path.child("nodeSelectorTerms");
    if selector.node_selector_terms.is_empty() {
        return vec![FieldError::required(
            &terms_path,
            "must have at least one node selector term",
        )];
    }
    let mut errors = Vec::new();
    for (i, term) in selector.node_selector_terms.iter().enumerate() {
        let at = terms_path.index(i);
        for (j, req) in term.match_expressions.iter().flatten().enumerate() {
            let at = at.child("matchExpressions").index(j);
            let values = req.values.as_deref().unwrap_or_default();
            match req.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => errors.push(FieldError::required(
                    at.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                )),
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    errors.push(FieldError::forbidden(
                        at.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ))
                }
                "Gt" | "Lt" if values.len() != 1 => errors.push(FieldError::required(
                    at.child("values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                )),
                "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
                other => errors.push(FieldError::invalid(
                    at.child("operator"),
                    other,
                    "not a valid selector operator",
                )),
            }
            errors.extend(validate_label_name(&req.key, &at.child("key")));
        }
    }
    errors
}
