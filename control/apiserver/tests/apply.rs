//! Server-side apply and `managedFields` on both backends: the real kubectl (`apply
//! --server-side`, conflicts and `--force-conflicts`, pruning, the move from client-side apply,
//! `--show-managed-fields`), kube-rs (`Patch::Apply`, `force`, a controller's status apply), and
//! what every other write records.

#[macro_use]
mod support;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Config};
use serde_json::{Value, json};
use support::{Backend, Raw, TestServer};

fn client(server: &TestServer) -> Client {
    let url = format!("http://{}", server.address).parse().unwrap();
    Client::try_from(Config::new(url)).unwrap()
}

/// `(manager, operation, subresource)` of each `managedFields` entry.
fn managers(obj: &Value) -> Vec<(String, String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let text = |f: &str| e[f].as_str().unwrap_or_default().to_owned();
                    (text("manager"), text("operation"), text("subresource"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn manager(name: &str, operation: &str, subresource: &str) -> (String, String, String) {
    (name.into(), operation.into(), subresource.into())
}

/// The `fieldsV1` of `name`'s entry.
fn fields_of(obj: &Value, name: &str) -> Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["manager"] == name)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

fn deployment_yaml(replicas: u32, image: &str, env: &[(&str, &str)]) -> String {
    let mut env_yaml = String::new();
    for (name, value) in env {
        env_yaml.push_str(&format!(
            "        - name: {name}\n          value: \"{value}\"\n"
        ));
    }
    let env_block = if env.is_empty() {
        String::new()
    } else {
        format!("        env:\n{env_yaml}")
    };
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: nginx
        image: {image}
        ports:
        - containerPort: 80
{env_block}"
    )
}

async fn kubectl_server_side_apply(server: &TestServer) {
    let apply = |manifest: String, extra: &'static [&'static str]| async move {
        let mut args = vec!["apply", "--server-side", "-f", "-"];
        args.extend_from_slice(extra);
        server.kubectl_with_input(&args, Some(&manifest)).await
    };
    let text = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    // Creates (a port without its protocol key is the TCP one).
    let out = apply(
        deployment_yaml(2, "nginx:1", &[("A", "1"), ("B", "2")]),
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("deployment.apps/web serverside-applied"),
        "{}",
        text(&out)
    );
    let live = server
        .get_json(&["deployment", "web", "--show-managed-fields"])
        .await;
    assert_eq!(managers(&live), [manager("kubectl", "Apply", "")]);
    let ports = &live["spec"]["template"]["spec"]["containers"][0]["ports"];
    assert_eq!(ports, &json!([{"containerPort": 80, "protocol": "TCP"}]));
    let owned = fields_of(&live, "kubectl").to_string();
    assert!(
        owned.contains(r#""k:{\"containerPort\":80,\"protocol\":\"TCP\"}""#),
        "{owned}"
    );
    assert!(
        !owned.contains("f:status"),
        "the status is not the applier's: {owned}"
    );

    // Updates; a field removed from the file leaves the object.
    let out = apply(deployment_yaml(2, "nginx:2", &[("A", "1")]), &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let live = server
        .get_json(&["deployment", "web", "--show-managed-fields"])
        .await;
    let container = &live["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:2");
    assert_eq!(container["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(live["metadata"]["generation"], 2);

    // Another manager's change to an applied field is a conflict, in Kubernetes' words.
    server
        .kubectl(&["scale", "deployment", "web", "--replicas=5"])
        .await;
    let live = server
        .get_json(&["deployment", "web", "--show-managed-fields"])
        .await;
    let scaler = managers(&live)
        .into_iter()
        .find(|m| m.1 == "Update")
        .expect("the scale is recorded");
    assert_eq!(scaler.2, "scale", "{scaler:?}");
    let out = apply(deployment_yaml(2, "nginx:2", &[("A", "1")]), &[]).await;
    assert!(!out.status.success(), "{}", text(&out));
    let want = format!(
        "Apply failed with 1 conflict: conflict with \"{}\" with subresource \"scale\" using apps/v1: .spec.replicas",
        scaler.0
    );
    assert!(text(&out).contains(&want), "{}", text(&out));
    // ... and forcing takes the field.
    let out = apply(
        deployment_yaml(2, "nginx:2", &[("A", "1")]),
        &["--force-conflicts"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let live = server
        .get_json(&["deployment", "web", "--show-managed-fields"])
        .await;
    assert_eq!(live["spec"]["replicas"], 2);
    assert_eq!(
        managers(&live),
        [manager("kubectl", "Apply", "")],
        "the scaler lost its only field"
    );

    // A second manager applying another value conflicts with the first.
    let out = apply(
        deployment_yaml(3, "nginx:2", &[("A", "1")]),
        &["--field-manager=other"],
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out)
            .contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas")
            || text(&out).contains("conflicts with \"kubectl\":"),
        "{}",
        text(&out)
    );

    // --show-managed-fields shows them; plain -o yaml hides them, as kubectl does.
    let shown = server
        .kubectl(&[
            "get",
            "deployment",
            "web",
            "-o",
            "yaml",
            "--show-managed-fields",
        ])
        .await;
    assert!(shown.contains("managedFields:"), "{shown}");
    assert!(shown.contains("manager: kubectl"), "{shown}");
    assert!(shown.contains("operation: Apply"), "{shown}");
    let hidden = server
        .kubectl(&["get", "deployment", "web", "-o", "yaml"])
        .await;
    assert!(!hidden.contains("managedFields"), "{hidden}");

    // Client-side apply, then server-side: the fields stay, nothing conflicts.
    let config_map = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: default
  labels: {tier: web}
data:
  a: \"1\"
  b: \"2\"
";
    server.apply(config_map).await;
    let live = server
        .get_json(&["configmap", "settings", "--show-managed-fields"])
        .await;
    assert_eq!(
        managers(&live),
        [manager("kubectl-client-side-apply", "Update", "")]
    );
    let out = apply(config_map.to_owned(), &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let live = server
        .get_json(&["configmap", "settings", "--show-managed-fields"])
        .await;
    assert_eq!(live["data"], json!({"a": "1", "b": "2"}));
    assert_eq!(live["metadata"]["labels"], json!({"tier": "web"}));
    assert!(
        managers(&live).contains(&manager("kubectl", "Apply", "")),
        "{:?}",
        managers(&live)
    );
    // kubectl edit-style writes are recorded under their own manager.
    server
        .kubectl(&["label", "configmap", "settings", "extra=yes"])
        .await;
    let live = server
        .get_json(&["configmap", "settings", "--show-managed-fields"])
        .await;
    assert!(
        managers(&live).iter().any(|m| m.0.starts_with("kubectl")
            && m.1 == "Update"
            && m.0 != "kubectl-client-side-apply"),
        "{:?}",
        managers(&live)
    );
}

fn deployment(replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }))
    .unwrap()
}

async fn kube_rs_apply(server: &TestServer) {
    let api: Api<Deployment> = Api::namespaced(client(server), "default");
    let created = api
        .patch(
            "api",
            &PatchParams::apply("mgr"),
            &Patch::Apply(&deployment(1)),
        )
        .await
        .unwrap();
    assert_eq!(created.spec.replicas, Some(1));
    let entries = created.metadata.managed_fields.clone().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].manager.as_deref(), Some("mgr"));
    assert_eq!(entries[0].operation.as_deref(), Some("Apply"));

    // An unchanged apply changes nothing.
    let again = api
        .patch(
            "api",
            &PatchParams::apply("mgr"),
            &Patch::Apply(&deployment(1)),
        )
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        created.metadata.resource_version
    );

    // Another manager: 409 with a cause per field, then forced.
    let err = api
        .patch(
            "api",
            &PatchParams::apply("other"),
            &Patch::Apply(&deployment(3)),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        r#"Apply failed with 1 conflict: conflict with "mgr": .spec.replicas"#
    );
    let forced = api
        .patch(
            "api",
            &PatchParams::apply("other").force(),
            &Patch::Apply(&deployment(3)),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.replicas, Some(3));

    // A controller applies the status through /status.
    let status = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "status": {"replicas": 3, "readyReplicas": 2},
    });
    let with_status = api
        .patch_status(
            "api",
            &PatchParams::apply("controller").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    let got = with_status.status.unwrap();
    assert_eq!((got.replicas, got.ready_replicas), (Some(3), Some(2)));
    assert_eq!(with_status.spec.replicas, Some(3), "the spec stays");
    let value = serde_json::to_value(&with_status.metadata).unwrap();
    let value = json!({"metadata": value});
    assert!(
        managers(&value).contains(&manager("controller", "Apply", "status")),
        "{:?}",
        managers(&value)
    );
    assert_eq!(
        fields_of(&value, "controller"),
        json!({"f:status": {"f:readyReplicas": {}, "f:replicas": {}}})
    );
    // The main resource's applier owns no status, the status applier no spec.
    assert!(!fields_of(&value, "other").to_string().contains("f:status"));

    // An autoscaler applies a Scale through /scale: it owns the parent's spec.replicas.
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                       "metadata": {"name": "api"}, "spec": {"replicas": 4}});
    let scaled = api
        .patch_scale(
            "api",
            &PatchParams::apply("autoscaler").force(),
            &Patch::Apply(&scale),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(4));
    let live = serde_json::to_value(api.get("api").await.unwrap()).unwrap();
    assert_eq!(live["spec"]["replicas"], 4);
    assert!(
        managers(&live).contains(&manager("autoscaler", "Apply", "scale")),
        "{:?}",
        managers(&live)
    );
    assert_eq!(
        fields_of(&live, "autoscaler"),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        !fields_of(&live, "other").to_string().contains("f:replicas"),
        "the forced scale took replicas from the applier"
    );
}

