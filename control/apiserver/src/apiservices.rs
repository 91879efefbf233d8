//! The local APIServices: one per group/version this apiserver serves (`v1.`, `v1.apps`, …),
//! written at every start as kube-apiserver's autoregister controller writes the ones it syncs
//! on start (label `kube-aggregator.kubernetes.io/automanaged: onstart`, Kubernetes' group and
//! version priorities). A start creates the missing ones (also one a user deleted), rewrites
//! one whose spec or label drifted, and removes an automanaged one for a group no longer
//! served; APIServices without the label are the users' and left alone.
//!
//! Their `Available` condition is what kube-aggregator's availability controller writes, here a
//! function of the spec alone: local APIServices are served by this apiserver; skiff does not
//! proxy aggregated APIs, so one that points at a Service is never available.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::{
    APIService, APIServiceCondition, APIServiceSpec, APIServiceStatus,
};
use serde_json::{Value, json};

use crate::Server;
use crate::error::ApiError;
use crate::meta;
use crate::registry::Registry;

/// The label autoregister puts on the APIServices it manages.
pub const AUTOMANAGED_LABEL: &str = "kube-aggregator.kubernetes.io/automanaged";
/// Its value for the ones synced when the apiserver starts.
pub const ON_START: &str = "onstart";

/// The reason of a local APIService's `Available` condition (kube-aggregator's).
pub const LOCAL_REASON: &str = "Local";
/// Why an APIService backed by a Service is not available in skiff.
pub const NOT_PROXIED_REASON: &str = "AggregationNotSupported";

/// The `Available` condition `spec` earns: always for a local APIService; never for one served
/// by a Service, whose requests skiff does not forward.
pub fn availability(spec: &APIServiceSpec) -> (&'static str, &'static str, String) {
    match &spec.service {
        None => (
            "True",
            LOCAL_REASON,
            "Local APIServices are always available".into(),
        ),
        Some(service) => (
            "False",
            NOT_PROXIED_REASON,
            format!(
                "skiff does not proxy aggregated APIs: requests for {}/{} are not forwarded to service {}/{}",
                spec.group.as_deref().unwrap_or_default(),
                spec.version.as_deref().unwrap_or_default(),
                service.namespace.as_deref().unwrap_or_default(),
                service.name.as_deref().unwrap_or_default(),
            ),
        ),
    }
}

/// `status` with the `Available` condition `spec` earns; a condition that keeps its status keeps
/// its transition time.
pub fn with_availability(
    spec: &APIServiceSpec,
    status: Option<&APIServiceStatus>,
) -> APIServiceStatus {
    let (state, reason, message) = availability(spec);
    let before = status
        .and_then(|s| s.conditions.as_deref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Available"));
    let since = match before {
        Some(c) if c.status == state => c.last_transition_time.clone(),
        _ => None,
    };
    let since = since.unwrap_or_else(|| {
        let now = jiff::Timestamp::now();
        Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
    });
    let mut conditions: Vec<APIServiceCondition> = status
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "Available")
        .collect();
    conditions.insert(
        0,
        APIServiceCondition {
            type_: "Available".into(),
            status: state.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(since),
        },
    );
    APIServiceStatus {
        conditions: Some(conditions),
    }
}

/// kube-apiserver's `groupPriorityMinimum` and `versionPriority` of the group/versions skiff
/// serves (its `DefaultGenericAPIServicePriorities` and kube-apiserver's additions). A group
/// without an entry gets no APIService, as in Kubernetes.
const PRIORITIES: &[(&str, &str, i32, i32)] = &[
    ("", "v1", 18000, 1),
    ("apiregistration.k8s.io", "v1", 18000, 15),
    ("apps", "v1", 17800, 15),
    ("events.k8s.io", "v1", 17750, 15),
    ("authentication.k8s.io", "v1", 17700, 15),
    ("authorization.k8s.io", "v1", 17600, 15),
    ("autoscaling", "v1", 17500, 15),
    ("autoscaling", "v2", 17500, 30),
    ("batch", "v1", 17400, 15),
    ("certificates.k8s.io", "v1", 17300, 15),
    ("networking.k8s.io", "v1", 17200, 15),
    ("policy", "v1", 17100, 15),
    ("rbac.authorization.k8s.io", "v1", 17000, 15),
    ("storage.k8s.io", "v1", 16800, 15),
    ("admissionregistration.k8s.io", "v1", 16700, 15),
    ("apiextensions.k8s.io", "v1", 16700, 15),
    ("scheduling.k8s.io", "v1", 16600, 15),
    ("coordination.k8s.io", "v1", 16500, 15),
    ("node.k8s.io", "v1", 16300, 15),
    ("discovery.k8s.io", "v1", 16200, 15),
    ("resource.k8s.io", "v1", 16200, 20),
    ("flowcontrol.apiserver.k8s.io", "v1", 16100, 21),
];

