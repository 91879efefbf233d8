//! Bad input gets the `Status` Kubernetes returns and changes nothing: malformed bodies, wrong
//! kinds and versions, invalid names and labels, oversized bodies, invalid patches, unknown
//! resources, input that would amplify into far more memory or CPU than its size (JSON patch
//! copies and operations, YAML aliases, deep nesting, long strategic-merge lists), and a
//! fuzz-style run of random and mutated bodies at create and patch.

mod support;

use http::Method;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::{Backend, Raw, TestServer};

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

/// The resident memory of this process, which the server under test runs in.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Sends a request that must be answered within `QUICKLY` (a hostile body is refused before it
/// costs much).
async fn quickly(
    raw: &Raw,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    const QUICKLY: std::time::Duration = std::time::Duration::from_secs(10);
    let started = std::time::Instant::now();
    let response = raw.send(method, path, content_type, body).await;
    let took = started.elapsed();
    assert!(
        took < QUICKLY,
        "took {took:?}: {} {}",
        response.0,
        response.1
    );
    response
}

/// Patches, YAML bodies and nesting that would make the server spend memory or CPU far beyond
/// their size are refused, quickly, with Kubernetes' status codes.
async fn amplifying_input_is_refused_quickly(s: &TestServer) {
    let raw = Raw::new(s);
    let before = resident_bytes();
    let bomb = format!("{CONFIGMAPS}/bomb");
    let created = raw
        .post(
            CONFIGMAPS,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bomb"},
                "data": {"a": "x".repeat(1024)}})
            .to_string(),
        )
        .await;
    assert_eq!(created.0, 201, "{}", created.1);
    let json_patch = |operations: Vec<Value>| Value::Array(operations).to_string().into_bytes();

    // 40 copies of /data into itself would need 2^40 KiB; kube-apiserver's copy limit stops it
    // at the request-body size (422, as json-patch's error is).
    let doubling = (0..40)
        .map(|i| json!({"op": "copy", "from": "/data", "path": format!("/data/x{i}")}))
        .collect();
    let response = quickly(
        &raw,
        Method::PATCH,
        &bomb,
        "application/json-patch+json",
        json_patch(doubling),
    )
    .await;
    assert_status(&response, 422, "Invalid");
    assert!(
        response.1["message"]
            .as_str()
            .unwrap()
            .contains("accumulated size increase of copy"),
        "{}",
        response.1
    );

    // At most 10,000 operations (kube-apiserver's maxJSONPatchOperations), else 413.
    let harmless = |n| vec![json!({"op": "test", "path": "/metadata/name", "value": "bomb"}); n];
    let response = quickly(
        &raw,
        Method::PATCH,
        &bomb,
        "application/json-patch+json",
        json_patch(harmless(10_000)),
    )
    .await;
    assert_eq!(response.0, 200, "{}", response.1);
    let response = quickly(
        &raw,
        Method::PATCH,
        &bomb,
        "application/json-patch+json",
        json_patch(harmless(10_001)),
    )
    .await;
    assert_status(&response, 413, "RequestEntityTooLarge");
    assert_eq!(
        response.1["message"],
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    );

    // Moves that nest the object ~10,000 levels deep: refused (nothing could read it back),
    // without the recursion of dropping or encoding it.
    let levels = 9_998;
    let mut deepening =
        vec![json!({"op": "add", "path": "/l", "value": vec![json!({}); levels + 1]})];
    deepening.extend((1..=levels).rev().map(
        |i| json!({"op": "move", "from": format!("/l/{i}"), "path": format!("/l/{}/k", i - 1)}),
    ));
    let response = quickly(
        &raw,
        Method::PATCH,
        &bomb,
        "application/json-patch+json",
        json_patch(deepening),
    )
    .await;
    assert_status(&response, 422, "Invalid");

    // Strategic merge patches of long lists take linear time.
    let finalizers: Vec<String> = (0..60_000).map(|i| format!("example.com/f{i}")).collect();
    let patch = json!({"metadata": {"finalizers": finalizers}})
        .to_string()
        .into_bytes();
    let dry_run = format!("{bomb}?dryRun=All");
    let response = quickly(
        &raw,
        Method::PATCH,
        &dry_run,
        "application/strategic-merge-patch+json",
        patch,
    )
    .await;
    assert_eq!(response.0, 200, "{}", response.1);

    // The object is as it was created.
    let (code, stored) = raw.send(Method::GET, &bomb, "", Vec::new()).await;
    assert_eq!(code, 200);
    assert_eq!(stored["data"], json!({"a": "x".repeat(1024)}));

    // YAML aliases may repeat parts of a body but not blow it up: a 600 KB string aliased 99
    // times (60 MB), and a billion-laughs tree of 10^5 strings (50 MB), are 400s.
    let big = "x".repeat(600 * 1024);
    let mut aliased = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: aliased\ndata:\n  k0: &big {big}\n"
    );
    for i in 1..100 {
        aliased.push_str(&format!("  k{i}: *big\n"));
    }
    let response = quickly(
        &raw,
        Method::POST,
        CONFIGMAPS,
        "application/yaml",
        aliased.into_bytes(),
    )
    .await;
    assert_status(&response, 400, "BadRequest");
    let lol = "lol".repeat(170);
    let mut laughs = format!(
        "apiVersion: apps/v1\nkind: ControllerRevision\nmetadata:\n  name: laughs\nrevision: 1\ndata:\n  l0: &l0 [{}]\n",
        vec![lol; 10].join(", ")
    );
    for level in 1..5 {
        let below = vec![format!("*l{}", level - 1); 10].join(", ");
        laughs.push_str(&format!("  l{level}: &l{level} [{below}]\n"));
    }
    let revisions = "/apis/apps/v1/namespaces/default/controllerrevisions";
    let response = quickly(
        &raw,
        Method::POST,
        revisions,
        "application/yaml",
        laughs.into_bytes(),
    )
    .await;
    assert_status(&response, 400, "BadRequest");
    // Ordinary aliases still work.
    let small = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: small-alias\ndata:\n  a: &v shared\n  b: *v\n";
    let response = quickly(
        &raw,
        Method::POST,
        CONFIGMAPS,
        "application/yaml",
        small.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(
        (response.0, &response.1["data"]["b"]),
        (201, &json!("shared")),
        "{}",
        response.1
    );

    // The deepest bodies the decoders take (127 levels of JSON, 64 of YAML) go through.
    let revision = |name: &str, data: String| {
        format!(
            r#"{{"apiVersion":"apps/v1","kind":"ControllerRevision","metadata":{{"name":"{name}"}},"revision":1,"data":{data}}}"#
        )
    };
    let deepest_json = revision(
        "deepest-json",
        format!("{}0{}", "[".repeat(126), "]".repeat(126)),
    );
    let response = quickly(
        &raw,
        Method::POST,
        revisions,
        "application/json",
        deepest_json.into_bytes(),
    )
    .await;
    assert_eq!(response.0, 201, "{}", response.1);
    let deepest_yaml = revision(
        "deepest-yaml",
        format!("{}0{}", "[".repeat(63), "]".repeat(63)),
    );
    let response = quickly(
        &raw,
        Method::POST,
        revisions,
        "application/yaml",
        deepest_yaml.into_bytes(),
    )
    .await;
    assert_eq!(response.0, 201, "{}", response.1);

    // Nesting deeper than the decoders allow is a 400, in JSON and in YAML.
    let deep_json = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"deep"}},"data":{}0{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let response = quickly(
        &raw,
        Method::POST,
        CONFIGMAPS,
        "application/json",
        deep_json.into_bytes(),
    )
    .await;
    assert_status(&response, 400, "BadRequest");
    let deep_yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata: {}0{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let response = quickly(
        &raw,
        Method::POST,
        CONFIGMAPS,
        "application/yaml",
        deep_yaml.into_bytes(),
    )
    .await;
    assert_status(&response, 400, "BadRequest");
    let deep_patch = format!(
        r#"{{"data":{}0{}}}"#,
        "{\"a\":".repeat(100_000),
        "}".repeat(100_000)
    );
    let response = quickly(
        &raw,
        Method::PATCH,
        &bomb,
        "application/merge-patch+json",
        deep_patch.into_bytes(),
    )
    .await;
    assert_status(&response, 400, "BadRequest");

    // None of it cost much memory (unbounded, the 40 copies alone would need a terabyte).
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 512 << 20,
        "resident memory grew by {} MiB",
        grown >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_embedded_store() {
    let server = TestServer::start(Backend::Embedded, "bad_input").await;
    each_kind_of_bad_input_gets_its_status(&server).await;
    random_and_mutated_bodies_never_break_the_server(&server).await;
    amplifying_input_is_refused_quickly(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_etcd() {
    let server = TestServer::start(Backend::Etcd, "bad_input").await;
    each_kind_of_bad_input_gets_its_status(&server).await;
    server.stop().await;
}
