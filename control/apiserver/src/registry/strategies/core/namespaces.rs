//! Namespaces: the STATUS column, the `status.phase` field selector, and their life cycle
//! (created Active and finalized by `kubernetes`, some never deleted, marked `Terminating` while
//! `crate::namespaces` empties them).

use k8s_openapi::api::core::v1::Namespace;
use serde_json::{Value, json};
use skiff_apimachinery::validation;

use crate::meta;
use crate::namespaces::IMMORTAL;
use crate::registry::strategies::col;
use crate::registry::{Column, NameRule, Strategy};

/// Namespaces.
pub struct Namespaces;

impl Strategy<Namespace> for Namespaces {
    /// Kubernetes' `ReturnDeletedObject`.
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn name_rule(&self) -> NameRule {
        validation::is_dns1123_label
    }

    /// A new namespace is Active, finalized by `kubernetes`, and labelled with its name.
    fn prepare_body_for_create(&self, obj: &mut Value) {
        let name = meta::name(obj).unwrap_or_default().to_owned();
        let Some(map) = obj.as_object_mut() else {
            return;
        };
        map.insert("status".into(), json!({ "phase": "Active" }));
        let spec = map.entry("spec").or_insert_with(|| json!({}));
        if let Some(spec) = spec.as_object_mut() {
            spec.entry("finalizers")
                .or_insert_with(|| json!(["kubernetes"]));
        }
        let m = meta::metadata_mut(obj);
        if let Some(labels) = m
            .entry("labels")
            .or_insert_with(|| json!({}))
            .as_object_mut()
        {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }

    fn validate_delete(&self, name: &str) -> Result<(), String> {
        if IMMORTAL.contains(&name) {
            return Err(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            ));
        }
        Ok(())
    }

    /// `crate::namespaces` empties it, then drops its finalizer.
    fn finalized_by_spec(&self, ns: &Namespace) -> bool {
        ns.spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| !f.is_empty())
    }

    fn prepare_for_delete(&self, ns: &mut Namespace) {
        ns.status.get_or_insert_with(Default::default).phase = Some("Terminating".into());
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.phase"]
    }

    fn field(&self, ns: &Namespace, label: &str) -> Option<String> {
        (label == "status.phase").then(|| {
            ns.status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default()
        })
    }

    fn columns(&self) -> &'static [Column] {
        const { &[col("Status", 0, "The phase of the namespace.")] }
    }

    fn cells(&self, ns: &Namespace) -> Vec<Value> {
        vec![json!(
            ns.status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Active".into())
        )]
    }
}
