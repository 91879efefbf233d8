//! Bad input gets the `Status` Kubernetes returns and changes nothing: malformed bodies, wrong
//! kinds and versions, invalid names and labels, oversized bodies, invalid patches, unknown
//! resources, and a fuzz-style run of random and mutated bodies at create and patch.

mod support;

use bytes::Bytes;
use http::{Method, Request};
use kube::{Client, Config};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::{Backend, TestServer};

/// A raw HTTP client: bodies go out exactly as given.
struct Raw {
    client: Client,
}

impl Raw {
    fn new(server: &TestServer) -> Raw {
        let url = format!("http://{}", server.address).parse().unwrap();
        Raw {
            client: Client::try_from(Config::new(url)).unwrap(),
        }
    }

    /// Sends a request; returns the status code and the body parsed as JSON.
    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(body)
            .unwrap();
        let response = self
            .client
            .send(request.map(kube::client::Body::from))
            .await
            .unwrap();
        let code = response.status().as_u16();
        let bytes: Bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (code, value)
    }

    async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        self.send(
            Method::POST,
            path,
            "application/json",
            body.as_bytes().to_vec(),
        )
        .await
    }
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web", "labels": { "app": "web" } },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": "nginx:1.27", "ports": [{ "containerPort": 80 }] }] }
            }
        }
    })
}

/// Asserts a response is a `Status` failure with `code` and `reason`.
fn assert_status(response: &(u16, Value), code: u16, reason: &str) {
    let (got, body) = response;
    assert_eq!(*got, code, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["status"], "Failure", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
}

async fn each_kind_of_bad_input_gets_its_status(s: &TestServer) {
    let raw = Raw::new(s);
    assert_status(&raw.post(CONFIGMAPS, "{not json").await, 400, "BadRequest");
    // YAML bodies are accepted, and malformed YAML is a 400 too.
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n";
    let created = raw
        .send(
            Method::POST,
            CONFIGMAPS,
            "application/yaml",
            yaml.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(
        (created.0, &created.1["data"]["a"]),
        (201, &json!("b")),
        "{}",
        created.1
    );
    let broken = raw
        .send(
            Method::POST,
            CONFIGMAPS,
            "application/yaml",
            b"a: [unclosed\n".to_vec(),
        )
        .await;
    assert_status(&broken, 400, "BadRequest");
    assert_status(&raw.post(CONFIGMAPS, "[1, 2]").await, 400, "BadRequest");
    let wrong_kind = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#;
    assert_status(&raw.post(CONFIGMAPS, wrong_kind).await, 400, "BadRequest");
    let wrong_version = r#"{"apiVersion":"apps/v2","kind":"Deployment","metadata":{"name":"x"}}"#;
    assert_status(
        &raw.post(DEPLOYMENTS, wrong_version).await,
        400,
        "BadRequest",
    );

    let bad_name = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_A_Name"}}"#;
    let response = raw.post(CONFIGMAPS, bad_name).await;
    assert_status(&response, 422, "Invalid");
    assert_eq!(response.1["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(
        response.1["details"]["causes"][0]["reason"],
        "FieldValueInvalid"
    );
    let bad_label = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","labels":{"a/b/c":"v","ok":"-bad-"}}}"#;
    let response = raw.post(CONFIGMAPS, bad_label).await;
    assert_status(&response, 422, "Invalid");
    assert_eq!(
        response.1["details"]["causes"].as_array().unwrap().len(),
        2,
        "{}",
        response.1
    );

    let unknown = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"bogus":1}"#;
    let strict = format!("{CONFIGMAPS}?fieldValidation=Strict");
    assert_status(&raw.post(&strict, unknown).await, 400, "BadRequest");
    let ignored = format!("{CONFIGMAPS}?fieldValidation=Ignore");
    assert_eq!(raw.post(&ignored, unknown).await.0, 201);

    let huge = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"},
        "data": {"big": "x".repeat(4 << 20)}});
    assert_status(
        &raw.post(CONFIGMAPS, &huge.to_string()).await,
        413,
        "RequestEntityTooLarge",
    );

    assert_status(
        &raw.post("/api/v1/namespaces/default/nonsense", "{}").await,
        404,
        "NotFound",
    );
    let missing_ns = "/api/v1/namespaces/nowhere/configmaps";
    let ok = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"y"}}"#;
    assert_status(&raw.post(missing_ns, ok).await, 404, "NotFound");
    assert_status(
        &raw.send(
            Method::POST,
            CONFIGMAPS,
            "application/xml",
            b"<a/>".to_vec(),
        )
        .await,
        415,
        "UnsupportedMediaType",
    );

    // Invalid patches: malformed, failing a test op, changing a name.
    let x = format!("{CONFIGMAPS}/x");
    let patch = |content_type: &'static str, body: &'static str| {
        raw.send(Method::PATCH, &x, content_type, body.as_bytes().to_vec())
    };
    assert_status(
        &patch("application/merge-patch+json", "{oops").await,
        400,
        "BadRequest",
    );
    let failing_test = r#"[{"op":"test","path":"/data/nope","value":"1"}]"#;
    assert_status(
        &patch("application/json-patch+json", failing_test).await,
        422,
        "Invalid",
    );
    let rename = r#"{"metadata":{"name":"other"}}"#;
    assert_status(
        &patch("application/merge-patch+json", rename).await,
        400,
        "BadRequest",
    );
    assert_status(
        &patch("text/plain", "{}").await,
        415,
        "UnsupportedMediaType",
    );

    // Nothing but the one accepted ConfigMap was stored.
    let (_, list) = raw
        .send(Method::GET, CONFIGMAPS, "application/json", Vec::new())
        .await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["from-yaml", "x"]);
}

