//! ValidatingWebhookConfigurations.

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;

use super::webhook::webhook_configuration_strategy;

/// ValidatingWebhookConfigurations.
pub struct ValidatingWebhookConfigurations;

webhook_configuration_strategy!(
    ValidatingWebhookConfigurations,
    ValidatingWebhookConfiguration,
    reinvocation: |hook| None,
    default: |hook| {}
);
