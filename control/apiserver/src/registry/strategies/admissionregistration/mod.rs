//! `admissionregistration.k8s.io/v1`: webhook configurations, stored and validated as
//! Kubernetes' `ValidateValidatingWebhookConfiguration` / `ValidateMutatingWebhookConfiguration`
//! do it (calling the webhooks is the admission chain's job, not the registry's). `webhook`
//! holds what both kinds share.

mod mutatingwebhookconfigurations;
mod validatingwebhookconfigurations;
mod webhook;

pub use mutatingwebhookconfigurations::MutatingWebhookConfigurations;
pub use validatingwebhookconfigurations::ValidatingWebhookConfigurations;
