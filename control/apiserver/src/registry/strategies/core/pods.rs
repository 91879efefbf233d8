//! Pods: defaults, the STATUS/READY/RESTARTS columns kubectl shows, the field selectors the
//! kubelet and scheduler use (`spec.nodeName`, `status.phase`, ...), and the
//! `ephemeralcontainers` subresource's rules (Kubernetes' `EphemeralContainersStrategy`).

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use serde_json::{Value, json};
use skiff_apimachinery::quantity::Quantity;
use skiff_apimachinery::validation::{FieldError, FieldPath};

use crate::registry::strategies::podspec::{RESTART_POLICIES, validate_pod_spec};
use crate::registry::strategies::{col, int, or_none};
use crate::registry::{Column, Strategy, Subresource};

/// The annotation that marks a static pod's mirror.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The pod strategy.
pub struct Pods;

/// Defaults of a pod spec, shared by pods and every pod template.
pub fn default_pod_spec(spec: &mut PodSpec) {
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    spec.security_context.get_or_insert_with(Default::default);
    spec.enable_service_links.get_or_insert(true);
    for container in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        if container.image_pull_policy.is_none() {
            container.image_pull_policy =
                Some(pull_policy(container.image.as_deref().unwrap_or("")).into());
        }
        container
            .termination_message_path
            .get_or_insert_with(|| "/dev/termination-log".into());
        container
            .termination_message_policy
            .get_or_insert_with(|| "File".into());
        container.resources.get_or_insert_with(Default::default);
        for port in container.ports.iter_mut().flatten() {
            port.protocol.get_or_insert_with(|| "TCP".into());
        }
    }
    // Ephemeral containers get a container's defaults (`SetDefaults_EphemeralContainer`).
    for container in spec.ephemeral_containers.iter_mut().flatten() {
        if container.image_pull_policy.is_none() {
            container.image_pull_policy =
                Some(pull_policy(container.image.as_deref().unwrap_or("")).into());
        }
        container
            .termination_message_path
            .get_or_insert_with(|| "/dev/termination-log".into());
        container
            .termination_message_policy
            .get_or_insert_with(|| "File".into());
        container.resources.get_or_insert_with(Default::default);
    }
}

/// The pod's spec as any write validates it.
fn validate_spec(pod: &Pod) -> Vec<FieldError> {
    match &pod.spec {
        Some(spec) => validate_pod_spec(spec, &FieldPath::new("spec"), &RESTART_POLICIES),
        None => vec![FieldError::required("spec", "")],
    }
}

/// Kubernetes' `ValidatePodEphemeralContainersUpdate`: the pod stays valid, static pods take
/// none, and the ephemeral containers already there stay exactly as they are (matched by name:
/// a patch need not keep their order).
fn validate_ephemeral_containers_update(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let mut errors = validate_spec(new);
    let mirror = old
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION));
    if mirror {
        return vec![FieldError::forbidden(
            "",
            "static pods do not support ephemeral containers",
        )];
    }
    let ephemeral = |pod: &Pod| {
        pod.spec
            .as_ref()
            .and_then(|s| s.ephemeral_containers.clone())
            .unwrap_or_default()
    };
    let added = ephemeral(new);
    for existing in ephemeral(old) {
        let path = "spec.ephemeralContainers";
        match added.iter().find(|c| c.name == existing.name) {
            None => errors.push(FieldError::forbidden(
                path,
                format!(
                    "existing ephemeral containers {:?} may not be removed\n",
                    existing.name
                ),
            )),
            Some(now) if *now != existing => errors.push(FieldError::forbidden(
                path,
                format!(
                    "existing ephemeral containers {:?} may not be changed\n{}",
                    existing.name,
                    changed_fields(&existing, now)
                ),
            )),
            Some(_) => {}
        }
    }
    errors
}

