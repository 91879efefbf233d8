//! The kubelet's event recorder: core/v1 Events about pods, containers and the Node (Pulling,
//! Started, BackOff, Unhealthy, NodeReady, …), written to the API by one task.
//!
//! Recording never blocks or fails the caller: [`Recorder`] hands the event to a bounded
//! channel and drops it (with a log line) when the channel is full. The writing task runs
//! each event through a [`Correlator`], which does what client-go's event correlator does: a
//! repeat of an identical event updates the existing object's `count` and `lastTimestamp`
//! instead of creating another; many similar events (differing only in their message) are
//! combined into one; and a token bucket per object and reason limits how often one object can
//! write.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::node::now_time;

/// How many recorded events may wait for the writer before new ones are dropped.
const QUEUE: usize = 1000;
/// Identical events remembered for aggregation (client-go's LRU size).
const CACHE_ENTRIES: usize = 4096;
/// More distinct messages than this for the same object and reason within
/// [`SIMILAR_WINDOW`] are combined into one event.
const SIMILAR_MAX: usize = 10;
const SIMILAR_WINDOW: Duration = Duration::from_secs(600);
/// The spam filter: a burst of this many events per object and reason ...
const SPAM_BURST: f64 = 25.0;
/// ... then one more per this interval.
const SPAM_REFILL: Duration = Duration::from_secs(300);
/// The component the events come from.
pub const COMPONENT: &str = "kubelet";

/// `Normal` or `Warning`, as the API spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// Something expected happened.
    Normal,
    /// Something went wrong.
    Warning,
}

impl Type {
    fn as_str(self) -> &'static str {
        match self {
            Type::Normal => "Normal",
            Type::Warning => "Warning",
        }
    }
}

/// The object an event is about (an ObjectReference).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Target {
    /// `Pod`, `Node`.
    pub kind: String,
    /// `v1`.
    pub api_version: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The object's uid (a Node's is its name, as the kubelet reports it).
    pub uid: String,
    /// The object's resourceVersion when the event happened (not part of the identity).
    pub resource_version: String,
    /// `spec.containers{name}` for an event about one container.
    pub field_path: String,
}

impl Target {
    /// The pod itself.
    pub fn pod(pod: &Pod) -> Target {
        let meta = &pod.metadata;
        Target {
            kind: "Pod".into(),
            api_version: "v1".into(),
            namespace: meta.namespace.clone().unwrap_or_else(|| "default".into()),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            field_path: String::new(),
        }
    }

    /// One of the pod's containers: `spec.initContainers{name}` or `spec.containers{name}`.
    pub fn container(pod: &Pod, container: &str) -> Target {
        let spec = pod.spec.as_ref();
        let init = spec
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|list| list.iter().any(|c| c.name == container));
        let ephemeral = spec
            .and_then(|s| s.ephemeral_containers.as_ref())
            .is_some_and(|list| list.iter().any(|c| c.name == container));
        let list = if init {
            "initContainers"
        } else if ephemeral {
            "ephemeralContainers"
        } else {
            "containers"
        };
        Target {
            field_path: format!("spec.{list}{{{container}}}"),
            ..Target::pod(pod)
        }
    }

    /// The Node, referenced as the kubelet does (uid = name).
    pub fn node(name: &str) -> Target {
        Target {
            kind: "Node".into(),
            api_version: "v1".into(),
            name: name.into(),
            uid: name.into(),
            ..Target::default()
        }
    }

    /// Events about cluster-scoped objects go to `default`.
    fn event_namespace(&self) -> &str {
        if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    fn reference(&self) -> Value {
        let mut reference = json!({
            "kind": self.kind,
            "apiVersion": self.api_version,
            "name": self.name,
            "uid": self.uid,
        });
        for (key, value) in [
            ("namespace", &self.namespace),
            ("resourceVersion", &self.resource_version),
            ("fieldPath", &self.field_path),
        ] {
            if !value.is_empty() {
                reference[key] = json!(value);
            }
        }
        reference
    }
}

/// One recorded event, before correlation.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// What it is about.
    pub target: Target,
    /// Normal or Warning.
    pub type_: Type,
    /// The machine-readable reason (`Pulled`).
    pub reason: String,
    /// The human-readable message.
    pub message: String,
}

