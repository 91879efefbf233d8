//! Roles and ClusterRoles: their rules (`ValidatePolicyRule`), a ClusterRole's aggregation rule,
//! and the NAME / CREATED AT row kube-apiserver prints for both.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
use skiff_apimachinery::validation::{FieldError, FieldPath, validate_label_selector};

use crate::registry::strategies::rbac::path_segment_name;
use crate::registry::{Column, NameRule, Strategy};

/// Roles and ClusterRoles.
pub struct Roles;

/// Kubernetes prints a role's creation time as a timestamp, not an age.
const ROLE_COLUMNS: &[Column] = &[
    Column {
        name: "Name",
        type_: "string",
        priority: 0,
        description: "Name must be unique within a namespace.",
    },
    Column {
        name: "Created At",
        type_: "date",
        priority: 0,
        description: "The time the role was created.",
    },
];

/// NAME and CREATED AT (RFC 3339, UTC, whole seconds).
fn role_cells(meta: &ObjectMeta) -> Vec<Value> {
    let created = meta
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    vec![json!(meta.name.clone().unwrap_or_default()), json!(created)]
}

/// `ValidatePolicyRule`: verbs always; non-resource URLs only in cluster roles and never mixed
/// with resources; resource rules need API groups and resources.
pub(crate) fn validate_policy_rule(
    rule: &PolicyRule,
    namespaced: bool,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if rule.verbs.is_empty() {
        errors.push(FieldError::required(
            path.child("verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = rule.non_resource_urls.clone().unwrap_or_default();
    let given = |list: &Option<Vec<String>>| list.as_ref().is_some_and(|l| !l.is_empty());
    if !urls.is_empty() {
        let at = path.child("nonResourceURLs");
        if namespaced {
            errors.push(FieldError::invalid(
                &at,
                urls.clone(),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if given(&rule.api_groups) || given(&rule.resources) || given(&rule.resource_names) {
            errors.push(FieldError::invalid(
                &at,
                urls,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errors;
    }
    if !given(&rule.api_groups) {
        errors.push(FieldError::required(
            path.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if !given(&rule.resources) {
        errors.push(FieldError::required(
            path.child("resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errors
}

fn validate_rules(rules: Option<&Vec<PolicyRule>>, namespaced: bool) -> Vec<FieldError> {
    let path = FieldPath::new("rules");
    rules
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, rule)| validate_policy_rule(rule, namespaced, &path.index(i)))
        .collect()
}

impl Strategy<Role> for Roles {
    fn name_rule(&self) -> NameRule {
        path_segment_name
    }

    fn validate(&self, role: &Role) -> Vec<FieldError> {
        validate_rules(role.rules.as_ref(), true)
    }

    fn columns(&self) -> &'static [Column] {
        ROLE_COLUMNS
    }

    fn whole_row(&self) -> bool {
        true
    }

    fn cells(&self, role: &Role) -> Vec<Value> {
        role_cells(&role.metadata)
    }
}

impl Strategy<ClusterRole> for Roles {
    fn name_rule(&self) -> NameRule {
        path_segment_name
    }

    fn validate(&self, role: &ClusterRole) -> Vec<FieldError> {
        let mut errors = validate_rules(role.rules.as_ref(), false);
        if let Some(rule) = &role.aggregation_rule {
            let path = FieldPath::new("aggregationRule").child("clusterRoleSelectors");
            let selectors = rule.cluster_role_selectors.as_deref().unwrap_or_default();
            if selectors.is_empty() {
                errors.push(FieldError::required(
                    &path,
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
            for (i, selector) in selectors.iter().enumerate() {
                errors.extend(validate_label_selector(selector, &path.index(i)));
            }
        }
        errors
    }

    fn columns(&self) -> &'static [Column] {
        ROLE_COLUMNS
    }

    fn whole_row(&self) -> bool {
        true
    }

    fn cells(&self, role: &ClusterRole) -> Vec<Value> {
        role_cells(&role.metadata)
    }
}