/// The top-level fields that differ between two versions of an ephemeral container, one a line
/// (where Kubernetes prints a full `cmp.Diff`).
fn changed_fields(old: &EphemeralContainer, new: &EphemeralContainer) -> String {
    let (old, new) = (json!(old), json!(new));
    let empty = serde_json::Map::new();
    let fields = |v: &Value| v.as_object().cloned().unwrap_or_else(|| empty.clone());
    let (old, new) = (fields(&old), fields(&new));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| v.map_or_else(|| "<unset>".to_owned(), Value::to_string);
            format!("  {k}: {} -> {}", show(old.get(k)), show(new.get(k)))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` for any other tag or a digest.
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    // The tag follows the last ':' after the last '/' (a registry port is not a tag).
    let name = image.rsplit('/').next().unwrap_or(image);
    match name.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// Kubernetes' QoS class of a pod from its containers' requests and limits.
fn qos_class(spec: &PodSpec) -> &'static str {
    let containers = || {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in containers() {
        let resources = c.resources.as_ref();
        let requests = resources.and_then(|r| r.requests.as_ref());
        let limits = resources.and_then(|r| r.limits.as_ref());
        for resource in ["cpu", "memory"] {
            let request = requests.and_then(|r| r.get(resource));
            let limit = limits.and_then(|l| l.get(resource));
            any |= request.is_some() || limit.is_some();
            // Guaranteed needs a limit for both, and requests (if set) equal to the limits in
            // value (`1` is `1000m`).
            let value = |q: Option<&ApiQuantity>| q.and_then(|q| Quantity::from_api(q).ok());
            guaranteed &= limit.is_some() && (request.is_none() || value(request) == value(limit));
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// What kubectl prints in a pod's STATUS column.
fn display_status(pod: &Pod) -> String {
    if pod.metadata.deletion_timestamp.is_some() {
        return "Terminating".into();
    }
    let status = pod.status.clone().unwrap_or_default();
    let mut reason = status
        .reason
        .clone()
        .or(status.phase.clone())
        .unwrap_or_else(|| "Pending".into());
    for (i, init) in status.init_container_statuses.iter().flatten().enumerate() {
        let state = init.state.clone().unwrap_or_default();
        let total = status.init_container_statuses.as_ref().map_or(0, Vec::len);
        if let Some(t) = &state.terminated {
            if t.exit_code == 0 {
                continue;
            }
            return format!(
                "Init:{}",
                t.reason
                    .clone()
                    .unwrap_or_else(|| format!("ExitCode:{}", t.exit_code))
            );
        }
        if let Some(w) = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.clone())
            .filter(|r| r != "PodInitializing")
        {
            return format!("Init:{w}");
        }
        return format!("Init:{i}/{total}");
    }
    for c in status.container_statuses.iter().flatten() {
        let state = c.state.clone().unwrap_or_default();
        if let Some(w) = state.waiting.as_ref().and_then(|w| w.reason.clone()) {
            reason = w;
        } else if let Some(t) = &state.terminated {
            reason = t
                .reason
                .clone()
                .unwrap_or_else(|| format!("ExitCode:{}", t.exit_code));
        }
    }
    reason
}

fn ready(status: &PodStatus, spec: Option<&PodSpec>) -> String {
    let total = spec.map_or(0, |s| s.containers.len());
    let ready = status
        .container_statuses
        .iter()
        .flatten()
        .filter(|c| c.ready)
        .count();
    format!("{ready}/{total}")
}

const COLUMNS: &[Column] = &[
    col("Ready", 0, "The number of containers that are ready."),
    col(
        "Status",
        0,
        "The aggregate state of the containers in this pod.",
    ),
    int(
        "Restarts",
        0,
        "The number of times the containers in this pod have been restarted.",
    ),
    col("IP", 1, "The IP address assigned to the pod."),
    col("Node", 1, "The node the pod is assigned to."),
    col(
        "Nominated Node",
        1,
        "The node the scheduler nominated for the pod, if any.",
    ),
    col("Readiness Gates", 1, "The pod's readiness gates."),
];

impl Strategy<Pod> for Pods {
    /// Pod generation (KEP-5067): set on create and bumped on spec changes.
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

    fn default(&self, pod: &mut Pod) {
        if let Some(spec) = pod.spec.as_mut() {
            default_pod_spec(spec);
        }
    }

    fn prepare_for_create(&self, pod: &mut Pod) {
        let qos = pod.spec.as_ref().map_or("BestEffort", qos_class);
        pod.status = Some(PodStatus {
            phase: Some("Pending".into()),
            qos_class: Some(qos.into()),
            ..Default::default()
        });
    }

    /// A new pod's spec; ephemeral containers come later, through their subresource only.
    fn validate(&self, pod: &Pod) -> Vec<FieldError> {
        let mut errors = validate_spec(pod);
        let ephemeral = pod
            .spec
            .as_ref()
            .and_then(|s| s.ephemeral_containers.as_ref());
        if ephemeral.is_some_and(|e| !e.is_empty()) {
            errors.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                "cannot be set on create",
            ));
        }
        errors
    }

    /// A pod's spec is fixed once created, but for what Kubernetes lets change in place:
    /// container images, the active deadline, added tolerations and the node (binding).
    /// Ephemeral containers are not among them: they change only through their subresource.
    fn validate_update(&self, new: &Pod, old: &Pod) -> Vec<FieldError> {
        let mut errors = validate_spec(new);
        let mutable_masked = |pod: &Pod| {
            let mut spec = pod.spec.clone().unwrap_or_default();
            for c in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                c.image = None;
            }
            spec.active_deadline_seconds = None;
            spec.tolerations = None;
            spec.node_name = None;
            spec.termination_grace_period_seconds = None;
            spec
        };
        if mutable_masked(new) != mutable_masked(old) {
            errors.push(FieldError::forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
        errors
    }

    fn validate_subresource_update(
        &self,
        sub: Subresource,
        new: &Pod,
        old: &Pod,
    ) -> Vec<FieldError> {
        match sub {
            Subresource::EphemeralContainers => validate_ephemeral_containers_update(new, old),
            _ => self.validate_update(new, old),
        }
    }

    /// A scheduled pod waits for its kubelet to stop it; an unscheduled one has no kubelet to
    /// wait for.
    fn graceful_deletion_period(&self, pod: &Pod, requested: Option<i64>) -> i64 {
        let spec = pod.spec.as_ref();
        let scheduled = spec
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        if !scheduled {
            return 0;
        }
        let default = spec
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        let grace = requested.unwrap_or(default).max(0);
        // A pod already being deleted only ever shortens its grace period.
        match pod.metadata.deletion_grace_period_seconds {
            Some(current) => grace.min(current),
            None => grace,
        }
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]
    }

    fn field(&self, pod: &Pod, label: &str) -> Option<String> {
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        Some(match label {
            "spec.nodeName" => spec.node_name.unwrap_or_default(),
            "spec.restartPolicy" => spec.restart_policy.unwrap_or_default(),
            "spec.schedulerName" => spec.scheduler_name.unwrap_or_default(),
            "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
            "spec.hostNetwork" => spec.host_network.unwrap_or(false).to_string(),
            "status.phase" => status.phase.unwrap_or_default(),
            "status.podIP" => status.pod_ip.unwrap_or_default(),
            "status.nominatedNodeName" => status.nominated_node_name.unwrap_or_default(),
            _ => return None,
        })
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn cells(&self, pod: &Pod) -> Vec<Value> {
        let status = pod.status.clone().unwrap_or_default();
        let restarts: i32 = status
            .container_statuses
            .iter()
            .flatten()
            .map(|c| c.restart_count)
            .sum();
        let gates: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.readiness_gates.iter().flatten())
            .map(|g| g.condition_type.clone())
            .collect();
        vec![
            json!(ready(&status, pod.spec.as_ref())),
            json!(display_status(pod)),
            json!(restarts),
            or_none(status.pod_ip.clone().unwrap_or_default()),
            or_none(
                pod.spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default(),
            ),
            or_none(status.nominated_node_name.clone().unwrap_or_default()),
            or_none(gates.join(",")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(pull_policy("registry:5000/team/app"), "Always");
        assert_eq!(pull_policy("registry:5000/team/app:v2"), "IfNotPresent");
        assert_eq!(pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn pods_get_kubernetes_defaults_and_a_pending_status() {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}
        }))
        .unwrap();
        Pods.default(&mut pod);
        Pods.prepare_for_create(&mut pod);
        let pod = serde_json::to_value(&pod).unwrap();
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "Guaranteed");
    }

    #[test]
    fn qos_compares_quantities_by_value() {
        let qos = |resources: Value| {
            let spec: PodSpec = serde_json::from_value(
                json!({"containers": [{"name": "c", "resources": resources}]}),
            )
            .unwrap();
            qos_class(&spec)
        };
        let same = json!({"requests": {"cpu": "1000m", "memory": "1024Mi"},
                          "limits": {"cpu": "1", "memory": "1Gi"}});
        assert_eq!(qos(same), "Guaranteed");
        let less = json!({"requests": {"cpu": "999m", "memory": "1Gi"},
                          "limits": {"cpu": "1", "memory": "1Gi"}});
        assert_eq!(qos(less), "Burstable");
        assert_eq!(qos(json!({})), "BestEffort");
    }

    #[test]
    fn status_column_reads_like_kubectl() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}, {"name": "d"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "c", "ready": true, "restartCount": 2, "image": "i", "imageID": "", "state": {"running": {}}},
                {"name": "d", "ready": false, "restartCount": 1, "image": "i", "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        }))
        .unwrap();
        let cells = Pods.cells(&pod);
        assert_eq!(cells[0], "1/2");
        assert_eq!(cells[1], "CrashLoopBackOff");
        assert_eq!(cells[2], 3);
        assert_eq!(cells[4], "<none>");
    }
}
