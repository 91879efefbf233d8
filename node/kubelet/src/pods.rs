//! The pods bound to this node: a watch (field selector `spec.nodeName`) that feeds one
//! [`Worker`] per pod UID, and housekeeping that removes sandboxes and volume dirs of pods that are gone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use skiff_cri::{Cri, v1};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Config;
use crate::runtime::{MANAGED_BY, POD_UID};
use crate::worker::Worker;

const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(10);

/// The pods this kubelet runs (by UID, as last seen from the API), for the kubelet API's
/// `/pods`: a pod is known from its first event until its worker is done with it.
#[derive(Clone, Debug, Default)]
pub struct Known(Arc<std::sync::RwLock<std::collections::BTreeMap<String, Pod>>>);

impl Known {
    /// The known pods, ordered by UID.
    pub fn list(&self) -> Vec<Pod> {
        self.0
            .read()
            .expect("pods lock")
            .values()
            .cloned()
            .collect()
    }

    fn set(&self, uid: &str, pod: &Pod) {
        self.0
            .write()
            .expect("pods lock")
            .insert(uid.to_owned(), pod.clone());
    }

    fn remove(&self, uid: &str) {
        self.0.write().expect("pods lock").remove(uid);
    }
}

/// Watches the node's pods and runs their workers until the watch ends (never, normally).
/// Dropping the future aborts the workers and leaves the containers running.
pub async fn run(
    client: kube::Client,
    cri: Cri,
    config: Arc<Config>,
    known: Known,
) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::all(client.clone());
    let selector = format!("spec.nodeName={}", config.node_name);
    let stream =
        watcher::watcher(pods, watcher::Config::default().fields(&selector)).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut workers: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut tasks: JoinSet<String> = JoinSet::new();
    // UIDs seen in the current (re)list, to find pods deleted while the watch was down.
    let mut listed: HashSet<String> = HashSet::new();
    let mut synced = false;
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING_PERIOD);
    let mut relist = tokio::time::interval(config.relist_period);
    relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut relister = Relister::default();
    loop {
        tokio::select! {
            event = stream.next() => {
                let Some(event) = event else {
                    anyhow::bail!("the pod watch ended");
                };
                match event {
                    Ok(Event::Init) => listed.clear(),
                    Ok(Event::InitApply(pod)) => {
                        if let Some(uid) = pod.metadata.uid.clone() {
                            listed.insert(uid);
                        }
                        if let Some(uid) = &pod.metadata.uid {
                            known.set(uid, &pod);
                        }
                        dispatch(&client, &cri, &config, &mut workers, &mut tasks, pod);
                    }
                    Ok(Event::Apply(pod)) => {
                        if let Some(uid) = &pod.metadata.uid {
                            known.set(uid, &pod);
                        }
                        dispatch(&client, &cri, &config, &mut workers, &mut tasks, pod);
                    }
                    Ok(Event::Delete(pod)) => {
                        if let Some(worker) = pod.metadata.uid.and_then(|uid| workers.get(&uid)) {
                            worker.send_replace(None);
                        }
                    }
                    Ok(Event::InitDone) => {
                        for (uid, worker) in &workers {
                            if !listed.contains(uid) {
                                worker.send_replace(None);
                            }
                        }
                        synced = true;
                    }
                    Err(err) => tracing::warn!(%err, "pod watch"),
                }
            }
            Some(done) = tasks.join_next() => {
                match done {
                    Ok(uid) => {
                        workers.remove(&uid);
                        known.remove(&uid);
                    }
                    Err(err) => tracing::error!(%err, "a pod worker died"),
                }
            }
            _ = relist.tick() => {
                match relister.relist(&cri).await {
                    Ok(changed) => {
                        for uid in changed {
                            if let Some(worker) = workers.get(&uid) {
                                // Same pod, new runtime state: wake the worker.
                                worker.send_modify(|_| {});
                            }
                        }
                    }
                    Err(err) => tracing::warn!(%err, "relisting the runtime's pods"),
                }
            }
            _ = housekeeping.tick() => {
                if synced && let Err(err) = remove_orphans(&cri, &config, &workers).await {
                    tracing::warn!(%err, "removing sandboxes of unknown pods");
                }
            }
        }
    }
}

/// The kubelet's PLEG, reduced to what the workers need: one relist of the node's sandboxes and
/// containers per period (two CRI calls for the whole node), naming the pods whose sandboxes or
/// containers changed state, appeared or went since the last relist. A steady worker sleeps
/// long and relies on this to learn that a container exited.
#[derive(Debug, Default)]
struct Relister {
    /// Pod UID → a digest of its sandboxes' and containers' ids and states.
    last: HashMap<String, u64>,
}

