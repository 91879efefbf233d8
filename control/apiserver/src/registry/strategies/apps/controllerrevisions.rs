//! ControllerRevisions: the CONTROLLER and REVISION columns.

use k8s_openapi::api::apps::v1::ControllerRevision;
use serde_json::{Value, json};

use crate::registry::strategies::{col, int, or_none};
use crate::registry::{Column, Strategy};

/// ControllerRevisions.
pub struct ControllerRevisions;

impl Strategy<ControllerRevision> for ControllerRevisions {
    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Controller", 0, "The object owning the revision."),
                int("Revision", 0, "The revision number."),
            ]
        }
    }

    fn cells(&self, rev: &ControllerRevision) -> Vec<Value> {
        let owner = rev
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| format!("{}/{}", o.kind.to_lowercase(), o.name))
            .unwrap_or_default();
        vec![or_none(owner), json!(rev.revision)]
    }
}
