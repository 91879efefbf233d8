//! Ingresses: validation as `ValidateIngressCreate` / `ValidateIngressUpdate` (rules, hosts and
//! wildcard hosts, paths by path type, backends, TLS, the class) and the CLASS / HOSTS / ADDRESS /
//! PORTS columns.

use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend, IngressSpec};
use serde_json::{Value, json};
use skiff_apimachinery::validation::{
    FieldError, FieldPath, is_dns1035_label, is_dns1123_subdomain, is_valid_path_segment_name,
    is_valid_port_name, is_valid_port_num, is_wildcard_dns1123_subdomain,
};

use crate::registry::strategies::load_balancer_addresses;
use crate::registry::strategies::{col, or_none};
use crate::registry::{Column, Strategy};

/// Ingresses.
pub struct Ingresses;

impl Strategy<Ingress> for Ingresses {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

    fn validate(&self, ing: &Ingress) -> Vec<FieldError> {
        let mut errors = validate_ingress_spec(&ing.spec.clone().unwrap_or_default(), &[]);
        // Only on create: the deprecated annotation may not contradict the field.
        let annotation = ing
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CLASS_ANNOTATION));
        let class = ing
            .spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.as_ref());
        if let (Some(annotation), Some(class)) = (annotation, class)
            && annotation != class
        {
            errors.push(FieldError::invalid(
                FieldPath::new("annotations").child(CLASS_ANNOTATION),
                annotation.as_str(),
                "must match `ingressClassName` when both are specified",
            ));
        }
        errors
    }

    fn validate_update(&self, new: &Ingress, old: &Ingress) -> Vec<FieldError> {
        // Stored TLS secret names that no longer pass keep being accepted (Kubernetes'
        // `AllowInvalidSecretName`).
        let old_tls: Vec<String> = old
            .spec
            .iter()
            .flat_map(|s| s.tls.iter().flatten())
            .filter_map(|t| t.secret_name.clone())
            .collect();
        validate_ingress_spec(&new.spec.clone().unwrap_or_default(), &old_tls)
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Class", 0, "The ingress class."),
                col("Hosts", 0, "The hosts the ingress serves."),
                col("Address", 0, "The addresses the ingress is reachable at."),
                col("Ports", 0, "The ports the ingress serves."),
            ]
        }
    }

    fn cells(&self, ing: &Ingress) -> Vec<Value> {
        let spec = ing.spec.clone().unwrap_or_default();
        let hosts: Vec<String> = spec
            .rules
            .iter()
            .flatten()
            .filter_map(|r| r.host.clone())
            .collect();
        let hosts = if hosts.is_empty() {
            "*".to_owned()
        } else {
            hosts.join(",")
        };
        let addresses = load_balancer_addresses!(ing.status);
        let ports = if spec.tls.as_ref().is_some_and(|t| !t.is_empty()) {
            "80, 443"
        } else {
            "80"
        };
        vec![
            or_none(spec.ingress_class_name.unwrap_or_default()),
            json!(hosts),
            json!(addresses.join(",")),
            json!(ports),
        ]
    }
}

/// The annotation that named an ingress's class before `ingressClassName`.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

const SUPPORTED_PATH_TYPES: [&str; 3] = ["Exact", "ImplementationSpecific", "Prefix"];

