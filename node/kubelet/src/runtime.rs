//! How a pod maps onto CRI requests: the sandbox config, container configs, and the labels
//! by which a (restarted) kubelet finds a pod's sandboxes and containers again.

use std::collections::HashMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Pod};
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

/// Requests and limits as CRI Linux resources: CPU limit → CFS quota per 100 ms period, CPU
/// request → shares (1024 per core, at least 2), memory limit → bytes.
pub fn resources(container: &Container) -> v1::LinuxContainerResources {
    let mut out = v1::LinuxContainerResources::default();
    let Some(resources) = &container.resources else {
        out.cpu_shares = 2;
        return out;
    };
    let get = |map: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               key: &str| map.as_ref().and_then(|m| m.get(key)).map(|q| q.0.clone());
    let cpu_limit = get(&resources.limits, "cpu").and_then(|q| quantity::millicores(&q));
    // A request defaults to the limit when only the limit is set.
    let cpu_request = get(&resources.requests, "cpu")
        .and_then(|q| quantity::millicores(&q))
        .or(cpu_limit);
    if let Some(millis) = cpu_limit {
        out.cpu_period = CPU_PERIOD;
        // The kernel's minimum quota is 1 ms.
        out.cpu_quota = (millis * CPU_PERIOD / 1000).max(1000);
    }
    out.cpu_shares = cpu_request.map_or(2, |m| (m * 1024 / 1000).max(2));
    if let Some(bytes) = get(&resources.limits, "memory").and_then(|q| quantity::bytes(&q)) {
        out.memory_limit_in_bytes = bytes;
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
