//! Validation of pod specs and pod templates, shared by pods and every workload kind, with
//! Kubernetes' field paths and messages.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as ApiSelector;
use serde_json::json;
use skiff_apimachinery::selector::LabelSelector;
use skiff_apimachinery::validation::{
    FieldError, FieldPath, is_dns1123_label, is_env_var_name, is_valid_port_name,
    is_valid_port_num, validate_label_selector, validate_labels,
};

use super::resources::validate_pod_spec_resources;

/// Restart policies a pod may have.
pub const RESTART_POLICIES: [&str; 3] = ["Always", "OnFailure", "Never"];
/// Controllers' pods run until replaced: the only restart policy they may have.
pub const ALWAYS: &[&str] = &["Always"];
/// A Job's pods end: they may not restart forever.
pub const RUN_TO_COMPLETION: &[&str] = &["OnFailure", "Never"];
const DNS_POLICIES: [&str; 4] = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];
const PULL_POLICIES: [&str; 3] = ["Always", "IfNotPresent", "Never"];

fn validate_container(
    c: &Container,
    path: &FieldPath,
    volumes: &BTreeSet<String>,
    names: &mut BTreeSet<String>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if c.name.is_empty() {
        errors.push(FieldError::required(path.child("name"), ""));
    } else {
        for problem in is_dns1123_label(&c.name) {
            errors.push(FieldError::invalid(
                path.child("name"),
                c.name.clone(),
                problem,
            ));
        }
        if !names.insert(c.name.clone()) {
            errors.push(FieldError::duplicate(path.child("name"), c.name.clone()));
        }
    }
    if c.image.as_deref().unwrap_or("").trim().is_empty() {
        errors.push(FieldError::required(path.child("image"), ""));
    }
    if let Some(policy) = &c.image_pull_policy
        && !PULL_POLICIES.contains(&policy.as_str())
    {
        errors.push(FieldError::not_supported(
            path.child("imagePullPolicy"),
            policy.clone(),
            &PULL_POLICIES,
        ));
    }
    let mut port_names = BTreeSet::new();
    for (i, port) in c.ports.iter().flatten().enumerate() {
        let at = path.child("ports").index(i);
        for problem in is_valid_port_num(i64::from(port.container_port)) {
            errors.push(FieldError::invalid(
                at.child("containerPort"),
                port.container_port,
                problem,
            ));
        }
        if let Some(host_port) = port.host_port.filter(|&p| p != 0) {
            for problem in is_valid_port_num(i64::from(host_port)) {
                errors.push(FieldError::invalid(
                    at.child("hostPort"),
                    host_port,
                    problem,
                ));
            }
        }
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            for problem in is_valid_port_name(name) {
                errors.push(FieldError::invalid(at.child("name"), name, problem));
            }
            if !port_names.insert(name.to_owned()) {
                errors.push(FieldError::duplicate(at.child("name"), name));
            }
        }
        if let Some(protocol) = &port.protocol
            && !PROTOCOLS.contains(&protocol.as_str())
        {
            errors.push(FieldError::not_supported(
                at.child("protocol"),
                protocol.clone(),
                &PROTOCOLS,
            ));
        }
    }
    for (i, env) in c.env.iter().flatten().enumerate() {
        let at = path.child("env").index(i).child("name");
        if env.name.is_empty() {
            errors.push(FieldError::required(at, ""));
        } else {
            for problem in is_env_var_name(&env.name) {
                errors.push(FieldError::invalid(at.clone(), env.name.clone(), problem));
            }
        }
    }
    for (i, mount) in c.volume_mounts.iter().flatten().enumerate() {
        let at = path.child("volumeMounts").index(i);
        if mount.name.is_empty() {
            errors.push(FieldError::required(at.child("name"), ""));
        } else if !volumes.contains(&mount.name) {
            errors.push(FieldError::not_found(at.child("name"), mount.name.clone()));
        }
        if mount.mount_path.is_empty() {
            errors.push(FieldError::required(at.child("mountPath"), ""));
        }
    }
    errors
}