/// `ValidateIngressSpec`; `allowed_secrets` are TLS secret names accepted as they are.
fn validate_ingress_spec(spec: &IngressSpec, allowed_secrets: &[String]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let path = FieldPath::new("spec");
    let rules = spec.rules.as_deref().unwrap_or_default();
    if rules.is_empty() && spec.default_backend.is_none() {
        let rendered = if spec.rules.is_some() {
            "[]networking.IngressRule{}"
        } else {
            "[]networking.IngressRule(nil)"
        };
        errors.push(FieldError::invalid_rendered(
            &path,
            rendered,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(backend) = &spec.default_backend {
        errors.extend(validate_backend(backend, &path.child("defaultBackend")));
    }
    for (i, rule) in rules.iter().enumerate() {
        let at = path.child("rules").index(i);
        let host = rule.host.as_deref().unwrap_or_default();
        errors.extend(validate_host(host, &at.child("host"), true));
        if let Some(http) = &rule.http {
            let paths_path = at.child("http").child("paths");
            if http.paths.is_empty() {
                errors.push(FieldError::required(&paths_path, ""));
            }
            for (j, p) in http.paths.iter().enumerate() {
                errors.extend(validate_path(p, &paths_path.index(j)));
            }
        }
    }
    for (i, tls) in spec.tls.iter().flatten().enumerate() {
        let at = path.child("tls").index(i);
        for (j, host) in tls.hosts.iter().flatten().enumerate() {
            errors.extend(validate_host(host, &at.child("hosts").index(j), false));
        }
        let secret = tls.secret_name.as_deref().unwrap_or_default();
        if !secret.is_empty() && !allowed_secrets.iter().any(|s| s == secret) {
            for msg in is_dns1123_subdomain(secret) {
                errors.push(FieldError::invalid(at.child("secretName"), secret, msg));
            }
        }
    }
    if let Some(class) = &spec.ingress_class_name {
        for msg in is_dns1123_subdomain(class) {
            errors.push(FieldError::invalid(
                path.child("ingressClassName"),
                class.as_str(),
                msg,
            ));
        }
    }
    errors
}

/// A rule's or a TLS entry's host: a DNS subdomain or a wildcard one (`*.example.com`); a rule's
/// host may not be an IP address.
fn validate_host(host: &str, path: &FieldPath, rule: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if host.is_empty() {
        return errors;
    }
    if rule && host.parse::<std::net::IpAddr>().is_ok() {
        errors.push(FieldError::invalid(
            path,
            host,
            "must be a DNS name, not an IP address",
        ));
    }
    let problems = if host.contains('*') {
        is_wildcard_dns1123_subdomain(host)
    } else {
        is_dns1123_subdomain(host)
    };
    errors.extend(
        problems
            .into_iter()
            .map(|msg| FieldError::invalid(path, host, msg)),
    );
    errors
}

/// `validateHTTPIngressPath`: the path type decides what the path may be.
fn validate_path(p: &HTTPIngressPath, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let value = p.path.as_deref().unwrap_or_default();
    let at = path.child("path");
    match p.path_type.as_str() {
        "" => {
            return vec![FieldError::required(
                path.child("pathType"),
                "pathType must be specified",
            )];
        }
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errors.push(FieldError::invalid(&at, value, "must be an absolute path"));
            }
            for bad in ["//", "/./", "/../", "%2f", "%2F"] {
                if value.contains(bad) {
                    errors.push(FieldError::invalid(
                        &at,
                        value,
                        format!("must not contain '{bad}'"),
                    ));
                }
            }
            for bad in ["/..", "/."] {
                if value.ends_with(bad) {
                    errors.push(FieldError::invalid(
                        &at,
                        value,
                        format!("cannot end with '{bad}'"),
                    ));
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errors.push(FieldError::invalid(&at, value, "must be an absolute path"));
            }
        }
        other => errors.push(FieldError::not_supported(
            path.child("pathType"),
            other,
            &SUPPORTED_PATH_TYPES,
        )),
    }
    errors.extend(validate_backend(&p.backend, &path.child("backend")));
    errors
}

/// `validateIngressBackend`: a service (by name, and port by name or number) or a resource.
fn validate_backend(backend: &IngressBackend, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match (&backend.resource, &backend.service) {
        (Some(_), Some(_)) => {
            return vec![FieldError::invalid(
                path,
                "",
                "cannot set both resource and service backends",
            )];
        }
        (Some(resource), None) => {
            let at = path.child("resource");
            if let Some(group) = &resource.api_group {
                for msg in is_dns1123_subdomain(group) {
                    errors.push(FieldError::invalid(
                        at.child("apiGroup"),
                        group.as_str(),
                        msg,
                    ));
                }
            }
            for (field, value) in [("kind", &resource.kind), ("name", &resource.name)] {
                if value.is_empty() {
                    errors.push(FieldError::required(at.child(field), ""));
                }
                for msg in is_valid_path_segment_name(value) {
                    errors.push(FieldError::invalid(at.child(field), value.as_str(), msg));
                }
            }
        }
        (None, Some(service)) => {
            let at = path.child("service");
            if service.name.is_empty() {
                errors.push(FieldError::required(at.child("name"), ""));
            } else {
                // Service names are DNS-1035 labels (`RelaxedServiceNameValidation` is off).
                for msg in is_dns1035_label(&service.name) {
                    errors.push(FieldError::invalid(
                        at.child("name"),
                        service.name.as_str(),
                        msg,
                    ));
                }
            }
            let port = service.port.clone().unwrap_or_default();
            let name = port.name.unwrap_or_default();
            let number = port.number.unwrap_or_default();
            let port_path = at.child("port");
            match (name.is_empty(), number == 0) {
                (false, false) => errors.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                )),
                (false, true) => {
                    for msg in is_valid_port_name(&name) {
                        errors.push(FieldError::invalid(
                            port_path.child("name"),
                            name.as_str(),
                            msg,
                        ));
                    }
                }
                (true, false) => {
                    for msg in is_valid_port_num(i64::from(number)) {
                        errors.push(FieldError::invalid(port_path.child("number"), number, msg));
                    }
                }
                (true, true) => errors.push(FieldError::required(
                    path,
                    "port name or number is required",
                )),
            }
        }
        (None, None) => errors.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
    errors
}
