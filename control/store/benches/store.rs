//! `cargo xtask bench store`: the embedded store against real etcd (its anchor), same machine,
//! same run, same durability (every acknowledged write is flushed to disk by both).
//!
//! Prints a summary and writes the shared benchmark format to `$SKIFF_BENCH_OUT`
//! (default `target/bench/store.json`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use skiff_store::{
    EmbeddedConfig, EmbeddedStore, EtcdConfig, EtcdStore, RangeRequest, Store, WatchRequest,
};

const VALUE_BYTES: usize = 1024;
const SEQUENTIAL_OPS: usize = 3000;
const CLIENTS: usize = 64;
const CONCURRENT_OPS: usize = 30_000;
const READS: usize = 5000;
const RANGE_KEYS: usize = 100;
const WATCH_SAMPLES: usize = 2000;

struct Metric {
    name: &'static str,
    ours: f64,
    anchor: f64,
    unit: &'static str,
    higher_is_better: bool,
}

fn value() -> Bytes {
    Bytes::from(vec![b'v'; VALUE_BYTES])
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let idx = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[idx].as_secs_f64() * 1e3
}

/// Every figure for one backend, in the order of `METRICS`.
async fn measure(store: Arc<dyn Store>, tag: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let key = |kind: &str, i: usize| format!("/bench/{tag}/{kind}/{i:08}");

    // Sequential creates, then sequential updates of the same keys.
    let started = Instant::now();
    let mut revs = Vec::with_capacity(SEQUENTIAL_OPS);
    for i in 0..SEQUENTIAL_OPS {
        revs.push(store.create(&key("seq", i), value(), None).await.unwrap());
    }
    out.push(SEQUENTIAL_OPS as f64 / started.elapsed().as_secs_f64());
    let started = Instant::now();
    for (i, rev) in revs.iter().enumerate() {
        store
            .update(&key("seq", i), value(), *rev, None)
            .await
            .unwrap();
    }
    out.push(SEQUENTIAL_OPS as f64 / started.elapsed().as_secs_f64());

    // 64 concurrent clients: creates, then compare-and-swap updates.
    let per_client = CONCURRENT_OPS / CLIENTS;
    for phase in ["create", "update"] {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let store = store.clone();
            let keys: Vec<String> = (0..per_client)
                .map(|i| key("conc", c * per_client + i))
                .collect();
            tasks.push(tokio::spawn(async move {
                for k in keys {
                    if phase == "create" {
                        store.create(&k, value(), None).await.unwrap();
                    } else {
                        let kv = store.get(&k, None).await.unwrap().kv.unwrap();
                        store
                            .update(&k, value(), kv.mod_revision, None)
                            .await
                            .unwrap();
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        out.push((per_client * CLIENTS) as f64 / started.elapsed().as_secs_f64());
    }

    // Point reads.
    let mut samples = Vec::with_capacity(READS);
    for i in 0..READS {
        let k = key("seq", i % SEQUENTIAL_OPS);
        let started = Instant::now();
        store.get(&k, None).await.unwrap().kv.unwrap();
        samples.push(started.elapsed());
    }
    out.push(percentile(&mut samples, 0.50));
    out.push(percentile(&mut samples, 0.99));

    // Range reads of 100 keys (a namespace's worth of pods).
    for i in 0..RANGE_KEYS {
        store.create(&key("range", i), value(), None).await.unwrap();
    }
    let prefix = format!("/bench/{tag}/range/");
    let mut samples = Vec::with_capacity(READS / 5);
    for _ in 0..READS / 5 {
        let started = Instant::now();
        let got = store.range(RangeRequest::prefix(&prefix)).await.unwrap();
        samples.push(started.elapsed());
        assert_eq!(got.kvs.len(), RANGE_KEYS);
    }
    out.push(percentile(&mut samples, 0.50));
    out.push(percentile(&mut samples, 0.99));

    // Watch delivery: from just before the write is issued to the event's arrival.
    let watched = key("watch", 0);
    let mut rev = store.create(&watched, value(), None).await.unwrap();
    let mut watch = store.watch(WatchRequest::key(&watched, rev)).await.unwrap();
    let mut samples = Vec::with_capacity(WATCH_SAMPLES);
    for _ in 0..WATCH_SAMPLES {
        let started = Instant::now();
        let write = store.update(&watched, value(), rev, None);
        let (written, event) = tokio::join!(write, watch.next());
        samples.push(started.elapsed());
        rev = written.unwrap();
        assert_eq!(event.unwrap().unwrap().revision(), rev);
    }
    out.push(percentile(&mut samples, 0.99));
    out
}

const METRICS: [(&str, &str, bool); 9] = [
    ("sequential create throughput", "ops/s", true),
    ("sequential update throughput", "ops/s", true),
    ("64-client create throughput", "ops/s", true),
    ("64-client get+CAS update throughput", "ops/s", true),
    ("get latency p50", "ms", false),
    ("get latency p99", "ms", false),
    ("range (100 keys) latency p50", "ms", false),
    ("range (100 keys) latency p99", "ms", false),
    ("watch delivery latency p99", "ms", false),
];

#[tokio::main]
async fn main() {
    let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tempfile::tempdir_in(&tmp).unwrap();
    let mut config = EmbeddedConfig::new(dir.path());
    config.history_window = 10_000;
    let embedded: Arc<dyn Store> = Arc::new(EmbeddedStore::open(config).unwrap());
    let endpoint = support::etcd_endpoint();
    let etcd: Arc<dyn Store> = Arc::new(
        EtcdStore::connect(EtcdConfig::new(&endpoint, "/skiff-bench"))
            .await
            .unwrap(),
    );
    let nonce: u32 = rand::random();
    eprintln!("measuring the embedded store ...");
    let ours = measure(embedded, &format!("e{nonce:x}")).await;
    eprintln!("measuring etcd at {endpoint} ...");
    let anchor = measure(etcd, &format!("x{nonce:x}")).await;
    let flush = flush_floor(dir.path());

    let metrics: Vec<Metric> = METRICS
        .iter()
        .zip(ours.iter().zip(&anchor))
        .map(
            |(&(name, unit, higher_is_better), (&ours, &anchor))| Metric {
                name,
                ours,
                anchor,
                unit,
                higher_is_better,
            },
        )
        .collect();
    report(&metrics);
    // Every durable write waits for a flush, and an event is published only after it: the
    // watch row cannot beat this disk's flush latency, measured here in the same run.
    println!(
        "floor: fdatasync of a {VALUE_BYTES}-byte append to a preallocated file on this disk, \
         p50 {:.3} ms, p99 {:.3} ms (bounds both stores' write and watch latency)",
        flush.0, flush.1
    );
}

/// p50 and p99 (ms) of appending one value to a preallocated file in `dir` and flushing it, as
/// the embedded store's log does for every write group.
fn flush_floor(dir: &std::path::Path) -> (f64, f64) {
    use std::os::unix::fs::FileExt;
    let path = dir.join("flush-floor");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len((WATCH_SAMPLES * VALUE_BYTES * 2) as u64)
        .unwrap();
    file.sync_all().unwrap();
    let record = vec![7u8; VALUE_BYTES];
    let mut samples = Vec::with_capacity(WATCH_SAMPLES);
    for i in 0..WATCH_SAMPLES {
        let started = Instant::now();
        file.write_all_at(&record, (i * VALUE_BYTES) as u64)
            .unwrap();
        file.sync_data().unwrap();
        samples.push(started.elapsed());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    (
        percentile(&mut samples, 0.50),
        percentile(&mut samples, 0.99),
    )
}

fn report(metrics: &[Metric]) {
    println!("\nstore benchmark: embedded (ours) vs etcd 3.4 (anchor), {VALUE_BYTES}-byte values");
    println!(
        "{:<38} {:>12} {:>12} {:>7}",
        "metric", "embedded", "etcd", "ratio"
    );
    let mut json = Vec::new();
    for m in metrics {
        // Ratio in the "better" direction: > 1 means the embedded store wins.
        let ratio = if m.higher_is_better {
            m.ours / m.anchor
        } else {
            m.anchor / m.ours
        };
        println!(
            "{:<38} {:>12.3} {:>12.3} {:>6.1}x  {}",
            m.name, m.ours, m.anchor, ratio, m.unit
        );
        json.push(serde_json::json!({
            "name": m.name,
            "ours": m.ours,
            "anchor": m.anchor,
            "anchor_name": "etcd 3.4 (same machine, same run)",
            "unit": m.unit,
            "better": if m.higher_is_better { "higher" } else { "lower" },
        }));
    }
    let out = std::env::var("SKIFF_BENCH_OUT").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench/store.json").to_owned()
    });
    let out = std::path::PathBuf::from(out);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let doc = serde_json::json!({ "area": "store", "metrics": json });
    std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    println!("\nwrote {}", out.display());
}