/// Validates a pod spec at `path`; `restart_policies` are the ones the owner allows.
pub fn validate_pod_spec(
    spec: &PodSpec,
    path: &FieldPath,
    restart_policies: &[&str],
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut volumes = BTreeSet::new();
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        let at = path.child("volumes").index(i).child("name");
        if volume.name.is_empty() {
            errors.push(FieldError::required(at, ""));
            continue;
        }
        for problem in is_dns1123_label(&volume.name) {
            errors.push(FieldError::invalid(
                at.clone(),
                volume.name.clone(),
                problem,
            ));
        }
        if !volumes.insert(volume.name.clone()) {
            errors.push(FieldError::duplicate(at, volume.name.clone()));
        }
    }
    if spec.containers.is_empty() {
        errors.push(FieldError::required(path.child("containers"), ""));
    }
    let mut names = BTreeSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        errors.extend(validate_container(
            c,
            &path.child("containers").index(i),
            &volumes,
            &mut names,
        ));
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        errors.extend(validate_container(
            c,
            &path.child("initContainers").index(i),
            &volumes,
            &mut names,
        ));
    }
    errors.extend(validate_ephemeral_containers(
        spec,
        &path.child("ephemeralContainers"),
        &volumes,
        names,
    ));
    if let Some(policy) = &spec.restart_policy
        && !restart_policies.contains(&policy.as_str())
    {
        // Kubernetes words this one as "Required value" when the owner restricts the choice.
        if restart_policies.len() < RESTART_POLICIES.len() {
            let valid: Vec<String> = restart_policies.iter().map(|p| format!("{p:?}")).collect();
            errors.push(FieldError::required(
                path.child("restartPolicy"),
                format!("valid values: {}", valid.join(", ")),
            ));
        } else {
            errors.push(FieldError::not_supported(
                path.child("restartPolicy"),
                policy.clone(),
                restart_policies,
            ));
        }
    }
    if let Some(policy) = &spec.dns_policy
        && !DNS_POLICIES.contains(&policy.as_str())
    {
        errors.push(FieldError::not_supported(
            path.child("dnsPolicy"),
            policy.clone(),
            &DNS_POLICIES,
        ));
    }
    if let Some(seconds) = spec.termination_grace_period_seconds
        && seconds < 0
    {
        errors.push(FieldError::invalid(
            path.child("terminationGracePeriodSeconds"),
            seconds,
            "must be greater than or equal to 0",
        ));
    }
    errors.extend(validate_pod_spec_resources(spec, path));
    errors
}

/// What an ephemeral container may not set, in Kubernetes' field order: everything but the
/// allowed fields of `allowedEphemeralContainerFields` (a debugging container must not carry
/// the pod's workload: no ports, probes, lifecycle hooks or restart rules). `resources` is
/// checked with its quantities (`resources.rs`).
fn forbidden_ephemeral_fields(c: &EphemeralContainer) -> Vec<&'static str> {
    [
        ("ports", c.ports.is_some()),
        ("resizePolicy", c.resize_policy.is_some()),
        ("restartPolicy", c.restart_policy.is_some()),
        ("restartPolicyRules", c.restart_policy_rules.is_some()),
        ("livenessProbe", c.liveness_probe.is_some()),
        ("readinessProbe", c.readiness_probe.is_some()),
        ("startupProbe", c.startup_probe.is_some()),
        ("lifecycle", c.lifecycle.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect()
}

/// An ephemeral container as the container it runs as (Kubernetes converts the common part the
/// same way to validate it).
pub fn ephemeral_as_container(c: &EphemeralContainer) -> Container {
    let mut value = serde_json::to_value(c).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("targetContainerName");
    }
    serde_json::from_value(value).unwrap_or_default()
}

/// Kubernetes' `validateEphemeralContainers`: each one valid as a container, named uniquely
/// across every container of the pod (`names` holds the others'), targeting an app or init
/// container if it targets one, and without the fields an ephemeral container may not have.
fn validate_ephemeral_containers(
    spec: &PodSpec,
    path: &FieldPath,
    volumes: &BTreeSet<String>,
    mut names: BTreeSet<String>,
) -> Vec<FieldError> {
    let targets = names.clone();
    let mut errors = Vec::new();
    for (i, ec) in spec.ephemeral_containers.iter().flatten().enumerate() {
        let at = path.index(i);
        // The duplicate check across all containers is validate_container's.
        errors.extend(validate_container(
            &ephemeral_as_container(ec),
            &at,
            volumes,
            &mut names,
        ));
        if let Some(target) = ec
            .target_container_name
            .as_deref()
            .filter(|t| !t.is_empty())
            && !targets.contains(target)
        {
            errors.push(FieldError::not_found(
                at.child("targetContainerName"),
                target,
            ));
        }
        for field in forbidden_ephemeral_fields(ec) {
            errors.push(FieldError::forbidden(
                at.child(field),
                "cannot be set for an Ephemeral Container",
            ));
        }
        // Subpaths are bind mounts that outlive the container until the pod ends.
        for (j, mount) in ec.volume_mounts.iter().flatten().enumerate() {
            let mount_at = at.child("volumeMounts").index(j);
            for (field, value) in [
                ("subPath", &mount.sub_path),
                ("subPathExpr", &mount.sub_path_expr),
            ] {
                if value.as_deref().is_some_and(|v| !v.is_empty()) {
                    errors.push(FieldError::forbidden(
                        mount_at.child(field),
                        "cannot be set for an Ephemeral Container",
                    ));
                }
            }
        }
    }
    errors
}

