//! MutatingWebhookConfigurations: the validating kind's rules, plus a reinvocation policy
//! (`Never` unless set).

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use serde_json::{Value, json};
use skiff_apimachinery::validation::FieldError;

use super::webhook::{
    COLUMNS, Options, Webhook, WebhookDefaults, default_webhook, validate_webhooks,
};
use crate::registry::{Column, Strategy};

/// MutatingWebhookConfigurations.
pub struct MutatingWebhookConfigurations;

fn view(hook: &MutatingWebhook) -> Webhook<'_> {
    Webhook {
        name: &hook.name,
        client_config: &hook.client_config,
        rules: hook.rules.as_ref(),
        failure_policy: hook.failure_policy.as_deref(),
        match_policy: hook.match_policy.as_deref(),
        side_effects: &hook.side_effects,
        timeout_seconds: hook.timeout_seconds,
        namespace_selector: hook.namespace_selector.as_ref(),
        object_selector: hook.object_selector.as_ref(),
        admission_review_versions: &hook.admission_review_versions,
        match_conditions: hook.match_conditions.as_ref(),
        reinvocation_policy: hook.reinvocation_policy.as_deref(),
    }
}

fn views(config: &MutatingWebhookConfiguration) -> Vec<Webhook<'_>> {
    config.webhooks.iter().flatten().map(view).collect()
}

impl Strategy<MutatingWebhookConfiguration> for MutatingWebhookConfigurations {
    fn default(&self, config: &mut MutatingWebhookConfiguration) {
        for hook in config.webhooks.iter_mut().flatten() {
            hook.reinvocation_policy
                .get_or_insert_with(|| "Never".into());
            default_webhook(WebhookDefaults {
                client_config: &mut hook.client_config,
                rules: hook.rules.as_mut(),
                failure_policy: &mut hook.failure_policy,
                match_policy: &mut hook.match_policy,
                timeout_seconds: &mut hook.timeout_seconds,
                namespace_selector: &mut hook.namespace_selector,
                object_selector: &mut hook.object_selector,
            });
        }
    }

    fn validate(&self, config: &MutatingWebhookConfiguration) -> Vec<FieldError> {
        validate_webhooks(&views(config), &Options::CREATE)
    }

    fn validate_update(
        &self,
        new: &MutatingWebhookConfiguration,
        old: &MutatingWebhookConfiguration,
    ) -> Vec<FieldError> {
        validate_webhooks(&views(new), &Options::update(&views(old)))
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn cells(&self, config: &MutatingWebhookConfiguration) -> Vec<Value> {
        vec![json!(config.webhooks.as_ref().map_or(0, Vec::len))]
    }
}
