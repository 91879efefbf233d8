//! `skiff agent` (the eBPF service proxy) against a real apiserver, as separate processes
//! (root): Services and EndpointSlices created through the API become connections to their
//! backends, and killing the agent with SIGKILL and starting it again fails no request, even
//! with an endpoint change made while it was down.
//!
//! The test process moves itself into a cgroup of its own, which the agent's socket-level
//! load balancer is attached to; the "pods" are servers on loopback addresses. Every pin,
//! cgroup and process is removed at the end.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use skiff_apiserver::testing::ControlPlane;
use skiff_ebpf::lb;
use skiff_netlab::netns::End;
use skiff_netlab::{Cgroup, NetNs};
use skiff_testenv::Checks;
use skiff_testenv::wait::wait_for;

/// The agent process; killed (by PID) on drop, and its pinned dataplane removed.
struct Agent {
    child: Option<Child>,
    pins: PathBuf,
}

impl Agent {
    fn start(&mut self, kubeconfig: &Path, cgroup: &Path, health: SocketAddr) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_skiff"));
        command.args(["agent", "--pod-network=false"]);
        self.spawn(command, "node-1", kubeconfig, cgroup, health);
    }

    /// Starts `command` (the agent binary, maybe placed in a namespace, with extra flags) as
    /// node `node`.
    fn spawn(
        &mut self,
        mut command: Command,
        node: &str,
        kubeconfig: &Path,
        cgroup: &Path,
        health: SocketAddr,
    ) {
        let child = command
            .args(["--hostname-override", node])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cgroup-root")
            .arg(cgroup)
            .arg("--bpf-pin-dir")
            .arg(&self.pins)
            .arg("--healthz-bind-address")
            .arg(health.to_string())
            .arg("--metrics-bind-address")
            .arg("127.0.0.1:0")
            .env("RUST_LOG", "info")
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.pins);
    }
}

/// A TCP "pod" answering each connection with its name.
fn backend(listener: TcpListener, name: &'static str) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.write_all(name.as_bytes());
        }
    });
}

fn ask(to: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut name = String::new();
    stream.read_to_string(&mut name)?;
    Ok(name)
}