/// Validates a controller's selector and pod template: the selector must be valid, non-empty
/// and match the template's labels.
pub fn validate_template(
    selector: Option<&ApiSelector>,
    template: &PodTemplateSpec,
    path: &FieldPath,
    restart_policies: &[&str],
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    match selector {
        None => errors.push(FieldError::required(path.child("selector"), "")),
        Some(selector) => {
            let selector_errors = validate_label_selector(selector, &path.child("selector"));
            let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && selector
                    .match_expressions
                    .as_ref()
                    .is_none_or(|e| e.is_empty());
            if empty {
                errors.push(FieldError::invalid(
                    path.child("selector"),
                    json!(selector),
                    "empty selector is invalid for deployment",
                ));
            } else if selector_errors.is_empty() {
                let matches = LabelSelector::from_api(selector).is_ok_and(|s| s.matches(&labels));
                if !matches {
                    errors.push(FieldError::invalid(
                        path.child("template").child("metadata").child("labels"),
                        json!(labels),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            errors.extend(selector_errors);
        }
    }
    let template_path = path.child("template");
    errors.extend(validate_labels(
        &labels,
        &template_path.child("metadata").child("labels"),
    ));
    match &template.spec {
        Some(spec) => {
            errors.extend(validate_pod_spec(
                spec,
                &template_path.child("spec"),
                restart_policies,
            ));
            if spec
                .ephemeral_containers
                .as_ref()
                .is_some_and(|e| !e.is_empty())
            {
                errors.push(FieldError::forbidden(
                    template_path.child("spec").child("ephemeralContainers"),
                    "ephemeral containers not allowed in pod template",
                ));
            }
        }
        None => errors.push(FieldError::required(template_path.child("spec"), "")),
    }
    errors
}

/// `spec.replicas` must not be negative.
pub fn validate_replicas(replicas: Option<i32>, path: &FieldPath) -> Vec<FieldError> {
    match replicas {
        Some(r) if r < 0 => vec![FieldError::invalid(
            path.child("replicas"),
            r,
            "must be greater than or equal to 0",
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: serde_json::Value) -> PodSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn pod_spec_errors_carry_kubernetes_paths() {
        let s = spec(json!({
            "containers": [
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 0}],
                 "volumeMounts": [{"name": "missing", "mountPath": "/x"}]},
                {"name": "web", "image": ""}
            ],
            "restartPolicy": "Sometimes",
        }));
        let errors: Vec<String> = validate_pod_spec(&s, &FieldPath::new("spec"), &RESTART_POLICIES)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            errors
                .iter()
                .any(|e| e
                    .starts_with("spec.containers[0].ports[0].containerPort: Invalid value: 0")),
            "{errors:?}"
        );
        assert!(
            errors.contains(
                &"spec.containers[0].volumeMounts[0].name: Not found: \"missing\"".to_owned()
            ),
            "{errors:?}"
        );
        assert!(
            errors.contains(&"spec.containers[1].name: Duplicate value: \"web\"".to_owned()),
            "{errors:?}"
        );
        assert!(
            errors.contains(&"spec.containers[1].image: Required value".to_owned()),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("spec.restartPolicy: Unsupported value: \"Sometimes\"")),
            "{errors:?}"
        );
    }

    #[test]
    fn templates_must_match_their_selector() {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Always"}
        }))
        .unwrap();
        let other: ApiSelector =
            serde_json::from_value(json!({"matchLabels": {"app": "db"}})).unwrap();
        let errors = validate_template(
            Some(&other),
            &template,
            &FieldPath::new("spec"),
            &["Always"],
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.template.metadata.labels");
        let same: ApiSelector =
            serde_json::from_value(json!({"matchLabels": {"app": "web"}})).unwrap();
        assert!(
            validate_template(Some(&same), &template, &FieldPath::new("spec"), &["Always"])
                .is_empty()
        );
        let errors = validate_template(
            Some(&same),
            &template,
            &FieldPath::new("spec"),
            &["OnFailure", "Never"],
        );
        assert_eq!(
            errors[0].to_string(),
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
        );
    }
}
