//! The shapes of answers clients written against kube-apiserver rely on, over raw HTTP: what
//! the `Accept` header turns an answer into (`PartialObjectMetadata`, its list, a `Table` with
//! `includeObject`, 406 NotAcceptable for what is not served) for single objects, lists and
//! watch events; `metadata.generation` per kind; what a create keeps of a sent status; what a
//! delete answers per kind (the object, a Status, the object marked for deletion, 200 or 202)
//! and what deletecollection answers.

mod support;

use http::Method;
use serde_json::{Value, json};
use support::{Backend, Raw, TestServer};

const POM: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const POM_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const TABLE: &str = "application/json;as=Table;g=meta.k8s.io;v=v1";
const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const PODS: &str = "/api/v1/namespaces/default/pods";

/// A raw client with JSON in and out.
struct Api {
    raw: Raw,
}

impl Api {
    fn new(server: &TestServer) -> Api {
        Api {
            raw: Raw::new(server),
        }
    }

    /// Sends `body` (JSON, or a merge patch for PATCH) with `accept`; the code and the body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let content_type = if method == Method::PATCH { MERGE } else { JSON };
        let mut headers = vec![("content-type", content_type)];
        if let Some(accept) = accept {
            headers.push(("accept", accept));
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (code, text) = self.raw.request(method, path, &headers, body).await;
        let value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        (code, value)
    }

    async fn get(&self, path: &str, accept: Option<&str>) -> (u16, Value) {
        self.call(Method::GET, path, accept, None).await
    }

    /// Creates an object, asserting a 201; returns it.
    async fn create(&self, path: &str, body: Value) -> Value {
        let (code, created) = self.call(Method::POST, path, None, Some(&body)).await;
        assert_eq!(code, 201, "{created}");
        created
    }

    async fn patch(&self, path: &str, patch: Value) -> Value {
        let (code, patched) = self.call(Method::PATCH, path, None, Some(&patch)).await;
        assert_eq!(code, 200, "{patched}");
        patched
    }

    async fn delete(&self, path: &str, options: Option<Value>) -> (u16, Value) {
        self.call(Method::DELETE, path, None, options.as_ref())
            .await
    }

    /// A watch's events, read until its `timeoutSeconds` (in `query`) ends it.
    async fn watch(&self, path: &str, query: &str, accept: &str) -> Vec<Value> {
        let url = format!("{path}?watch=true&{query}");
        let (code, text) = self
            .raw
            .request(Method::GET, &url, &[("accept", accept)], Vec::new())
            .await;
        assert_eq!(code, 200, "{text}");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

fn config_map(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name, "labels": { "app": "shapes" } },
        "data": { "key": "value" },
    })
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "c", "image": "busybox" }] }
            }
        },
    })
}

fn pod(name: &str, node: Option<&str>) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name },
        "spec": { "containers": [{ "name": "c", "image": "busybox" }] },
    });
    if let Some(node) = node {
        pod["spec"]["nodeName"] = json!(node);
    }
    pod
}

/// Asserts a failure `Status` with `code` and `reason` whose message contains `message`.
fn assert_failure(response: &(u16, Value), code: u16, reason: &str, message: &str) {
    let (got, body) = response;
    assert_eq!(*got, code, "{body}");
    assert_eq!(
        (&body["kind"], &body["reason"], &body["code"]),
        (&json!("Status"), &json!(reason), &json!(code)),
        "{body}"
    );
    let text = body["message"].as_str().unwrap_or_default();
    assert!(text.contains(message), "{text:?} lacks {message:?}");
}

