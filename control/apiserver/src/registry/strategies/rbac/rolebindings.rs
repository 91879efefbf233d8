//! RoleBindings and ClusterRoleBindings: defaults (`rbac.authorization.k8s.io` for the role and
//! for user and group subjects), validation of the role reference and the subjects, a role
//! reference fixed once created, and the ROLE / USERS / GROUPS / SERVICEACCOUNTS columns.

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use serde_json::{Value, json};
use skiff_apimachinery::validation::{FieldError, FieldPath, go_struct, is_dns1123_subdomain};

use crate::registry::strategies::col;
use crate::registry::strategies::rbac::path_segment_name;
use crate::registry::{Column, NameRule, Strategy};

/// The RBAC API group, the only one a role reference may name.
const GROUP: &str = "rbac.authorization.k8s.io";

/// RoleBindings and ClusterRoleBindings.
pub struct Bindings;

const BINDING_COLUMNS: &[Column] = &[
    col(
        "Role",
        0,
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
    ),
    col("Users", 1, "Users in the roleBinding"),
    col("Groups", 1, "Groups in the roleBinding"),
    col("ServiceAccounts", 1, "ServiceAccounts in the roleBinding"),
];

/// ROLE, then the subjects by kind (`SubjectsStrings`: service accounts as `namespace/name`).
fn binding_cells(role: &RoleRef, subjects: Option<&Vec<Subject>>) -> Vec<Value> {
    let of = |wanted: &str| {
        subjects
            .into_iter()
            .flatten()
            .filter(|s| s.kind == wanted)
            .map(|s| match wanted {
                "ServiceAccount" => {
                    format!("{}/{}", s.namespace.as_deref().unwrap_or_default(), s.name)
                }
                _ => s.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        json!(format!("{}/{}", role.kind, role.name)),
        json!(of("User")),
        json!(of("Group")),
        json!(of("ServiceAccount")),
    ]
}

/// `SetDefaults_RoleBinding` and `SetDefaults_Subject`.
fn default_binding(role: &mut RoleRef, subjects: Option<&mut Vec<Subject>>) {
    if role.api_group.as_deref().unwrap_or_default().is_empty() {
        role.api_group = Some(GROUP.into());
    }
    for subject in subjects.into_iter().flatten() {
        if subject.api_group.as_deref().unwrap_or_default().is_empty()
            && matches!(subject.kind.as_str(), "User" | "Group")
        {
            subject.api_group = Some(GROUP.into());
        }
    }
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding` beyond metadata: a cluster binding may
/// only grant a ClusterRole, and its service accounts need a namespace.
fn validate_binding(
    role: &RoleRef,
    subjects: Option<&Vec<Subject>>,
    namespaced: bool,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let path = FieldPath::new("roleRef");
    let api_group = role.api_group.as_deref().unwrap_or_default();
    if api_group != GROUP {
        errors.push(FieldError::not_supported(
            path.child("apiGroup"),
            api_group,
            &[GROUP],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&role.kind.as_str()) {
        errors.push(FieldError::not_supported(
            path.child("kind"),
            role.kind.as_str(),
            kinds,
        ));
    }
    if role.name.is_empty() {
        errors.push(FieldError::required(path.child("name"), ""));
    } else {
        for msg in path_segment_name(&role.name) {
            errors.push(FieldError::invalid(
                path.child("name"),
                role.name.as_str(),
                msg,
            ));
        }
    }
    let subjects_path = FieldPath::new("subjects");
    for (i, subject) in subjects.into_iter().flatten().enumerate() {
        errors.extend(validate_subject(
            subject,
            namespaced,
            &subjects_path.index(i),
        ));
    }
    errors
}

/// `ValidateRoleBindingSubject`.
fn validate_subject(subject: &Subject, namespaced: bool, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if subject.name.is_empty() {
        errors.push(FieldError::required(path.child("name"), ""));
    }
    let api_group = subject.api_group.as_deref().unwrap_or_default();
    match subject.kind.as_str() {
        "ServiceAccount" => {
            if !subject.name.is_empty() {
                for msg in is_dns1123_subdomain(&subject.name) {
                    errors.push(FieldError::invalid(
                        path.child("name"),
                        subject.name.as_str(),
                        msg,
                    ));
                }
            }
            if !api_group.is_empty() {
                errors.push(FieldError::not_supported(
                    path.child("apiGroup"),
                    api_group,
                    &[""],
                ));
            }
            if !namespaced && subject.namespace.as_deref().unwrap_or_default().is_empty() {
                errors.push(FieldError::required(path.child("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if api_group != GROUP {
                errors.push(FieldError::not_supported(
                    path.child("apiGroup"),
                    api_group,
                    &[GROUP],
                ));
            }
        }
        other => errors.push(FieldError::not_supported(
            path.child("kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errors
}

/// `cannot change roleRef`: a binding grants one role for its whole life.
fn validate_role_ref_unchanged(new: &RoleRef, old: &RoleRef) -> Vec<FieldError> {
    if new == old {
        return Vec::new();
    }
    let rendered = go_struct(
        "rbac.RoleRef",
        &[
            ("APIGroup", new.api_group.as_deref().unwrap_or_default()),
            ("Kind", &new.kind),
            ("Name", &new.name),
        ],
    );
    vec![FieldError::invalid_rendered(
        "roleRef",
        &rendered,
        "cannot change roleRef",
    )]
}

/// The same strategy for both kinds: they have the same fields, in two types.
macro_rules! bindings {
    ($($kind:ty => $namespaced:expr),*) => {$(
        impl Strategy<$kind> for Bindings {
            fn name_rule(&self) -> NameRule {
                path_segment_name
            }

            fn default(&self, b: &mut $kind) {
                default_binding(&mut b.role_ref, b.subjects.as_mut());
            }

            fn validate(&self, b: &$kind) -> Vec<FieldError> {
                validate_binding(&b.role_ref, b.subjects.as_ref(), $namespaced)
            }

            fn validate_update(&self, new: &$kind, old: &$kind) -> Vec<FieldError> {
                let mut errors = self.validate(new);
                errors.extend(validate_role_ref_unchanged(&new.role_ref, &old.role_ref));
                errors
            }

            fn columns(&self) -> &'static [Column] {
                BINDING_COLUMNS
            }

            fn cells(&self, b: &$kind) -> Vec<Value> {
                binding_cells(&b.role_ref, b.subjects.as_ref())
            }
        }
    )*};
}

bindings!(RoleBinding => true, ClusterRoleBinding => false);
