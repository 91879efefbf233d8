//! The kubelet's events against a real containerd and an in-process apiserver (root): a pod's
//! Pulled/Created/Started on its container, a crash loop's BackOff aggregated into one event
//! with a growing count, a failing readiness probe's Unhealthy with the probe output, a
//! missing configMap volume and secret, a replaced sandbox, the Node's Starting and NodeReady,
//! the Events section of the real `kubectl describe pod` and `kubectl get events`. Run
//! through `cargo xtask test node`.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;

/// The events about object `name` (uid `uid`), as `kubectl describe` selects them.
async fn events_of(client: &kube::Client, namespace: &str, name: &str, uid: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let selector = format!("involvedObject.name={name},involvedObject.uid={uid}");
    events
        .list(&ListParams::default().fields(&selector))
        .await
        .unwrap()
        .items
}

fn with_reason<'a>(events: &'a [Event], reason: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

async fn uid_of(pods: &Api<Pod>, name: &str) -> String {
    wait_for("the pod's uid", Duration::from_secs(5), async || {
        pods.get_opt(name).await.unwrap()?.metadata.uid
    })
    .await
}

/// The first event of `reason` about the object, once there is one.
async fn first_event(
    client: &kube::Client,
    (name, uid): (&str, &str),
    reason: &str,
    timeout_secs: u64,
) -> Event {
    wait_for(reason, Duration::from_secs(timeout_secs), async || {
        let events = events_of(client, "default", name, uid).await;
        match with_reason(&events, reason).first() {
            Some(event) => Ok((*event).clone()),
            None => Err(format!("events of {name}: {events:?}")),
        }
    })
    .await
}

/// A pod on the host network whose one container is `container`, deleted at once.
fn host_pod(name: &str, container: ContainerBuilder) -> PodBuilder {
    PodBuilder::new(name)
        .grace_period(0)
        .host_network()
        .container(container)
}

