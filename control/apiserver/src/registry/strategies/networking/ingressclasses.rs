//! IngressClasses: the parameters' scope defaulted, validation as `ValidateIngressClass` (a
//! domain-prefixed controller that never changes, the parameters reference), and the CONTROLLER
//! and PARAMETERS columns.

use k8s_openapi::api::networking::v1::{IngressClass, IngressClassParametersReference};
use serde_json::{Value, json};
use skiff_apimachinery::validation::{
    FieldError, FieldPath, is_dns1123_label, is_dns1123_subdomain, is_valid_path_segment_name,
    validate_domain_prefixed_path, validate_immutable_field,
};

use crate::registry::strategies::{col, or_none};
use crate::registry::{Column, Strategy};

/// IngressClasses.
pub struct IngressClasses;

impl Strategy<IngressClass> for IngressClasses {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

    fn default(&self, class: &mut IngressClass) {
        if let Some(parameters) = class.spec.as_mut().and_then(|s| s.parameters.as_mut()) {
            parameters.scope.get_or_insert_with(|| "Cluster".into());
        }
    }

    fn validate(&self, class: &IngressClass) -> Vec<FieldError> {
        let spec = class.spec.clone().unwrap_or_default();
        let path = FieldPath::new("spec");
        let mut errors = Vec::new();
        let controller = spec.controller.unwrap_or_default();
        let at = path.child("controller");
        if controller.is_empty() {
            errors.push(FieldError::required(&at, ""));
        } else {
            if controller.len() > MAX_CONTROLLER_LENGTH {
                errors.push(FieldError::too_long(&at, "", MAX_CONTROLLER_LENGTH));
            }
            errors.extend(validate_domain_prefixed_path(&controller, &at));
        }
        if let Some(parameters) = &spec.parameters {
            errors.extend(validate_parameters(parameters, &path.child("parameters")));
        }
        errors
    }

    fn validate_update(&self, new: &IngressClass, old: &IngressClass) -> Vec<FieldError> {
        let controller = |c: &IngressClass| c.spec.as_ref().and_then(|s| s.controller.clone());
        let mut errors = validate_immutable_field(
            &controller(new).unwrap_or_default(),
            &controller(old).unwrap_or_default(),
            &FieldPath::new("spec").child("controller"),
        );
        errors.extend(self.validate(new));
        errors
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Controller", 0, "The controller of the class."),
                col("Parameters", 0, "The class's parameters."),
            ]
        }
    }

    fn cells(&self, class: &IngressClass) -> Vec<Value> {
        let spec = class.spec.clone().unwrap_or_default();
        let parameters = spec
            .parameters
            .map(|p| format!("{}/{}", p.kind, p.name))
            .unwrap_or_default();
        vec![
            json!(spec.controller.unwrap_or_default()),
            or_none(parameters),
        ]
    }
}

/// `maxLenIngressClassController`.
const MAX_CONTROLLER_LENGTH: usize = 250;

/// `validateIngressClassParametersReference`.
fn validate_parameters(
    parameters: &IngressClassParametersReference,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(group) = &parameters.api_group {
        for msg in is_dns1123_subdomain(group) {
            errors.push(FieldError::invalid(
                path.child("apiGroup"),
                group.as_str(),
                msg,
            ));
        }
    }
    for (field, value) in [("kind", &parameters.kind), ("name", &parameters.name)] {
        if value.is_empty() {
            errors.push(FieldError::required(path.child(field), ""));
        } else {
            for msg in is_valid_path_segment_name(value) {
                errors.push(FieldError::invalid(path.child(field), value.as_str(), msg));
            }
        }
    }
    let Some(scope) = &parameters.scope else {
        errors.push(FieldError::required(path.child("scope"), ""));
        return errors;
    };
    match (scope.as_str(), &parameters.namespace) {
        ("Namespace", None) => errors.push(FieldError::required(
            path.child("namespace"),
            "`parameters.scope` is set to 'Namespace'",
        )),
        ("Namespace", Some(namespace)) => {
            for msg in is_dns1123_label(namespace) {
                errors.push(FieldError::invalid(
                    path.child("namespace"),
                    namespace.as_str(),
                    msg,
                ));
            }
        }
        ("Cluster", Some(_)) => errors.push(FieldError::forbidden(
            path.child("namespace"),
            "`parameters.scope` is set to 'Cluster'",
        )),
        ("Cluster", None) => {}
        (other, _) => errors.push(FieldError::not_supported(
            path.child("scope"),
            other,
            &["Cluster", "Namespace"],
        )),
    }
    errors
}
