//! The `pods/ephemeralcontainers` subresource through the raw HTTP API, as Kubernetes answers:
//! it writes only `spec.ephemeralContainers`, ephemeral containers can only be added (never
//! removed or changed), each with Kubernetes' validation, and the pod itself (create, PUT, PATCH)
//! and pod templates cannot carry or change them. The real `kubectl debug` patches through it.

mod support;

use http::Method;
use serde_json::{Value, json};
use support::{Backend, Raw, TestServer};

const PODS: &str = "/api/v1/namespaces/default/pods";

fn pod_path(name: &str) -> String {
    format!("{PODS}/{name}")
}

fn subresource(name: &str) -> String {
    format!("{PODS}/{name}/ephemeralcontainers")
}

async fn send(
    client: &Raw,
    method: Method,
    path: &str,
    content_type: &str,
    body: &Value,
) -> (u16, Value) {
    let body = serde_json::to_vec(body).unwrap();
    client.send(method, path, content_type, body).await
}

/// A strategic merge patch (what `kubectl debug` sends).
async fn patch(client: &Raw, path: &str, body: &Value) -> (u16, Value) {
    let kind = "application/strategic-merge-patch+json";
    send(client, Method::PATCH, path, kind, body).await
}

async fn get(client: &Raw, path: &str) -> Value {
    let (code, body) = client.send(Method::GET, path, "", Vec::new()).await;
    assert_eq!(code, 200, "{body}");
    body
}

/// A pod with an app container `c`, an init container `init` and a volume `data`.
async fn create_pod(client: &Raw, name: &str, annotations: Value) {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "x"}, "annotations": annotations},
        "spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "c", "image": "busybox:1.36"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
        }
    });
    let (code, body) = send(client, Method::POST, PODS, "application/json", &pod).await;
    assert_eq!(code, 201, "{body}");
}

/// An ephemeral container named `name` with `more` merged in.
fn debugger(name: &str, more: Value) -> Value {
    let mut c = json!({"name": name, "image": "busybox", "targetContainerName": "c"});
    for (k, v) in more.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// A 422 whose causes are exactly `expected` (field, message), in order.
fn assert_causes(response: &(u16, Value), expected: &[(&str, &str)]) {
    let (code, body) = response;
    assert_eq!(*code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid", "{body}");
    let causes: Vec<(String, String)> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (text("field"), text("message"))
        })
        .collect();
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(f, m)| (f.to_string(), m.to_string()))
        .collect();
    assert_eq!(causes, expected, "{body}");
}

async fn start(test: &str) -> (TestServer, Raw) {
    let server = TestServer::start(Backend::Embedded, test).await;
    let client = Raw::new(&server);
    (server, client)
}

#[tokio::test]
async fn discovery_lists_the_subresource() {
    let (_server, client) = start("ephemeral-discovery").await;
    let resources = get(&client, "/api/v1").await;
    let entry = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/ephemeralcontainers")
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["kind"], "Pod", "{resources}");
    assert_eq!(entry["verbs"], json!(["get", "patch", "update"]), "{entry}");
    assert_eq!(entry["namespaced"], true, "{entry}");
}