fn http_status(to: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_millis(500)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls a blocking `check` for up to 30 s (call it on a blocking thread).
fn wait_blocking(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn slice(port: u16, addresses: &[&str]) -> EndpointSlice {
    let endpoints: Vec<_> = addresses
        .iter()
        .map(|a| json!({ "addresses": [a], "nodeName": "node-1" }))
        .collect();
    serde_json::from_value(json!({
        "metadata": { "name": "web-1", "namespace": "default",
                      "labels": { "kubernetes.io/service-name": "web" } },
        "addressType": "IPv4",
        "ports": [{ "name": "http", "port": port, "protocol": "TCP" }],
        "endpoints": endpoints,
    }))
    .unwrap()
}

/// Reads `out` until `done` finds what it wants in all read so far, for up to 20 s; panics
/// naming `what` when the stream ends or the time is up.
async fn read_until<T>(
    out: &mut tokio::process::ChildStdout,
    what: &str,
    mut done: impl FnMut(&str) -> Option<T>,
) -> T {
    use tokio::io::AsyncReadExt;
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(found) = done(&seen) {
                return found;
            }
            let mut buf = [0u8; 256];
            let n = out.read(&mut buf).await.unwrap();
            assert!(n > 0, "{what} ended: {seen:?}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} showed {seen:?}"))
}

/// Panics unless the test runs as root.
fn require_root() {
    assert_eq!(
        // SAFETY: geteuid(2) has no preconditions.
        unsafe { libc::geteuid() },
        0,
        "the agent tests need root (run them through `cargo xtask test ebpf`)"
    );
}

/// A client of the test's apiserver.
fn client(control: &ControlPlane) -> kube::Client {
    kube::Client::try_from(kube::Config::new(control.url.parse().unwrap())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_programs_services_and_survives_sigkill() {
    require_root();
    let id = std::process::id();
    let dir = tempfile::tempdir().unwrap();

    let control = ControlPlane::start(dir.path(), None).await;
    let (kubeconfig, client) = (control.kubeconfig.clone(), client(&control));

    // Two "pods" on one port, as an EndpointSlice port applies to all its endpoints.
    let a = TcpListener::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).unwrap();
    let port = a.local_addr().unwrap().port();
    let b = TcpListener::bind((Ipv4Addr::new(127, 0, 0, 3), port)).unwrap();
    backend(a, "a");
    backend(b, "b");

    let cgroup = Cgroup::create("agent").unwrap();
    let joined = cgroup.join().unwrap();
    let mut agent = Agent {
        child: None,
        pins: PathBuf::from(format!("/sys/fs/bpf/skiff-test-agent-{id}")),
    };
    let health = SocketAddr::from(([127, 0, 0, 1], free_port()));
    agent.start(&kubeconfig, cgroup.path(), health);

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": { "name": "web", "namespace": "default" },
        "spec": { "selector": { "app": "web" },
                  "ports": [{ "name": "http", "port": 80, "targetPort": port }] },
    }))
    .unwrap();
    let svc = services.create(&PostParams::default(), &svc).await.unwrap();
    let cluster_ip: Ipv4Addr = svc.spec.unwrap().cluster_ip.unwrap().parse().unwrap();
    let service = SocketAddr::from((cluster_ip, 80));
    slices
        .create(
            &PostParams::default(),
            &slice(port, &["127.0.0.2", "127.0.0.3"]),
        )
        .await
        .unwrap();

    tokio::task::spawn_blocking(move || {
        wait_blocking("the agent's health", || {
            http_status(health, "/healthz") == Some(200)
        });
        wait_blocking("the service to answer", || ask(service).is_ok());
        // The `kubernetes` Service leads to the apiserver (its EndpointSlice is the
        // apiserver's own).
        let api = SocketAddr::from(([10, 96, 0, 1], 443));
        wait_blocking("the kubernetes Service", || {
            http_status(api, "/version") == Some(200)
        });
    })
    .await
    .unwrap();
    assert_eq!(http_status(health, "/livez"), Some(200));

    // Continuous traffic from here on.
    let running = Arc::new(AtomicBool::new(true));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let traffic = {
        let (running, ok, failed) = (running.clone(), ok.clone(), failed.clone());
        std::thread::spawn(move || {
            let mut last = String::new();
            while running.load(Ordering::Relaxed) {
                match ask(service) {
                    Ok(name) if !name.is_empty() => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        last = name;
                    }
                    Ok(_) | Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            last
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // SIGKILL the agent; traffic keeps flowing through the pinned dataplane.
    agent.kill();
    let before = ok.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        ok.load(Ordering::Relaxed) > before,
        "connections succeed while no agent runs"
    );
    // An endpoint change while the agent is away: backend b goes.
    slices
        .replace("web-1", &PostParams::default(), &{
            let mut s = slice(port, &["127.0.0.2"]);
            s.metadata.resource_version =
                slices.get("web-1").await.unwrap().metadata.resource_version;
            s
        })
        .await
        .unwrap();
    agent.start(&kubeconfig, cgroup.path(), health);
    tokio::task::spawn_blocking(move || {
        wait_blocking("the restarted agent's health", || {
            http_status(health, "/healthz") == Some(200)
        });
        // The restarted agent catches up: only a answers.
        wait_blocking("the change made while the agent was down", || {
            (0..20).all(|_| ask(service).is_ok_and(|n| n == "a"))
        });
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.store(false, Ordering::Relaxed);
    let last = tokio::task::spawn_blocking(move || traffic.join().unwrap())
        .await
        .unwrap();
    assert_eq!(last, "a");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed across the restart ({} succeeded)",
        ok.load(Ordering::Relaxed)
    );

    // Deleting the Service removes its frontend from the maps.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let pins = skiff_ebpf::PinDir::new(&agent.pins);
    tokio::task::spawn_blocking(move || {
        let maps = lb::LbMaps::open(&pins).unwrap();
        wait_blocking("the frontend's removal", || {
            // (The `kubernetes` Service's frontend stays.)
            lb::entries::<lb::types::lb4_key, lb::types::lb4_service>(&maps.services)
                .iter()
                .all(|(key, _)| lb::addr_of(key.address) != cluster_ip)
        });
    })
    .await
    .unwrap();

    drop(agent);
    drop(joined);
    drop(cgroup);
    control.stop().await;
}

/// The agent's pod network against the API (root), with the agent inside a "node" network
/// namespace: it writes its `--pod-cidr` into its Node, reports the network available, writes
/// the CNI config, and follows the other Nodes: a route to each one's podCIDR via its address
/// while it exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_sets_up_the_pod_network() {
    use k8s_openapi::api::core::v1::Node;

    require_root();
    let id = std::process::id();
    let dir = tempfile::tempdir().unwrap();
    let node = NetNs::create("agent-node").unwrap();
    // The node's uplink: a veth to the (silent) rest of the underlay.
    let underlay = NetNs::create("agent-underlay").unwrap();
    skiff_netlab::netns::veth(
        End {
            ns: &node,
            name: "ul0",
            addresses: &["192.168.79.1/24"],
        },
        End {
            ns: &underlay,
            name: "ul0",
            addresses: &[],
        },
    )
    .unwrap();
    // The agent runs inside `node`: it reaches the apiserver on that namespace's loopback.
    let inside = node
        .within(|| std::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap()
        .unwrap();
    let control = ControlPlane::start(dir.path(), Some(inside)).await;
    let cgroup = Cgroup::create("agent-net").unwrap();
    let mut agent = Agent {
        child: None,
        pins: PathBuf::from(format!("/sys/fs/bpf/skiff-test-agent-net-{id}")),
    };
    let conf_dir = dir.path().join("net.d");
    let mut command = node.command(env!("CARGO_BIN_EXE_skiff")).unwrap();
    command
        .args(["agent", "--pod-cidr", "10.247.1.0/24"])
        .args([
            "--cluster-cidr",
            "10.247.0.0/16",
            "--node-ip",
            "192.168.79.1",
        ])
        .args(["--pod-network-interfaces", "ul0"])
        .arg("--cni-conf-dir")
        .arg(&conf_dir)
        .arg("--cni-bin-dir")
        .arg(dir.path().join("bin"))
        .arg("--cni-data-dir")
        .arg(dir.path().join("cni"));
    let health = SocketAddr::from(([127, 0, 0, 1], free_port()));
    agent.spawn(
        command,
        "node-net",
        &control.kubeconfig,
        cgroup.path(),
        health,
    );

    let nodes: Api<Node> = Api::all(client(&control));
    let registered = wait_for("the Node ready", Duration::from_secs(30), async || {
        let found = nodes.get_opt("node-net").await.unwrap();
        let ready = found.as_ref().is_some_and(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "NetworkUnavailable" && c.status == "False")
                })
        });
        match found {
            Some(node) if ready => Ok(node),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let mut checks = Checks::new();
    checks.run("the Node's podCIDR and address", || {
        let spec = registered.spec.unwrap();
        assert_eq!(spec.pod_cidr.as_deref(), Some("10.247.1.0/24"));
        let addresses = registered.status.unwrap().addresses.unwrap();
        assert!(
            addresses
                .iter()
                .any(|a| a.type_ == "InternalIP" && a.address == "192.168.79.1")
        );
    });
    checks.run("the CNI config", || {
        let conflist: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(conf_dir.join("10-skiff.conflist")).unwrap(),
        )
        .unwrap();
        assert_eq!(conflist["plugins"][0]["type"], "skiff-cni");
        assert_eq!(conflist["plugins"][0]["podCIDR"], "10.247.1.0/24");
    });

    // Another node joins, then leaves: its pods' route comes and goes.
    let peer: Node = serde_json::from_value(json!({
        "metadata": { "name": "node-peer" },
        "spec": { "podCIDR": "10.247.2.0/24" },
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &peer).await.unwrap();
    let status = json!({ "status": { "addresses": [
        { "type": "InternalIP", "address": "192.168.79.2" } ] } });
    nodes
        .patch_status(
            "node-peer",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(status),
        )
        .await
        .unwrap();
    let route = |node: &NetNs| {
        let out = node
            .run("ip", &["-4", "route", "show", "10.247.2.0/24"])
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let node = Arc::new(node);
    let ns = node.clone();
    tokio::task::spawn_blocking(move || {
        wait_blocking("the route to node-peer's pods", || {
            route(&ns).starts_with("10.247.2.0/24 via 192.168.79.2")
        })
    })
    .await
    .unwrap();
    nodes
        .delete("node-peer", &DeleteParams::default())
        .await
        .unwrap();
    let ns = node.clone();
    tokio::task::spawn_blocking(move || {
        wait_blocking("the route's removal", || route(&ns).is_empty())
    })
    .await
    .unwrap();

    drop(agent);
    drop(cgroup);
    control.stop().await;
    checks.finish();
}

/// The node half of the seed's story with every part real (root): `skiff agent` with the pod
/// network and the kubelet, a real containerd running pods through `skiff-cni` (which the agent
/// installs and configures), and a Pod created through the API: it runs, gets an address from
/// the node's podCIDR, serves on it, reports Ready, and is gone after deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_runs_a_pod_on_its_own_network() {
    use k8s_openapi::api::core::v1::Pod;
    use skiff_testenv::images::{self, Image};
    use skiff_testenv::{ContainerRuntime, ContainerdConfig, Ready, wait_ready};

    require_root();
    let id = std::process::id();
    let cni_bin = Path::new(env!("CARGO_BIN_EXE_skiff")).with_file_name("skiff-cni");
    assert!(
        cni_bin.exists(),
        "{} is missing: build it first (`cargo build -p skiff-cni`; `cargo xtask test` does)",
        cni_bin.display()
    );
    let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tempfile::tempdir_in(target_tmp).unwrap();
    let control = ControlPlane::start(dir.path(), None).await;
    let pod_cidr = format!("10.248.{}.0/24", id % 250);

    // containerd reads the CNI config the agent writes and runs the plugin the agent installs:
    // its network is ready only once the agent runs.
    let (bin_dir, conf_dir) = (dir.path().join("cni-bin"), dir.path().join("net.d"));
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink("/usr/lib/cni/loopback", bin_dir.join("loopback")).unwrap();
    let runtime = ContainerRuntime::start_with(
        &ContainerdConfig::new(&dir.path().join("containerd"), &bin_dir, &conf_dir),
        &target_tmp.join("images"),
        &[Image::Pause, Image::Busybox],
        Ready::Runtime,
    )
    .await
    .unwrap();
    let containerd = &runtime.containerd;

    // A static pod: its manifest in the directory the agent's kubelet reads.
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("sleeper.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sleeper\nspec:\n  \
             terminationGracePeriodSeconds: 0\n  containers:\n  - name: sleep\n    \
             image: {}\n    imagePullPolicy: IfNotPresent\n    command: [sleep, '3600']\n",
            images::BUSYBOX
        ),
    )
    .unwrap();
    // The socket LB covers this containerd's pods: its cgroup (in the unified hierarchy, where
    // runc puts them too) is the agent's cgroup root. containerd's guard removes it.
    let pods_cgroup = Path::new(skiff_netlab::cgroup::CGROUP2)
        .join(containerd.cgroup_parent().trim_start_matches('/'));
    std::fs::create_dir_all(&pods_cgroup).unwrap();
    let mut agent = Agent {
        child: None,
        pins: PathBuf::from(format!("/sys/fs/bpf/skiff-test-agent-pods-{id}")),
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_skiff"));
    command
        .args(["agent", "--pod-cidr", &pod_cidr])
        .args(["--cluster-cidr", "10.248.0.0/16", "--masquerade=false"])
        .arg("--cni-conf-dir")
        .arg(&conf_dir)
        .arg("--cni-bin-dir")
        .arg(&bin_dir)
        .arg("--cni-data-dir")
        .arg(dir.path().join("cni-data"))
        .arg("--container-runtime-endpoint")
        .arg(containerd.socket())
        .arg("--pod-log-root")
        .arg(dir.path().join("pod-logs"))
        .arg("--pod-manifest-path")
        .arg(&manifests)
        .arg("--root-dir")
        .arg(dir.path().join("kubelet"))
        .args([
            "--node-ip",
            "127.0.0.1",
            "--kubelet-bind-address",
            "127.0.0.1:0",
        ])
        .args(["--cgroup-parent", containerd.cgroup_parent()]);
    let health = SocketAddr::from(([127, 0, 0, 1], free_port()));
    agent.spawn(
        command,
        "node-pods",
        &control.kubeconfig,
        &pods_cgroup,
        health,
    );
    wait_ready(&runtime.cri, Duration::from_secs(20))
        .await
        .unwrap();

    // Everything below shares this one agent, containerd and apiserver: each behaviour's
    // checks run and are reported together.
    let mut checks = Checks::new();
    let pods: Api<Pod> = Api::namespaced(client(&control), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "web", "namespace": "default" },
        "spec": {
            "nodeName": "node-pods",
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "httpd",
                "image": images::BUSYBOX,
                "imagePullPolicy": "IfNotPresent",
                "command": ["httpd", "-f", "-p", "8080", "-h", "/"],
                "readinessProbe": { "tcpSocket": { "port": 8080 }, "periodSeconds": 1 },
            }],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    // The pod everything else uses: a hard failure when it never gets Ready.
    let ip: Ipv4Addr = wait_for("the pod Ready", Duration::from_secs(60), async || {
        let status = pods.get("web").await.unwrap().status.unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        match status.pod_ip.as_deref() {
            Some(ip) if ready => Ok(ip.parse().unwrap()),
            _ => Err(format!("{status:?}")),
        }
    })
    .await;
    let network = pod_cidr.trim_end_matches(".0/24");
    checks.run("the pod's address is from the podCIDR", || {
        assert!(
            ip.to_string().starts_with(&format!("{network}.")),
            "{ip} outside {pod_cidr}"
        );
    });
    checks
        .run_async("the pod serves on its address", async {
            let reply = tokio::task::spawn_blocking(move || {
                skiff_testenv::http_get(SocketAddr::from((ip, 8080)))
            })
            .await
            .unwrap()
            .unwrap();
            assert!(reply.starts_with("HTTP/1."), "{reply}");
        })
        .await;

    checks
        .run_async(
            "the static pod runs as the mirror pod sleeper-node-pods",
            async {
                wait_for(
                    "the static pod Running",
                    Duration::from_secs(60),
                    async || {
                        let phase = pods
                            .get_opt("sleeper-node-pods")
                            .await
                            .unwrap()
                            .and_then(|p| p.status?.phase);
                        match phase.as_deref() {
                            Some("Running") => Ok(()),
                            _ => Err(format!("{phase:?}")),
                        }
                    },
                )
                .await
            },
        )
        .await;

    // `kubectl logs`: the apiserver proxies the agent's kubelet, which reads containerd's
    // CRI-format files.
    let talker: Pod = serde_json::from_value(json!({
        "metadata": { "name": "talker", "namespace": "default" },
        "spec": {
            "nodeName": "node-pods",
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "talk",
                "image": images::BUSYBOX,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "echo line-one; echo line-two; echo line-three; sleep 3600"],
            }],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &talker).await.unwrap();
    let kubectl_command = |args: &[&str]| {
        let mut command = tokio::process::Command::new(skiff_testenv::kubectl_path());
        command
            .args(args)
            .env("KUBECONFIG", &control.kubeconfig)
            .env("HOME", dir.path())
            .kill_on_drop(true);
        command
    };
    let kubectl = async |args: &[&str]| {
        let out = kubectl_command(args).output().await.unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    checks
        .run_async("kubectl logs", async {
            wait_for(
                "kubectl logs to show the lines",
                Duration::from_secs(60),
                async || {
                    let (ok, stdout, stderr) = kubectl(&["logs", "talker"]).await;
                    if ok && stdout == "line-one\nline-two\nline-three\n" {
                        Ok(())
                    } else {
                        Err(format!("{stdout:?} {stderr:?}"))
                    }
                },
            )
            .await;
        })
        .await;
    checks
        .run_async("kubectl logs --tail", async {
            let (ok, stdout, stderr) = kubectl(&["logs", "talker", "--tail=1"]).await;
            assert!(ok, "{stderr}");
            assert_eq!(stdout, "line-three\n");
        })
        .await;
    checks
        .run_async("kubectl logs -c --timestamps", async {
            let (ok, stdout, stderr) =
                kubectl(&["logs", "talker", "-c", "talk", "--timestamps"]).await;
            assert!(ok, "{stderr}");
            assert_eq!(stdout.lines().count(), 3, "{stdout}");
            assert!(
                stdout.lines().all(|l| l.contains("Z line-")),
                "no timestamps: {stdout}"
            );
        })
        .await;
    checks
        .run_async("kubectl logs --previous and of a missing pod", async {
            let (ok, _, stderr) = kubectl(&["logs", "talker", "--previous"]).await;
            assert!(
                !ok && stderr.contains("previous terminated container"),
                "{stderr}"
            );
            let (ok, _, stderr) = kubectl(&["logs", "nope"]).await;
            assert!(!ok && stderr.contains("not found"), "{stderr}");
        })
        .await;
    checks
        .run_async("kubectl logs -f streams", async {
            let mut follow = kubectl_command(&["logs", "-f", "talker"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdout = follow.stdout.take().unwrap();
            read_until(&mut stdout, "kubectl logs -f", |seen| {
                seen.ends_with("line-three\n").then_some(())
            })
            .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(
                follow.try_wait().unwrap().is_none(),
                "kubectl logs -f stopped following"
            );
            follow.kill().await.unwrap();
        })
        .await;
    pods.delete("talker", &DeleteParams::default())
        .await
        .unwrap();

    // `kubectl exec` and `port-forward`: upgraded connections through the apiserver and the
    // kubelet to containerd's streaming server.
    checks
        .run_async("kubectl exec", async {
            let (ok, stdout, stderr) =
                kubectl(&["exec", "web", "--", "echo", "hello from", "exec"]).await;
            assert!(ok, "kubectl exec: {stderr}");
            assert_eq!(stdout, "hello from exec\n");
            let (ok, _, stderr) = kubectl(&["exec", "web", "--", "sh", "-c", "exit 3"]).await;
            assert!(!ok && stderr.contains("exit code 3"), "{stderr}");
        })
        .await;
    checks
        .run_async("kubectl exec -i", async {
            let mut cat = kubectl_command(&["exec", "-i", "web", "--", "tr", "a-z", "A-Z"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            {
                use tokio::io::AsyncWriteExt;
                let mut stdin = cat.stdin.take().unwrap();
                stdin.write_all(b"through stdin\n").await.unwrap();
            }
            let out = tokio::time::timeout(Duration::from_secs(30), cat.wait_with_output())
                .await
                .expect("kubectl exec -i never ended")
                .unwrap();
            assert!(
                out.status.success(),
                "kubectl exec -i: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), "THROUGH STDIN\n");
        })
        .await;
    // A pod (the static one) reaches another through a Service's ClusterIP: the socket LB on
    // the pods' cgroup translates the pod's connect() (the EndpointSlice written by hand: no
    // endpoints controller yet).
    let services: Api<Service> = Api::namespaced(client(&control), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": { "name": "web", "namespace": "default" },
        "spec": { "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] },
    }))
    .unwrap();
    let svc = services.create(&PostParams::default(), &svc).await.unwrap();
    let cluster_ip = svc.spec.unwrap().cluster_ip.unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(client(&control), "default");
    slices
        .create(&PostParams::default(), &slice(8080, &[&ip.to_string()]))
        .await
        .unwrap();
    let request = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {cluster_ip} 80");
    checks
        .run_async("a pod reaches another through a ClusterIP", async {
            wait_for(
                &format!("the static pod to reach web through {cluster_ip}:80"),
                Duration::from_secs(20),
                async || {
                    let (ok, stdout, stderr) =
                        kubectl(&["exec", "sleeper-node-pods", "--", "sh", "-c", &request]).await;
                    if ok && stdout.starts_with("HTTP/1.") {
                        Ok(())
                    } else {
                        Err(format!("{stdout:?} {stderr:?}"))
                    }
                },
            )
            .await;
        })
        .await;
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();

    checks
        .run_async("kubectl exec into a missing container", async {
            let (ok, _, stderr) = kubectl(&["exec", "web", "-c", "nope", "--", "true"]).await;
            assert!(!ok && stderr.contains("nope"), "{stderr}");
        })
        .await;

    checks
        .run_async("kubectl port-forward", async {
            let mut forward =
                kubectl_command(&["port-forward", "pod/web", ":8080", "--address", "127.0.0.1"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
            let mut out = forward.stdout.take().unwrap();
            let local: SocketAddr = read_until(&mut out, "kubectl port-forward", |seen| {
                // "Forwarding from 127.0.0.1:PORT -> 8080"
                let line = seen.lines().find(|l| l.starts_with("Forwarding from "))?;
                line.split_whitespace().nth(2)?.parse().ok()
            })
            .await;
            for _ in 0..2 {
                // Two connections: each is a stream pair of its own over the one forwarding
                // session.
                let reply = tokio::task::spawn_blocking(move || skiff_testenv::http_get(local))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(reply.starts_with("HTTP/1."), "{reply}");
            }
            forward.kill().await.unwrap();
        })
        .await;

    pods.delete("web", &DeleteParams::default()).await.unwrap();
    checks
        .run_async("the pod is removed after deletion", async {
            wait_for("the pod's removal", Duration::from_secs(30), async || {
                pods.get_opt("web").await.unwrap().is_none().then_some(())
            })
            .await
        })
        .await;

    drop(agent);
    drop(runtime);
    control.stop().await;
    checks.finish();
}
