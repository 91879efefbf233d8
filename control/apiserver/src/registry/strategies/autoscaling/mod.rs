//! `autoscaling/v2`.

mod horizontalpodautoscalers;

pub use horizontalpodautoscalers::HorizontalPodAutoscalers;
