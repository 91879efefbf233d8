//! Response bytes as kube-apiserver writes them (Go's `encoding/json` of the Go type, then
//! `\n`), compared byte for byte over raw HTTP with bytes that do not come from skiff's encoder:
//! kubectl's own encoding of each object (`control/protobuf/tests/fixtures/*.json`) with the
//! fields the server sets written in by hand where the Go types declare them, Kubernetes'
//! documented bodies (`fixtures/documented/`), and Status bodies spelled out here.
//!
//! The server-set values (uid, resourceVersion, creationTimestamp, managedFields, allocated
//! ClusterIPs and NodePorts, continue tokens) are taken from the answer; everything else is
//! expected. Defaults are kube-apiserver's defaulting and registry strategies; the fields its
//! admission plugins add to a Pod (ServiceAccount, Priority, DefaultTolerationSeconds) are not
//! expected, as skiff has no such plugins.

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use http::Method;
use serde_json::Value;
use skiff_protobuf::json::compact;
use support::{Backend, Raw, TestServer};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../protobuf/tests/fixtures")
}

/// A fixture's compact bytes (kube-apiserver writes compact JSON).
fn fixture(name: &str) -> String {
    let path = fixtures().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    String::from_utf8(compact(&bytes)).unwrap()
}

/// Where objects of a kind are created (all namespaced ones in `default`).
fn collection(kind: &str) -> &'static str {
    match kind {
        "ClusterRole" => "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "ClusterRoleBinding" => "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "ConfigMap" => "/api/v1/namespaces/default/configmaps",
        "CronJob" => "/apis/batch/v1/namespaces/default/cronjobs",
        "Deployment" => "/apis/apps/v1/namespaces/default/deployments",
        "Ingress" => "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
        "Job" => "/apis/batch/v1/namespaces/default/jobs",
        "Namespace" => "/api/v1/namespaces",
        "PodDisruptionBudget" => "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        "Pod" => "/api/v1/namespaces/default/pods",
        "PriorityClass" => "/apis/scheduling.k8s.io/v1/priorityclasses",
        "ResourceQuota" => "/api/v1/namespaces/default/resourcequotas",
        "Role" => "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
        "RoleBinding" => "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        "Secret" => "/api/v1/namespaces/default/secrets",
        "Service" => "/api/v1/namespaces/default/services",
        "ServiceAccount" => "/api/v1/namespaces/default/serviceaccounts",
        other => panic!("no collection for {other}"),
    }
}

/// The end of the JSON value that starts at `at` in compact `json`.
fn value_end(json: &[u8], at: usize) -> usize {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in json.iter().enumerate().skip(at) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            if !in_string && depth == 0 {
                return i + 1;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b',' if depth == 0 => return i,
            _ => {}
        }
    }
    json.len()
}

