//! `cargo xtask bench apiserver`: the Kubernetes API over each store backend, driven by kube-rs
//! with 64 concurrent clients, beside its anchor measured in the same run: the same workload sent
//! straight to the store (what the API layer costs). Kubernetes' SLOs (mutating and single-get
//! p99 ≤ 1 s, namespace list p99 ≤ 5 s) are printed alongside for reference.
//!
//! Server-side apply has rows of its own, anchored on a strategic merge patch of the same
//! change in the same run: updates of Deployments whose applied field set stays the same (a new
//! image) and whose field set changes (a label that moves).
//!
//! Writes `$SKIFF_BENCH_OUT` (default `target/bench/apiserver.json`). With `SKIFF_BENCH_VERBOSE`
//! set, it also prints each list's time.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::{Client, Config};
use serde_json::{Value, json};
use skiff_apiserver::Server;
use skiff_store::{
    EmbeddedConfig, EmbeddedStore, EtcdConfig, EtcdStore, RangeRequest, Store, WatchRequest,
};

/// The allocator the `skiff` binary runs the apiserver with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLIENTS: usize = 64;
const PODS: usize = 10_000;
const LISTS: usize = 10;
const WATCHERS: usize = 1000;
const FANOUT_SAMPLES: usize = 20;
/// Deployments the apply rows update, each once per run.
const DEPLOYMENTS: usize = 2000;
/// The load at which single-object latency is measured: the throughput goal.
const PACED_RATE: f64 = 5000.0;

fn pod(name: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace, "labels": { "app": "bench", "tier": "web" } },
        "spec": { "containers": [{
            "name": "web", "image": "nginx:1.27",
            "ports": [{ "containerPort": 80 }],
            "resources": { "requests": { "cpu": "100m", "memory": "64Mi" } },
        }]},
    })
}

/// Latency samples of one operation, and the wall time they took with `CLIENTS` in parallel.
struct Run {
    samples: Vec<Duration>,
    wall: Duration,
    /// When each sample started, relative to the run's start (same order as `samples` until
    /// they are sorted).
    starts: Vec<Duration>,
}

impl Run {
    fn throughput(&self) -> f64 {
        self.samples.len() as f64 / self.wall.as_secs_f64()
    }

    /// With `SKIFF_BENCH_VERBOSE`: how the samples slower than `slow` spread over the run, in
    /// 20 ms buckets, to tell stalls (clustered) from scheduling noise (spread out).
    fn explain_tail(&self, what: &str, slow: Duration) {
        if std::env::var_os("SKIFF_BENCH_VERBOSE").is_none() {
            return;
        }
        let mut buckets = std::collections::BTreeMap::<u128, (usize, Duration)>::new();
        for (start, took) in self.starts.iter().zip(&self.samples) {
            if *took > slow {
                let b = buckets.entry(start.as_millis() / 20).or_default();
                b.0 += 1;
                b.1 = b.1.max(*took);
            }
        }
        eprintln!("{what}: samples over {slow:?} by 20 ms of the run (count, worst):");
        for (bucket, (count, worst)) in buckets {
            eprintln!("  {:>6} ms: {count:>4} {worst:?}", bucket * 20);
        }
    }

    fn percentile(&mut self, p: f64) -> f64 {
        self.samples.sort();
        let idx =
            ((self.samples.len() as f64 * p).ceil() as usize).clamp(1, self.samples.len()) - 1;
        self.samples[idx].as_secs_f64() * 1e3
    }
}

/// Runs `op(i)` for i in 0..n over `CLIENTS` concurrent tasks.
async fn parallel<F, Fut>(n: usize, op: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            for i in (c..n).step_by(CLIENTS) {
                let t = Instant::now();
                op(i).await;
                samples.push((t - started, t.elapsed()));
            }
            samples
        }));
    }
    collect(started, tasks).await
}

/// Runs `op(i)` for i in 0..n over `CLIENTS` concurrent tasks at `rate` calls per second in
/// all: latency at a given load rather than at saturation. Each call has a slot on a fixed
/// schedule and its latency counts from that slot, not from when a late client got to send it,
/// so a stall shows up in every call it delays (no coordinated omission).
async fn paced<F, Fut>(n: usize, rate: f64, op: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            for i in (c..n).step_by(CLIENTS) {
                let slot = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(slot).await;
                op(i).await;
                samples.push((slot - started, slot.elapsed()));
            }
            samples
        }));
    }
    collect(started.into_std(), tasks).await
}

