//! The proxy's health (`/healthz`, `/livez`, as kube-proxy serves them on 10256) and its
//! Prometheus metrics (`/metrics`, as on kube-proxy's 10249).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use skiff_ebpf::lb::{self, LbMaps, STAT_NAMES};

use crate::proxy::unix_now;
use crate::sync::{MapSync, SyncStats};

/// How long without a successful sync (while changes wait) before `/healthz` says unhealthy.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// Counters and gauges of the sync loop.
#[derive(Default)]
pub struct Metrics {
    syncs: AtomicU64,
    sync_errors: AtomicU64,
    attach_failures: AtomicU64,
    frontends: AtomicU64,
    backends: AtomicU64,
    map_operations: AtomicU64,
    skipped: AtomicU64,
    /// Seconds spent syncing in all, and the last sync: (unix time, duration).
    timing: Mutex<(f64, Option<(f64, Duration)>)>,
    /// Since when a change has been waiting for a sync (unix time).
    pending_since: Mutex<Option<f64>>,
}

impl Metrics {
    /// Records one sync.
    pub fn synced(&self, took: Duration, stats: &SyncStats, sync: &MapSync, skipped: usize) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.sync_errors
            .fetch_add(stats.errors.len() as u64, Ordering::Relaxed);
        self.map_operations
            .fetch_add(stats.map_operations as u64, Ordering::Relaxed);
        let (frontends, backends) = sync.sizes();
        self.frontends.store(frontends as u64, Ordering::Relaxed);
        self.backends.store(backends as u64, Ordering::Relaxed);
        self.skipped.store(skipped as u64, Ordering::Relaxed);
        let mut timing = self.timing.lock().unwrap();
        timing.0 += took.as_secs_f64();
        timing.1 = Some((unix_now(), took));
        *self.pending_since.lock().unwrap() = None;
    }

    /// Records that a change arrived and waits for a sync.
    pub fn changed(&self) {
        self.pending_since
            .lock()
            .unwrap()
            .get_or_insert_with(unix_now);
    }

    /// Healthy: synced at least once, and no change has waited longer than `STALE_AFTER`.
    fn healthy(&self, now: f64) -> (bool, f64) {
        let last = self.last_sync();
        let waiting = self
            .pending_since
            .lock()
            .unwrap()
            .is_some_and(|since| now - since > STALE_AFTER.as_secs_f64());
        (last.is_some() && !waiting, last.unwrap_or(0.0))
    }

    /// Records a failed program attachment.
    pub fn attach_failed(&self) {
        self.attach_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text of the sync loop's figures.
    pub fn render(&self, out: &mut Exposition) {
        let (total, last) = *self.timing.lock().unwrap();
        let counters = [
            ("skiff_proxy_syncs_total", "Map syncs done.", &self.syncs),
            (
                "skiff_proxy_sync_errors_total",
                "Frontends a sync could not write (full maps and the like).",
                &self.sync_errors,
            ),
            (
                "skiff_proxy_map_operations_total",
                "Map entries written or deleted.",
                &self.map_operations,
            ),
            (
                "skiff_proxy_attach_failures_total",
                "Failed attempts to attach the socket-level programs.",
                &self.attach_failures,
            ),
        ];
        for (name, help, value) in counters {
            metric(
                out,
                name,
                help,
                "counter",
                &[],
                value.load(Ordering::Relaxed) as f64,
            );
        }
        let gauges = [
            (
                "skiff_proxy_frontends",
                "Frontends in the maps.",
                &self.frontends,
            ),
            (
                "skiff_proxy_backends",
                "Backends in the maps.",
                &self.backends,
            ),
            (
                "skiff_proxy_unsupported",
                "Things in Services the dataplane cannot express (skipped, logged).",
                &self.skipped,
            ),
        ];
        for (name, help, value) in gauges {
            metric(
                out,
                name,
                help,
                "gauge",
                &[],
                value.load(Ordering::Relaxed) as f64,
            );
        }
        metric(
            out,
            "skiff_proxy_sync_duration_seconds_sum",
            "Seconds spent in map syncs.",
            "counter",
            &[],
            total,
        );
        if let Some((at, took)) = last {
            metric(
                out,
                "skiff_proxy_last_sync_duration_seconds",
                "How long the last map sync took.",
                "gauge",
                &[],
                took.as_secs_f64(),
            );
            metric(
                out,
                "skiff_proxy_last_sync_timestamp_seconds",
                "When the last map sync finished.",
                "gauge",
                &[],
                at,
            );
        }
    }

    fn last_sync(&self) -> Option<f64> {
        self.timing.lock().unwrap().1.map(|(at, _)| at)
    }
}

/// Prometheus text being written: the samples, and which families have their HELP and TYPE
/// lines already (a scrape of a large node has hundreds of thousands of samples: searching
/// the text for each would be quadratic).
#[derive(Default)]
pub struct Exposition {
    text: String,
    families: std::collections::HashSet<String>,
}

