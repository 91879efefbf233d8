//! What the kubelet sets up around a pod's containers, against a real containerd (root): the
//! sandbox's resolv.conf per dnsPolicy and dnsConfig, the pod cgroup under its QoS class (and
//! removed with the pod), and images pulled with imagePullSecrets from a registry with auth.
//! Run through `cargo xtask test node`.

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use common::*;
use k8s_openapi::api::core::v1::{Event, Pod, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use skiff_testenv::{Registry, images};

/// The container's CRI id from its status.
fn container_id(pod: &Value, name: &str) -> String {
    container(pod, name)["containerID"]
        .as_str()
        .and_then(|id| id.strip_prefix("containerd://"))
        .unwrap_or_default()
        .to_owned()
}

async fn exec(env: &Env, id: &str, command: &[&str]) -> String {
    let answer = env
        .cri
        .exec_sync(id, command, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(answer.exit_code, 0, "{command:?}: {answer:?}");
    String::from_utf8(answer.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_and_qos_cgroups_follow_the_pod_spec() {
    let env = Env::start("podsetup").await;
    let node_resolv = env.dir.0.join("resolv.conf");
    std::fs::write(
        &node_resolv,
        "# the node's\nnameserver 192.0.2.53\nsearch corp.example\noptions timeout:2\n",
    )
    .unwrap();
    let mut config = env.config.clone();
    config.cluster_dns = vec!["10.96.0.10".parse().unwrap()];
    config.cluster_domain = "cluster.test".into();
    config.resolv_conf = Some(node_resolv);
    let kubelet = Kubelet::start(&env.client, &env.cri, &config);
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");

    // Burstable, ClusterFirst with extra dnsConfig.
    PodBuilder::new("cluster-dns")
        .grace_period(0)
        .container(sleeper().resources(json!({"requests": {"cpu": "50m"}})))
        .set(
            "dnsConfig",
            json!({"searches": ["extra.example"], "options": [{"name": "ndots", "value": "2"}]}),
        )
        .create(&pods)
        .await;
    // BestEffort, the node's DNS.
    PodBuilder::new("node-dns")
        .grace_period(0)
        .set("dnsPolicy", json!("Default"))
        .container(sleeper())
        .create(&pods)
        .await;
    // Guaranteed, only its own dnsConfig.
    PodBuilder::new("own-dns")
        .grace_period(0)
        .set("dnsPolicy", json!("None"))
        .set(
            "dnsConfig",
            json!({"nameservers": ["198.51.100.7"], "searches": ["only.example"]}),
        )
        .container(sleeper().resources(json!({"limits": {"cpu": "100m", "memory": "32Mi"}})))
        .create(&pods)
        .await;

    let mut checks = Checks::new();
    let parent = config.cgroup_parent.trim_start_matches('/').to_owned();
    let mut pod_cgroups = Vec::new();
    for (name, qos, dir, resolv) in [
        (
            "cluster-dns",
            "Burstable",
            "burstable/",
            vec![
                "nameserver 10.96.0.10",
                "search default.svc.cluster.test svc.cluster.test cluster.test corp.example extra.example",
                "options ndots:2",
            ],
        ),
        (
            "node-dns",
            "BestEffort",
            "besteffort/",
            vec![
                "nameserver 192.0.2.53",
                "search corp.example",
                "options timeout:2",
            ],
        ),
        (
            "own-dns",
            "Guaranteed",
            "",
            vec!["nameserver 198.51.100.7", "search only.example"],
        ),
    ] {
        let pod = ready(&pods, name).await;
        let uid = pod["metadata"]["uid"].as_str().unwrap();
        // Found (or not) whatever the checks say, so the teardown check covers it.
        pod_cgroups
            .push(Path::new("/sys/fs/cgroup/memory").join(format!("{parent}/{dir}pod{uid}")));
        checks
            .run_async(&format!("{name}: QoS, resolv.conf and pod cgroup"), async {
                assert_eq!(pod["status"]["qosClass"], qos);
                let id = container_id(&pod, "c");
                let conf = exec(&env, &id, &["cat", "/etc/resolv.conf"]).await;
                let lines: Vec<&str> = conf
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                assert_eq!(lines.len(), resolv.len(), "{name}: {conf}");
                for line in resolv {
                    assert!(lines.contains(&line), "{name}: {line:?} not in {conf}");
                }
                let cgroup = format!("/{parent}/{dir}pod{uid}/");
                let own = exec(&env, &id, &["cat", "/proc/self/cgroup"]).await;
                let memory = own
                    .lines()
                    .find(|l| l.contains(":memory:"))
                    .unwrap_or_default();
                assert!(memory.contains(&cgroup), "{name}: {cgroup} not in {own}");
                let on_host =
                    Path::new("/sys/fs/cgroup/memory").join(format!("{parent}/{dir}pod{uid}"));
                assert!(on_host.is_dir(), "{}", on_host.display());
            })
            .await;
    }

    for name in ["cluster-dns", "node-dns", "own-dns"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    all_gone(&pods, Duration::from_secs(30)).await;
    // With no grace period the objects go at once; the kubelet then tears the pods down and
    // removes their cgroups (the runtime removes only the containers').
    for dir in pod_cgroups {
        checks
            .run_async(&format!("{} removed", dir.display()), async {
                wait_for(
                    &format!("{} removed", dir.display()),
                    Duration::from_secs(20),
                    async || (!dir.exists()).then_some(()),
                )
                .await
            })
            .await;
    }
    let sandboxes = env.cri.list_pod_sandbox(None).await.unwrap();
    checks.run("no sandbox left", || {
        assert!(sandboxes.is_empty(), "{sandboxes:?}")
    });
    kubelet.stop().await;
    checks.finish();
}

/// The container `c` the pods here run: a busybox sleeping.
fn sleeper() -> ContainerBuilder {
    ContainerBuilder::busybox("c", "exec sleep 3600")
}

fn registry_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kubelet-registry-{}", std::process::id()))
}

fn docker_config_secret(name: &str, kind: &str, key: &str, config: Value) -> Secret {
    let data = base64::engine::general_purpose::STANDARD.encode(config.to_string());
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "type": kind,
        "data": {key: data},
    }))
    .unwrap()
}

/// Waits until pod `name`'s image pull has failed: its container waits with ErrImagePull or,
/// once the kubelet backs off (milliseconds later, so a poll can miss the first), with
/// ImagePullBackOff.
async fn pull_failed(pods: &Api<Pod>, name: &str) -> Value {
    let pod = wait_for_pod(
        pods,
        name,
        "its pull to fail",
        Duration::from_secs(30),
        |pod| {
            let reason = container(pod, "c")["state"]["waiting"]["reason"]
                .as_str()
                .unwrap_or_default();
            matches!(reason, "ErrImagePull" | "ImagePullBackOff")
        },
    )
    .await;
    container(&pod, "c").clone()
}

/// The error of pod `name`'s failed pull, from the kubelet's "Failed to pull image" event.
async fn pull_error(client: &kube::Client, name: &str) -> String {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let selector = format!("involvedObject.name={name}");
    wait_for(
        &format!("{name}'s pull failure event"),
        Duration::from_secs(30),
        async || {
            let list = events
                .list(&ListParams::default().fields(&selector))
                .await
                .ok()?;
            list.items
                .into_iter()
                .filter_map(|e| e.message)
                .find(|m| m.starts_with("Failed to pull image"))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_secrets_authenticate_pulls() {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("images");
    let busybox_archive = images::busybox_archive(&cache).unwrap();
    // Declared before the environment, so it outlives containerd.
    let registry = Registry::start_with_auth(&registry_dir(), "puller", "s3cret").unwrap();
    registry
        .push(&busybox_archive, "library/private:v1")
        .unwrap();
    let env = Env::start_with("pullsecrets", Some(registry.address())).await;
    let mut config = env.config.clone();
    config.backoff_initial = Duration::from_secs(1);
    config.backoff_max = Duration::from_secs(2);
    let kubelet = Kubelet::start(&env.client, &env.cri, &config);
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "default");

    // The pod names a secret that does not exist yet: the pull goes without credentials and
    // fails, then backs off.
    let private = |pull_policy: &str| {
        sleeper()
            .set("image", json!("private:v1"))
            .set("imagePullPolicy", json!(pull_policy))
    };
    let mut checks = Checks::new();
    PodBuilder::new("own-secret")
        .grace_period(0)
        .set("imagePullSecrets", json!([{"name": "regcred"}]))
        .container(private("IfNotPresent"))
        .create(&pods)
        .await;
    checks
        .run_async("a pull without credentials fails and backs off", async {
            pull_failed(&pods, "own-secret").await;
            let message = pull_error(&env.client, "own-secret").await;
            assert!(
                message.contains("401") || message.to_lowercase().contains("unauthorized"),
                "{message}"
            );
            waiting(&pods, ("own-secret", "c"), "ImagePullBackOff").await;
        })
        .await;

    // A secret for another registry does not help; one for Docker Hub (as `docker login`
    // writes it) does, and the pod recovers on its own.
    let auth = base64::engine::general_purpose::STANDARD.encode("puller:s3cret");
    let wrong = docker_config_secret(
        "regcred",
        "kubernetes.io/dockerconfigjson",
        ".dockerconfigjson",
        json!({"auths": {"quay.example": {"auth": auth}}}),
    );
    secrets
        .create(&PostParams::default(), &wrong)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = pod_json(&pods, "own-secret").await.unwrap();
    checks.run("another registry's credentials do not help", || {
        assert!(
            container(&still, "c")["state"]["waiting"].is_object(),
            "pulled with another registry's credentials: {}",
            still["status"]
        );
    });
    secrets
        .delete("regcred", &DeleteParams::default())
        .await
        .unwrap();
    let right = docker_config_secret(
        "regcred",
        "kubernetes.io/dockerconfigjson",
        ".dockerconfigjson",
        json!({"auths": {"https://index.docker.io/v1/": {"auth": auth}}}),
    );
    secrets
        .create(&PostParams::default(), &right)
        .await
        .unwrap();
    checks
        .run_async("Docker Hub's credentials pull, the pod recovers", async {
            let ran = ready(&pods, "own-secret").await;
            assert_eq!(container(&ran, "c")["image"], "private:v1");
        })
        .await;

    // The ServiceAccount's secret (a legacy dockercfg keyed by docker.io), for a pod that
    // names none and pulls again (Always).
    let legacy = docker_config_secret(
        "legacy",
        "kubernetes.io/dockercfg",
        ".dockercfg",
        json!({"docker.io": {"username": "puller", "password": "s3cret"}}),
    );
    secrets
        .create(&PostParams::default(), &legacy)
        .await
        .unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client.clone(), "default");
    let account: ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": "builder", "namespace": "default"},
        "imagePullSecrets": [{"name": "legacy"}],
    }))
    .unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    PodBuilder::new("sa-secret")
        .grace_period(0)
        .set("serviceAccountName", json!("builder"))
        .container(private("Always"))
        .create(&pods)
        .await;
    checks
        .run_async("the ServiceAccount's legacy dockercfg secret", async {
            ready(&pods, "sa-secret").await;
        })
        .await;
    // Without a secret, the same pull policy fails (so the pull above really needed it).
    PodBuilder::new("no-secret")
        .grace_period(0)
        .container(private("Always"))
        .create(&pods)
        .await;
    checks
        .run_async("no secret, no pull", async {
            pull_failed(&pods, "no-secret").await;
        })
        .await;

    for name in ["own-secret", "sa-secret", "no-secret"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    all_gone(&pods, Duration::from_secs(30)).await;
    kubelet.stop().await;
    drop(env);
    drop(registry);
    checks.finish();
}