/// Replaces, removes or retypes random parts of a JSON value.
fn mutate(value: &mut Value, rng: &mut impl Rng, depth: usize) {
    let replacement = |rng: &mut dyn rand::RngCore| match rng.random_range(0..7) {
        0 => Value::Null,
        1 => json!(rng.random::<i64>()),
        2 => json!("Bad Value!"),
        3 => json!([]),
        4 => json!({}),
        5 => json!(true),
        _ => json!(-1),
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[rng.random_range(0..keys.len())];
            match rng.random_range(0..4) {
                0 => {
                    map.remove(key);
                }
                1 => {
                    map.insert(key.clone(), replacement(rng));
                }
                2 => {
                    map.insert(format!("{key}Extra"), replacement(rng));
                }
                _ if depth < 8 => mutate(map.get_mut(key).unwrap(), rng, depth + 1),
                _ => {}
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = rng.random_range(0..items.len());
            if depth < 8 && rng.random_bool(0.7) {
                mutate(&mut items[i], rng, depth + 1);
            } else {
                items[i] = replacement(rng);
            }
        }
        other => *other = replacement(rng),
    }
}

async fn random_and_mutated_bodies_never_break_the_server(s: &TestServer) {
    let raw = Raw::new(s);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let created = raw.post(DEPLOYMENTS, &deployment().to_string()).await;
    assert_eq!(created.0, 201, "{}", created.1);
    let web = format!("{DEPLOYMENTS}/web");
    let (_, before) = raw.send(Method::GET, &web, "", Vec::new()).await;
    let mut accepted = 0;
    for round in 0..300 {
        let mut body = deployment();
        for _ in 0..rng.random_range(1..4) {
            mutate(&mut body, &mut rng, 0);
        }
        if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("name".into(), json!(format!("fuzz-{round}")));
        }
        let mut bytes = body.to_string().into_bytes();
        if round % 5 == 0 && !bytes.is_empty() {
            // Byte-level damage too: truncation and garbage.
            let cut = rng.random_range(0..bytes.len());
            bytes.truncate(cut);
            bytes.push(rng.random());
        }
        let (code, status) = raw
            .send(Method::POST, DEPLOYMENTS, "application/json", bytes)
            .await;
        assert!(code != 500 && code < 600, "round {round}: {code} {status}");
        if code == 201 {
            accepted += 1;
        } else {
            assert_eq!(status["kind"], "Status", "round {round}: {status}");
            assert!(
                matches!(code, 400 | 409 | 413 | 415 | 422),
                "round {round}: {code} {status}"
            );
        }
        // The same damage as a merge patch of the existing object.
        let mut patch = json!({ "spec": deployment()["spec"].clone() });
        mutate(&mut patch, &mut rng, 0);
        let (code, status) = raw
            .send(
                Method::PATCH,
                &web,
                "application/merge-patch+json",
                patch.to_string().into_bytes(),
            )
            .await;
        assert!(code != 500, "round {round}: patch {code} {status}");
        if code != 200 {
            assert_eq!(status["kind"], "Status", "round {round}: {status}");
        }
    }
    // Some mutations are harmless (an extra field is only a warning); most are not.
    assert!(accepted > 0 && accepted < 300, "accepted {accepted} of 300");
    // The server still answers, and a rejected patch never changed the stored object.
    let (code, after) = raw.send(Method::GET, &web, "", Vec::new()).await;
    assert_eq!(code, 200);
    let rv = |v: &Value| {
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    assert!(rv(&after) >= rv(&before));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_embedded_store() {
    let server = TestServer::start(Backend::Embedded, "bad_input").await;
    each_kind_of_bad_input_gets_its_status(&server).await;
    random_and_mutated_bodies_never_break_the_server(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_etcd() {
    let server = TestServer::start(Backend::Etcd, "bad_input").await;
    each_kind_of_bad_input_gets_its_status(&server).await;
    server.stop().await;
}
