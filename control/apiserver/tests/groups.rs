//! The API groups and resources beyond the workloads: `componentstatuses` (computed per
//! request), `apiregistration.k8s.io` APIServices (the local ones registered at every start)
//! and `certificates.k8s.io` CertificateSigningRequests (validation, the approval
//! subresource), through raw HTTP and the real kubectl.

#[macro_use]
mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use skiff_apiserver::Server;
use skiff_apiserver::component_statuses::Probes;
use support::{Raw, TestServer, TlsTestListener};

on_both_backends!(
    owned:
    component_statuses_report_what_is_down,
    local_apiservices_are_registered_at_every_start,
    apiservices_with_a_service_are_stored_but_not_available,
    certificate_signing_requests_are_validated,
    certificate_signing_requests_are_approved_only_through_approval,
);

fn line_of<'a>(table: &'a str, first: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row {first} in:\n{table}"))
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// The causes of a 422, as (field, reason) pairs.
fn causes(status: &Value) -> Vec<(String, String)> {
    status["details"]["causes"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A port nothing listens on (it was free a moment ago).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// With nothing on Kubernetes' scheduler and controller-manager ports (skiff does not run them
/// yet), both are unhealthy with the dial error; the store is healthy. Writes are refused and
/// every answer carries the deprecation warning.
async fn component_statuses_report_what_is_down(s: TestServer) {
    let out = s.kubectl_with_input(&["get", "cs"], None).await;
    let (table, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: v1 ComponentStatus is deprecated in v1.19+"),
        "{stderr}"
    );
    assert_eq!(
        words(table.lines().next().unwrap()),
        ["NAME", "STATUS", "MESSAGE", "ERROR"]
    );
    for (name, port) in [("scheduler", 10259), ("controller-manager", 10257)] {
        let row = line_of(&table, name);
        assert!(
            row.contains(&format!(
                "Unhealthy   Get \"https://127.0.0.1:{port}/healthz\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            )),
            "{table}"
        );
    }
    assert_eq!(
        words(line_of(&table, "etcd-0")),
        ["etcd-0", "Healthy", "ok"]
    );

    let etcd = s.get_json(&["componentstatuses", "etcd-0"]).await;
    assert_eq!(
        etcd["conditions"],
        json!([{ "type": "Healthy", "status": "True", "message": "ok" }])
    );
    let raw = Raw::new(&s);
    let path = "/api/v1/componentstatuses";
    let (code, list) = raw.send(http::Method::GET, path, "", Vec::new()).await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "ComponentStatusList");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["scheduler", "controller-manager", "etcd-0"]);
    let one = format!("{path}?fieldSelector=metadata.name%3Detcd-0");
    let (_, list) = raw.send(http::Method::GET, &one, "", Vec::new()).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (code, missing) = raw
        .send(http::Method::GET, &format!("{path}/nope"), "", Vec::new())
        .await;
    assert_eq!((code, missing["reason"].as_str()), (404, Some("NotFound")));
    let (code, refused) = raw.post(path, r#"{"metadata":{"name":"x"}}"#).await;
    assert_eq!(
        (code, refused["reason"].as_str()),
        (405, Some("MethodNotAllowed"))
    );
    let (code, _) = raw
        .send(
            http::Method::GET,
            &format!("{path}?watch=true"),
            "",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 405);
    // Discovery offers exactly what is served.
    let (_, core) = raw.send(http::Method::GET, "/api/v1", "", Vec::new()).await;
    let cs = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "componentstatuses")
        .unwrap();
    assert_eq!(
        (&cs["verbs"], &cs["shortNames"], &cs["namespaced"]),
        (&json!(["get", "list"]), &json!(["cs"]), &json!(false))
    );
    s.stop().await;
}

/// Probes at configured URLs: the scheduler's healthz over HTTPS with a self-signed certificate
/// (not verified, as kube-apiserver's prober does not) answers `ok`; the controller manager's
/// port is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_statuses_probe_the_configured_urls() {
    let dir = tempfile::tempdir().unwrap();
    let healthz = TlsTestListener::new(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        dir.path(),
    );
    let healthz_port = axum::serve::Listener::local_addr(&healthz).unwrap().port();
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(healthz, app).await });
    let closed = closed_port();
    let probes = Probes {
        scheduler: format!("https://127.0.0.1:{healthz_port}/healthz"),
        controller_manager: format!("http://127.0.0.1:{closed}/healthz"),
    };
    let store = Arc::new(
        skiff_store::EmbeddedStore::open(skiff_store::EmbeddedConfig::new(dir.path().join("s")))
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = Server::with_probes(store, address, probes);
    server.bootstrap().await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(skiff_apiserver::serve(server, listener, async {
        let _ = stopped.await;
    }));
    let client = kube::Client::try_from(kube::Config::new(
        format!("http://{address}").parse().unwrap(),
    ))
    .unwrap();
    let request = http::Request::get("/api/v1/componentstatuses")
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .unwrap();
    let table: Value = client.request(request).await.unwrap();
    let rows: Vec<&Value> = table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["cells"])
        .collect();
    assert_eq!(rows[0], &json!(["scheduler", "Healthy", "ok", ""]));
    assert_eq!(
        rows[1],
        &json!([
            "controller-manager",
            "Unhealthy",
            format!(
                "Get \"http://127.0.0.1:{closed}/healthz\": dial tcp 127.0.0.1:{closed}: connect: connection refused"
            ),
            ""
        ])
    );
    assert_eq!(rows[2], &json!(["etcd-0", "Healthy", "ok", ""]));
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Status", "Message", "Error"]);
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

