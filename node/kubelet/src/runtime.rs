//! How a pod maps onto CRI requests: the sandbox config, container configs, and the labels
//! by which a (restarted) kubelet finds a pod's sandboxes and containers again. Ephemeral
//! containers run as containers ([`ephemeral_container`]) with the same labels, so streaming
//! and logs find them by name like any other; one with a target joins the target's PID
//! namespace ([`share_target_pid`]).

use std::collections::HashMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod};
use skiff_cri::v1;

use crate::Config;
use crate::cgroups;
use crate::quantity;
use crate::security;

/// The CRI labels (the same keys the upstream kubelet uses).
pub const POD_UID: &str = "io.kubernetes.pod.uid";
/// The pod's name.
pub const POD_NAME: &str = "io.kubernetes.pod.name";
/// The pod's namespace.
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// The container's name in the pod spec.
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Marks everything this kubelet created, so it never touches other CRI clients' pods.
pub const MANAGED_BY: &str = "io.skiff.managed-by";

/// CFS period the CPU limit is expressed in (µs), as Kubernetes uses.
const CPU_PERIOD: i64 = 100_000;

/// The pod's identity as the worker uses it.
#[derive(Clone, Debug)]
pub struct PodRef {
    /// metadata.uid
    pub uid: String,
    /// metadata.name
    pub name: String,
    /// metadata.namespace
    pub namespace: String,
}

impl PodRef {
    /// The pod's identity; `None` for a pod without uid or name.
    pub fn of(pod: &Pod) -> Option<PodRef> {
        Some(PodRef {
            uid: pod.metadata.uid.clone()?,
            name: pod.metadata.name.clone()?,
            namespace: pod
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
        })
    }

    /// The labels on the pod's sandbox.
    pub fn labels(&self) -> HashMap<String, String> {
        [
            (POD_UID, self.uid.as_str()),
            (POD_NAME, self.name.as_str()),
            (POD_NAMESPACE, self.namespace.as_str()),
            (MANAGED_BY, "skiff-kubelet"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// `<root>/<namespace>_<name>_<uid>`
    pub fn log_dir(&self, config: &Config) -> PathBuf {
        config
            .pod_log_root
            .join(format!("{}_{}_{}", self.namespace, self.name, self.uid))
    }
}

/// Whether the pod shares the node's network namespace.
pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

fn namespace_options(pod: &Pod) -> v1::NamespaceOption {
    let spec = pod.spec.as_ref();
    let mode = |host: bool| {
        if host {
            v1::NamespaceMode::Node
        } else {
            v1::NamespaceMode::Pod
        }
    };
    let pid = if spec.and_then(|s| s.host_pid).unwrap_or(false) {
        v1::NamespaceMode::Node
    } else if spec
        .and_then(|s| s.share_process_namespace)
        .unwrap_or(false)
    {
        v1::NamespaceMode::Pod
    } else {
        v1::NamespaceMode::Container
    };
    v1::NamespaceOption {
        network: mode(host_network(pod)).into(),
        pid: pid.into(),
        ipc: mode(spec.and_then(|s| s.host_ipc).unwrap_or(false)).into(),
        ..Default::default()
    }
}

/// The RunPodSandbox config for `pod` (deterministic, so the same config can be passed to
/// CreateContainer after a kubelet restart).
pub fn sandbox_config(
    pod: &Pod,
    id: &PodRef,
    attempt: u32,
    config: &Config,
) -> v1::PodSandboxConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let hostname = if host_network(pod) {
        // The node's own hostname (containerd fills it in).
        String::new()
    } else {
        let name = spec.hostname.clone().unwrap_or_else(|| id.name.clone());
        // A hostname is at most 63 characters.
        name.chars().take(63).collect()
    };
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| v1::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => v1::Protocol::Udp,
                Some("SCTP") => v1::Protocol::Sctp,
                _ => v1::Protocol::Tcp,
            }
            .into(),
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: id.name.clone(),
            uid: id.uid.clone(),
            namespace: id.namespace.clone(),
            attempt,
        }),
        hostname,
        log_directory: id.log_dir(config).display().to_string(),
        port_mappings,
        labels: id.labels(),
        linux: Some(v1::LinuxPodSandboxConfig {
            cgroup_parent: cgroups::pod_cgroup(pod, &id.uid, &config.cgroup_parent),
            security_context: Some(security::sandbox(
                pod,
                namespace_options(pod),
                &config.root_dir,
            )),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The container an ephemeral container runs as: its common part, the same fields as a
/// container's (Kubernetes converts `EphemeralContainerCommon` to `Container` the same way).
pub fn ephemeral_container(ephemeral: &EphemeralContainer) -> Container {
    let mut value = serde_json::to_value(ephemeral).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("targetContainerName");
    }
    serde_json::from_value(value).unwrap_or_else(|_| Container {
        name: ephemeral.name.clone(),
        ..Default::default()
    })
}

/// Puts the container in the PID namespace of the container `target_id` (an ephemeral
/// container's `targetContainerName`), as the kubelet does: only when the pod gives each
/// container its own (a pod sharing one namespace, or the node's, keeps it).
pub fn share_target_pid(config: &mut v1::ContainerConfig, target_id: &str) {
    let namespaces = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut());
    if let Some(namespaces) = namespaces
        && namespaces.pid == v1::NamespaceMode::Container as i32
    {
        namespaces.pid = v1::NamespaceMode::Target.into();
        namespaces.target_id = target_id.to_owned();
    }
}

