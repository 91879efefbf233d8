//! The apiserver driven by the real kubectl, on both store backends: what a user types must
//! behave as it does against Kubernetes.

#[macro_use]
mod support;

use std::time::Duration;

use support::TestServer;
use tokio::io::AsyncBufReadExt;

on_both_backends!(
    apply_get_edit_and_delete_a_deployment,
    labels_annotations_and_selectors,
    scale_uses_the_scale_subresource,
    get_watch_streams_changes,
    create_from_literals_and_reject_bad_input,
    discovery_lists_the_built_in_resources,
    services_get_cluster_ips_and_node_ports,
    pods_are_defaulted_and_printed,
    namespaces_are_deleted_with_their_contents,
    logs_are_proxied_to_the_kubelet,
    secret_string_data_is_folded_into_data,
);

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    tier: frontend
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox:1.36
"#;

async fn apply_get_edit_and_delete_a_deployment(s: &TestServer) {
    let out = s.apply(DEPLOYMENT).await;
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let d = s.get_json(&["deployment", "web"]).await;
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["metadata"]["namespace"], "default");
    assert_eq!(d["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(
        d["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    assert!(
        d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    let first_rv = d["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    // Apply again unchanged: nothing to do, no new revision.
    let out = s.apply(DEPLOYMENT).await;
    assert!(out.contains("deployment.apps/web unchanged"), "{out}");

    // An edit is a strategic merge patch: one container's image changes, the other stays.
    let edited = DEPLOYMENT
        .replace("nginx:1.27", "nginx:1.28")
        .replace("replicas: 2", "replicas: 3");
    let out = s.apply(&edited).await;
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let d = s.get_json(&["deployment", "web"]).await;
    assert_eq!(d["metadata"]["generation"], 2);
    assert_ne!(d["metadata"]["resourceVersion"].as_str().unwrap(), first_rv);
    assert_eq!(d["spec"]["replicas"], 3);
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0]["image"], "nginx:1.28");
    assert_eq!(containers[1]["image"], "busybox:1.36");

    let table = s.kubectl(&["get", "deployments"]).await;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("web"), "{table}");
    let yaml = s.kubectl(&["get", "deployment", "web", "-o", "yaml"]).await;
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("image: nginx:1.28"),
        "{yaml}"
    );

    let out = s.kubectl(&["delete", "deployment", "web"]).await;
    assert!(out.contains("deployment.apps \"web\" deleted"), "{out}");
    let err = s.kubectl_fails(&["get", "deployment", "web"], None).await;
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