/// The group/versions discovery lists, as APIService names (`v1.`, `v1.apps`, …).
async fn served_group_versions(raw: &Raw) -> Vec<String> {
    let (_, groups) = raw.send(http::Method::GET, "/apis", "", Vec::new()).await;
    let mut names = vec!["v1.".to_owned()];
    for group in groups["groups"].as_array().unwrap() {
        for version in group["versions"].as_array().unwrap() {
            names.push(format!(
                "{}.{}",
                version["version"].as_str().unwrap(),
                group["name"].as_str().unwrap()
            ));
        }
    }
    names.sort();
    names
}

/// `kubectl get apiservices` lists every served group/version as Local and Available; a deleted
/// one and one whose spec was changed are back as they were after a restart.
async fn local_apiservices_are_registered_at_every_start(s: TestServer) {
    let raw = Raw::new(&s);
    let served = served_group_versions(&raw).await;
    assert!(served.contains(&"v1.apiregistration.k8s.io".to_owned()));
    assert!(served.contains(&"v1.certificates.k8s.io".to_owned()));
    let table = s.kubectl(&["get", "apiservices"]).await;
    assert_eq!(
        words(table.lines().next().unwrap()),
        ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    );
    let mut listed: Vec<String> = table
        .lines()
        .skip(1)
        .map(|l| words(l)[0].to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, served);
    for name in &served {
        assert_eq!(
            words(line_of(&table, name))[1..3],
            ["Local", "True"],
            "{table}"
        );
    }
    let apps = s.get_json(&["apiservice", "v1.apps"]).await;
    assert_eq!(
        apps["spec"],
        json!({ "group": "apps", "version": "v1", "groupPriorityMinimum": 17800, "versionPriority": 15 })
    );
    assert_eq!(
        apps["metadata"]["labels"],
        json!({ "kube-aggregator.kubernetes.io/automanaged": "onstart" })
    );
    let available = &apps["status"]["conditions"][0];
    assert_eq!(
        (
            &available["type"],
            &available["status"],
            &available["reason"],
            &available["message"]
        ),
        (
            &json!("Available"),
            &json!("True"),
            &json!("Local"),
            &json!("Local APIServices are always available")
        )
    );
    let uid = apps["metadata"]["uid"].clone();

    s.kubectl(&["delete", "apiservice", "v1.batch"]).await;
    s.kubectl(&[
        "patch",
        "apiservice",
        "v1.apps",
        "--type=merge",
        "-p",
        r#"{"spec":{"versionPriority":3}}"#,
    ])
    .await;
    let gone = s
        .kubectl_fails(&["get", "apiservice", "v1.batch"], None)
        .await;
    assert!(gone.contains("not found"), "{gone}");

    let s = s.restart().await;
    let batch = s.get_json(&["apiservice", "v1.batch"]).await;
    assert_eq!(batch["spec"]["groupPriorityMinimum"], 17400);
    let apps = s.get_json(&["apiservice", "v1.apps"]).await;
    assert_eq!(apps["spec"]["versionPriority"], 15);
    // Rewritten in place, not recreated.
    assert_eq!(apps["metadata"]["uid"], uid);
    s.stop().await;
}

const METRICS_APISERVICE: &str = r#"
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service:
    namespace: kube-system
    name: metrics-server
"#;