/// The local APIServices for what `registry` serves, sorted by name, status included.
pub fn local(registry: &Registry) -> Vec<APIService> {
    let served: BTreeSet<(&str, &str)> = registry
        .all()
        .map(|k| (k.info().group, k.info().version))
        .collect();
    let mut services: Vec<APIService> = served
        .into_iter()
        .filter_map(|(group, version)| {
            let &(_, _, group_priority, version_priority) = PRIORITIES
                .iter()
                .find(|(g, v, _, _)| (*g, *v) == (group, version))?;
            let spec = APIServiceSpec {
                group: Some(group.into()).filter(|g: &String| !g.is_empty()),
                version: Some(version.into()),
                group_priority_minimum: group_priority,
                version_priority,
                ..Default::default()
            };
            let status = with_availability(&spec, None);
            Some(APIService {
                metadata: ObjectMeta {
                    name: Some(format!("{version}.{group}")),
                    labels: Some([(AUTOMANAGED_LABEL.to_owned(), ON_START.to_owned())].into()),
                    ..Default::default()
                },
                spec: Some(spec),
                status: Some(status),
            })
        })
        .collect();
    services.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    services
}

/// Brings the stored local APIServices to what this apiserver serves (see the module docs).
pub async fn register(server: &Server) -> Result<(), ApiError> {
    let info = server
        .registry
        .lookup("apiregistration.k8s.io", "v1", "apiservices")
        .expect("APIServices are built in")
        .info();
    let desired = local(&server.registry);
    let page = server
        .storage
        .page(&info.key_prefix(), 0, None, None)
        .await?;
    let automanaged = |obj: &Value| obj["metadata"]["labels"][AUTOMANAGED_LABEL] == ON_START;
    for stored in &page.items {
        let name = meta::name(stored).unwrap_or_default();
        let wanted = desired
            .iter()
            .any(|d| d.metadata.name.as_deref() == Some(name));
        if automanaged(stored) && !wanted {
            let revision = meta::resource_version(stored).unwrap_or(0);
            tracing::info!(
                apiservice = name,
                "removing a local APIService no longer served"
            );
            ignore_missing(server.storage.delete(info, None, name, revision).await)?;
        }
    }
    for service in desired {
        let name = service.metadata.name.clone().unwrap_or_default();
        let mut object = serde_json::to_value(&service).expect("JSON values always serialize");
        object["kind"] = json!("APIService");
        object["apiVersion"] = json!("apiregistration.k8s.io/v1");
        let stored = page
            .items
            .iter()
            .find(|o| meta::name(o) == Some(name.as_str()));
        match stored {
            None => {
                let metadata = meta::metadata_mut(&mut object);
                metadata.insert("uid".into(), json!(meta::new_uid()));
                metadata.insert("creationTimestamp".into(), json!(meta::now()));
                tracing::info!(apiservice = %name, "registering a local APIService");
                match server.storage.create(info, None, &name, object).await {
                    Err(err) if err.reason != "AlreadyExists" => return Err(err),
                    _ => {}
                }
            }
            Some(stored) => {
                let drifted = stored["spec"] != object["spec"]
                    || !automanaged(stored)
                    || stored["status"]["conditions"][0]["status"]
                        != object["status"]["conditions"][0]["status"];
                if !drifted {
                    continue;
                }
                // The stored metadata stays (uid, creation, the user's other labels); the
                // spec, the label and the availability are autoregister's.
                let mut metadata = stored["metadata"].clone();
                metadata["labels"][AUTOMANAGED_LABEL] = json!(ON_START);
                object["metadata"] = metadata;
                meta::set(&mut object, "resourceVersion", None);
                let revision = meta::resource_version(stored).unwrap_or(0);
                tracing::info!(apiservice = %name, "updating a local APIService");
                server
                    .storage
                    .update(info, None, &name, object, revision)
                    .await?;
            }
        }
    }
    Ok(())
}

fn ignore_missing(result: Result<Value, ApiError>) -> Result<(), ApiError> {
    match result {
        Err(err) if err.reason != "NotFound" => Err(err),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_group_version_gets_kubernetes_priorities() {
        let registry = crate::registry::builtin();
        let services = local(&registry);
        let names: Vec<&str> = services
            .iter()
            .map(|s| s.metadata.name.as_deref().unwrap())
            .collect();
        let served: BTreeSet<String> = registry
            .all()
            .map(|k| format!("{}.{}", k.info().version, k.info().group))
            .collect();
        // Every served group/version has a priority, so every one is registered.
        assert_eq!(
            names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>(),
            served
        );
        let core = &services[names.iter().position(|n| *n == "v1.").unwrap()];
        let spec = core.spec.as_ref().unwrap();
        assert_eq!(
            (
                spec.group.as_deref(),
                spec.version.as_deref(),
                spec.group_priority_minimum,
                spec.version_priority
            ),
            (None, Some("v1"), 18000, 1)
        );
        let apps = &services[names.iter().position(|n| *n == "v1.apps").unwrap()];
        assert_eq!(apps.spec.as_ref().unwrap().group_priority_minimum, 17800);
        let available = &apps.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
        assert_eq!(
            (available.type_.as_str(), available.status.as_str()),
            ("Available", "True")
        );
    }
}
