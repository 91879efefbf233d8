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
use kube::api::{Api, DeleteParams, ListParams, PostParams};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_records_events() {
    let env = Env::start("events").await;
    let client = env.client.clone();
    let kubelet = Kubelet::start(&client, &env.cri, &env.config);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // A pod that runs: its container's image, creation and start.
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "hostNetwork": true,
        "containers": [busybox("main", "exec sleep 3600")],
    });
    pods.create(&PostParams::default(), &pod("runs", spec))
        .await
        .unwrap();
    let uid = uid_of(&pods, "runs").await;
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

    // A sandbox that dies is replaced: SandboxChanged on the pod.
    let sandbox = sandboxes_of(&env.cri, &uid).await.remove(0);
    env.cri.stop_pod_sandbox(&sandbox.id).await.unwrap();
    let changed = wait_for("SandboxChanged", Duration::from_secs(30), async || {
        let events = events_of(&client, "default", "runs", &uid).await;
        with_reason(&events, "SandboxChanged")
            .first()
            .map(|e| (*e).clone())
    })
    .await;
    assert_eq!(
        changed.message.as_deref(),
        Some("Pod sandbox changed, it will be killed and re-created.")
    );
    assert_eq!(changed.involved_object.field_path, None);

    // A crash loop: one BackOff event whose count grows.
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "hostNetwork": true,
        "containers": [busybox("crash", "exit 1")],
    });
    pods.create(&PostParams::default(), &pod("crash", spec))
        .await
        .unwrap();
    let crash_uid = uid_of(&pods, "crash").await;
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
            format!("Back-off restarting failed container crash in pod crash_default({crash_uid})")
                .as_str()
        )
    );
    assert_eq!(
        backoff.involved_object.field_path.as_deref(),
        Some("spec.containers{crash}")
    );
    assert!(
        backoff.last_timestamp.as_ref().unwrap().0 >= backoff.first_timestamp.as_ref().unwrap().0
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

    // A readiness probe that fails: Unhealthy with its output.
    let mut unready = busybox("probed", "exec sleep 3600");
    unready["readinessProbe"] = json!({
        "exec": {"command": ["sh", "-c", "echo not-ready-yet; exit 1"]},
        "periodSeconds": 1,
    });
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "hostNetwork": true,
        "containers": [unready],
    });
    pods.create(&PostParams::default(), &pod("probed", spec))
        .await
        .unwrap();
    let probed_uid = uid_of(&pods, "probed").await;
    let unhealthy = wait_for("Unhealthy", Duration::from_secs(60), async || {
        let events = events_of(&client, "default", "probed", &probed_uid).await;
        with_reason(&events, "Unhealthy")
            .first()
            .map(|e| (*e).clone())
    })
    .await;
    let message = unhealthy.message.unwrap_or_default();
    assert!(
        message.starts_with("Readiness probe failed: ") && message.contains("not-ready-yet"),
        "{message}"
    );

    // A missing configMap volume and a missing secret in the environment.
    let mut needs = busybox("needs", "exec sleep 3600");
    needs["env"] = json!([{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "absent-secret", "key": "k"}}}]);
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "hostNetwork": true,
        "containers": [needs],
    });
    pods.create(&PostParams::default(), &pod("needs-secret", spec))
        .await
        .unwrap();
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "hostNetwork": true,
        "containers": [busybox("main", "exec sleep 3600")],
        "volumes": [{"name": "cfg", "configMap": {"name": "absent-config"}}],
    });
    pods.create(&PostParams::default(), &pod("needs-config", spec))
        .await
        .unwrap();
    let secret_uid = uid_of(&pods, "needs-secret").await;
    let failed = wait_for("Failed", Duration::from_secs(60), async || {
        let events = events_of(&client, "default", "needs-secret", &secret_uid).await;
        with_reason(&events, "Failed").first().map(|e| (*e).clone())
    })
    .await;
    assert_eq!(
        failed.message.as_deref(),
        Some("Error: secret \"absent-secret\" not found")
    );
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    let config_uid = uid_of(&pods, "needs-config").await;
    let mount = wait_for("FailedMount", Duration::from_secs(60), async || {
        let events = events_of(&client, "default", "needs-config", &config_uid).await;
        with_reason(&events, "FailedMount")
            .first()
            .map(|e| (*e).clone())
    })
    .await;
    assert_eq!(
        mount.message.as_deref(),
        Some("MountVolume.SetUp failed for volume \"cfg\" : configmap \"absent-config\" not found")
    );
    assert_eq!(mount.involved_object.field_path, None);

    // The Node's own events.
    let node_events = events_of(&client, "default", NODE, NODE).await;
    for reason in ["Starting", "NodeReady", "NodeHasSufficientMemory"] {
        let found = with_reason(&node_events, reason);
        assert_eq!(found.len(), 1, "{reason}: {node_events:?}");
        assert_eq!(found[0].involved_object.kind.as_deref(), Some("Node"));
    }

    // The real kubectl shows them in `describe`.
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
    // `kubectl get events` prints Kubernetes' columns (no NAME first, no AGE).
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
    let (ok, out, err) = kubectl(&env, &["get", "events", "-o", "wide"]).await;
    assert!(ok, "{err}");
    assert!(
        out.lines().next().unwrap().contains("SUBOBJECT")
            && out
                .lines()
                .any(|l| l.contains("spec.containers{crash}")
                    && l.contains(&format!("kubelet, {NODE}"))),
        "{out}"
    );
    let (ok, out, err) = kubectl(&env, &["describe", "node", NODE]).await;
    assert!(ok, "{err}");
    assert!(out.contains("Starting kubelet."), "{out}");

    for name in ["runs", "crash", "probed", "needs-secret", "needs-config"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    all_gone(&pods, Duration::from_secs(30)).await;
    // Stopping containers was recorded too.
    let killing = wait_for("Killing", Duration::from_secs(10), async || {
        let events = events_of(&client, "default", "runs", &uid).await;
        with_reason(&events, "Killing")
            .first()
            .map(|e| (*e).clone())
    })
    .await;
    assert_eq!(killing.message.as_deref(), Some("Stopping container main"));
    kubelet.stop().await;
    drop(env);
}