/// An aggregated API is stored (port defaulted) but never Available: skiff does not proxy.
/// Kubernetes' validation refuses bad ones; a restart leaves users' APIServices alone.
async fn apiservices_with_a_service_are_stored_but_not_available(s: TestServer) {
    s.apply(METRICS_APISERVICE).await;
    let table = s
        .kubectl(&["get", "apiservice", "v1beta1.metrics.k8s.io"])
        .await;
    assert_eq!(
        words(line_of(&table, "v1beta1.metrics.k8s.io"))[1..4],
        [
            "kube-system/metrics-server",
            "False",
            "(AggregationNotSupported)"
        ]
    );
    let stored = s.get_json(&["apiservice", "v1beta1.metrics.k8s.io"]).await;
    assert_eq!(stored["spec"]["service"]["port"], 443);
    let available = &stored["status"]["conditions"][0];
    assert_eq!(available["status"], "False");
    assert!(
        available["message"]
            .as_str()
            .unwrap()
            .contains("skiff does not proxy aggregated APIs"),
        "{available}"
    );
    // The group is not served: no aggregation means no discovery entry either.
    let raw = Raw::new(&s);
    assert!(
        !served_group_versions(&raw)
            .await
            .contains(&"v1beta1.metrics.k8s.io".into())
    );

    let bad = json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": { "name": "v1.wrong" },
        "spec": {
            "group": "metrics.k8s.io", "version": "v1beta1",
            "groupPriorityMinimum": 0, "versionPriority": 100,
            "service": { "namespace": "kube-system" },
        },
    });
    let (code, status) = raw
        .post(
            "/apis/apiregistration.k8s.io/v1/apiservices",
            &bad.to_string(),
        )
        .await;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(
        causes(&status),
        [
            ("metadata.name".to_owned(), "FieldValueInvalid".to_owned()),
            (
                "spec.groupPriorityMinimum".to_owned(),
                "FieldValueInvalid".to_owned()
            ),
            (
                "spec.service.name".to_owned(),
                "FieldValueRequired".to_owned()
            ),
        ]
    );
    let s = s.restart().await;
    let kept = s.get_json(&["apiservice", "v1beta1.metrics.k8s.io"]).await;
    assert_eq!(kept["spec"]["service"]["name"], "metrics-server");
    s.stop().await;
}

/// A PEM PKCS#10 request for `CN=<name>`, signed with a fresh key.
fn csr_pem(name: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn csr_body(name: &str, request: &str, extra: Value) -> Value {
    use base64::Engine;
    let mut body = json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": { "name": name },
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(request),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
            "expirationSeconds": 86400,
        },
    });
    if let (Some(spec), Some(extra)) = (body["spec"].as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            spec.insert(key.clone(), value.clone());
        }
    }
    body
}

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

/// Creates fill in the requestor and start with an empty status; bad requests are 422s with a
/// cause per problem, as Kubernetes reports them.
async fn certificate_signing_requests_are_validated(s: TestServer) {
    let raw = Raw::new(&s);
    let mut body = csr_body("alice", &csr_pem("alice"), json!({}));
    // Whatever the body claims, the requestor is who sent it; nobody creates it approved.
    body["spec"]["username"] = json!("mallory");
    body["spec"]["groups"] = json!(["system:nodes"]);
    body["status"] = json!({ "conditions": [{ "type": "Approved", "status": "True" }] });
    let (code, created) = raw.post(CSRS, &body.to_string()).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["username"], "system:admin");
    assert_eq!(
        created["spec"]["groups"],
        json!(["system:masters", "system:authenticated"])
    );
    assert_eq!(created["status"], json!({}));

    let table = s.kubectl(&["get", "csr"]).await;
    assert_eq!(
        words(table.lines().next().unwrap()),
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ]
    );
    let row = words(line_of(&table, "alice"));
    assert_eq!(
        [row[0], row[2], row[3], row[4], row[5]],
        [
            "alice",
            "kubernetes.io/kube-apiserver-client",
            "system:admin",
            "24h",
            "Pending"
        ]
    );
    let selected = s
        .kubectl(&[
            "get",
            "csr",
            "--field-selector",
            "spec.signerName=example.com/other",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(selected.trim(), "");

    let bad = csr_body(
        "bad",
        "not a certificate request",
        json!({ "signerName": "example", "usages": ["client auth", "teleport"], "expirationSeconds": 60 }),
    );
    let (code, status) = raw.post(CSRS, &bad.to_string()).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (422, Some("Invalid")),
        "{status}"
    );
    assert_eq!(
        causes(&status),
        [
            ("spec.request".to_owned(), "FieldValueInvalid".to_owned()),
            (
                "spec.usages[1]".to_owned(),
                "FieldValueNotSupported".to_owned()
            ),
            ("spec.signerName".to_owned(), "FieldValueInvalid".to_owned()),
            (
                "spec.expirationSeconds".to_owned(),
                "FieldValueInvalid".to_owned()
            ),
        ]
    );
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("PEM block type must be CERTIFICATE REQUEST")
            && message.contains("may not specify a duration less than 600 seconds (10 minutes)"),
        "{message}"
    );
    let missing = json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": { "name": "empty" },
        "spec": { "request": "" },
    });
    let (code, status) = raw.post(CSRS, &missing.to_string()).await;
    assert_eq!(code, 422);
    assert_eq!(
        causes(&status),
        [
            ("spec.request".to_owned(), "FieldValueInvalid".to_owned()),
            ("spec.usages".to_owned(), "FieldValueRequired".to_owned()),
            (
                "spec.signerName".to_owned(),
                "FieldValueRequired".to_owned()
            ),
        ]
    );
    s.stop().await;
}

