//! The kubelet API (HTTPS) against a real containerd (root): `kubectl logs` through the
//! apiserver's proxy, `/pods`, and `/stats/summary`, where a pod with a container burning CPU
//! and one holding memory shows non-zero usage for the pod and each container, read from
//! their cgroups. Run through `cargo xtask test node`.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

/// 32 MiB held in the pod's /dev/shm (tmpfs: charged to the writer's cgroup, never
/// reclaimable as file cache, so in the working set).
const HOLD_MEMORY: &str =
    "head -c 33554432 /dev/zero > /dev/shm/held && echo holding; exec sleep 3600";

/// One busy pod serves every endpoint's checks (containerd, apiserver and kubelet take
/// seconds to start); they run and are reported together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_serves_pods_and_stats() {
    let env = Env::start("stats").await;
    let client = env.client.clone();
    let kubelet = Kubelet::start(&client, &env.cri, &env.config);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut checks = Checks::new();
    // A CPU request gives the burner real cgroup shares against the machine's other work; the
    // holder needs CPU to fill its memory next to the burner.
    let cpu = json!({"requests": {"cpu": "1"}});
    PodBuilder::new("busy")
        .grace_period(0)
        .host_network()
        .container(ContainerBuilder::busybox("burn", "while :; do :; done").resources(cpu.clone()))
        .container(ContainerBuilder::busybox("hold", HOLD_MEMORY).resources(cpu))
        .create(&pods)
        .await;
    let pod = wait_for_pod(&pods, "busy", "Running", Duration::from_secs(60), |pod| {
        ["burn", "hold"]
            .iter()
            .all(|c| container(pod, c)["state"]["running"].is_object())
    })
    .await;
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    let address = kubelet_address(&client).await;

    // The kubelet API is HTTPS: the apiserver's log proxy speaks it (the real kubectl through
    // the apiserver), and plain HTTP gets no answer.
    checks
        .run_async("kubectl logs through the apiserver", async {
            wait_for("kubectl logs", Duration::from_secs(20), async || {
                let (ok, out, err) = kubectl(&env, &["logs", "busy", "-c", "hold"]).await;
                assert!(ok, "{err}");
                (out == "holding\n").then_some(())
            })
            .await
        })
        .await;
    checks
        .run_async("no answer over plain HTTP", async {
            let plain = tokio::task::spawn_blocking(move || skiff_testenv::http_get(address))
                .await
                .unwrap();
            assert!(
                plain
                    .as_ref()
                    .map_or(true, |reply| !reply.starts_with("HTTP/")),
                "{plain:?}"
            );
        })
        .await;

    // /pods: the pod this kubelet runs.
    let (code, body) = http_get_path(address, "/pods").await;
    checks.run("/pods", || {
        assert_eq!(code, 200, "{body}");
        let list: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(list["kind"], "PodList");
        assert_eq!(list["apiVersion"], "v1");
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{list}");
        assert_eq!(items[0]["metadata"]["uid"], uid.as_str());
        assert_eq!(items[0]["kind"], "Pod");
        assert_eq!(items[0]["spec"]["containers"][1]["name"], "hold");
    });

    // /stats/summary: usage of the node, the pod and both containers.
    let summary = wait_for("memory held", Duration::from_secs(30), async || {
        let (code, body) = http_get_path(address, "/stats/summary").await;
        assert_eq!(code, 200, "{body}");
        let summary: Value = serde_json::from_str(&body).unwrap();
        let pod = summary["pods"].as_array()?.first()?.clone();
        let hold = pod["containers"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == "hold")?
            .clone();
        (hold["memory"]["workingSetBytes"].as_u64()? >= 32 << 20).then_some(summary)
    })
    .await;
    checks.run("the node's stats", || {
        let node = &summary["node"];
        assert_eq!(node["nodeName"], NODE);
        assert!(node["startTime"].is_string(), "{node}");
        assert!(
            node["cpu"]["usageCoreNanoSeconds"].as_u64().unwrap() > 0,
            "{node}"
        );
        assert!(
            node["cpu"]["usageNanoCores"].as_u64().unwrap() > 0,
            "{node}"
        );
        for key in [
            "usageBytes",
            "workingSetBytes",
            "rssBytes",
            "availableBytes",
        ] {
            assert!(node["memory"][key].as_u64().unwrap() > 0, "{key}: {node}");
        }
    });
    let pods_stats = summary["pods"].as_array().unwrap();
    checks.run("one pod's stats, by its reference", || {
        assert_eq!(pods_stats.len(), 1, "{summary}");
        let pod = &pods_stats[0];
        assert_eq!(
            pod["podRef"],
            json!({"name": "busy", "namespace": "default", "uid": uid})
        );
        assert!(pod["startTime"].is_string());
    });
    let pod = &pods_stats[0];
    let find = |name: &str| {
        pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {pod}"))
            .clone()
    };
    let (burn, hold) = (find("burn"), find("hold"));
    let cpu_time = |c: &Value| c["cpu"]["usageCoreNanoSeconds"].as_u64().unwrap();
    checks.run("the burner's CPU", || {
        // A busy loop uses a good part of a core (the 2 cores are shared with other work:
        // allow for contention); an idle container's rate is near zero.
        let burn_rate = burn["cpu"]["usageNanoCores"].as_u64().unwrap();
        assert!(burn_rate > 50_000_000, "{burn}");
        assert!(cpu_time(&burn) > 0);
    });
    let hold_memory = &hold["memory"];
    checks.run("the holder's memory and CPU", || {
        assert!(
            hold_memory["usageBytes"].as_u64().unwrap() >= 32 << 20,
            "{hold}"
        );
        assert!(hold_memory["rssBytes"].is_u64(), "{hold}");
        assert!(cpu_time(&hold) > 0, "{hold}");
    });
    checks.run("the pod's cgroup holds both containers", || {
        assert!(
            pod["cpu"]["usageNanoCores"].as_u64().unwrap() > 50_000_000,
            "{pod}"
        );
        assert!(cpu_time(pod) >= cpu_time(&burn));
        assert!(
            pod["memory"]["usageBytes"].as_u64().unwrap()
                >= hold_memory["usageBytes"].as_u64().unwrap(),
            "{pod}"
        );
    });
    // Through the apiserver's nodes/proxy, as `kubectl get --raw` (and metrics-server) read it.
    checks
        .run_async("nodes/proxy through the apiserver", async {
            let path = format!("/api/v1/nodes/{NODE}/proxy/stats/summary");
            let (ok, out, err) = kubectl(&env, &["get", "--raw", &path]).await;
            assert!(ok, "{err}");
            let proxied: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(proxied["node"]["nodeName"], NODE);
            assert_eq!(proxied["pods"][0]["podRef"]["uid"], uid.as_str());
            let path = format!("/api/v1/nodes/{NODE}/proxy/pods");
            let (ok, out, err) = kubectl(&env, &["get", "--raw", &path]).await;
            assert!(ok, "{err}");
            assert!(out.contains("\"PodList\""), "{out}");
        })
        .await;

    // Samples move on: a later summary reports more CPU time.
    checks
        .run_async("a later sample reports more CPU time", async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (_, body) = http_get_path(address, "/stats/summary").await;
            let later: Value = serde_json::from_str(&body).unwrap();
            let later_burn = later["pods"][0]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "burn")
                .unwrap()
                .clone();
            assert!(cpu_time(&later_burn) > cpu_time(&burn));
        })
        .await;

    pods.delete("busy", &DeleteParams::default()).await.unwrap();
    gone(&pods, "busy", Duration::from_secs(30)).await;
    checks
        .run_async("/pods empty after deletion", async {
            wait_for("/pods empty", Duration::from_secs(10), async || {
                let (_, body) = http_get_path(address, "/pods").await;
                let list: Value = serde_json::from_str(&body).unwrap();
                (list["items"] == json!([])).then_some(())
            })
            .await
        })
        .await;
    kubelet.stop().await;
    drop(env);
    checks.finish();
}