/// Records events; cheap to clone. The default recorder drops everything (for configs that
/// are not running a kubelet).
#[derive(Clone, Default)]
pub struct Recorder {
    tx: Option<mpsc::Sender<Recorded>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("enabled", &self.tx.is_some())
            .finish()
    }
}

impl Recorder {
    /// A recorder whose events the returned task writes to the API as `host`'s kubelet; the
    /// task ends when every clone of the recorder is gone.
    pub fn start(client: kube::Client, host: &str) -> (Recorder, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write(client, host.to_owned(), rx));
        (Recorder { tx: Some(tx) }, task)
    }

    /// Records an event; never waits (a full queue drops it).
    pub fn record(&self, target: Target, type_: Type, reason: &str, message: impl Into<String>) {
        let Some(tx) = &self.tx else { return };
        let event = Recorded {
            target,
            type_,
            reason: reason.to_owned(),
            message: message.into(),
        };
        if let Err(err) = tx.try_send(event) {
            let event = match &err {
                mpsc::error::TrySendError::Full(e) | mpsc::error::TrySendError::Closed(e) => e,
            };
            tracing::warn!(
                object = %event.target.name, reason = %event.reason,
                "event queue full or closed: event dropped"
            );
        }
    }

    /// Events about one of `pod`'s containers.
    pub fn container<'a>(&'a self, pod: &Pod, container: &str) -> On<'a> {
        On {
            recorder: self,
            target: Target::container(pod, container),
        }
    }

    /// Events about `pod` itself.
    pub fn pod<'a>(&'a self, pod: &Pod) -> On<'a> {
        On {
            recorder: self,
            target: Target::pod(pod),
        }
    }

    /// Events about the Node `name`.
    pub fn node<'a>(&'a self, name: &str) -> On<'a> {
        On {
            recorder: self,
            target: Target::node(name),
        }
    }
}

/// A recorder bound to one object, with the kubelet's standard events as methods.
pub struct On<'a> {
    recorder: &'a Recorder,
    target: Target,
}

impl On<'_> {
    /// A Normal event.
    pub fn normal(&self, reason: &str, message: impl Into<String>) {
        self.recorder
            .record(self.target.clone(), Type::Normal, reason, message);
    }

    /// A Warning event.
    pub fn warning(&self, reason: &str, message: impl Into<String>) {
        self.recorder
            .record(self.target.clone(), Type::Warning, reason, message);
    }

    /// `Pulling`, before an image pull.
    pub fn pulling(&self, image: &str) {
        self.normal("Pulling", format!("Pulling image {image:?}"));
    }

    /// `Pulled`, after a pull that took `took`.
    pub fn pulled(&self, image: &str, took: Duration) {
        self.normal(
            "Pulled",
            format!(
                "Successfully pulled image {image:?} in {took:.3?} ({took:.3?} including waiting)"
            ),
        );
    }

    /// `Pulled` for an image that needed no pull.
    pub fn present(&self, image: &str) {
        self.normal(
            "Pulled",
            format!("Container image {image:?} already present on machine"),
        );
    }

    /// `Failed`, for a pull that failed.
    pub fn pull_failed(&self, image: &str, error: &str) {
        self.warning("Failed", format!("Failed to pull image {image:?}: {error}"));
    }

    /// `BackOff`, while a failed pull waits before the next try.
    pub fn pull_backoff(&self, image: &str) {
        self.normal("BackOff", format!("Back-off pulling image {image:?}"));
    }

    /// `Failed` with the reason a container could not be started (the waiting reason for
    /// image problems, else the message), as the kubelet reports it.
    pub fn not_started(&self, reason: &str, message: &str) {
        let shown = match reason {
            "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" | "InvalidImageName" => {
                reason
            }
            _ => message,
        };
        if reason == "ErrImageNeverPull" {
            self.warning(reason, message);
        }
        self.warning("Failed", format!("Error: {shown}"));
    }

    /// `SandboxChanged`, when the pod's sandbox is gone or dead and a new one is made.
    pub fn sandbox_changed(&self) {
        self.normal(
            "SandboxChanged",
            "Pod sandbox changed, it will be killed and re-created.",
        );
    }

    /// `FailedCreatePodSandBox`, when RunPodSandbox fails.
    pub fn sandbox_failed(&self, error: &impl std::fmt::Display) {
        self.warning(
            "FailedCreatePodSandBox",
            format!("Failed to create pod sandbox: {error}"),
        );
    }

    /// `Created`.
    pub fn created(&self, container: &str) {
        self.normal("Created", format!("Created container: {container}"));
    }

    /// `Started`.
    pub fn started(&self, container: &str) {
        self.normal("Started", format!("Started container {container}"));
    }

    /// `BackOff`, while a crashed container waits before its restart.
    pub fn crash_backoff(&self, pod: &Pod, container: &str) {
        let meta = &pod.metadata;
        self.warning(
            "BackOff",
            format!(
                "Back-off restarting failed container {container} in pod {}_{}({})",
                meta.name.as_deref().unwrap_or_default(),
                meta.namespace.as_deref().unwrap_or("default"),
                meta.uid.as_deref().unwrap_or_default(),
            ),
        );
    }

    /// `Killing`, when a container is stopped (`why`, when it is a failed probe).
    pub fn killing(&self, container: &str, why: Option<&str>) {
        let message = match why {
            Some(why) => format!("Container {container} {why}, will be restarted"),
            None => format!("Stopping container {container}"),
        };
        self.normal("Killing", message);
    }

    /// `Unhealthy`, for one failed probe (`probe`: Liveness, Readiness, Startup).
    pub fn unhealthy(&self, probe: &str, output: &str) {
        self.warning("Unhealthy", format!("{probe} probe failed: {output}"));
    }
}

