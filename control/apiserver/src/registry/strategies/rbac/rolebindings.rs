//! RoleBindings and ClusterRoleBindings: path-segment names and the ROLE / USERS / GROUPS /
//! SERVICEACCOUNTS columns.

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, Subject};
use serde_json::{Value, json};

use crate::registry::strategies::col;
use crate::registry::strategies::rbac::path_segment_name;
use crate::registry::{Column, NameRule, Strategy};

/// RoleBindings and ClusterRoleBindings.
pub struct Bindings;

const BINDING_COLUMNS: &[Column] = &[
    col("Role", 0, "The role granted."),
    col("Users", 1, "The users granted the role."),
    col("Groups", 1, "The groups granted the role."),
    col(
        "ServiceAccounts",
        1,
        "The service accounts granted the role.",
    ),
];

fn binding_cells(kind: &str, role: &str, subjects: Option<&Vec<Subject>>) -> Vec<Value> {
    let of = |wanted: &str| {
        subjects
            .into_iter()
            .flatten()
            .filter(|s| s.kind == wanted)
            .map(|s| match (&s.namespace, wanted) {
                (Some(ns), "ServiceAccount") => format!("{ns}/{}", s.name),
                _ => s.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        json!(format!("{kind}/{role}")),
        json!(of("User")),
        json!(of("Group")),
        json!(of("ServiceAccount")),
    ]
}

/// The same strategy for both kinds: they have the same fields, in two types.
macro_rules! bindings {
    ($($kind:ty),*) => {$(
        impl Strategy<$kind> for Bindings {
            fn name_rule(&self) -> NameRule {
                path_segment_name
            }

            fn columns(&self) -> &'static [Column] {
                BINDING_COLUMNS
            }

            fn cells(&self, b: &$kind) -> Vec<Value> {
                binding_cells(&b.role_ref.kind, &b.role_ref.name, b.subjects.as_ref())
            }
        }
    )*};
}

bindings!(RoleBinding, ClusterRoleBinding);