/// Adding through the subresource changes only `spec.ephemeralContainers` (defaulted as
/// containers are); everything else the body says is ignored, and the pod's GET, the
/// subresource's GET and the write's answer agree.
#[tokio::test]
async fn the_subresource_adds_ephemeral_containers_and_nothing_else() {
    let (_server, client) = start("ephemeral-add").await;
    create_pod(&client, "p", json!({})).await;
    let body = json!({
        "metadata": {"labels": {"app": "changed"}, "annotations": {"a": "b"}},
        "spec": {
            "containers": [{"name": "c", "image": "busybox:1.37"}],
            "activeDeadlineSeconds": 5,
            "ephemeralContainers": [debugger("debugger", json!({
                "command": ["sh"], "stdin": true, "tty": true, "resources": {},
                "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }))],
        },
        "status": {"phase": "Running"},
    });
    let (code, answer) = patch(&client, &subresource("p"), &body).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["kind"], "Pod", "{answer}");
    let stored = get(&client, &pod_path("p")).await;
    assert_eq!(get(&client, &subresource("p")).await, stored);
    assert_eq!(answer, stored);
    assert_eq!(stored["metadata"]["labels"], json!({"app": "x"}));
    assert!(
        stored["metadata"]["annotations"].get("a").is_none(),
        "{stored}"
    );
    assert_eq!(stored["spec"]["containers"][0]["image"], "busybox:1.36");
    assert!(
        stored["spec"].get("activeDeadlineSeconds").is_none(),
        "{stored}"
    );
    assert_eq!(stored["status"]["phase"], "Pending");
    let added = &stored["spec"]["ephemeralContainers"];
    assert_eq!(added.as_array().map(Vec::len), Some(1), "{stored}");
    let c = &added[0];
    assert_eq!(c["name"], "debugger");
    assert_eq!(c["targetContainerName"], "c");
    assert_eq!(c["stdin"], true);
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(
        c["securityContext"]["capabilities"]["add"],
        json!(["SYS_PTRACE"])
    );

    // A second one added by PUT of the whole pod, keeping the first as it is.
    let mut pod = stored.clone();
    pod["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .push(debugger("second", json!({"targetContainerName": "init"})));
    let (code, answer) = send(
        &client,
        Method::PUT,
        &subresource("p"),
        "application/json",
        &pod,
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    let names: Vec<&str> = answer["spec"]["ephemeralContainers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["debugger", "second"]);
}

/// What an added ephemeral container may not be, with Kubernetes' field paths and messages.
#[tokio::test]
async fn invalid_ephemeral_containers_are_refused() {
    let (_server, client) = start("ephemeral-invalid").await;
    create_pod(&client, "p", json!({})).await;
    let forbidden = "Forbidden: cannot be set for an Ephemeral Container";
    let at = "spec.ephemeralContainers[0]";
    let probe = json!({"exec": {"command": ["true"]}});
    let cases: Vec<(Value, Vec<(String, &str)>)> = vec![
        (
            debugger("c", json!({})),
            vec![(format!("{at}.name"), "Duplicate value: \"c\"")],
        ),
        (
            debugger("init", json!({})),
            vec![(format!("{at}.name"), "Duplicate value: \"init\"")],
        ),
        (
            debugger("d", json!({"targetContainerName": "nope"})),
            vec![(format!("{at}.targetContainerName"), "Not found: \"nope\"")],
        ),
        (
            debugger("d", json!({"ports": [{"containerPort": 80}]})),
            vec![(format!("{at}.ports"), forbidden)],
        ),
        (
            debugger(
                "d",
                json!({"readinessProbe": probe, "lifecycle": {"preStop": probe}}),
            ),
            vec![
                (format!("{at}.readinessProbe"), forbidden),
                (format!("{at}.lifecycle"), forbidden),
            ],
        ),
        (
            debugger("d", json!({"livenessProbe": probe, "startupProbe": probe})),
            vec![
                (format!("{at}.livenessProbe"), forbidden),
                (format!("{at}.startupProbe"), forbidden),
            ],
        ),
        (
            debugger("d", json!({"restartPolicy": "Always"})),
            vec![(format!("{at}.restartPolicy"), forbidden)],
        ),
        (
            debugger("d", json!({"resources": {"limits": {"cpu": "1"}}})),
            vec![(format!("{at}.resources"), forbidden)],
        ),
        (
            debugger(
                "d",
                json!({"volumeMounts": [{"name": "data", "mountPath": "/d", "subPath": "x"}]}),
            ),
            vec![(format!("{at}.volumeMounts[0].subPath"), forbidden)],
        ),
        (
            debugger(
                "d",
                json!({"volumeMounts": [{"name": "missing", "mountPath": "/d"}]}),
            ),
            vec![(
                format!("{at}.volumeMounts[0].name"),
                "Not found: \"missing\"",
            )],
        ),
        (
            debugger("Bad_Name", json!({})),
            vec![(
                format!("{at}.name"),
                "Invalid value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            )],
        ),
    ];
    for (container, expected) in cases {
        let body = json!({"spec": {"ephemeralContainers": [container]}});
        let response = patch(&client, &subresource("p"), &body).await;
        let expected: Vec<(&str, &str)> = expected.iter().map(|(f, m)| (f.as_str(), *m)).collect();
        assert_causes(&response, &expected);
    }
    // None of them was stored.
    let stored = get(&client, &pod_path("p")).await;
    assert!(
        stored["spec"].get("ephemeralContainers").is_none(),
        "{stored}"
    );

    // Targeting another ephemeral container is not targeting a container.
    let first = json!({"spec": {"ephemeralContainers": [debugger("one", json!({}))]}});
    assert_eq!(patch(&client, &subresource("p"), &first).await.0, 200);
    let second = json!({"spec": {"ephemeralContainers": [debugger("two", json!({"targetContainerName": "one"}))]}});
    assert_causes(
        &patch(&client, &subresource("p"), &second).await,
        &[(
            "spec.ephemeralContainers[1].targetContainerName",
            "Not found: \"one\"",
        )],
    );
}

/// Existing ephemeral containers can be neither removed nor changed, through the subresource or
/// the pod itself.
#[tokio::test]
async fn ephemeral_containers_can_only_be_added() {
    let (_server, client) = start("ephemeral-immutable").await;
    create_pod(&client, "p", json!({})).await;
    let add = json!({"spec": {"ephemeralContainers": [debugger("debugger", json!({}))]}});
    let (code, added) = patch(&client, &subresource("p"), &add).await;
    assert_eq!(code, 200, "{added}");
    let json_type = "application/json";

    let mut removed = added.clone();
    removed["spec"]["ephemeralContainers"] = json!([]);
    let response = send(&client, Method::PUT, &subresource("p"), json_type, &removed).await;
    assert_causes(
        &response,
        &[(
            "spec.ephemeralContainers",
            "Forbidden: existing ephemeral containers \"debugger\" may not be removed\n",
        )],
    );

    let mut changed = added.clone();
    changed["spec"]["ephemeralContainers"][0]["image"] = json!("alpine");
    let (code, body) = send(&client, Method::PUT, &subresource("p"), json_type, &changed).await;
    assert_eq!(code, 422, "{body}");
    let message = body["details"]["causes"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.starts_with(
            "Forbidden: existing ephemeral containers \"debugger\" may not be changed\n"
        ),
        "{body}"
    );
    assert!(message.contains("image"), "{body}");

    // A merge patch replaces the list: the existing one is removed.
    let replaced = json!({"spec": {"ephemeralContainers": [debugger("other", json!({}))]}});
    let kind = "application/merge-patch+json";
    let (code, body) = send(&client, Method::PATCH, &subresource("p"), kind, &replaced).await;
    assert_eq!(code, 422, "{body}");

    // The pod itself cannot change them: a pod update may change only what Kubernetes lists.
    for (method, body, kind) in [
        (Method::PUT, changed.clone(), json_type),
        (
            Method::PATCH,
            replaced.clone(),
            "application/strategic-merge-patch+json",
        ),
    ] {
        let (code, answer) = send(&client, method.clone(), &pod_path("p"), kind, &body).await;
        assert_eq!(code, 422, "{method} {answer}");
        let cause = &answer["details"]["causes"][0];
        assert_eq!(cause["field"], "spec", "{answer}");
        let message = cause["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("Forbidden: pod updates may not change fields other than"),
            "{answer}"
        );
    }
    let stored = get(&client, &pod_path("p")).await;
    assert_eq!(
        stored["spec"]["ephemeralContainers"],
        added["spec"]["ephemeralContainers"]
    );
}

/// A new pod, a static pod's mirror and a pod template take no ephemeral containers.
#[tokio::test]
async fn ephemeral_containers_come_only_through_the_subresource() {
    let (_server, client) = start("ephemeral-create").await;
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "new"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox"}],
            "ephemeralContainers": [debugger("d", json!({}))],
        }
    });
    let response = send(&client, Method::POST, PODS, "application/json", &pod).await;
    assert_causes(
        &response,
        &[(
            "spec.ephemeralContainers",
            "Forbidden: cannot be set on create",
        )],
    );

    create_pod(
        &client,
        "mirror",
        json!({"kubernetes.io/config.mirror": "hash"}),
    )
    .await;
    let add = json!({"spec": {"ephemeralContainers": [debugger("d", json!({}))]}});
    assert_causes(
        &patch(&client, &subresource("mirror"), &add).await,
        &[(
            "",
            "Forbidden: static pods do not support ephemeral containers",
        )],
    );

    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "c", "image": "busybox"}],
                    "ephemeralContainers": [debugger("d", json!({}))],
                },
            },
        }
    });
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let response = send(&client, Method::POST, path, "application/json", &deployment).await;
    assert_causes(
        &response,
        &[(
            "spec.template.spec.ephemeralContainers",
            "Forbidden: ephemeral containers not allowed in pod template",
        )],
    );
    // Unknown pods are 404 on the subresource too.
    let (code, _) = patch(&client, &subresource("absent"), &add).await;
    assert_eq!(code, 404);
}

/// The real `kubectl debug` (without `-i` it only adds the container) goes through the
/// subresource with its strategic merge patch; a second run adds a second one.
#[tokio::test]
async fn kubectl_debug_adds_an_ephemeral_container() {
    let (server, client) = start("ephemeral-kubectl").await;
    create_pod(&client, "p", json!({})).await;
    for _ in 0..2 {
        let args = [
            "debug",
            "p",
            "--image=busybox",
            "--target=c",
            "--",
            "sh",
            "-c",
            "true",
        ];
        server.kubectl(&args).await;
    }
    let pod = server.get_json(&["pod", "p"]).await;
    let added = pod["spec"]["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(added.len(), 2, "{pod}");
    for c in &added {
        assert!(
            c["name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("debugger-"),
            "{c}"
        );
        assert_eq!(c["targetContainerName"], "c");
        assert_eq!(c["command"], json!(["sh", "-c", "true"]));
    }
    assert_ne!(added[0]["name"], added[1]["name"]);
}
