//! Resource lists (`requests`, `limits`, `hard`, `capacity`, ...) as Kubernetes checks them. Every
//! quantity is decoded first: one that does not parse is an `Undecodable` error, which fails the
//! whole request with 400 as Kubernetes' JSON decoder does. Then the value rules of
//! pkg/apis/core/validation (`validateResourceRequirements`, `ValidateResourceQuantityValue`,
//! `ValidateResourceQuotaSpec`, `ValidateLimitRange`, the claim and volume capacity rules,
//! `ValidateNodeResources`), with its field paths and messages.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, EnvVar, LimitRangeItem, Node, PersistentVolumeClaimSpec,
    PersistentVolumeSpec, PodSpec, ResourceQuota, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use skiff_apimachinery::quantity::{Format, Quantity};
use skiff_apimachinery::validation::{
    FieldError, FieldPath, decode_quantity, is_qualified_name, validate_nonnegative_quantity,
    validate_positive_quantity,
};

/// A resource list as the API carries it.
type ResourceList = BTreeMap<String, ApiQuantity>;
/// A decoded resource list.
type Decoded = BTreeMap<String, Quantity>;

/// Resources counted in whole units (`integerResources`), besides extended resources.
const INTEGER_RESOURCES: [&str; 9] = [
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];
const HUGEPAGES_PREFIX: &str = "hugepages-";

/// `IsHugePageResourceName`: `hugepages-<size>`.
fn is_hugepage_resource_name(name: &str) -> bool {
    name.starts_with(HUGEPAGES_PREFIX)
}

/// `IsNativeResource`: unprefixed, or in the `kubernetes.io/` namespace.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `IsExtendedResourceName`: outside `kubernetes.io/`, not `requests.`-prefixed, and a qualified
/// name once turned into its quota name.
fn is_extended_resource_name(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// `IsOvercommitAllowed`: native resources other than hugepages may ask for less than their limit.
fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_hugepage_resource_name(name)
}

/// `IsIntegerResourceName`.
fn is_integer_resource_name(name: &str) -> bool {
    INTEGER_RESOURCES.contains(&name) || is_extended_resource_name(name)
}

/// Decodes `list`, each entry at `at(name)`; what does not parse goes to `errors`.
fn decode_list(
    list: Option<&ResourceList>,
    at: impl Fn(&str) -> FieldPath,
    errors: &mut Vec<FieldError>,
) -> Decoded {
    let mut decoded = Decoded::new();
    for (name, quantity) in list.into_iter().flatten() {
        match decode_quantity(quantity, &at(name)) {
            Ok(q) => {
                decoded.insert(name.clone(), q);
            }
            Err(e) => errors.push(e),
        }
    }
    decoded
}

/// Decodes one optional quantity.
fn decode_one(quantity: Option<&ApiQuantity>, path: &FieldPath, errors: &mut Vec<FieldError>) {
    if let Some(Err(e)) = quantity.map(|q| decode_quantity(q, path)) {
        errors.push(e);
    }
}

/// `ValidateResourceQuantityValue`: not negative, and whole for integer resources.
fn validate_resource_quantity_value(name: &str, q: &Quantity, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = validate_nonnegative_quantity(q, path);
    if is_integer_resource_name(name) && q.milli_value() % 1000 != 0 {
        errors.push(FieldError::invalid(
            path,
            q.to_string(),
            "must be an integer",
        ));
    }
    errors
}

/// `IsHugePageResourceValueDivisible`: a whole number of the page size in the name.
fn is_hugepage_value_divisible(name: &str, q: &Quantity) -> bool {
    let page = Quantity::parse(&name[HUGEPAGES_PREFIX.len()..]);
    match page {
        Ok(page) if page.sign() > 0 && page.milli_value() % 1000 == 0 => {
            q.value() % page.value() == 0
        }
        _ => false,
    }
}

