//! The downward API: a pod's own fields (`fieldRef`) and its containers' resources
//! (`resourceFieldRef`), for environment variables and for downwardAPI and projected volumes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::Config;
use crate::quantity;

/// Who reads a `fieldRef`: Kubernetes allows more fields in env than in volumes (a volume's
/// files are written before the pod has IPs), and volumes may name all labels or annotations.
#[derive(Clone, Copy, Debug)]
pub enum Consumer<'a> {
    /// `env[].valueFrom.fieldRef`, with the pod's and the node's IPs as the sync knows them.
    Env {
        /// `status.podIP`
        pod_ip: Option<&'a str>,
        /// `status.hostIP`
        host_ip: Option<&'a str>,
    },
    /// A downwardAPI volume's (or projection's) item.
    Volume,
}

/// `key="value"` lines, sorted, as Kubernetes writes labels and annotations.
fn format_map(map: &Option<BTreeMap<String, String>>) -> String {
    map.iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v:?}\n"))
        .collect::<String>()
        .trim_end_matches('\n')
        .to_owned()
}

/// The value of `fieldRef.fieldPath` `path` of `pod` for `consumer`.
pub fn field_value(pod: &Pod, path: &str, consumer: Consumer<'_>) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let lookup = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let keyed = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix("['"))
            .and_then(|rest| rest.strip_suffix("']"))
            .map(str::to_owned)
    };
    let ip = |ip: Option<&str>| ip.unwrap_or_default().to_owned();
    Ok(match (path, consumer) {
        ("metadata.name", _) => meta.name.clone().unwrap_or_default(),
        ("metadata.namespace", _) => meta.namespace.clone().unwrap_or_default(),
        ("metadata.uid", _) => meta.uid.clone().unwrap_or_default(),
        ("metadata.labels", Consumer::Volume) => format_map(&meta.labels),
        ("metadata.annotations", Consumer::Volume) => format_map(&meta.annotations),
        ("spec.nodeName", Consumer::Env { .. }) => {
            spec.and_then(|s| s.node_name.clone()).unwrap_or_default()
        }
        ("spec.serviceAccountName", Consumer::Env { .. }) => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        ("status.podIP" | "status.podIPs", Consumer::Env { pod_ip, .. }) => ip(pod_ip),
        ("status.hostIP" | "status.hostIPs", Consumer::Env { host_ip, .. }) => ip(host_ip),
        _ => {
            if let Some(key) = keyed("metadata.labels") {
                lookup(&meta.labels, &key)
            } else if let Some(key) = keyed("metadata.annotations") {
                lookup(&meta.annotations, &key)
            } else if let Consumer::Volume = consumer {
                return Err(format!(
                    "unsupported fieldRef {path} in a downwardAPI volume"
                ));
            } else {
                return Err(format!("unsupported fieldRef {path}"));
            }
        }
    })
}

/// A container's resource for `resourceFieldRef` (env or downwardAPI file), in units of
/// `divisor` rounded up; an unset limit is the node's allocatable amount, an unset request
/// the limit (if set) or 0, as Kubernetes reports them.
pub fn resource_value(
    config: &Config,
    pod: &Pod,
    container: &str,
    resource: &str,
    divisor: Option<&Quantity>,
) -> Result<String, String> {
    let spec = pod.spec.as_ref().ok_or("pod without spec")?;
    let c = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == container)
        .ok_or_else(|| format!("resourceFieldRef: no container {container:?}"))?;
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported resource {resource:?}"))?;
    let get = |map: &Option<BTreeMap<String, Quantity>>| map.as_ref()?.get(name).cloned();
    let resources = c.resources.clone().unwrap_or_default();
    let limit = get(&resources.limits);
    let request = get(&resources.requests).or_else(|| limit.clone());
    // Kubernetes divides cpu in millicores and everything else in base units (bytes).
    let cpu = name == "cpu";
    let amount = |q: &Quantity| {
        if cpu {
            quantity::milli_value(q)
        } else {
            quantity::value(q)
        }
    };
    let value = match kind {
        "limits" => match &limit {
            Some(q) => amount(q),
            None => Some(node_allocatable(config, name)?),
        },
        "requests" => request.as_ref().map_or(Some(0), amount),
        _ => None,
    }
    .ok_or_else(|| format!("unsupported resource {resource:?}"))?;
    let unit = match divisor {
        Some(q) => amount(q).filter(|d| *d > 0).ok_or("invalid divisor")?,
        None if cpu => 1000,
        None => 1,
    };
    // Rounded up, as Kubernetes' ceil of the quotient.
    Ok((value / unit + i64::from(value % unit > 0)).to_string())
}

