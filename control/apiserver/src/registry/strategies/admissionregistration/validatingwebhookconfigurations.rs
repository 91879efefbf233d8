//! ValidatingWebhookConfigurations.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingWebhook, ValidatingWebhookConfiguration,
};
use serde_json::{Value, json};
use skiff_apimachinery::validation::FieldError;

use super::webhook::{
    COLUMNS, Options, Webhook, WebhookDefaults, default_webhook, validate_webhooks,
};
use crate::registry::{Column, Strategy};

/// ValidatingWebhookConfigurations.
pub struct ValidatingWebhookConfigurations;

fn view(hook: &ValidatingWebhook) -> Webhook<'_> {
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
        reinvocation_policy: None,
    }
}

fn views(config: &ValidatingWebhookConfiguration) -> Vec<Webhook<'_>> {
    config.webhooks.iter().flatten().map(view).collect()
}

impl Strategy<ValidatingWebhookConfiguration> for ValidatingWebhookConfigurations {
    fn default(&self, config: &mut ValidatingWebhookConfiguration) {
        for hook in config.webhooks.iter_mut().flatten() {
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

    fn validate(&self, config: &ValidatingWebhookConfiguration) -> Vec<FieldError> {
        validate_webhooks(&views(config), &Options::CREATE)
    }

    fn validate_update(
        &self,
        new: &ValidatingWebhookConfiguration,
        old: &ValidatingWebhookConfiguration,
    ) -> Vec<FieldError> {
        validate_webhooks(&views(new), &Options::update(&views(old)))
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn cells(&self, config: &ValidatingWebhookConfiguration) -> Vec<Value> {
        vec![json!(config.webhooks.as_ref().map_or(0, Vec::len))]
    }
}
