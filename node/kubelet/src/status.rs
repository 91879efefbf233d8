//! PodStatus from what the CRI reports plus the worker's decisions: phase, conditions,
//! (init, ephemeral) container statuses, IPs and times.

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use skiff_cri::v1;

use crate::node::Transitions;

/// One container as the status reports it.
#[derive(Debug, Default)]
pub struct ContainerView {
    /// The spec's name.
    pub name: String,
    /// The spec's image.
    pub image: String,
    /// The newest CRI instance.
    pub latest: Option<v1::ContainerStatus>,
    /// The one before it (lastState).
    pub previous: Option<v1::ContainerStatus>,
    /// Why the container is waiting (a reason and message), when the worker knows better
    /// than the CRI (back-off, pull or config errors).
    pub waiting: Option<(String, String)>,
    /// Running and passing its readiness probe.
    pub ready: bool,
    /// Running and past its startup probe.
    pub started: bool,
}

/// CRI nanoseconds as an API Time (`None` for unset).
fn time(nanos: i64) -> Option<String> {
    if nanos <= 0 {
        return None;
    }
    let ts = jiff::Timestamp::from_nanosecond(nanos as i128).ok()?;
    Some(
        jiff::Timestamp::from_second(ts.as_second())
            .ok()?
            .to_string(),
    )
}

fn state_of(view: &ContainerView) -> i32 {
    view.latest.as_ref().map_or(-1, |s| s.state)
}

fn terminated(status: &v1::ContainerStatus) -> Value {
    let reason = if !status.reason.is_empty() {
        status.reason.clone()
    } else if status.exit_code == 0 {
        "Completed".to_owned()
    } else {
        "Error".to_owned()
    };
    let mut t = json!({
        "exitCode": status.exit_code,
        "reason": reason,
        "containerID": format!("containerd://{}", status.id),
    });
    if !status.message.is_empty() {
        t["message"] = json!(status.message);
    }
    if let Some(at) = time(status.started_at) {
        t["startedAt"] = json!(at);
    }
    if let Some(at) = time(status.finished_at) {
        t["finishedAt"] = json!(at);
    }
    json!({"terminated": t})
}

fn is_exited(status: &v1::ContainerStatus) -> bool {
    status.state == v1::ContainerState::ContainerExited as i32
}

/// `default_waiting` is the reason for a container with no instance yet.
fn container_status(view: &ContainerView, default_waiting: &str) -> Value {
    let waiting = |reason: &str, message: &str| {
        let mut w = json!({"reason": reason});
        if !message.is_empty() {
            w["message"] = json!(message);
        }
        json!({ "waiting": w })
    };
    let previous_terminated = view
        .previous
        .as_ref()
        .filter(|p| is_exited(p))
        .map(terminated);
    let (state, last_state) = match (&view.waiting, &view.latest) {
        (Some((reason, message)), latest) => {
            // The instance that just ended is the last state while the next one waits.
            let last = latest
                .as_ref()
                .filter(|l| is_exited(l))
                .map(terminated)
                .or(previous_terminated);
            (waiting(reason, message), last)
        }
        (None, Some(latest)) => {
            let state = match v1::ContainerState::try_from(latest.state) {
                Ok(v1::ContainerState::ContainerRunning) => {
                    let mut running = json!({});
                    if let Some(at) = time(latest.started_at) {
                        running["startedAt"] = json!(at);
                    }
                    json!({ "running": running })
                }
                Ok(v1::ContainerState::ContainerExited) => terminated(latest),
                Ok(v1::ContainerState::ContainerCreated) => waiting("ContainerCreating", ""),
                _ => waiting("ContainerStatusUnknown", "the runtime does not know it"),
            };
            (state, previous_terminated)
        }
        (None, None) => (waiting(default_waiting, ""), None),
    };
    let mut status = json!({
        "name": view.name,
        "image": view.image,
        "imageID": view.latest.as_ref().map(|l| l.image_ref.clone()).unwrap_or_default(),
        "ready": view.ready,
        "started": view.started,
        "restartCount": view.latest.as_ref().and_then(|l| l.metadata.as_ref()).map_or(0, |m| m.attempt),
        "state": state,
        "lastState": last_state.unwrap_or_else(|| json!({})),
    });
    if let Some(latest) = &view.latest {
        status["containerID"] = json!(format!("containerd://{}", latest.id));
    }
    status
}

/// Everything the status is computed from.
pub struct Inputs<'a> {
    /// The pod as the API has it (for existing conditions and startTime).
    pub pod: &'a Pod,
    /// Init containers in spec order.
    pub init: &'a [ContainerView],
    /// App containers in spec order.
    pub apps: &'a [ContainerView],
    /// Ephemeral containers in spec order (never in the phase or the conditions).
    pub ephemeral: &'a [ContainerView],
    /// Every init container has succeeded.
    pub initialized: bool,
    /// An init container failed under restartPolicy Never.
    pub init_failed: bool,
    /// The sandbox's IPs (the node's for hostNetwork pods), primary first.
    pub pod_ips: Vec<String>,
    /// The node's IP.
    pub host_ip: Option<String>,
}

