//! APIServices (`apiregistration.k8s.io/v1`), as kube-aggregator's `pkg/registry/apiservice` and
//! its validation: the name is `<version>.<group>`, priorities in range, a local APIService
//! (`spec.service` unset) carries no TLS settings, a remote one names its Service (port 443 by
//! default).
//!
//! The `Available` condition is what kube-aggregator's availability controller would write
//! ([`crate::apiservices::with_availability`]), set on every write of the object because it
//! follows from the spec alone.

use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use serde_json::{Value, json};
use skiff_apimachinery::validation::{self, FieldError, FieldPath};

use crate::apiservices::with_availability;
use crate::registry::strategies::col;
use crate::registry::strategies::rbac::path_segment_name;
use crate::registry::{Column, NameRule, Strategy, Subresource};

/// APIServices.
pub struct APIServices;

/// kube-aggregator's `ValidateAPIService` beyond the generic metadata rules.
fn validate_api_service(svc: &APIService) -> Vec<FieldError> {
    let spec = svc.spec.clone().unwrap_or_default();
    let group = spec.group.as_deref().unwrap_or_default();
    let version = spec.version.as_deref().unwrap_or_default();
    let mut errors = Vec::new();
    let required_name = format!("{version}.{group}");
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    if !name.is_empty() && path_segment_name(name).is_empty() && name != required_name {
        errors.push(FieldError::invalid(
            "metadata.name",
            name,
            format!("must be `spec.version+\".\"+spec.group`: {required_name:?}"),
        ));
    }
    let path = FieldPath::new("spec");
    if group.is_empty() && version != "v1" {
        errors.push(FieldError::required(
            path.child("group"),
            "only v1 may have an empty group and it better be legacy kube",
        ));
    }
    if !group.is_empty() {
        for problem in validation::is_dns1123_subdomain(group) {
            errors.push(FieldError::invalid(path.child("group"), group, problem));
        }
    }
    for problem in validation::is_dns1035_label(version) {
        errors.push(FieldError::invalid(path.child("version"), version, problem));
    }
    if !(1..=20000).contains(&spec.group_priority_minimum) {
        errors.push(FieldError::invalid(
            path.child("groupPriorityMinimum"),
            spec.group_priority_minimum,
            "must be positive and less than 20000",
        ));
    }
    if !(1..=1000).contains(&spec.version_priority) {
        errors.push(FieldError::invalid(
            path.child("versionPriority"),
            spec.version_priority,
            "must be positive and less than 1000",
        ));
    }
    let ca_bundle = spec.ca_bundle.as_ref().map_or(0, |b| b.0.len());
    let insecure = spec.insecure_skip_tls_verify.unwrap_or(false);
    let Some(service) = &spec.service else {
        if ca_bundle != 0 {
            errors.push(FieldError::invalid(
                path.child("caBundle"),
                format!("{ca_bundle} bytes"),
                "local APIServices may not have a caBundle",
            ));
        }
        if insecure {
            errors.push(FieldError::invalid(
                path.child("insecureSkipTLSVerify"),
                true,
                "local APIServices may not have insecureSkipTLSVerify",
            ));
        }
        return errors;
    };
    let service_path = path.child("service");
    if service.namespace.as_deref().unwrap_or_default().is_empty() {
        errors.push(FieldError::required(service_path.child("namespace"), ""));
    }
    if service.name.as_deref().unwrap_or_default().is_empty() {
        errors.push(FieldError::required(service_path.child("name"), ""));
    }
    if let Some(port) = service.port {
        for problem in validation::is_valid_port_num(port.into()) {
            errors.push(FieldError::invalid(
                service_path.child("port"),
                port,
                format!("port is not valid: {problem}"),
            ));
        }
    }
    if insecure && ca_bundle > 0 {
        errors.push(FieldError::invalid(
            path.child("insecureSkipTLSVerify"),
            true,
            "may not be true if caBundle is present",
        ));
    }
    errors
}

/// kube-aggregator's `ValidateAPIServiceStatus`.
fn validate_status(svc: &APIService) -> Vec<FieldError> {
    let conditions = svc
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let path = FieldPath::new("status").child("conditions");
    conditions
        .iter()
        .enumerate()
        .filter(|(_, c)| !["True", "False", "Unknown"].contains(&c.status.as_str()))
        .map(|(i, c)| {
            FieldError::not_supported(
                path.index(i).child("status"),
                c.status.as_str(),
                &["True", "False", "Unknown"],
            )
        })
        .collect()
}

impl APIServices {
    /// What an update through `through` keeps from the stored object: `/status` writes only
    /// the status (kube-aggregator's status strategy), the object itself gets the status its
    /// spec earns.
    pub(crate) fn prepare_update(
        &self,
        through: Option<Subresource>,
        new: &mut APIService,
        old: &APIService,
    ) {
        match through {
            Some(Subresource::Status) => new.spec = old.spec.clone(),
            _ => {
                let spec = new.spec.clone().unwrap_or_default();
                new.status = Some(with_availability(&spec, old.status.as_ref()));
            }
        }
    }

    /// Validation of an update through `through`: the status alone through `/status`.
    pub(crate) fn validate_update_through(
        &self,
        through: Option<Subresource>,
        new: &APIService,
    ) -> Vec<FieldError> {
        match through {
            Some(Subresource::Status) => validate_status(new),
            _ => validate_api_service(new),
        }
    }
}