/// Asserts `body` is one object's `PartialObjectMetadata` named `name`, in `version`.
fn assert_partial(body: &Value, name: &str, version: &str) {
    assert_eq!(body["kind"], "PartialObjectMetadata", "{body}");
    assert_eq!(
        body["apiVersion"],
        format!("meta.k8s.io/{version}"),
        "{body}"
    );
    assert_eq!(body["metadata"]["name"], name, "{body}");
    assert!(body["metadata"]["uid"].is_string(), "{body}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3, "only kind, apiVersion and metadata: {body}");
}

async fn accept_turns_answers_into_metadata_and_tables(server: &TestServer) {
    let api = Api::new(server);
    // A create answers in the negotiated form too.
    let (code, created) = api
        .call(
            Method::POST,
            CONFIGMAPS,
            Some(POM),
            Some(&config_map("one")),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_partial(&created, "one", "v1");
    api.create(CONFIGMAPS, config_map("two")).await;
    let one = format!("{CONFIGMAPS}/one");

    // One object: its metadata, in the version asked, whichever clause of the header matches.
    let client_go = format!(
        "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,{POM},application/json"
    );
    for (accept, version) in [
        (POM, "v1"),
        (client_go.as_str(), "v1"),
        (
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1",
            "v1beta1",
        ),
    ] {
        let (code, body) = api.get(&one, Some(accept)).await;
        assert_eq!(code, 200, "{body}");
        assert_partial(&body, "one", version);
    }

    // A list: each item's metadata, the list's resourceVersion and continue token kept.
    let (code, list) = api.get(CONFIGMAPS, Some(POM_LIST)).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["kind"], "PartialObjectMetadataList", "{list}");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    assert!(list["metadata"]["resourceVersion"].is_string(), "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert_partial(&items[0], "one", "v1");
    assert_partial(&items[1], "two", "v1");
    let (_, page) = api
        .get(&format!("{CONFIGMAPS}?limit=1"), Some(POM_LIST))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert!(page["metadata"]["continue"].is_string(), "{page}");

    // What does not fit, or is not served: 406.
    let deployments_scale = {
        api.create(DEPLOYMENTS, deployment("web")).await;
        format!("{DEPLOYMENTS}/web/scale")
    };
    let refused = [
        (
            CONFIGMAPS,
            POM,
            "you requested PartialObjectMetadata, but the requested object is a list (*core.ConfigMapList)",
        ),
        (
            one.as_str(),
            POM_LIST,
            "you requested PartialObjectMetadataList, but the requested object is not a list (*core.ConfigMap)",
        ),
        (DEPLOYMENTS, POM, "(*apps.DeploymentList)"),
        (
            one.as_str(),
            "text/html",
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        ),
        (
            one.as_str(),
            "application/json;as=Foo;g=meta.k8s.io;v=v1",
            "only the following media types are accepted",
        ),
        (
            one.as_str(),
            "application/json;q=0",
            "only the following media types are accepted",
        ),
        // A Scale has no printer.
        (
            deployments_scale.as_str(),
            TABLE,
            "only the following media types are accepted",
        ),
    ];
    for (path, accept, message) in refused {
        let response = api.get(path, Some(accept)).await;
        assert_failure(&response, 406, "NotAcceptable", message);
    }
    // kubectl's header falls back to the object where no table is printed.
    let (code, scale) = api
        .get(
            &deployments_scale,
            Some(&format!("{TABLE},application/json")),
        )
        .await;
    assert_eq!((code, &scale["kind"]), (200, &json!("Scale")), "{scale}");

    // Tables, for any kind, one object or a list, with the object as includeObject says.
    for (path, rows) in [(one.as_str(), 1), (CONFIGMAPS, 2), (DEPLOYMENTS, 1)] {
        for (include, object) in [
            ("", "PartialObjectMetadata"),
            ("&includeObject=Metadata", "PartialObjectMetadata"),
            ("&includeObject=Object", "full"),
            ("&includeObject=None", "none"),
        ] {
            let url = format!("{path}?x=1{include}");
            let (code, table) = api.get(&url, Some(TABLE)).await;
            assert_eq!(code, 200, "{table}");
            assert_eq!(
                (&table["kind"], &table["apiVersion"]),
                (&json!("Table"), &json!("meta.k8s.io/v1"))
            );
            assert_eq!(table["columnDefinitions"][0]["name"], "Name", "{table}");
            let got = table["rows"].as_array().unwrap();
            assert_eq!(got.len(), rows, "{url}: {table}");
            let row_object = &got[0]["object"];
            match object {
                "none" => assert!(row_object.is_null(), "{row_object}"),
                "full" => assert!(
                    row_object["spec"].is_object() || row_object["data"].is_object(),
                    "{row_object}"
                ),
                kind => assert_eq!(row_object["kind"], kind, "{row_object}"),
            }
        }
    }
    let response = api
        .get(&format!("{one}?includeObject=All"), Some(TABLE))
        .await;
    assert_failure(
        &response,
        400,
        "BadRequest",
        "Unable to convert to Table as requested: includeObject: Invalid value: \"All\"",
    );

    // A Status passes through whatever was asked (a config map's delete answers one).
    let (code, status) = api
        .call(
            Method::DELETE,
            &format!("{CONFIGMAPS}/two"),
            Some(POM),
            None,
        )
        .await;
    assert_eq!(
        (code, &status["kind"], &status["status"]),
        (200, &json!("Status"), &json!("Success")),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_turns_answers_into_metadata_and_tables_embedded() {
    let server = TestServer::start(Backend::Embedded, "responses_accept").await;
    accept_turns_answers_into_metadata_and_tables(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_send_each_object_as_negotiated() {
    let server = TestServer::start(Backend::Embedded, "responses_watch").await;
    let api = Api::new(&server);
    for name in ["a", "b"] {
        api.create(CONFIGMAPS, config_map(name)).await;
    }
    let initial = "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1";

    // Metadata watch (kube-rs' metadata_watcher, client-go's metadata informers).
    let events = api.watch(CONFIGMAPS, initial, POM).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "ADDED", "BOOKMARK"], "{events:?}");
    assert_partial(&events[0]["object"], "a", "v1");
    assert_partial(&events[1]["object"], "b", "v1");
    let bookmark = &events[2]["object"];
    assert_eq!(bookmark["kind"], "PartialObjectMetadata", "{bookmark}");
    assert_eq!(
        bookmark["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    // A list's form cannot be an event's: kube-apiserver sends the objects as they are.
    let events = api.watch(CONFIGMAPS, initial, POM_LIST).await;
    assert_eq!(events[0]["object"]["kind"], "ConfigMap", "{events:?}");
    assert_eq!(events[0]["object"]["data"]["key"], "value");

    // Table rows: the column definitions once, then rows only.
    let events = api
        .watch(CONFIGMAPS, &format!("{initial}&includeObject=None"), TABLE)
        .await;
    let added: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "ADDED")
        .map(|e| &e["object"])
        .collect();
    assert_eq!(added.len(), 2, "{events:?}");
    assert_eq!(added[0]["kind"], "Table");
    assert!(added[0]["columnDefinitions"].is_array(), "{}", added[0]);
    // Not omitempty in Go: the nil slice of the later events is written as null.
    assert!(added[1]["columnDefinitions"].is_null(), "{}", added[1]);
    assert_eq!(added[1]["rows"][0]["cells"][0], "b");
    assert!(added[1]["rows"][0]["object"].is_null());

    // Negotiation fails before the stream starts.
    let (code, body) = api
        .get(
            &format!("{CONFIGMAPS}?watch=true&timeoutSeconds=1"),
            Some("text/html"),
        )
        .await;
    assert_eq!(code, 406, "{body}");
    let (code, body) = api
        .get(
            &format!("{CONFIGMAPS}?watch=true&timeoutSeconds=1&includeObject=Everything"),
            Some(TABLE),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    server.stop().await;
}

/// A kind to create, and how its generation must move.
struct GenerationCase {
    path: &'static str,
    name: &'static str,
    body: Value,
    /// A change of the spec (or what the kind counts as such).
    spec_change: Value,
    /// Whether the kind tracks a generation at all.
    tracked: bool,
    /// A metadata change the kind counts too, if any.
    counted_metadata: Option<Value>,
}

fn generation_cases() -> Vec<GenerationCase> {
    let labels = |app: &str| json!({ "metadata": { "labels": { "changed": app } } });
    vec![
        GenerationCase {
            path: CONFIGMAPS,
            name: "cm",
            body: config_map("cm"),
            spec_change: json!({ "data": { "key": "other" } }),
            tracked: false,
            counted_metadata: None,
        },
        GenerationCase {
            path: "/api/v1/namespaces/default/secrets",
            name: "secret",
            body: json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "secret" }, "stringData": { "a": "b" } }),
            spec_change: json!({ "stringData": { "a": "c" } }),
            tracked: false,
            counted_metadata: None,
        },
        GenerationCase {
            path: "/api/v1/namespaces/default/services",
            name: "svc",
            body: json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "svc" },
                "spec": { "ports": [{ "port": 80 }] } }),
            spec_change: json!({ "spec": { "selector": { "app": "x" } } }),
            tracked: false,
            counted_metadata: None,
        },
        GenerationCase {
            path: DEPLOYMENTS,
            name: "gen",
            body: deployment("gen"),
            spec_change: json!({ "spec": { "replicas": 3 } }),
            tracked: true,
            counted_metadata: Some(json!({ "metadata": { "annotations": { "note": "x" } } })),
        },
        GenerationCase {
            path: "/apis/apps/v1/namespaces/default/daemonsets",
            name: "ds",
            body: {
                let mut ds = deployment("ds");
                ds["kind"] = json!("DaemonSet");
                ds["metadata"]["name"] = json!("ds");
                ds["spec"].as_object_mut().unwrap().remove("replicas");
                ds
            },
            spec_change: json!({ "spec": { "minReadySeconds": 5 } }),
            tracked: true,
            counted_metadata: None,
        },
        GenerationCase {
            path: "/apis/batch/v1/namespaces/default/cronjobs",
            name: "cron",
            body: json!({ "apiVersion": "batch/v1", "kind": "CronJob", "metadata": { "name": "cron" },
                "spec": { "schedule": "*/5 * * * *", "jobTemplate": { "spec": { "template": { "spec": {
                    "restartPolicy": "Never", "containers": [{ "name": "c", "image": "busybox" }] } } } } } }),
            spec_change: json!({ "spec": { "suspend": true } }),
            tracked: true,
            counted_metadata: None,
        },
        GenerationCase {
            path: PODS,
            name: "gen-pod",
            body: pod("gen-pod", None),
            spec_change: json!({ "spec": { "activeDeadlineSeconds": 60 } }),
            tracked: true,
            counted_metadata: None,
        },
        GenerationCase {
            path: "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies",
            name: "np",
            body: json!({ "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": { "name": "np" },
                "spec": { "podSelector": {} } }),
            spec_change: json!({ "spec": { "podSelector": { "matchLabels": { "a": "b" } } } }),
            tracked: true,
            counted_metadata: None,
        },
        GenerationCase {
            path: "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            name: "slice",
            body: json!({ "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": { "name": "slice" },
                "addressType": "IPv4", "endpoints": [{ "addresses": ["10.0.0.1"] }] }),
            spec_change: json!({ "endpoints": [{ "addresses": ["10.0.0.2"] }] }),
            tracked: true,
            counted_metadata: Some(labels("slice")),
        },
    ]
}