/// `kubectl certificate approve` goes through `/approval`; denying it afterwards is refused (by
/// kubectl, and by the server when forced through); the object and `/status` cannot touch the
/// approval conditions or the spec.
async fn certificate_signing_requests_are_approved_only_through_approval(s: TestServer) {
    let raw = Raw::new(&s);
    let body = csr_body("bob", &csr_pem("bob"), json!({}));
    let (code, _) = raw.post(CSRS, &body.to_string()).await;
    assert_eq!(code, 201);
    let path = format!("{CSRS}/bob");

    // The object itself: the spec and status stay as stored.
    let mut edited = s.get_json(&["csr", "bob"]).await;
    edited["spec"]["signerName"] = json!("example.com/other");
    edited["status"] = json!({ "conditions": [{ "type": "Approved", "status": "True" }] });
    let (code, stored) = raw
        .send(
            http::Method::PUT,
            &path,
            "application/json",
            edited.to_string().into_bytes(),
        )
        .await;
    assert_eq!(code, 200, "{stored}");
    assert_eq!(
        stored["spec"]["signerName"],
        "kubernetes.io/kube-apiserver-client"
    );
    assert_eq!(stored["status"], json!({}));
    // /status may not add an approval condition.
    let (code, status) = raw
        .send(
            http::Method::PUT,
            &format!("{path}/status"),
            "application/json",
            edited.to_string().into_bytes(),
        )
        .await;
    assert_eq!(code, 422, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("updates may not add a condition of type \"Approved\""),
        "{status}"
    );

    let out = s.kubectl(&["certificate", "approve", "bob"]).await;
    assert!(out.contains("approved"), "{out}");
    let approved = s.get_json(&["csr", "bob"]).await;
    let condition = &approved["status"]["conditions"][0];
    assert_eq!(
        (&condition["type"], &condition["status"]),
        (&json!("Approved"), &json!("True"))
    );
    assert!(condition["lastTransitionTime"].is_string(), "{condition}");
    assert_eq!(approved["spec"], stored["spec"]);
    let table = s.kubectl(&["get", "csr", "bob"]).await;
    assert_eq!(words(line_of(&table, "bob")).last(), Some(&"Approved"));

    let refused = s.kubectl_fails(&["certificate", "deny", "bob"], None).await;
    assert!(refused.contains("\"bob\" is already Approved"), "{refused}");
    // Forced through /approval, the server refuses both conditions at once.
    let mut both = approved.clone();
    both["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "Denied", "status": "True", "reason": "No" }));
    let (code, status) = raw
        .send(
            http::Method::PUT,
            &format!("{path}/approval"),
            "application/json",
            both.to_string().into_bytes(),
        )
        .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        causes(&status),
        [(
            "status.conditions[1].type".to_owned(),
            "FieldValueInvalid".to_owned()
        )]
    );
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("Approved and Denied conditions are mutually exclusive")
    );
    // Nor may the approval be taken back.
    let mut removed = approved.clone();
    removed["status"]["conditions"] = json!([]);
    let (code, status) = raw
        .send(
            http::Method::PUT,
            &format!("{path}/approval"),
            "application/json",
            removed.to_string().into_bytes(),
        )
        .await;
    assert_eq!(code, 422);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("updates may not remove a condition of type \"Approved\""),
        "{status}"
    );
    // Discovery lists the subresources.
    let (_, group) = raw
        .send(
            http::Method::GET,
            "/apis/certificates.k8s.io/v1",
            "",
            Vec::new(),
        )
        .await;
    let names: Vec<&str> = group["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "certificatesigningrequests",
            "certificatesigningrequests/status",
            "certificatesigningrequests/approval"
        ]
    );
    s.stop().await;
}
