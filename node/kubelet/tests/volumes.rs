//! Pod volumes against a real containerd and an in-process apiserver (root): two containers
//! sharing an emptyDir, a Memory emptyDir (tmpfs), configMap, secret, downwardAPI and projected
//! volumes and a secret env var, a pod waiting for its missing configMap, a configMap update
//! reaching the file, a restarted kubelet adopting the volumes, and the volume dirs removed
//! with the pod (also when deleted while the kubelet was down). Run through
//! `cargo xtask test node`.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use skiff_cri::Cri;

async fn exec(cri: &Cri, pod: &Value, container_name: &str, cmd: &[&str]) -> String {
    let c = container(pod, container_name);
    let id = c["containerID"]
        .as_str()
        .and_then(|s| s.strip_prefix("containerd://"))
        .unwrap_or_else(|| panic!("no container id: {c}"));
    let reply = cri
        .exec_sync(id, cmd, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        reply.exit_code,
        0,
        "{cmd:?}: {}",
        String::from_utf8_lossy(&reply.stderr)
    );
    String::from_utf8_lossy(&reply.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_mounts_pod_volumes() {
    let env = Env::start("kubelet-volumes").await;
    let (client, cri) = (env.client.clone(), env.cri.clone());
    let kubelet = Kubelet::start(&client, &cri, &env.config);

    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "app-config"},
        "data": {"greeting": "hello", "other": "x"},
    }))
    .unwrap();
    config_maps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "data": {"USERNAME": "YWRtaW4="},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    // A hostPath PV bound to a claim (no PV controller here: the test binds it).
    let pv_dir = env.dir.0.join("pv-data");
    let pv: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": "data-pv"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": pv_dir, "type": "DirectoryOrCreate"}},
    }))
    .unwrap();
    Api::<PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &pv)
        .await
        .unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "data-pv",
            "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .unwrap();
    claims.create(&PostParams::default(), &claim).await.unwrap();
    claims
        .patch_status(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Bound"}})),
        )
        .await
        .unwrap();
    let host_dir = env.dir.0.join("host-dir");

    let writer =
        ContainerBuilder::busybox("writer", "echo written > /scratch/msg && exec sleep 3600")
            .set(
                "volumeMounts",
                json!([
                    {"name": "scratch", "mountPath": "/scratch"},
                    {"name": "data", "mountPath": "/data"},
                    {"name": "host", "mountPath": "/host", "subPath": "sub"},
                    {"name": "scratch", "mountPath": "/mine", "subPathExpr": "$(POD_NAME)"},
                ]),
            )
            .env(json!([{"name": "POD_NAME",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]));
    let reader = ContainerBuilder::busybox("reader", "exec sleep 3600")
        .env(json!([
            {"name": "USERNAME",
                "valueFrom": {"secretKeyRef": {"name": "creds", "key": "USERNAME"}}},
            {"name": "CPU_MILLIS",
                "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
        ]))
        .resources(json!({"limits": {"memory": "64Mi", "cpu": "250m"}}))
        .set(
            "volumeMounts",
            json!([
                {"name": "scratch", "mountPath": "/scratch", "readOnly": true},
                {"name": "mem", "mountPath": "/mem"},
                {"name": "config", "mountPath": "/etc/config"},
                {"name": "items", "mountPath": "/etc/items"},
                {"name": "creds", "mountPath": "/etc/creds"},
                {"name": "podinfo", "mountPath": "/etc/podinfo"},
                {"name": "all", "mountPath": "/etc/all"},
            ]),
        );
    PodBuilder::new("shared")
        .label("app", "demo")
        .host_network()
        .grace_period(0)
        .set(
            "volumes",
            json!([
                {"name": "scratch", "emptyDir": {}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "host", "hostPath": {"path": host_dir, "type": "DirectoryOrCreate"}},
                {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                {"name": "config", "configMap": {"name": "app-config"}},
                {"name": "items", "configMap": {"name": "app-config", "defaultMode": 0o600,
                    "items": [{"key": "greeting", "path": "sub/greeting.txt"}]}},
                {"name": "creds", "secret": {"secretName": "creds"}},
                {"name": "podinfo", "downwardAPI": {"items": [
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "mem", "resourceFieldRef": {"containerName": "reader",
                        "resource": "limits.memory", "divisor": "1Mi"}},
                ]}},
                {"name": "all", "projected": {"sources": [
                    {"configMap": {"name": "app-config",
                        "items": [{"key": "greeting", "path": "greeting"}]}},
                    {"secret": {"name": "creds"}},
                    {"downwardAPI": {"items": [
                        {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
                    {"serviceAccountToken": {"path": "token"}},
                ]}},
            ]),
        )
        .container(writer)
        .container(reader)
        .create(&pods)
        .await;
    // Everything below needs this pod: a hard failure; the volumes' checks after it run and
    // are reported together.
    let shared = ready(&pods, "shared").await;
    let uid = shared["metadata"]["uid"].as_str().unwrap().to_owned();
    let mut checks = Checks::new();

    // The emptyDir is shared: what the writer wrote, the reader reads.
    checks
        .run_async("the emptyDir is shared", async {
            let msg = wait_for("the shared file", Duration::from_secs(10), async || {
                let reply = cri
                    .exec_sync(
                        container(&shared, "reader")["containerID"]
                            .as_str()?
                            .strip_prefix("containerd://")?,
                        &["cat", "/scratch/msg"],
                        Duration::from_secs(5),
                    )
                    .await
                    .ok()?;
                (reply.exit_code == 0).then(|| String::from_utf8_lossy(&reply.stdout).into_owned())
            })
            .await;
            assert_eq!(msg, "written\n");
        })
        .await;
    let cat = async |path: &str| exec(&cri, &shared, "reader", &["cat", path]).await;
    checks
        .run_async(
            "configMap, secret, downwardAPI and projected files",
            async {
                assert_eq!(cat("/etc/config/greeting").await, "hello");
                assert_eq!(cat("/etc/config/other").await, "x");
                assert_eq!(cat("/etc/items/sub/greeting.txt").await, "hello");
                assert_eq!(cat("/etc/creds/USERNAME").await, "admin");
                assert_eq!(cat("/etc/podinfo/name").await, "shared");
                assert_eq!(cat("/etc/podinfo/labels").await, "app=\"demo\"");
                assert_eq!(cat("/etc/all/greeting").await, "hello");
                assert_eq!(cat("/etc/all/USERNAME").await, "admin");
                assert_eq!(cat("/etc/all/ns").await, "default");
            },
        )
        .await;
    checks
        .run_async("env from a secret and resources", async {
            let env_user = exec(&cri, &shared, "reader", &["sh", "-c", "echo $USERNAME"]).await;
            assert_eq!(env_user, "admin\n");
            let cpu = exec(&cri, &shared, "reader", &["sh", "-c", "echo $CPU_MILLIS"]).await;
            assert_eq!(cpu, "250\n");
            assert_eq!(cat("/etc/podinfo/mem").await, "64");
        })
        .await;
    checks
        .run_async("an item's defaultMode", async {
            let mode = exec(
                &cri,
                &shared,
                "reader",
                &["stat", "-L", "-c", "%a", "/etc/items/sub/greeting.txt"],
            )
            .await;
            assert_eq!(mode, "600\n");
        })
        .await;
    checks
        .run_async("tmpfs for the Memory emptyDir and the secret", async {
            let mounts = cat("/proc/mounts").await;
            assert!(
                mounts.lines().any(|l| l.contains(" /mem tmpfs ")),
                "{mounts}"
            );
            let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
            assert!(
                host_mounts
                    .lines()
                    .any(|l| l.contains(&uid) && l.contains("kubernetes.io~secret/creds ")),
                "the secret volume is a tmpfs: {host_mounts}"
            );
        })
        .await;
    // API-backed volumes are read-only; the read-only emptyDir mount too.
    checks
        .run_async("read-only volumes", async {
            for path in ["/etc/config/new", "/scratch/new"] {
                let id = container(&shared, "reader")["containerID"]
                    .as_str()
                    .unwrap()["containerd://".len()..]
                    .to_owned();
                let reply = cri
                    .exec_sync(
                        &id,
                        &["sh", "-c", &format!("echo x > {path}")],
                        Duration::from_secs(5),
                    )
                    .await
                    .unwrap();
                assert_ne!(reply.exit_code, 0, "{path} is writable");
            }
        })
        .await;

    // The claim's PV and the hostPath (with a subPath) are the host's directories.
    checks
        .run_async("the claim's PV and a hostPath subPath", async {
            let script = "echo persisted > /data/f && echo host > /host/f";
            exec(&cri, &shared, "writer", &["sh", "-c", script]).await;
            assert_eq!(
                std::fs::read_to_string(pv_dir.join("f")).unwrap(),
                "persisted\n"
            );
            assert_eq!(
                std::fs::read_to_string(host_dir.join("sub/f")).unwrap(),
                "host\n"
            );
        })
        .await;

    // subPathExpr expands the container's environment.
    checks
        .run_async("subPathExpr", async {
            exec(
                &cri,
                &shared,
                "writer",
                &["sh", "-c", "echo expr > /mine/e"],
            )
            .await;
            assert_eq!(cat("/scratch/shared/e").await, "expr\n");
        })
        .await;

    // Updating the configMap changes the file (within the resync period).
    let patch = json!({"data": {"greeting": "hello again"}});
    config_maps
        .patch("app-config", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    checks
        .run_async("a configMap update reaches the files", async {
            wait_for(
                "the updated configMap file",
                Duration::from_secs(30),
                async || {
                    let seen =
                        exec(&cri, &shared, "reader", &["cat", "/etc/config/greeting"]).await;
                    if seen == "hello again" {
                        Ok(())
                    } else {
                        Err(seen)
                    }
                },
            )
            .await;
            assert_eq!(cat("/etc/all/greeting").await, "hello again");
        })
        .await;

    // A pod whose configMap is missing waits with CreateContainerConfigError, and starts once
    // the configMap exists.
    PodBuilder::new("late")
        .host_network()
        .grace_period(0)
        .volume(json!({"name": "config", "configMap": {"name": "late-config"}}))
        .container(
            ContainerBuilder::busybox("app", "exec sleep 3600").mount("config", "/etc/config"),
        )
        .create(&pods)
        .await;
    checks
        .run_async("a missing configMap: CreateContainerConfigError", async {
            let waiting = waiting(&pods, ("late", "app"), "CreateContainerConfigError").await;
            let message = waiting["state"]["waiting"]["message"].as_str().unwrap();
            assert!(
                message.contains("configmap \"late-config\" not found"),
                "{waiting}"
            );
        })
        .await;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "late-config"},
        "data": {"key": "value"},
    }))
    .unwrap();
    config_maps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let late = ready(&pods, "late").await;
    checks
        .run_async("the pod starts once its configMap exists", async {
            assert_eq!(
                exec(&cri, &late, "app", &["cat", "/etc/config/key"]).await,
                "value"
            );
        })
        .await;

    // A restarted kubelet adopts the pod with its volumes as they are (no second tmpfs, no
    // restart), and removes the volumes of a pod deleted while it was down.
    let late_uid = late["metadata"]["uid"].as_str().unwrap().to_owned();
    let late_dir = env.config.root_dir.join("pods").join(&late_uid);
    checks.run("the late pod's volume dir", || assert!(late_dir.exists()));
    kubelet.stop().await;
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    pods.delete("late", &now).await.unwrap();
    gone(&pods, "late", Duration::from_secs(10)).await;
    let kubelet = Kubelet::start(&client, &cri, &env.config);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = ready(&pods, "shared").await;
    checks
        .run_async("a restarted kubelet adopts the volumes", async {
            for name in ["writer", "reader"] {
                let (b, a) = (container(&shared, name), container(&after, name));
                assert_eq!(b["containerID"], a["containerID"], "{name} was restarted");
            }
            assert_eq!(cat("/etc/config/greeting").await, "hello again");
            let secret_mounts = std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .filter(|l| l.contains(&uid) && l.contains("kubernetes.io~secret/creds "))
                .count();
            assert_eq!(secret_mounts, 1);
        })
        .await;
    checks
        .run_async(
            "volumes of a pod deleted while the kubelet was down",
            async {
                wait_for(
                    "the late pod's volumes removed",
                    Duration::from_secs(30),
                    async || (!late_dir.exists()).then_some(()),
                )
                .await
            },
        )
        .await;

    // Deleting the pod removes its volume dirs (the tmpfs unmounted first).
    let pod_dir = env.config.root_dir.join("pods").join(&uid);
    checks.run("the pod's volume dir", || assert!(pod_dir.exists()));
    pods.delete("shared", &DeleteParams::default())
        .await
        .unwrap();
    all_gone(&pods, Duration::from_secs(30)).await;
    // A pod deleted with no grace period is gone from the API before its teardown ends.
    checks
        .run_async("volume dirs and mounts removed with the pod", async {
            wait_for(
                "the pod's volume dirs removed",
                Duration::from_secs(20),
                async || (!pod_dir.exists()).then_some(()),
            )
            .await;
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
            assert!(!mountinfo.contains(&uid), "a mount of the pod is left");
        })
        .await;

    kubelet.stop().await;
    drop(cri);
    drop(env);
    checks.finish();
}
