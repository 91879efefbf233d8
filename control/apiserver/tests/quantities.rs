//! Resource quantities through the HTTP API, as Kubernetes answers them: one that does not parse
//! is a decode error (400 `<Kind> in version "v1" cannot be handled as a <Kind>: ...`), a
//! negative one or a request above its limit a 422 with a field cause, and neither is stored.

mod support;

use http::Method;
use serde_json::{Value, json};
use support::{Backend, Raw, TestServer};

const PODS: &str = "/api/v1/namespaces/default/pods";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const REGEX_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Sends `body` as JSON (a merge patch for PATCH); returns the status code and the response
/// parsed as JSON.
async fn send(client: &Raw, method: Method, path: &str, body: &Value) -> (u16, Value) {
    let content_type = match method {
        Method::PATCH => "application/merge-patch+json",
        _ => "application/json",
    };
    let body = serde_json::to_vec(body).unwrap();
    client.send(method, path, content_type, body).await
}

async fn get(client: &Raw, path: &str) -> u16 {
    client.send(Method::GET, path, "", Vec::new()).await.0
}

fn pod(name: &str, resources: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]}
    })
}

/// A 400 BadRequest whose message is `message`.
fn assert_bad_request(response: &(u16, Value), message: &str) {
    let (code, body) = response;
    assert_eq!(*code, 400, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["reason"], "BadRequest", "{body}");
    assert_eq!(body["message"], message, "{body}");
}

/// A 422 Invalid whose only cause is `message` at `field`.
fn assert_invalid(response: &(u16, Value), field: &str, message: &str) {
    let (code, body) = response;
    assert_eq!(*code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid", "{body}");
    let causes = body["details"]["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{body}");
    assert_eq!(causes[0]["field"], field, "{body}");
    assert_eq!(causes[0]["message"], message, "{body}");
    assert_eq!(causes[0]["reason"], "FieldValueInvalid", "{body}");
}

async fn start() -> (TestServer, Raw) {
    let server = TestServer::start(Backend::Embedded, "quantities").await;
    let client = Raw::new(&server);
    (server, client)
}

#[tokio::test]
async fn unparsable_quantities_are_decode_errors() {
    let (_server, client) = start().await;
    let cases = [
        (json!({"requests": {"cpu": "abc"}}), REGEX_ERROR),
        (json!({"limits": {"memory": "1 Gi"}}), REGEX_ERROR),
        (
            json!({"limits": {"memory": "1i"}}),
            "unable to parse quantity's suffix",
        ),
        (
            json!({"requests": {"cpu": "5mi"}}),
            "unable to parse quantity's suffix",
        ),
        (json!({"requests": {"cpu": ""}}), REGEX_ERROR),
    ];
    for (i, (resources, error)) in cases.into_iter().enumerate() {
        let name = format!("bad-{i}");
        let response = send(&client, Method::POST, PODS, &pod(&name, resources)).await;
        let message = format!("Pod in version \"v1\" cannot be handled as a Pod: {error}");
        assert_bad_request(&response, &message);
        assert_eq!(get(&client, &format!("{PODS}/{name}")).await, 404);
    }

    // Every quantity of a pod spec is decoded: init containers, overhead, pod-level resources,
    // emptyDir sizes, downward API divisors.
    let specs = [
        json!({"initContainers": [{"name": "i", "image": "busybox", "resources": {"limits": {"cpu": "x"}}}]}),
        json!({"overhead": {"cpu": "x"}}),
        json!({"resources": {"requests": {"memory": "x"}}}),
        json!({"volumes": [{"name": "v", "emptyDir": {"sizeLimit": "x"}}]}),
        json!({"volumes": [{"name": "v", "downwardAPI": {"items": [{"path": "cpu",
            "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "x"}}]}}]}),
    ];
    for (i, extra) in specs.into_iter().enumerate() {
        let mut body = pod(&format!("spec-{i}"), json!({}));
        for (key, value) in extra.as_object().unwrap() {
            body["spec"][key] = value.clone();
        }
        let response = send(&client, Method::POST, PODS, &body).await;
        let message = format!("Pod in version \"v1\" cannot be handled as a Pod: {REGEX_ERROR}");
        assert_bad_request(&response, &message);
    }

    // Templates too, on create and on update.
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {"limits": {"cpu": "abc"}}}]}
            }
        }
    });
    let response = send(&client, Method::POST, DEPLOYMENTS, &deployment).await;
    let message =
        format!("Deployment in version \"v1\" cannot be handled as a Deployment: {REGEX_ERROR}");
    assert_bad_request(&response, &message);
    let mut good = deployment.clone();
    good["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!("1.5");
    let created = send(&client, Method::POST, DEPLOYMENTS, &good).await;
    assert_eq!(created.0, 201, "{}", created.1);
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx", "resources": {"limits": {"cpu": "1.5.0"}}}
    ]}}}});
    let response = send(
        &client,
        Method::PATCH,
        &format!("{DEPLOYMENTS}/web"),
        &patch,
    )
    .await;
    assert_bad_request(&response, &message);
}

