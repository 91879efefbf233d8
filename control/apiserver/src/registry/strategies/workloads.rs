//! Workload controllers' objects: Deployments, ReplicaSets, StatefulSets, DaemonSets,
//! ReplicationControllers, Jobs and CronJobs — their defaults and printer columns.

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetUpdateStrategy, Deployment, DeploymentStrategy, ReplicaSet,
    RollingUpdateDaemonSet, RollingUpdateDeployment, RollingUpdateStatefulSetStrategy, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ReplicationController, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::podspec::{validate_pod_spec, validate_replicas, validate_template};
use super::resources::decode_claim_resources;
use super::{col, containers_and_images, default_template, int, or_none, selector_text};
use skiff_apimachinery::validation::{FieldError, FieldPath};

/// Controllers' pods run until replaced: the only restart policy they may have.
const ALWAYS: &[&str] = &["Always"];
/// A Job's pods end: they may not restart forever.
const RUN_TO_COMPLETION: &[&str] = &["OnFailure", "Never"];

/// `spec.selector` of a controller is immutable once set.
fn selector_unchanged<T: PartialEq + serde::Serialize>(new: &T, old: &T) -> Vec<FieldError> {
    if new == old {
        return Vec::new();
    }
    vec![FieldError::invalid(
        "spec.selector",
        serde_json::to_value(new).unwrap_or_default(),
        "field is immutable",
    )]
}
use crate::registry::{Column, Strategy};

/// Deployments.
pub struct Deployments;
/// ReplicaSets.
pub struct ReplicaSets;
/// StatefulSets.
pub struct StatefulSets;
/// DaemonSets.
pub struct DaemonSets;
/// ReplicationControllers.
pub struct ReplicationControllers;
/// Jobs.
pub struct Jobs;
/// CronJobs.
pub struct CronJobs;

fn percent(p: &str) -> IntOrString {
    IntOrString::String(p.into())
}

const WIDE: [Column; 3] = [
    col("Containers", 1, "Names of each container in the template."),
    col(
        "Images",
        1,
        "Images referenced by each container in the template.",
    ),
    col("Selector", 1, "Label selector for the pods."),
];

const DEPLOYMENT_COLUMNS: &[Column] = &[
    col("Ready", 0, "Number of the pod with ready state."),
    int(
        "Up-to-date",
        0,
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    int(
        "Available",
        0,
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    WIDE[0],
    WIDE[1],
    WIDE[2],
];

impl Strategy<Deployment> for Deployments {
    fn default(&self, d: &mut Deployment) {
        let spec = &mut d.spec;
        spec.replicas.get_or_insert(1);
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        let strategy = spec
            .strategy
            .get_or_insert_with(DeploymentStrategy::default);
        let kind = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
        if kind == "RollingUpdate" {
            let rolling = strategy
                .rolling_update
                .get_or_insert_with(RollingUpdateDeployment::default);
            rolling.max_surge.get_or_insert_with(|| percent("25%"));
            rolling
                .max_unavailable
                .get_or_insert_with(|| percent("25%"));
        }
        default_template(&mut spec.template);
    }

    fn validate(&self, d: &Deployment) -> Vec<FieldError> {
        let path = FieldPath::new("spec");
        let mut errors = validate_replicas(d.spec.replicas, &path);
        errors.extend(validate_template(
            Some(&d.spec.selector),
            &d.spec.template,
            &path,
            ALWAYS,
        ));
        errors
    }

    fn validate_update(&self, new: &Deployment, old: &Deployment) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        errors.extend(selector_unchanged(&new.spec.selector, &old.spec.selector));
        errors
    }

    fn columns(&self) -> &'static [Column] {
        DEPLOYMENT_COLUMNS
    }

    fn cells(&self, d: &Deployment) -> Vec<Value> {
        let status = d.status.clone().unwrap_or_default();
        let (containers, images) = containers_and_images(&d.spec.template);
        vec![
            json!(format!(
                "{}/{}",
                status.ready_replicas.unwrap_or(0),
                d.spec.replicas.unwrap_or(1)
            )),
            json!(status.updated_replicas.unwrap_or(0)),
            json!(status.available_replicas.unwrap_or(0)),
            containers,
            images,
            selector_text(Some(&d.spec.selector)),
        ]
    }
}

const REPLICA_COLUMNS: &[Column] = &[
    int("Desired", 0, "Number of desired pods."),
    int("Current", 0, "Number of actually running pods."),
    int("Ready", 0, "Number of ready pods."),
    WIDE[0],
    WIDE[1],
    WIDE[2],
];

