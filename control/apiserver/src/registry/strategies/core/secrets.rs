//! Secrets: write-only `stringData`, the default type, the `type` field selector and columns.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use crate::registry::strategies::{col, int};
use crate::registry::{Column, Strategy};

/// Secrets.
pub struct Secrets;

impl Strategy<Secret> for Secrets {
    /// `stringData` is write-only: its values go into `data` (winning over the same keys
    /// there) and it is never stored, on create and update alike.
    fn convert(&self, secret: &mut Secret) -> &'static [&'static str] {
        if let Some(strings) = secret.string_data.take() {
            let data = secret.data.get_or_insert_with(Default::default);
            for (key, value) in strings {
                data.insert(key, ByteString(value.into_bytes()));
            }
        }
        &["stringData"]
    }

    fn default(&self, secret: &mut Secret) {
        secret.type_.get_or_insert_with(|| "Opaque".into());
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["type"]
    }

    fn field(&self, secret: &Secret, label: &str) -> Option<String> {
        (label == "type").then(|| secret.type_.clone().unwrap_or_default())
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Type", 0, "The type of the secret."),
                int("Data", 0, "The number of keys in the secret."),
            ]
        }
    }

    fn cells(&self, secret: &Secret) -> Vec<Value> {
        let data = secret.data.as_ref().map_or(0, |d| d.len());
        vec![json!(secret.type_.clone().unwrap_or_default()), json!(data)]
    }
}