impl Exposition {
    /// The finished text.
    pub fn into_text(self) -> String {
        self.text
    }
}

/// One metric sample, with its family's HELP and TYPE lines the first time.
pub fn metric(
    out: &mut Exposition,
    name: &str,
    help: &str,
    kind: &str,
    labels: &[(&str, &str)],
    value: f64,
) {
    if !out.families.contains(name) {
        out.families.insert(name.to_owned());
        let _ = writeln!(out.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    let out = &mut out.text;
    let labels: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
    }
}

/// Datapath counters and traffic per service frontend and backend, read from the maps.
pub fn render_dataplane(
    out: &mut Exposition,
    maps: &LbMaps,
    sync: &MapSync,
    service_of: &dyn Fn(&crate::model::Frontend) -> String,
) {
    for (index, name) in STAT_NAMES.iter().enumerate() {
        let value = lb::percpu_sum(&maps.stats, &(index as u32)).unwrap_or(0);
        metric(
            out,
            "skiff_proxy_datapath_events_total",
            "Datapath events by kind (socket translations, packets translated, rejects, ...).",
            "counter",
            &[("event", name)],
            value as f64,
        );
    }
    for (frontend, id) in sync.service_ids() {
        let Some((packets, bytes)) = traffic(&maps.service_traffic, id) else {
            continue;
        };
        let fe = format!("{}:{}/{}", frontend.address, frontend.port, frontend.proto);
        let service = service_of(frontend);
        let labels = [("service", service.as_str()), ("frontend", fe.as_str())];
        metric(
            out,
            "skiff_proxy_service_packets_total",
            "Packets (or, at the socket level, connections and datagrams) sent to a service frontend.",
            "counter",
            &labels,
            packets as f64,
        );
        metric(
            out,
            "skiff_proxy_service_bytes_total",
            "Bytes of per-packet traffic sent to a service frontend.",
            "counter",
            &labels,
            bytes as f64,
        );
    }
    for (backend, id) in sync.backend_ids() {
        let Some((packets, bytes)) = traffic(&maps.backend_traffic, id) else {
            continue;
        };
        let be = format!("{}:{}/{}", backend.address, backend.port, backend.proto);
        let labels = [("backend", be.as_str())];
        metric(
            out,
            "skiff_proxy_backend_packets_total",
            "Packets (or connections and datagrams) sent to a backend.",
            "counter",
            &labels,
            packets as f64,
        );
        metric(
            out,
            "skiff_proxy_backend_bytes_total",
            "Bytes of per-packet traffic sent to a backend.",
            "counter",
            &labels,
            bytes as f64,
        );
    }
}

/// Packets and bytes of one per-CPU traffic counter, summed over CPUs.
fn traffic(map: &skiff_ebpf::libbpf_rs::MapHandle, id: u32) -> Option<(u64, u64)> {
    use skiff_ebpf::libbpf_rs::{MapCore, MapFlags};
    let values = map.lookup_percpu(&id.to_ne_bytes(), MapFlags::ANY).ok()??;
    let mut sum = (0u64, 0u64);
    for v in values {
        let value = skiff_ebpf::plain::from_bytes::<lb::types::lb_traffic>(
            &v[..size_of::<lb::types::lb_traffic>().min(v.len())],
        )?;
        sum.0 += value.packets;
        sum.1 += value.bytes;
    }
    Some(sum)
}

/// Serves `/healthz` and `/livez`: 200 once the maps have been synced, with kube-proxy's JSON.
pub async fn serve_health(
    bind: SocketAddr,
    metrics: std::sync::Arc<Metrics>,
) -> anyhow::Result<()> {
    let answer = move || {
        let metrics = metrics.clone();
        async move {
            let now = unix_now();
            let body = |last: f64| {
                format!(
                    "{{\"lastUpdated\": \"{}\", \"currentTime\": \"{}\"}}",
                    rfc3339(last),
                    rfc3339(now)
                )
            };
            let (healthy, last) = metrics.healthy(now);
            let code = if healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (code, body(last)).into_response()
        }
    };
    let app = axum::Router::new()
        .route("/healthz", get(answer.clone()))
        .route("/livez", get(answer));
    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!(address = %listener.local_addr()?, "proxy health server listening");
    axum::serve(listener, app).await?;
    Ok(())
}

/// Serves `/metrics` with what `render` writes.
pub async fn serve_metrics(
    bind: SocketAddr,
    render: std::sync::Arc<dyn Fn() -> String + Send + Sync>,
) -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let render = render.clone();
            async move { ([("content-type", "text/plain; version=0.0.4")], render()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!(address = %listener.local_addr()?, "proxy metrics server listening");
    axum::serve(listener, app).await?;
    Ok(())
}

fn rfc3339(unix: f64) -> String {
    jiff::Timestamp::from_second(unix as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