async fn generation_is_kept_as_each_kinds_strategy_keeps_it(server: &TestServer) {
    let api = Api::new(server);
    for case in generation_cases() {
        let path = format!("{}/{}", case.path, case.name);
        let generation = |obj: &Value| obj["metadata"]["generation"].as_i64();
        let created = api.create(case.path, case.body.clone()).await;
        let start = case.tracked.then_some(1);
        assert_eq!(generation(&created), start, "{path} created: {created}");
        // Metadata no kind counts does not move it; the spec does.
        let finalizers = json!({ "metadata": { "finalizers": ["example.com/keep"] } });
        let finalized = api.patch(&path, finalizers).await;
        assert_eq!(
            generation(&finalized),
            start,
            "{path} metadata: {finalized}"
        );
        if case.counted_metadata.is_none() {
            let labels = json!({ "metadata": { "labels": { "unrelated": "x" } } });
            let relabelled = api.patch(&path, labels).await;
            assert_eq!(
                generation(&relabelled),
                start,
                "{path} labels: {relabelled}"
            );
        }
        // A client cannot set it.
        let forced = api
            .patch(&path, json!({ "metadata": { "generation": 42 } }))
            .await;
        assert_eq!(generation(&forced), start, "{path} forced: {forced}");
        let changed = api.patch(&path, case.spec_change.clone()).await;
        let after_spec = case.tracked.then_some(2);
        assert_eq!(
            generation(&changed),
            after_spec,
            "{path} changed: {changed}"
        );
        if let Some(metadata) = &case.counted_metadata {
            let counted = api.patch(&path, metadata.clone()).await;
            assert_eq!(generation(&counted), Some(3), "{path} metadata: {counted}");
        }
    }
    // A status write never moves it.
    let status = api
        .call(
            Method::PATCH,
            &format!("{DEPLOYMENTS}/gen/status"),
            None,
            Some(&json!({ "status": { "observedGeneration": 3 } })),
        )
        .await;
    assert_eq!(status.1["metadata"]["generation"], 3, "{}", status.1);
    // Nor does a pod's binding, which Kubernetes writes past the strategy.
    let binding = json!({ "apiVersion": "v1", "kind": "Binding", "metadata": { "name": "gen-pod" },
        "target": { "kind": "Node", "name": "node-a" } });
    let (code, _) = api
        .call(
            Method::POST,
            &format!("{PODS}/gen-pod/binding"),
            None,
            Some(&binding),
        )
        .await;
    assert_eq!(code, 201);
    let (_, bound) = api.get(&format!("{PODS}/gen-pod"), None).await;
    assert_eq!(bound["spec"]["nodeName"], "node-a");
    assert_eq!(bound["metadata"]["generation"], 2, "{bound}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_is_kept_per_kind_embedded() {
    let server = TestServer::start(Backend::Embedded, "responses_generation").await;
    generation_is_kept_as_each_kinds_strategy_keeps_it(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_is_kept_per_kind_etcd() {
    let server = TestServer::start(Backend::Etcd, "responses_generation").await;
    generation_is_kept_as_each_kinds_strategy_keeps_it(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_drop_a_sent_status_unless_the_creator_owns_it() {
    let server = TestServer::start(Backend::Embedded, "responses_create").await;
    let api = Api::new(&server);
    let mut sent = deployment("with-status");
    sent["status"] = json!({ "replicas": 5, "readyReplicas": 5 });
    let created = api.create(DEPLOYMENTS, sent).await;
    assert!(created["status"].get("replicas").is_none(), "{created}");
    let mut sent = pod("with-status", None);
    sent["status"] = json!({ "phase": "Running", "podIP": "10.0.0.9" });
    let created = api.create(PODS, sent).await;
    assert_eq!(created["status"]["phase"], "Pending", "{created}");
    assert!(created["status"].get("podIP").is_none(), "{created}");
    // A volume starts Pending, since its creation.
    let volume = json!({ "apiVersion": "v1", "kind": "PersistentVolume", "metadata": { "name": "pv" },
        "spec": { "capacity": { "storage": "1Gi" }, "accessModes": ["ReadWriteOnce"], "hostPath": { "path": "/tmp/pv" } },
        "status": { "phase": "Bound" } });
    let created = api.create("/api/v1/persistentvolumes", volume).await;
    assert_eq!(created["status"]["phase"], "Pending", "{created}");
    assert_eq!(
        created["status"]["lastPhaseTransitionTime"], created["metadata"]["creationTimestamp"],
        "{created}"
    );
    // A node's kubelet registers it with its status.
    let node = json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": "n1" },
        "status": { "capacity": { "cpu": "2" } } });
    let created = api.create("/api/v1/nodes", node).await;
    assert_eq!(created["status"]["capacity"]["cpu"], "2", "{created}");
    server.stop().await;
}

/// What deleting an object of each kind answers once it is gone.
async fn deletes_answer_as_each_kind_does(server: &TestServer) {
    let api = Api::new(server);
    // (collection, object; whether the answer is the object rather than a Status)
    let cases = [
        (CONFIGMAPS, config_map("gone"), false),
        (
            "/api/v1/namespaces/default/secrets",
            json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "gone" } }),
            false,
        ),
        (DEPLOYMENTS, deployment("gone"), false),
        (
            "/api/v1/namespaces/default/services",
            json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "gone" },
            "spec": { "ports": [{ "port": 80 }] } }),
            true,
        ),
        (
            "/api/v1/namespaces/default/serviceaccounts",
            json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": "gone" } }),
            true,
        ),
        (
            "/api/v1/namespaces/default/persistentvolumeclaims",
            json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": { "name": "gone" },
            "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } } }),
            true,
        ),
        (
            "/api/v1/persistentvolumes",
            json!({ "apiVersion": "v1", "kind": "PersistentVolume", "metadata": { "name": "gone" },
            "spec": { "capacity": { "storage": "1Gi" }, "accessModes": ["ReadWriteOnce"], "hostPath": { "path": "/tmp/gone" } } }),
            true,
        ),
        (
            "/apis/storage.k8s.io/v1/storageclasses",
            json!({ "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": { "name": "gone" },
            "provisioner": "example.com/none" }),
            true,
        ),
        (
            "/apis/scheduling.k8s.io/v1/priorityclasses",
            json!({ "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": { "name": "gone" },
            "value": 10 }),
            false,
        ),
        // An unscheduled pod has no kubelet to wait for: gone at once.
        (PODS, pod("gone", None), true),
    ];
    for (collection, body, returns_object) in cases {
        let created = api.create(collection, body).await;
        let path = format!("{collection}/gone");
        let (code, answer) = api.delete(&path, None).await;
        assert_eq!(code, 200, "{path}: {answer}");
        if returns_object {
            assert_eq!(answer["kind"], created["kind"], "{path}: {answer}");
            assert_eq!(answer["metadata"]["uid"], created["metadata"]["uid"]);
        } else {
            assert_eq!(
                (&answer["kind"], &answer["status"]),
                (&json!("Status"), &json!("Success")),
                "{path}: {answer}"
            );
            assert_eq!(answer["details"]["name"], "gone");
            assert_eq!(answer["details"]["uid"], created["metadata"]["uid"]);
        }
        assert_eq!(api.get(&path, None).await.0, 404, "{path} is gone");
    }
}

