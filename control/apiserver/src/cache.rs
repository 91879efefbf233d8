//! The watch cache (Kubernetes' "cacher"): every resource's objects and recent events in memory,
//! so lists and watches do not each hit the store.
//!
//! One dispatcher task lists `/registry/` once and then follows a single store watch on it,
//! handing each event to the cache of the resource its key belongs to. Because the dispatcher
//! sees every write under `/registry/` in revision order, its revision tells how fresh every
//! cache is: a list that must be at least as new as revision R waits until the dispatcher has
//! reached R (or falls back to the store if that takes too long).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use skiff_store::{EventKind, KeyValue, RangeRequest, Revision, Store, WatchRequest};
use tokio::sync::{mpsc, watch};

use crate::error::{ApiError, ApiResult};
use crate::registry::Registry;
use crate::storage;

/// How many events each resource keeps for watches that resume from a past resourceVersion.
const HISTORY: usize = 4096;
/// How many events a watcher may have queued before it is cut off (it then re-watches).
const WATCHER_BUFFER: usize = 1024;
/// How often idle watchers get a bookmark.
const BOOKMARK_EVERY: Duration = Duration::from_secs(10);

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
    /// No change: "you have seen everything up to `revision`".
    Bookmark,
}

impl EventType {
    /// The watch event type on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
            EventType::Bookmark => "BOOKMARK",
        }
    }
}

/// An object as the cache holds it: its JSON as kube-apiserver writes it (served as is by lists
/// and watches) and, decoded
/// only when something needs to look inside (selectors, printing), its value.
#[derive(Debug)]
pub struct Cached {
    /// The object as JSON, `metadata.resourceVersion` included (no trailing newline).
    pub json: Bytes,
    value: std::sync::OnceLock<Value>,
}

impl Cached {
    /// Wraps `value`, encoding it as kube-apiserver does.
    pub fn new(value: Value) -> Cached {
        let mut json = Vec::with_capacity(1024);
        skiff_protobuf::json::write_object(&mut json, &value);
        Cached {
            json: Bytes::from(json),
            value: std::sync::OnceLock::from(value),
        }
    }

    /// The object stored in `kv`, as [`storage::served`] serves it: usually without decoding it
    /// (the resourceVersion, never stored, spliced into the stored bytes).
    pub fn from_store(kv: &skiff_store::KeyValue) -> Result<Cached, String> {
        let (json, value) = storage::served(kv).map_err(|e| e.message)?;
        Ok(Cached {
            json: Bytes::from(json),
            value: value.map_or_else(std::sync::OnceLock::new, std::sync::OnceLock::from),
        })
    }

    /// The object's value (decoded on first use).
    pub fn value(&self) -> &Value {
        self.value
            .get_or_init(|| serde_json::from_slice(&self.json).unwrap_or(Value::Null))
    }
}

impl std::ops::Deref for Cached {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

/// One event of a resource.
#[derive(Debug, Clone)]
pub struct CacheEvent {
    /// Added, modified, deleted or bookmark.
    pub kind: EventType,
    /// The store key (empty for bookmarks).
    pub key: String,
    /// The object after the event (for deletions: as it was, with the deletion's revision).
    pub object: Arc<Cached>,
    /// The object before the event.
    pub prev: Option<Arc<Cached>>,
    /// The event's revision.
    pub revision: Revision,
}

struct Watcher {
    prefix: String,
    tx: mpsc::Sender<Arc<CacheEvent>>,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Arc<Cached>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// Every event after this revision is in `history` (or still to come).
    history_start: Revision,
    watchers: Vec<Watcher>,
}

/// The cache of one resource.
#[derive(Default)]
pub struct WatchCache {
    state: Mutex<State>,
}

/// A watch registered on a cache: events to replay first, then the live channel.
pub struct Subscription {
    /// Events before registration, in order.
    pub replay: Vec<Arc<CacheEvent>>,
    /// Live events after `revision`.
    pub live: mpsc::Receiver<Arc<CacheEvent>>,
    /// The revision the replay is complete up to.
    pub revision: Revision,
}

fn in_prefix<'a>(
    objects: &'a BTreeMap<String, Arc<Cached>>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a Arc<Cached>)> {
    objects
        .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(prefix))
}

impl WatchCache {
    /// The objects under `prefix` (a namespace or the whole resource).
    pub fn list(&self, prefix: &str, revision: &AtomicI64) -> (Vec<Arc<Cached>>, Revision) {
        let state = self.state.lock().unwrap();
        let items = in_prefix(&state.objects, prefix)
            .map(|(_, v)| v.clone())
            .collect();
        (items, revision.load(Ordering::SeqCst))
    }

    /// One object by store key, if the cache has it.
    pub fn get(&self, key: &str) -> Option<Arc<Cached>> {
        self.state.lock().unwrap().objects.get(key).cloned()
    }