impl Strategy<ReplicaSet> for ReplicaSets {
    fn default(&self, rs: &mut ReplicaSet) {
        {
            let spec = &mut rs.spec;
            spec.replicas.get_or_insert(1);
            if let Some(template) = spec.template.as_mut() {
                default_template(template);
            }
        }
    }

    fn validate(&self, rs: &ReplicaSet) -> Vec<FieldError> {
        let path = FieldPath::new("spec");
        let mut errors = validate_replicas(rs.spec.replicas, &path);
        match &rs.spec.template {
            Some(template) => errors.extend(validate_template(
                Some(&rs.spec.selector),
                template,
                &path,
                ALWAYS,
            )),
            None => errors.push(FieldError::required("spec.template", "")),
        }
        errors
    }

    fn validate_update(&self, new: &ReplicaSet, old: &ReplicaSet) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        errors.extend(selector_unchanged(&new.spec.selector, &old.spec.selector));
        errors
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }

    fn field(&self, rs: &ReplicaSet, label: &str) -> Option<String> {
        (label == "status.replicas")
            .then(|| rs.status.as_ref().map_or(0, |s| s.replicas).to_string())
    }

    fn columns(&self) -> &'static [Column] {
        REPLICA_COLUMNS
    }

    fn cells(&self, rs: &ReplicaSet) -> Vec<Value> {
        let spec = rs.spec.clone();
        let status = rs.status.clone().unwrap_or_default();
        let (containers, images) = spec
            .template
            .as_ref()
            .map(containers_and_images)
            .unwrap_or((json!(""), json!("")));
        vec![
            json!(spec.replicas.unwrap_or(1)),
            json!(status.replicas),
            json!(status.ready_replicas.unwrap_or(0)),
            containers,
            images,
            selector_text(Some(&spec.selector)),
        ]
    }
}

impl Strategy<ReplicationController> for ReplicationControllers {
    fn default(&self, rc: &mut ReplicationController) {
        if let Some(spec) = rc.spec.as_mut() {
            spec.replicas.get_or_insert(1);
            if let Some(template) = spec.template.as_mut() {
                // An RC without a selector selects its template's labels.
                if spec.selector.is_none() {
                    spec.selector = template.metadata.as_ref().and_then(|m| m.labels.clone());
                }
                default_template(template);
            }
        }
    }

    fn columns(&self) -> &'static [Column] {
        &REPLICA_COLUMNS[..3]
    }

    fn cells(&self, rc: &ReplicationController) -> Vec<Value> {
        let spec = rc.spec.clone().unwrap_or_default();
        let status = rc.status.clone().unwrap_or_default();
        vec![
            json!(spec.replicas.unwrap_or(1)),
            json!(status.replicas),
            json!(status.ready_replicas.unwrap_or(0)),
        ]
    }
}

const STATEFUL_COLUMNS: &[Column] = &[
    col("Ready", 0, "Number of the pod with ready state."),
    WIDE[0],
    WIDE[1],
];

impl Strategy<StatefulSet> for StatefulSets {
    fn default(&self, sts: &mut StatefulSet) {
        {
            let spec = &mut sts.spec;
            spec.replicas.get_or_insert(1);
            spec.pod_management_policy
                .get_or_insert_with(|| "OrderedReady".into());
            spec.revision_history_limit.get_or_insert(10);
            let update = spec
                .update_strategy
                .get_or_insert_with(StatefulSetUpdateStrategy::default);
            if update.type_.get_or_insert_with(|| "RollingUpdate".into()) == "RollingUpdate" {
                let rolling = update
                    .rolling_update
                    .get_or_insert_with(RollingUpdateStatefulSetStrategy::default);
                rolling.partition.get_or_insert(0);
            }
            let retention = spec
                .persistent_volume_claim_retention_policy
                .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
            retention
                .when_deleted
                .get_or_insert_with(|| "Retain".into());
            retention.when_scaled.get_or_insert_with(|| "Retain".into());
            default_template(&mut spec.template);
        }
    }

    fn validate(&self, sts: &StatefulSet) -> Vec<FieldError> {
        let path = FieldPath::new("spec");
        let mut errors = validate_replicas(sts.spec.replicas, &path);
        // Containers may mount the claims the StatefulSet creates from its templates.
        let mut template = sts.spec.template.clone();
        if let Some(pod) = template.spec.as_mut() {
            let claims = sts.spec.volume_claim_templates.iter().flatten();
            let volumes = pod.volumes.get_or_insert_with(Vec::new);
            volumes.extend(
                claims
                    .filter_map(|c| c.metadata.name.clone())
                    .map(|name| Volume {
                        name,
                        ..Default::default()
                    }),
            );
        }
        errors.extend(validate_template(
            Some(&sts.spec.selector),
            &template,
            &path,
            ALWAYS,
        ));
        for (i, claim) in sts.spec.volume_claim_templates.iter().flatten().enumerate() {
            let at = path.child("volumeClaimTemplates").index(i).child("spec");
            let spec = claim.spec.clone().unwrap_or_default();
            errors.extend(decode_claim_resources(&spec, &at));
        }
        errors
    }

