//! Pod volumes: a host directory per volume under `<root>/pods/<uid>/volumes/<kind>/<name>`,
//! prepared before containers are created, and the containers' `volumeMounts` as CRI mounts.
//!
//! emptyDir (a directory, or a tmpfs for `medium: Memory`), hostPath (with its type checks),
//! configMap, secret, downwardAPI and projected volumes. The API-backed kinds are written
//! atomically the way Kubernetes does: the files go into a fresh timestamped directory, then a
//! `..data` symlink is swapped to it, and each top-level name is a symlink through `..data`.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, PersistentVolume,
    PersistentVolumeClaim, Pod, Secret, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use skiff_cri::v1;

use crate::Config;
use crate::quantity;

/// How often configMap, secret, downwardAPI and projected volumes are rewritten from the API.
pub const RESYNC: Duration = Duration::from_secs(10);

/// Kubernetes' default file mode for API-backed volumes (0644).
const DEFAULT_MODE: u32 = 0o644;

/// The files of an API-backed volume: relative path → (content, mode).
type Files = BTreeMap<String, (Vec<u8>, u32)>;

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
        config: &Config,
        pod: &Pod,
    ) -> Result<(), String> {
        let due = self.error.is_some() || self.last_sync.is_none_or(|t| t.elapsed() >= RESYNC);
        if due {
            let error = self.prepare(client, config, pod).await.err();
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

    async fn prepare(
        &mut self,
        client: &kube::Client,
        config: &Config,
        pod: &Pod,
    ) -> Result<(), String> {
        let uid = pod.metadata.uid.as_deref().ok_or("pod without uid")?;
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        for volume in &volumes {
            let failed = |e: String| {
                format!(
                    "MountVolume.SetUp failed for volume {:?} : {e}",
                    volume.name
                )
            };
            if let Some(host) = &volume.host_path {
                check_host_path(&host.path, host.type_.as_deref().unwrap_or("")).map_err(failed)?;
                continue;
            }
            if let Some(claim) = &volume.persistent_volume_claim {
                let path = claim_path(client, namespace, &claim.claim_name)
                    .await
                    .map_err(failed)?;
                self.claims.insert(volume.name.clone(), path);
                continue;
            }
            let Some(dir) = volume_dir(config, uid, volume) else {
                tracing::warn!(volume = %volume.name, "volume kind not supported; not mounted");
                continue;
            };
            if let Some(empty) = &volume.empty_dir {
                std::fs::create_dir_all(&dir).map_err(|e| failed(e.to_string()))?;
                if empty.medium.as_deref() == Some("Memory") && !is_mount_point(&dir) {
                    let size = empty.size_limit.as_ref().and_then(quantity::value);
                    mount_tmpfs(&dir, size, 0o777).map_err(|e| failed(e.to_string()))?;
                }
                // Writable by every user, as Kubernetes makes it.
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                    .map_err(|e| failed(e.to_string()))?;
                continue;
            }
            // Secrets never touch the disk: their volume is a tmpfs, as in Kubernetes.
            if volume.secret.is_some() && !is_mount_point(&dir) {
                std::fs::create_dir_all(&dir).map_err(|e| failed(e.to_string()))?;
                mount_tmpfs(&dir, None, 0o755).map_err(|e| failed(e.to_string()))?;
            }
            let files = self
                .files(client, config, namespace, pod, volume)
                .await
                .map_err(failed)?;
            if self.written.get(&volume.name) != Some(&files) || !dir.join("..data").exists() {
                write_atomically(&dir, &files).map_err(|e| failed(e.to_string()))?;
                self.written.insert(volume.name.clone(), files);
            }
        }
        Ok(())
    }

    /// The files an API-backed volume should hold now.
    async fn files(
        &mut self,
        client: &kube::Client,
        config: &Config,
        ns: &str,
        pod: &Pod,
        volume: &Volume,
    ) -> Result<Files, String> {
        let mut files = Files::new();
        if let Some(source) = &volume.config_map {
            let mode = mode_of(source.default_mode);
            let optional = source.optional.unwrap_or(false);
            keyed_files(
                client,
                ns,
                Keyed::ConfigMap,
                &source.name,
                source.items.as_deref(),
                optional,
                mode,
                &mut files,
            )
            .await?;
        } else if let Some(source) = &volume.secret {
            let mode = mode_of(source.default_mode);
            let optional = source.optional.unwrap_or(false);
            let name = source.secret_name.clone().unwrap_or_default();
            keyed_files(
                client,
                ns,
                Keyed::Secret,
                &name,
                source.items.as_deref(),
                optional,
                mode,
                &mut files,
            )
            .await?;
        } else if let Some(source) = &volume.downward_api {
            let mode = mode_of(source.default_mode);
            downward_files(
                config,
                pod,
                source.items.as_deref().unwrap_or_default(),
                mode,
                &mut files,
            )?;
        } else if let Some(source) = &volume.projected {
            let mode = mode_of(source.default_mode);
            for projection in source.sources.iter().flatten() {
                if let Some(cm) = &projection.config_map {
                    let optional = cm.optional.unwrap_or(false);
                    keyed_files(
                        client,
                        ns,
                        Keyed::ConfigMap,
                        &cm.name,
                        cm.items.as_deref(),
                        optional,
                        mode,
                        &mut files,
                    )
                    .await?;
                }
                if let Some(secret) = &projection.secret {
                    let optional = secret.optional.unwrap_or(false);
                    keyed_files(
                        client,
                        ns,
                        Keyed::Secret,
                        &secret.name,
                        secret.items.as_deref(),
                        optional,
                        mode,
                        &mut files,
                    )
                    .await?;
                }
                if let Some(downward) = &projection.downward_api {
                    downward_files(
                        config,
                        pod,
                        downward.items.as_deref().unwrap_or_default(),
                        mode,
                        &mut files,
                    )?;
                }
                if projection.service_account_token.is_some() && !self.warned {
                    self.warned = true;
                    tracing::warn!(pod = ?pod.metadata.name, volume = %volume.name,
                        "projected serviceAccountToken sources are not supported yet; skipped");
                }
            }
        }
        Ok(files)
    }
}

fn mode_of(mode: Option<i32>) -> u32 {
    mode.map_or(DEFAULT_MODE, |m| (m as u32) & 0o7777)
}

/// Keys (or `items`) as files; a key named by `items` that is missing is an error unless
/// the source is optional.
fn key_files(
    what: &str,
    name: &str,
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    optional: bool,
    mode: u32,
    files: &mut Files,
) -> Result<(), String> {
    match items {
        None => {
            for (key, value) in data {
                files.insert(key, (value, mode));
            }
        }
        Some(items) => {
            for item in items {
                check_relative(&item.path)?;
                match data.get(&item.key) {
                    Some(value) => {
                        let mode = item.mode.map_or(mode, |m| (m as u32) & 0o7777);
                        files.insert(item.path.clone(), (value.clone(), mode));
                    }
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "{what} {name:?} references non-existent config key: {}",
                            item.key
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The kinds whose keys become files.
#[derive(Clone, Copy)]
enum Keyed {
    ConfigMap,
    Secret,
}

impl Keyed {
    fn kind(self) -> &'static str {
        match self {
            Keyed::ConfigMap => "configmap",
            Keyed::Secret => "secret",
        }
    }

    /// The object's keys and contents, `None` when it does not exist.
    async fn data(
        self,
        client: &kube::Client,
        ns: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        let mut data = BTreeMap::new();
        match self {
            Keyed::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
                let Some(cm) = api.get_opt(name).await.map_err(|e| e.to_string())? else {
                    return Ok(None);
                };
                for (k, v) in cm.data.unwrap_or_default() {
                    data.insert(k, v.into_bytes());
                }
                for (k, v) in cm.binary_data.unwrap_or_default() {
                    data.insert(k, v.0);
                }
            }
            Keyed::Secret => {
                let api: Api<Secret> = Api::namespaced(client.clone(), ns);
                let Some(secret) = api.get_opt(name).await.map_err(|e| e.to_string())? else {
                    return Ok(None);
                };
                for (k, v) in secret.data.unwrap_or_default() {
                    data.insert(k, v.0);
                }
                for (k, v) in secret.string_data.unwrap_or_default() {
                    data.insert(k, v.into_bytes());
                }
            }
        }
        Ok(Some(data))
    }
}

/// The files of a configMap or secret volume (or projection).
#[allow(clippy::too_many_arguments)]
async fn keyed_files(
    client: &kube::Client,
    ns: &str,
    keyed: Keyed,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: bool,
    mode: u32,
    files: &mut Files,
) -> Result<(), String> {
    let Some(data) = keyed.data(client, ns, name).await? else {
        if optional {
            return Ok(());
        }
        return Err(format!("{} {name:?} not found", keyed.kind()));
    };
    key_files(keyed.kind(), name, data, items, optional, mode, files)
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

fn downward_files(
    config: &Config,
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    mode: u32,
    files: &mut Files,
) -> Result<(), String> {
    let meta = &pod.metadata;
    for item in items {
        check_relative(&item.path)?;
        let value = if let Some(field) = &item.field_ref {
            let path = field.field_path.as_str();
            let keyed = |prefix: &str| {
                path.strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix("['"))
                    .and_then(|r| r.strip_suffix("']"))
                    .map(str::to_owned)
            };
            match path {
                "metadata.name" => meta.name.clone().unwrap_or_default(),
                "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
                "metadata.uid" => meta.uid.clone().unwrap_or_default(),
                "metadata.labels" => format_map(&meta.labels),
                "metadata.annotations" => format_map(&meta.annotations),
                _ => {
                    if let Some(key) = keyed("metadata.labels") {
                        meta.labels
                            .as_ref()
                            .and_then(|m| m.get(&key).cloned())
                            .unwrap_or_default()
                    } else if let Some(key) = keyed("metadata.annotations") {
                        meta.annotations
                            .as_ref()
                            .and_then(|m| m.get(&key).cloned())
                            .unwrap_or_default()
                    } else {
                        return Err(format!(
                            "unsupported fieldRef {path} in a downwardAPI volume"
                        ));
                    }
                }
            }
        } else if let Some(field) = &item.resource_field_ref {
            let container = field.container_name.as_deref().unwrap_or_default();
            resource_value(
                config,
                pod,
                container,
                &field.resource,
                field.divisor.as_ref(),
            )?
        } else {
            continue;
        };
        let mode = item.mode.map_or(mode, |m| (m as u32) & 0o7777);
        files.insert(item.path.clone(), (value.into_bytes(), mode));
    }
    Ok(())
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

/// A relative path without `..` (item paths may not escape the volume).
fn check_relative(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if path.is_empty()
        || p.is_absolute()
        || p.components().any(|c| matches!(c, Component::ParentDir))
        || path.starts_with("..")
    {
        return Err(format!("invalid path {path:?}"));
    }
    Ok(())
}

/// Writes `files` into a fresh `..<timestamp>` directory, swaps `..data` to it, links each
/// top-level name through `..data`, and removes the old directory and stale links.
fn write_atomically(dir: &Path, files: &Files) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let stamp = jiff::Timestamp::now()
        .strftime("%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    let fresh_name = format!("..{stamp}");
    let fresh = dir.join(&fresh_name);
    std::fs::create_dir(&fresh)?;
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o755))?;
    for (path, (content, mode)) in files {
        let target = fresh.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&fresh_name, &tmp)?;
    std::fs::rename(&tmp, dir.join("..data"))?;
    let top: std::collections::BTreeSet<String> = files
        .keys()
        .filter_map(|p| Path::new(p).components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    for name in &top {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") {
            // The previous data dir, and any left by an interrupted write.
            let stale_dir = name != fresh_name && name != "..data" && entry.file_type()?.is_dir();
            if stale_dir {
                std::fs::remove_dir_all(entry.path())?;
            }
        } else if !top.contains(&name) && entry.file_type()?.is_symlink() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// hostPath `type` checks (DirectoryOrCreate and FileOrCreate create what is missing).
fn check_host_path(path: &str, kind: &str) -> Result<(), String> {
    let p = Path::new(path);
    let meta = std::fs::metadata(p);
    let fail = |what: &str| {
        Err(format!(
            "hostPath type check failed: {path} is not a {what}"
        ))
    };
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if meta.is_err() {
                std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())?;
            } else if !meta.as_ref().is_ok_and(|m| m.is_dir()) {
                return fail("directory");
            }
            Ok(())
        }
        "Directory" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            _ => fail("directory"),
        },
        "FileOrCreate" => {
            if meta.is_err() {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                let file = std::fs::File::create(p).map_err(|e| e.to_string())?;
                file.set_permissions(std::fs::Permissions::from_mode(0o644))
                    .map_err(|e| e.to_string())?;
            } else if !meta.as_ref().is_ok_and(|m| m.is_file()) {
                return fail("file");
            }
            Ok(())
        }
        "File" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            _ => fail("file"),
        },
        "Socket" => match meta {
            Ok(m) if m.file_type().is_socket() => Ok(()),
            _ => fail("socket"),
        },
        "CharDevice" => match meta {
            Ok(m) if m.file_type().is_char_device() => Ok(()),
            _ => fail("character device"),
        },
        "BlockDevice" => match meta {
            Ok(m) if m.file_type().is_block_device() => Ok(()),
            _ => fail("block device"),
        },
        other => Err(format!("unknown hostPath type {other:?}")),
    }
}