    /// Registers a watch under `prefix`. With `from`, replays the events after it (410 Gone if
    /// they are no longer kept); without, replays the current objects as ADDED events.
    pub fn subscribe(
        &self,
        prefix: &str,
        from: Option<Revision>,
        revision: &AtomicI64,
    ) -> ApiResult<Subscription> {
        let mut state = self.state.lock().unwrap();
        // Read under this cache's lock: the dispatcher updates the revision while holding the
        // lock of the cache it is feeding, so it matches this cache's contents exactly.
        let current = revision.load(Ordering::SeqCst);
        let replay = match from {
            Some(from) => {
                if from < state.history_start {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {from} ({})",
                        state.history_start
                    )));
                }
                state
                    .history
                    .iter()
                    .filter(|e| e.revision > from && e.key.starts_with(prefix))
                    .cloned()
                    .collect()
            }
            None => in_prefix(&state.objects, prefix)
                .map(|(key, obj)| {
                    Arc::new(CacheEvent {
                        kind: EventType::Added,
                        key: key.clone(),
                        object: obj.clone(),
                        prev: None,
                        revision: crate::meta::resource_version(obj).unwrap_or(current),
                    })
                })
                .collect(),
        };
        let (tx, live) = mpsc::channel(WATCHER_BUFFER);
        state.watchers.push(Watcher {
            prefix: prefix.to_owned(),
            tx,
        });
        Ok(Subscription {
            replay,
            live,
            revision: current,
        })
    }

    fn reset(&self, objects: BTreeMap<String, Arc<Cached>>, revision: Revision) {
        let mut state = self.state.lock().unwrap();
        // Watchers may have missed events while the dispatcher was away: end them, they
        // re-watch from their last resourceVersion.
        *state = State {
            objects,
            history: VecDeque::new(),
            history_start: revision,
            watchers: Vec::new(),
        };
    }

    /// Records a write to `key` at `revision`: the new object, or for a deletion (`None`) the
    /// object as it was at the deletion's revision (`deleted`, from the store's copy; rebuilt
    /// from the cache if the store did not send one). The previous object comes from the cache
    /// itself, so no event needs its predecessor decoded.
    fn apply(
        &self,
        key: String,
        object: Option<Cached>,
        deleted: Option<Cached>,
        revision: Revision,
        progress: &AtomicI64,
    ) {
        let mut state = self.state.lock().unwrap();
        let prev = state.objects.get(&key).cloned();
        let event = match object {
            Some(object) => {
                let object = Arc::new(object);
                state.objects.insert(key.clone(), object.clone());
                let kind = if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                CacheEvent {
                    kind,
                    key,
                    object,
                    prev,
                    revision,
                }
            }
            None => {
                state.objects.remove(&key);
                // A DELETED event carries the object as it was, at the deletion's revision.
                let gone = deleted.unwrap_or_else(|| {
                    let mut gone = prev
                        .as_ref()
                        .map(|p| p.value().clone())
                        .unwrap_or(Value::Null);
                    crate::meta::set_resource_version(&mut gone, revision);
                    Cached::new(gone)
                });
                CacheEvent {
                    kind: EventType::Deleted,
                    key,
                    object: Arc::new(gone),
                    prev,
                    revision,
                }
            }
        };
        let event = Arc::new(event);
        state.history.push_back(event.clone());
        if state.history.len() > HISTORY
            && let Some(evicted) = state.history.pop_front()
        {
            state.history_start = evicted.revision;
        }
        progress.store(event.revision, Ordering::SeqCst);
        state
            .watchers
            .retain(|w| !event.key.starts_with(&w.prefix) || w.tx.try_send(event.clone()).is_ok());
    }

    fn bookmark(&self, revision: Revision) {
        let mut state = self.state.lock().unwrap();
        let event = Arc::new(CacheEvent {
            kind: EventType::Bookmark,
            key: String::new(),
            object: Arc::new(Cached::new(Value::Null)),
            prev: None,
            revision,
        });
        // A watcher with a full buffer is not cut off for a bookmark; it just misses it.
        state.watchers.retain(|w| {
            !matches!(
                w.tx.try_send(event.clone()),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }
}

/// All resources' caches and the dispatcher's progress. Dropping it stops the dispatcher.
pub struct Caches {
    by_resource: HashMap<(String, String), Arc<WatchCache>>,
    /// The revision of the last write the dispatcher has handed to the caches.
    pub revision: AtomicI64,
    progress: watch::Sender<Revision>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// `(group, plural)` of a `/registry/<group>/<plural>/...` key.
fn resource_of(key: &str) -> Option<(&str, &str)> {
    let mut parts = key.strip_prefix("/registry/")?.splitn(3, '/');
    Some((parts.next()?, parts.next()?))
}

impl Caches {
    /// Creates the caches of every registered resource and starts the dispatcher.
    pub fn start(store: Arc<dyn Store>, registry: &Registry) -> Arc<Caches> {
        let by_resource = registry
            .all()
            .map(|kind| {
                let info = kind.info();
                let group = if info.group.is_empty() {
                    "core"
                } else {
                    info.group
                };
                (
                    (group.to_owned(), info.plural.to_owned()),
                    Arc::new(WatchCache::default()),
                )
            })
            .collect();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let caches = Arc::new(Caches {
            by_resource,
            revision: AtomicI64::new(0),
            progress: watch::channel(0).0,
            _stop: stop,
        });
        tokio::spawn(dispatch(Arc::downgrade(&caches), store, stopped));
        caches
    }

    /// The cache of a resource.
    pub fn get(&self, group: &str, plural: &str) -> Option<&Arc<WatchCache>> {
        let group = if group.is_empty() { "core" } else { group };
        self.by_resource.get(&(group.to_owned(), plural.to_owned()))
    }

    /// Waits until the caches reflect revision `at_least`; false if that takes longer than
    /// `timeout` (the caller then reads the store instead).
    pub async fn wait_for(&self, at_least: Revision, timeout: Duration) -> bool {
        let mut progress = self.progress.subscribe();
        let reached = progress.wait_for(|&r| r >= at_least);
        matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)))
    }

    fn cache_for(&self, key: &str) -> Option<&Arc<WatchCache>> {
        let (group, plural) = resource_of(key)?;
        self.by_resource.get(&(group.to_owned(), plural.to_owned()))
    }

    fn set_revision(&self, revision: Revision) {
        self.revision.store(revision, Ordering::SeqCst);
        self.progress.send_replace(revision);
    }
}