async fn collect(
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<Vec<(Duration, Duration)>>>,
) -> Run {
    let mut samples = Vec::new();
    let mut starts = Vec::new();
    for t in tasks {
        for (start, took) in t.await.unwrap() {
            starts.push(start);
            samples.push(took);
        }
    }
    Run {
        samples,
        wall: started.elapsed(),
        starts,
    }
}

/// Figures for one system (the API or the bare store), in `FIGURES` order.
type Figures = Vec<f64>;

const FIGURES: [(&str, &str, bool); 13] = [
    ("64-client create throughput", "ops/s", true),
    ("create latency p50 (saturated)", "ms", false),
    ("create latency p99 (saturated)", "ms", false),
    ("create latency p99 at 5,000/s", "ms", false),
    ("get latency p99 at 5,000/s", "ms", false),
    ("get+replace pair latency p99 at 5,000 calls/s", "ms", false),
    ("get latency p50 (saturated)", "ms", false),
    ("get latency p99 (saturated)", "ms", false),
    (
        "64-client get+replace (read-modify-write) throughput",
        "pairs/s",
        true,
    ),
    ("get+replace (read-modify-write) latency p99", "ms", false),
    ("list 10k pods latency p50", "ms", false),
    ("list 10k pods latency p99", "ms", false),
    ("watch fan-out to 1000 watchers p99", "ms", false),
];

/// The single-object calls the runs measure, each by client `i % CLIENTS` of `apis`.
async fn create_pod(apis: Arc<Vec<Api<Pod>>>, i: usize, namespace: &str) {
    let p: Pod = serde_json::from_value(pod(&format!("pod-{i:05}"), namespace)).unwrap();
    apis[i % CLIENTS]
        .create(&PostParams::default(), &p)
        .await
        .unwrap();
}

async fn get_pod(apis: Arc<Vec<Api<Pod>>>, i: usize) {
    apis[i % CLIENTS].get(&format!("pod-{i:05}")).await.unwrap();
}

/// A read-modify-write: get, then replace with the resourceVersion it read.
async fn relabel_pod(apis: Arc<Vec<Api<Pod>>>, i: usize) {
    let a = &apis[i % CLIENTS];
    let name = format!("pod-{i:05}");
    let mut p = a.get(&name).await.unwrap();
    p.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("updated".into(), "yes".into());
    a.replace(&name, &PostParams::default(), &p).await.unwrap();
}

