//! skiff-kubelet against a real containerd (with the reference bridge CNI) and an in-process
//! apiserver (root): Node and Lease, a pod with an init container and two containers reaching
//! Ready, a crash-looping container backing off, a failing liveness probe restarting its
//! container, a kubelet restart adopting running containers, and deletion within the grace
//! period. Run through `cargo xtask test node`.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams};
use serde_json::json;
use skiff_testenv::http_get;

/// One containerd, apiserver and kubelet serve every behaviour here (each takes seconds to
/// start): the behaviours' checks run and are reported together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_runs_pods_through_containerd() {
    let env = Env::start("kubelet").await;
    let (client, cri, config, subnet) = (
        env.client.clone(),
        env.cri.clone(),
        env.config.clone(),
        env.subnet,
    );
    let kubelet = Kubelet::start(&client, &cri, &config);
    let mut checks = Checks::new();

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
    checks.run("the Node's capacity and kubelet port", || {
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
    });
    checks.run("the Node's nodeInfo", || {
        assert!(
            status["nodeInfo"]["containerRuntimeVersion"]
                .as_str()
                .unwrap()
                .starts_with("containerd://"),
            "{status}"
        );
        assert_eq!(status["nodeInfo"]["kubeletVersion"], "v1.37.0-skiff");
    });
    checks.run("the Node's pressure conditions", || {
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
    });
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    checks
        .run_async("the Node's Lease", async {
            wait_for("the Lease", Duration::from_secs(20), async || {
                leases.get_opt(NODE).await.unwrap()?.spec?.renew_time
            })
            .await
        })
        .await;

    // A pod with an init container and two containers, one serving HTTP with a readiness
    // probe, its pod IP in its environment.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let web = ContainerBuilder::busybox(
        "web",
        "mkdir -p /www && echo \"hello from $POD_NAME at $POD_IP\" > /www/index.html && exec httpd -f -p 8080 -h /www",
    )
    .env(json!([
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]))
    .readiness(json!({"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1}))
    .resources(json!({"limits": {"cpu": "500m", "memory": "64Mi"}}));
    PodBuilder::new("web")
        .restart_policy("Always")
        .grace_period(2)
        .init_container(ContainerBuilder::busybox("setup", "echo init done"))
        .container(web)
        .container(ContainerBuilder::busybox("sidecar", "exec sleep 3600"))
        .create(&pods)
        .await;
    let started = Instant::now();
    // Everything after needs it: a hard failure.
    let ready = ready(&pods, "web").await;
    eprintln!("web pod Ready after {:?}", started.elapsed());
    let status = &ready["status"];
    let pod_ip: Ipv4Addr = status["podIP"].as_str().unwrap().parse().unwrap();
    checks.run("the web pod's status", || {
        assert_eq!(status["phase"], "Running", "{status}");
        for kind in ["PodScheduled", "Initialized", "ContainersReady"] {
            assert_eq!(condition(&ready, kind), "True", "{kind}: {status}");
        }
        assert_eq!(status["hostIP"], "127.0.0.1");
        assert!(status["startTime"].is_string());
        assert_eq!(pod_ip.octets()[..3], subnet.octets()[..3], "{status}");
    });
    checks.run("the init container's status", || {
        let init = &status["initContainerStatuses"][0];
        assert_eq!(init["name"], "setup");
        assert_eq!(init["state"]["terminated"]["exitCode"], 0, "{init}");
        assert_eq!(init["state"]["terminated"]["reason"], "Completed", "{init}");
    });
    for name in ["web", "sidecar"] {
        checks.run(&format!("container {name}'s status"), || {
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
        });
    }
    let addr = SocketAddr::from((pod_ip, 8080));
    checks
        .run_async("HTTP to the pod, its env from the downward API", async {
            let reply = tokio::task::spawn_blocking(move || http_get(addr))
                .await
                .unwrap()
                .unwrap();
            assert!(
                reply.contains(&format!("hello from web at {pod_ip}")),
                "{reply}"
            );
        })
        .await;
    let web_uid = ready["metadata"]["uid"].as_str().unwrap().to_owned();
    checks.run("the container's log file", || {
        let log_dir = config
            .pod_log_root
            .join(format!("default_web_{web_uid}"))
            .join("web");
        assert!(log_dir.join("0.log").exists(), "{}", log_dir.display());
    });

    // A crashing container restarts with a growing count, in CrashLoopBackOff in between.
    PodBuilder::new("crash")
        .restart_policy("Always")
        .grace_period(0)
        .host_network()
        .container(ContainerBuilder::busybox("crash", "echo crashing; exit 1"))
        .create(&pods)
        .await;
    checks
        .run_async("a crashing container backs off", async {
            let backoff = waiting(&pods, ("crash", "crash"), "CrashLoopBackOff").await;
            assert_eq!(
                backoff["lastState"]["terminated"]["exitCode"], 1,
                "{backoff}"
            );
            assert!(backoff["restartCount"].as_i64().unwrap() >= 1, "{backoff}");
            restarted(&pods, ("crash", "crash"), 2, Duration::from_secs(30)).await;
            let crash = pod_json(&pods, "crash").await.unwrap();
            assert_eq!(crash["status"]["phase"], "Running", "{}", crash["status"]);
        })
        .await;

    // A failing liveness probe restarts its container.
    PodBuilder::new("live")
        .restart_policy("Always")
        .grace_period(1)
        .host_network()
        .container(
            ContainerBuilder::busybox("live", "exec sleep 3600").liveness(json!({
                "exec": {"command": ["cat", "/tmp/healthy"]},
                "periodSeconds": 1, "failureThreshold": 2,
            })),
        )
        .create(&pods)
        .await;
    checks
        .run_async("a failing liveness probe restarts its container", async {
            restarted(&pods, ("live", "live"), 1, Duration::from_secs(40)).await;
        })
        .await;

    // A restarted kubelet adopts the running containers without restarting them.
    let before = pod_json(&pods, "web").await.unwrap();
    kubelet.stop().await;
    let kubelet = Kubelet::start(&client, &cri, &config);
    tokio::time::sleep(Duration::from_secs(4)).await;
    checks
        .run_async("a restarted kubelet adopts the running containers", async {
            let after = wait_for_pod(
                &pods,
                "web",
                "Ready again",
                Duration::from_secs(30),
                |pod| condition(pod, "Ready") == "True",
            )
            .await;
            for name in ["web", "sidecar"] {
                let (b, a) = (container(&before, name), container(&after, name));
                assert_eq!(b["containerID"], a["containerID"], "{name} was restarted");
                assert_eq!(a["restartCount"], 0, "{a}");
            }
            assert_eq!(before["status"]["podIP"], after["status"]["podIP"]);
            assert_eq!(sandboxes_of(&cri, &web_uid).await.len(), 1);
        })
        .await;

    // Deleting the pod stops it within its grace period; the kubelet deletes the object.
    checks
        .run_async("deletion within the grace period", async {
            let deleted = Instant::now();
            pods.delete("web", &DeleteParams::default()).await.unwrap();
            gone(&pods, "web", Duration::from_secs(15)).await;
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
        })
        .await;
    for name in ["crash", "live"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    all_gone(&pods, Duration::from_secs(20)).await;

    kubelet.stop().await;
    drop(cri);
    drop(env);
    checks.finish();
}

/// A gRPC readiness probe follows the health service's answer (the pod on the host network,
/// so the probe reaches the test's service on the node's 127.0.0.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_readiness_probe_follows_the_health_service() {
    let env = Env::start("grpcprobe").await;
    let health = GrpcHealth::start().await;
    let kubelet = Kubelet::start(&env.client, &env.cri, &env.config);
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    PodBuilder::new("grpc")
        .grace_period(0)
        .host_network()
        .container(
            ContainerBuilder::busybox("c", "exec sleep 3600").readiness(json!({
                "grpc": {"port": health.port, "service": "skiff"},
                "periodSeconds": 1, "failureThreshold": 1,
            })),
        )
        .create(&pods)
        .await;
    let ready = |want: &'static str| {
        let pods = pods.clone();
        async move {
            wait_for_pod(
                &pods,
                "grpc",
                &format!("Ready={want}"),
                Duration::from_secs(30),
                |pod| condition(pod, "Ready") == want,
            )
            .await
        }
    };
    ready("True").await;
    health.set(2);
    ready("False").await;
    health.set(1);
    ready("True").await;

    pods.delete("grpc", &DeleteParams::default()).await.unwrap();
    sandboxes_gone(&env.cri).await;
    kubelet.stop().await;
}
