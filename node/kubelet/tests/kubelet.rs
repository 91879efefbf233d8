//! skiff-kubelet against a real containerd (with the reference bridge CNI) and an in-process
//! apiserver (root): Node and Lease, a pod with an init container and two containers reaching
//! Ready, a crash-looping container backing off, a failing liveness probe restarting its
//! container, a kubelet restart adopting running containers, and deletion within the grace
//! period. Run through `cargo xtask test node`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use skiff_cri::{Cri, v1};
use skiff_kubelet::Config;
use skiff_testenv::{Containerd, ContainerdConfig, wait_ready};

const NODE: &str = "node-k1";

/// A test-owned Linux bridge (the CNI plugin creates it), deleted on drop.
struct Bridge(String);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The test's files under the target dir, removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The apiserver in this process, on loopback, over an embedded store.
struct ControlPlane {
    client: kube::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ControlPlane {
    async fn start(dir: &Path) -> ControlPlane {
        let store = Arc::new(
            skiff_store::EmbeddedStore::open(skiff_store::EmbeddedConfig::new(dir.join("store")))
                .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = skiff_apiserver::Server::new(store, address);
        server.bootstrap().await.unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(skiff_apiserver::serve(server, listener, async {
            let _ = stopped.await;
        }));
        let client = kube::Client::try_from(kube::Config::new(
            format!("http://{address}").parse().unwrap(),
        ))
        .unwrap();
        ControlPlane {
            client,
            stop: Some(stop),
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A running kubelet task; stopped (containers left running) on `stop` or drop.
struct Kubelet {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Kubelet {
    fn start(client: &kube::Client, cri: &Cri, config: &Config) -> Kubelet {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(skiff_kubelet::run(
            client.clone(),
            cri.clone(),
            config.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Kubelet {
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let result = self.task.take().unwrap().await.unwrap();
        result.unwrap();
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn write_bridge_conflist(conf_dir: &Path, ipam_dir: &Path, bridge: &str, subnet: Ipv4Addr) {
    std::fs::create_dir_all(conf_dir).unwrap();
    let conflist = format!(
        r#"{{
  "cniVersion": "0.4.0",
  "name": "{bridge}",
  "plugins": [{{
    "type": "bridge",
    "bridge": "{bridge}",
    "isGateway": true,
    "ipMasq": false,
    "ipam": {{
      "type": "host-local",
      "ranges": [[{{"subnet": "{subnet}/24"}}]],
      "dataDir": "{ipam}"
    }}
  }}]
}}"#,
        ipam = ipam_dir.display()
    );
    std::fs::write(conf_dir.join("10-bridge.conflist"), conflist).unwrap();
}

async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn pod_json(pods: &Api<Pod>, name: &str) -> Option<Value> {
    let pod = pods.get_opt(name).await.unwrap()?;
    Some(serde_json::to_value(pod).unwrap())
}

fn condition(pod: &Value, kind: &str) -> String {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

fn http_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

fn pod(name: &str, spec: Value) -> Pod {
    let mut spec = spec;
    spec["nodeName"] = json!(NODE);
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .unwrap()
}

fn busybox(name: &str, script: &str) -> Value {
    json!({
        "name": name,
        "image": skiff_testenv::images::BUSYBOX,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script],
    })
}

async fn sandboxes_of(cri: &Cri, uid: &str) -> Vec<v1::PodSandbox> {
    let filter = v1::PodSandboxFilter {
        label_selector: [("io.kubernetes.pod.uid".to_owned(), uid.to_owned())].into(),
        ..Default::default()
    };
    cri.list_pod_sandbox(Some(filter)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_runs_pods_through_containerd() {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "the kubelet tests need root (run them through `cargo xtask test node`)"
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "skiff_kubelet=info".into()),
        )
        .with_test_writer()
        .try_init();
    let pid = std::process::id();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = Dir(tmp.join(format!("kubelet-{pid}")));
    let bridge_name = format!("skkl-{pid}");
    let bridge = Bridge(bridge_name.clone());
    let subnet = Ipv4Addr::new(10, 210 + (pid % 40) as u8, (pid / 40 % 256) as u8, 0);
    let conf_dir = dir.0.join("cni");
    write_bridge_conflist(&conf_dir, &dir.0.join("ipam"), &bridge_name, subnet);
    let containerd = Containerd::start(&ContainerdConfig::new(
        &dir.0.join("containerd"),
        Path::new("/usr/lib/cni"),
        &conf_dir,
    ))
    .unwrap();
    containerd.import_test_images(&tmp.join("images")).unwrap();
    let cri = Cri::connect(containerd.socket()).await.unwrap();
    wait_ready(&cri, Duration::from_secs(10)).await.unwrap();
    let control = ControlPlane::start(&dir.0).await;
    let client = control.client.clone();

    let mut config = Config::new(NODE);
    config.addresses = vec![("InternalIP".into(), "127.0.0.1".into())];
    config.pod_log_root = dir.0.join("pods");
    config.cgroup_parent = containerd.cgroup_parent().to_owned();
    config.ephemeral_storage_dir = dir.0.clone();
    config.server_bind = SocketAddr::from(([127, 0, 0, 1], 0));
    let kubelet = Kubelet::start(&client, &cri, &config);

    // The Node and its Lease.
    let nodes: Api<Node> = Api::all(client.clone());
    let node = wait_for("the Node Ready", Duration::from_secs(20), async || {
        let node = serde_json::to_value(nodes.get_opt(NODE).await.unwrap()?).unwrap();
        let ready = node["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.then_some(node)
    })
    .await;
    let status = &node["status"];
    assert_eq!(status["capacity"]["pods"], "110", "{status}");
    let kubelet_port = status["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .unwrap_or(0);
    assert!(kubelet_port > 0, "no kubelet port: {status}");
    assert!(
        status["capacity"]["memory"]
            .as_str()
            .unwrap()
            .ends_with("Ki")
    );
    assert!(
        status["capacity"]["ephemeral-storage"].is_string(),
        "{status}"
    );
    assert!(
        status["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .unwrap()
            .starts_with("containerd://"),
        "{status}"
    );
    assert_eq!(status["nodeInfo"]["kubeletVersion"], "v1.37.0-skiff");
    for kind in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert!(
            status["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == kind && c["status"] == "False"),
            "{kind}: {status}"
        );
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    wait_for("the Lease", Duration::from_secs(20), async || {
        leases.get_opt(NODE).await.unwrap()?.spec?.renew_time
    })
    .await;

    // A pod with an init container and two containers, one serving HTTP with a readiness
    // probe, its pod IP in its environment.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut web = busybox(
        "web",
        "mkdir -p /www && echo \"hello from $POD_NAME at $POD_IP\" > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    web["env"] = json!([
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]);
    web["readinessProbe"] = json!({"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1});
    web["resources"] = json!({"limits": {"cpu": "500m", "memory": "64Mi"}});
    let spec = json!({
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 2,
        "initContainers": [busybox("setup", "echo init done")],
        "containers": [web, busybox("sidecar", "exec sleep 3600")],
    });
    pods.create(&PostParams::default(), &pod("web", spec))
        .await
        .unwrap();
    let started = Instant::now();
    let ready = wait_for("the web pod Ready", Duration::from_secs(60), async || {
        let pod = pod_json(&pods, "web").await?;
        (condition(&pod, "Ready") == "True").then_some(pod)
    })
    .await;
    eprintln!("web pod Ready after {:?}", started.elapsed());
    let status = &ready["status"];
    assert_eq!(status["phase"], "Running", "{status}");
    for kind in ["PodScheduled", "Initialized", "ContainersReady"] {
        assert_eq!(condition(&ready, kind), "True", "{kind}: {status}");
    }
    assert_eq!(status["hostIP"], "127.0.0.1");
    assert!(status["startTime"].is_string());
    let pod_ip: Ipv4Addr = status["podIP"].as_str().unwrap().parse().unwrap();
    assert_eq!(pod_ip.octets()[..3], subnet.octets()[..3], "{status}");
    let init = &status["initContainerStatuses"][0];
    assert_eq!(init["name"], "setup");
    assert_eq!(init["state"]["terminated"]["exitCode"], 0, "{init}");
    assert_eq!(init["state"]["terminated"]["reason"], "Completed", "{init}");
    for name in ["web", "sidecar"] {
        let c = container(&ready, name);
        assert_eq!(c["ready"], true, "{c}");
        assert_eq!(c["started"], true, "{c}");
        assert_eq!(c["restartCount"], 0, "{c}");
        assert!(c["state"]["running"]["startedAt"].is_string(), "{c}");
        assert!(
            c["containerID"]
                .as_str()
                .unwrap()
                .starts_with("containerd://"),
            "{c}"
        );
        assert!(c["imageID"].as_str().unwrap().contains("sha256:"), "{c}");
        assert_eq!(c["image"], skiff_testenv::images::BUSYBOX);
    }
    let addr = SocketAddr::from((pod_ip, 8080));
    let reply = tokio::task::spawn_blocking(move || http_get(addr))
        .await
        .unwrap()
        .unwrap();
    assert!(
        reply.contains(&format!("hello from web at {pod_ip}")),
        "{reply}"
    );
    let web_uid = ready["metadata"]["uid"].as_str().unwrap().to_owned();
    let log_dir = config
        .pod_log_root
        .join(format!("default_web_{web_uid}"))
        .join("web");
    assert!(log_dir.join("0.log").exists(), "{}", log_dir.display());

    // A crashing container restarts with a growing count, in CrashLoopBackOff in between.
    let spec = json!({
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 0,
        "hostNetwork": true,
        "containers": [busybox("crash", "echo crashing; exit 1")],
    });
    pods.create(&PostParams::default(), &pod("crash", spec))
        .await
        .unwrap();
    let backoff = wait_for("CrashLoopBackOff", Duration::from_secs(30), async || {
        let pod = pod_json(&pods, "crash").await?;
        let c = container(&pod, "crash").clone();
        (c["state"]["waiting"]["reason"] == "CrashLoopBackOff").then_some(c)
    })
    .await;
    assert_eq!(
        backoff["lastState"]["terminated"]["exitCode"], 1,
        "{backoff}"
    );
    assert!(backoff["restartCount"].as_i64().unwrap() >= 1, "{backoff}");
    wait_for("a second restart", Duration::from_secs(30), async || {
        let pod = pod_json(&pods, "crash").await?;
        let c = container(&pod, "crash");
        (c["restartCount"].as_i64()? >= 2).then_some(())
    })
    .await;
    let crash = pod_json(&pods, "crash").await.unwrap();
    assert_eq!(crash["status"]["phase"], "Running", "{}", crash["status"]);

    // A failing liveness probe restarts its container.
    let mut live = busybox("live", "exec sleep 3600");
    live["livenessProbe"] = json!({
        "exec": {"command": ["cat", "/tmp/healthy"]},
        "periodSeconds": 1, "failureThreshold": 2,
    });
    let spec = json!({
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 1,
        "hostNetwork": true,
        "containers": [live],
    });
    pods.create(&PostParams::default(), &pod("live", spec))
        .await
        .unwrap();
    wait_for("a liveness restart", Duration::from_secs(40), async || {
        let pod = pod_json(&pods, "live").await?;
        let c = container(&pod, "live");
        (c["restartCount"].as_i64()? >= 1).then_some(())
    })
    .await;

    // A restarted kubelet adopts the running containers without restarting them.
    let before = pod_json(&pods, "web").await.unwrap();
    kubelet.stop().await;
    let kubelet = Kubelet::start(&client, &cri, &config);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = wait_for(
        "the web pod Ready again",
        Duration::from_secs(30),
        async || {
            let pod = pod_json(&pods, "web").await?;
            (condition(&pod, "Ready") == "True").then_some(pod)
        },
    )
    .await;
    for name in ["web", "sidecar"] {
        let (b, a) = (container(&before, name), container(&after, name));
        assert_eq!(b["containerID"], a["containerID"], "{name} was restarted");
        assert_eq!(a["restartCount"], 0, "{a}");
    }
    assert_eq!(before["status"]["podIP"], after["status"]["podIP"]);
    assert_eq!(sandboxes_of(&cri, &web_uid).await.len(), 1);

    // Deleting the pod stops it within its grace period; the kubelet deletes the object.
    let deleted = Instant::now();
    pods.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for("the web pod gone", Duration::from_secs(15), async || {
        pods.get_opt("web").await.unwrap().is_none().then_some(())
    })
    .await;
    let took = deleted.elapsed();
    eprintln!("web pod deleted in {took:?}");
    // httpd as PID 1 ignores SIGTERM, so it takes the whole grace period (2 s).
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert!(sandboxes_of(&cri, &web_uid).await.is_empty());
    assert!(
        tokio::task::spawn_blocking(move || http_get(addr))
            .await
            .unwrap()
            .is_err()
    );
    for name in ["crash", "live"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    wait_for("all pods gone", Duration::from_secs(20), async || {
        pods.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;

    kubelet.stop().await;
    drop(control);
    drop(cri);
    drop(containerd);
    drop(bridge);
}