async fn measure_api(store: Arc<dyn Store>) -> (Figures, Vec<ApplyRow>) {
    // The server gets a runtime of its own, as in `skiff server`: the clients' tasks do not
    // queue in its run queues (the OS shares the cores between the two, as between processes).
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, address) = tokio::sync::oneshot::channel();
    let serving = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name("apiserver")
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let server = Server::new(store, listener.local_addr().unwrap());
            server.bootstrap().await.unwrap();
            let _ = ready.send(listener.local_addr().unwrap());
            skiff_apiserver::serve(server, listener, async {
                let _ = stopped.await;
            })
            .await
        })
    });
    let address = address.await.unwrap();
    let client =
        Client::try_from(Config::new(format!("http://{address}").parse().unwrap())).unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({ "metadata": { "name": "bench" } })).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), "bench");
    // 64 clients, each with its own kube-rs `Client` (its own connection and request queue), as
    // 64 controllers or kubectl processes would be; one shared `Client` would funnel every
    // request through its single buffer task and measure that instead.
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let client =
            Client::try_from(Config::new(format!("http://{address}").parse().unwrap())).unwrap();
        let api: Api<Pod> = Api::namespaced(client, "bench");
        // Connect before measuring: latency is the calls', not the TCP handshakes'.
        api.list(&ListParams::default().limit(1)).await.unwrap();
        clients.push(api);
    }
    let clients = Arc::new(clients);
    let mut out = Vec::new();

    let c = clients.clone();
    let mut create = parallel(PODS, move |i| create_pod(c.clone(), i, "bench")).await;
    create.explain_tail("api create (saturated)", Duration::from_millis(10));
    out.push(create.throughput());
    out.push(create.percentile(0.5));
    out.push(create.percentile(0.99));
    // The same calls at the goal's rate, in a namespace of their own.
    let ns = serde_json::from_value(json!({ "metadata": { "name": "paced" } })).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let paced_apis: Arc<Vec<Api<Pod>>> = Arc::new(
        clients
            .iter()
            .map(|a| Api::namespaced(a.clone().into_client(), "paced"))
            .collect(),
    );
    let c = paced_apis.clone();
    let mut create = paced(PODS, PACED_RATE, move |i| create_pod(c.clone(), i, "paced")).await;
    create.explain_tail("api create at 5,000/s", Duration::from_millis(10));
    out.push(create.percentile(0.99));
    let c = paced_apis.clone();
    let mut get = paced(PODS, PACED_RATE, move |i| get_pod(c.clone(), i)).await;
    out.push(get.percentile(0.99));
    // Updates at the same call rate: a get and a replace per pair, so half the pairs.
    let c = paced_apis.clone();
    let mut update = paced(PODS, PACED_RATE / 2.0, move |i| relabel_pod(c.clone(), i)).await;
    out.push(update.percentile(0.99));
    let c = clients.clone();
    let mut get = parallel(PODS, move |i| get_pod(c.clone(), i)).await;
    out.push(get.percentile(0.5));
    out.push(get.percentile(0.99));
    let c = clients.clone();
    let mut update = parallel(PODS, move |i| relabel_pod(c.clone(), i)).await;
    // An update is a read-modify-write (get, then replace with its resourceVersion) here and in
    // the bare-store anchor alike.
    out.push(update.throughput());
    out.push(update.percentile(0.99));
    let mut lists = Run {
        samples: Vec::new(),
        wall: Duration::ZERO,
        starts: Vec::new(),
    };
    for _ in 0..LISTS {
        let t = Instant::now();
        let listed = api.list(&ListParams::default()).await.unwrap();
        lists.samples.push(t.elapsed());
        assert_eq!(listed.items.len(), PODS);
        if std::env::var_os("SKIFF_BENCH_VERBOSE").is_some() {
            eprintln!("list of {PODS} pods: {:?}", t.elapsed());
        }
    }
    out.push(lists.percentile(0.5));
    out.push(lists.percentile(0.99));
    out.push(api_fanout(&client).await);
    let apply = measure_apply(&clients, &namespaces).await;
    let _ = stop.send(());
    let _ = tokio::task::spawn_blocking(move || serving.join()).await;
    (out, apply)
}

/// One server-side apply row: name, unit, whether higher is better, apply's figure and the
/// strategic merge patch's.
type ApplyRow = (&'static str, &'static str, bool, f64, f64);

/// A Deployment as its applier configures it: `image`, and a label `moving` named after the
/// round when given (the field set changes from round to round).
fn deployment(i: usize, image: &str, moving: Option<usize>) -> Value {
    let mut labels = json!({ "app": "bench" });
    if let Some(round) = moving {
        labels[format!("round-{round}")] = json!("yes");
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": format!("deploy-{i:05}"), "namespace": "apply", "labels": labels },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "bench" } },
            "template": {
                "metadata": { "labels": { "app": "bench" } },
                "spec": { "containers": [{
                    "name": "web", "image": image,
                    "ports": [{ "containerPort": 80 }],
                    "resources": { "requests": { "cpu": "100m", "memory": "64Mi" } },
                }]},
            },
        },
    })
}

