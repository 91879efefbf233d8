//! Shared by the kubelet tests (root): a real containerd with the reference bridge CNI, an
//! in-process apiserver, a kubelet task, and helpers for pods and their status.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::{Value, json};
use skiff_cri::{Cri, v1};
use skiff_kubelet::Config;
pub use skiff_testenv::Checks;
pub use skiff_testenv::wait::wait_for;
use skiff_testenv::{ContainerRuntime, Containerd, ContainerdConfig};

pub const NODE: &str = "node-k1";

/// The test's files under the target dir, removed on drop.
pub struct Dir(pub PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        // A test that failed midway may leave the kubelet's tmpfs volumes mounted in here:
        // detach them (deepest first) so the directory can go.
        let prefix = self.0.to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| point.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            if let Ok(c) = std::ffi::CString::new(point) {
                // SAFETY: a valid C string; MNT_DETACH has no other preconditions.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The apiserver in this process (stopped with the test's runtime) and a client of it.
pub struct ControlPlane {
    pub client: kube::Client,
    /// An admin kubeconfig for the real kubectl.
    pub kubeconfig: PathBuf,
    _server: skiff_apiserver::testing::ControlPlane,
}

impl ControlPlane {
    pub async fn start(dir: &Path) -> ControlPlane {
        let server = skiff_apiserver::testing::ControlPlane::start(dir, None).await;
        let client =
            kube::Client::try_from(kube::Config::new(server.url.parse().unwrap())).unwrap();
        ControlPlane {
            client,
            kubeconfig: server.kubeconfig.clone(),
            _server: server,
        }
    }
}

/// A running kubelet task; stopped (containers left running) on `stop` or drop.
pub struct Kubelet {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Kubelet {
    pub fn start(client: &kube::Client, cri: &Cri, config: &Config) -> Kubelet {
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

    pub async fn stop(mut self) {
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

pub async fn pod_json(pods: &Api<Pod>, name: &str) -> Option<Value> {
    let pod = pods.get_opt(name).await.unwrap()?;
    Some(serde_json::to_value(pod).unwrap())
}

/// Waits up to `timeout` for every pod in `pods` to be gone from the API.
pub async fn all_gone(pods: &Api<Pod>, timeout: Duration) {
    wait_for("all pods gone", timeout, async || {
        let left: Vec<_> = pods
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("left: {left:?}"))
        }
    })
    .await;
}

/// Waits (up to a minute) for pod `name` to turn Ready; its JSON then.
pub async fn ready(pods: &Api<Pod>, name: &str) -> Value {
    wait_for_pod(pods, name, "Ready", Duration::from_secs(60), |pod| {
        condition(pod, "Ready") == "True"
    })
    .await
}

pub fn condition(pod: &Value, kind: &str) -> String {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

pub fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

/// A pod bound to [`NODE`] in `default`, built the way the tests write them.
pub struct PodBuilder {
    name: String,
    labels: Value,
    spec: Value,
}

impl PodBuilder {
    /// A pod named `name` with no containers yet.
    pub fn new(name: &str) -> PodBuilder {
        PodBuilder {
            name: name.to_owned(),
            labels: json!({}),
            spec: json!({"containers": []}),
        }
    }

    /// Adds the label `key=value`.
    pub fn label(mut self, key: &str, value: &str) -> PodBuilder {
        self.labels[key] = json!(value);
        self
    }

    /// Adds an app container.
    pub fn container(mut self, container: ContainerBuilder) -> PodBuilder {
        self.push("containers", container.0);
        self
    }

    /// Adds an init container (they run in the order added).
    pub fn init_container(mut self, container: ContainerBuilder) -> PodBuilder {
        self.push("initContainers", container.0);
        self
    }

    /// `terminationGracePeriodSeconds`.
    pub fn grace_period(self, seconds: i64) -> PodBuilder {
        self.set("terminationGracePeriodSeconds", json!(seconds))
    }

    /// `restartPolicy` (Always, OnFailure, Never).
    pub fn restart_policy(self, policy: &str) -> PodBuilder {
        self.set("restartPolicy", json!(policy))
    }

    /// On the node's network namespace (probes then reach the test's own 127.0.0.1).
    pub fn host_network(self) -> PodBuilder {
        self.set("hostNetwork", json!(true))
    }

    /// Adds a volume (a `Volume` as JSON: `{"name": ..., "emptyDir": {}}`).
    pub fn volume(mut self, volume: Value) -> PodBuilder {
        self.push("volumes", volume);
        self
    }

    /// Adds a hostPath volume of an existing directory.
    pub fn host_path_volume(self, name: &str, path: &Path) -> PodBuilder {
        self.volume(json!({"name": name, "hostPath": {"path": path, "type": "Directory"}}))
    }

    /// Any other spec field (dnsPolicy, dnsConfig, securityContext, imagePullSecrets...).
    pub fn set(mut self, field: &str, value: Value) -> PodBuilder {
        self.spec[field] = value;
        self
    }

    fn push(&mut self, list: &str, item: Value) {
        match self.spec[list].as_array_mut() {
            Some(items) => items.push(item),
            None => self.spec[list] = json!([item]),
        }
    }

    /// The Pod.
    pub fn build(self) -> Pod {
        let mut spec = self.spec;
        spec["nodeName"] = json!(NODE);
        let mut metadata = json!({"name": self.name, "namespace": "default"});
        if self.labels.as_object().is_some_and(|l| !l.is_empty()) {
            metadata["labels"] = self.labels;
        }
        serde_json::from_value(json!({"metadata": metadata, "spec": spec})).unwrap()
    }

    /// Creates the Pod through `pods`.
    pub async fn create(self, pods: &Api<Pod>) -> Pod {
        pods.create(&kube::api::PostParams::default(), &self.build())
            .await
            .unwrap()
    }
}

/// A container of a [`PodBuilder`].
pub struct ContainerBuilder(Value);

impl ContainerBuilder {
    /// The busybox image (present on the node) running `sh -c script`.
    pub fn busybox(name: &str, script: &str) -> ContainerBuilder {
        ContainerBuilder(json!({
            "name": name,
            "image": skiff_testenv::images::BUSYBOX,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", script],
        }))
    }

    /// `readinessProbe` (a `Probe` as JSON).
    pub fn readiness(self, probe: Value) -> ContainerBuilder {
        self.set("readinessProbe", probe)
    }

    /// `livenessProbe`.
    pub fn liveness(self, probe: Value) -> ContainerBuilder {
        self.set("livenessProbe", probe)
    }

    /// `lifecycle` (postStart/preStop handlers).
    pub fn lifecycle(self, lifecycle: Value) -> ContainerBuilder {
        self.set("lifecycle", lifecycle)
    }

    /// `env` (a list of `EnvVar`s).
    pub fn env(self, env: Value) -> ContainerBuilder {
        self.set("env", env)
    }

    /// `resources` (requests and limits).
    pub fn resources(self, resources: Value) -> ContainerBuilder {
        self.set("resources", resources)
    }

    /// Mounts volume `volume` at `path`.
    pub fn mount(mut self, volume: &str, path: &str) -> ContainerBuilder {
        let mount = json!({"name": volume, "mountPath": path});
        match self.0["volumeMounts"].as_array_mut() {
            Some(mounts) => mounts.push(mount),
            None => self.0["volumeMounts"] = json!([mount]),
        }
        self
    }

    /// Any other container field (image, securityContext, ports...).
    pub fn set(mut self, field: &str, value: Value) -> ContainerBuilder {
        self.0[field] = value;
        self
    }
}

/// Waits up to `timeout` for pod `name` to satisfy `done` (given its JSON); returns that JSON.
/// The timeout's message names `what` and the pod's last status.
pub async fn wait_for_pod(
    pods: &Api<Pod>,
    name: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(
        &format!("pod {name}: {what}"),
        timeout,
        async || match pod_json(pods, name).await {
            Some(pod) if done(&pod) => Ok(pod),
            Some(pod) => Err(format!("status {}", pod["status"])),
            None => Err("no such pod".to_owned()),
        },
    )
    .await
}

/// Waits up to 30 s until `container` of pod `name` waits with `reason`; its status then.
pub async fn waiting(pods: &Api<Pod>, (name, container_name): (&str, &str), reason: &str) -> Value {
    let pod = wait_for_pod(pods, name, reason, Duration::from_secs(30), |pod| {
        container(pod, container_name)["state"]["waiting"]["reason"] == reason
    })
    .await;
    container(&pod, container_name).clone()
}

/// Waits up to `timeout` until `container` of pod `name` has restarted `at_least` times; the
/// pod's JSON then.
pub async fn restarted(
    pods: &Api<Pod>,
    (name, container_name): (&str, &str),
    at_least: i64,
    timeout: Duration,
) -> Value {
    let what = format!("{container_name} restarted {at_least} times");
    wait_for_pod(pods, name, &what, timeout, |pod| {
        restarts(pod, container_name) >= at_least
    })
    .await
}

/// Waits up to 30 s until the runtime holds no pod sandbox at all.
pub async fn sandboxes_gone(cri: &Cri) {
    wait_for("every sandbox gone", Duration::from_secs(30), async || {
        let left = cri.list_pod_sandbox(None).await.unwrap();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
}

/// Waits up to `timeout` for pod `name` to be gone from the API.
pub async fn gone(pods: &Api<Pod>, name: &str, timeout: Duration) {
    wait_for(&format!("pod {name} gone"), timeout, async || {
        match pods.get_opt(name).await.unwrap() {
            None => Ok(()),
            Some(pod) => Err(format!("{:?}", pod.status)),
        }
    })
    .await
}

/// The container's restartCount (0 before it has a status).
pub fn restarts(pod: &Value, name: &str) -> i64 {
    container(pod, name)["restartCount"].as_i64().unwrap_or(0)
}

pub async fn sandboxes_of(cri: &Cri, uid: &str) -> Vec<v1::PodSandbox> {
    let filter = v1::PodSandboxFilter {
        label_selector: [("io.kubernetes.pod.uid".to_owned(), uid.to_owned())].into(),
        ..Default::default()
    };
    cri.list_pod_sandbox(Some(filter)).await.unwrap()
}

/// How many [`Env`]s this test binary started.
static ENVS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Everything a kubelet test runs against; torn down in order on drop.
pub struct Env {
    pub client: kube::Client,
    pub control: ControlPlane,
    pub cri: Cri,
    pub containerd: Containerd,
    pub config: Config,
    pub subnet: Ipv4Addr,
    pub bridge: skiff_testenv::bridge::Bridge,
    pub dir: Dir,
}

impl Env {
    /// containerd (with the test images), the apiserver, and a kubelet config for them, all
    /// under the target dir in `<name>-<pid>`.
    pub async fn start(name: &str) -> Env {
        Env::start_with(name, None).await
    }

    /// [`Env::start`] with `mirror` (a [`skiff_testenv::Registry::address`]) as containerd's
    /// docker.io.
    pub async fn start_with(name: &str, mirror: Option<&str>) -> Env {
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
        let dir = Dir(tmp.join(format!("{name}-{pid}")));
        // Tests of one binary run in parallel: each gets a bridge and subnet of its own (one
        // dropping its bridge must not cut off another's pods).
        let seq = ENVS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let slot = pid * 8 + seq % 8;
        let subnet = Ipv4Addr::new(10, 210 + (slot % 40) as u8, (slot / 40 % 256) as u8, 0);
        let (mut containerd_config, bridge) =
            ContainerdConfig::on_bridge(&dir.0, &format!("skkl-{pid}-{seq}"), subnet).unwrap();
        containerd_config.docker_io_mirror = mirror.map(str::to_owned);
        let ContainerRuntime { cri, containerd } =
            ContainerRuntime::start(&containerd_config, &tmp.join("images"))
                .await
                .unwrap();
        let control = ControlPlane::start(&dir.0).await;
        let client = control.client.clone();
        let mut config = Config::new(NODE);
        config.addresses = vec![("InternalIP".into(), "127.0.0.1".into())];
        // Tests run in parallel: each kubelet API on a port of its own (on the InternalIP,
        // loopback here, as by default).
        config.server_port = 0;
        config.pod_log_root = dir.0.join("pods");
        config.root_dir = dir.0.join("kubelet");
        config.cgroup_parent = containerd.cgroup_parent().to_owned();
        config.ephemeral_storage_dir = dir.0.clone();
        Env {
            client,
            control,
            cri,
            containerd,
            config,
            subnet,
            bridge,
            dir,
        }
    }
}

/// A gRPC health service (`grpc.health.v1.Health/Check`) on 127.0.0.1, answering with
/// `status` (1 SERVING, 2 NOT_SERVING) for any service name; stopped on drop.
pub struct GrpcHealth {
    pub port: u16,
    pub status: std::sync::Arc<std::sync::atomic::AtomicI32>,
    task: tokio::task::JoinHandle<()>,
}

impl GrpcHealth {
    pub async fn start() -> GrpcHealth {
        use std::sync::atomic::{AtomicI32, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = std::sync::Arc::new(AtomicI32::new(1));
        let shared = status.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let Ok(mut connection) = h2::server::handshake(socket).await else {
                        return;
                    };
                    while let Some(Ok((request, mut respond))) = connection.accept().await {
                        let status = shared.load(Ordering::Relaxed);
                        tokio::spawn(async move {
                            let mut body = request.into_body();
                            while let Some(Ok(chunk)) = body.data().await {
                                let _ = body.flow_control().release_capacity(chunk.len());
                            }
                            let head = http::Response::builder()
                                .header("content-type", "application/grpc")
                                .body(())
                                .unwrap();
                            let Ok(mut send) = respond.send_response(head, false) else {
                                return;
                            };
                            // One length-prefixed message: field 1 (status) as a varint.
                            let message = [0u8, 0, 0, 0, 2, 0x08, status as u8];
                            let _ = send.send_data(bytes::Bytes::copy_from_slice(&message), false);
                            let mut trailers = http::HeaderMap::new();
                            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                            let _ = send.send_trailers(trailers);
                        });
                    }
                });
            }
        });
        GrpcHealth { port, status, task }
    }

    pub fn set(&self, status: i32) {
        self.status
            .store(status, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for GrpcHealth {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub use skiff_testenv::kubectl_path;

/// Runs the real kubectl against `env`'s apiserver: (success, stdout, stderr).
pub async fn kubectl(env: &Env, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(kubectl_path())
        .args(args)
        .env("KUBECONFIG", &env.control.kubeconfig)
        .env("HOME", &env.dir.0)
        .kill_on_drop(true)
        .output()
        .await
        .expect("running kubectl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An HTTP/1.0 GET of `path` from the kubelet API at `address` over HTTPS (its certificate
/// accepted as the apiserver accepts it): (status code, body).
pub async fn http_get_path(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(address.ip().into());
    let mut stream = skiff_unverified_tls::connector()
        .connect(name, tcp)
        .await
        .unwrap();
    http10_get(&mut stream, path).await
}

/// GET `path` as HTTP/1.0 over `stream` (the body ends with the connection): status and body.
pub async fn http10_get(
    stream: &mut (impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin),
    path: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut reply))
        .await
        .expect("the reply in time")
        .unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

/// The kubelet API's address, from the Node's `daemonEndpoints` once it is registered.
pub async fn kubelet_address(client: &kube::Client) -> std::net::SocketAddr {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let port = wait_for("the kubelet port", Duration::from_secs(20), async || {
        let port = nodes
            .get_opt(NODE)
            .await
            .unwrap()?
            .status?
            .daemon_endpoints?
            .kubelet_endpoint?
            .port;
        (port > 0).then_some(port)
    })
    .await;
    std::net::SocketAddr::from(([127, 0, 0, 1], port as u16))
}
