//! persistentVolumeClaim volumes: the claim's bound PersistentVolume, of which the kubelet
//! mounts hostPath and local ones (their path on this node).

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;

use super::host_path::check_host_path;

/// The host path of the PV bound to claim `name` (hostPath and local PVs only).
pub async fn claim_path(client: &kube::Client, ns: &str, name: &str) -> Result<PathBuf, String> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let claim = claims
        .get_opt(name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("persistentvolumeclaim {name:?} not found"))?;
    let bound = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let volume_name = claim
        .spec
        .and_then(|s| s.volume_name)
        .filter(|v| bound && !v.is_empty())
        .ok_or_else(|| format!("persistentvolumeclaim {name:?} is not bound"))?;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let pv = volumes
        .get_opt(&volume_name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("persistentvolume {volume_name:?} not found"))?;
    let spec = pv.spec.unwrap_or_default();
    if let Some(host) = spec.host_path {
        check_host_path(&host.path, host.type_.as_deref().unwrap_or(""))?;
        Ok(PathBuf::from(host.path))
    } else if let Some(local) = spec.local {
        Ok(PathBuf::from(local.path))
    } else {
        Err(format!(
            "persistentvolume {volume_name:?} is neither hostPath nor local; not supported"
        ))
    }
}