/// `validateResourceRequirements`' quantity rules for `requests` and `limits` under `path`.
fn validate_requirements(
    requests: Option<&ResourceList>,
    limits: Option<&ResourceList>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let limits_path = path.child("limits");
    let requests_path = path.child("requests");
    let limits = decode_list(limits, |n| limits_path.key(n), &mut errors);
    let requests = decode_list(requests, |n| requests_path.key(n), &mut errors);
    let hugepages = |name: &str, q: &Quantity, at: &FieldPath, errors: &mut Vec<FieldError>| {
        if is_hugepage_resource_name(name) && !is_hugepage_value_divisible(name, q) {
            errors.push(FieldError::invalid(
                at,
                q.to_string(),
                format!("{q} is not positive integer multiple of {name}"),
            ));
        }
    };
    for (name, q) in &limits {
        let at = limits_path.key(name);
        errors.extend(validate_resource_quantity_value(name, q, &at));
        hugepages(name, q, &at, &mut errors);
    }
    for (name, q) in &requests {
        let at = requests_path.key(name);
        errors.extend(validate_resource_quantity_value(name, q, &at));
        match limits.get(name) {
            // Resources that cannot be overcommitted must ask for exactly their limit.
            Some(limit) if q != limit && !is_overcommit_allowed(name) => {
                errors.push(FieldError::invalid(
                    &requests_path,
                    q.to_string(),
                    format!("must be equal to {name} limit of {limit}"),
                ));
            }
            Some(limit) if q > limit => errors.push(FieldError::invalid(
                &requests_path,
                q.to_string(),
                format!("must be less than or equal to {name} limit of {limit}"),
            )),
            Some(_) => {}
            None if !is_overcommit_allowed(name) => errors.push(FieldError::required(
                &limits_path,
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
        hugepages(name, q, &at, &mut errors);
    }
    let has = |list: &Decoded, test: fn(&str) -> bool| list.keys().any(|n| test(n));
    let cpu_or_memory = |n: &str| n == "cpu" || n == "memory";
    if !has(&limits, cpu_or_memory)
        && !has(&requests, cpu_or_memory)
        && (has(&limits, is_hugepage_resource_name) || has(&requests, is_hugepage_resource_name))
    {
        errors.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    errors
}

fn validate_resource_requirements(
    resources: Option<&ResourceRequirements>,
    path: &FieldPath,
) -> Vec<FieldError> {
    match resources {
        Some(r) => validate_requirements(r.requests.as_ref(), r.limits.as_ref(), path),
        None => Vec::new(),
    }
}

/// The divisors of `resourceFieldRef`s (env or downward API files).
fn decode_env_divisors(env: Option<&Vec<EnvVar>>, path: &FieldPath, errors: &mut Vec<FieldError>) {
    for (i, var) in env.into_iter().flatten().enumerate() {
        let divisor = var
            .value_from
            .as_ref()
            .and_then(|v| v.resource_field_ref.as_ref())
            .and_then(|r| r.divisor.as_ref());
        let at = path.child("env").index(i).child("valueFrom");
        decode_one(
            divisor,
            &at.child("resourceFieldRef").child("divisor"),
            errors,
        );
    }
}

fn decode_file_divisors(
    items: Option<&Vec<DownwardAPIVolumeFile>>,
    path: &FieldPath,
    errors: &mut Vec<FieldError>,
) {
    for (i, item) in items.into_iter().flatten().enumerate() {
        let divisor = item
            .resource_field_ref
            .as_ref()
            .and_then(|r| r.divisor.as_ref());
        let at = path.child("items").index(i).child("resourceFieldRef");
        decode_one(divisor, &at.child("divisor"), errors);
    }
}

fn validate_containers(containers: &[Container], path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let at = path.index(i);
        errors.extend(validate_resource_requirements(
            c.resources.as_ref(),
            &at.child("resources"),
        ));
        decode_env_divisors(c.env.as_ref(), &at, &mut errors);
    }
    errors
}

/// Every quantity of a pod spec: containers' requirements (init ones too), pod-level resources,
/// overhead (validated as limits), and the quantities that are only decoded (ephemeral containers,
/// divisors, emptyDir sizes, ephemeral volume claims).
pub fn validate_pod_spec_resources(spec: &PodSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = validate_containers(&spec.containers, &path.child("containers"));
    if let Some(init) = &spec.init_containers {
        errors.extend(validate_containers(init, &path.child("initContainers")));
    }
    for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
        let at = path.child("ephemeralContainers").index(i);
        let resources = c.resources.clone().unwrap_or_default();
        let requests_path = at.child("resources").child("requests");
        let limits_path = at.child("resources").child("limits");
        let requests = decode_list(
            resources.requests.as_ref(),
            |n| requests_path.key(n),
            &mut errors,
        );
        let limits = decode_list(
            resources.limits.as_ref(),
            |n| limits_path.key(n),
            &mut errors,
        );
        // An ephemeral container may not reserve anything.
        if !requests.is_empty()
            || !limits.is_empty()
            || resources.claims.is_some_and(|c| !c.is_empty())
        {
            errors.push(FieldError::forbidden(
                at.child("resources"),
                "cannot be set for an Ephemeral Container",
            ));
        }
        decode_env_divisors(c.env.as_ref(), &at, &mut errors);
    }
    errors.extend(validate_resource_requirements(
        spec.resources.as_ref(),
        &path.child("resources"),
    ));
    errors.extend(validate_requirements(
        None,
        spec.overhead.as_ref(),
        &path.child("overhead"),
    ));
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        let at = path.child("volumes").index(i);
        if let Some(empty) = &volume.empty_dir {
            decode_one(
                empty.size_limit.as_ref(),
                &at.child("emptyDir").child("sizeLimit"),
                &mut errors,
            );
        }
        if let Some(downward) = &volume.downward_api {
            decode_file_divisors(
                downward.items.as_ref(),
                &at.child("downwardAPI"),
                &mut errors,
            );
        }
        for (j, source) in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
            .enumerate()
        {
            if let Some(downward) = &source.downward_api {
                let source_path = at.child("projected").child("sources").index(j);
                decode_file_divisors(
                    downward.items.as_ref(),
                    &source_path.child("downwardAPI"),
                    &mut errors,
                );
            }
        }
        if let Some(template) = volume
            .ephemeral
            .as_ref()
            .and_then(|e| e.volume_claim_template.as_ref())
        {
            let spec_path = at
                .child("ephemeral")
                .child("volumeClaimTemplate")
                .child("spec");
            errors.extend(decode_claim_resources(&template.spec, &spec_path));
        }
    }
    errors
}

/// Decodes a claim's requested and limited amounts (all a claim template gets checked for).
pub fn decode_claim_resources(
    spec: &PersistentVolumeClaimSpec,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let resources = spec.resources.clone().unwrap_or_default();
    let at = path.child("resources");
    decode_list(
        resources.limits.as_ref(),
        |n| at.child("limits").key(n),
        &mut errors,
    );
    decode_list(
        resources.requests.as_ref(),
        |n| at.child("requests").key(n),
        &mut errors,
    );
    errors
}

/// A claim's storage request: required, positive and valid (`ValidatePersistentVolumeClaimSpec`,
/// whose path is `resources[storage]`).
pub fn validate_claim_spec(spec: &PersistentVolumeClaimSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = decode_claim_resources(spec, path);
    let storage_path = path.child("resources").key("storage");
    let requests = spec.resources.as_ref().and_then(|r| r.requests.as_ref());
    match requests.and_then(|r| r.get("storage")) {
        None => errors.push(FieldError::required(&storage_path, "")),
        Some(storage) => {
            if let Ok(q) = Quantity::from_api(storage) {
                let positive = validate_positive_quantity(&q, &storage_path);
                if positive.is_empty() {
                    errors.extend(validate_resource_quantity_value(
                        "storage",
                        &q,
                        &storage_path,
                    ));
                } else {
                    errors.extend(positive);
                }
            }
        }
    }
    errors
}

/// Decodes a list whose values are only required to parse (statuses the server reports).
pub fn decode_resource_list(list: Option<&ResourceList>, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    decode_list(list, |n| path.key(n), &mut errors);
    errors
}

/// A volume's capacity: required, only `storage`, each value valid and positive.
pub fn validate_volume_capacity(spec: &PersistentVolumeSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let capacity_path = path.child("capacity");
    let capacity = decode_list(
        spec.capacity.as_ref(),
        |n| capacity_path.key(n),
        &mut errors,
    );
    let given = spec.capacity.as_ref();
    if given.is_none_or(|c| c.is_empty()) {
        errors.push(FieldError::required(&capacity_path, ""));
    }
    if given.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
        let value = serde_json::to_value(given).unwrap_or_default();
        errors.push(FieldError::not_supported(
            &capacity_path,
            value,
            &["storage"],
        ));
    }
    for (name, q) in &capacity {
        let at = capacity_path.key(name);
        // `validateBasicResource` reports the value in base units, as a number.
        if q.value() < 0 {
            errors.push(FieldError::invalid(
                &at,
                q.value(),
                "must be a valid resource quantity",
            ));
        }
        errors.extend(validate_positive_quantity(q, &at));
    }
    errors
}

