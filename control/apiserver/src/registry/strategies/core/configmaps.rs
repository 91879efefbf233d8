//! ConfigMaps: the DATA column.

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};

use crate::registry::strategies::int;
use crate::registry::{Column, Strategy};

/// ConfigMaps.
pub struct ConfigMaps;

impl Strategy<ConfigMap> for ConfigMaps {
    fn columns(&self) -> &'static [Column] {
        const { &[int("Data", 0, "The number of keys in the config map.")] }
    }

    fn cells(&self, cm: &ConfigMap) -> Vec<Value> {
        let data = cm.data.as_ref().map_or(0, |d| d.len())
            + cm.binary_data.as_ref().map_or(0, |d| d.len());
        vec![json!(data)]
    }
}
