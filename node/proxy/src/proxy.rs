//! The running service proxy: watches Services and EndpointSlices, recomputes the frontends
//! of the Services that changed, and applies them to the maps (O(changed)).
//!
//! Start-up follows the dataplane's promise to established connections: adopt the pinned
//! maps, wait for the first complete lists, reconcile by difference, and only then load the
//! new programs into the pinned links (an atomic switch). Until the first sync the old
//! programs keep serving from the old maps.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use skiff_ebpf::PinDir;
use skiff_ebpf::lb::{LbMaps, Sizes, SocketLb, SocketReaper};
use skiff_ebpf::packet_lb::PacketLb;

use crate::metrics::Metrics;
use crate::model::{Desired, Frontend, FrontendSpec, NodeView, SERVICE_NAME_LABEL};
use crate::ownership::{Ownership, ServiceKey};
use crate::sync::MapSync;

/// How the proxy runs on this node.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's name (for traffic policy Local).
    pub node_name: String,
    /// The addresses NodePorts answer on.
    pub node_addresses: Vec<Ipv4Addr>,
    /// Where maps and links are pinned.
    pub pins: PinDir,
    /// The cgroup2 directory the socket-level LB attaches to (the root on a node).
    pub cgroup: PathBuf,
    /// Map sizes for maps created now.
    pub sizes: Sizes,
    /// `/healthz` and `/livez` (kube-proxy's 10256).
    pub health_bind: SocketAddr,
    /// `/metrics` (kube-proxy's 10249).
    pub metrics_bind: SocketAddr,
    /// Interfaces that get the per-packet LB at tc (NodePort, ExternalIP and LoadBalancer
    /// traffic arriving from outside the node).
    pub packet_interfaces: Vec<String>,
    /// Also attach the XDP program to those interfaces.
    pub xdp: bool,
}

/// Attaches the per-packet programs to the configured interfaces.
fn attach_packet_lb(config: &Config) -> anyhow::Result<Vec<PacketLb>> {
    let mut attached = Vec::new();
    for name in &config.packet_interfaces {
        let c_name = std::ffi::CString::new(name.as_str())?;
        // SAFETY: a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if ifindex == 0 {
            anyhow::bail!("no interface named {name}");
        }
        attached.push(PacketLb::attach_tc(&config.pins, ifindex, &config.sizes)?);
        if config.xdp {
            attached.push(PacketLb::attach_xdp(&config.pins, ifindex, &config.sizes)?);
        }
        tracing::info!(interface = %name, xdp = config.xdp, "per-packet load balancer attached");
    }
    Ok(attached)
}

type Key = ServiceKey;

fn key_of<K: kube::Resource>(obj: &K) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

fn slice_service(slice: &EndpointSlice) -> Option<Key> {
    let name = slice.labels().get(SERVICE_NAME_LABEL)?;
    Some((slice.namespace().unwrap_or_default(), name.clone()))
}

/// What the watchers have seen, and which Services need a sync.
#[derive(Default)]
struct Cache {
    services: HashMap<Key, Service>,
    slices: HashMap<Key, EndpointSlice>,
    /// Slices by the Service they belong to.
    slices_of: HashMap<Key, BTreeSet<Key>>,
    dirty: HashSet<Key>,
    services_listed: bool,
    slices_listed: bool,
    /// Objects of a relist in progress: they replace the cache when it completes, so deletions
    /// missed while disconnected are seen.
    relist_services: Option<HashMap<Key, Service>>,
    relist_slices: Option<HashMap<Key, EndpointSlice>>,
}

impl Cache {
    fn put_slice(&mut self, slice: EndpointSlice) {
        let key = key_of(&slice);
        self.remove_slice(&key);
        if let Some(service) = slice_service(&slice) {
            self.slices_of
                .entry(service.clone())
                .or_default()
                .insert(key.clone());
            self.dirty.insert(service);
        }
        self.slices.insert(key, slice);
    }

    fn remove_slice(&mut self, key: &Key) {
        if let Some(old) = self.slices.remove(key)
            && let Some(service) = slice_service(&old)
        {
            if let Some(set) = self.slices_of.get_mut(&service) {
                set.remove(key);
            }
            self.dirty.insert(service);
        }
    }

