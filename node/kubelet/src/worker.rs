//! One worker per pod: a level-triggered sync (Kubernetes' PodSync) that compares the pod spec
//! with what the CRI reports and takes the next step (sandbox, image, init container, app
//! container, restart, probe, ephemeral container), then reports the status; and the teardown
//! when the pod is deleted. Images come from [`images`], environments from [`env`](mod@env), volumes from
//! [`volumes`], each ConfigMap and Secret from the pass's [`Sources`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};
use skiff_cri::{Cri, v1};
use tokio::sync::watch;

use crate::Config;
use crate::backoff::Backoff;
use crate::configmap_secret::Sources;
use crate::downward_api::Consumer;
use crate::probe;
use crate::runtime::{self, POD_UID, PodRef};
use crate::status::{self, ContainerView};
use crate::volumes;
use crate::{cgroups, dns, env, hooks, images, security};

/// A sync that acted (started or stopped something) is followed at once by another, which
/// observes the result; this bounds such chains before the next wait.
const MAX_CHAINED_SYNCS: usize = 8;
/// How long a steady pod's worker sleeps between syncs (configMap and secret volumes are
/// refreshed then too); the relister and pod changes wake it sooner.
const STEADY_RESYNC: std::time::Duration = std::time::Duration::from_secs(10);

/// A pod's worker.
pub struct Worker {
    client: kube::Client,
    cri: Cri,
    config: Arc<Config>,
    /// Crash-loop back-off per container name.
    backoff: Backoff,
    images: images::Manager,
    probes: probe::Manager,
    /// The last sync found every container running and nothing to probe: the worker sleeps
    /// for [`STEADY_RESYNC`] and is woken early by the pod's changes or the relister's.
    steady: bool,
    last_status: Option<Value>,
    last_pod: Option<Pod>,
    volumes: volumes::State,
}

/// The newest two CRI instances of one container name.
#[derive(Default)]
struct Instances {
    latest: Option<v1::ContainerStatus>,
    previous: Option<v1::ContainerStatus>,
}

fn attempt(status: &v1::ContainerStatus) -> u32 {
    status.metadata.as_ref().map_or(0, |m| m.attempt)
}

fn is(status: &v1::ContainerStatus, state: v1::ContainerState) -> bool {
    status.state == state as i32
}

fn since_epoch(nanos: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64)
}

fn uid_filter(uid: &str) -> HashMap<String, String> {
    [(POD_UID.to_owned(), uid.to_owned())].into()
}

/// The pod's grace period for stopping containers.
fn grace_period(pod: &Pod) -> Duration {
    let seconds = pod
        .metadata
        .deletion_grace_period_seconds
        .or(pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30);
    Duration::from_secs(seconds.max(0) as u64)
}

impl Worker {
    /// A worker for one pod.
    pub fn new(client: kube::Client, cri: Cri, config: Arc<Config>) -> Worker {
        Worker {
            backoff: Backoff::new(config.backoff_initial, config.backoff_max),
            images: images::Manager::new(cri.clone(), client.clone(), &config),
            client,
            cri,
            config,
            probes: probe::Manager::default(),
            steady: false,
            last_status: None,
            last_pod: None,
            volumes: volumes::State::default(),
        }
    }

    /// Syncs the pod the channel holds, on every change and every relist period, until the
    /// pod is deleted (`None`: gone from the API) and torn down, or the channel closes.
    pub async fn run(mut self, uid: String, mut pods: watch::Receiver<Option<Pod>>) -> String {
        loop {
            let pod = pods.borrow_and_update().clone();
            match pod {
                None => match self.teardown(&uid).await {
                    Ok(()) => return uid,
                    Err(err) => tracing::warn!(%uid, %err, "tearing down a removed pod"),
                },
                Some(pod) if pod.metadata.deletion_timestamp.is_some() => {
                    match self.terminate(&uid, &pod).await {
                        Ok(()) => return uid,
                        Err(err) => tracing::warn!(%uid, %err, "terminating a deleted pod"),
                    }
                }
                Some(pod) => {
                    self.last_pod = Some(pod.clone());
                    for _ in 0..MAX_CHAINED_SYNCS {
                        // A deletion cancels a sync stuck in a long step (a postStart hook
                        // that does not return), as the kubelet cancels a pod's sync to kill it.
                        let result = tokio::select! {
                            result = self.sync(&pod) => result,
                            () = until_deleted(&mut pods) => break,
                        };
                        match result {
                            Ok(true) => continue,
                            Ok(false) => break,
                            Err(err) => {
                                tracing::warn!(%uid, %err, "pod sync");
                                break;
                            }
                        }
                    }
                }
            }
            let period = if self.steady {
                STEADY_RESYNC
            } else {
                self.config.relist_period
            };
            tokio::select! {
                changed = pods.changed() => if changed.is_err() { return uid },
                () = tokio::time::sleep(period) => {}
            }
        }
    }

