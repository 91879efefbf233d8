//! Ephemeral containers against a real containerd (root): added through
//! `pods/ephemeralcontainers` (the raw API and the real `kubectl debug`), started in the pod's
//! sandbox in the PID namespace of their target, with the pod's env and volumes, reported in
//! `status.ephemeralContainerStatuses`, never restarted, reachable by `kubectl logs`, `exec` and
//! `attach` (`kubectl debug -i`), and stopped with the pod. Run through `cargo xtask test node`.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use skiff_cri::{Cri, v1};

/// The target's process, recognisable in `ps` (its argument is unique to the test).
const TARGET_SLEEP: &str = "sleep 7777";
/// A process in another container of the pod, which the target's namespace does not hold.
const OTHER_SLEEP: &str = "sleep 8888";

/// The status of ephemeral container `name`, `Null` before the kubelet reports one.
fn ephemeral_status<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["status"]["ephemeralContainerStatuses"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

/// Waits up to 60 s for ephemeral container `name` to have finished; the pod then.
async fn terminated(pods: &Api<Pod>, name: &str) -> Value {
    wait_for_pod(
        pods,
        "debugged",
        &format!("{name} terminated"),
        Duration::from_secs(60),
        |pod| ephemeral_status(pod, name)["state"]["terminated"].is_object(),
    )
    .await
}

/// Waits up to 60 s for ephemeral container `name` to run; the pod then.
async fn running(pods: &Api<Pod>, name: &str) -> Value {
    wait_for_pod(
        pods,
        "debugged",
        &format!("{name} running"),
        Duration::from_secs(60),
        |pod| ephemeral_status(pod, name)["state"]["running"].is_object(),
    )
    .await
}

/// `kubectl logs debugged -c name`, once it has any output.
async fn logs(env: &Env, name: &str) -> String {
    wait_for(
        &format!("logs of {name}"),
        Duration::from_secs(20),
        async || {
            let (ok, out, err) = kubectl(env, &["logs", "debugged", "-c", name]).await;
            match ok && !out.is_empty() {
                true => Ok(out),
                false => Err(format!("{out}{err}")),
            }
        },
    )
    .await
}

/// The CRI containers of the pod named `name` (every instance).
async fn instances(cri: &Cri, uid: &str, name: &str) -> Vec<v1::Container> {
    let filter = v1::ContainerFilter {
        label_selector: [
            ("io.kubernetes.pod.uid".to_owned(), uid.to_owned()),
            ("io.kubernetes.container.name".to_owned(), name.to_owned()),
        ]
        .into(),
        ..Default::default()
    };
    cri.list_containers(Some(filter)).await.unwrap()
}

/// The PID namespace (`/proc/<pid>/ns/pid` link) of the running container `name`.
async fn pid_namespace(cri: &Cri, uid: &str, name: &str) -> String {
    let list = instances(cri, uid, name).await;
    let running = list
        .iter()
        .find(|c| c.state == v1::ContainerState::ContainerRunning as i32)
        .unwrap_or_else(|| panic!("{name} is not running: {list:?}"));
    let status = cri.container_status(&running.id, true).await.unwrap();
    let info: Value = serde_json::from_str(&status.info["info"]).unwrap();
    let pid = info["pid"].as_i64().unwrap();
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .unwrap()
        .display()
        .to_string()
}

/// kubectl with `args` and `input` written to its stdin, which stays open until kubectl
/// exits: containerd ends an attach session when the client's stdin closes (unless the
/// container is `stdinOnce`), before the container answers. (success, stdout, stderr).
async fn kubectl_with_stdin(env: &Env, args: &[&str], input: &str) -> (bool, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(kubectl_path())
        .args(args)
        .env("KUBECONFIG", &env.control.kubeconfig)
        .env("HOME", &env.dir.0)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running kubectl");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kubectl returned")
        .unwrap();
    drop(stdin);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One pod serves every behaviour (containerd, apiserver and kubelet take seconds to start);
/// the checks run and are reported together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_containers_debug_a_running_pod() {
    let env = Env::start("ephemeral").await;
    let client = env.client.clone();
    let _kubelet = Kubelet::start(&client, &env.cri, &env.config);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut checks = Checks::new();
    PodBuilder::new("debugged")
        .grace_period(0)
        .volume(json!({"name": "shared", "emptyDir": {}}))
        .init_container(ContainerBuilder::busybox("init", "true"))
        .container(
            ContainerBuilder::busybox(
                "c",
                &format!("echo from-target > /shared/f; exec {TARGET_SLEEP}"),
            )
            .mount("shared", "/shared"),
        )
        .container(ContainerBuilder::busybox(
            "other",
            &format!("exec {OTHER_SLEEP}"),
        ))
        .create(&pods)
        .await;
    let pod = ready(&pods, "debugged").await;
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();

    // Through the raw API: a strategic merge patch of the subresource, as kubectl sends it.
    let ps = json!({
        "name": "ps", "image": skiff_testenv::images::BUSYBOX, "imagePullPolicy": "IfNotPresent",
        "targetContainerName": "c",
        "command": ["sh", "-c", "echo FOO=$FOO; cat /data/f; ps"],
        "env": [{"name": "FOO", "value": "bar"}],
        "volumeMounts": [{"name": "shared", "mountPath": "/data"}],
    });
    let patch = json!({"spec": {"ephemeralContainers": [ps]}});
    pods.patch_ephemeral_containers(
        "debugged",
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .unwrap();
    let pod = terminated(&pods, "ps").await;
    checks.run("the ephemeral container's status", || {
        let status = ephemeral_status(&pod, "ps");
        let finished = &status["state"]["terminated"];
        assert_eq!(finished["exitCode"], 0, "{status}");
        assert_eq!(finished["reason"], "Completed", "{status}");
        assert_eq!(status["ready"], false, "{status}");
        assert_eq!(status["restartCount"], 0, "{status}");
        assert!(status.get("started").is_none(), "{status}");
        assert!(
            status["containerID"]
                .as_str()
                .unwrap_or_default()
                .starts_with("containerd://")
        );
        assert_eq!(status["image"], skiff_testenv::images::BUSYBOX);
        // The pod goes on as it was.
        assert_eq!(pod["status"]["phase"], "Running", "{pod}");
        assert_eq!(condition(&pod, "Ready"), "True", "{pod}");
        assert_eq!(restarts(&pod, "c"), 0, "{pod}");
    });
    let out = logs(&env, "ps").await;
    checks.run(
        "the target's processes, env and volumes, seen from the ephemeral container",
        || {
            assert!(out.contains(TARGET_SLEEP), "{out}");
            assert!(!out.contains(OTHER_SLEEP), "{out}");
            assert!(out.contains("FOO=bar"), "{out}");
            assert!(out.contains("from-target"), "{out}");
        },
    );
    checks
        .run_async(
            "a finished ephemeral container is not started again",
            async {
                // Several relist periods and syncs later.
                tokio::time::sleep(Duration::from_secs(4)).await;
                let pod = pod_json(&pods, "debugged").await.unwrap();
                let status = ephemeral_status(&pod, "ps");
                assert!(status["state"]["terminated"].is_object(), "{status}");
                assert_eq!(status["restartCount"], 0, "{status}");
                assert_eq!(instances(&env.cri, &uid, "ps").await.len(), 1);
            },
        )
        .await;
    checks
        .run_async("events name the ephemeral container", async {
            let events: Api<Event> = Api::namespaced(client.clone(), "default");
            let selector = format!("involvedObject.uid={uid}");
            let want = ["Pulled", "Created", "Started"];
            wait_for(
                "Pulled, Created and Started for ps",
                Duration::from_secs(20),
                async || {
                    let list = events
                        .list(&ListParams::default().fields(&selector))
                        .await
                        .unwrap();
                    let reasons: Vec<String> = list
                        .items
                        .iter()
                        .filter(|e| {
                            e.involved_object.field_path.as_deref()
                                == Some("spec.ephemeralContainers{ps}")
                        })
                        .filter_map(|e| e.reason.clone())
                        .collect();
                    match want.iter().all(|w| reasons.iter().any(|r| r == w)) {
                        true => Ok(()),
                        false => Err(format!("{reasons:?}")),
                    }
                },
            )
            .await;
        })
        .await;

    // A target that is not running (an init container that finished) cannot be joined.
    let late = json!({"spec": {"ephemeralContainers": [{
        "name": "late", "image": skiff_testenv::images::BUSYBOX, "imagePullPolicy": "IfNotPresent",
        "targetContainerName": "init", "command": ["true"],
    }]}});
    pods.patch_ephemeral_containers("debugged", &PatchParams::default(), &Patch::Strategic(late))
        .await
        .unwrap();
    checks
        .run_async("a target that is not running", async {
            let pod = wait_for_pod(
                &pods,
                "debugged",
                "late waiting",
                Duration::from_secs(30),
                |pod| {
                    ephemeral_status(pod, "late")["state"]["waiting"]["reason"]
                        == "CreateContainerConfigError"
                },
            )
            .await;
            let waiting = &ephemeral_status(&pod, "late")["state"]["waiting"];
            assert_eq!(
                waiting["message"], "unable to find target container init",
                "{waiting}"
            );
            assert!(instances(&env.cri, &uid, "late").await.is_empty());
        })
        .await;

    // The real kubectl debug, without -i: it adds the container and returns.
    let image = format!("--image={}", skiff_testenv::images::BUSYBOX);
    let debug = |name: &'static str, script: &'static str| {
        let image = image.clone();
        let env = &env;
        async move {
            let args = [
                "debug",
                "debugged",
                &image,
                "--image-pull-policy=IfNotPresent",
                "--target=c",
                "-c",
                name,
                "--",
                "sh",
                "-c",
                script,
            ];
            let (ok, out, err) = kubectl(env, &args).await;
            assert!(ok, "kubectl debug: {out}{err}");
        }
    };
    checks
        .run_async("kubectl debug --target, then kubectl logs -c", async {
            debug("dbg", "ps").await;
            terminated(&pods, "dbg").await;
            let out = logs(&env, "dbg").await;
            assert!(out.contains(TARGET_SLEEP), "{out}");
            assert!(!out.contains(OTHER_SLEEP), "{out}");
        })
        .await;

    // A long-running one: its PID namespace is the target's, and exec reaches it.
    checks
        .run_async("the target's PID namespace, and kubectl exec -c", async {
            debug("shell", "exec sleep 3600").await;
            running(&pods, "shell").await;
            let target = pid_namespace(&env.cri, &uid, "c").await;
            assert_eq!(pid_namespace(&env.cri, &uid, "shell").await, target);
            assert_ne!(pid_namespace(&env.cri, &uid, "other").await, target);
            let (ok, out, err) =
                kubectl(&env, &["exec", "debugged", "-c", "shell", "--", "ps"]).await;
            assert!(ok, "{err}");
            assert!(out.contains(TARGET_SLEEP), "{out}");
        })
        .await;

    // kubectl debug -i: waits for the container, attaches, and streams stdin to it.
    checks
        .run_async("kubectl debug -i attaches", async {
            let args = [
                "debug",
                "-i",
                "debugged",
                &image,
                "--image-pull-policy=IfNotPresent",
                "--target=c",
                "-c",
                "interactive",
                "--",
                "sh",
            ];
            let (ok, out, err) =
                kubectl_with_stdin(&env, &args, "echo attached-$((6*7)); ps; exit\n").await;
            assert!(ok, "kubectl debug -i: {out}{err}");
            assert!(out.contains("attached-42"), "{out}{err}");
            assert!(out.contains(TARGET_SLEEP), "{out}{err}");
            let pod = terminated(&pods, "interactive").await;
            assert_eq!(
                ephemeral_status(&pod, "interactive")["state"]["terminated"]["exitCode"],
                0
            );
        })
        .await;

    // The pod's deletion stops its ephemeral containers with the rest.
    pods.delete("debugged", &DeleteParams::default())
        .await
        .unwrap();
    gone(&pods, "debugged", Duration::from_secs(60)).await;
    checks
        .run_async("deleting the pod stops them", async {
            sandboxes_gone(&env.cri).await;
            assert!(instances(&env.cri, &uid, "shell").await.is_empty());
        })
        .await;
    checks.finish();
}