impl Strategy<APIService> for APIServices {
    fn default(&self, svc: &mut APIService) {
        let spec = svc.spec.get_or_insert_with(Default::default);
        if let Some(service) = spec.service.as_mut() {
            service.port.get_or_insert(443);
        }
    }

    fn prepare_for_create(&self, svc: &mut APIService) {
        let spec = svc.spec.clone().unwrap_or_default();
        svc.status = Some(with_availability(&spec, None));
    }

    fn validate(&self, svc: &APIService) -> Vec<FieldError> {
        validate_api_service(svc)
    }

    fn validate_update(&self, new: &APIService, _old: &APIService) -> Vec<FieldError> {
        self.validate_update_through(None, new)
    }

    fn prepare_for_update(
        &self,
        through: Option<Subresource>,
        new: &mut APIService,
        old: &APIService,
    ) {
        self.prepare_update(through, new, old)
    }

    fn validate_subresource_update(
        &self,
        sub: Subresource,
        new: &APIService,
        _old: &APIService,
    ) -> Vec<FieldError> {
        self.validate_update_through(Some(sub), new)
    }

    fn name_rule(&self) -> NameRule {
        path_segment_name
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Service", 0, "The Service serving the API, or Local."),
                col("Available", 0, "Whether the API is available."),
            ]
        }
    }

    fn cells(&self, svc: &APIService) -> Vec<Value> {
        let spec = svc.spec.clone().unwrap_or_default();
        let service = match &spec.service {
            None => "Local".to_owned(),
            Some(s) => format!(
                "{}/{}",
                s.namespace.as_deref().unwrap_or_default(),
                s.name.as_deref().unwrap_or_default()
            ),
        };
        let available = svc
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Available"));
        let available = match available {
            None => "Unknown".to_owned(),
            Some(c) if c.status == "True" => c.status.clone(),
            Some(c) => match c.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(reason) => format!("{} ({reason})", c.status),
                None => c.status.clone(),
            },
        };
        vec![json!(service), json!(available)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::{
        APIServiceSpec, ServiceReference,
    };

    fn api_service(name: &str, group: &str, version: &str) -> APIService {
        APIService {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(APIServiceSpec {
                group: Some(group.into()),
                version: Some(version.into()),
                group_priority_minimum: 1000,
                version_priority: 15,
                ..Default::default()
            }),
            status: None,
        }
    }

    fn remote(mut svc: APIService) -> APIService {
        svc.spec.as_mut().unwrap().service = Some(ServiceReference {
            namespace: Some("kube-system".into()),
            name: Some("metrics-server".into()),
            port: Some(443),
        });
        svc
    }

    #[test]
    fn validation_follows_kube_aggregator() {
        let messages = |svc: &APIService| -> Vec<String> {
            validate_api_service(svc)
                .iter()
                .map(|e| e.to_string())
                .collect()
        };
        let ok = api_service("v1beta1.metrics.k8s.io", "metrics.k8s.io", "v1beta1");
        assert!(messages(&ok).is_empty());
        assert!(messages(&remote(ok.clone())).is_empty());
        assert!(messages(&api_service("v1.", "", "v1")).is_empty());
        let mut bad = api_service("v1.wrong", "metrics.k8s.io", "v1beta1");
        bad.spec.as_mut().unwrap().group_priority_minimum = 0;
        bad.spec.as_mut().unwrap().version_priority = 1001;
        bad.spec.as_mut().unwrap().ca_bundle = Some(ByteString(b"abc".to_vec()));
        assert_eq!(
            messages(&bad),
            [
                "metadata.name: Invalid value: \"v1.wrong\": must be `spec.version+\".\"+spec.group`: \"v1beta1.metrics.k8s.io\"",
                "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000",
                "spec.versionPriority: Invalid value: 1001: must be positive and less than 1000",
                "spec.caBundle: Invalid value: \"3 bytes\": local APIServices may not have a caBundle",
            ]
        );
        assert_eq!(
            messages(&api_service("v2.", "", "v2")),
            [
                "spec.group: Required value: only v1 may have an empty group and it better be legacy kube"
            ]
        );
        let mut unnamed = remote(ok.clone());
        let service = unnamed.spec.as_mut().unwrap().service.as_mut().unwrap();
        service.name = None;
        service.port = Some(0);
        assert_eq!(
            messages(&unnamed),
            [
                "spec.service.name: Required value",
                "spec.service.port: Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive",
            ]
        );
    }

    #[test]
    fn availability_follows_the_spec() {
        let local = api_service("v1.apps", "apps", "v1");
        let status = with_availability(local.spec.as_ref().unwrap(), None);
        let available = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (
                available.status.as_str(),
                available.reason.as_deref(),
                available.message.as_deref()
            ),
            (
                "True",
                Some("Local"),
                Some("Local APIServices are always available")
            )
        );
        let mut svc = local.clone();
        svc.status = Some(status.clone());
        assert_eq!(APIServices.cells(&svc), [json!("Local"), json!("True")]);
        // Still available: the transition time stays.
        let again = with_availability(local.spec.as_ref().unwrap(), Some(&status));
        assert_eq!(again, status);
        let remote = remote(local);
        let status = with_availability(remote.spec.as_ref().unwrap(), Some(&status));
        let mut svc = remote.clone();
        svc.status = Some(status);
        assert_eq!(
            APIServices.cells(&svc),
            [
                json!("kube-system/metrics-server"),
                json!("False (AggregationNotSupported)")
            ]
        );
    }
}