    /// The Killing event for a container about to be stopped (of the pod last synced).
    fn killing(&self, container: &v1::Container) {
        let name = container.metadata.as_ref().map_or("", |m| m.name.as_str());
        if let Some(pod) = &self.last_pod {
            self.config.events.container(pod, name).killing(name, None);
        }
    }

    /// Stops the containers within the pod's grace period, removes the sandbox, and makes the
    /// final delete of the pod object.
    async fn terminate(&mut self, uid: &str, pod: &Pod) -> anyhow::Result<()> {
        self.stop_all(uid, Some(pod), grace_period(pod)).await?;
        // Left for the housekeeping to retry if it fails: never blocks the pod's deletion.
        if let Err(err) = volumes::cleanup(&self.config, uid) {
            tracing::warn!(%uid, %err, "removing the pod's volumes");
        }
        let pods: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match pods.delete(name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
            Err(err) => return Err(err.into()),
        }
        tracing::info!(pod = name, %uid, "pod terminated and deleted");
        Ok(())
    }

    /// The pod object is gone (force-deleted): stop and remove what it left.
    async fn teardown(&mut self, uid: &str) -> anyhow::Result<()> {
        let last_pod = self.last_pod.clone();
        let grace = last_pod
            .as_ref()
            .map_or(Duration::from_secs(30), grace_period);
        self.stop_all(uid, last_pod.as_ref(), grace).await?;
        // Left for the housekeeping to retry if it fails: never blocks the pod's deletion.
        if let Err(err) = volumes::cleanup(&self.config, uid) {
            tracing::warn!(%uid, %err, "removing the pod's volumes");
        }
        Ok(())
    }