/// A capability set line (`CapBnd:` etc.) of `/proc/1/status`, as bits.
fn caps(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_contexts_reach_the_containers() {
    const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    let env = Env::start("security").await;
    let kubelet = Kubelet::start(&env.client, &env.cri, &env.config);
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");

    let limited = ContainerBuilder::busybox("limited", "exec sleep 3600").set(
        "securityContext",
        json!({
            "runAsUser": 1000,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }),
    );
    let privileged = ContainerBuilder::busybox("privileged", "exec sleep 3600")
        .set("securityContext", json!({"privileged": true}));
    PodBuilder::new("secure")
        .grace_period(0)
        .set(
            "securityContext",
            json!({
                "runAsGroup": 3000,
                "supplementalGroups": [4000],
                "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"}],
            }),
        )
        .container(limited)
        .container(ContainerBuilder::busybox("plain", "exec sleep 3600"))
        .container(privileged)
        .create(&pods)
        .await;
    let secure = ready(&pods, "secure").await;
    let status = |name: &str| {
        let id = container_id(&secure, name);
        let env = &env;
        async move { exec(env, &id, &["cat", "/proc/1/status"]).await }
    };
    let mut checks = Checks::new();

    let limited = status("limited").await;
    let ids = |field: &str| {
        limited
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .map(|v| v.split_whitespace().next().unwrap_or_default().to_owned())
    };
    checks.run("a container's users and groups", || {
        assert_eq!(ids("Uid:").as_deref(), Some("1000"), "{limited}");
        assert_eq!(ids("Gid:").as_deref(), Some("3000"), "{limited}");
        let groups = limited.lines().find(|l| l.starts_with("Groups:")).unwrap();
        assert!(groups.contains("4000"), "{groups}");
    });
    checks.run("capabilities, no_new_privs and seccomp", || {
        assert_eq!(caps(&limited, "CapBnd:"), CAP_NET_BIND_SERVICE, "{limited}");
        assert_eq!(ids("NoNewPrivs:").as_deref(), Some("1"), "{limited}");
        // Filtered by the runtime's default profile (mode 2); unconfined (0) without one.
        assert_eq!(ids("Seccomp:").as_deref(), Some("2"), "{limited}");
    });
    let id = container_id(&secure, "limited");
    let touch = env
        .cri
        .exec_sync(&id, &["touch", "/written"], Duration::from_secs(10))
        .await
        .unwrap();
    checks.run("a read-only root filesystem", || {
        let said = String::from_utf8_lossy(&touch.stderr);
        assert_ne!(touch.exit_code, 0, "the root filesystem is writable");
        assert!(said.contains("Read-only file system"), "{said}");
    });

    // The pod's (safe) sysctl, set in its network namespace.
    checks
        .run_async("the pod's safe sysctl", async {
            let id = container_id(&secure, "plain");
            let port_start = exec(
                &env,
                &id,
                &["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
            )
            .await;
            assert_eq!(port_start.trim(), "80");
        })
        .await;
    let plain = status("plain").await;
    let full = caps(&status("privileged").await, "CapBnd:");
    checks.run("unconfined and privileged containers", || {
        let seccomp = plain.lines().find(|l| l.starts_with("Seccomp:")).unwrap();
        assert!(seccomp.ends_with('0'), "{seccomp}");
        let plain = caps(&plain, "CapBnd:");
        assert_eq!(plain & CAP_SYS_ADMIN, 0, "{plain:x}");
        assert_ne!(full & CAP_SYS_ADMIN, 0, "{full:x}");
    });

    // runAsNonRoot with an image that runs as root: the kubelet refuses to create it.
    PodBuilder::new("nonroot")
        .grace_period(0)
        .set("securityContext", json!({"runAsNonRoot": true}))
        .container(sleeper())
        .create(&pods)
        .await;
    checks
        .run_async("runAsNonRoot refuses a root image", async {
            let refused = waiting(&pods, ("nonroot", "c"), "CreateContainerConfigError").await;
            let message = refused["state"]["waiting"]["message"].as_str().unwrap();
            assert!(message.contains("image will run as root"), "{refused}");
        })
        .await;

    // An unsafe sysctl the node does not allow: the pod is rejected and never runs.
    PodBuilder::new("sysctl")
        .grace_period(0)
        .set(
            "securityContext",
            json!({"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]}),
        )
        .container(sleeper())
        .create(&pods)
        .await;
    checks
        .run_async("an unsafe sysctl: SysctlForbidden", async {
            let rejected =
                wait_for_pod(&pods, "sysctl", "Failed", Duration::from_secs(30), |pod| {
                    pod["status"]["phase"] == "Failed"
                })
                .await;
            assert_eq!(
                rejected["status"]["reason"], "SysctlForbidden",
                "{}",
                rejected["status"]
            );
            let uid = rejected["metadata"]["uid"].as_str().unwrap();
            assert!(sandboxes_of(&env.cri, uid).await.is_empty());
        })
        .await;

    for name in ["secure", "nonroot", "sysctl"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    sandboxes_gone(&env.cri).await;
    kubelet.stop().await;
    checks.finish();
}
