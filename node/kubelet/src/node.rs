//! The Node object: registration, status (capacity, addresses, nodeInfo, conditions) and the
//! Lease in `kube-node-lease` that tells the control plane this kubelet is alive.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, PodCondition};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use skiff_cri::Cri;

use crate::{Config, KUBELET_VERSION};

/// Status is re-sent at least this often even when nothing changed (lastHeartbeatTime).
const STATUS_REPORT_PERIOD: Duration = Duration::from_secs(60);

/// Seconds (UTC, RFC 3339) as the API's `Time` fields carry them.
pub fn now_time() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

/// The conditions an object had, for `lastTransitionTime`: it moves only when a condition's
/// status does (Kubernetes' rule for node and pod conditions alike).
pub struct Transitions {
    previous: HashMap<String, (String, Option<String>)>,
    /// The time of this update.
    pub now: String,
}

impl Transitions {
    /// From the previous conditions as (type, status, lastTransitionTime).
    pub fn new(previous: impl IntoIterator<Item = (String, String, Option<String>)>) -> Self {
        Transitions {
            previous: previous
                .into_iter()
                .map(|(kind, status, since)| (kind, (status, since)))
                .collect(),
            now: now_time(),
        }
    }

    /// From an object's conditions as the API returned them (`None`: it had none).
    pub fn of<C: Condition>(previous: Option<Vec<C>>) -> Self {
        Transitions::new(previous.into_iter().flatten().map(Condition::parts))
    }

    /// Whether condition `kind` changes (or first appears) with this status.
    pub fn changed(&self, kind: &str, ok: bool) -> bool {
        let status = if ok { "True" } else { "False" };
        self.previous.get(kind).is_none_or(|(old, _)| old != status)
    }

    /// Condition `kind`'s status word and its lastTransitionTime.
    pub fn status(&self, kind: &str, ok: bool) -> (&'static str, String) {
        let status = if ok { "True" } else { "False" };
        let since = match self.previous.get(kind) {
            Some((old, Some(since))) if old == status => since.clone(),
            _ => self.now.clone(),
        };
        (status, since)
    }
}

/// A condition as [`Transitions`] reads it: (type, status, lastTransitionTime).
pub trait Condition {
    /// The condition's type, status and lastTransitionTime.
    fn parts(self) -> (String, String, Option<String>);
}

/// Node and pod conditions have the same fields.
macro_rules! condition {
    ($($kind:ty),*) => {$(
        impl Condition for $kind {
            fn parts(self) -> (String, String, Option<String>) {
                let since = self.last_transition_time.map(|t| t.0.to_string());
                (self.type_, self.status, since)
            }
        }
    )*};
}
condition!(NodeCondition, PodCondition);

/// Microseconds, as the API's `MicroTime` fields (Lease renewTime) carry them.
pub fn now_micro_time() -> String {
    let now = jiff::Timestamp::now();
    let seconds = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    let text = seconds.to_string();
    let base = text.trim_end_matches('Z');
    format!("{base}.{:06}Z", now.subsec_microsecond())
}

/// Creates the Node if absent. Another component (the pod network) may have created it
/// already with a podCIDR: an existing Node is never replaced, only its status is patched.
pub async fn register(client: &kube::Client, cri: &Cri, config: &Config) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let name = &config.node_name;
    if nodes.get_opt(name).await?.is_none() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch(),
            }},
        }))?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => tracing::info!(node = %name, "registered the Node"),
            // Created meanwhile by someone else: fine, we only patch from here on.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => return Err(err.into()),
        }
    }
    update_status(client, cri, config).await?;
    Ok(())
}