/// Requests and limits as CRI Linux resources, as Kubernetes' kuberuntime sets them: CPU limit
/// → CFS quota per 100 ms period, CPU request → shares, memory limit → bytes.
pub fn resources(container: &Container) -> v1::LinuxContainerResources {
    let mut out = v1::LinuxContainerResources::default();
    let resources = container.resources.clone().unwrap_or_default();
    let get = |list: &Option<std::collections::BTreeMap<String, _>>, name: &str| {
        list.as_ref()
            .and_then(|l| l.get(name))
            .and_then(quantity::parse)
    };
    let cpu_limit = get(&resources.limits, "cpu");
    // A request defaults to the limit when only the limit is set.
    let cpu_request = get(&resources.requests, "cpu").or(cpu_limit);
    if let Some(limit) = cpu_limit {
        out.cpu_period = CPU_PERIOD;
        out.cpu_quota = quantity::milli_cpu_to_quota(limit.milli_value(), CPU_PERIOD);
    }
    out.cpu_shares = quantity::milli_cpu_to_shares(cpu_request.map_or(0, |r| r.milli_value()));
    if let Some(limit) = get(&resources.limits, "memory") {
        out.memory_limit_in_bytes = limit.value();
    }
    out
}

/// The CreateContainer config for `container` (attempt = restart count), with its resolved
/// environment and image (an image id).
pub fn container_config(
    pod: &Pod,
    id: &PodRef,
    container: &Container,
    attempt: u32,
    image: &str,
    envs: Vec<v1::KeyValue>,
    config: &Config,
) -> v1::ContainerConfig {
    let mut labels = id.labels();
    labels.insert(CONTAINER_NAME.to_owned(), container.name.clone());
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: container.name.clone(),
            attempt,
        }),
        image: Some(skiff_cri::image_spec(image)),
        command: container.command.clone().unwrap_or_default(),
        args: container.args.clone().unwrap_or_default(),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs,
        labels,
        log_path: format!("{}/{attempt}.log", container.name),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        linux: Some(v1::LinuxContainerConfig {
            resources: Some(resources(container)),
            security_context: Some(security::container(
                pod,
                container,
                namespace_options(pod),
                &config.root_dir,
            )),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The target's PID namespace only replaces a container's own; a pod-wide or node-wide one
    /// stays, as Kubernetes leaves `shareProcessNamespace` and `hostPID` pods.
    #[test]
    fn ephemeral_containers_join_their_targets_pid_namespace() {
        let cases = [
            (json!({}), v1::NamespaceMode::Target, "target-id"),
            (
                json!({"shareProcessNamespace": true}),
                v1::NamespaceMode::Pod,
                "",
            ),
            (json!({"hostPID": true}), v1::NamespaceMode::Node, ""),
        ];
        for (spec, mode, target) in cases {
            let mut spec = spec;
            spec["containers"] = json!([{"name": "c"}]);
            spec["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox",
                "targetContainerName": "c", "command": ["sh"], "stdin": true,
                "volumeMounts": [{"name": "v", "mountPath": "/v"}]}]);
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": "p", "uid": "u"}, "spec": spec,
            }))
            .unwrap();
            let id = PodRef::of(&pod).unwrap();
            let ephemeral = &pod
                .spec
                .as_ref()
                .unwrap()
                .ephemeral_containers
                .as_ref()
                .unwrap()[0];
            let container = ephemeral_container(ephemeral);
            assert_eq!(container.name, "debug");
            assert_eq!(container.command, Some(vec!["sh".to_owned()]));
            assert_eq!(container.stdin, Some(true));
            assert_eq!(container.volume_mounts.as_ref().map(Vec::len), Some(1));
            let config = Config::new("node");
            let mut cri = container_config(&pod, &id, &container, 0, "img", Vec::new(), &config);
            share_target_pid(&mut cri, "target-id");
            let namespaces = cri
                .linux
                .unwrap()
                .security_context
                .unwrap()
                .namespace_options
                .unwrap();
            assert_eq!(namespaces.pid, mode as i32, "{pod:?}");
            assert_eq!(namespaces.target_id, target);
            assert_eq!(cri.labels[CONTAINER_NAME], "debug");
        }
    }

    fn container(resources: serde_json::Value) -> Container {
        serde_json::from_value(serde_json::json!({"name": "c", "resources": resources})).unwrap()
    }

    /// CRI resources for requests/limits: shares as `MilliCPUToShares`, quota as
    /// `MilliCPUToQuota` over a 100 ms period, the memory limit in bytes.
    #[test]
    fn cri_resources_follow_kubernetes() {
        // (requested cpu, cpu limit, shares, quota)
        let cases = [
            (None, None, 2, 0),
            (Some("0"), None, 2, 0),
            (Some("1m"), None, 2, 0),
            (Some("2m"), None, 2, 0),
            (Some("3m"), None, 3, 0),
            (Some("9m"), None, 9, 0),
            (Some("0.009"), None, 9, 0),
            (Some("100m"), None, 102, 0),
            (Some("0.1"), None, 102, 0),
            (Some("250m"), None, 256, 0),
            (Some("1"), None, 1024, 0),
            (Some("1.5"), None, 1536, 0),
            (Some("256"), None, 262144, 0),
            (Some("300"), None, 262144, 0),
            (Some("100m"), Some("9m"), 102, 1000),
            (Some("10m"), Some("10m"), 10, 1000),
            (Some("11m"), Some("0.011"), 11, 1100),
            (Some("0.011"), Some("11m"), 11, 1100),
            (None, Some("500m"), 512, 50000),
            (None, Some("1.5"), 1536, 150000),
            (None, Some("2"), 2048, 200000),
            (Some("0"), Some("0"), 2, 0),
        ];
        for (request, limit, shares, quota) in cases {
            let mut resources = serde_json::json!({});
            if let Some(r) = request {
                resources["requests"] = serde_json::json!({"cpu": r});
            }
            if let Some(l) = limit {
                resources["limits"] = serde_json::json!({"cpu": l});
            }
            let got = super::resources(&container(resources));
            assert_eq!(got.cpu_shares, shares, "{request:?} {limit:?}");
            assert_eq!(got.cpu_quota, quota, "{request:?} {limit:?}");
            let period = if limit.is_some() { CPU_PERIOD } else { 0 };
            assert_eq!(got.cpu_period, period, "{request:?} {limit:?}");
        }
        for (limit, bytes) in [
            ("128Mi", 128 << 20),
            ("1.5Gi", 3 << 29),
            ("1e9", 1_000_000_000),
            ("0.5Ki", 512),
            ("100.5", 101),
        ] {
            let got =
                super::resources(&container(serde_json::json!({"limits": {"memory": limit}})));
            assert_eq!(got.memory_limit_in_bytes, bytes, "{limit}");
        }
    }
}