impl Relister {
    async fn relist(&mut self, cri: &Cri) -> anyhow::Result<Vec<String>> {
        use std::hash::{Hash, Hasher};
        let sandboxes = cri.list_pod_sandbox(None).await?;
        let containers = cri.list_containers(None).await?;
        let mut uid_of: HashMap<&str, &str> = HashMap::new();
        let mut states: HashMap<&str, Vec<(&str, i32)>> = HashMap::new();
        for sandbox in &sandboxes {
            let Some(uid) = sandbox.labels.get(POD_UID) else {
                continue;
            };
            uid_of.insert(&sandbox.id, uid);
            states
                .entry(uid)
                .or_default()
                .push((&sandbox.id, sandbox.state));
        }
        for container in &containers {
            if let Some(uid) = uid_of.get(container.pod_sandbox_id.as_str()) {
                states
                    .entry(uid)
                    .or_default()
                    .push((&container.id, container.state));
            }
        }
        let now: HashMap<String, u64> = states
            .into_iter()
            .map(|(uid, mut list)| {
                list.sort_unstable();
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                list.hash(&mut hasher);
                (uid.to_owned(), hasher.finish())
            })
            .collect();
        let changed = now
            .iter()
            .filter(|(uid, digest)| self.last.get(*uid) != Some(digest))
            .map(|(uid, _)| uid.clone())
            .chain(
                self.last
                    .keys()
                    .filter(|uid| !now.contains_key(*uid))
                    .cloned(),
            )
            .collect();
        self.last = now;
        Ok(changed)
    }
}

/// Whether `new` asks anything different of the node than `old`: the spec, or the metadata
/// the kubelet acts on (labels and annotations reach the downward API; deletion starts the
/// kill). A status or resourceVersion change alone does not.
fn differs_semantically(old: &Pod, new: &Pod) -> bool {
    let (a, b) = (&old.metadata, &new.metadata);
    old.spec != new.spec
        || a.labels != b.labels
        || a.annotations != b.annotations
        || a.deletion_timestamp != b.deletion_timestamp
        || a.deletion_grace_period_seconds != b.deletion_grace_period_seconds
        || a.owner_references != b.owner_references
}

fn dispatch(
    client: &kube::Client,
    cri: &Cri,
    config: &Arc<Config>,
    workers: &mut HashMap<String, watch::Sender<Option<Pod>>>,
    tasks: &mut JoinSet<String>,
    pod: Pod,
) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    if let Some(worker) = workers.get(&uid) {
        // The worker always reads the newest object, but only a change beyond the status wakes
        // it (as the kubelet's pod config reports only semantic changes): its own status
        // writes coming back through the watch must not trigger another sync.
        worker.send_if_modified(|current| {
            let wake = current
                .as_ref()
                .is_none_or(|current| differs_semantically(current, &pod));
            *current = Some(pod);
            wake
        });
        return;
    }
    let (tx, rx) = watch::channel(Some(pod));
    workers.insert(uid.clone(), tx);
    let worker = Worker::new(client.clone(), cri.clone(), config.clone());
    tasks.spawn(worker.run(uid, rx));
}

/// Sandboxes this kubelet made for pods that no longer exist (deleted while it was down).
async fn remove_orphans(
    cri: &Cri,
    config: &Config,
    workers: &HashMap<String, watch::Sender<Option<Pod>>>,
) -> anyhow::Result<()> {
    let filter = v1::PodSandboxFilter {
        label_selector: [(MANAGED_BY.to_owned(), "skiff-kubelet".to_owned())].into(),
        ..Default::default()
    };
    for sandbox in cri.list_pod_sandbox(Some(filter)).await? {
        let Some(uid) = sandbox.labels.get(POD_UID) else {
            continue;
        };
        if !workers.contains_key(uid) {
            tracing::info!(%uid, sandbox = %sandbox.id, "removing the sandbox of a pod that is gone");
            cri.stop_pod_sandbox(&sandbox.id).await?;
            cri.remove_pod_sandbox(&sandbox.id).await?;
        }
    }
    // Cgroups of pods that are gone (empty ones only; a teardown may not have got them all).
    let root = std::path::Path::new(crate::cgroups::CGROUP_ROOT);
    for uid in crate::cgroups::pod_uids(root, &config.cgroup_parent) {
        if !workers.contains_key(&uid)
            && let Err(err) = crate::cgroups::remove_pod_cgroup(root, &uid, &config.cgroup_parent)
        {
            tracing::debug!(%uid, %err, "the cgroup of a pod that is gone is not empty yet");
        }
    }
    // Volume dirs of pods that are gone.
    let Ok(entries) = std::fs::read_dir(config.root_dir.join("pods")) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let uid = entry.file_name().to_string_lossy().into_owned();
        if !workers.contains_key(&uid) {
            tracing::info!(%uid, "removing the volumes of a pod that is gone");
            if let Err(err) = crate::volumes::cleanup(config, &uid) {
                tracing::warn!(%uid, %err, "removing the volumes of a pod that is gone");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "p", "uid": "u1", "resourceVersion": "5",
                          "labels": { "app": "web" } },
            "spec": { "containers": [{ "name": "c", "image": "busybox" }] },
        }))
        .unwrap()
    }

    #[test]
    fn only_spec_and_acted_on_metadata_wake_a_worker() {
        let old = pod();
        let mut status_only = old.clone();
        status_only.metadata.resource_version = Some("6".into());
        status_only.status = Some(Default::default());
        assert!(!differs_semantically(&old, &status_only));

        let mut image = old.clone();
        image.spec.as_mut().unwrap().containers[0].image = Some("nginx".into());
        assert!(differs_semantically(&old, &image));

        let mut labels = old.clone();
        labels.metadata.labels = None;
        assert!(differs_semantically(&old, &labels));

        let mut deleted = old.clone();
        deleted.metadata.deletion_grace_period_seconds = Some(30);
        assert!(differs_semantically(&old, &deleted));
    }
}