/// What the writer should do with a recorded event.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Create this Event object.
    Create {
        /// Its namespace.
        namespace: String,
        /// The object.
        event: Value,
    },
    /// Update the existing `namespace/name` to this count, message and lastTimestamp.
    Update {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The strategic merge patch.
        patch: Value,
    },
    /// The spam filter dropped it.
    Drop,
}

struct Seen {
    namespace: String,
    name: String,
    count: i64,
}

struct Similar {
    messages: HashMap<String, Instant>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// client-go's event correlation: aggregation of identical events, combining of similar ones,
/// and a per-object spam filter.
pub struct Correlator {
    host: String,
    seen: HashMap<String, Seen>,
    order: VecDeque<String>,
    similar: HashMap<String, Similar>,
    spam: HashMap<String, Bucket>,
}

impl Correlator {
    /// A correlator for events from `host`'s kubelet.
    pub fn new(host: &str) -> Correlator {
        Correlator {
            host: host.to_owned(),
            seen: HashMap::new(),
            order: VecDeque::new(),
            similar: HashMap::new(),
            spam: HashMap::new(),
        }
    }

    /// Decides what `event`, happening at `now` (`time`: its RFC 3339 form), becomes.
    pub fn observe(&mut self, event: &Recorded, now: Instant, time: &str) -> Action {
        let t = &event.target;
        let object = [
            t.kind.as_str(),
            &t.api_version,
            &t.namespace,
            &t.name,
            &t.uid,
            &t.field_path,
        ]
        .join("\u{0}");
        if !self.allow(&format!("{object}\u{0}{}", event.reason), now) {
            return Action::Drop;
        }
        if self.similar.len() >= CACHE_ENTRIES {
            self.similar.retain(|_, s| {
                s.messages
                    .values()
                    .any(|at| now.duration_since(*at) < SIMILAR_WINDOW)
            });
        }
        let similar_key = format!(
            "{}\u{0}{}\u{0}{object}\u{0}{}\u{0}{}",
            COMPONENT,
            self.host,
            event.type_.as_str(),
            event.reason
        );
        let similar = self
            .similar
            .entry(similar_key.clone())
            .or_insert_with(|| Similar {
                messages: HashMap::new(),
            });
        similar
            .messages
            .retain(|_, at| now.duration_since(*at) < SIMILAR_WINDOW);
        similar.messages.insert(event.message.clone(), now);
        let (key, message) = if similar.messages.len() > SIMILAR_MAX {
            (
                format!("{similar_key}\u{0}(combined)"),
                format!("(combined from similar events): {}", event.message),
            )
        } else {
            (
                format!("{similar_key}\u{0}{}", event.message),
                event.message.clone(),
            )
        };
        if let Some(seen) = self.seen.get_mut(&key) {
            seen.count += 1;
            return Action::Update {
                namespace: seen.namespace.clone(),
                name: seen.name.clone(),
                patch: json!({"count": seen.count, "message": message, "lastTimestamp": time}),
            };
        }
        let namespace = t.event_namespace().to_owned();
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!("{}.{nanos:x}", t.name);
        self.remember(key, &namespace, &name);
        Action::Create {
            event: json!({
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": t.reference(),
                "reason": event.reason,
                "message": message,
                "type": event.type_.as_str(),
                "source": {"component": COMPONENT, "host": self.host},
                "firstTimestamp": time,
                "lastTimestamp": time,
                "count": 1,
                "reportingComponent": COMPONENT,
                "reportingInstance": self.host,
            }),
            namespace,
        }
    }

