//! `rbac.authorization.k8s.io/v1`, and the name rule all its kinds share.

mod rolebindings;
mod roles;

pub use rolebindings::Bindings;
pub use roles::Roles;

/// RBAC names only need to be usable as one URL path segment (Kubernetes'
/// `ValidatePathSegmentName`).
pub(crate) fn path_segment_name(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name == "." || name == ".." {
        problems.push(format!("may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            problems.push(format!("may not contain '{bad}'"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbac_names_only_need_to_be_path_segments() {
        assert!(path_segment_name("system:controller:foo").is_empty());
        assert_eq!(path_segment_name("a/b"), ["may not contain '/'"]);
        assert_eq!(path_segment_name(".."), ["may not be '..'"]);
    }
}
