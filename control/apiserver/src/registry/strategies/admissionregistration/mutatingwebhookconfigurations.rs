//! MutatingWebhookConfigurations: the validating kind's rules, plus a reinvocation policy
//! (`Never` unless set).

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;

use super::webhook::webhook_configuration_strategy;

/// MutatingWebhookConfigurations.
pub struct MutatingWebhookConfigurations;

webhook_configuration_strategy!(
    MutatingWebhookConfigurations,
    MutatingWebhookConfiguration,
    reinvocation: |hook| hook.reinvocation_policy.as_deref(),
    default: |hook| {
        hook.reinvocation_policy.get_or_insert_with(|| "Never".into());
    }
);