    fn services_event(&mut self, event: Event<Service>) {
        match event {
            Event::Apply(svc) => {
                let key = key_of(&svc);
                self.dirty.insert(key.clone());
                self.services.insert(key, svc);
            }
            Event::Delete(svc) => {
                let key = key_of(&svc);
                self.services.remove(&key);
                self.dirty.insert(key);
            }
            Event::Init => self.relist_services = Some(HashMap::new()),
            Event::InitApply(svc) => {
                if let Some(relist) = &mut self.relist_services {
                    relist.insert(key_of(&svc), svc);
                }
            }
            Event::InitDone => {
                let fresh = self.relist_services.take().unwrap_or_default();
                self.dirty.extend(self.services.keys().cloned());
                self.dirty.extend(fresh.keys().cloned());
                self.services = fresh;
                self.services_listed = true;
            }
        }
    }

    fn slices_event(&mut self, event: Event<EndpointSlice>) {
        match event {
            Event::Apply(slice) => self.put_slice(slice),
            Event::Delete(slice) => self.remove_slice(&key_of(&slice)),
            Event::Init => self.relist_slices = Some(HashMap::new()),
            Event::InitApply(slice) => {
                if let Some(relist) = &mut self.relist_slices {
                    relist.insert(key_of(&slice), slice);
                }
            }
            Event::InitDone => {
                let fresh = self.relist_slices.take().unwrap_or_default();
                let old: Vec<Key> = self.slices.keys().cloned().collect();
                for key in old {
                    self.remove_slice(&key);
                }
                for slice in fresh.into_values() {
                    self.put_slice(slice);
                }
                self.slices_listed = true;
            }
        }
    }
}

/// The sync side: the maps and which frontends each Service owns.
struct Syncer {
    sync: MapSync,
    node: NodeView,
    ownership: Ownership,
    skipped: HashMap<Key, Vec<String>>,
}

impl Syncer {
    /// Recomputes the frontends of `dirty` Services and applies what changed.
    fn sync(&mut self, cache: &Cache, dirty: HashSet<Key>, metrics: &Metrics) {
        let started = Instant::now();
        let mut changes: BTreeMap<Frontend, Option<FrontendSpec>> = BTreeMap::new();
        for key in dirty {
            let desired = match cache.services.get(&key) {
                Some(service) => {
                    let slices: Vec<&EndpointSlice> = cache
                        .slices_of
                        .get(&key)
                        .into_iter()
                        .flatten()
                        .filter_map(|k| cache.slices.get(k))
                        .collect();
                    Desired::for_service(service, &slices, &self.node)
                }
                None => Desired::default(),
            };
            for reason in &desired.skipped {
                if !self.skipped.get(&key).is_some_and(|s| s.contains(reason)) {
                    tracing::warn!(service = %format!("{}/{}", key.0, key.1), reason, "not programmed");
                }
            }
            if desired.skipped.is_empty() {
                self.skipped.remove(&key);
            } else {
                self.skipped.insert(key.clone(), desired.skipped.clone());
            }
            changes.extend(self.ownership.update(&key, desired.frontends));
        }
        let stats = self
            .sync
            .apply_changes(changes.iter().map(|(f, s)| (*f, s.as_ref())));
        for error in &stats.errors {
            tracing::error!(error, "map sync");
        }
        metrics.synced(
            started.elapsed(),
            &stats,
            &self.sync,
            self.skipped.values().map(Vec::len).sum(),
        );
        if stats.frontends_written + stats.frontends_removed > 0 {
            tracing::debug!(?stats, took = ?started.elapsed(), "map sync");
        }
    }
}