/// One containerd, apiserver and kubelet for every event (each takes seconds to start): each
/// kind of event's checks run and are reported together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_records_events() {
    let env = Env::start("events").await;
    let client = env.client.clone();
    let kubelet = Kubelet::start(&client, &env.cri, &env.config);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut checks = Checks::new();

    // A pod that runs: its container's image, creation and start.
    host_pod("runs", ContainerBuilder::busybox("main", "exec sleep 3600"))
        .create(&pods)
        .await;
    let uid = uid_of(&pods, "runs").await;
    checks
        .run_async("Pulled, Created, Started", async {
            let events = wait_for("Started", Duration::from_secs(60), async || {
                let events = events_of(&client, "default", "runs", &uid).await;
                (!with_reason(&events, "Started").is_empty()).then_some(events)
            })
            .await;
            for (reason, message) in [
                (
                    "Pulled",
                    format!(
                        "Container image {:?} already present on machine",
                        skiff_testenv::images::BUSYBOX
                    ),
                ),
                ("Created", "Created container: main".to_owned()),
                ("Started", "Started container main".to_owned()),
            ] {
                let found = with_reason(&events, reason);
                assert_eq!(found.len(), 1, "{reason}: {events:?}");
                let event = found[0];
                assert_eq!(event.message.as_deref(), Some(message.as_str()));
                assert_eq!(event.type_.as_deref(), Some("Normal"));
                assert_eq!(event.count, Some(1));
                let source = event.source.clone().unwrap();
                assert_eq!(source.component.as_deref(), Some("kubelet"));
                assert_eq!(source.host.as_deref(), Some(NODE));
                let object = &event.involved_object;
                assert_eq!(object.kind.as_deref(), Some("Pod"));
                assert_eq!(object.namespace.as_deref(), Some("default"));
                assert_eq!(object.field_path.as_deref(), Some("spec.containers{main}"));
                assert!(object.resource_version.is_some(), "{object:?}");
                assert!(event.first_timestamp.is_some() && event.last_timestamp.is_some());
            }
        })
        .await;

    // A sandbox that dies is replaced: SandboxChanged on the pod.
    checks
        .run_async("SandboxChanged", async {
            let sandbox = sandboxes_of(&env.cri, &uid).await.remove(0);
            env.cri.stop_pod_sandbox(&sandbox.id).await.unwrap();
            let changed = first_event(&client, ("runs", &uid), "SandboxChanged", 30).await;
            assert_eq!(
                changed.message.as_deref(),
                Some("Pod sandbox changed, it will be killed and re-created.")
            );
            assert_eq!(changed.involved_object.field_path, None);
        })
        .await;

    // A crash loop: one BackOff event whose count grows.
    host_pod("crash", ContainerBuilder::busybox("crash", "exit 1"))
        .create(&pods)
        .await;
    let crash_uid = uid_of(&pods, "crash").await;
    checks
        .run_async("BackOff, aggregated, and anew once deleted", async {
            let backoff = wait_for("BackOff counted", Duration::from_secs(60), async || {
                let events = events_of(&client, "default", "crash", &crash_uid).await;
                let backoff = with_reason(&events, "BackOff");
                assert!(backoff.len() <= 1, "not aggregated: {backoff:?}");
                let event = backoff.first()?;
                (event.count? >= 3).then(|| (*event).clone())
            })
            .await;
            assert_eq!(backoff.type_.as_deref(), Some("Warning"));
            assert_eq!(
                backoff.message.as_deref(),
                Some(
                    format!(
                        "Back-off restarting failed container crash in pod crash_default({crash_uid})"
                    )
                    .as_str()
                )
            );
            assert_eq!(
                backoff.involved_object.field_path.as_deref(),
                Some("spec.containers{crash}")
            );
            assert!(
                backoff.last_timestamp.as_ref().unwrap().0
                    >= backoff.first_timestamp.as_ref().unwrap().0
            );

            // An event that expires (or is deleted) is created anew by its next occurrence.
            let events_api: Api<Event> = Api::namespaced(client.clone(), "default");
            let old_name = backoff.metadata.name.clone().unwrap();
            events_api
                .delete(&old_name, &DeleteParams::default())
                .await
                .unwrap();
            wait_for(
                "a new BackOff event, counted",
                Duration::from_secs(30),
                async || {
                    let events = events_of(&client, "default", "crash", &crash_uid).await;
                    with_reason(&events, "BackOff")
                        .first()
                        .filter(|e| e.metadata.name.as_deref() != Some(old_name.as_str()))
                        .filter(|e| e.count.unwrap_or(0) >= 2)
                        .map(|_| ())
                },
            )
            .await;
        })
        .await;

    // A readiness probe that fails: Unhealthy with its output.
    host_pod(
        "probed",
        ContainerBuilder::busybox("probed", "exec sleep 3600").readiness(json!({
            "exec": {"command": ["sh", "-c", "echo not-ready-yet; exit 1"]},
            "periodSeconds": 1,
        })),
    )
    .create(&pods)
    .await;
    let probed_uid = uid_of(&pods, "probed").await;
    checks
        .run_async("Unhealthy with the probe's output", async {
            let unhealthy = first_event(&client, ("probed", &probed_uid), "Unhealthy", 60).await;
            let message = unhealthy.message.unwrap_or_default();
            assert!(
                message.starts_with("Readiness probe failed: ")
                    && message.contains("not-ready-yet"),
                "{message}"
            );
        })
        .await;

    // A missing configMap volume and a missing secret in the environment.
    host_pod(
        "needs-secret",
        ContainerBuilder::busybox("needs", "exec sleep 3600").env(json!([
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "absent-secret", "key": "k"}}}
        ])),
    )
    .create(&pods)
    .await;
    host_pod(
        "needs-config",
        ContainerBuilder::busybox("main", "exec sleep 3600"),
    )
    .volume(json!({"name": "cfg", "configMap": {"name": "absent-config"}}))
    .create(&pods)
    .await;
    let secret_uid = uid_of(&pods, "needs-secret").await;
    checks
        .run_async("Failed for a missing secret", async {
            let failed = first_event(&client, ("needs-secret", &secret_uid), "Failed", 60).await;
            assert_eq!(
                failed.message.as_deref(),
                Some("Error: secret \"absent-secret\" not found")
            );
            assert_eq!(failed.type_.as_deref(), Some("Warning"));
        })
        .await;
    let config_uid = uid_of(&pods, "needs-config").await;
    checks
        .run_async("FailedMount for a missing configMap", async {
            let mount = first_event(&client, ("needs-config", &config_uid), "FailedMount", 60)
            .await;
            assert_eq!(
                mount.message.as_deref(),
                Some(
                    "MountVolume.SetUp failed for volume \"cfg\" : configmap \"absent-config\" not found"
                )
            );
            assert_eq!(mount.involved_object.field_path, None);
        })
        .await;

    // The Node's own events.
    let node_events = events_of(&client, "default", NODE, NODE).await;
    checks.run("the Node's events", || {
        for reason in ["Starting", "NodeReady", "NodeHasSufficientMemory"] {
            let found = with_reason(&node_events, reason);
            assert_eq!(found.len(), 1, "{reason}: {node_events:?}");
            assert_eq!(found[0].involved_object.kind.as_deref(), Some("Node"));
        }
    });

    // The real kubectl shows them in `describe`.
    checks
        .run_async("kubectl describe pod", async {
            let (ok, out, err) = kubectl(&env, &["describe", "pod", "crash"]).await;
            assert!(ok, "{err}");
            let section = out
                .split_once("\nEvents:")
                .map(|(_, events)| events.to_owned())
                .unwrap_or_else(|| panic!("no Events section: {out}"));
            for expected in [
                "Type",
                "Reason",
                "From",
                "Started",
                "BackOff",
                "kubelet",
                "Back-off restarting failed container crash in pod crash_default",
            ] {
                assert!(section.contains(expected), "{expected:?} not in {section}");
            }
            // Aggregated: "(xN over ...)" in the Age column.
            assert!(
                section
                    .lines()
                    .any(|l| l.contains("BackOff") && l.contains(" over ")),
                "{section}"
            );
        })
        .await;
    // `kubectl get events` prints Kubernetes' columns (no NAME first, no AGE).
    checks
        .run_async("kubectl get events", async {
            let (ok, out, err) = kubectl(&env, &["get", "events"]).await;
            assert!(ok, "{err}");
            let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
            assert_eq!(
                header,
                ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
                "{out}"
            );
            assert!(
                out.lines().any(|l| l.contains("BackOff")
                    && l.contains("pod/crash")
                    && l.contains(" over ")
                    && l.contains("Warning")),
                "{out}"
            );
        })
        .await;
    checks
        .run_async("kubectl get events -o wide", async {
            let (ok, out, err) = kubectl(&env, &["get", "events", "-o", "wide"]).await;
            assert!(ok, "{err}");
            assert!(
                out.lines().next().unwrap().contains("SUBOBJECT")
                    && out.lines().any(|l| l.contains("spec.containers{crash}")
                        && l.contains(&format!("kubelet, {NODE}"))),
                "{out}"
            );
        })
        .await;
    checks
        .run_async("kubectl describe node", async {
            let (ok, out, err) = kubectl(&env, &["describe", "node", NODE]).await;
            assert!(ok, "{err}");
            assert!(out.contains("Starting kubelet."), "{out}");
        })
        .await;

    for name in ["runs", "crash", "probed", "needs-secret", "needs-config"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    all_gone(&pods, Duration::from_secs(30)).await;
    // Stopping containers was recorded too.
    checks
        .run_async("Killing", async {
            let killing = first_event(&client, ("runs", &uid), "Killing", 10).await;
            assert_eq!(killing.message.as_deref(), Some("Stopping container main"));
        })
        .await;
    kubelet.stop().await;
    drop(env);
    checks.finish();
}