    /// Forgets the event `namespace/name` (its write failed, or it expired from the API), so
    /// the next identical event creates a new one.
    pub fn forget(&mut self, namespace: &str, name: &str) {
        self.seen
            .retain(|_, s| !(s.namespace == namespace && s.name == name));
    }

    fn remember(&mut self, key: String, namespace: &str, name: &str) {
        if self.order.len() >= CACHE_ENTRIES
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(key.clone());
        self.seen.insert(
            key,
            Seen {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                count: 1,
            },
        );
    }

    /// The token bucket of `key`: a burst, then one event per refill interval.
    fn allow(&mut self, key: &str, now: Instant) -> bool {
        if self.spam.len() >= CACHE_ENTRIES {
            self.spam
                .retain(|_, b| now.duration_since(b.at) < SPAM_REFILL * SPAM_BURST as u32);
        }
        let bucket = self.spam.entry(key.to_owned()).or_insert(Bucket {
            tokens: SPAM_BURST,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() / SPAM_REFILL.as_secs_f64();
        bucket.tokens = (bucket.tokens + refill).min(SPAM_BURST);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The writer: correlates each event and creates or updates the Event object.
async fn write(client: kube::Client, host: String, mut rx: mpsc::Receiver<Recorded>) {
    let mut correlator = Correlator::new(&host);
    while let Some(event) = rx.recv().await {
        let time = now_time();
        let action = correlator.observe(&event, Instant::now(), &time);
        let result = match apply(&client, &mut correlator, action).await {
            // The object it would update expired: this occurrence starts a new one.
            Ok(Written::Gone) => {
                let action = correlator.observe(&event, Instant::now(), &time);
                apply(&client, &mut correlator, action).await.map(drop)
            }
            other => other.map(drop),
        };
        if let Err(err) = result {
            tracing::warn!(object = %event.target.name, reason = %event.reason, %err, "writing an event");
        }
    }
}

/// What became of an [`Action`].
enum Written {
    /// Created, updated or dropped.
    Done,
    /// The event to update no longer exists (and is forgotten).
    Gone,
}

async fn apply(
    client: &kube::Client,
    correlator: &mut Correlator,
    action: Action,
) -> anyhow::Result<Written> {
    match action {
        Action::Drop => Ok(Written::Done),
        Action::Create { namespace, event } => {
            let name = event["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
            let typed: Event = serde_json::from_value(event)?;
            if let Err(err) = api.create(&PostParams::default(), &typed).await {
                correlator.forget(&namespace, &name);
                return Err(err.into());
            }
            Ok(Written::Done)
        }
        Action::Update {
            namespace,
            name,
            patch,
        } => {
            let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
            match api
                .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Ok(_) => Ok(Written::Done),
                // Expired (TTL) or deleted.
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    correlator.forget(&namespace, &name);
                    Ok(Written::Gone)
                }
                Err(err) => Err(err.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(reason: &str, message: &str) -> Recorded {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "resourceVersion": "7"},
            "spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "app"}]},
        }))
        .unwrap();
        Recorded {
            target: Target::container(&pod, "app"),
            type_: Type::Warning,
            reason: reason.into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_full_queue_drops_instead_of_waiting() {
        let (tx, mut rx) = mpsc::channel(2);
        let recorder = Recorder { tx: Some(tx) };
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}})).unwrap();
        for i in 0..100 {
            recorder.pod(&pod).normal("Tick", format!("{i}"));
        }
        let first = rx.try_recv().unwrap();
        assert_eq!(first.message, "0");
        assert_eq!(rx.try_recv().unwrap().message, "1");
        assert!(rx.try_recv().is_err(), "only what fitted was queued");
        // The default recorder records nothing, silently.
        Recorder::default().pod(&pod).warning("Nothing", "dropped");
    }

    #[test]
    fn container_references_name_their_field_path() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "resourceVersion": "7"},
            "spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "app"}]},
        }))
        .unwrap();
        assert_eq!(
            Target::container(&pod, "setup").field_path,
            "spec.initContainers{setup}"
        );
        let app = Target::container(&pod, "app").reference();
        assert_eq!(
            app,
            json!({"kind": "Pod", "apiVersion": "v1", "name": "web", "namespace": "ns",
                   "uid": "u1", "resourceVersion": "7", "fieldPath": "spec.containers{app}"})
        );
        let node = Target::node("n1");
        assert_eq!(node.event_namespace(), "default");
        assert_eq!(node.reference()["uid"], "n1");
    }

    #[test]
    fn identical_events_update_one_object() {
        let mut correlator = Correlator::new("n1");
        let now = Instant::now();
        let Action::Create { namespace, event } =
            correlator.observe(&recorded("BackOff", "back-off"), now, "t1")
        else {
            panic!("the first event creates")
        };
        assert_eq!(namespace, "ns");
        assert_eq!(event["count"], 1);
        assert_eq!(
            event["source"],
            json!({"component": "kubelet", "host": "n1"})
        );
        let name = event["metadata"]["name"].as_str().unwrap().to_owned();
        assert!(name.starts_with("web."), "{name}");
        let Action::Update {
            name: updated,
            patch,
            ..
        } = correlator.observe(&recorded("BackOff", "back-off"), now, "t2")
        else {
            panic!("a repeat updates")
        };
        assert_eq!(updated, name);
        assert_eq!(patch["count"], 2);
        assert_eq!(patch["lastTimestamp"], "t2");
        // Another reason or message is another event.
        assert!(matches!(
            correlator.observe(&recorded("Unhealthy", "back-off"), now, "t3"),
            Action::Create { .. }
        ));
        assert!(matches!(
            correlator.observe(&recorded("BackOff", "other"), now, "t3"),
            Action::Create { .. }
        ));
        // A forgotten (expired) event is created afresh.
        correlator.forget("ns", &name);
        assert!(matches!(
            correlator.observe(&recorded("BackOff", "back-off"), now, "t4"),
            Action::Create { .. }
        ));
    }

    #[test]
    fn similar_events_are_combined() {
        let mut correlator = Correlator::new("n1");
        let now = Instant::now();
        for i in 0..SIMILAR_MAX {
            let action = correlator.observe(&recorded("Unhealthy", &format!("out {i}")), now, "t");
            assert!(matches!(action, Action::Create { .. }), "{i}");
        }
        let Action::Create {
            event: combined, ..
        } = correlator.observe(&recorded("Unhealthy", "out 10"), now, "t")
        else {
            panic!("the first combined event creates")
        };
        assert_eq!(
            combined["message"],
            "(combined from similar events): out 10"
        );
        let Action::Update { patch, .. } =
            correlator.observe(&recorded("Unhealthy", "out 11"), now, "t")
        else {
            panic!("later similar events update the combined one")
        };
        assert_eq!(patch["count"], 2);
        assert_eq!(patch["message"], "(combined from similar events): out 11");
    }

    #[test]
    fn spam_is_dropped_until_the_bucket_refills() {
        let mut correlator = Correlator::new("n1");
        let now = Instant::now();
        for _ in 0..SPAM_BURST as usize {
            assert_ne!(
                correlator.observe(&recorded("BackOff", "x"), now, "t"),
                Action::Drop
            );
        }
        assert_eq!(
            correlator.observe(&recorded("BackOff", "x"), now, "t"),
            Action::Drop
        );
        // Other reasons of the same object still get through.
        assert_ne!(
            correlator.observe(&recorded("Killing", "x"), now, "t"),
            Action::Drop
        );
        assert_ne!(
            correlator.observe(&recorded("BackOff", "x"), now + SPAM_REFILL, "t"),
            Action::Drop
        );
    }
}
