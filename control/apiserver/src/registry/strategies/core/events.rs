//! Events (core/v1): the `involvedObject.*` field selectors and the row kubectl prints (LAST SEEN
//! first).

use k8s_openapi::api::core::v1::Event;
use serde_json::{Value, json};

use crate::registry::strategies::col;
use crate::registry::{Column, Strategy};

/// Events.
pub struct Events;

impl Strategy<Event> for Events {
    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]
    }

    fn field(&self, ev: &Event, label: &str) -> Option<String> {
        let o = &ev.involved_object;
        let value = match label {
            "involvedObject.kind" => o.kind.clone(),
            "involvedObject.namespace" => o.namespace.clone(),
            "involvedObject.name" => o.name.clone(),
            "involvedObject.uid" => o.uid.clone(),
            "involvedObject.apiVersion" => o.api_version.clone(),
            "involvedObject.resourceVersion" => o.resource_version.clone(),
            "involvedObject.fieldPath" => o.field_path.clone(),
            "reason" => ev.reason.clone(),
            "reportingComponent" => ev.reporting_component.clone(),
            "source" => ev.source.as_ref().and_then(|s| s.component.clone()),
            "type" => ev.type_.clone(),
            _ => return None,
        };
        Some(value.unwrap_or_default())
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Last Seen", 0, "When the event last happened."),
                col("Type", 0, "The type of the event."),
                col("Reason", 0, "Why the event happened."),
                col("Object", 0, "The object the event is about."),
                col("Subobject", 1, "The part of the object (a container)."),
                col("Source", 1, "The component that reported the event."),
                col("Message", 0, "What happened."),
                col("First Seen", 1, "When the event first happened."),
                col("Count", 1, "How often the event happened."),
                col("Name", 1, "The event's name."),
            ]
        }
    }

    fn whole_row(&self) -> bool {
        true
    }

    fn cells(&self, ev: &Event) -> Vec<Value> {
        let o = &ev.involved_object;
        let since = |time: Option<jiff::Timestamp>| match time {
            Some(time) => crate::handlers::human_duration(
                jiff::Timestamp::now().as_second() - time.as_second(),
            ),
            None => "<unknown>".into(),
        };
        // As Kubernetes prints them: lastTimestamp (firstTimestamp), else eventTime, else
        // the creation time.
        let or_fallbacks = |time: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            time.map(|t| t.0)
                .or_else(|| ev.event_time.as_ref().map(|t| t.0))
                .or_else(|| ev.metadata.creation_timestamp.as_ref().map(|t| t.0))
        };
        let last = or_fallbacks(ev.last_timestamp.as_ref());
        let first = or_fallbacks(ev.first_timestamp.as_ref());
        let count = ev.count.unwrap_or(1);
        let last_seen = if count > 1 {
            format!("{} (x{count} over {})", since(last), since(first))
        } else {
            since(last)
        };
        let source = ev.source.clone().unwrap_or_default();
        let source = match (source.component, source.host) {
            (Some(component), Some(host)) if !host.is_empty() => format!("{component}, {host}"),
            (Some(component), _) => component,
            _ => ev.reporting_component.clone().unwrap_or_default(),
        };
        vec![
            json!(last_seen),
            json!(ev.type_.clone().unwrap_or_default()),
            json!(ev.reason.clone().unwrap_or_default()),
            json!(format!(
                "{}/{}",
                o.kind.clone().unwrap_or_default().to_lowercase(),
                o.name.clone().unwrap_or_default()
            )),
            json!(o.field_path.clone().unwrap_or_default()),
            json!(source),
            json!(ev.message.clone().unwrap_or_default()),
            json!(since(first)),
            json!(count),
            json!(ev.metadata.name.clone().unwrap_or_default()),
        ]
    }
}