#[tokio::test]
async fn resource_requirements_follow_kubernetes_rules() {
    let (_server, client) = start().await;
    let invalid = [
        (
            json!({"requests": {"cpu": "-1"}}),
            "spec.containers[0].resources.requests[cpu]",
            "Invalid value: \"-1\": must be greater than or equal to 0",
        ),
        (
            json!({"limits": {"memory": "-0.5Gi"}}),
            "spec.containers[0].resources.limits[memory]",
            "Invalid value: \"-512Mi\": must be greater than or equal to 0",
        ),
        (
            json!({"requests": {"cpu": "1"}, "limits": {"cpu": "500m"}}),
            "spec.containers[0].resources.requests",
            "Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
        ),
        (
            json!({"requests": {"memory": "1.5Gi"}, "limits": {"memory": "1Gi"}}),
            "spec.containers[0].resources.requests",
            "Invalid value: \"1536Mi\": must be less than or equal to memory limit of 1Gi",
        ),
        (
            json!({"requests": {"example.com/gpu": "1"}, "limits": {"example.com/gpu": "2"}}),
            "spec.containers[0].resources.requests",
            "Invalid value: \"1\": must be equal to example.com/gpu limit of 2",
        ),
        (
            json!({"limits": {"example.com/gpu": "500m"}}),
            "spec.containers[0].resources.limits[example.com/gpu]",
            "Invalid value: \"500m\": must be an integer",
        ),
    ];
    for (i, (resources, field, message)) in invalid.into_iter().enumerate() {
        let name = format!("invalid-{i}");
        let response = send(&client, Method::POST, PODS, &pod(&name, resources)).await;
        assert_invalid(&response, field, message);
        assert_eq!(get(&client, &format!("{PODS}/{name}")).await, 404);
    }
    let response = send(
        &client,
        Method::POST,
        PODS,
        &pod("gpu", json!({"requests": {"example.com/gpu": "1"}})),
    )
    .await;
    assert_eq!(response.0, 422, "{}", response.1);
    assert_eq!(
        response.1["details"]["causes"][0]["message"],
        "Required value: Limit must be set for non overcommitable resources"
    );
    assert_eq!(
        response.1["details"]["causes"][0]["field"],
        "spec.containers[0].resources.limits"
    );

    // The same values in other spellings compare equal: 1000m is 1, 1024Mi is 1Gi.
    let valid = [
        json!({"requests": {"cpu": "1000m"}, "limits": {"cpu": "1"}}),
        json!({"requests": {"memory": "1024Mi"}, "limits": {"memory": "1Gi"}}),
        json!({"requests": {"cpu": "0.5", "memory": "1e9"}, "limits": {"cpu": "500m", "memory": "1G"}}),
        json!({"requests": {"cpu": 0.25}, "limits": {"cpu": 1}}),
        json!({"requests": {"example.com/gpu": "2"}, "limits": {"example.com/gpu": "2"}}),
        json!({"limits": {"cpu": "0", "memory": "0"}}),
    ];
    for (i, resources) in valid.into_iter().enumerate() {
        let response = send(
            &client,
            Method::POST,
            PODS,
            &pod(&format!("ok-{i}"), resources),
        )
        .await;
        assert_eq!(response.0, 201, "{}", response.1);
    }

    // Init containers and pod-level resources have the same rules, at their own paths;
    // overhead is validated as limits.
    let mut body = pod("init", json!({}));
    body["spec"]["initContainers"] = json!([{"name": "i", "image": "busybox",
        "resources": {"limits": {"memory": "-1"}}}]);
    assert_invalid(
        &send(&client, Method::POST, PODS, &body).await,
        "spec.initContainers[0].resources.limits[memory]",
        "Invalid value: \"-1\": must be greater than or equal to 0",
    );
    let mut body = pod("pod-level", json!({}));
    body["spec"]["resources"] = json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}});
    assert_invalid(
        &send(&client, Method::POST, PODS, &body).await,
        "spec.resources.requests",
        "Invalid value: \"2\": must be less than or equal to cpu limit of 1",
    );
    let mut body = pod("overhead", json!({}));
    body["spec"]["overhead"] = json!({"cpu": "-10m"});
    assert_invalid(
        &send(&client, Method::POST, PODS, &body).await,
        "spec.overhead.limits[cpu]",
        "Invalid value: \"-10m\": must be greater than or equal to 0",
    );
}

