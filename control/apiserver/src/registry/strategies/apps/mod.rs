//! `apps/v1`, one module per resource, and what the controllers among them share.

mod controllerrevisions;
mod daemonsets;
mod deployments;
mod replicasets;
mod statefulsets;

pub use controllerrevisions::ControllerRevisions;
pub use daemonsets::DaemonSets;
pub use deployments::Deployments;
pub(crate) use replicasets::REPLICA_COLUMNS;
pub use replicasets::ReplicaSets;
pub use statefulsets::StatefulSets;

use skiff_apimachinery::validation::FieldError;

/// A controller's update: the create rules (`errors`), and `spec.selector` is immutable once
/// set.
pub(crate) fn with_selector_unchanged<T: PartialEq + serde::Serialize>(
    mut errors: Vec<FieldError>,
    new: &T,
    old: &T,
) -> Vec<FieldError> {
    if new != old {
        errors.push(FieldError::invalid(
            "spec.selector",
            serde_json::to_value(new).unwrap_or_default(),
            "field is immutable",
        ));
    }
    errors
}
