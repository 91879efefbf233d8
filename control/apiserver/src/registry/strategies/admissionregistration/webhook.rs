//! What validating and mutating webhooks share: defaults, the per-webhook rules (names, rules,
//! policies, client config, selectors, match conditions, review versions) and the WEBHOOKS
//! column.

use std::collections::BTreeSet;

use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use skiff_apimachinery::validation::{
    FieldError, FieldPath, is_dns1035_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_port_num, validate_fully_qualified_name, validate_label_selector,
};

use crate::registry::Column;
use crate::registry::strategies::int;

/// NAME, WEBHOOKS, AGE.
pub(crate) const COLUMNS: &[Column] = &[int(
    "Webhooks",
    0,
    "The number of webhooks in the configuration.",
)];

/// The AdmissionReview versions this server (and the one before it) understands.
const ACCEPTED_REVIEW_VERSIONS: [&str; 2] = ["v1", "v1beta1"];
/// `supportedSideEffectClasses`, sorted.
const SIDE_EFFECTS: [&str; 4] = ["None", "NoneOnDryRun", "Some", "Unknown"];
/// `noSideEffectClasses`, what new webhooks must declare.
const NO_SIDE_EFFECTS: [&str; 2] = ["None", "NoneOnDryRun"];
/// At most this many match conditions per webhook.
const MAX_MATCH_CONDITIONS: usize = 64;

/// The fields of one webhook both kinds have, borrowed.
pub(crate) struct Webhook<'a> {
    pub name: &'a str,
    pub client_config: &'a WebhookClientConfig,
    pub rules: Option<&'a Vec<RuleWithOperations>>,
    pub failure_policy: Option<&'a str>,
    pub match_policy: Option<&'a str>,
    pub side_effects: &'a str,
    pub timeout_seconds: Option<i32>,
    pub namespace_selector: Option<&'a LabelSelector>,
    pub object_selector: Option<&'a LabelSelector>,
    pub admission_review_versions: &'a [String],
    pub match_conditions: Option<&'a Vec<MatchCondition>>,
    /// Mutating webhooks only.
    pub reinvocation_policy: Option<&'a str>,
}

/// The fields of one webhook both kinds have, to default.
pub(crate) struct WebhookDefaults<'a> {
    pub client_config: &'a mut WebhookClientConfig,
    pub rules: Option<&'a mut Vec<RuleWithOperations>>,
    pub failure_policy: &'a mut Option<String>,
    pub match_policy: &'a mut Option<String>,
    pub timeout_seconds: &'a mut Option<i32>,
    pub namespace_selector: &'a mut Option<LabelSelector>,
    pub object_selector: &'a mut Option<LabelSelector>,
}

/// `SetDefaults_ValidatingWebhook` / `SetDefaults_MutatingWebhook`, `SetDefaults_Rule` and
/// `SetDefaults_ServiceReference`.
pub(crate) fn default_webhook(hook: WebhookDefaults<'_>) {
    hook.failure_policy.get_or_insert_with(|| "Fail".into());
    hook.match_policy.get_or_insert_with(|| "Equivalent".into());
    hook.namespace_selector.get_or_insert_with(Default::default);
    hook.object_selector.get_or_insert_with(Default::default);
    hook.timeout_seconds.get_or_insert(10);
    for rule in hook.rules.into_iter().flatten() {
        rule.scope.get_or_insert_with(|| "*".into());
    }
    if let Some(service) = hook.client_config.service.as_mut() {
        service.port.get_or_insert(443);
    }
}

/// How strict validation is: new configurations get every rule, an update of a stored one is
/// let off the rules the stored one already broke (Kubernetes' `validationOptions`).
pub(crate) struct Options {
    pub require_no_side_effects: bool,
    pub require_recognized_review_version: bool,
    pub require_unique_names: bool,
}

impl Options {
    /// The rules for a new configuration.
    pub(crate) const CREATE: Options = Options {
        require_no_side_effects: true,
        require_recognized_review_version: true,
        require_unique_names: true,
    };