#[tokio::test]
async fn other_kinds_validate_their_quantities() {
    let (_server, client) = start().await;
    let ns = "/api/v1/namespaces/default";
    let quota = |hard: Value| {
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
               "spec": {"hard": hard}})
    };
    let quotas = format!("{ns}/resourcequotas");
    assert_bad_request(
        &send(
            &client,
            Method::POST,
            &quotas,
            &quota(json!({"cpu": "lots"})),
        )
        .await,
        &format!(
            "ResourceQuota in version \"v1\" cannot be handled as a ResourceQuota: {REGEX_ERROR}"
        ),
    );
    assert_invalid(
        &send(
            &client,
            Method::POST,
            &quotas,
            &quota(json!({"requests.memory": "-1Gi"})),
        )
        .await,
        "spec.hard[requests.memory]",
        "Invalid value: \"-1Gi\": must be greater than or equal to 0",
    );
    assert_invalid(
        &send(
            &client,
            Method::POST,
            &quotas,
            &quota(json!({"pods": "1.5"})),
        )
        .await,
        "spec.hard[pods]",
        "Invalid value: \"1500m\": must be an integer",
    );
    let ok = send(
        &client,
        Method::POST,
        &quotas,
        &quota(json!({"pods": "10", "cpu": "4"})),
    )
    .await;
    assert_eq!(ok.0, 201, "{}", ok.1);

    let limit_range = |item: Value| {
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l"},
               "spec": {"limits": [item]}})
    };
    let ranges = format!("{ns}/limitranges");
    assert_bad_request(
        &send(
            &client,
            Method::POST,
            &ranges,
            &limit_range(json!({"type": "Container", "max": {"cpu": "1 core"}})),
        )
        .await,
        &format!("LimitRange in version \"v1\" cannot be handled as a LimitRange: {REGEX_ERROR}"),
    );
    assert_invalid(
        &send(
            &client,
            Method::POST,
            &ranges,
            &limit_range(
                json!({"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1500m"}}),
            ),
        )
        .await,
        "spec.limits[0].min[cpu]",
        "Invalid value: \"2\": min value 2 is greater than max value 1500m",
    );
    let ok = send(
        &client,
        Method::POST,
        &ranges,
        &limit_range(json!({
            "type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "2"},
            "default": {"cpu": "1"}, "defaultRequest": {"cpu": "0.5"}
        })),
    )
    .await;
    assert_eq!(ok.0, 201, "{}", ok.1);

    let claim = |requests: Value| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": requests}}})
    };
    let claims = format!("{ns}/persistentvolumeclaims");
    assert_bad_request(
        &send(
            &client,
            Method::POST,
            &claims,
            &claim(json!({"storage": "1GB"})),
        )
        .await,
        &format!(
            "PersistentVolumeClaim in version \"v1\" cannot be handled as a PersistentVolumeClaim: {REGEX_ERROR}"
        ),
    );
    assert_invalid(
        &send(
            &client,
            Method::POST,
            &claims,
            &claim(json!({"storage": "0"})),
        )
        .await,
        "spec.resources[storage]",
        "Invalid value: \"0\": must be greater than zero",
    );

    let volume = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "v"},
        "spec": {"capacity": {"storage": "-1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/tmp"}}});
    let response = send(&client, Method::POST, "/api/v1/persistentvolumes", &volume).await;
    assert_eq!(response.0, 422, "{}", response.1);
    let messages: Vec<&str> = response.1["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "Invalid value: -1073741824: must be a valid resource quantity",
            "Invalid value: \"-1Gi\": must be greater than zero",
        ]
    );

    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
        "status": {"capacity": {"cpu": "-2", "pods": "110"}}});
    assert_invalid(
        &send(&client, Method::POST, "/api/v1/nodes", &node).await,
        "status.capacity.cpu",
        "Invalid value: \"-2\": must be greater than or equal to 0",
    );
}
