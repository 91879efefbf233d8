//! HorizontalPodAutoscalers: the REFERENCE / TARGETS / MINPODS / MAXPODS / REPLICAS columns.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use serde_json::{Value, json};

use crate::registry::strategies::{col, int};
use crate::registry::{Column, Strategy};

/// HorizontalPodAutoscalers.
pub struct HorizontalPodAutoscalers;

impl Strategy<HorizontalPodAutoscaler> for HorizontalPodAutoscalers {
    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Reference", 0, "The scaled object."),
                col("Targets", 0, "The metrics' current and target values."),
                int("MinPods", 0, "The fewest replicas."),
                int("MaxPods", 0, "The most replicas."),
                int("Replicas", 0, "The current replicas."),
            ]
        }
    }

    fn cells(&self, hpa: &HorizontalPodAutoscaler) -> Vec<Value> {
        let spec = hpa.spec.clone();
        let target = &spec.scale_target_ref;
        let reference = format!("{}/{}", target.kind, target.name);
        let targets = if spec.metrics.as_ref().is_some_and(|m| !m.is_empty()) {
            "<unknown>"
        } else {
            "<none>"
        };
        vec![
            json!(reference),
            json!(targets),
            json!(spec.min_replicas.unwrap_or(1)),
            json!(spec.max_replicas),
            json!(
                hpa.status
                    .as_ref()
                    .and_then(|s| s.current_replicas)
                    .unwrap_or(0)
            ),
        ]
    }
}