    /// The rules for an update of `old`.
    pub(crate) fn update(old: &[Webhook<'_>]) -> Options {
        let mut names = BTreeSet::new();
        Options {
            require_no_side_effects: old
                .iter()
                .all(|h| NO_SIDE_EFFECTS.contains(&h.side_effects)),
            require_recognized_review_version: old.iter().all(|h| {
                h.admission_review_versions.is_empty()
                    || h.admission_review_versions
                        .iter()
                        .any(|v| ACCEPTED_REVIEW_VERSIONS.contains(&v.as_str()))
            }),
            require_unique_names: old.iter().all(|h| names.insert(h.name)),
        }
    }
}

/// Every webhook of a configuration, at `webhooks[i]`.
pub(crate) fn validate_webhooks(hooks: &[Webhook<'_>], options: &Options) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut names = BTreeSet::new();
    let path = FieldPath::new("webhooks");
    for (i, hook) in hooks.iter().enumerate() {
        let at = path.index(i);
        errors.extend(validate_webhook(hook, options, &at));
        errors.extend(validate_review_versions(
            hook.admission_review_versions,
            options.require_recognized_review_version,
            &at.child("admissionReviewVersions"),
        ));
        if options.require_unique_names && !hook.name.is_empty() && !names.insert(hook.name) {
            errors.push(FieldError::duplicate(at.child("name"), hook.name));
        }
    }
    errors
}

fn validate_webhook(hook: &Webhook<'_>, options: &Options, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = validate_fully_qualified_name(hook.name, &path.child("name"));
    for (i, rule) in hook.rules.into_iter().flatten().enumerate() {
        errors.extend(validate_rule(rule, &path.child("rules").index(i)));
    }
    let one_of =
        |errors: &mut Vec<FieldError>, field: &str, value: Option<&str>, valid: &[&str]| {
            if let Some(value) = value
                && !valid.contains(&value)
            {
                errors.push(FieldError::not_supported(path.child(field), value, valid));
            }
        };
    one_of(
        &mut errors,
        "failurePolicy",
        hook.failure_policy,
        &["Fail", "Ignore"],
    );
    one_of(
        &mut errors,
        "matchPolicy",
        hook.match_policy,
        &["Equivalent", "Exact"],
    );
    let allowed: &[&str] = if options.require_no_side_effects {
        &NO_SIDE_EFFECTS
    } else {
        &SIDE_EFFECTS
    };
    if hook.side_effects.is_empty() {
        errors.push(FieldError::required(
            path.child("sideEffects"),
            format!("must specify one of {}", allowed.join(", ")),
        ));
    } else {
        one_of(&mut errors, "sideEffects", Some(hook.side_effects), allowed);
    }
    if let Some(timeout) = hook.timeout_seconds
        && !(1..=30).contains(&timeout)
    {
        errors.push(FieldError::invalid(
            path.child("timeoutSeconds"),
            timeout,
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    if let Some(selector) = hook.namespace_selector {
        errors.extend(validate_label_selector(
            selector,
            &path.child("namespaceSelector"),
        ));
    }
    if let Some(selector) = hook.object_selector {
        errors.extend(validate_label_selector(
            selector,
            &path.child("objectSelector"),
        ));
    }
    one_of(
        &mut errors,
        "reinvocationPolicy",
        hook.reinvocation_policy,
        &["IfNeeded", "Never"],
    );
    errors.extend(validate_client_config(
        hook.client_config,
        &path.child("clientConfig"),
    ));
    errors.extend(validate_match_conditions(
        hook.match_conditions.map(Vec::as_slice).unwrap_or_default(),
        &path.child("matchConditions"),
    ));
    errors
}

/// `validateRuleWithOperations` and `validateRule` (subresources allowed).
fn validate_rule(rule: &RuleWithOperations, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let list = |l: &Option<Vec<String>>| l.clone().unwrap_or_default();
    let (operations, groups, versions, resources) = (
        list(&rule.operations),
        list(&rule.api_groups),
        list(&rule.api_versions),
        list(&rule.resources),
    );
    let wildcard = |l: &[String]| l.len() > 1 && l.iter().any(|s| s == "*");
    let ops_path = path.child("operations");
    if operations.is_empty() {
        errors.push(FieldError::required(&ops_path, ""));
    }
    if wildcard(&operations) {
        errors.push(FieldError::invalid(
            &ops_path,
            operations.clone(),
            "if '*' is present, must not specify other operations",
        ));
    }
    let supported = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
    for (i, op) in operations.iter().enumerate() {
        if !supported.contains(&op.as_str()) {
            errors.push(FieldError::not_supported(
                ops_path.index(i),
                op.as_str(),
                &supported,
            ));
        }
    }
    if groups.is_empty() {
        errors.push(FieldError::required(path.child("apiGroups"), ""));
    }
    if wildcard(&groups) {
        errors.push(FieldError::invalid(
            path.child("apiGroups"),
            groups.clone(),
            "if '*' is present, must not specify other API groups",
        ));
    }
    let versions_path = path.child("apiVersions");
    if versions.is_empty() {
        errors.push(FieldError::required(&versions_path, ""));
    }
    if wildcard(&versions) {
        errors.push(FieldError::invalid(
            &versions_path,
            versions.clone(),
            "if '*' is present, must not specify other API versions",
        ));
    }
    for (i, version) in versions.iter().enumerate() {
        if version.is_empty() {
            errors.push(FieldError::required(versions_path.index(i), ""));
        }
    }
    errors.extend(validate_resources(&resources, &path.child("resources")));
    let scopes = ["*", "Cluster", "Namespaced"];
    if let Some(scope) = &rule.scope
        && !scopes.contains(&scope.as_str())
    {
        errors.push(FieldError::not_supported(
            path.child("scope"),
            scope.as_str(),
            &scopes,
        ));
    }
    errors
}

/// `validateResources`: `resource`, `resource/subresource` and the wildcards, without overlaps.
fn validate_resources(resources: &[String], path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if resources.is_empty() {
        errors.push(FieldError::required(path, ""));
    }
    let mut with_any_subresource = BTreeSet::new();
    let mut subresource_of_any = BTreeSet::new();
    let (mut double_wildcard, mut single_wildcard, mut plain) = (false, false, false);
    for (i, entry) in resources.iter().enumerate() {
        if entry.is_empty() {
            errors.push(FieldError::required(path.index(i), ""));
            continue;
        }
        double_wildcard |= entry == "*/*";
        single_wildcard |= entry == "*";
        let Some((resource, sub)) = entry.split_once('/') else {
            // As Kubernetes does, the last plain entry decides.
            plain = entry != "*";
            continue;
        };
        if with_any_subresource.contains(resource) {
            errors.push(FieldError::invalid(
                path.index(i),
                entry.as_str(),
                format!("if '{resource}/*' is present, must not specify {entry}"),
            ));
        }
        if subresource_of_any.contains(sub) {
            errors.push(FieldError::invalid(
                path.index(i),
                entry.as_str(),
                format!("if '*/{sub}' is present, must not specify {entry}"),
            ));
        }
        if sub == "*" {
            with_any_subresource.insert(resource);
        }
        if resource == "*" {
            subresource_of_any.insert(sub);
        }
    }
    if resources.len() > 1 && double_wildcard {
        errors.push(FieldError::invalid(
            path,
            resources.to_vec(),
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single_wildcard && plain {
        errors.push(FieldError::invalid(
            path,
            resources.to_vec(),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    errors
}

/// `validateAdmissionReviewVersions`.
fn validate_review_versions(
    versions: &[String],
    require_recognized: bool,
    path: &FieldPath,
) -> Vec<FieldError> {
    let accepted = ACCEPTED_REVIEW_VERSIONS.join(", ");
    if versions.is_empty() {
        return vec![FieldError::required(
            path,
            format!("must specify one of {accepted}"),
        )];
    }
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, version) in versions.iter().enumerate() {
        if !seen.insert(version.as_str()) {
            errors.push(FieldError::invalid(
                path.index(i),
                version.as_str(),
                "duplicate version",
            ));
            continue;
        }
        for msg in is_dns1035_label(version) {
            errors.push(FieldError::invalid(path.index(i), version.as_str(), msg));
        }
    }
    let recognized = versions
        .iter()
        .any(|v| ACCEPTED_REVIEW_VERSIONS.contains(&v.as_str()));
    if require_recognized && !recognized {
        errors.push(FieldError::invalid(
            path,
            versions.to_vec(),
            format!("must include at least one of {accepted}"),
        ));
    }
    errors
}

/// Exactly one of `url` (https, a host, no user, query or fragment) and `service`.
fn validate_client_config(config: &WebhookClientConfig, path: &FieldPath) -> Vec<FieldError> {
    match (&config.url, &config.service) {
        (Some(url), None) => validate_url(url, &path.child("url")),
        (None, Some(service)) => {
            let at = path.child("service");
            let mut errors = Vec::new();
            // Kubernetes passes name and namespace to `ValidateWebhookService` in swapped
            // order, so a missing namespace is reported at `name` and the other way round.
            if service.namespace.is_empty() {
                errors.push(FieldError::required(
                    at.child("name"),
                    "service name is required",
                ));
            }
            if service.name.is_empty() {
                errors.push(FieldError::required(
                    at.child("namespace"),
                    "service namespace is required",
                ));
            }
            let port = service.port.unwrap_or(443);
            let problems = is_valid_port_num(i64::from(port));
            if !problems.is_empty() {
                errors.push(FieldError::invalid(
                    at.child("port"),
                    port,
                    format!("port is not valid: {}", problems.join(", ")),
                ));
            }
            if let Some(p) = &service.path {
                errors.extend(validate_service_path(p, &at.child("path")));
            }
            errors
        }
        _ => vec![FieldError::required(
            path,
            "exactly one of url or service is required",
        )],
    }
}

/// `ValidateWebhookURL` with https forced, on the parts Go's `url.Parse` splits a URL into.
fn validate_url(url: &str, path: &FieldPath) -> Vec<FieldError> {
    const FORM: &str = "; desired format: https://host[/path]";
    let Some(parts) = UrlParts::parse(url) else {
        return vec![FieldError::required(
            path,
            format!(
                "url must be a valid URL: parse {}: missing protocol scheme{FORM}",
                serde_json::Value::from(url)
            ),
        )];
    };
    let mut errors = Vec::new();
    if parts.scheme != "https" {
        errors.push(FieldError::invalid(
            path,
            parts.scheme.as_str(),
            format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    if parts.host.is_empty() {
        errors.push(FieldError::invalid(
            path,
            parts.host,
            format!("host must be provided{FORM}"),
        ));
    }
    if let Some(user) = parts.user {
        errors.push(FieldError::invalid(
            path,
            user,
            "user information is not permitted in the URL",
        ));
    }
    if !parts.fragment.is_empty() {
        errors.push(FieldError::invalid(
            path,
            parts.fragment,
            "fragments are not permitted in the URL",
        ));
    }
    if !parts.query.is_empty() {
        errors.push(FieldError::invalid(
            path,
            parts.query,
            "query parameters are not permitted in the URL",
        ));
    }
    errors
}

/// The parts of a URL that webhook validation looks at, split as Go's `url.Parse` splits them.
struct UrlParts<'a> {
    scheme: String,
    user: Option<&'a str>,
    host: &'a str,
    query: &'a str,
    fragment: &'a str,
}

impl<'a> UrlParts<'a> {
    /// `None` for the one refusal that matters here: a URL starting with `:` (no scheme).
    fn parse(url: &'a str) -> Option<UrlParts<'a>> {
        let (rest, fragment) = url.split_once('#').unwrap_or((url, ""));
        let mut scheme = String::new();
        let mut rest = rest;
        let end = rest.find([':', '/', '?']).unwrap_or(rest.len());
        if rest[end..].starts_with(':') {
            if end == 0 {
                return None;
            }
            let candidate = &rest[..end];
            let valid = candidate.starts_with(|c: char| c.is_ascii_alphabetic())
                && candidate
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if valid {
                scheme = candidate.to_ascii_lowercase();
                rest = &rest[end + 1..];
            }
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut user, mut host) = (None, "");
        if let Some(after) = rest.strip_prefix("//") {
            let authority = &after[..after.find('/').unwrap_or(after.len())];
            match authority.rsplit_once('@') {
                Some((u, h)) => (user, host) = (Some(u), h),
                None => host = authority,
            }
        }
        Some(UrlParts {
            scheme,
            user,
            host,
            query,
            fragment,
        })
    }
}

/// A service path: `/` and segments that are DNS subdomains.
fn validate_service_path(p: &str, path: &FieldPath) -> Vec<FieldError> {
    if p.is_empty() || p == "/" {
        return Vec::new();
    }
    if p == "//" {
        return vec![FieldError::invalid(path, p, "segment[0] may not be empty")];
    }
    let mut errors = Vec::new();
    if !p.starts_with('/') {
        errors.push(FieldError::invalid(path, p, "must start with a '/'"));
    }
    let inner = p.get(1..).unwrap_or_default();
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    for (i, step) in inner.split('/').enumerate() {
        if step.is_empty() {
            errors.push(FieldError::invalid(
                path,
                p,
                format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for msg in is_dns1123_subdomain(step) {
            errors.push(FieldError::invalid(path, p, format!("segment[{i}]: {msg}")));
        }
    }
    errors
}

/// `validateMatchConditions` without compiling the CEL expressions (skiff has no CEL yet):
/// at most 64, each with a unique qualified name and an expression.
fn validate_match_conditions(conditions: &[MatchCondition], path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if conditions.len() > MAX_MATCH_CONDITIONS {
        errors.push(FieldError::too_many(
            path,
            Some(conditions.len()),
            MAX_MATCH_CONDITIONS,
        ));
    }
    let mut names = BTreeSet::new();
    for (i, condition) in conditions.iter().enumerate() {
        let at = path.index(i);
        if condition.name.is_empty() {
            errors.push(FieldError::required(at.child("name"), ""));
        } else {
            for msg in is_qualified_name(&condition.name) {
                errors.push(FieldError::invalid(
                    at.child("name"),
                    condition.name.as_str(),
                    msg,
                ));
            }
            if !names.insert(condition.name.as_str()) {
                errors.push(FieldError::duplicate(
                    at.child("name"),
                    condition.name.as_str(),
                ));
            }
        }
        if condition.expression.is_empty() {
            errors.push(FieldError::required(at.child("expression"), ""));
        }
    }
    errors
}

/// The `Strategy` of a webhook configuration kind (`$config`, served by `$strategy`): its
/// webhooks viewed as a [`Webhook`] (`reinvocation` reads the reinvocation policy, which only
/// mutating webhooks have), defaulted with [`default_webhook`] after the kind's own `default`,
/// validated with [`validate_webhooks`], and the WEBHOOKS column.
macro_rules! webhook_configuration_strategy {
    (
        $strategy:ident, $config:ty,
        reinvocation: |$r:ident| $reinvocation:expr,
        default: |$d:ident| $own_default:block
    ) => {
        fn views(config: &$config) -> Vec<$crate::registry::strategies::admissionregistration::webhook::Webhook<'_>> {
            config
                .webhooks
                .iter()
                .flatten()
                .map(|$r| $crate::registry::strategies::admissionregistration::webhook::Webhook {
                    name: &$r.name,
                    client_config: &$r.client_config,
                    rules: $r.rules.as_ref(),
                    failure_policy: $r.failure_policy.as_deref(),
                    match_policy: $r.match_policy.as_deref(),
                    side_effects: &$r.side_effects,
                    timeout_seconds: $r.timeout_seconds,
                    namespace_selector: $r.namespace_selector.as_ref(),
                    object_selector: $r.object_selector.as_ref(),
                    admission_review_versions: &$r.admission_review_versions,
                    match_conditions: $r.match_conditions.as_ref(),
                    reinvocation_policy: $reinvocation,
                })
                .collect()
        }

        impl $crate::registry::Strategy<$config> for $strategy {
            fn default(&self, config: &mut $config) {
                for $d in config.webhooks.iter_mut().flatten() {
                    $own_default
                    $crate::registry::strategies::admissionregistration::webhook::default_webhook(
                        $crate::registry::strategies::admissionregistration::webhook::WebhookDefaults {
                            client_config: &mut $d.client_config,
                            rules: $d.rules.as_mut(),
                            failure_policy: &mut $d.failure_policy,
                            match_policy: &mut $d.match_policy,
                            timeout_seconds: &mut $d.timeout_seconds,
                            namespace_selector: &mut $d.namespace_selector,
                            object_selector: &mut $d.object_selector,
                        },
                    );
                }
            }

            fn validate(&self, config: &$config) -> Vec<skiff_apimachinery::validation::FieldError> {
                $crate::registry::strategies::admissionregistration::webhook::validate_webhooks(
                    &views(config),
                    &$crate::registry::strategies::admissionregistration::webhook::Options::CREATE,
                )
            }

            fn validate_update(
                &self,
                new: &$config,
                old: &$config,
            ) -> Vec<skiff_apimachinery::validation::FieldError> {
                $crate::registry::strategies::admissionregistration::webhook::validate_webhooks(
                    &views(new),
                    &$crate::registry::strategies::admissionregistration::webhook::Options::update(
                        &views(old),
                    ),
                )
            }

            fn columns(&self) -> &'static [$crate::registry::Column] {
                $crate::registry::strategies::admissionregistration::webhook::COLUMNS
            }

            fn cells(&self, config: &$config) -> Vec<serde_json::Value> {
                vec![serde_json::json!(config.webhooks.as_ref().map_or(0, Vec::len))]
            }
        }
    };
}
pub(crate) use webhook_configuration_strategy;
