//! Jobs: defaults, the generated selector, validation, the `status.successful` field selector
//! and columns.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{Value, json};
use skiff_apimachinery::validation::{FieldError, FieldPath};

use crate::registry::strategies::podspec::{RUN_TO_COMPLETION, validate_template};
use crate::registry::strategies::{
    TEMPLATE_COLUMNS, col, containers_and_images, default_template, selector_text,
};
use crate::registry::{Column, Strategy};

/// Jobs.
pub struct Jobs;

/// The label a Job's pods carry so the Job can select them.
const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";

const JOB_COLUMNS: &[Column] = &[
    col("Status", 0, "Status of the job."),
    col("Completions", 0, "The completed and desired completions."),
    col("Duration", 0, "Time the job took to finish."),
    TEMPLATE_COLUMNS[0],
    TEMPLATE_COLUMNS[1],
    TEMPLATE_COLUMNS[2],
];

impl Strategy<Job> for Jobs {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

    fn default(&self, job: &mut Job) {
        if let Some(spec) = job.spec.as_mut() {
            if spec.completions.is_none() && spec.parallelism.is_none() {
                spec.completions = Some(1);
            }
            spec.parallelism.get_or_insert(1);
            spec.backoff_limit.get_or_insert(6);
            spec.completion_mode
                .get_or_insert_with(|| "NonIndexed".into());
            spec.suspend.get_or_insert(false);
            spec.manual_selector.get_or_insert(false);
            spec.pod_replacement_policy
                .get_or_insert_with(|| "TerminatingOrFailed".into());
            default_template(&mut spec.template);
        }
    }

    /// Kubernetes generates a Job's selector from its UID (unless `manualSelector`), and labels
    /// the pod template to match.
    fn prepare_for_create(&self, job: &mut Job) {
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let name = job.metadata.name.clone().unwrap_or_default();
        let Some(spec) = job.spec.as_mut() else {
            return;
        };
        if spec.manual_selector == Some(true) {
            return;
        }
        let labels = spec
            .template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default);
        for (key, value) in [
            (CONTROLLER_UID, uid.as_str()),
            ("batch.kubernetes.io/job-name", name.as_str()),
            ("controller-uid", uid.as_str()),
            ("job-name", name.as_str()),
        ] {
            labels.insert(key.into(), value.into());
        }
        spec.selector = Some(LabelSelector {
            match_labels: Some([(CONTROLLER_UID.to_owned(), uid)].into()),
            ..Default::default()
        });
    }

    fn validate(&self, job: &Job) -> Vec<FieldError> {
        let Some(spec) = &job.spec else {
            return vec![FieldError::required("spec", "")];
        };
        let path = FieldPath::new("spec");
        let mut errors = Vec::new();
        for (field, value) in [
            ("parallelism", spec.parallelism),
            ("completions", spec.completions),
            ("backoffLimit", spec.backoff_limit),
        ] {
            if let Some(v) = value.filter(|v| *v < 0) {
                errors.push(FieldError::invalid(
                    path.child(field),
                    v,
                    "must be greater than or equal to 0",
                ));
            }
        }
        errors.extend(validate_template(
            spec.selector.as_ref(),
            &spec.template,
            &path,
            RUN_TO_COMPLETION,
        ));
        errors
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.successful"]
    }

    fn field(&self, job: &Job, label: &str) -> Option<String> {
        (label == "status.successful").then(|| {
            job.status
                .as_ref()
                .and_then(|s| s.succeeded)
                .unwrap_or(0)
                .to_string()
        })
    }

    fn columns(&self) -> &'static [Column] {
        JOB_COLUMNS
    }

    fn cells(&self, job: &Job) -> Vec<Value> {
        let spec = job.spec.clone().unwrap_or_default();
        let status = job.status.clone().unwrap_or_default();
        let condition = |kind: &str| {
            status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == kind && c.status == "True")
        };
        let state = if condition("Complete") {
            "Complete"
        } else if condition("Failed") {
            "Failed"
        } else if spec.suspend == Some(true) {
            "Suspended"
        } else {
            "Running"
        };
        let completions = match spec.completions {
            Some(n) => format!("{}/{n}", status.succeeded.unwrap_or(0)),
            None => format!(
                "{}/1 of {}",
                status.succeeded.unwrap_or(0),
                spec.parallelism.unwrap_or(1)
            ),
        };
        let duration = match (&status.start_time, &status.completion_time) {
            (Some(start), Some(end)) => {
                crate::handlers::human_duration(end.0.as_second() - start.0.as_second())
            }
            (Some(start), None) => crate::handlers::human_duration(
                jiff::Timestamp::now().as_second() - start.0.as_second(),
            ),
            _ => String::new(),
        };
        let (containers, images) = containers_and_images(&spec.template);
        vec![
            json!(state),
            json!(completions),
            json!(duration),
            containers,
            images,
            selector_text(spec.selector.as_ref()),
        ]
    }
}
