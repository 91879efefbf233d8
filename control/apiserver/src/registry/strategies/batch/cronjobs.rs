//! CronJobs: defaults, validation of the schedule and the job template, and columns.

use k8s_openapi::api::batch::v1::CronJob;
use serde_json::{Value, json};
use skiff_apimachinery::validation::{FieldError, FieldPath};

use crate::registry::strategies::podspec::{RUN_TO_COMPLETION, validate_pod_spec};
use crate::registry::strategies::{
    TEMPLATE_COLUMNS, col, containers_and_images, default_template, int, or_none, selector_text,
};
use crate::registry::{Column, Strategy};

/// CronJobs.
pub struct CronJobs;

const CRON_COLUMNS: &[Column] = &[
    col("Schedule", 0, "The schedule in Cron format."),
    col("Timezone", 0, "The time zone of the schedule."),
    col("Suspend", 0, "Whether the cron job is suspended."),
    int("Active", 0, "The number of jobs running."),
    col("Last Schedule", 0, "When the job was last scheduled."),
    TEMPLATE_COLUMNS[0],
    TEMPLATE_COLUMNS[1],
    TEMPLATE_COLUMNS[2],
];

impl Strategy<CronJob> for CronJobs {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

    fn default(&self, cj: &mut CronJob) {
        {
            let spec = &mut cj.spec;
            spec.concurrency_policy
                .get_or_insert_with(|| "Allow".into());
            spec.suspend.get_or_insert(false);
            spec.successful_jobs_history_limit.get_or_insert(3);
            spec.failed_jobs_history_limit.get_or_insert(1);
            if let Some(job) = spec.job_template.spec.as_mut() {
                default_template(&mut job.template);
            }
        }
    }

    fn validate(&self, cj: &CronJob) -> Vec<FieldError> {
        let path = FieldPath::new("spec");
        let mut errors = Vec::new();
        if cj.spec.schedule.trim().is_empty() {
            errors.push(FieldError::required(path.child("schedule"), ""));
        } else if cj.spec.schedule.split_whitespace().count() != 5
            && !cj.spec.schedule.starts_with('@')
        {
            errors.push(FieldError::invalid(
                path.child("schedule"),
                cj.spec.schedule.clone(),
                "unparseable cron schedule: expected exactly 5 fields",
            ));
        }
        let template = path
            .child("jobTemplate")
            .child("spec")
            .child("template")
            .child("spec");
        match cj
            .spec
            .job_template
            .spec
            .as_ref()
            .and_then(|j| j.template.spec.as_ref())
        {
            Some(pod) => errors.extend(validate_pod_spec(pod, &template, RUN_TO_COMPLETION)),
            None => errors.push(FieldError::required(template, "")),
        }
        errors
    }

    fn columns(&self) -> &'static [Column] {
        CRON_COLUMNS
    }

    fn cells(&self, cj: &CronJob) -> Vec<Value> {
        let spec = cj.spec.clone();
        let status = cj.status.clone().unwrap_or_default();
        let last = status
            .last_schedule_time
            .map(|t| {
                crate::handlers::human_duration(
                    jiff::Timestamp::now().as_second() - t.0.as_second(),
                )
            })
            .unwrap_or_default();
        let template = spec.job_template.spec.clone().unwrap_or_default();
        let (containers, images) = containers_and_images(&template.template);
        vec![
            json!(spec.schedule),
            or_none(spec.time_zone.unwrap_or_default()),
            json!(
                spec.suspend
                    .unwrap_or(false)
                    .to_string()
                    .replace("false", "False")
                    .replace("true", "True")
            ),
            json!(status.active.map_or(0, |a| a.len())),
            or_none(last),
            containers,
            images,
            selector_text(template.selector.as_ref()),
        ]
    }
}