/// Renews the Lease every `lease_period` and patches the Node status when it changes (or
/// every minute); errors are logged and retried on the next tick.
pub async fn heartbeat(client: kube::Client, cri: Cri, config: Arc<Config>) {
    let mut ticker = tokio::time::interval(config.lease_period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<(Value, Instant)> = None;
    loop {
        ticker.tick().await;
        if let Err(err) = renew_lease(&client, &config).await {
            tracing::warn!(%err, "renewing the node Lease");
        }
        let observed = match observe(&cri, &config).await {
            Ok(observed) => observed,
            Err(err) => {
                tracing::warn!(%err, "observing the node");
                continue;
            }
        };
        let due = match &last {
            Some((previous, at)) => *previous != observed || at.elapsed() >= STATUS_REPORT_PERIOD,
            None => true,
        };
        if due {
            match patch_status(&client, &config, &observed).await {
                Ok(()) => last = Some((observed, Instant::now())),
                Err(err) => tracing::warn!(%err, "patching the Node status"),
            }
        }
    }
}

async fn update_status(client: &kube::Client, cri: &Cri, config: &Config) -> anyhow::Result<()> {
    let observed = observe(cri, config).await?;
    patch_status(client, config, &observed).await
}

/// What the node looks like now, without timestamps (so two observations compare equal when
/// nothing changed): `{capacity, nodeInfo, addresses, ready: (bool, message), kubeletPort}`.
async fn observe(cri: &Cri, config: &Config) -> anyhow::Result<Value> {
    let version = cri.version().await?;
    let (ready, message) = match cri.status(false).await {
        Ok(status) => match skiff_cri::condition(&status, "RuntimeReady") {
            Some(c) if c.status => (true, "kubelet is posting ready status".to_owned()),
            Some(c) => (false, format!("container runtime not ready: {}", c.message)),
            None => (
                false,
                "container runtime reports no RuntimeReady".to_owned(),
            ),
        },
        Err(err) => (false, format!("container runtime status: {err}")),
    };
    let capacity = capacity(config);
    let addresses: Vec<Value> = config
        .addresses
        .iter()
        .map(|(kind, address)| json!({"type": kind, "address": address}))
        .collect();
    Ok(json!({
        "capacity": capacity,
        "addresses": addresses,
        "nodeInfo": {
            "kernelVersion": read_trimmed("/proc/sys/kernel/osrelease"),
            "osImage": os_image(),
            "containerRuntimeVersion":
                format!("{}://{}", version.runtime_name, version.runtime_version),
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": arch(),
            "machineID": read_trimmed("/etc/machine-id"),
            "bootID": read_trimmed("/proc/sys/kernel/random/boot_id"),
            "systemUUID": "",
        },
        "ready": [ready, message],
        "kubeletPort": config.server_bind.port(),
    }))
}

async fn patch_status(
    client: &kube::Client,
    config: &Config,
    observed: &Value,
) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let name = &config.node_name;
    let current = nodes.get(name).await?;
    let transitions = Transitions::of(current.status.and_then(|s| s.conditions));
    let now = &transitions.now;
    let condition = |kind: &str, ok: bool, reason: &str, message: &str| {
        let (status, since) = transitions.status(kind, ok);
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": since})
    };
    let ready = observed["ready"][0].as_bool().unwrap_or(false);
    let message = observed["ready"][1].as_str().unwrap_or_default();
    let conditions = vec![
        condition(
            "MemoryPressure",
            false,
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        condition(
            "DiskPressure",
            false,
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        condition(
            "PIDPressure",
            false,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        condition(
            "Ready",
            ready,
            if ready {
                "KubeletReady"
            } else {
                "KubeletNotReady"
            },
            message,
        ),
    ];
    // A strategic merge keeps conditions others own (NetworkUnavailable) and the spec.
    let patch = json!({"status": {
        "capacity": observed["capacity"],
        "allocatable": observed["capacity"],
        "addresses": observed["addresses"],
        "nodeInfo": observed["nodeInfo"],
        "conditions": conditions,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": observed["kubeletPort"]}},
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    // The kubelet's node status events, on each transition.
    let events = config.events.node(name);
    for (kind, ok, reason) in [
        ("MemoryPressure", false, "NodeHasSufficientMemory"),
        ("DiskPressure", false, "NodeHasNoDiskPressure"),
        ("PIDPressure", false, "NodeHasSufficientPID"),
        (
            "Ready",
            ready,
            if ready { "NodeReady" } else { "NodeNotReady" },
        ),
    ] {
        if transitions.changed(kind, ok) {
            events.normal(reason, format!("Node {name} status is now: {reason}"));
        }
    }
    Ok(())
}

async fn renew_lease(client: &kube::Client, config: &Config) -> anyhow::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let name = &config.node_name;
    let now = now_micro_time();
    if leases.get_opt(name).await?.is_some() {
        let patch = json!({"spec": {"holderIdentity": name, "renewTime": now}});
        leases
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        return Ok(());
    }
    // Owned by the Node, so deleting the Node collects its Lease.
    let nodes: Api<Node> = Api::all(client.clone());
    let owner = nodes.get_opt(name).await?.and_then(|n| n.metadata.uid);
    let mut lease = json!({
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now},
    });
    if let Some(uid) = owner {
        lease["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}]);
    }
    let lease: Lease = serde_json::from_value(lease)?;
    match leases.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// cpu (online CPUs), memory (MemTotal), pods and ephemeral-storage (the size of the
/// filesystem holding `ephemeral_storage_dir`).
fn capacity(config: &Config) -> Value {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let mut capacity = json!({
        "cpu": cpus.to_string(),
        "memory": format!("{memory_kib}Ki"),
        "pods": config.max_pods.to_string(),
    });
    if let Some(bytes) = filesystem_size(&config.ephemeral_storage_dir) {
        capacity["ephemeral-storage"] = json!(bytes.to_string());
    }
    capacity
}

pub(crate) fn filesystem_size(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid value for the kernel to overwrite.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a pointer to a live statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_blocks as u64 * stat.f_frsize as u64)
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn os_image() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".to_owned())
}

/// The GOARCH-style architecture name Kubernetes uses.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
