//! Pod volumes: a host directory per volume under `<root>/pods/<uid>/volumes/<kind>/<name>`,
//! prepared before containers are created, and the containers' `volumeMounts` as CRI mounts.
//!
//! emptyDir (a directory, or a tmpfs for `medium: Memory`), hostPath ([`host_path`], with its
//! type checks), persistentVolumeClaim ([`claims`]), and configMap, secret, downwardAPI and
//! projected volumes ([`contents`]), written by [`atomic_writer`] and refreshed every
//! [`RESYNC`]; [`mount`] has the host mounts, [`cri_mounts`] the containers' mounts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod, Volume};
use skiff_cri::v1;

use crate::Config;
use crate::configmap_secret::Sources;

pub mod atomic_writer;
pub mod claims;
pub mod contents;
pub mod cri_mounts;
pub mod empty_dir;
pub mod host_path;
pub mod mount;

pub use crate::downward_api::resource_value;
pub use cri_mounts::mounts;

use atomic_writer::{Files, write_atomically};
use mount::{is_mount_point, mount_points, mount_tmpfs};

/// How often configMap, secret, downwardAPI and projected volumes are rewritten from the API.
pub const RESYNC: Duration = Duration::from_secs(10);

/// `<root>/pods/<uid>`
pub fn pod_dir(config: &Config, uid: &str) -> PathBuf {
    config.root_dir.join("pods").join(uid)
}

/// The directory kind a volume lives under (the upstream plugin names).
fn kind_of(volume: &Volume) -> Option<&'static str> {
    if volume.empty_dir.is_some() {
        Some("kubernetes.io~empty-dir")
    } else if volume.config_map.is_some() {
        Some("kubernetes.io~configmap")
    } else if volume.secret.is_some() {
        Some("kubernetes.io~secret")
    } else if volume.downward_api.is_some() {
        Some("kubernetes.io~downward-api")
    } else if volume.projected.is_some() {
        Some("kubernetes.io~projected")
    } else {
        None
    }
}

/// `<root>/pods/<uid>/volumes/<kind>/<name>` for the volumes kept there.
fn volume_dir(config: &Config, uid: &str, volume: &Volume) -> Option<PathBuf> {
    Some(
        pod_dir(config, uid)
            .join("volumes")
            .join(kind_of(volume)?)
            .join(&volume.name),
    )
}

/// A pod's volumes as one worker keeps them.
#[derive(Default)]
pub struct State {
    last_sync: Option<Instant>,
    error: Option<String>,
    written: HashMap<String, Files>,
    warned: bool,
    /// persistentVolumeClaim volumes: the host path of the bound hostPath/local PV.
    claims: HashMap<String, PathBuf>,
}

impl State {
    /// The container's `volumeMounts` as CRI mounts (see [`mounts`]).
    pub fn mounts(
        &self,
        config: &Config,
        pod: &Pod,
        container: &Container,
        env: &[v1::KeyValue],
    ) -> Result<Vec<v1::Mount>, String> {
        mounts(config, &self.claims, pod, container, env)
    }

    /// Prepares (or refreshes, every [`RESYNC`]) the pod's volumes; `Err` holds the message of
    /// the first volume that cannot be set up (containers then wait with
    /// CreateContainerConfigError). A failed setup is retried at every call.
    pub async fn sync(
        &mut self,
        client: &kube::Client,
        sources: &mut Sources,
        config: &Config,
        pod: &Pod,
    ) -> Result<(), String> {
        let due = self.error.is_some() || self.last_sync.is_none_or(|t| t.elapsed() >= RESYNC);
        if due {
            let mut error = None;
            for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
                if let Err(e) = self.set_up(client, sources, config, pod, volume).await {
                    let name = &volume.name;
                    error = Some(format!(
                        "MountVolume.SetUp failed for volume {name:?} : {e}"
                    ));
                    break;
                }
            }
            self.last_sync = Some(Instant::now());
            if let Some(err) = &error {
                config.events.pod(pod).warning("FailedMount", err.as_str());
            }
            // Logged when it changes, not at every retry.
            if error != self.error {
                match &error {
                    Some(err) => tracing::warn!(pod = ?pod.metadata.name, %err, "volume setup"),
                    None if self.error.is_some() => {
                        tracing::info!(pod = ?pod.metadata.name, "volumes set up")
                    }
                    None => {}
                }
            }
            self.error = error;
        }
        match &self.error {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Sets up (or refreshes) one of the pod's volumes (Kubernetes' `SetUp`).
    async fn set_up(
        &mut self,
        client: &kube::Client,
        sources: &mut Sources,
        config: &Config,
        pod: &Pod,
        volume: &Volume,
    ) -> Result<(), String> {
        let io = |e: std::io::Error| e.to_string();
        if let Some(host) = &volume.host_path {
            return host_path::check_host_path(&host.path, host.type_.as_deref().unwrap_or(""));
        }
        if let Some(claim) = &volume.persistent_volume_claim {
            let path = claims::claim_path(client, sources.namespace(), &claim.claim_name).await?;
            self.claims.insert(volume.name.clone(), path);
            return Ok(());
        }
        let uid = pod.metadata.uid.as_deref().ok_or("pod without uid")?;
        let Some(dir) = volume_dir(config, uid, volume) else {
            tracing::warn!(volume = %volume.name, "volume kind not supported; not mounted");
            return Ok(());
        };
        if let Some(empty) = &volume.empty_dir {
            return empty_dir::set_up(&dir, empty).map_err(io);
        }
        // Secrets never touch the disk: their volume is a tmpfs, as in Kubernetes.
        if volume.secret.is_some() && !is_mount_point(&dir) {
            std::fs::create_dir_all(&dir).map_err(io)?;
            mount_tmpfs(&dir, None, 0o755).map_err(io)?;
        }
        let files = contents::files(sources, config, pod, volume, &mut self.warned).await?;
        if self.written.get(&volume.name) != Some(&files) || !dir.join("..data").exists() {
            write_atomically(&dir, &files).map_err(io)?;
            self.written.insert(volume.name.clone(), files);
        }
        Ok(())
    }
}

/// Removes the pod's volume directories, unmounting what is mounted under them first.
pub fn cleanup(config: &Config, uid: &str) -> std::io::Result<()> {
    let dir = pod_dir(config, uid);
    if !dir.exists() {
        return Ok(());
    }
    let mut mounted: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|p| p.starts_with(&dir))
        .collect();
    // Deepest first.
    mounted.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for path in mounted {
        mount::unmount(&path)?;
    }
    std::fs::remove_dir_all(&dir)
}