/// Lists everything once, then follows the store; on any watch failure, starts over. Ends
/// when the caches are dropped (and with it releases the store).
async fn dispatch(
    caches: Weak<Caches>,
    store: Arc<dyn Store>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            result = follow(&caches, &*store) => match result {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "watch cache lost the store watch; relisting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
    }
}

/// One list-then-watch pass; `Ok` when the caches are gone.
async fn follow(weak: &Weak<Caches>, store: &dyn Store) -> Result<(), String> {
    let listed = store
        .range(RangeRequest::prefix("/registry/"))
        .await
        .map_err(|e| e.to_string())?;
    let mut per_resource: HashMap<(String, String), BTreeMap<String, Arc<Cached>>> = HashMap::new();
    for kv in &listed.kvs {
        if let Some((group, plural)) = resource_of(&kv.key) {
            let obj = Cached::from_store(kv)?;
            per_resource
                .entry((group.to_owned(), plural.to_owned()))
                .or_default()
                .insert(kv.key.clone(), Arc::new(obj));
        }
    }
    {
        let Some(caches) = weak.upgrade() else {
            return Ok(());
        };
        for (resource, cache) in &caches.by_resource {
            let objects = per_resource.remove(resource).unwrap_or_default();
            cache.reset(objects, listed.revision);
        }
        caches.set_revision(listed.revision);
    }
    let mut events = store
        .watch(WatchRequest::prefix("/registry/", listed.revision))
        .await
        .map_err(|e| e.to_string())?;
    let mut bookmarks = tokio::time::interval(BOOKMARK_EVERY);
    let mut handled: u64 = 0;
    loop {
        tokio::select! {
            event = events.next() => {
                let event = match event {
                    Some(Ok(event)) => event,
                    Some(Err(err)) => return Err(err.to_string()),
                    None => return Err("store watch ended".into()),
                };
                let Some(caches) = weak.upgrade() else { return Ok(()) };
                let revision = event.revision();
                if let Some(cache) = caches.cache_for(&event.kv.key) {
                    match event.kind {
                        EventKind::Put => {
                            // Made once here; every list and watcher reuses its bytes. Only the
                            // resourceVersion is spliced in; nothing is decoded unless a selector
                            // or a printer needs to look inside.
                            let object = Cached::from_store(&event.kv)?;
                            cache.apply(event.kv.key, Some(object), None, revision, &caches.revision);
                        }
                        EventKind::Delete => {
                            // The stored copy with the deletion's revision spliced in.
                            let deleted = event
                                .prev
                                .as_ref()
                                .map(|prev| Cached::from_store(&KeyValue { mod_revision: revision, ..prev.clone() }))
                                .transpose()?;
                            cache.apply(event.kv.key, None, deleted, revision, &caches.revision);
                        }
                    }
                }
                handled += 1;
                // A backlog of events is always ready; give the request handlers sharing this
                // worker thread a turn regularly instead of holding it for the whole backlog.
                if handled.is_multiple_of(32) {
                    tokio::task::yield_now().await;
                }
                caches.set_revision(revision);
            }
            _ = bookmarks.tick() => {
                let Some(caches) = weak.upgrade() else { return Ok(()) };
                let revision = caches.revision.load(Ordering::SeqCst);
                for cache in caches.by_resource.values() {
                    cache.bookmark(revision);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_their_resource() {
        assert_eq!(
            resource_of("/registry/core/pods/default/web"),
            Some(("core", "pods"))
        );
        assert_eq!(
            resource_of("/registry/apps/deployments/ns/x"),
            Some(("apps", "deployments"))
        );
        assert_eq!(resource_of("/other/key"), None);
    }
}
