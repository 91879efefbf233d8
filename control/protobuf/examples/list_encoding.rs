//! Times encoding a 10,000-pod list the way kube-apiserver writes it (`skiff_protobuf::json`)
//! against `serde_json::to_vec` of the same value. A measurement to run by hand, not a test:
//!
//!     cargo run --release -p skiff-protobuf --example list_encoding

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A pod as kube-apiserver stores a running one: defaulted spec, status, managed fields.
fn pod(i: usize) -> Value {
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": format!("web-{i}"), "generateName": "web-", "namespace": "default",
            "uid": format!("6f1d2c3b-0000-4000-8000-{i:012}"), "resourceVersion": (1000 + i).to_string(),
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
            "annotations": {"kubernetes.io/config.seen": "2026-01-02T03:04:05Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c",
                "uid": "c0ffee00-0000-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                "time": "2026-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}}}}}],
        },
        "spec": {
            "volumes": [{"name": "kube-api-access", "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}],
                "defaultMode": 420}}],
            "containers": [{
                "name": "web", "image": "nginx:1.27",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "production"}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}},
                "volumeMounts": [{"name": "kube-api-access", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                    "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            }],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "nodeName": "node-1",
            "securityContext": {}, "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-02T03:04:09Z"},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-02T03:04:05Z"}],
            "hostIP": "192.0.2.1", "hostIPs": [{"ip": "192.0.2.1"}],
            "podIP": format!("10.244.{}.{}", i / 250, i % 250), "podIPs": [{"ip": format!("10.244.{}.{}", i / 250, i % 250)}],
            "startTime": "2026-01-02T03:04:05Z",
            "containerStatuses": [{"name": "web", "state": {"running": {"startedAt": "2026-01-02T03:04:07Z"}},
                "lastState": {}, "ready": true, "restartCount": 0, "image": "docker.io/library/nginx:1.27",
                "imageID": "docker.io/library/nginx@sha256:0123", "containerID": "containerd://abc", "started": true}],
            "qosClass": "Burstable",
        },
    })
}

/// The best of `runs` timings of `f`, and the size of what it produced.
fn best(runs: usize, mut f: impl FnMut() -> Vec<u8>) -> (Duration, usize) {
    let mut fastest = Duration::MAX;
    let mut len = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let out = f();
        fastest = fastest.min(start.elapsed());
        len = out.len();
    }
    (fastest, len)
}

fn main() {
    let items: Vec<Value> = (0..10_000).map(pod).collect();
    let list = json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "20000"}, "items": items});
    let (go, go_len) = best(11, || skiff_protobuf::json::to_body(&list));
    let (serde, serde_len) = best(11, || serde_json::to_vec(&list).expect("serializes"));
    println!("10,000-pod PodList, best of 11:");
    println!("  skiff_protobuf::json::to_body  {go:>10.2?}  {go_len} bytes");
    println!("  serde_json::to_vec             {serde:>10.2?}  {serde_len} bytes");
}
