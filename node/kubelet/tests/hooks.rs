//! Container lifecycle hooks against a real containerd (root): a postStart hook's effect is
//! seen by the container, preStop hooks (exec, httpGet, sleep) run before SIGTERM and spend the
//! grace period, on deletion and on a liveness failure; a failing postStart hook kills and
//! restarts its container, and one that never returns does not block the pod's deletion. Run through `cargo xtask test node`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
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
    let mut main = busybox(
        "main",
        "trap 'echo term >> /shared/log; exit 0' TERM; \
         until [ -f /tmp/started ]; do sleep 0.1; done; cat /tmp/started >> /shared/log; \
         while true; do sleep 0.1; done",
    );
    main["lifecycle"] = json!({
        "postStart": {"exec": {"command": [
            "sh", "-c", "echo poststart > /tmp/s.tmp && mv /tmp/s.tmp /tmp/started",
        ]}},
        "preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /shared/log; sleep 1"]}},
    });
    main["volumeMounts"] = json!([{"name": "shared", "mountPath": "/shared"}]);
    // "slow" ignores SIGTERM (PID 1 without a handler): its sleep hook (3 s) counts against
    // the grace period (6 s), so SIGKILL comes 3 s after SIGTERM, not 6.
    let mut slow = busybox("slow", "while true; do sleep 0.1; done");
    slow["lifecycle"] = json!({"preStop": {"sleep": {"seconds": 3}}});
    // "web" serves a CGI script its preStop httpGet hook calls over the pod IP.
    let mut web = busybox(
        "web",
        "mkdir -p /www/cgi-bin && \
         printf '#!/bin/sh\\necho http-prestop >> /shared/web\\necho\\necho bye\\n' > /www/cgi-bin/bye && \
         chmod +x /www/cgi-bin/bye && exec httpd -f -p 8080 -h /www",
    );
    web["lifecycle"] = json!({"preStop": {"httpGet": {"port": 8080, "path": "/cgi-bin/bye"}}});
    web["volumeMounts"] = json!([{"name": "shared", "mountPath": "/shared"}]);
    let spec = json!({
        "terminationGracePeriodSeconds": 6,
        "containers": [main, slow, web],
        "volumes": [{"name": "shared", "hostPath": {"path": shared, "type": "Directory"}}],
    });
    pods.create(&PostParams::default(), &pod("hooked", spec))
        .await
        .unwrap();
    wait_for(
        "the hooked pod Ready",
        Duration::from_secs(60),
        async || {
            let pod = pod_json(&pods, "hooked").await?;
            (condition(&pod, "Ready") == "True").then_some(())
        },
    )
    .await;
    wait_for(
        "the postStart hook's file",
        Duration::from_secs(10),
        async || {
            let text = std::fs::read_to_string(&log).ok()?;
            (text == "poststart\n").then_some(())
        },
    )
    .await;

    let deleted = Instant::now();
    pods.delete("hooked", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the hooked pod gone", Duration::from_secs(30), async || {
        pods.get_opt("hooked")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
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

    let mut failing = busybox("failing", "exec sleep 3600");
    failing["lifecycle"] = json!({
        "postStart": {"exec": {"command": ["sh", "-c", "echo no luck; exit 3"]}},
    });
    let spec = json!({
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 1,
        "hostNetwork": true,
        "containers": [failing],
    });
    pods.create(&PostParams::default(), &pod("hookfail", spec))
        .await
        .unwrap();
    let waiting = wait_for("PostStartHookError", Duration::from_secs(30), async || {
        let pod = pod_json(&pods, "hookfail").await?;
        let c = container(&pod, "failing").clone();
        (c["state"]["waiting"]["reason"] == "PostStartHookError").then_some(c)
    })
    .await;
    let message = waiting["state"]["waiting"]["message"].as_str().unwrap();
    assert!(
        message.contains("exited with 3") && message.contains("no luck"),
        "{waiting}"
    );
    let restarted = wait_for("restarts", Duration::from_secs(40), async || {
        let pod = pod_json(&pods, "hookfail").await?;
        let c = container(&pod, "failing").clone();
        (c["restartCount"].as_i64()? >= 2).then_some(pod)
    })
    .await;
    let c = container(&restarted, "failing");
    // Killed: the instance that ran never became ready, and it was stopped, not left running.
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

    // A liveness failure kills the container through its preStop hook too.
    let shared = env.dir.0.join("live");
    std::fs::create_dir_all(&shared).unwrap();
    let mut unhealthy = busybox("unhealthy", "exec sleep 3600");
    unhealthy["livenessProbe"] = json!({
        "exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1,
    });
    unhealthy["lifecycle"] = json!({
        "preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /shared/log"]}},
    });
    unhealthy["volumeMounts"] = json!([{"name": "shared", "mountPath": "/shared"}]);
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "hostNetwork": true,
        "containers": [unhealthy],
        "volumes": [{"name": "shared", "hostPath": {"path": shared, "type": "Directory"}}],
    });
    pods.create(&PostParams::default(), &pod("unhealthy", spec))
        .await
        .unwrap();
    wait_for("a liveness restart", Duration::from_secs(40), async || {
        let pod = pod_json(&pods, "unhealthy").await?;
        let c = container(&pod, "unhealthy");
        (c["restartCount"].as_i64()? >= 1).then_some(())
    })
    .await;
    let log = std::fs::read_to_string(shared.join("log")).unwrap_or_default();
    assert!(log.starts_with("prestop\n"), "{log:?}");
    pods.delete("unhealthy", &DeleteParams::default())
        .await
        .unwrap();

    // A postStart hook that never returns does not hold up the pod's deletion.
    let mut stuck = busybox("stuck", "exec sleep 3600");
    stuck["lifecycle"] = json!({"postStart": {"exec": {"command": ["sleep", "3600"]}}});
    let spec = json!({
        "terminationGracePeriodSeconds": 1,
        "hostNetwork": true,
        "containers": [stuck],
    });
    pods.create(&PostParams::default(), &pod("stuck", spec))
        .await
        .unwrap();
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
    wait_for("the stuck pod gone", Duration::from_secs(15), async || {
        pods.get_opt("stuck").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(sandboxes_of(&env.cri, &uid).await.is_empty());
    eprintln!("stuck pod deleted in {:?}", deleted.elapsed());

    pods.delete("hookfail", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the pods gone", Duration::from_secs(30), async || {
        let list = pods.list(&Default::default()).await.unwrap();
        list.items.is_empty().then_some(())
    })
    .await;
    kubelet.stop().await;
}