/// `ValidateResourceQuotaSpec` and `ValidateResourceQuotaStatus`' quantity rules.
pub fn validate_resource_quota(quota: &ResourceQuota) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let hard = quota.spec.as_ref().and_then(|s| s.hard.as_ref());
    let status = quota.status.as_ref();
    let lists = [
        (hard, FieldPath::new("spec").child("hard")),
        (
            status.and_then(|s| s.hard.as_ref()),
            FieldPath::new("status").child("hard"),
        ),
        (
            status.and_then(|s| s.used.as_ref()),
            FieldPath::new("status").child("used"),
        ),
    ];
    for (list, path) in lists {
        for (name, q) in decode_list(list, |n| path.key(n), &mut errors) {
            errors.extend(validate_resource_quantity_value(
                &name,
                &q,
                &path.key(&name),
            ));
        }
    }
    errors
}

/// `ValidateLimitRange`'s rules on the amounts of one item at `path` (`spec.limits[i]`).
pub fn validate_limit_range_item(item: &LimitRangeItem, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let list = |name: &str, list: Option<&ResourceList>, errors: &mut Vec<FieldError>| {
        let at = path.child(name);
        decode_list(list, |n| at.key(n), errors)
    };
    let max = list("max", item.max.as_ref(), &mut errors);
    let min = list("min", item.min.as_ref(), &mut errors);
    let defaults = list("default", item.default.as_ref(), &mut errors);
    let default_requests = list("defaultRequest", item.default_request.as_ref(), &mut errors);
    let ratios = list(
        "maxLimitRequestRatio",
        item.max_limit_request_ratio.as_ref(),
        &mut errors,
    );
    if item.type_ == "Pod" {
        for (field, given) in [
            ("default", &defaults),
            ("defaultRequest", &default_requests),
        ] {
            if !given.is_empty() {
                errors.push(FieldError::forbidden(
                    path.child(field),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
        }
    }
    if item.type_ == "PersistentVolumeClaim"
        && !min.contains_key("storage")
        && !max.contains_key("storage")
    {
        errors.push(FieldError::required(
            path.child("limits"),
            "either minimum or maximum storage value is required, but neither was provided",
        ));
    }
    // Pod items' defaults are refused above and not compared.
    let (defaults, default_requests) = if item.type_ == "Pod" {
        (Decoded::new(), Decoded::new())
    } else {
        (defaults, default_requests)
    };
    let mut names: Vec<&String> = [&max, &min, &defaults, &default_requests, &ratios]
        .iter()
        .flat_map(|l| l.keys())
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let (min, max) = (min.get(name), max.get(name));
        let (default, request) = (defaults.get(name), default_requests.get(name));
        let at = |field: &str| path.child(field).key(name);
        let mut invalid = |field: &str, value: &Quantity, detail: String| {
            errors.push(FieldError::invalid(at(field), value.to_string(), detail));
        };
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            invalid(
                "min",
                min,
                format!("min value {min} is greater than max value {max}"),
            );
        }
        if let (Some(request), Some(min)) = (request, min)
            && min > request
        {
            let detail = format!("min value {min} is greater than default request value {request}");
            invalid("defaultRequest", request, detail);
        }
        if let (Some(request), Some(max)) = (request, max)
            && request > max
        {
            let detail = format!("default request value {request} is greater than max value {max}");
            invalid("defaultRequest", request, detail);
        }
        if let (Some(request), Some(default)) = (request, default)
            && request > default
        {
            let detail = format!(
                "default request value {request} is greater than default limit value {default}"
            );
            invalid("defaultRequest", request, detail);
        }
        if let (Some(default), Some(min)) = (default, min)
            && min > default
        {
            invalid(
                "default",
                min,
                format!("min value {min} is greater than default value {default}"),
            );
        }
        if let (Some(default), Some(max)) = (default, max)
            && default > max
        {
            invalid(
                "default",
                max,
                format!("default value {default} is greater than max value {max}"),
            );
        }
        if let Some(ratio) = ratios.get(name) {
            if *ratio < Quantity::new(1, Format::DecimalSI) {
                invalid(
                    "maxLimitRequestRatio",
                    ratio,
                    format!("ratio {ratio} is less than 1"),
                );
            }
            if let (Some(min), Some(max)) = (min, max) {
                // Kubernetes compares this one in floating point, in milli-units when they fit.
                let fits = |q: &Quantity| q.value() < i64::MAX / 1000;
                let (ratio_value, min_value, max_value) = if fits(ratio) && fits(min) && fits(max) {
                    (
                        ratio.milli_value() as f64 / 1000.0,
                        min.milli_value(),
                        max.milli_value(),
                    )
                } else {
                    (ratio.value() as f64, min.value(), max.value())
                };
                let limit = max_value as f64 / min_value as f64;
                if ratio_value > limit {
                    let detail = format!("ratio {ratio} is greater than max/min = {limit:.6}");
                    invalid("maxLimitRequestRatio", ratio, detail);
                }
            }
        }
        if !is_overcommit_allowed(name)
            && let (Some(default), Some(request)) = (default, request)
            && default != request
        {
            let detail = format!(
                "default value {default} must equal to defaultRequest value {request} in {name}"
            );
            invalid("defaultRequest", request, detail);
        }
    }
    errors
}

/// `ValidateNodeResources`: capacity and allocatable values (at `status.capacity.<name>`).
pub fn validate_node_resources(node: &Node) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let status = node.status.as_ref();
    let lists = [
        ("capacity", status.and_then(|s| s.capacity.as_ref())),
        ("allocatable", status.and_then(|s| s.allocatable.as_ref())),
    ];
    for (field, list) in lists {
        let path = FieldPath::new("status").child(field);
        for (name, q) in decode_list(list, |n| path.child(n), &mut errors) {
            errors.extend(validate_resource_quantity_value(
                &name,
                &q,
                &path.child(&name),
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skiff_apimachinery::validation::FieldErrorKind;

    fn spec(value: serde_json::Value) -> PodSpec {
        serde_json::from_value(value).unwrap()
    }

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn resource_names_are_classified_as_kubernetes_does() {
        assert!(is_native_resource("cpu"));
        assert!(is_native_resource("kubernetes.io/foo"));
        assert!(!is_native_resource("example.com/gpu"));
        assert!(is_extended_resource_name("example.com/gpu"));
        assert!(!is_extended_resource_name("requests.example.com/gpu"));
        assert!(!is_extended_resource_name("cpu"));
        assert!(is_integer_resource_name("pods"));
        assert!(is_integer_resource_name("count/deployments.apps"));
        assert!(!is_integer_resource_name("memory"));
        assert!(is_overcommit_allowed("memory"));
        assert!(!is_overcommit_allowed("hugepages-2Mi"));
        assert!(!is_overcommit_allowed("example.com/gpu"));
    }

    #[test]
    fn container_requirements() {
        let s = spec(json!({"containers": [{"name": "c", "resources": {
            "requests": {"cpu": "2", "memory": "-1", "hugepages-2Mi": "3Mi"},
            "limits": {"cpu": "1500m", "hugepages-2Mi": "3Mi"},
        }}]}));
        let errors = validate_pod_spec_resources(&s, &FieldPath::new("spec"));
        assert_eq!(
            messages(&errors),
            [
                "spec.containers[0].resources.limits[hugepages-2Mi]: Invalid value: \"3Mi\": 3Mi is not positive integer multiple of hugepages-2Mi",
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1500m",
                "spec.containers[0].resources.requests[hugepages-2Mi]: Invalid value: \"3Mi\": 3Mi is not positive integer multiple of hugepages-2Mi",
                "spec.containers[0].resources.requests[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
            ]
        );
        let only_hugepages = spec(json!({"containers": [{"name": "c", "resources": {
            "limits": {"hugepages-2Mi": "4Mi"}}}]}));
        assert_eq!(
            messages(&validate_pod_spec_resources(
                &only_hugepages,
                &FieldPath::new("spec")
            )),
            ["spec.containers[0].resources: Forbidden: HugePages require cpu or memory"]
        );
    }

    #[test]
    fn unparsable_quantities_are_undecodable_wherever_they_are() {
        let s = spec(json!({
            "containers": [{"name": "c", "env": [{"name": "E", "valueFrom": {"resourceFieldRef":
                {"resource": "limits.cpu", "divisor": "1x"}}}]}],
            "ephemeralContainers": [{"name": "e", "resources": {"limits": {"cpu": "1"}}}],
            "volumes": [
                {"name": "a", "emptyDir": {"sizeLimit": "big"}},
                {"name": "b", "projected": {"sources": [{"downwardAPI": {"items": [{"path": "p",
                    "resourceFieldRef": {"resource": "limits.memory", "divisor": "1 Mi"}}]}}]}},
                {"name": "c", "ephemeral": {"volumeClaimTemplate": {"spec": {"resources":
                    {"requests": {"storage": "1GB"}}}}}},
            ],
        }));
        let errors = validate_pod_spec_resources(&s, &FieldPath::new("spec"));
        let undecodable: Vec<&str> = errors
            .iter()
            .filter(|e| e.kind == FieldErrorKind::Undecodable)
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(
            undecodable,
            [
                "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor",
                "spec.volumes[0].emptyDir.sizeLimit",
                "spec.volumes[1].projected.sources[0].downwardAPI.items[0].resourceFieldRef.divisor",
                "spec.volumes[2].ephemeral.volumeClaimTemplate.spec.resources.requests[storage]",
            ]
        );
        assert!(
            messages(&errors).contains(
                &"spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral Container"
                    .to_owned()
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn limit_ranges_order_their_amounts() {
        let item: LimitRangeItem = serde_json::from_value(json!({
            "type": "Container",
            "min": {"cpu": "1", "memory": "1Gi"},
            "max": {"cpu": "2", "memory": "2Gi"},
            "default": {"cpu": "3", "example.com/gpu": "2"},
            "defaultRequest": {"cpu": "500m", "example.com/gpu": "1"},
            "maxLimitRequestRatio": {"cpu": "3", "memory": "0.5"},
        }))
        .unwrap();
        let errors =
            validate_limit_range_item(&item, &FieldPath::new("spec").child("limits").index(0));
        assert_eq!(
            messages(&errors),
            [
                "spec.limits[0].defaultRequest[cpu]: Invalid value: \"500m\": min value 1 is greater than default request value 500m",
                "spec.limits[0].default[cpu]: Invalid value: \"2\": default value 3 is greater than max value 2",
                "spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: \"3\": ratio 3 is greater than max/min = 2.000000",
                "spec.limits[0].defaultRequest[example.com/gpu]: Invalid value: \"1\": default value 2 must equal to defaultRequest value 1 in example.com/gpu",
                "spec.limits[0].maxLimitRequestRatio[memory]: Invalid value: \"500m\": ratio 500m is less than 1",
            ]
        );
        let pod: LimitRangeItem = serde_json::from_value(json!({
            "type": "Pod", "default": {"cpu": "1"}}))
        .unwrap();
        assert_eq!(
            messages(&validate_limit_range_item(
                &pod,
                &FieldPath::new("spec").child("limits").index(1)
            )),
            ["spec.limits[1].default: Forbidden: may not be specified when `type` is 'Pod'"]
        );
        let claim: LimitRangeItem = serde_json::from_value(json!({
            "type": "PersistentVolumeClaim", "max": {"cpu": "1"}}))
        .unwrap();
        assert_eq!(
            messages(&validate_limit_range_item(
                &claim,
                &FieldPath::new("spec").child("limits").index(2)
            )),
            [
                "spec.limits[2].limits: Required value: either minimum or maximum storage value is required, but neither was provided"
            ]
        );
    }

    #[test]
    fn claims_need_a_positive_storage_request() {
        let claim = |v: serde_json::Value| -> PersistentVolumeClaimSpec {
            serde_json::from_value(v).unwrap()
        };
        let path = FieldPath::new("spec");
        assert_eq!(
            messages(&validate_claim_spec(&claim(json!({})), &path)),
            ["spec.resources[storage]: Required value"]
        );
        assert_eq!(
            messages(&validate_claim_spec(
                &claim(json!({"resources": {"requests": {"storage": "-1"}}})),
                &path
            )),
            ["spec.resources[storage]: Invalid value: \"-1\": must be greater than zero"]
        );
        assert!(
            validate_claim_spec(
                &claim(json!({"resources": {"requests": {"storage": "1Gi"}}})),
                &path
            )
            .is_empty()
        );
    }

    #[test]
    fn volumes_have_exactly_a_positive_storage_capacity() {
        let pv =
            |v: serde_json::Value| -> PersistentVolumeSpec { serde_json::from_value(v).unwrap() };
        let path = FieldPath::new("spec");
        assert_eq!(
            messages(&validate_volume_capacity(
                &pv(json!({"capacity": {"storage": "0"}})),
                &path
            )),
            ["spec.capacity[storage]: Invalid value: \"0\": must be greater than zero"]
        );
        assert_eq!(
            messages(&validate_volume_capacity(&pv(json!({})), &path)),
            [
                "spec.capacity: Required value",
                "spec.capacity: Unsupported value: null: supported values: \"storage\"",
            ]
        );
        assert!(
            validate_volume_capacity(&pv(json!({"capacity": {"storage": "10Gi"}})), &path)
                .is_empty()
        );
    }
}