/// Server-side apply beside a strategic merge patch of the same change, on `DEPLOYMENTS`
/// Deployments, saturated by the 64 clients: the field set unchanged (a new image), then
/// changed (a label named after the round replaces the last round's).
async fn measure_apply(
    clients: &[Api<Pod>],
    namespaces: &Api<k8s_openapi::api::core::v1::Namespace>,
) -> Vec<ApplyRow> {
    use k8s_openapi::api::apps::v1::Deployment;
    let ns = serde_json::from_value(json!({ "metadata": { "name": "apply" } })).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let apis: Arc<Vec<Api<Deployment>>> = Arc::new(
        clients
            .iter()
            .map(|a| Api::namespaced(a.clone().into_client(), "apply"))
            .collect(),
    );
    // The appliers force: a strategic merge patch takes the fields it changes from them.
    let apply = |round: usize, moving: bool| {
        let apis = apis.clone();
        move |i: usize| {
            let apis = apis.clone();
            async move {
                let config = deployment(i, &format!("nginx:{round}"), moving.then_some(round));
                apis[i % CLIENTS]
                    .patch(
                        &format!("deploy-{i:05}"),
                        &PatchParams::apply("bench").force(),
                        &Patch::Apply(&config),
                    )
                    .await
                    .unwrap();
            }
        }
    };
    let smp = |round: usize, moving: bool| {
        let apis = apis.clone();
        move |i: usize| {
            let apis = apis.clone();
            async move {
                let patch = if moving {
                    json!({ "metadata": { "labels": {
                        format!("round-{round}"): "yes",
                        format!("round-{}", round - 1): null,
                    }}})
                } else {
                    json!({ "spec": { "template": { "spec": { "containers": [
                        { "name": "web", "image": format!("nginx:{round}") }
                    ]}}}})
                };
                apis[i % CLIENTS]
                    .patch(
                        &format!("deploy-{i:05}"),
                        &PatchParams::default(),
                        &Patch::Strategic(&patch),
                    )
                    .await
                    .unwrap();
            }
        }
    };
    // Created by apply, so that every later write meets managed fields.
    parallel(DEPLOYMENTS, apply(0, false)).await;
    let mut rows = Vec::new();
    for (moving, throughput, p99) in [
        (
            false,
            "64-client server-side apply, field set unchanged",
            "server-side apply p99, field set unchanged",
        ),
        (
            true,
            "64-client server-side apply, field set changed",
            "server-side apply p99, field set changed",
        ),
    ] {
        // Each run changes every Deployment: rounds 1, 2 (image), 11, 12 (label).
        let base = if moving { 10 } else { 0 };
        let mut patched = parallel(DEPLOYMENTS, smp(base + 1, moving)).await;
        let mut applied = parallel(DEPLOYMENTS, apply(base + 2, moving)).await;
        patched.explain_tail(
            &format!("strategic merge patch ({throughput})"),
            Duration::from_millis(50),
        );
        applied.explain_tail(
            &format!("server-side apply ({throughput})"),
            Duration::from_millis(50),
        );
        rows.push((
            throughput,
            "updates/s",
            true,
            applied.throughput(),
            patched.throughput(),
        ));
        rows.push((
            p99,
            "ms",
            false,
            applied.percentile(0.99),
            patched.percentile(0.99),
        ));
    }
    rows
}

/// Time from one write until the last of `WATCHERS` watch streams has its event.
async fn api_fanout(client: &Client) -> f64 {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "bench");
    let first: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": "fanout" }, "data": { "n": "0" } }))
            .unwrap();
    let created = api.create(&PostParams::default(), &first).await.unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let api = api.clone();
        let tx = tx.clone();
        let rv = rv.clone();
        watchers.push(tokio::spawn(async move {
            let stream = api
                .watch(&WatchParams::default().fields("metadata.name=fanout"), &rv)
                .await
                .unwrap();
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if event.is_ok() && tx.send(Instant::now()).is_err() {
                    return;
                }
            }
        }));
    }
    // Let every watch connect before writing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut samples = Vec::new();
    let mut current = created;
    for n in 1..=FANOUT_SAMPLES {
        current.data = Some([("n".to_owned(), n.to_string())].into());
        let started = Instant::now();
        current = api
            .replace("fanout", &PostParams::default(), &current)
            .await
            .unwrap();
        let mut last = started;
        for _ in 0..WATCHERS {
            last = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("every watcher gets the event")
                .unwrap();
        }
        samples.push(last - started);
    }
    for w in watchers {
        w.abort();
    }
    Run {
        samples,
        wall: Duration::ZERO,
        starts: Vec::new(),
    }
    .percentile(0.99)
}