/// Runs the service proxy until `shutdown` resolves. The dataplane stays as it is afterwards
/// (pinned), serving established and new connections until the next agent takes over.
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let maps = LbMaps::create(&config.pins, &config.sizes)?;
    let mut sync = MapSync::new(maps);
    sync.set_node_addresses(&config.node_addresses.iter().copied().collect())?;
    let (frontends, backends) = sync.sizes();
    tracing::info!(frontends, backends, pins = %config.pins.path().display(), "adopted the load balancer's maps");
    let metrics = Arc::new(Metrics::default());
    let cache = Arc::new(Mutex::new(Cache::default()));
    let changed = Arc::new(tokio::sync::Notify::new());

    let services: Api<Service> = Api::all(client.clone());
    let slices: Api<EndpointSlice> = Api::all(client);
    let watch_services = watch(
        services,
        "Services",
        cache.clone(),
        changed.clone(),
        metrics.clone(),
        Cache::services_event,
    );
    let watch_slices = watch(
        slices,
        "EndpointSlices",
        cache.clone(),
        changed.clone(),
        metrics.clone(),
        Cache::slices_event,
    );
    let syncer = Arc::new(Mutex::new(Syncer {
        sync,
        node: NodeView {
            name: config.node_name.clone(),
        },
        ownership: Ownership::default(),
        skipped: HashMap::new(),
    }));
    let sync_loop = {
        let (cache, changed, metrics, config, syncer) = (
            cache.clone(),
            changed.clone(),
            metrics.clone(),
            config.clone(),
            syncer.clone(),
        );
        async move {
            let mut socket_lb: Option<SocketLb> = None;
            loop {
                changed.notified().await;
                let dirty = {
                    let mut cache = cache.lock().unwrap();
                    if !(cache.services_listed && cache.slices_listed) {
                        continue;
                    }
                    std::mem::take(&mut cache.dirty)
                };
                if dirty.is_empty() && socket_lb.is_some() {
                    continue;
                }
                let first = socket_lb.is_none();
                {
                    let mut syncer = syncer.lock().unwrap();
                    let syncer = &mut *syncer;
                    let cache = cache.lock().unwrap();
                    let mut dirty = dirty;
                    if first {
                        dirty.extend(cache.services.keys().cloned());
                    }
                    syncer.sync(&cache, dirty, &metrics);
                    if first {
                        // Frontends adopted from the maps that no Service asks for any more
                        // (deleted while no agent was watching).
                        let orphans: Vec<Frontend> = syncer
                            .sync
                            .service_ids()
                            .map(|(f, _)| *f)
                            .filter(|f| syncer.ownership.owner(f).is_none())
                            .collect();
                        let stats = syncer
                            .sync
                            .apply_changes(orphans.into_iter().map(|f| (f, None)));
                        if stats.frontends_removed > 0 {
                            tracing::info!(
                                removed = stats.frontends_removed,
                                "removed frontends of deleted Services"
                            );
                        }
                    }
                }
                if first {
                    match SocketLb::attach(&config.pins, &config.cgroup, &config.sizes) {
                        Ok(lb) => {
                            tracing::info!(cgroup = %config.cgroup.display(), "socket-level load balancer attached");
                            socket_lb = Some(lb);
                            match attach_packet_lb(&config) {
                                // The links are pinned: they stay attached without a handle.
                                Ok(_attached) => {}
                                Err(err) => tracing::error!(
                                    error = format!("{err:#}"),
                                    "attaching the per-packet load balancer"
                                ),
                            }
                            match SocketReaper::load(&config.pins, &config.sizes) {
                                Ok(reaper) => syncer.lock().unwrap().sync.set_reaper(reaper),
                                Err(err) => {
                                    tracing::warn!(error = %err, "no UDP socket reaper: connected UDP sockets keep a removed backend until they reconnect")
                                }
                            }
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "attaching the socket-level load balancer");
                            metrics.attach_failed();
                            // Try again at the next change.
                            continue;
                        }
                    }
                }
            }
        }
    };
    let health = crate::metrics::serve_health(config.health_bind, metrics.clone());
    let render: Arc<dyn Fn() -> String + Send + Sync> = {
        let (metrics, syncer) = (metrics.clone(), syncer.clone());
        Arc::new(move || {
            let mut out = crate::metrics::Exposition::default();
            metrics.render(&mut out);
            let syncer = syncer.lock().unwrap();
            let service_of = |f: &Frontend| {
                syncer
                    .ownership
                    .owner(f)
                    .map(|(ns, name)| format!("{ns}/{name}"))
                    .unwrap_or_default()
            };
            crate::metrics::render_dataplane(
                &mut out,
                syncer.sync.maps(),
                &syncer.sync,
                &service_of,
            );
            out.into_text()
        })
    };
    let serve_metrics = crate::metrics::serve_metrics(config.metrics_bind, render);
    tokio::select! {
        _ = watch_services => {}
        _ = watch_slices => {}
        _ = sync_loop => {}
        result = health => result?,
        result = serve_metrics => result?,
        _ = shutdown => tracing::info!("service proxy stopping; the dataplane stays pinned"),
    }
    Ok(())
}

/// Feeds one kind's watch events into the cache and wakes the sync loop.
async fn watch<K>(
    api: Api<K>,
    what: &'static str,
    cache: Arc<Mutex<Cache>>,
    changed: Arc<tokio::sync::Notify>,
    metrics: Arc<Metrics>,
    apply: fn(&mut Cache, Event<K>),
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let mut stream = std::pin::pin!(watcher::watcher(api, watcher::Config::default()));
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => {
                apply(&mut cache.lock().unwrap(), event);
                metrics.changed();
                changed.notify_one();
            }
            Err(err) => tracing::warn!(error = %err, "watching {what}"),
        }
    }
}

/// Seconds since the Unix epoch, for health answers.
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}
