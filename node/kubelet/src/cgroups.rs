//! Pod cgroups, as the kubelet lays them out with the cgroupfs driver: Guaranteed pods
//! directly under the cgroup parent, Burstable and BestEffort ones under a directory per QoS
//! class. The runtime creates a pod's cgroup (as its containers' parent) but removes only the
//! containers' own cgroups, so the kubelet removes the pod's once its sandboxes are gone.

use std::collections::BTreeSet;
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

use crate::status;

/// Where the cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup (relative to each hierarchy's root) of the pod with `uid` under `parent`:
/// `<parent>/pod<uid>`, `<parent>/burstable/pod<uid>` or `<parent>/besteffort/pod<uid>`.
pub fn pod_cgroup(pod: &Pod, uid: &str, parent: &str) -> String {
    let parent = parent.trim_end_matches('/');
    match status::qos_class(pod) {
        "Guaranteed" => format!("{parent}/pod{uid}"),
        "Burstable" => format!("{parent}/burstable/pod{uid}"),
        _ => format!("{parent}/besteffort/pod{uid}"),
    }
}

/// Removes the pod's cgroup in every hierarchy under `root` (`/sys/fs/cgroup`: the v1
/// controllers and the unified one), whichever QoS class it was made under (a pod's class
/// cannot change, but the kubelet may not have its spec any more). Empty cgroups only: one
/// still holding a process stays, and the error is returned.
pub fn remove_pod_cgroup(root: &Path, uid: &str, parent: &str) -> std::io::Result<()> {
    let parent = parent.trim_start_matches('/').trim_end_matches('/');
    let mut hierarchies: Vec<_> = std::fs::read_dir(root)?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    // A pure cgroup2 host has its cgroups right at the root.
    hierarchies.push(root.to_owned());
    let mut result = Ok(());
    for hierarchy in hierarchies {
        for qos in ["", "burstable/", "besteffort/"] {
            let dir = hierarchy.join(format!("{parent}/{qos}pod{uid}"));
            match std::fs::remove_dir(&dir) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    result = Err(std::io::Error::new(
                        err.kind(),
                        format!("{}: {err}", dir.display()),
                    ));
                }
                _ => {}
            }
        }
    }
    result
}

/// The uids of the pods that have a cgroup under `parent` in any hierarchy under `root`
/// (for the housekeeping that removes those of pods that are gone).
pub fn pod_uids(root: &Path, parent: &str) -> BTreeSet<String> {
    let parent = parent.trim_start_matches('/').trim_end_matches('/');
    let mut hierarchies: Vec<_> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    hierarchies.push(root.to_owned());
    let mut uids = BTreeSet::new();
    for hierarchy in hierarchies {
        for qos in ["", "burstable", "besteffort"] {
            let Ok(entries) = std::fs::read_dir(hierarchy.join(parent).join(qos)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let uid = name.to_str().and_then(|n| n.strip_prefix("pod"));
                if let Some(uid) = uid.filter(|_| entry.path().is_dir()) {
                    uids.insert(uid.to_owned());
                }
            }
        }
    }
    uids
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(resources: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "uid": "u1"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]},
        }))
        .unwrap()
    }

    #[test]
    fn the_qos_class_picks_the_parent() {
        let guaranteed = pod(json!({"limits": {"cpu": "1", "memory": "64Mi"}}));
        assert_eq!(
            pod_cgroup(&guaranteed, "u1", "/kubepods/"),
            "/kubepods/podu1"
        );
        let burstable = pod(json!({"requests": {"cpu": "100m"}}));
        assert_eq!(
            pod_cgroup(&burstable, "u1", "/kubepods"),
            "/kubepods/burstable/podu1"
        );
        let best_effort = pod(json!({}));
        assert_eq!(
            pod_cgroup(&best_effort, "u1", "/kubepods"),
            "/kubepods/besteffort/podu1"
        );
    }

    #[test]
    fn removal_takes_every_hierarchy_and_class_and_keeps_the_rest() {
        let root = std::env::temp_dir().join(format!("skiff-cgroups-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in [
            "memory/kubepods/burstable/podu1",
            "unified/kubepods/burstable/podu1",
            "cpu/kubepods/podu2",
            "kubepods/besteffort/podu1",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let uids: Vec<String> = pod_uids(&root, "/kubepods").into_iter().collect();
        assert_eq!(uids, ["u1", "u2"]);
        remove_pod_cgroup(&root, "u1", "/kubepods").unwrap();
        assert_eq!(pod_uids(&root, "/kubepods").len(), 1);
        assert!(!root.join("memory/kubepods/burstable/podu1").exists());
        assert!(!root.join("unified/kubepods/burstable/podu1").exists());
        assert!(!root.join("kubepods/besteffort/podu1").exists());
        assert!(root.join("memory/kubepods/burstable").exists());
        assert!(root.join("cpu/kubepods/podu2").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