/// The node's cpu (millicores), memory or ephemeral-storage (bytes).
fn node_allocatable(config: &Config, name: &str) -> Result<i64, String> {
    match name {
        "cpu" => Ok(std::thread::available_parallelism().map_or(1, |n| n.get()) as i64 * 1000),
        "memory" => std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
            })
            .map(|kib| kib * 1024)
            .ok_or_else(|| "no MemTotal in /proc/meminfo".to_owned()),
        "ephemeral-storage" => crate::node::filesystem_size(&config.ephemeral_storage_dir)
            .map(|b| b as i64)
            .ok_or_else(|| "no ephemeral storage size".to_owned()),
        other => Err(format!("unsupported resource {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                "labels": {"a": "1", "b": "x y"}, "annotations": {"note": "hi"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": []},
        }))
        .unwrap()
    }

    #[test]
    fn env_fields() {
        let pod = pod();
        let env = Consumer::Env {
            pod_ip: Some("10.0.0.7"),
            host_ip: None,
        };
        for (path, want) in [
            ("metadata.name", "p"),
            ("metadata.namespace", "ns"),
            ("metadata.uid", "u1"),
            ("spec.nodeName", "n1"),
            ("spec.serviceAccountName", "sa"),
            ("status.podIP", "10.0.0.7"),
            ("status.podIPs", "10.0.0.7"),
            ("status.hostIP", ""),
            ("metadata.labels['b']", "x y"),
            ("metadata.labels['missing']", ""),
            ("metadata.annotations['note']", "hi"),
        ] {
            assert_eq!(field_value(&pod, path, env).as_deref(), Ok(want), "{path}");
        }
        assert_eq!(
            field_value(&pod, "metadata.labels", env).unwrap_err(),
            "unsupported fieldRef metadata.labels",
            "a whole map is for volumes"
        );
    }

    #[test]
    fn volume_fields() {
        let pod = pod();
        for (path, want) in [
            ("metadata.name", "p"),
            ("metadata.labels", "a=\"1\"\nb=\"x y\""),
            ("metadata.annotations", "note=\"hi\""),
            ("metadata.annotations['note']", "hi"),
        ] {
            let got = field_value(&pod, path, Consumer::Volume);
            assert_eq!(got.as_deref(), Ok(want), "{path}");
        }
        for env_only in ["spec.nodeName", "status.podIP"] {
            assert_eq!(
                field_value(&pod, env_only, Consumer::Volume).unwrap_err(),
                format!("unsupported fieldRef {env_only} in a downwardAPI volume")
            );
        }
    }

    #[test]
    fn resource_field_values() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "resources": {
                "limits": {"cpu": "1500m", "memory": "128Mi"},
                "requests": {"memory": "64Mi"},
            }}]},
        }))
        .unwrap();
        let config = Config::new("n");
        let value = |resource: &str, divisor: Option<&str>| {
            let divisor = divisor.map(|d| Quantity(d.to_owned()));
            resource_value(&config, &pod, "c", resource, divisor.as_ref()).unwrap()
        };
        assert_eq!(value("limits.cpu", None), "2");
        assert_eq!(value("limits.cpu", Some("1m")), "1500");
        assert_eq!(value("requests.cpu", Some("1m")), "1500");
        assert_eq!(value("limits.memory", Some("1Mi")), "128");
        assert_eq!(value("requests.memory", None), (64 << 20).to_string());
        assert!(resource_value(&config, &pod, "other", "limits.cpu", None).is_err());
    }

    /// Kubernetes' rule: ceil(milli-cpu / divisor's milli-value) for cpu, ceil(bytes / divisor's
    /// value) for memory and ephemeral-storage, in exact integers.
    #[test]
    fn resource_field_values_are_exact() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "resources": {
                "limits": {"cpu": "9m", "memory": "1.5Gi", "ephemeral-storage": "0.011G"},
                "requests": {"cpu": "0.011", "memory": "100M"},
            }}]},
        }))
        .unwrap();
        let config = Config::new("n");
        let value = |resource: &str, divisor: Option<&str>| {
            let divisor = divisor.map(|d| Quantity(d.to_owned()));
            resource_value(&config, &pod, "c", resource, divisor.as_ref()).unwrap()
        };
        assert_eq!(value("limits.cpu", Some("1m")), "9");
        assert_eq!(value("limits.cpu", None), "1");
        assert_eq!(value("requests.cpu", Some("1m")), "11");
        assert_eq!(value("requests.cpu", Some("10m")), "2");
        assert_eq!(value("requests.cpu", Some("11m")), "1");
        assert_eq!(value("limits.memory", Some("1Mi")), "1536");
        assert_eq!(value("limits.memory", Some("1Gi")), "2");
        assert_eq!(value("requests.memory", Some("1Mi")), "96");
        assert_eq!(value("requests.memory", Some("1M")), "100");
        assert_eq!(value("limits.ephemeral-storage", Some("1M")), "11");
        assert_eq!(value("limits.ephemeral-storage", None), "11000000");
        assert_eq!(value("requests.ephemeral-storage", None), "11000000");
    }
}