/// A deletion that only starts answers with the object marked, whatever the kind.
async fn started_deletions_answer_the_marked_object(server: &TestServer) {
    let api = Api::new(server);
    let mut held = config_map("held");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    api.create(CONFIGMAPS, held).await;
    let path = format!("{CONFIGMAPS}/held");
    let (code, marked) = api.delete(&path, None).await;
    assert_eq!(code, 200, "{marked}");
    assert_eq!(marked["kind"], "ConfigMap", "{marked}");
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "{marked}"
    );
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
    // Untracked: no generation appears.
    assert!(marked["metadata"].get("generation").is_none(), "{marked}");
    // Asked again: the same object, nothing written.
    let (code, again) = api.delete(&path, None).await;
    assert_eq!(code, 200);
    assert_eq!(
        again["metadata"]["resourceVersion"],
        marked["metadata"]["resourceVersion"]
    );
    // The holder lets go: gone.
    api.patch(&path, json!({ "metadata": { "finalizers": null } }))
        .await;
    assert_eq!(api.get(&path, None).await.0, 404);

    // The deprecated orphanDependents=false asks for a 202 when deletion only starts; a
    // deployment's generation moves when it does.
    let mut held = deployment("held");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    api.create(DEPLOYMENTS, held).await;
    let path = format!("{DEPLOYMENTS}/held");
    let options = json!({ "kind": "DeleteOptions", "apiVersion": "v1", "orphanDependents": false });
    let (code, marked) = api.delete(&path, Some(options)).await;
    assert_eq!(code, 202, "{marked}");
    assert_eq!(marked["metadata"]["generation"], 2, "{marked}");
    assert_eq!(
        marked["metadata"]["finalizers"],
        json!(["example.com/hold"])
    );
    // Orphan adds the garbage collector's finalizer, Background takes it away again.
    let mut orphaned = deployment("orphaned");
    orphaned["metadata"]["finalizers"] = json!(["example.com/hold"]);
    api.create(DEPLOYMENTS, orphaned).await;
    let orphaned = format!("{DEPLOYMENTS}/orphaned");
    let (_, marked) = api
        .delete(&orphaned, Some(json!({ "propagationPolicy": "Orphan" })))
        .await;
    assert_eq!(
        marked["metadata"]["finalizers"],
        json!(["example.com/hold", "orphan"]),
        "{marked}"
    );
    let (_, marked) = api
        .delete(
            &orphaned,
            Some(json!({ "propagationPolicy": "Background" })),
        )
        .await;
    assert_eq!(
        marked["metadata"]["finalizers"],
        json!(["example.com/hold"]),
        "{marked}"
    );

    // A scheduled pod waits for its kubelet: marked with its grace period, then only shortened.
    api.create(PODS, pod("graceful", Some("node-a"))).await;
    let path = format!("{PODS}/graceful");
    let (code, marked) = api
        .delete(&path, Some(json!({ "gracePeriodSeconds": 30 })))
        .await;
    assert_eq!(code, 200, "{marked}");
    assert_eq!(marked["kind"], "Pod");
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(marked["metadata"]["generation"], 2, "{marked}");
    let deadline = |obj: &Value| {
        obj["metadata"]["deletionTimestamp"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    let (_, again) = api.delete(&path, None).await;
    assert_eq!(
        again["metadata"]["resourceVersion"], marked["metadata"]["resourceVersion"],
        "a longer period changes nothing"
    );
    let (_, shorter) = api
        .delete(&path, Some(json!({ "gracePeriodSeconds": 10 })))
        .await;
    assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 10);
    assert_eq!(
        deadline(&marked).duration_since(deadline(&shorter)),
        jiff::SignedDuration::from_secs(20)
    );
    assert_eq!(
        shorter["metadata"]["generation"], 2,
        "bumped once: {shorter}"
    );
    let (code, gone) = api
        .delete(&path, Some(json!({ "gracePeriodSeconds": 0 })))
        .await;
    assert_eq!((code, &gone["kind"]), (200, &json!("Pod")), "{gone}");
    assert_eq!(api.get(&path, None).await.0, 404);

    // deletecollection answers with the list as it was read, held objects included.
    for name in ["c1", "c2"] {
        let mut cm = config_map(name);
        cm["metadata"]["labels"]["batch"] = json!("yes");
        if name == "c2" {
            cm["metadata"]["finalizers"] = json!(["example.com/hold"]);
        }
        api.create(CONFIGMAPS, cm).await;
    }
    let (code, list) = api
        .delete(&format!("{CONFIGMAPS}?labelSelector=batch%3Dyes"), None)
        .await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["kind"], "ConfigMapList", "{list}");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c1", "c2"]);
    assert!(
        list["items"][1]["metadata"]
            .get("deletionTimestamp")
            .is_none(),
        "as listed: {list}"
    );
    assert_eq!(api.get(&format!("{CONFIGMAPS}/c1"), None).await.0, 404);
    let (_, c2) = api.get(&format!("{CONFIGMAPS}/c2"), None).await;
    assert!(c2["metadata"]["deletionTimestamp"].is_string(), "{c2}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_answer_per_kind_embedded() {
    let server = TestServer::start(Backend::Embedded, "responses_delete").await;
    deletes_answer_as_each_kind_does(&server).await;
    started_deletions_answer_the_marked_object(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_answer_per_kind_etcd() {
    let server = TestServer::start(Backend::Etcd, "responses_delete").await;
    deletes_answer_as_each_kind_does(&server).await;
    started_deletions_answer_the_marked_object(&server).await;
    server.stop().await;
}