    fn validate_update(&self, new: &StatefulSet, old: &StatefulSet) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        errors.extend(selector_unchanged(&new.spec.selector, &old.spec.selector));
        errors
    }

    fn columns(&self) -> &'static [Column] {
        STATEFUL_COLUMNS
    }

    fn cells(&self, sts: &StatefulSet) -> Vec<Value> {
        let spec = sts.spec.clone();
        let status = sts.status.clone().unwrap_or_default();
        let (containers, images) = containers_and_images(&spec.template);
        vec![
            json!(format!(
                "{}/{}",
                status.ready_replicas.unwrap_or(0),
                spec.replicas.unwrap_or(1)
            )),
            containers,
            images,
        ]
    }
}

const DAEMON_COLUMNS: &[Column] = &[
    int(
        "Desired",
        0,
        "The number of nodes that should be running the daemon pod.",
    ),
    int(
        "Current",
        0,
        "The number of nodes running at least one daemon pod.",
    ),
    int(
        "Ready",
        0,
        "The number of nodes running a ready daemon pod.",
    ),
    int(
        "Up-to-date",
        0,
        "The number of nodes running the updated daemon pod.",
    ),
    int(
        "Available",
        0,
        "The number of nodes running an available daemon pod.",
    ),
    col("Node Selector", 0, "The node selector of the daemon pods."),
    WIDE[0],
    WIDE[1],
    WIDE[2],
];

impl Strategy<DaemonSet> for DaemonSets {
    fn default(&self, ds: &mut DaemonSet) {
        {
            let spec = &mut ds.spec;
            spec.revision_history_limit.get_or_insert(10);
            let update = spec
                .update_strategy
                .get_or_insert_with(DaemonSetUpdateStrategy::default);
            if update.type_.get_or_insert_with(|| "RollingUpdate".into()) == "RollingUpdate" {
                let rolling = update
                    .rolling_update
                    .get_or_insert_with(RollingUpdateDaemonSet::default);
                rolling.max_unavailable.get_or_insert(IntOrString::Int(1));
                rolling.max_surge.get_or_insert(IntOrString::Int(0));
            }
            default_template(&mut spec.template);
        }
    }

    fn validate(&self, ds: &DaemonSet) -> Vec<FieldError> {
        validate_template(
            Some(&ds.spec.selector),
            &ds.spec.template,
            &FieldPath::new("spec"),
            ALWAYS,
        )
    }

    fn validate_update(&self, new: &DaemonSet, old: &DaemonSet) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        errors.extend(selector_unchanged(&new.spec.selector, &old.spec.selector));
        errors
    }

    fn columns(&self) -> &'static [Column] {
        DAEMON_COLUMNS
    }

    fn cells(&self, ds: &DaemonSet) -> Vec<Value> {
        let spec = ds.spec.clone();
        let status = ds.status.clone().unwrap_or_default();
        let node_selector = spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.node_selector.clone())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let (containers, images) = containers_and_images(&spec.template);
        vec![
            json!(status.desired_number_scheduled),
            json!(status.current_number_scheduled),
            json!(status.number_ready),
            json!(status.updated_number_scheduled.unwrap_or(0)),
            json!(status.number_available.unwrap_or(0)),
            or_none(node_selector),
            containers,
            images,
            selector_text(Some(&spec.selector)),
        ]
    }
}

/// The label a Job's pods carry so the Job can select them.
const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";

const JOB_COLUMNS: &[Column] = &[
    col("Status", 0, "Status of the job."),
    col("Completions", 0, "The completed and desired completions."),
    col("Duration", 0, "Time the job took to finish."),
    WIDE[0],
    WIDE[1],
    WIDE[2],
];

impl Strategy<Job> for Jobs {
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

const CRON_COLUMNS: &[Column] = &[
    col("Schedule", 0, "The schedule in Cron format."),
    col("Timezone", 0, "The time zone of the schedule."),
    col("Suspend", 0, "Whether the cron job is suspended."),
    int("Active", 0, "The number of jobs running."),
    col("Last Schedule", 0, "When the job was last scheduled."),
    WIDE[0],
    WIDE[1],
    WIDE[2],
];

impl Strategy<CronJob> for CronJobs {
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