/// The pod phase from the container states, as Kubernetes derives it.
fn phase(inputs: &Inputs<'_>, policy: &str) -> &'static str {
    if inputs.init_failed {
        return "Failed";
    }
    if !inputs.initialized {
        return "Pending";
    }
    let (mut running, mut waiting, mut succeeded, mut failed) = (0, 0, 0, 0);
    for view in inputs.apps {
        let latest_exited = view.latest.as_ref().filter(|l| is_exited(l));
        match (&view.waiting, state_of(view)) {
            // Waiting after a previous run counts as stopped (it will be restarted).
            (Some(_), _) if latest_exited.is_some() => {
                if latest_exited.is_some_and(|l| l.exit_code == 0) {
                    succeeded += 1
                } else {
                    failed += 1
                }
            }
            (Some(_), _) => waiting += 1,
            (None, s) if s == v1::ContainerState::ContainerRunning as i32 => running += 1,
            (None, s) if s == v1::ContainerState::ContainerExited as i32 => {
                if latest_exited.is_some_and(|l| l.exit_code == 0) {
                    succeeded += 1
                } else {
                    failed += 1
                }
            }
            _ => waiting += 1,
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if succeeded + failed == 0 {
        "Pending"
    } else {
        match policy {
            "Always" => "Running",
            "OnFailure" if failed > 0 => "Running",
            "Never" if failed > 0 => "Failed",
            _ => "Succeeded",
        }
    }
}

/// The `status` to patch.
pub fn pod_status(inputs: &Inputs<'_>) -> Value {
    let pod = inputs.pod;
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".to_owned());
    let phase = phase(inputs, &policy);
    let transitions = Transitions::of(pod.status.as_ref().and_then(|s| s.conditions.clone()));
    let now = &transitions.now;
    let condition = |kind: &str, ok: bool, reason: Option<&str>| {
        let (status, since) = transitions.status(kind, ok);
        let mut c = json!({"type": kind, "status": status, "lastTransitionTime": since});
        if let Some(reason) = reason {
            c["reason"] = json!(reason);
        }
        c
    };
    let completed = matches!(phase, "Succeeded" | "Failed");
    let containers_ready = !completed && inputs.apps.iter().all(|v| v.ready);
    let not_ready_reason = if completed {
        Some("PodCompleted")
    } else if containers_ready {
        None
    } else {
        Some("ContainersNotReady")
    };
    let init_reason = if inputs.initialized {
        None
    } else {
        Some("ContainersNotInitialized")
    };
    let conditions = vec![
        condition("PodScheduled", true, None),
        condition("Initialized", inputs.initialized, init_reason),
        condition("ContainersReady", containers_ready, not_ready_reason),
        condition("Ready", containers_ready, not_ready_reason),
    ];
    let app_waiting = if inputs.initialized {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let start_time = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or(now.clone());
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "containerStatuses": inputs.apps.iter().map(|v| container_status(v, app_waiting)).collect::<Vec<_>>(),
        "startTime": start_time,
        "qosClass": qos_class(pod),
    });
    if !inputs.init.is_empty() {
        status["initContainerStatuses"] = inputs
            .init
            .iter()
            .map(|v| container_status(v, "PodInitializing"))
            .collect();
    }
    if !inputs.ephemeral.is_empty() {
        status["ephemeralContainerStatuses"] = inputs
            .ephemeral
            .iter()
            .map(|v| {
                let mut status = container_status(v, app_waiting);
                // No startup probe says when one has started: the kubelet leaves it unset.
                if let Some(map) = status.as_object_mut() {
                    map.remove("started");
                }
                status
            })
            .collect();
    }
    if let Some(ip) = inputs.pod_ips.first() {
        status["podIP"] = json!(ip);
        status["podIPs"] = inputs.pod_ips.iter().map(|ip| json!({"ip": ip})).collect();
    }
    if let Some(ip) = &inputs.host_ip {
        status["hostIP"] = json!(ip);
        status["hostIPs"] = json!([{ "ip": ip }]);
    }
    status
}

/// Guaranteed (every container has cpu and memory limits equal to requests), BestEffort (no
/// requests or limits at all), else Burstable.
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = &pod.spec else {
        return "BestEffort";
    };
    let all: Vec<_> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let empty =
        |m: &Option<std::collections::BTreeMap<_, _>>| m.as_ref().is_none_or(|m| m.is_empty());
    if all.iter().all(|c| {
        c.resources
            .as_ref()
            .is_none_or(|r| empty(&r.requests) && empty(&r.limits))
    }) {
        return "BestEffort";
    }
    let guaranteed = all.iter().all(|c| {
        let Some(r) = &c.resources else { return false };
        ["cpu", "memory"].iter().all(|k| {
            let limit = r.limits.as_ref().and_then(|l| l.get(*k));
            let request = r.requests.as_ref().and_then(|l| l.get(*k)).or(limit);
            limit.is_some() && limit == request
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
