//! ServiceAccounts: the SECRETS column.

use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::{Value, json};

use crate::registry::strategies::int;
use crate::registry::{Column, Strategy};

/// ServiceAccounts.
pub struct ServiceAccounts;

impl Strategy<ServiceAccount> for ServiceAccounts {
    /// Kubernetes' `ReturnDeletedObject`.
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[int(
                "Secrets",
                0,
                "The number of secrets of the service account.",
            )]
        }
    }

    fn cells(&self, sa: &ServiceAccount) -> Vec<Value> {
        vec![json!(sa.secrets.as_ref().map_or(0, Vec::len))]
    }
}