/// The same workload sent straight to the store: what the API layer adds is the difference.
async fn measure_store(store: Arc<dyn Store>) -> Figures {
    let key = |i: usize| format!("/bench/pods/bench/pod-{i:05}");
    let body = |i: usize| Bytes::from(pod(&format!("pod-{i:05}"), "bench").to_string());
    let mut out = Vec::new();
    let s = store.clone();
    let mut create = parallel(PODS, move |i| {
        let s = s.clone();
        async move {
            s.create(&key(i), body(i), None).await.unwrap();
        }
    })
    .await;
    out.push(create.throughput());
    out.push(create.percentile(0.5));
    out.push(create.percentile(0.99));
    let paced_key = |i: usize| format!("/bench/pods/paced/pod-{i:05}");
    let s = store.clone();
    let mut create = paced(PODS, PACED_RATE, move |i| {
        let s = s.clone();
        async move {
            s.create(&paced_key(i), body(i), None).await.unwrap();
        }
    })
    .await;
    out.push(create.percentile(0.99));
    let s = store.clone();
    let mut get = paced(PODS, PACED_RATE, move |i| {
        let s = s.clone();
        async move {
            s.get(&paced_key(i), None).await.unwrap().kv.unwrap();
        }
    })
    .await;
    out.push(get.percentile(0.99));
    let s = store.clone();
    let mut update = paced(PODS, PACED_RATE / 2.0, move |i| {
        let s = s.clone();
        async move {
            let kv = s.get(&paced_key(i), None).await.unwrap().kv.unwrap();
            s.update(&paced_key(i), body(i), kv.mod_revision, None)
                .await
                .unwrap();
        }
    })
    .await;
    out.push(update.percentile(0.99));
    let s = store.clone();
    let mut get = parallel(PODS, move |i| {
        let s = s.clone();
        async move {
            s.get(&key(i), None).await.unwrap().kv.unwrap();
        }
    })
    .await;
    out.push(get.percentile(0.5));
    out.push(get.percentile(0.99));
    let s = store.clone();
    let mut update = parallel(PODS, move |i| {
        let s = s.clone();
        async move {
            let kv = s.get(&key(i), None).await.unwrap().kv.unwrap();
            s.update(&key(i), body(i), kv.mod_revision, None)
                .await
                .unwrap();
        }
    })
    .await;
    out.push(update.throughput());
    out.push(update.percentile(0.99));
    let mut lists = Run {
        samples: Vec::new(),
        wall: Duration::ZERO,
        starts: Vec::new(),
    };
    for _ in 0..LISTS {
        let t = Instant::now();
        let listed = store
            .range(RangeRequest::prefix("/bench/pods/bench/"))
            .await
            .unwrap();
        // Decoding is part of a list's cost at any layer.
        let items: Vec<Value> = listed
            .kvs
            .iter()
            .map(|kv| serde_json::from_slice(&kv.value).unwrap())
            .collect();
        lists.samples.push(t.elapsed());
        assert_eq!(items.len(), PODS);
    }
    out.push(lists.percentile(0.5));
    out.push(lists.percentile(0.99));
    // Fan-out: 1000 store watches on one key.
    let k = "/bench/fanout";
    let mut rev = store
        .create(k, Bytes::from_static(b"0"), None)
        .await
        .unwrap();
    let mut streams = Vec::new();
    for _ in 0..WATCHERS {
        streams.push(store.watch(WatchRequest::key(k, rev)).await.unwrap());
    }
    let mut samples = Vec::new();
    for n in 1..=FANOUT_SAMPLES {
        let started = Instant::now();
        rev = store
            .update(k, Bytes::from(n.to_string()), rev, None)
            .await
            .unwrap();
        for s in streams.iter_mut() {
            s.next().await.unwrap().unwrap();
        }
        samples.push(started.elapsed());
    }
    out.push(
        Run {
            samples,
            wall: Duration::ZERO,
            starts: Vec::new(),
        }
        .percentile(0.99),
    );
    out
}

fn embedded(dir: &Path) -> Arc<dyn Store> {
    Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir)).unwrap())
}

