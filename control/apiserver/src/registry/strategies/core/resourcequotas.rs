//! ResourceQuotas: the quantities of their hard limits.

use k8s_openapi::api::core::v1::ResourceQuota;
use skiff_apimachinery::validation::FieldError;

use crate::registry::Strategy;
use crate::registry::strategies::resources::validate_resource_quota;

/// ResourceQuotas.
pub struct ResourceQuotas;

impl Strategy<ResourceQuota> for ResourceQuotas {
    fn validate(&self, quota: &ResourceQuota) -> Vec<FieldError> {
        validate_resource_quota(quota)
    }
}