const APPLY: &str = "application/apply-patch+yaml";
const CM: &str = "/api/v1/namespaces/default/configmaps";

fn config_map(name: &str, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name}, "data": data}))
    .unwrap()
}

async fn apply_raw(raw: &Raw, path: &str, body: Vec<u8>) -> (u16, Value) {
    raw.send(http::Method::PATCH, path, APPLY, body).await
}

/// Every non-apply write records an `Update` by its manager.
async fn writes_record_managers(server: &TestServer) {
    let raw = Raw::new(server);
    let (code, created) = raw
        .send(
            http::Method::POST,
            &format!("{CM}?fieldManager=creator"),
            "application/json",
            config_map("w", json!({"a": "1"})),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(managers(&created), [manager("creator", "Update", "")]);
    assert_eq!(
        fields_of(&created, "creator"),
        json!({"f:data": {".": {}, "f:a": {}}})
    );
    // A merge patch by another manager takes what it changed.
    let (code, patched) = raw
        .send(
            http::Method::PATCH,
            &format!("{CM}/w?fieldManager=patcher"),
            "application/merge-patch+json",
            br#"{"data": {"a": "2", "b": "3"}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(
        managers(&patched),
        [
            manager("creator", "Update", ""),
            manager("patcher", "Update", "")
        ]
    );
    assert_eq!(
        fields_of(&patched, "creator"),
        json!({"f:data": {}}),
        "the creator lost the value it no longer decides"
    );
    assert_eq!(
        fields_of(&patched, "patcher"),
        json!({"f:data": {"f:a": {}, "f:b": {}}})
    );
    // A write without fieldManager is recorded under the user agent's prefix.
    let (code, labelled) = raw
        .request(
            http::Method::PATCH,
            &format!("{CM}/w"),
            &[
                ("content-type", "application/merge-patch+json"),
                ("user-agent", "my-controller/1.0 (linux)"),
            ],
            br#"{"metadata": {"labels": {"x": "y"}}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 200, "{labelled}");
    let labelled: Value = serde_json::from_str(&labelled).unwrap();
    assert!(
        managers(&labelled).contains(&manager("my-controller", "Update", "")),
        "{:?}",
        managers(&labelled)
    );
    // `managedFields: []` in an update clears them; the object is untracked from then on, as
    // Kubernetes leaves an object that has none until it is applied to.
    let (code, reset) = raw
        .send(
            http::Method::PATCH,
            &format!("{CM}/w?fieldManager=resetter"),
            "application/merge-patch+json",
            br#"{"metadata": {"managedFields": []}, "data": {"c": "4"}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 200, "{reset}");
    assert_eq!(managers(&reset), []);
    assert_eq!(reset["data"]["c"], "4");
}

/// Bad apply input: Kubernetes' codes and messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_apply_input() {
    let server = TestServer::start(Backend::Embedded, "apply_bad_input").await;
    let raw = Raw::new(&server);
    let ok = config_map("bad", json!({"a": "1"}));
    let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        (
            "no field manager",
            format!("{CM}/bad"),
            ok.clone(),
            422,
            r#"PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#,
        ),
        (
            "a field manager over 128 bytes",
            format!("{CM}/bad?fieldManager={}", "m".repeat(129)),
            ok.clone(),
            422,
            "fieldManager: Too long: may not be more than 128 bytes",
        ),
        (
            "a body that is not an object",
            format!("{CM}/bad?fieldManager=m"),
            b"[1, 2]".to_vec(),
            400,
            "",
        ),
        (
            "another kind",
            format!("{CM}/bad?fieldManager=m"),
            br#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"}}"#.to_vec(),
            400,
            "invalid object type: /v1, Kind=Secret",
        ),
        (
            "managedFields in the configuration",
            format!("{CM}/bad?fieldManager=m"),
            br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad",
                "managedFields": [{"manager": "x"}]}}"#
                .to_vec(),
            400,
            "metadata.managedFields must be nil",
        ),
        (
            "another name",
            format!("{CM}/other?fieldManager=m"),
            ok.clone(),
            400,
            "the name of the object (bad) does not match the name on the URL (other)",
        ),
        (
            "unknown fields, strictly",
            format!("{CM}/bad?fieldManager=m&fieldValidation=Strict"),
            br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"}, "bogus": 1}"#
                .to_vec(),
            400,
            r#"strict decoding error: unknown field "bogus""#,
        ),
        (
            "duplicate list keys",
            "/apis/apps/v1/namespaces/default/deployments/dup?fieldManager=m".to_owned(),
            serde_json::to_vec(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "dup"}, "spec": {"template": {"spec": {"containers": [
                    {"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}}}}))
            .unwrap(),
            500,
            r#".spec.template.spec.containers: duplicate entries for key [name="a"]"#,
        ),
    ];
    for (name, path, body, code, message) in cases {
        let (got, status) = apply_raw(&raw, &path, body).await;
        assert_eq!(got, code, "{name}: {status}");
        assert!(
            status["message"]
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{name}: {status}"
        );
    }
    // Unknown fields with the default (Warn) or Ignore are dropped.
    for validation in ["Warn", "Ignore"] {
        let (code, applied) = apply_raw(
            &raw,
            &format!("{CM}/u{}?fieldManager=m&fieldValidation={validation}", validation.to_lowercase()),
            format!(
                r#"{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "u{}"}}, "bogus": 1, "data": {{"a": "1"}}}}"#,
                validation.to_lowercase()
            )
            .into_bytes(),
        )
        .await;
        assert_eq!(code, 201, "{validation}: {applied}");
        assert!(applied.get("bogus").is_none(), "{applied}");
        assert!(
            !fields_of(&applied, "m").to_string().contains("bogus"),
            "{applied}"
        );
    }
    // A YAML configuration.
    let (code, applied) = apply_raw(
        &raw,
        &format!("{CM}/yaml?fieldManager=m"),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yaml\ndata:\n  k: v\n".to_vec(),
    )
    .await;
    assert_eq!(code, 201, "{applied}");
    assert_eq!(applied["data"], json!({"k": "v"}));
    assert_eq!(fields_of(&applied, "m"), json!({"f:data": {"f:k": {}}}));
    // Client managedFields that Kubernetes' validation refuses.
    let (code, _) = apply_raw(&raw, &format!("{CM}/bad?fieldManager=m"), ok.clone()).await;
    assert_eq!(code, 201);
    let (code, status) = raw
        .send(
            http::Method::PATCH,
            &format!("{CM}/bad"),
            "application/merge-patch+json",
            br#"{"metadata": {"managedFields": [{"manager": "x", "operation": "Patch",
                "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {}}]}}"#
                .to_vec(),
        )
        .await;
    assert_eq!(code, 422, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("metadata.managedFields[0].operation: Invalid value: \"Patch\": must be `Apply` or `Update`"),
        "{status}"
    );
    // Undecodable ones are replaced by the stored ones, as Kubernetes does.
    let (code, kept) = raw
        .send(
            http::Method::PATCH,
            &format!("{CM}/bad"),
            "application/merge-patch+json",
            br#"{"metadata": {"managedFields": [{"manager": "x", "operation": "Update",
                "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"bogus": 1}}]}}"#
                .to_vec(),
        )
        .await;
    assert_eq!(code, 200, "{kept}");
    assert_eq!(managers(&kept), [manager("m", "Apply", "")]);
    // Dry run creates nothing.
    let (code, _) = apply_raw(
        &raw,
        &format!("{CM}/dry?fieldManager=m&dryRun=All"),
        config_map("dry", json!({})),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _) = raw
        .send(
            http::Method::GET,
            &format!("{CM}/dry"),
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 404);
    server.stop().await;
}

on_both_backends!(
    kubectl_server_side_apply,
    kube_rs_apply,
    writes_record_managers
);