async fn labels_annotations_and_selectors(s: &TestServer) {
    for (name, tier) in [("a", "frontend"), ("b", "backend"), ("c", "frontend")] {
        s.kubectl(&[
            "create",
            "configmap",
            name,
            "--from-literal",
            &format!("tier={tier}"),
        ])
        .await;
        s.kubectl(&["label", "configmap", name, &format!("tier={tier}")])
            .await;
    }
    s.kubectl(&["annotate", "configmap", "a", "owner=team-a"])
        .await;
    let a = s.get_json(&["configmap", "a"]).await;
    assert_eq!(a["metadata"]["annotations"]["owner"], "team-a");
    assert_eq!(a["data"]["tier"], "frontend");

    let names = s
        .kubectl(&[
            "get",
            "configmaps",
            "-l",
            "tier in (frontend)",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["configmap/a", "configmap/c"]
    );
    let names = s
        .kubectl(&[
            "get",
            "configmaps",
            "-l",
            "tier!=frontend,tier",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(names.trim(), "configmap/b");
    let names = s
        .kubectl(&[
            "get",
            "configmaps",
            "--field-selector",
            "metadata.name=c",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(names.trim(), "configmap/c");

    // Removing a label is a patch with null.
    s.kubectl(&["label", "configmap", "c", "tier-"]).await;
    let names = s
        .kubectl(&["get", "configmaps", "-l", "tier", "-o", "name"])
        .await;
    assert_eq!(names.lines().count(), 2, "{names}");
}

async fn scale_uses_the_scale_subresource(s: &TestServer) {
    s.apply(DEPLOYMENT).await;
    let out = s
        .kubectl(&["scale", "deployment", "web", "--replicas=5"])
        .await;
    assert!(out.contains("scaled"), "{out}");
    let d = s.get_json(&["deployment", "web"]).await;
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(d["metadata"]["generation"], 2);
}

async fn get_watch_streams_changes(s: &TestServer) {
    s.kubectl(&["create", "configmap", "watched", "--from-literal", "k=v1"])
        .await;
    let mut watch = tokio::process::Command::new(support::kubectl_path())
        .args(["get", "configmaps", "-w", "-o", "name"])
        .env("KUBECONFIG", &s.kubeconfig)
        .env("HOME", s.dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let next = async |lines: &mut tokio::io::Lines<_>| {
        tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("kubectl get -w prints in time")
            .unwrap()
            .expect("a line")
    };
    // The initial state, then a change made after the watch started.
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("watched")) {
        seen.push(next(&mut lines).await);
    }
    s.kubectl(&["create", "configmap", "later", "--from-literal", "k=v"])
        .await;
    let mut line = next(&mut lines).await;
    while !line.contains("later") {
        line = next(&mut lines).await;
    }
    assert_eq!(line.trim(), "configmap/later");
    watch.kill().await.unwrap();
}

async fn create_from_literals_and_reject_bad_input(s: &TestServer) {
    s.kubectl(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal",
        "password=hunter2",
    ])
    .await;
    let secret = s.get_json(&["secret", "creds"]).await;
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");

    // An invalid name: 422 with Kubernetes' message.
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n";
    let err = s.kubectl_fails(&["apply", "-f", "-"], Some(bad)).await;
    assert!(
        err.contains("is invalid") && err.contains("metadata.name"),
        "{err}"
    );
    // A missing namespace.
    let err = s
        .kubectl_fails(&["create", "configmap", "x", "-n", "nowhere"], None)
        .await;
    assert!(err.contains("not found"), "{err}");
    // An unknown field with strict validation (kubectl's default).
    let unknown = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\ndatta:\n  a: b\n";
    let err = s.kubectl_fails(&["apply", "-f", "-"], Some(unknown)).await;
    assert!(
        err.contains("unknown field") && err.contains("datta"),
        "{err}"
    );
    let err = s.kubectl_fails(&["get", "configmap", "typo"], None).await;
    assert!(err.contains("not found"), "{err}");

    // Kind-specific validation, with Kubernetes' field paths and messages.
    let mismatched = DEPLOYMENT.replace(
        "    matchLabels:\n      app: web",
        "    matchLabels:\n      app: db",
    );
    let err = s
        .kubectl_fails(&["apply", "-f", "-"], Some(&mismatched))
        .await;
    assert!(
        err.contains("spec.template.metadata.labels: Invalid value")
            && err.contains("`selector` does not match template `labels`"),
        "{err}"
    );
    let no_image = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  restartPolicy: Sometimes\n  containers:\n  - name: c\n";
    let err = s.kubectl_fails(&["apply", "-f", "-"], Some(no_image)).await;
    assert!(
        err.contains("spec.containers[0].image: Required value"),
        "{err}"
    );
    assert!(
        err.contains("spec.restartPolicy: Unsupported value: \"Sometimes\""),
        "{err}"
    );
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  template:\n    spec:\n      restartPolicy: Always\n      containers:\n      - name: c\n        image: busybox\n";
    let err = s.kubectl_fails(&["apply", "-f", "-"], Some(job)).await;
    assert!(
        err.contains("spec.template.spec.restartPolicy: Required value"),
        "{err}"
    );
}

async fn discovery_lists_the_built_in_resources(s: &TestServer) {
    let resources = s.kubectl(&["api-resources"]).await;
    for line in [
        "deployments",
        "deploy",
        "apps/v1",
        "statefulsets",
        "cronjobs",
        "clusterrolebindings",
        "endpointslices",
    ] {
        assert!(
            resources.contains(line),
            "{line} missing from:\n{resources}"
        );
    }
    let namespaces = s.kubectl(&["get", "namespaces", "-o", "name"]).await;
    for ns in skiff_apiserver::SYSTEM_NAMESPACES {
        assert!(
            namespaces.contains(&format!("namespace/{ns}")),
            "{namespaces}"
        );
    }
    let explained = s.kubectl(&["explain", "deployment.spec.strategy"]).await;
    assert!(
        explained.contains("rollingUpdate") && explained.contains("DESCRIPTION"),
        "{explained}"
    );
    let explained = s
        .kubectl(&[
            "explain",
            "pods.spec.containers.image",
            "--output",
            "plaintext-openapiv2",
        ])
        .await;
    assert!(explained.contains("image"), "{explained}");
    let version = s.kubectl(&["version", "-o", "json"]).await;
    let version: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(version["serverVersion"]["minor"], "37");
}

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web-nodeport
spec:
  type: NodePort
  selector:
    app: web
  ports:
  - name: http
    port: 80
  - name: https
    port: 443
    nodePort: 30443
"#;

const SHARED_NODE_PORTS: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: dns
spec:
  type: NodePort
  ports:
  - name: dns-tcp
    port: 53
    protocol: TCP
  - name: dns-udp
    port: 53
    protocol: UDP
---
apiVersion: v1
kind: Service
metadata:
  name: named
spec:
  type: NodePort
  ports:
  - name: tcp
    port: 5353
    protocol: TCP
  - name: udp
    port: 5353
    protocol: UDP
    nodePort: 30053
"#;

async fn services_get_cluster_ips_and_node_ports(s: &TestServer) {
    s.apply(SERVICES).await;
    let web = s.get_json(&["service", "web"]).await;
    let ip: std::net::Ipv4Addr = web["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    assert_eq!(ip.octets()[0], 10);
    assert!(
        (96..112).contains(&ip.octets()[1]),
        "{ip} is in 10.96.0.0/12"
    );
    assert_eq!(web["spec"]["type"], "ClusterIP");
    assert_eq!(web["spec"]["sessionAffinity"], "None");
    assert_eq!(web["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(web["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(web["spec"]["ipFamilies"], serde_json::json!(["IPv4"]));

    let np = s.get_json(&["service", "web-nodeport"]).await;
    assert_ne!(np["spec"]["clusterIP"], web["spec"]["clusterIP"]);
    let ports = np["spec"]["ports"].as_array().unwrap();
    let first = ports[0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&first));
    assert_eq!(ports[1]["nodePort"], 30443);
    assert_eq!(ports[1]["targetPort"], 443);

    let table = s.kubectl(&["get", "services"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert!(
        table.contains(&format!("80:{first}/TCP,443:30443/TCP")),
        "{table}"
    );
    assert!(
        table.contains("kubernetes") && table.contains("10.96.0.1"),
        "{table}"
    );

    // The entries of one port number share one NodePort (one of them may name it); two of
    // the same protocol may not.
    s.apply(SHARED_NODE_PORTS).await;
    let dns = s.get_json(&["service", "dns"]).await;
    let (tcp, udp) = (
        &dns["spec"]["ports"][0]["nodePort"],
        &dns["spec"]["ports"][1]["nodePort"],
    );
    assert!(
        tcp.as_i64().is_some_and(|p| (30000..=32767).contains(&p)),
        "{dns}"
    );
    assert_eq!(tcp, udp, "{dns}");
    let named = s.get_json(&["service", "named"]).await;
    assert_eq!(named["spec"]["ports"][0]["nodePort"], 30053, "{named}");
    assert_eq!(named["spec"]["ports"][1]["nodePort"], 30053, "{named}");
    let twice = "apiVersion: v1\nkind: Service\nmetadata:\n  name: twice\nspec:\n  type: NodePort\n  ports:\n  - name: a\n    port: 1\n    nodePort: 30054\n  - name: b\n    port: 2\n    nodePort: 30054\n";
    let err = s.kubectl_fails(&["apply", "-f", "-"], Some(twice)).await;
    assert!(
        err.contains("spec.ports[1].nodePort: Duplicate value: 30054"),
        "{err}"
    );
    s.kubectl(&["delete", "service", "dns", "named"]).await;

    // A taken node port or address is refused; after deletion it is free again.
    let taken = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: copy\nspec:\n  type: NodePort\n  clusterIP: {ip}\n  ports:\n  - port: 1\n    nodePort: 30443\n"
    );
    let err = s.kubectl_fails(&["apply", "-f", "-"], Some(&taken)).await;
    assert!(err.contains("already allocated"), "{err}");
    s.kubectl(&["delete", "service", "web", "web-nodeport"])
        .await;
    s.apply(&taken).await;
    let copy = s.get_json(&["service", "copy"]).await;
    assert_eq!(copy["spec"]["clusterIP"], ip.to_string());
}

async fn pods_are_defaulted_and_printed(s: &TestServer) {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    app: web\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n";
    s.apply(pod).await;
    let p = s.get_json(&["pod", "p"]).await;
    assert_eq!(p["spec"]["restartPolicy"], "Always");
    assert_eq!(
        p["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(p["status"]["phase"], "Pending");
    let table = s.kubectl(&["get", "pods"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert!(table.lines().nth(1).unwrap().contains("0/1"), "{table}");
    let wide = s.kubectl(&["get", "pods", "-o", "wide"]).await;
    assert!(wide.lines().next().unwrap().contains("NODE"), "{wide}");
    let pending = s
        .kubectl(&[
            "get",
            "pods",
            "--field-selector",
            "status.phase=Pending",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(pending.trim(), "pod/p");
    let err = s
        .kubectl_fails(&["get", "pods", "--field-selector", "spec.bogus=x"], None)
        .await;
    assert!(err.contains("field label not supported"), "{err}");
    // An unscheduled pod is deleted at once.
    s.kubectl(&["delete", "pod", "p", "--wait=false"]).await;
    let err = s.kubectl_fails(&["get", "pod", "p"], None).await;
    assert!(err.contains("not found"), "{err}");

    // A scheduled pod waits for its kubelet: marked Terminating with its grace period, gone
    // once a zero-grace delete (what the kubelet sends when the containers stopped) arrives.
    s.apply(pod).await;
    let binding = r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"node-1"}}"#;
    let path = "/api/v1/namespaces/default/pods/p/binding";
    let out = s
        .kubectl_with_input(&["create", "--raw", path, "-f", "-"], Some(binding))
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = s
        .kubectl_with_input(&["create", "--raw", path, "-f", "-"], Some(binding))
        .await;
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already assigned"),
        "a pod is bound once"
    );
    assert_eq!(
        s.get_json(&["pod", "p"]).await["spec"]["nodeName"],
        "node-1"
    );
    s.kubectl(&["delete", "pod", "p", "--wait=false"]).await;
    let p = s.get_json(&["pod", "p"]).await;
    assert!(p["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(
        s.kubectl(&["get", "pod", "p"])
            .await
            .contains("Terminating")
    );
    s.kubectl(&["delete", "pod", "p", "--grace-period=0", "--force"])
        .await;
    let err = s.kubectl_fails(&["get", "pod", "p"], None).await;
    assert!(err.contains("not found"), "{err}");
}

async fn namespaces_are_deleted_with_their_contents(s: &TestServer) {
    s.kubectl(&["create", "namespace", "team"]).await;
    s.kubectl(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team",
        "--from-literal",
        "a=b",
    ])
    .await;
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: team\nspec:\n  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 31111\n";
    s.apply(svc).await;
    let ns = s.get_json(&["namespace", "team"]).await;
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["spec"]["finalizers"], serde_json::json!(["kubernetes"]));
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );

    // kubectl waits until the namespace is really gone.
    let out = s
        .kubectl(&["delete", "namespace", "team", "--timeout=30s"])
        .await;
    assert!(out.contains("namespace \"team\" deleted"), "{out}");
    let err = s.kubectl_fails(&["get", "namespace", "team"], None).await;
    assert!(err.contains("not found"), "{err}");
    let left = s
        .kubectl(&["get", "configmaps,services", "-n", "team", "-o", "name"])
        .await;
    assert!(left.trim().is_empty(), "{left}");
    // The deleted service's node port is free again.
    s.apply(&svc.replace("namespace: team", "namespace: default"))
        .await;

    let err = s
        .kubectl_fails(&["delete", "namespace", "default"], None)
        .await;
    assert!(err.contains("this namespace may not be deleted"), "{err}");
}

/// `kubectl logs` against a stand-in kubelet that answers with the query it was asked (and 404
/// for any other container): the apiserver finds the Node's InternalIP and kubelet port, passes
/// the options on, and turns the kubelet's errors into Statuses.
async fn logs_are_proxied_to_the_kubelet(s: &TestServer) {
    use axum::http::{StatusCode, Uri};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let kubelet = axum::Router::new().fallback(async |uri: Uri| {
        if uri.path() == "/containerLogs/default/two/b" {
            (
                StatusCode::OK,
                format!("{}\n", uri.query().unwrap_or("everything")),
            )
        } else {
            (StatusCode::NOT_FOUND, format!("no logs for {}", uri.path()))
        }
    });
    // Kubelets serve HTTPS (self-signed): so does this stand-in.
    let listener = support::TlsTestListener::new(listener, s.dir());
    let kubelet = tokio::spawn(async move { axum::serve(listener, kubelet).await });

    s.apply(
        r#"
apiVersion: v1
kind: Node
metadata:
  name: logs-node
---
apiVersion: v1
kind: Pod
metadata:
  name: two
spec:
  nodeName: logs-node
  containers:
  - {name: a, image: busybox}
  - {name: b, image: busybox}
---
apiVersion: v1
kind: Pod
metadata:
  name: pending
spec:
  containers:
  - {name: a, image: busybox}
"#,
    )
    .await;
    let status = format!(
        r#"{{"status": {{"addresses": [{{"type": "Hostname", "address": "logs-node"}},
            {{"type": "InternalIP", "address": "127.0.0.1"}}],
            "daemonEndpoints": {{"kubeletEndpoint": {{"Port": {port}}}}}}}}}"#
    );
    s.kubectl(&[
        "patch",
        "node",
        "logs-node",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ])
    .await;

    assert_eq!(s.kubectl(&["logs", "two", "-c", "b"]).await, "everything\n");
    // nodes/proxy reaches the same kubelet API, query and all.
    assert_eq!(
        s.kubectl(&[
            "get",
            "--raw",
            "/api/v1/nodes/logs-node/proxy/containerLogs/default/two/b?tailLines=1"
        ])
        .await,
        "tailLines=1\n"
    );
    let err = s
        .kubectl_fails(
            &["get", "--raw", "/api/v1/nodes/logs-node/proxy/nothing"],
            None,
        )
        .await;
    assert!(err.contains("NotFound") || err.contains("404"), "{err}");
    assert_eq!(
        s.kubectl(&["logs", "two", "-c", "b", "--tail=2", "--timestamps"])
            .await,
        "timestamps=true&tailLines=2\n"
    );
    assert_eq!(
        s.kubectl(&["logs", "-f", "two", "-c", "b", "--limit-bytes=5", "-p"])
            .await,
        "follow=true&previous=true&limitBytes=5\n"
    );
    // kubectl picks the first container itself; the kubelet's 404 comes back as a Status.
    let err = s.kubectl_fails(&["logs", "two"], None).await;
    assert!(
        err.contains("NotFound") && err.contains("no logs for /containerLogs/default/two/a"),
        "{err}"
    );
    let err = s.kubectl_fails(&["logs", "two", "-c", "c"], None).await;
    assert!(
        err.contains("container c is not valid for pod two"),
        "{err}"
    );
    let err = s.kubectl_fails(&["logs", "pending"], None).await;
    assert!(
        err.contains("pod pending does not have a host assigned"),
        "{err}"
    );
    let err = s.kubectl_fails(&["logs", "absent"], None).await;
    assert!(err.contains(r#"pods "absent" not found"#), "{err}");

    s.kubectl(&["delete", "pod", "two", "pending", "--wait=false"])
        .await;
    s.kubectl(&["delete", "node", "logs-node"]).await;
    kubelet.abort();
}

const SECRET_WITH_STRING_DATA: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: app
data:
  user: Ym9i
  kept: a2VwdA==
stringData:
  user: alice
  password: s3cret
"#;

/// `stringData` is write-only: folded into `data` (winning over the same key) on create and
/// update, never stored, and not an unknown field for strict validation.
async fn secret_string_data_is_folded_into_data(s: &TestServer) {
    let out = s
        .kubectl_with_input(&["apply", "-f", "-"], Some(SECRET_WITH_STRING_DATA))
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("unknown field"), "{stderr}");
    let secret = s.get_json(&["secret", "app"]).await;
    assert_eq!(secret["data"]["user"], "YWxpY2U=", "{secret}");
    assert_eq!(secret["data"]["password"], "czNjcmV0", "{secret}");
    assert_eq!(secret["data"]["kept"], "a2VwdA==", "{secret}");
    assert!(secret.get("stringData").is_none(), "{secret}");
    assert_eq!(secret["type"], "Opaque");

    // Applying a changed stringData updates data.
    s.apply(&SECRET_WITH_STRING_DATA.replace("s3cret", "changed"))
        .await;
    let secret = s.get_json(&["secret", "app"]).await;
    assert_eq!(secret["data"]["password"], "Y2hhbmdlZA==", "{secret}");
    assert!(secret.get("stringData").is_none(), "{secret}");

    // A patch with stringData (an update through the API) lands in data too.
    s.kubectl(&[
        "patch",
        "secret",
        "app",
        "--type=merge",
        "-p",
        r#"{"stringData":{"token":"t0ken"}}"#,
    ])
    .await;
    let secret = s.get_json(&["secret", "app"]).await;
    assert_eq!(secret["data"]["token"], "dDBrZW4=", "{secret}");
    assert_eq!(secret["data"]["user"], "YWxpY2U=", "{secret}");
    assert!(secret.get("stringData").is_none(), "{secret}");
    // Printed with its data count.
    let table = s.kubectl(&["get", "secret", "app"]).await;
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("Opaque") && l.contains(" 4 ")),
        "{table}"
    );
}
