//! LimitRanges: the quantities of their limits.

use k8s_openapi::api::core::v1::LimitRange;
use skiff_apimachinery::validation::{FieldError, FieldPath};

use crate::registry::Strategy;
use crate::registry::strategies::resources::validate_limit_range_item;

/// LimitRanges.
pub struct LimitRanges;

impl Strategy<LimitRange> for LimitRanges {
    fn validate(&self, range: &LimitRange) -> Vec<FieldError> {
        let path = FieldPath::new("spec").child("limits");
        let items = range.spec.iter().flat_map(|s| s.limits.iter());
        items
            .enumerate()
            .flat_map(|(i, item)| validate_limit_range_item(item, &path.index(i)))
            .collect()
    }
}
