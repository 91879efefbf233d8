//! A container's `volumeMounts` as CRI mounts (Kubernetes' `makeMounts`): each volume's host
//! directory, its subPath or subPathExpr, read-only-ness and mount propagation.

use std::collections::HashMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Pod};
use skiff_cri::v1;

use super::atomic_writer::check_relative;
use super::volume_dir;
use crate::Config;
use crate::env::expand;

/// The container's `volumeMounts` as CRI mounts (subPath joined and created for emptyDir
/// and hostPath volumes; API-backed volumes are read-only, as in Kubernetes).
pub fn mounts(
    config: &Config,
    claims: &HashMap<String, PathBuf>,
    pod: &Pod,
    container: &Container,
    env: &[v1::KeyValue],
) -> Result<Vec<v1::Mount>, String> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    let mut out = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = volumes
            .and_then(|v| v.iter().find(|v| v.name == mount.name))
            .ok_or_else(|| {
                format!(
                    "cannot find volume {:?} to mount into container {:?}",
                    mount.name, container.name
                )
            })?;
        let mut read_only = mount.read_only.unwrap_or(false);
        let (base, api_backed) = if let Some(host) = &volume.host_path {
            (PathBuf::from(&host.path), false)
        } else if let Some(claim) = &volume.persistent_volume_claim {
            read_only |= claim.read_only.unwrap_or(false);
            let path = claims.get(&volume.name).ok_or_else(|| {
                format!("persistentvolumeclaim {:?} is not set up", claim.claim_name)
            })?;
            (path.clone(), false)
        } else if let Some(dir) = volume_dir(config, uid, volume) {
            (dir, volume.empty_dir.is_none())
        } else {
            continue;
        };
        let mut host_path = base.clone();
        let sub = match mount.sub_path_expr.as_deref().filter(|s| !s.is_empty()) {
            Some(expr) => Some(expand(expr, env)),
            None => mount.sub_path.clone(),
        };
        if let Some(sub) = sub.as_deref().filter(|s| !s.is_empty()) {
            check_relative(sub)?;
            host_path = base.join(sub);
            if !api_backed && std::fs::symlink_metadata(&host_path).is_err() {
                std::fs::create_dir_all(&host_path).map_err(|e| e.to_string())?;
            }
        }
        let propagation = match mount.mount_propagation.as_deref() {
            Some("HostToContainer") => v1::MountPropagation::PropagationHostToContainer,
            Some("Bidirectional") => v1::MountPropagation::PropagationBidirectional,
            _ => v1::MountPropagation::PropagationPrivate,
        };
        out.push(v1::Mount {
            container_path: mount.mount_path.clone(),
            host_path: host_path.display().to_string(),
            readonly: read_only || api_backed,
            propagation: propagation.into(),
            ..Default::default()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_mounts_become_cri_mounts() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "uid": "u1"},
            "spec": {
                "volumes": [
                    {"name": "scratch", "emptyDir": {}},
                    {"name": "conf", "configMap": {"name": "c"}},
                    {"name": "host", "hostPath": {"path": "/srv"}},
                ],
                "containers": [{"name": "c", "volumeMounts": [
                    {"name": "scratch", "mountPath": "/scratch", "readOnly": true},
                    {"name": "conf", "mountPath": "/etc/conf"},
                    {"name": "host", "mountPath": "/srv"},
                ]}],
            },
        }))
        .unwrap();
        let mut config = Config::new("n");
        config.root_dir = PathBuf::from("/root-dir");
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let mounts = mounts(&config, &HashMap::new(), &pod, container, &[]).unwrap();
        let got: Vec<(&str, &str, bool)> = mounts
            .iter()
            .map(|m| (m.container_path.as_str(), m.host_path.as_str(), m.readonly))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/scratch",
                    "/root-dir/pods/u1/volumes/kubernetes.io~empty-dir/scratch",
                    true
                ),
                (
                    "/etc/conf",
                    "/root-dir/pods/u1/volumes/kubernetes.io~configmap/conf",
                    true
                ),
                ("/srv", "/srv", false),
            ]
        );
    }

    /// A pod with `volumes` and one container mounting `mounts`, and a kubelet rooted in
    /// `/root-dir`.
    fn pod_with(volumes: serde_json::Value, mounts: serde_json::Value) -> (Pod, Config) {
        let spec = serde_json::json!({
            "volumes": volumes,
            "containers": [{"name": "c", "volumeMounts": mounts}],
        });
        let pod = serde_json::json!({"metadata": {"name": "p", "uid": "u1"}, "spec": spec});
        let mut config = Config::new("n");
        config.root_dir = PathBuf::from("/root-dir");
        (serde_json::from_value(pod).unwrap(), config)
    }

    #[test]
    fn sub_paths_and_propagation() {
        let (pod, config) = pod_with(
            serde_json::json!([
                {"name": "conf", "configMap": {"name": "c"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "d", "readOnly": true}},
            ]),
            serde_json::json!([
                {"name": "conf", "mountPath": "/etc/app", "subPathExpr": "$(POD)/app.conf",
                 "mountPropagation": "HostToContainer"},
                {"name": "data", "mountPath": "/data"},
            ]),
        );
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let env = [v1::KeyValue {
            key: "POD".into(),
            value: "p".into(),
        }];
        let missing = mounts(&config, &HashMap::new(), &pod, container, &env);
        assert_eq!(
            missing.unwrap_err(),
            "persistentvolumeclaim \"d\" is not set up"
        );
        let claims = [("data".to_owned(), PathBuf::from("/pv/d"))].into();
        let mounts = mounts(&config, &claims, &pod, container, &env).unwrap();
        assert_eq!(
            mounts[0].host_path,
            "/root-dir/pods/u1/volumes/kubernetes.io~configmap/conf/p/app.conf"
        );
        assert_eq!(
            mounts[0].propagation,
            i32::from(v1::MountPropagation::PropagationHostToContainer)
        );
        assert!(mounts[0].readonly, "API-backed volumes are read-only");
        assert_eq!(
            (mounts[1].host_path.as_str(), mounts[1].readonly),
            ("/pv/d", true)
        );
    }
}
