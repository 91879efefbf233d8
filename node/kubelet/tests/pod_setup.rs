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
    let mut burstable = busybox("c", "exec sleep 3600");
    burstable["resources"] = json!({"requests": {"cpu": "50m"}});
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "containers": [burstable],
        "dnsConfig": {"searches": ["extra.example"], "options": [{"name": "ndots", "value": "2"}]},
    });
    pods.create(&PostParams::default(), &pod("cluster-dns", spec))
        .await
        .unwrap();
    // BestEffort, the node's DNS.
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "dnsPolicy": "Default",
        "containers": [busybox("c", "exec sleep 3600")],
    });
    pods.create(&PostParams::default(), &pod("node-dns", spec))
        .await
        .unwrap();
    // Guaranteed, only its own dnsConfig.
    let mut guaranteed = busybox("c", "exec sleep 3600");
    guaranteed["resources"] = json!({"limits": {"cpu": "100m", "memory": "32Mi"}});
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "dnsPolicy": "None",
        "dnsConfig": {"nameservers": ["198.51.100.7"], "searches": ["only.example"]},
        "containers": [guaranteed],
    });
    pods.create(&PostParams::default(), &pod("own-dns", spec))
        .await
        .unwrap();

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
        let uid = pod["metadata"]["uid"].as_str().unwrap();
        let cgroup = format!("/{parent}/{dir}pod{uid}/");
        let own = exec(&env, &id, &["cat", "/proc/self/cgroup"]).await;
        let memory = own
            .lines()
            .find(|l| l.contains(":memory:"))
            .unwrap_or_default();
        assert!(memory.contains(&cgroup), "{name}: {cgroup} not in {own}");
        let on_host = Path::new("/sys/fs/cgroup/memory").join(format!("{parent}/{dir}pod{uid}"));
        assert!(on_host.is_dir(), "{}", on_host.display());
        pod_cgroups.push(on_host);
    }

    for name in ["cluster-dns", "node-dns", "own-dns"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    wait_for("the pods gone", Duration::from_secs(30), async || {
        let list = pods.list(&Default::default()).await.unwrap();
        list.items.is_empty().then_some(())
    })
    .await;
    // With no grace period the objects go at once; the kubelet then tears the pods down and
    // removes their cgroups (the runtime removes only the containers').
    for dir in pod_cgroups {
        wait_for(
            &format!("{} removed", dir.display()),
            Duration::from_secs(20),
            async || (!dir.exists()).then_some(()),
        )
        .await;
    }
    let sandboxes = env.cri.list_pod_sandbox(None).await.unwrap();
    assert!(sandboxes.is_empty(), "{sandboxes:?}");
    kubelet.stop().await;
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

async fn waiting_reason(pods: &Api<Pod>, name: &str, reason: &str) -> Value {
    wait_for(
        &format!("{name} {reason}"),
        Duration::from_secs(30),
        async || {
            let pod = pod_json(pods, name).await?;
            let c = container(&pod, "c").clone();
            (c["state"]["waiting"]["reason"] == reason).then_some(c)
        },
    )
    .await
}

/// Waits until pod `name`'s image pull has failed: its container waits with ErrImagePull or,
/// once the kubelet backs off (milliseconds later, so a poll can miss the first), with
/// ImagePullBackOff.
async fn pull_failed(pods: &Api<Pod>, name: &str) -> Value {
    wait_for(
        &format!("{name}'s pull to fail"),
        Duration::from_secs(30),
        async || {
            let pod = pod_json(pods, name).await?;
            let c = container(&pod, "c").clone();
            let reason = c["state"]["waiting"]["reason"].as_str().unwrap_or_default();
            matches!(reason, "ErrImagePull" | "ImagePullBackOff").then_some(c)
        },
    )
    .await
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
        json!({
            "name": "c",
            "image": "private:v1",
            "imagePullPolicy": pull_policy,
            "command": ["sh", "-c", "exec sleep 3600"],
        })
    };
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "imagePullSecrets": [{"name": "regcred"}],
        "containers": [private("IfNotPresent")],
    });
    pods.create(&PostParams::default(), &pod("own-secret", spec))
        .await
        .unwrap();
    pull_failed(&pods, "own-secret").await;
    let message = pull_error(&env.client, "own-secret").await;
    assert!(
        message.contains("401") || message.to_lowercase().contains("unauthorized"),
        "{message}"
    );
    waiting_reason(&pods, "own-secret", "ImagePullBackOff").await;

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
    assert!(
        container(&still, "c")["state"]["waiting"].is_object(),
        "pulled with another registry's credentials: {}",
        still["status"]
    );
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
    let ran = ready(&pods, "own-secret").await;
    assert_eq!(container(&ran, "c")["image"], "private:v1");

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
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "serviceAccountName": "builder",
        "containers": [private("Always")],
    });
    pods.create(&PostParams::default(), &pod("sa-secret", spec))
        .await
        .unwrap();
    ready(&pods, "sa-secret").await;
    // Without a secret, the same pull policy fails (so the pull above really needed it).
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "containers": [private("Always")],
    });
    pods.create(&PostParams::default(), &pod("no-secret", spec))
        .await
        .unwrap();
    pull_failed(&pods, "no-secret").await;

    for name in ["own-secret", "sa-secret", "no-secret"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    wait_for("the pods gone", Duration::from_secs(30), async || {
        let list = pods.list(&Default::default()).await.unwrap();
        list.items.is_empty().then_some(())
    })
    .await;
    kubelet.stop().await;
    drop(env);
    drop(registry);
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

    let mut limited = busybox("limited", "exec sleep 3600");
    limited["securityContext"] = json!({
        "runAsUser": 1000,
        "readOnlyRootFilesystem": true,
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    });
    let mut privileged = busybox("privileged", "exec sleep 3600");
    privileged["securityContext"] = json!({"privileged": true});
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "securityContext": {
            "runAsGroup": 3000,
            "supplementalGroups": [4000],
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"}],
        },
        "containers": [limited, busybox("plain", "exec sleep 3600"), privileged],
    });
    pods.create(&PostParams::default(), &pod("secure", spec))
        .await
        .unwrap();
    let secure = ready(&pods, "secure").await;
    let status = |name: &str| {
        let id = container_id(&secure, name);
        let env = &env;
        async move { exec(env, &id, &["cat", "/proc/1/status"]).await }
    };

    let limited = status("limited").await;
    let ids = |field: &str| {
        limited
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .map(|v| v.split_whitespace().next().unwrap_or_default().to_owned())
    };
    assert_eq!(ids("Uid:").as_deref(), Some("1000"), "{limited}");
    assert_eq!(ids("Gid:").as_deref(), Some("3000"), "{limited}");
    let groups = limited.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert!(groups.contains("4000"), "{groups}");
    assert_eq!(caps(&limited, "CapBnd:"), CAP_NET_BIND_SERVICE, "{limited}");
    assert_eq!(ids("NoNewPrivs:").as_deref(), Some("1"), "{limited}");
    // Filtered by the runtime's default profile (mode 2); unconfined (0) without one.
    assert_eq!(ids("Seccomp:").as_deref(), Some("2"), "{limited}");
    let id = container_id(&secure, "limited");
    let touch = env
        .cri
        .exec_sync(&id, &["touch", "/written"], Duration::from_secs(10))
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&touch.stderr);
    assert_ne!(touch.exit_code, 0, "the root filesystem is writable");
    assert!(said.contains("Read-only file system"), "{said}");

    // The pod's (safe) sysctl, set in its network namespace.
    let id = container_id(&secure, "plain");
    let port_start = exec(
        &env,
        &id,
        &["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
    )
    .await;
    assert_eq!(port_start.trim(), "80");
    let plain = status("plain").await;
    let seccomp = plain.lines().find(|l| l.starts_with("Seccomp:")).unwrap();
    assert!(seccomp.ends_with('0'), "{seccomp}");
    let plain = caps(&plain, "CapBnd:");
    let full = caps(&status("privileged").await, "CapBnd:");
    assert_eq!(plain & CAP_SYS_ADMIN, 0, "{plain:x}");
    assert_ne!(full & CAP_SYS_ADMIN, 0, "{full:x}");

    // runAsNonRoot with an image that runs as root: the kubelet refuses to create it.
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "securityContext": {"runAsNonRoot": true},
        "containers": [busybox("c", "exec sleep 3600")],
    });
    pods.create(&PostParams::default(), &pod("nonroot", spec))
        .await
        .unwrap();
    let refused = waiting_reason(&pods, "nonroot", "CreateContainerConfigError").await;
    let message = refused["state"]["waiting"]["message"].as_str().unwrap();
    assert!(message.contains("image will run as root"), "{refused}");

    // An unsafe sysctl the node does not allow: the pod is rejected and never runs.
    let spec = json!({
        "terminationGracePeriodSeconds": 0,
        "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]},
        "containers": [busybox("c", "exec sleep 3600")],
    });
    pods.create(&PostParams::default(), &pod("sysctl", spec))
        .await
        .unwrap();
    let rejected = wait_for(
        "the sysctl pod Failed",
        Duration::from_secs(30),
        async || {
            let pod = pod_json(&pods, "sysctl").await?;
            (pod["status"]["phase"] == "Failed").then_some(pod)
        },
    )
    .await;
    assert_eq!(
        rejected["status"]["reason"], "SysctlForbidden",
        "{}",
        rejected["status"]
    );
    let uid = rejected["metadata"]["uid"].as_str().unwrap();
    assert!(sandboxes_of(&env.cri, uid).await.is_empty());

    for name in ["secure", "nonroot", "sysctl"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    wait_for("the sandboxes gone", Duration::from_secs(30), async || {
        let left = env.cri.list_pod_sandbox(None).await.unwrap();
        left.is_empty().then_some(())
    })
    .await;
    kubelet.stop().await;
}