/// The raw text of the top-level `metadata.managedFields` of `got`, if it has one.
fn managed_fields(got: &str) -> Option<&str> {
    let key = r#""managedFields":"#;
    let meta = got.find(r#""metadata":{"#)?;
    let start = meta + got[meta..].find(key)?;
    let end = value_end(got.as_bytes(), start + key.len());
    Some(&got[start..end])
}

/// `expected` (an object's Go encoding without server-set metadata) with the server-set fields of
/// `got` put where `ObjectMeta` declares them: `namespace` after `name`, then `uid`,
/// `resourceVersion`, `generation` and `creationTimestamp` (before `labels` and `annotations`,
/// the only other fields the fixtures set), and `managedFields` last, as `got` has them.
fn with_server_metadata(expected: &str, got: &str) -> String {
    let value: Value = serde_json::from_str(got).unwrap_or_else(|e| panic!("{e}: {got}"));
    let meta = &value["metadata"];
    let name = meta["name"].as_str().unwrap();
    let anchor = format!(r#""metadata":{{"name":"{name}""#);
    let at = expected
        .find(&anchor)
        .unwrap_or_else(|| panic!("{expected}"))
        + anchor.len();
    let mut fields = String::new();
    for (key, quoted) in [
        ("namespace", true),
        ("uid", true),
        ("resourceVersion", true),
        ("generation", false),
        ("creationTimestamp", true),
    ] {
        match &meta[key] {
            Value::Null => {}
            Value::String(s) if quoted => fields.push_str(&format!(r#","{key}":"{s}""#)),
            Value::Number(n) if !quoted => fields.push_str(&format!(r#","{key}":{n}"#)),
            other => panic!("metadata.{key}: {other}"),
        }
    }
    let mut out = format!("{}{fields}{}", &expected[..at], &expected[at..]);
    if let Some(managed) = managed_fields(got) {
        let meta_at = out.find(r#""metadata":"#).unwrap() + r#""metadata":"#.len();
        let close = value_end(out.as_bytes(), meta_at) - 1;
        out.insert_str(close, &format!(",{managed}"));
    }
    out
}

/// What kube-apiserver's defaulting adds to a container with no tag (`imagePullPolicy: Always`),
/// after its `resources`.
const CONTAINER: &str = r#","terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"Always""#;
/// What it adds to a pod spec after `restartPolicy`, up to the end of the spec.
const POD_SPEC: &str = r#","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler","enableServiceLinks":true"#;
/// A single-stack IPv4 Service's defaults after `sessionAffinity`.
const SERVICE_FAMILIES: &str = r#","ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack""#;

/// Each kubectl fixture and the edits that turn kubectl's encoding into kube-apiserver's answer:
/// `(from, to)`, each replacing the first `from`. `{IP}` and `{PORT0}` stand for the allocated
/// ClusterIP and first NodePort.
fn fixture_table() -> Vec<(&'static str, Vec<(String, String)>)> {
    let edit = |from: &str, to: String| (from.to_owned(), to);
    let pod_spec = |restart: &str| format!(r#""restartPolicy":"{restart}"{POD_SPEC}"#);
    let cluster_ip = r#""clusterIP":"{IP}","clusterIPs":["{IP}"]"#;
    let unchanged = [
        "clusterrole-aggregate.json",
        "clusterrole.json",
        "clusterrolebinding.json",
        "configmap-escaping.json",
        "configmap.json",
        "ingress.json",
        "pdb-int.json",
        "pdb-percent.json",
        "priorityclass-zero.json",
        "priorityclass.json",
        "quota.json",
        "role.json",
        "rolebinding.json",
        "secret-docker.json",
        "secret.json",
        "serviceaccount.json",
    ];
    let mut table: Vec<(&str, Vec<(String, String)>)> =
        unchanged.into_iter().map(|f| (f, Vec::new())).collect();
    table.extend([
        (
            "pod.json",
            vec![
                edit(r#""containerPort":8080}"#, r#""containerPort":8080,"protocol":"TCP"}"#.into()),
                edit(r#""resources":{}"#, format!(r#""resources":{{}}{CONTAINER}"#)),
                edit(r#""restartPolicy":"Never","dnsPolicy":"ClusterFirst""#, pod_spec("Never")),
                edit(r#""status":{}"#, r#""status":{"phase":"Pending","qosClass":"BestEffort"}"#.into()),
            ],
        ),
        (
            "deployment.json",
            vec![
                edit(r#""containerPort":80}"#, r#""containerPort":80,"protocol":"TCP"}"#.into()),
                edit(r#""resources":{}}]"#, format!(r#""resources":{{}}{CONTAINER}}}],{}"#, pod_spec("Always"))),
                edit(
                    r#""strategy":{}"#,
                    r#""strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600"#.into(),
                ),
            ],
        ),
        (
            "namespace.json",
            vec![
                edit(r#""name":"ns1""#, r#""name":"ns1","labels":{"kubernetes.io/metadata.name":"ns1"}"#.into()),
                edit(r#""spec":{},"status":{}"#, r#""spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}"#.into()),
            ],
        ),
        (
            "service-clusterip.json",
            vec![edit(
                r#""type":"ClusterIP"}"#,
                format!(r#"{cluster_ip},"type":"ClusterIP","sessionAffinity":"None"{SERVICE_FAMILIES},"internalTrafficPolicy":"Cluster"}}"#),
            )],
        ),
        (
            "service-headless.json",
            vec![edit(
                r#""clusterIP":"None","type":"ClusterIP"}"#,
                format!(r#""clusterIP":"None","clusterIPs":["None"],"type":"ClusterIP","sessionAffinity":"None"{SERVICE_FAMILIES},"internalTrafficPolicy":"Cluster"}}"#),
            )],
        ),
        (
            "service-externalname.json",
            vec![edit(r#""type":"ExternalName","#, r#""type":"ExternalName","sessionAffinity":"None","#.into())],
        ),
        (
            "service-loadbalancer.json",
            vec![
                edit(r#""targetPort":8080}"#, r#""targetPort":8080,"nodePort":{PORT0}}"#.into()),
                edit(
                    r#""type":"LoadBalancer"}"#,
                    format!(r#"{cluster_ip},"type":"LoadBalancer","sessionAffinity":"None","externalTrafficPolicy":"Cluster"{SERVICE_FAMILIES},"allocateLoadBalancerNodePorts":true,"internalTrafficPolicy":"Cluster"}}"#),
                ),
            ],
        ),
        (
            "service-nodeport.json",
            vec![edit(
                r#""type":"NodePort"}"#,
                format!(r#"{cluster_ip},"type":"NodePort","sessionAffinity":"None","externalTrafficPolicy":"Cluster"{SERVICE_FAMILIES},"internalTrafficPolicy":"Cluster"}}"#),
            )],
        ),
    ]);
    table
}

/// The expected answer for a fixture: its edits, the allocated values and the server-set
/// metadata of `got` filled in.
fn expected(name: &str, edits: &[(String, String)], got: &str) -> String {
    let mut want = fixture(name);
    for (from, to) in edits {
        let at = want
            .find(from.as_str())
            .unwrap_or_else(|| panic!("{name}: no {from} in {want}"));
        want.replace_range(at..at + from.len(), to);
    }
    let value: Value = serde_json::from_str(got).unwrap_or_else(|e| panic!("{name}: {e}: {got}"));
    if let Some(ip) = value["spec"]["clusterIP"].as_str() {
        want = want.replace("{IP}", ip);
    }
    if let Some(port) = value["spec"]["ports"][0]["nodePort"].as_i64() {
        want = want.replace("{PORT0}", &port.to_string());
    }
    with_server_metadata(&want, got)
}

/// The first difference of two bodies, for a failure message.
fn difference(got: &str, want: &str) -> String {
    let at = got
        .bytes()
        .zip(want.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let around = |s: &str| {
        s.get(at.saturating_sub(80)..(at + 80).min(s.len()))
            .unwrap_or(s)
            .to_owned()
    };
    format!(
        "first difference at byte {at}:\n  got:  …{}…\n  want: …{}…",
        around(got),
        around(want)
    )
}

/// Creates every fixture object with kubectl's JSON and reads it back: both answers are what
/// kube-apiserver writes.
async fn objects_read_back_as_kube_apiserver_writes_them(backend: Backend) {
    let server = TestServer::start(backend, "bytes_objects").await;
    let raw = Raw::new(&server);
    let json = [("content-type", "application/json")];
    let mut failures = Vec::new();
    for (name, edits) in fixture_table() {
        let body = fixture(name);
        let value: Value = serde_json::from_str(&body).unwrap();
        let path = collection(value["kind"].as_str().unwrap());
        let object = format!("{path}/{}", value["metadata"]["name"].as_str().unwrap());
        let (code, created) = raw
            .request(Method::POST, path, &json, body.into_bytes())
            .await;
        assert_eq!(code, 201, "{name}: {created}");
        let (code, got) = raw.request(Method::GET, &object, &[], Vec::new()).await;
        assert_eq!(code, 200, "{name}: {got}");
        let want = format!("{}\n", expected(name, &edits, got.trim_end()));
        for (what, body) in [("GET", &got), ("POST", &created)] {
            if *body != want {
                failures.push(format!("{name} ({what}): {}", difference(body, &want)));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_read_back_as_kube_apiserver_writes_them_embedded() {
    objects_read_back_as_kube_apiserver_writes_them(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_read_back_as_kube_apiserver_writes_them_etcd() {
    objects_read_back_as_kube_apiserver_writes_them(Backend::Etcd).await;
}

/// Status errors: Kubernetes' documented 404 and 422 bodies, and a 409 as kube-apiserver writes
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_errors_are_kube_apiserver_bytes() {
    let server = TestServer::start(Backend::Embedded, "bytes_status").await;
    let raw = Raw::new(&server);
    let json = [("content-type", "application/json")];
    let pods = "/api/v1/namespaces/default/pods";
    let (code, got) = raw
        .request(Method::GET, &format!("{pods}/grafana"), &[], Vec::new())
        .await;
    assert_eq!(code, 404);
    assert_eq!(
        got,
        format!("{}\n", fixture("documented/status-not-found.json"))
    );

    let invalid = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"name":"c"}]}}"#;
    let (code, got) = raw.request(Method::POST, pods, &json, invalid.into()).await;
    assert_eq!(code, 422);
    assert_eq!(
        got,
        format!("{}\n", fixture("documented/status-invalid.json"))
    );

    let config_maps = "/api/v1/namespaces/default/configmaps";
    let (code, _) = raw
        .request(
            Method::POST,
            config_maps,
            &json,
            fixture("configmap.json").into(),
        )
        .await;
    assert_eq!(code, 201);
    let (code, got) = raw
        .request(
            Method::POST,
            config_maps,
            &json,
            fixture("configmap.json").into(),
        )
        .await;
    assert_eq!(code, 409);
    assert_eq!(
        got,
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","#,
            r#""message":"configmaps \"cm1\" already exists","reason":"AlreadyExists","#,
            r#""details":{"name":"cm1","kind":"configmaps"},"code":409}"#,
            "\n"
        )
    );
}

/// `"metadata":{"resourceVersion":"<rv>"` of a list or bookmark's text, for the expected bytes.
fn resource_version_of(got: &str) -> String {
    let value: Value = serde_json::from_str(got).unwrap_or_else(|e| panic!("{e}: {got}"));
    let object = value.get("object").unwrap_or(&value);
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Lists (from the watch cache and paginated from the store), an empty list, metadata-only
/// answers, watch events and the bookmark that ends a streaming list's initial events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_watch_events_are_kube_apiserver_bytes() {
    let server = TestServer::start(Backend::Embedded, "bytes_lists").await;
    let raw = Raw::new(&server);
    let json = [("content-type", "application/json")];
    let pods = "/api/v1/namespaces/default/pods";
    let (code, got) = raw.request(Method::GET, pods, &[], Vec::new()).await;
    assert_eq!(code, 200);
    let want =
        fixture("documented/podlist-empty.json").replace("10245", &resource_version_of(&got));
    assert_eq!(got, format!("{want}\n"));

    let config_maps = "/api/v1/namespaces/default/configmaps";
    let mut objects = Vec::new();
    for name in ["configmap.json", "configmap-escaping.json"] {
        let (code, created) = raw
            .request(Method::POST, config_maps, &json, fixture(name).into())
            .await;
        assert_eq!(code, 201, "{created}");
        objects.push(expected(name, &[], created.trim_end()));
    }
    // Key order: cm1 before esc.
    let (code, got) = raw.request(Method::GET, config_maps, &[], Vec::new()).await;
    assert_eq!(code, 200);
    let rv = resource_version_of(&got);
    let want = format!(
        r#"{{"kind":"ConfigMapList","apiVersion":"v1","metadata":{{"resourceVersion":"{rv}"}},"items":[{}]}}"#,
        objects.join(",")
    );
    assert_eq!(got, format!("{want}\n"), "{}", difference(&got, &want));

    // A page read from the store, continued.
    let (code, got) = raw
        .request(
            Method::GET,
            &format!("{config_maps}?limit=1"),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(code, 200);
    let page: Value = serde_json::from_str(&got).unwrap();
    let token = page["metadata"]["continue"].as_str().unwrap();
    let rv = resource_version_of(&got);
    let want = format!(
        r#"{{"kind":"ConfigMapList","apiVersion":"v1","metadata":{{"resourceVersion":"{rv}","continue":"{token}"}},"items":[{}]}}"#,
        objects[0]
    );
    assert_eq!(got, format!("{want}\n"), "{}", difference(&got, &want));

    // As metadata only: each object's metadata bytes in a PartialObjectMetadata.
    let partial = |object: &str| {
        let at = object.find(r#""metadata":"#).unwrap() + r#""metadata":"#.len();
        let meta = &object[at..value_end(object.as_bytes(), at)];
        format!(
            r#"{{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{meta}}}"#
        )
    };
    let pom = [(
        "accept",
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    )];
    let (code, got) = raw
        .request(Method::GET, &format!("{config_maps}/cm1"), &pom, Vec::new())
        .await;
    assert_eq!(code, 200);
    assert_eq!(got, format!("{}\n", partial(&objects[0])));
    let pom_list = [(
        "accept",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )];
    let (code, got) = raw
        .request(Method::GET, config_maps, &pom_list, Vec::new())
        .await;
    assert_eq!(code, 200);
    let items: Vec<String> = objects.iter().map(|o| partial(o)).collect();
    let want = format!(
        r#"{{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{{"resourceVersion":"{}"}},"items":[{}]}}"#,
        resource_version_of(&got),
        items.join(",")
    );
    assert_eq!(got, format!("{want}\n"), "{}", difference(&got, &want));

    // A watch from now replays the objects as ADDED events, one line each.
    let (code, got) = raw
        .request(
            Method::GET,
            &format!("{config_maps}?watch=true&timeoutSeconds=1"),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(code, 200);
    let want: String = objects
        .iter()
        .map(|o| format!("{{\"type\":\"ADDED\",\"object\":{o}}}\n"))
        .collect();
    assert_eq!(got, want, "{}", difference(&got, &want));

    // A streaming list of pods ends its (no) initial events with the documented bookmark: an
    // empty Pod, its zero spec and status written.
    let (code, got) = raw
        .request(
            Method::GET,
            &format!("{pods}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1"),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(code, 200);
    let want = fixture("documented/watch-initial-events-end.json").replace(
        "13000",
        &resource_version_of(got.lines().next().unwrap_or("{}")),
    );
    assert_eq!(got, format!("{want}\n"), "{}", difference(&got, &want));
}

/// `/api` is the documented `APIVersions`, with this server's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_discovery_is_the_documented_api_versions() {
    let server = TestServer::start(Backend::Embedded, "bytes_discovery").await;
    let (code, got) = Raw::new(&server)
        .request(Method::GET, "/api", &[], Vec::new())
        .await;
    assert_eq!(code, 200);
    let want = fixture("documented/apiversions.json")
        .replace("192.0.2.1:6443", &server.address.to_string());
    assert_eq!(got, format!("{want}\n"));
}

/// `/version` is `version.Info` through `json.MarshalIndent` (not an API object): its fields in
/// declaration order, two-space indents, no trailing newline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_is_written_as_marshal_indent() {
    let server = TestServer::start(Backend::Embedded, "bytes_version").await;
    let (code, got) = Raw::new(&server)
        .request(Method::GET, "/version", &[], Vec::new())
        .await;
    assert_eq!(code, 200);
    let value: Value = serde_json::from_str(&got).unwrap();
    let fields = [
        "major",
        "minor",
        "emulationMajor",
        "emulationMinor",
        "minCompatibilityMajor",
        "minCompatibilityMinor",
        "gitVersion",
        "gitCommit",
        "gitTreeState",
        "buildDate",
        "goVersion",
        "compiler",
        "platform",
    ];
    let lines: Vec<String> = fields
        .iter()
        .map(|f| {
            format!(
                "  \"{f}\": \"{}\"",
                value[*f].as_str().unwrap_or_else(|| panic!("{f}: {got}"))
            )
        })
        .collect();
    assert_eq!(got, format!("{{\n{}\n}}", lines.join(",\n")));
    // Emulating its own version, compatible with the one before (no `--emulated-version`).
    let minor: u32 = value["minor"].as_str().unwrap().parse().unwrap();
    assert_eq!(value["emulationMinor"], value["minor"]);
    assert_eq!(value["minCompatibilityMinor"], (minor - 1).to_string());
}

/// A store written by an older skiff (serde_json's sorted keys) is served in Go's order: get,
/// list and watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_stored_by_an_older_skiff_come_out_in_go_order() {
    use skiff_store::{EmbeddedConfig, EmbeddedStore, Store};
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("store"))).unwrap();
    // What an older skiff stored: the object without its resourceVersion, keys sorted.
    let stored = [
        (
            "/registry/core/configmaps/default/cm1",
            serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm1", "namespace": "default", "uid": "c0ffee00-0000-4000-8000-000000000001", "creationTimestamp": "2026-01-02T03:04:05Z"},
                "data": {"a": "b", "empty": ""}, "binaryData": {"bin": "/wABYmluYXJ5"},
            }),
        ),
        (
            "/registry/core/services/default/svc",
            serde_json::json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "svc", "namespace": "default", "uid": "c0ffee00-0000-4000-8000-000000000002", "creationTimestamp": "2026-01-02T03:04:05Z"},
                "spec": {"type": "ExternalName", "externalName": "x.example.com", "sessionAffinity": "None"},
            }),
        ),
    ];
    for (key, object) in &stored {
        store
            .create(key, serde_json::to_vec(object).unwrap().into(), None)
            .await
            .unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = skiff_apiserver::Server::new(store, address);
    server.bootstrap().await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(skiff_apiserver::serve(server, listener, async {
        let _ = stopped.await;
    }));
    let client = kube::Client::try_from(kube::Config::new(
        format!("http://{address}").parse().unwrap(),
    ))
    .unwrap();
    let get = |path: String| {
        let client = client.clone();
        async move {
            let request = http::Request::get(path).body(Vec::new()).unwrap();
            let response = client
                .send(request.map(kube::client::Body::from))
                .await
                .unwrap();
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            String::from_utf8(bytes.to_vec()).unwrap()
        }
    };
    let config_map = get("/api/v1/namespaces/default/configmaps/cm1".into()).await;
    let want = with_server_metadata(&fixture("configmap.json"), config_map.trim_end());
    assert_eq!(
        config_map,
        format!("{want}\n"),
        "{}",
        difference(&config_map, &want)
    );
    let service = get("/api/v1/namespaces/default/services/svc".into()).await;
    let want = with_server_metadata(
        r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"svc"},"spec":{"type":"ExternalName","sessionAffinity":"None","externalName":"x.example.com"},"status":{"loadBalancer":{}}}"#,
        service.trim_end(),
    );
    assert_eq!(
        service,
        format!("{want}\n"),
        "{}",
        difference(&service, &want)
    );
    let list = get("/api/v1/namespaces/default/configmaps".into()).await;
    assert_eq!(
        list,
        format!(
            r#"{{"kind":"ConfigMapList","apiVersion":"v1","metadata":{{"resourceVersion":"{}"}},"items":[{}]}}"#,
            resource_version_of(&list),
            config_map.trim_end()
        ) + "\n"
    );
    let watch =
        get("/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1".into()).await;
    assert_eq!(
        watch,
        format!(
            "{{\"type\":\"ADDED\",\"object\":{}}}\n",
            config_map.trim_end()
        )
    );
    let _ = stop.send(());
    let _ = task.await;
}