    /// Kills the pod's running containers (preStop hooks first, when `pod` has the spec), then
    /// stops and removes its sandboxes.
    async fn stop_all(
        &mut self,
        uid: &str,
        pod: Option<&Pod>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let filter = v1::ContainerFilter {
            label_selector: uid_filter(uid),
            ..Default::default()
        };
        let containers = self.cri.list_containers(Some(filter)).await?;
        let pod_ip = self.pod_ip(uid, pod).await;
        let spec_of = |c: &v1::Container| {
            let name = c.metadata.as_ref().map(|m| m.name.as_str())?;
            let spec = pod?.spec.as_ref()?;
            spec.containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|s| s.name == name)
        };
        // In parallel: each may take the whole grace period.
        let stops = containers
            .iter()
            .filter(|c| c.state == v1::ContainerState::ContainerRunning as i32)
            .inspect(|c| self.killing(c))
            .map(|c| hooks::kill_container(&self.cri, spec_of(c), &c.id, pod_ip, grace));
        for result in futures::future::join_all(stops).await {
            result?;
        }
        let filter = v1::PodSandboxFilter {
            label_selector: uid_filter(uid),
            ..Default::default()
        };
        for sandbox in self.cri.list_pod_sandbox(Some(filter)).await? {
            self.cri.stop_pod_sandbox(&sandbox.id).await?;
            self.cri.remove_pod_sandbox(&sandbox.id).await?;
        }
        // The runtime removed the containers' cgroups, not the pod's.
        let root = std::path::Path::new(cgroups::CGROUP_ROOT);
        if let Err(err) = cgroups::remove_pod_cgroup(root, uid, &self.config.cgroup_parent) {
            tracing::warn!(%uid, %err, "removing the pod's cgroup");
        }
        Ok(())
    }

    /// The pod's IP for hooks run while it stops: the node's for hostNetwork pods, else its
    /// ready sandbox's.
    async fn pod_ip(&self, uid: &str, pod: Option<&Pod>) -> Option<IpAddr> {
        if pod.is_some_and(runtime::host_network) {
            return self.config.host_ip();
        }
        let filter = v1::PodSandboxFilter {
            label_selector: uid_filter(uid),
            ..Default::default()
        };
        let sandboxes = self.cri.list_pod_sandbox(Some(filter)).await.ok()?;
        let ready = sandboxes
            .iter()
            .find(|s| s.state == v1::PodSandboxState::SandboxReady as i32)?;
        let status = self.cri.pod_sandbox_status(&ready.id, false).await.ok()?;
        status.status?.network?.ip.parse().ok()
    }

    /// One level-triggered pass; returns whether it changed anything (then the caller syncs
    /// again at once to observe the result).
    async fn sync(&mut self, pod: &Pod) -> anyhow::Result<bool> {
        self.steady = false;
        let id = PodRef::of(pod).ok_or_else(|| anyhow::anyhow!("pod without name or uid"))?;
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .as_deref()
            .unwrap_or("Always")
            .to_owned();
        let sandbox_filter = v1::PodSandboxFilter {
            label_selector: uid_filter(&id.uid),
            ..Default::default()
        };
        let sandboxes = self.cri.list_pod_sandbox(Some(sandbox_filter)).await?;
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            // Finished for good: release the sandbox (its IP), keep the record.
            for sandbox in sandboxes
                .iter()
                .filter(|s| s.state == v1::PodSandboxState::SandboxReady as i32)
            {
                self.cri.stop_pod_sandbox(&sandbox.id).await?;
            }
            return Ok(false);
        }
        let sandbox_attempt = |s: &v1::PodSandbox| s.metadata.as_ref().map_or(0, |m| m.attempt);
        let ready = sandboxes
            .iter()
            .filter(|s| s.state == v1::PodSandboxState::SandboxReady as i32)
            .max_by_key(|s| sandbox_attempt(s));
        let Some(sandbox) = ready else {
            // No live sandbox (first sync, or it died): start over with a new one.
            for old in &sandboxes {
                self.cri.stop_pod_sandbox(&old.id).await?;
                self.cri.remove_pod_sandbox(&old.id).await?;
            }
            let attempt = sandboxes.iter().map(|s| sandbox_attempt(s) + 1).max();
            let sysctls = match security::sysctls(pod, &self.config.allowed_unsafe_sysctls) {
                Ok(sysctls) => sysctls,
                Err(message) => {
                    // Rejected, as the kubelet's admission does: the pod fails without running.
                    tracing::warn!(pod = %id.name, %message, "pod rejected");
                    let status =
                        json!({"phase": "Failed", "reason": "SysctlForbidden", "message": message});
                    self.report(pod, &id, status).await?;
                    return Ok(false);
                }
            };
            let mut config = runtime::sandbox_config(pod, &id, attempt.unwrap_or(0), &self.config);
            if let Some(linux) = config.linux.as_mut() {
                linux.sysctls = sysctls;
            }
            // Only RunPodSandbox uses it (it writes the sandbox's resolv.conf).
            config.dns_config = Some(dns::sandbox_dns(pod, &self.config));
            std::fs::create_dir_all(&config.log_directory)?;
            if !sandboxes.is_empty() {
                self.config.events.pod(pod).sandbox_changed();
            }
            let sandbox = (self.cri.run_pod_sandbox(&config, "").await)
                .inspect_err(|err| self.config.events.pod(pod).sandbox_failed(err))?;
            tracing::info!(pod = %id.name, %sandbox, "sandbox started");
            return Ok(true);
        };
        let sandbox_id = sandbox.id.clone();
        let sandbox_config =
            runtime::sandbox_config(pod, &id, sandbox_attempt(sandbox), &self.config);
        let host_ip = self.config.host_ip().map(|ip| ip.to_string());
        let pod_ips: Vec<String> = if runtime::host_network(pod) {
            host_ip.iter().cloned().collect()
        } else {
            let status = self.cri.pod_sandbox_status(&sandbox_id, false).await?;
            let network = status.status.and_then(|s| s.network).unwrap_or_default();
            std::iter::once(network.ip)
                .chain(network.additional_ips.into_iter().map(|ip| ip.ip))
                .filter(|ip| !ip.is_empty())
                .collect()
        };
        let mut observed = self.observe(&sandbox_id).await?;
        // Each ConfigMap and Secret the volumes and containers refer to is read once a pass.
        let mut sources = Sources::new(self.client.clone(), &id.namespace);
        let volume_error = self
            .volumes
            .sync(&self.client, &mut sources, &self.config, pod)
            .await
            .err();
        let mut ctx = Ctx {
            sources,
            volume_error,
            pod,
            id: &id,
            sandbox_id: &sandbox_id,
            sandbox_config: &sandbox_config,
            pod_ip: pod_ips.first().cloned(),
            host_ip: host_ip.clone(),
            running: HashMap::new(),
        };
        let mut acted = false;

        let mut init_views = Vec::new();
        let (mut initialized, mut init_failed) = (true, false);
        for container in spec.init_containers.iter().flatten() {
            let found = observed.remove(&container.name).unwrap_or_default();
            let mut view = view_of(container, found);
            if initialized && !init_failed {
                match view.latest.clone() {
                    None => {
                        initialized = false;
                        acted |= self.start(&mut ctx, container, 0, None, &mut view).await;
                    }
                    Some(latest) if is(&latest, v1::ContainerState::ContainerExited) => {
                        if latest.exit_code != 0 {
                            initialized = false;
                            if policy == "Never" {
                                init_failed = true;
                            } else {
                                acted |=
                                    self.restart(&mut ctx, container, &latest, &mut view).await;
                            }
                        }
                    }
                    Some(latest) if is(&latest, v1::ContainerState::ContainerCreated) => {
                        initialized = false;
                        acted |= self.start_created(&latest, &mut view).await;
                    }
                    Some(_) => initialized = false,
                }
            }
            init_views.push(view);
        }

        let mut app_views = Vec::new();
        for container in &spec.containers {
            let found = observed.remove(&container.name).unwrap_or_default();
            let mut view = view_of(container, found);
            if initialized && !init_failed {
                match view.latest.clone() {
                    None => acted |= self.start(&mut ctx, container, 0, None, &mut view).await,
                    Some(latest) if is(&latest, v1::ContainerState::ContainerRunning) => {
                        acted |= self.probe(&ctx, container, &latest, &mut view).await;
                    }
                    Some(latest) if is(&latest, v1::ContainerState::ContainerExited) => {
                        let again = match policy.as_str() {
                            "Never" => false,
                            "OnFailure" => latest.exit_code != 0,
                            _ => true,
                        };
                        if again {
                            acted |= self.restart(&mut ctx, container, &latest, &mut view).await;
                        }
                    }
                    Some(latest) if is(&latest, v1::ContainerState::ContainerCreated) => {
                        acted |= self.start_created(&latest, &mut view).await;
                    }
                    Some(_) => {}
                }
            }
            app_views.push(view);
        }
        // Ephemeral containers (kubectl debug) start even before the pod is initialized, as the
        // kubelet's computePodActions starts every one without a status; one that ran is never
        // started again, and none is probed.
        ctx.running = init_views
            .iter()
            .chain(&app_views)
            .filter_map(|v| {
                let latest = v.latest.as_ref()?;
                is(latest, v1::ContainerState::ContainerRunning)
                    .then(|| (v.name.clone(), latest.id.clone()))
            })
            .collect();
        let mut ephemeral_views = Vec::new();
        for ephemeral in spec.ephemeral_containers.iter().flatten() {
            let container = runtime::ephemeral_container(ephemeral);
            let found = observed.remove(&container.name).unwrap_or_default();
            let mut view = view_of(&container, found);
            // Never ready: nothing depends on an ephemeral container.
            view.ready = false;
            match view.latest.clone() {
                None => {
                    let target = ephemeral.target_container_name.as_deref();
                    let target = target.filter(|t| !t.is_empty());
                    acted |= self.start(&mut ctx, &container, 0, target, &mut view).await;
                }
                Some(latest) if is(&latest, v1::ContainerState::ContainerCreated) => {
                    acted |= self.start_created(&latest, &mut view).await;
                }
                Some(_) => {}
            }
            ephemeral_views.push(view);
        }
        // Containers no longer in the spec (or older than the previous instance) go away.
        for (_, stale) in observed {
            for instance in [stale.latest, stale.previous].into_iter().flatten() {
                self.cri.remove_container(&instance.id).await?;
            }
        }
        if acted {
            return Ok(true);
        }
        // Nothing can change without the runtime noticing (a container exiting, which the
        // relister reports) or the API (a spec change): no probe to run, no back-off to wait
        // out, no container still to start.
        let steady = initialized
            && !init_failed
            && ctx.volume_error.is_none()
            && spec.containers.iter().all(|c| {
                c.liveness_probe.is_none()
                    && c.readiness_probe.is_none()
                    && c.startup_probe.is_none()
            })
            && app_views.iter().all(|v| {
                v.latest
                    .as_ref()
                    .is_some_and(|l| is(l, v1::ContainerState::ContainerRunning))
            })
            // An ephemeral container that could not start yet is tried again.
            && ephemeral_views.iter().all(|v| v.latest.is_some());
        let status = status::pod_status(&status::Inputs {
            pod,
            init: &init_views,
            apps: &app_views,
            ephemeral: &ephemeral_views,
            initialized,
            init_failed,
            pod_ips,
            host_ip,
        });
        self.report(pod, &id, status).await?;
        self.steady = steady;
        Ok(false)
    }

    /// The sandbox's containers by name: the newest two instances (older ones are removed).
    async fn observe(&mut self, sandbox_id: &str) -> anyhow::Result<HashMap<String, Instances>> {
        let filter = v1::ContainerFilter {
            pod_sandbox_id: sandbox_id.to_owned(),
            ..Default::default()
        };
        let mut by_name: HashMap<String, Vec<v1::Container>> = HashMap::new();
        for container in self.cri.list_containers(Some(filter)).await? {
            let name = container
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            by_name.entry(name).or_default().push(container);
        }
        let mut observed = HashMap::new();
        for (name, mut list) in by_name {
            list.sort_by_key(|c| {
                std::cmp::Reverse((c.metadata.as_ref().map_or(0, |m| m.attempt), c.created_at))
            });
            for old in list.iter().skip(2) {
                self.cri.remove_container(&old.id).await?;
            }
            let mut instances = Instances::default();
            for (i, container) in list.iter().take(2).enumerate() {
                let status = self
                    .cri
                    .container_status(&container.id, false)
                    .await?
                    .status;
                if i == 0 {
                    instances.latest = status;
                } else {
                    instances.previous = status;
                }
            }
            observed.insert(name, instances);
        }
        Ok(observed)
    }

    /// Restarts an exited container unless it is backing off (then it waits with reason
    /// CrashLoopBackOff).
    async fn restart(
        &mut self,
        ctx: &mut Ctx<'_>,
        container: &Container,
        latest: &v1::ContainerStatus,
        view: &mut ContainerView,
    ) -> bool {
        let key = &container.name;
        if let Some(wait) = self.backoff.since(key, since_epoch(latest.finished_at)) {
            let events = self.config.events.container(ctx.pod, &container.name);
            events.crash_backoff(ctx.pod, &container.name);
            view.waiting = Some((
                "CrashLoopBackOff".into(),
                format!(
                    "back-off {}s restarting failed container={} pod={}_{}({})",
                    wait.as_secs(),
                    container.name,
                    ctx.id.name,
                    ctx.id.namespace,
                    ctx.id.uid
                ),
            ));
            return false;
        }
        self.backoff.next(key);
        self.start(ctx, container, attempt(latest) + 1, None, view)
            .await
    }

    /// Starts a container a previous kubelet created but did not start.
    async fn start_created(
        &mut self,
        latest: &v1::ContainerStatus,
        view: &mut ContainerView,
    ) -> bool {
        match self.cri.start_container(&latest.id).await {
            Ok(()) => true,
            Err(err) => {
                view.waiting = Some(("RunContainerError".into(), err.to_string()));
                false
            }
        }
    }

    /// Image, environment, create, start. Failures become the container's waiting reason.
    /// `target` is an ephemeral container's `targetContainerName`, whose PID namespace it joins.
    async fn start(
        &mut self,
        ctx: &mut Ctx<'_>,
        container: &Container,
        attempt: u32,
        target: Option<&str>,
        view: &mut ContainerView,
    ) -> bool {
        match self.try_start(ctx, container, attempt, target).await {
            Ok(()) => {
                tracing::info!(pod = %ctx.id.name, container = %container.name, attempt, "container started");
                self.config
                    .events
                    .container(ctx.pod, &container.name)
                    .started(&container.name);
                true
            }
            Err((reason, message)) => {
                tracing::warn!(pod = %ctx.id.name, container = %container.name, %reason, %message, "container not started");
                let events = self.config.events.container(ctx.pod, &container.name);
                events.not_started(&reason, &message);
                view.waiting = Some((reason, message));
                false
            }
        }
    }

    async fn try_start(
        &mut self,
        ctx: &mut Ctx<'_>,
        container: &Container,
        attempt: u32,
        target: Option<&str>,
    ) -> Result<(), (String, String)> {
        let config_error = |m: String| ("CreateContainerConfigError".to_owned(), m);
        if let Some(err) = &ctx.volume_error {
            return Err(config_error(err.clone()));
        }
        // The target must be running now: its PID namespace is the running instance's.
        let target_id = match target {
            Some(name) => match ctx.running.get(name) {
                Some(id) => Some(id.clone()),
                None => {
                    return Err(config_error(format!(
                        "unable to find target container {name}"
                    )));
                }
            },
            None => None,
        };
        let image = (self.images)
            .ensure_image(ctx.pod, &ctx.id.namespace, container, ctx.sandbox_config)
            .await?;
        let image_user = if security::needs_image_user(ctx.pod, container) {
            let found = self
                .cri
                .image_status(&image)
                .await
                .map_err(|e| config_error(e.to_string()))?;
            let (uid, username) = found.map_or((None, String::new()), |i| {
                (i.uid.map(|u| u.value), i.username)
            });
            security::verify_run_as_non_root(ctx.pod, container, uid, &username)
                .map_err(config_error)?;
            Some((uid, username))
        } else {
            None
        };
        let fields = Consumer::Env {
            pod_ip: ctx.pod_ip.as_deref(),
            host_ip: ctx.host_ip.as_deref(),
        };
        let envs = env::environment(&mut ctx.sources, &self.config, ctx.pod, container, fields)
            .await
            .map_err(config_error)?;
        let mounts = self
            .volumes
            .mounts(&self.config, ctx.pod, container, &envs)
            .map_err(config_error)?;
        let mut config = runtime::container_config(
            ctx.pod,
            ctx.id,
            container,
            attempt,
            &image,
            envs,
            &self.config,
        );
        config.mounts = mounts;
        if let Some(target_id) = &target_id {
            runtime::share_target_pid(&mut config, target_id);
        }
        if let (Some((uid, username)), Some(sc)) = (
            &image_user,
            config
                .linux
                .as_mut()
                .and_then(|l| l.security_context.as_mut()),
        ) {
            security::with_image_user(sc, *uid, username);
        }
        let log_dir = std::path::Path::new(&ctx.sandbox_config.log_directory).join(&container.name);
        std::fs::create_dir_all(&log_dir)
            .map_err(|e| ("CreateContainerError".to_owned(), e.to_string()))?;
        let id = self
            .cri
            .create_container(ctx.sandbox_id, &config, ctx.sandbox_config)
            .await
            .map_err(|e| ("CreateContainerError".to_owned(), e.to_string()))?;
        self.config
            .events
            .container(ctx.pod, &container.name)
            .created(&container.name);
        self.cri
            .start_container(&id)
            .await
            .map_err(|e| ("RunContainerError".to_owned(), e.to_string()))?;
        let pod_ip = ctx.pod_ip.as_deref().and_then(|ip| ip.parse().ok());
        if let Err(message) = hooks::post_start(&self.cri, container, &id, pod_ip).await {
            tracing::warn!(pod = %ctx.id.name, container = %container.name, reason = hooks::FAILED_POST_START, %message, "postStart hook failed; killing the container");
            let grace = grace_period(ctx.pod);
            if let Err(err) =
                hooks::kill_container(&self.cri, Some(container), &id, pod_ip, grace).await
            {
                tracing::warn!(%err, "killing a container whose postStart hook failed");
            }
            return Err((hooks::POST_START_ERROR.to_owned(), message));
        }
        Ok(())
    }

    /// Runs the running container's due probes; a failed liveness probe stops it (the next
    /// sync restarts it per restartPolicy). Returns whether it acted.
    async fn probe(
        &mut self,
        ctx: &Ctx<'_>,
        container: &Container,
        latest: &v1::ContainerStatus,
        view: &mut ContainerView,
    ) -> bool {
        let running_for = SystemTime::now()
            .duration_since(since_epoch(latest.started_at))
            .unwrap_or_default();
        let pod_ip = ctx.pod_ip.as_deref().and_then(|ip| ip.parse().ok());
        let target = probe::Target {
            cri: &self.cri,
            container_id: &latest.id,
            pod_ip,
        };
        let events = self.config.events.container(ctx.pod, &container.name);
        let verdicts = (self.probes)
            .run(&ctx.id.name, container, &target, running_for, &events)
            .await;
        view.started = verdicts.started;
        view.ready = verdicts.ready;
        if !verdicts.live && verdicts.started {
            let grace = container
                .liveness_probe
                .as_ref()
                .and_then(|p| p.termination_grace_period_seconds)
                .map_or_else(
                    || grace_period(ctx.pod),
                    |s| Duration::from_secs(s.max(0) as u64),
                );
            tracing::info!(pod = %ctx.id.name, container = %container.name, "liveness probe failed; restarting the container");
            events.killing(&container.name, Some("failed liveness probe"));
            if let Err(err) =
                hooks::kill_container(&self.cri, Some(container), &latest.id, pod_ip, grace).await
            {
                tracing::warn!(%err, "stopping a container that failed its liveness probe");
            }
            self.probes.forget(&container.name);
            return true;
        }
        false
    }

    /// Patches pods/status when it differs from what was last reported.
    async fn report(&mut self, pod: &Pod, id: &PodRef, status: Value) -> anyhow::Result<()> {
        if self.last_status.as_ref() == Some(&status) {
            return Ok(());
        }
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &id.namespace);
        // A JSON merge patch replaces the status lists (containerStatuses, conditions) whole,
        // which is what a kubelet that owns them all wants.
        let patch = json!({"metadata": {"uid": pod.metadata.uid}, "status": status});
        pods.patch_status(&id.name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        self.last_status = Some(status);
        Ok(())
    }
}