async fn etcd(endpoint: &str, prefix: &str) -> Arc<dyn Store> {
    Arc::new(
        EtcdStore::connect(EtcdConfig::new(endpoint, prefix))
            .await
            .unwrap(),
    )
}

#[tokio::main]
async fn main() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let endpoint = skiff_testenv::shared_etcd(tmp);
    let nonce: u32 = rand::random();
    let mut sections = Vec::new();
    // SKIFF_BENCH_BACKENDS=embedded (or etcd) measures one backend only.
    let only = std::env::var("SKIFF_BENCH_BACKENDS").ok();
    for backend in ["embedded", "etcd"] {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|b| b == backend))
        {
            continue;
        }
        eprintln!("apiserver on {backend} ...");
        let dir = tempfile::tempdir_in(tmp).unwrap();
        let store = match backend {
            "embedded" => embedded(&dir.path().join("api")),
            _ => etcd(&endpoint, &format!("/bench-api-{nonce:x}")).await,
        };
        let (api, apply) = measure_api(store).await;
        eprintln!("the bare {backend} store ...");
        let store = match backend {
            "embedded" => embedded(&dir.path().join("store")),
            _ => etcd(&endpoint, &format!("/bench-store-{nonce:x}")).await,
        };
        let bare = measure_store(store).await;
        sections.push((backend, api, bare, apply));
    }
    report(&sections);
}

fn report(sections: &[(&str, Figures, Figures, Vec<ApplyRow>)]) {
    let mut metrics = Vec::new();
    println!(
        "\napiserver benchmark: {CLIENTS} kube-rs clients, {PODS} pods; anchor: the same workload straight to the store"
    );
    println!(
        "{:<48} {:>12} {:>12}  unit",
        "metric", "apiserver", "bare store"
    );
    for (backend, api, bare, _) in sections {
        for ((name, unit, higher), (ours, anchor)) in FIGURES.iter().zip(api.iter().zip(bare)) {
            let name = format!("{name} ({backend})");
            println!("{name:<48} {ours:>12.2} {anchor:>12.2}  {unit}");
            metrics.push(json!({
                "name": name, "ours": ours, "anchor": anchor,
                "anchor_name": format!("the same workload sent straight to the {backend} store"),
                "unit": unit, "better": if *higher { "higher" } else { "lower" },
            }));
        }
    }
    println!(
        "\nserver-side apply: {DEPLOYMENTS} Deployments; anchor: a strategic merge patch of the same change (goal: apply within 1.5x)"
    );
    println!("{:<48} {:>12} {:>12}  unit", "metric", "apply", "SMP");
    for (backend, _, _, apply) in sections {
        for (name, unit, higher, ours, anchor) in apply {
            let name = format!("{name} ({backend})");
            println!("{name:<48} {ours:>12.2} {anchor:>12.2}  {unit}");
            metrics.push(json!({
                "name": name, "ours": ours, "anchor": anchor,
                "anchor_name": "a strategic merge patch of the same change, same run",
                "unit": unit, "better": if *higher { "higher" } else { "lower" },
            }));
        }
    }
    // Kubernetes' API call latency SLOs, against the embedded-store figures.
    let (_, embedded, _, _) = &sections[0];
    let slos = [
        (
            "mutating call (create) p99 vs SLO (embedded)",
            embedded[2],
            1000.0,
        ),
        ("single get p99 vs SLO (embedded)", embedded[7], 1000.0),
        ("namespace list p99 vs SLO (embedded)", embedded[11], 5000.0),
    ];
    println!("\nagainst Kubernetes' SLOs:");
    for (name, ours, slo) in slos {
        println!("{name:<48} {ours:>12.2} {slo:>12.2}  ms");
        metrics.push(json!({
            "name": name, "ours": ours, "anchor": slo,
            "anchor_name": "Kubernetes API call latency SLO", "unit": "ms", "better": "lower",
        }));
    }
    let out = std::env::var("SKIFF_BENCH_OUT").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/bench/apiserver.json"
        )
        .to_owned()
    });
    let out = std::path::PathBuf::from(out);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let doc = json!({ "area": "apiserver", "metrics": metrics });
    std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    println!("\nwrote {}", out.display());
}
