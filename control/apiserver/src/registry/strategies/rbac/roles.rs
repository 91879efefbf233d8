//! Roles and ClusterRoles: their names only need to be path segments.

use k8s_openapi::api::rbac::v1::{ClusterRole, Role};

use crate::registry::strategies::rbac::path_segment_name;
use crate::registry::{NameRule, Strategy};

/// Roles and ClusterRoles.
pub struct Roles;

impl Strategy<Role> for Roles {
    fn name_rule(&self) -> NameRule {
        path_segment_name
    }
}

impl Strategy<ClusterRole> for Roles {
    fn name_rule(&self) -> NameRule {
        path_segment_name
    }
}