/// Completes once the channel holds a deleted pod (gone, or with a deletionTimestamp); never
/// if it closes first.
async fn until_deleted(pods: &mut watch::Receiver<Option<Pod>>) {
    loop {
        if pods.changed().await.is_err() {
            return std::future::pending().await;
        }
        let deleted = pods
            .borrow()
            .as_ref()
            .is_none_or(|p| p.metadata.deletion_timestamp.is_some());
        if deleted {
            return;
        }
    }
}

/// What one sync pass knows about the pod.
struct Ctx<'a> {
    /// The ConfigMaps and Secrets read so far in this pass.
    sources: Sources,
    pod: &'a Pod,
    id: &'a PodRef,
    sandbox_id: &'a str,
    sandbox_config: &'a v1::PodSandboxConfig,
    pod_ip: Option<String>,
    host_ip: Option<String>,
    /// Why the pod's volumes could not be set up (containers wait until they can).
    volume_error: Option<String>,
    /// The running init and app containers' CRI ids by name (ephemeral containers' targets).
    running: HashMap<String, String>,
}

fn view_of(container: &Container, found: Instances) -> ContainerView {
    let running = found
        .latest
        .as_ref()
        .is_some_and(|l| is(l, v1::ContainerState::ContainerRunning));
    ContainerView {
        name: container.name.clone(),
        image: container.image.clone().unwrap_or_default(),
        latest: found.latest,
        previous: found.previous,
        waiting: None,
        // Without probes a running container is ready and started; probes refine this.
        ready: running,
        started: running,
    }
}
