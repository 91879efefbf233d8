//! Leases: the HOLDER column.

use k8s_openapi::api::coordination::v1::Lease;
use serde_json::{Value, json};

use crate::registry::strategies::col;
use crate::registry::{Column, Strategy};

/// Leases.
pub struct Leases;

impl Strategy<Lease> for Leases {
    fn columns(&self) -> &'static [Column] {
        const { &[col("Holder", 0, "Who holds the lease.")] }
    }

    fn cells(&self, lease: &Lease) -> Vec<Value> {
        vec![json!(
            lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default()
        )]
    }
}
