//! Container lifecycle hooks against a real containerd (root): a postStart hook's effect is
//! seen by the container, preStop hooks (exec, httpGet, sleep) run before SIGTERM and spend the
//! grace period, on deletion and on a liveness failure; a failing postStart hook kills and
//! restarts its container, and one that never returns does not block the pod's deletion. Run through `cargo xtask test node`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_after_start_and_before_stop() {
    let env = Env::start("hooks").await;
    let kubelet = Kubelet::start(&env.client, &env.cri, &env.config);
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let shared = env.dir.0.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let log = shared.join("log");

    // "main" waits for what its postStart hook writes, then records it; on SIGTERM it records
    // that and exits. Its preStop hook records itself first, and takes a second.
    let main = ContainerBuilder::busybox(
        "main",
        "trap 'echo term >> /shared/log; exit 0' TERM; \
         until [ -f /tmp/started ]; do sleep 0.1; done; cat /tmp/started >> /shared/log; \
         while true; do sleep 0.1; done",
    )
    .lifecycle(json!({
        "postStart": {"exec": {"command": [
            "sh", "-c", "echo poststart > /tmp/s.tmp && mv /tmp/s.tmp /tmp/started",
        ]}},
        "preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /shared/log; sleep 1"]}},
    }))
    .mount("shared", "/shared");
    // "slow" ignores SIGTERM (PID 1 without a handler): its sleep hook (3 s) counts against
    // the grace period (6 s), so SIGKILL comes 3 s after SIGTERM, not 6.
    let slow = ContainerBuilder::busybox("slow", "while true; do sleep 0.1; done")
        .lifecycle(json!({"preStop": {"sleep": {"seconds": 3}}}));
    // "web" serves a CGI script its preStop httpGet hook calls over the pod IP.
    let web = ContainerBuilder::busybox(
        "web",
        "mkdir -p /www/cgi-bin && \
         printf '#!/bin/sh\\necho http-prestop >> /shared/web\\necho\\necho bye\\n' > /www/cgi-bin/bye && \
         chmod +x /www/cgi-bin/bye && exec httpd -f -p 8080 -h /www",
    )
    .lifecycle(json!({"preStop": {"httpGet": {"port": 8080, "path": "/cgi-bin/bye"}}}))
    .mount("shared", "/shared");
    PodBuilder::new("hooked")
        .grace_period(6)
        .container(main)
        .container(slow)
        .container(web)
        .host_path_volume("shared", &shared)
        .create(&pods)
        .await;
    ready(&pods, "hooked").await;
    wait_for(
        "the postStart hook's file",
        Duration::from_secs(10),
        async || match std::fs::read_to_string(&log) {
            Ok(text) if text == "poststart\n" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;

    let deleted = Instant::now();
    pods.delete("hooked", &DeleteParams::default())
        .await
        .unwrap();
    gone(&pods, "hooked", Duration::from_secs(30)).await;
    let took = deleted.elapsed();
    eprintln!("hooked pod deleted in {took:?}");
    // The preStop hook ran before SIGTERM reached the container.
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "poststart\nprestop\nterm\n"
    );
    assert_eq!(
        std::fs::read_to_string(shared.join("web")).unwrap(),
        "http-prestop\n"
    );
    // 3 s of sleep hook, then 3 s (what is left of 6) until SIGKILL.
    assert!(took >= Duration::from_secs(5), "{took:?}");
    assert!(
        took < Duration::from_secs(9),
        "the hook's time was not counted: {took:?}"
    );

    kubelet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_post_start_hook_restarts_the_container() {
    let env = Env::start("hookfail").await;
    let mut config = env.config.clone();
    config.backoff_initial = Duration::from_secs(2);
    config.backoff_max = Duration::from_secs(4);
    let kubelet = Kubelet::start(&env.client, &env.cri, &config);
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");

    let mut checks = Checks::new();

    PodBuilder::new("hookfail")
        .restart_policy("Always")
        .grace_period(1)
        .host_network()
        .container(
            ContainerBuilder::busybox("failing", "exec sleep 3600").lifecycle(json!({
                "postStart": {"exec": {"command": ["sh", "-c", "echo no luck; exit 3"]}},
            })),
        )
        .create(&pods)
        .await;
    checks
        .run_async("a failing postStart hook kills and restarts", async {
            let waiting = waiting(&pods, ("hookfail", "failing"), "PostStartHookError").await;
            let message = waiting["state"]["waiting"]["message"].as_str().unwrap();
            assert!(
                message.contains("exited with 3") && message.contains("no luck"),
                "{waiting}"
            );
            let restarted =
                restarted(&pods, ("hookfail", "failing"), 2, Duration::from_secs(40)).await;
            let c = container(&restarted, "failing");
            // Killed: the instance that ran never became ready, and it was stopped, not left
            // running.
            assert_eq!(c["ready"], false, "{c}");
            assert!(c["state"]["running"].is_null(), "{c}");
            assert!(
                c["lastState"]["terminated"]["exitCode"].as_i64().unwrap() != 0,
                "{c}"
            );
            assert_eq!(
                restarted["status"]["phase"], "Running",
                "{}",
                restarted["status"]
            );
        })
        .await;

    // A liveness failure kills the container through its preStop hook too.
    let shared = env.dir.0.join("live");
    std::fs::create_dir_all(&shared).unwrap();
    let unhealthy = ContainerBuilder::busybox("unhealthy", "exec sleep 3600")
        .liveness(json!({
            "exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1,
        }))
        .lifecycle(json!({
            "preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /shared/log"]}},
        }))
        .mount("shared", "/shared");
    PodBuilder::new("unhealthy")
        .grace_period(1)
        .host_network()
        .container(unhealthy)
        .host_path_volume("shared", &shared)
        .create(&pods)
        .await;
    checks
        .run_async("a liveness kill runs the preStop hook", async {
            restarted(
                &pods,
                ("unhealthy", "unhealthy"),
                1,
                Duration::from_secs(40),
            )
            .await;
            let log = std::fs::read_to_string(shared.join("log")).unwrap_or_default();
            assert!(log.starts_with("prestop\n"), "{log:?}");
        })
        .await;
    pods.delete("unhealthy", &DeleteParams::default())
        .await
        .unwrap();

    // A postStart hook that never returns does not hold up the pod's deletion.
    PodBuilder::new("stuck")
        .grace_period(1)
        .host_network()
        .container(
            ContainerBuilder::busybox("stuck", "exec sleep 3600")
                .lifecycle(json!({"postStart": {"exec": {"command": ["sleep", "3600"]}}})),
        )
        .create(&pods)
        .await;
    checks
        .run_async(
            "a hanging postStart hook does not hold up deletion",
            async {
                let uid = wait_for("the stuck container", Duration::from_secs(30), async || {
                    let pod = pod_json(&pods, "stuck").await?;
                    let uid = pod["metadata"]["uid"].as_str()?.to_owned();
                    let filter = skiff_cri::v1::ContainerFilter {
                        label_selector: [("io.kubernetes.pod.uid".to_owned(), uid.clone())].into(),
                        ..Default::default()
                    };
                    let running = env.cri.list_containers(Some(filter)).await.unwrap();
                    (!running.is_empty()).then_some(uid)
                })
                .await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                let deleted = Instant::now();
                pods.delete("stuck", &DeleteParams::default())
                    .await
                    .unwrap();
                gone(&pods, "stuck", Duration::from_secs(15)).await;
                assert!(sandboxes_of(&env.cri, &uid).await.is_empty());
                eprintln!("stuck pod deleted in {:?}", deleted.elapsed());
            },
        )
        .await;

    let _ = pods.delete("stuck", &DeleteParams::default()).await;
    pods.delete("hookfail", &DeleteParams::default())
        .await
        .unwrap();
    all_gone(&pods, Duration::from_secs(30)).await;
    kubelet.stop().await;
    checks.finish();
}