/// Mount points (from /proc/self/mountinfo), with octal escapes undone.
fn mount_points() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| {
            PathBuf::from(
                p.replace("\\040", " ")
                    .replace("\\011", "\t")
                    .replace("\\134", "\\"),
            )
        })
        .collect()
}

fn is_mount_point(path: &Path) -> bool {
    mount_points().iter().any(|p| p == path)
}

fn cstring(path: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

fn mount_tmpfs(path: &Path, size: Option<i64>, mode: u32) -> std::io::Result<()> {
    let target = cstring(path)?;
    let mut options = format!("mode={mode:o}");
    if let Some(size) = size.filter(|s| *s > 0) {
        options.push_str(&format!(",size={size}"));
    }
    let options = std::ffi::CString::new(options).map_err(std::io::Error::other)?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
        let target = cstring(&path)?;
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    std::fs::remove_dir_all(&dir)
}

/// The host path of the PV bound to claim `name` (hostPath and local PVs only).
async fn claim_path(client: &kube::Client, ns: &str, name: &str) -> Result<PathBuf, String> {
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

/// `$(VAR)` references in a subPathExpr replaced by the container's environment (unknown
/// ones stay as written, `$$` is a literal `$`).
fn expand(expr: &str, env: &[v1::KeyValue]) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after
            .strip_prefix('(')
            .and_then(|inner| inner.split_once(')'))
        {
            match env.iter().rev().find(|kv| kv.key == name) {
                Some(kv) => out.push_str(&kv.value),
                None => out.push_str(&format!("$({name})")),
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

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

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("skiff-volumes-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn atomic_writes_swap_data_and_links() {
        let dir = tempdir("atomic");
        let mut files = Files::new();
        files.insert("a".into(), (b"one".to_vec(), 0o644));
        files.insert("sub/b".into(), (b"two".to_vec(), 0o600));
        write_atomically(&dir, &files).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).unwrap(), "two");
        let mode = std::fs::metadata(dir.join("sub/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read_link(dir.join("..data")).unwrap();

        files.remove("sub/b");
        files.insert("a".into(), (b"changed".to_vec(), 0o644));
        write_atomically(&dir, &files).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "changed");
        assert!(std::fs::symlink_metadata(dir.join("sub")).is_err());
        assert!(!dir.join(&first).exists(), "the old data dir is removed");
        let entries = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(entries, 3, "..data, the timestamped dir and a");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn items_select_keys_and_modes() {
        let data: BTreeMap<String, Vec<u8>> = [
            ("k1".to_owned(), b"v1".to_vec()),
            ("k2".to_owned(), b"v2".to_vec()),
        ]
        .into();
        let items = [KeyToPath {
            key: "k2".into(),
            path: "dir/file".into(),
            mode: Some(0o400),
            ..Default::default()
        }];
        let mut files = Files::new();
        key_files(
            "configmap",
            "c",
            data.clone(),
            Some(&items),
            false,
            0o644,
            &mut files,
        )
        .unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files["dir/file"], (b"v2".to_vec(), 0o400));
        let missing = [KeyToPath {
            key: "nope".into(),
            path: "x".into(),
            ..Default::default()
        }];
        let err = key_files(
            "configmap",
            "c",
            data.clone(),
            Some(&missing),
            false,
            0o644,
            &mut files,
        );
        assert!(err.unwrap_err().contains("non-existent config key: nope"));
        key_files(
            "configmap",
            "c",
            data,
            Some(&missing),
            true,
            0o644,
            &mut files,
        )
        .unwrap();
        assert!(check_relative("../x").is_err());
        assert!(check_relative("/x").is_err());
    }

    #[test]
    fn host_path_types() {
        let dir = tempdir("hostpath");
        let path = dir.join("d");
        let p = path.to_str().unwrap();
        assert!(check_host_path(p, "Directory").is_err());
        check_host_path(p, "DirectoryOrCreate").unwrap();
        check_host_path(p, "Directory").unwrap();
        assert!(
            check_host_path(p, "File")
                .unwrap_err()
                .contains("is not a file")
        );
        let file = dir.join("f");
        let f = file.to_str().unwrap();
        check_host_path(f, "FileOrCreate").unwrap();
        check_host_path(f, "File").unwrap();
        assert!(check_host_path(f, "DirectoryOrCreate").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

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

    #[test]
    fn downward_api_files() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "1", "b": "x y"}},
        }))
        .unwrap();
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(serde_json::json!([
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "b", "fieldRef": {"fieldPath": "metadata.labels['b']"}, "mode": 0o600},
        ]))
        .unwrap();
        let mut files = Files::new();
        downward_files(&Config::new("n"), &pod, &items, 0o644, &mut files).unwrap();
        assert_eq!(files["name"], (b"p".to_vec(), 0o644));
        assert_eq!(files["labels"].0, b"a=\"1\"\nb=\"x y\"");
        assert_eq!(files["b"], (b"x y".to_vec(), 0o600));
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

    #[test]
    fn sub_path_expressions() {
        let env = [v1::KeyValue {
            key: "POD".into(),
            value: "web-1".into(),
        }];
        assert_eq!(expand("logs/$(POD)", &env), "logs/web-1");
        assert_eq!(expand("$(MISSING)/x", &env), "$(MISSING)/x");
        assert_eq!(expand("a$$b$", &env), "a$b$");
    }
}
