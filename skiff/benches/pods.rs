//! `cargo xtask bench pods`: pod startup through `skiff agent` (its kubelet over CRI) beside the
//! raw CRI cost of the same pods, measured in the same run on the same containerd (root only).
//!
//! Per batch size (1 pod, repeated; 30 and 100 pods at once), both ways, alternating:
//! - **raw CRI** (the anchor): for every pod at once, RunPodSandbox → CreateContainer →
//!   StartContainer straight to containerd, timed from the first call to the container
//!   running; no agent, no API;
//! - **skiff agent**: the pods are created through the API with `spec.nodeName` set (no
//!   scheduler yet); each is timed from its create request to its Ready=True arriving over a
//!   watch, the way Kubernetes' pod startup SLO measures (image present: p99 <= 5 s).
//!
//! Also the agent process's own CPU time per pod started and its memory with 100 pods running
//! (/proc), beside the runtime's CPU per pod (containerd, shims, runc and the CNI plugins: the
//! cgroup containerd is moved into) in the raw run, and the runtime's CPU per pod when the
//! agent drives it (its status and list calls). Pods are busybox
//! `sleep` containers on Debian's reference bridge CNI (the network is not what is measured
//! here; `cargo xtask bench podnet` is); the agent runs with `--pod-network=false`.
//!
//! Goal (issue 6): p99 under 1 s for 30 pods; the agent's latency over the raw CRI cost under
//! 20%.
//!
//! Batches beyond one pod run twice: all created at once, and created at `SKIFF_BENCH_RATE`
//! pods/s (default 5; 0 skips), as Kubernetes' density tests pace theirs.
//!
//! Environment: `SKIFF_BENCH_SINGLE` (how often the 1-pod case runs, default 10),
//! `SKIFF_BENCH_SIZES` (batch sizes, default `1,30,100`), `SKIFF_BENCH_OUT` (default
//! `target/bench/pods.json`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use skiff_apiserver::testing::ControlPlane;
use skiff_cri::{Cri, v1};
use skiff_testenv::{ContainerRuntime, Containerd, ContainerdConfig, images, sandbox_config};

const NODE: &str = "bench-pods";
/// How long one batch may take before the benchmark gives up.
const BATCH_TIMEOUT: Duration = Duration::from_secs(300);

/// `skiff agent` as a child process; killed by PID on drop, its pins removed.
struct Agent {
    child: Child,
    pins: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.pins);
    }
}

/// The environment variable `name` parsed, or `default` when unset.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    std::env::var(name)
        .ok()
        .map(|v| v.parse())
        .transpose()
        .context(name.to_owned())
        .map(|v| v.unwrap_or(default))
}

/// CPU time (user + system) of a process.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').context("/proc/PID/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields[11].parse()?;
    let stime: f64 = fields[12].parse()?;
    Ok((utime + stime) / ticks)
}

/// CPU time of every process in a cgroup, past ones included (`cpu.stat`).
fn cgroup_cpu_seconds(cgroup: &Path) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(cgroup.join("cpu.stat"))?;
    let usec: f64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .context("usage_usec in cpu.stat")?
        .trim()
        .parse()?;
    Ok(usec / 1e6)
}

/// A `/proc/PID/status` field in KiB (VmRSS, VmHWM).
fn status_kib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("{field} in /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("value")?
        .parse::<f64>()?)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One batch's per-pod startup latencies (ms) and the CPU spent meanwhile.
#[derive(Default)]
struct Batch {
    latencies_ms: Vec<f64>,
    /// containerd with its shims, runc and the CNI plugins (their cgroup).
    runtime_cpu_s: f64,
    agent_cpu_s: f64,
}

struct Lab {
    dir: PathBuf,
    cri: Cri,
    containerd: Containerd,
    pods: Api<Pod>,
    agent_pid: u32,
    /// The cgroup containerd runs in, and so everything it starts but the containers.
    runtime: PathBuf,
    serial: usize,
}

impl Lab {
    fn container_config(&self, name: &str) -> v1::ContainerConfig {
        v1::ContainerConfig {
            metadata: Some(v1::ContainerMetadata {
                name: "sleep".into(),
                attempt: 0,
            }),
            image: Some(v1::ImageSpec {
                image: images::BUSYBOX.into(),
                ..Default::default()
            }),
            command: vec!["sleep".into(), "3600".into()],
            log_path: format!("{name}.log"),
            ..Default::default()
        }
    }

    /// The anchor: `n` pods straight through CRI, all at once or one every `pace`; then
    /// removed.
    async fn raw(&mut self, n: usize, pace: Option<Duration>) -> anyhow::Result<Batch> {
        let logs = self.dir.join("raw-logs");
        std::fs::create_dir_all(&logs)?;
        let runtime = cgroup_cpu_seconds(&self.runtime)?;
        let mut tasks = tokio::task::JoinSet::new();
        let start = tokio::time::Instant::now();
        for i in 0..n {
            let slot = start + pace.unwrap_or_default() * i as u32;
            self.serial += 1;
            let name = format!("raw-{}", self.serial);
            let sandbox = sandbox_config(
                &name,
                &format!("raw-uid-{}", self.serial),
                &logs,
                self.containerd.cgroup_parent(),
            );
            let container = self.container_config(&name);
            let cri = self.cri.clone();
            tasks.spawn(async move {
                tokio::time::sleep_until(slot).await;
                let began = Instant::now();
                let pod = cri.run_pod_sandbox(&sandbox, "").await?;
                let id = cri.create_container(&pod, &container, &sandbox).await?;
                cri.start_container(&id).await?;
                anyhow::Ok((began.elapsed(), pod))
            });
        }
        let mut batch = Batch::default();
        let mut sandboxes = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (took, pod) = done??;
            batch.latencies_ms.push(took.as_secs_f64() * 1e3);
            sandboxes.push(pod);
        }
        batch.runtime_cpu_s = cgroup_cpu_seconds(&self.runtime)? - runtime;
        let mut removals = tokio::task::JoinSet::new();
        for id in sandboxes {
            let cri = self.cri.clone();
            removals.spawn(async move {
                cri.stop_pod_sandbox(&id).await?;
                cri.remove_pod_sandbox(&id).await
            });
        }
        while let Some(done) = removals.join_next().await {
            done??;
        }
        Ok(batch)
    }

    /// `n` pods created through the API, each timed to its Ready over a watch; then deleted
    /// (and gone from the API, which the agent's kubelet does once they stopped).
    async fn agent(&mut self, n: usize, pace: Option<Duration>) -> anyhow::Result<Batch> {
        self.serial += 1;
        let batch_label = format!("b{}", self.serial);
        let selector = format!("bench-batch={batch_label}");
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
        let watch = {
            let pods = self.pods.clone();
            let selector = selector.clone();
            tokio::spawn(async move {
                let stream =
                    watcher(pods, watcher::Config::default().labels(&selector)).applied_objects();
                futures::pin_mut!(stream);
                while let Some(pod) = stream.try_next().await? {
                    let ready = pod
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    if ready {
                        let _ =
                            ready_tx.send((pod.metadata.name.unwrap_or_default(), Instant::now()));
                    }
                }
                anyhow::Ok(())
            })
        };
        // The watch is established before the first pod exists (its first event is the empty
        // initial list).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let runtime = cgroup_cpu_seconds(&self.runtime)?;
        let agent = cpu_seconds(self.agent_pid)?;
        let mut created: HashMap<String, Instant> = HashMap::new();
        let start = tokio::time::Instant::now();
        let creates = futures::stream::iter(0..n).map(|i| {
            let slot = start + pace.unwrap_or_default() * i as u32;
            let pods = self.pods.clone();
            let name = format!("{batch_label}-{i}");
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default",
                             "labels": {"bench-batch": batch_label}},
                "spec": {
                    "nodeName": NODE,
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{
                        "name": "sleep",
                        "image": images::BUSYBOX,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sleep", "3600"],
                    }],
                },
            }))
            .expect("a valid pod");
            async move {
                tokio::time::sleep_until(slot).await;
                let began = Instant::now();
                pods.create(&PostParams::default(), &pod).await?;
                anyhow::Ok((name, began))
            }
        });
        // Created the way a ReplicaSet controller would: a handful of requests in flight.
        let mut creates = creates.buffer_unordered(8);
        while let Some(done) = creates.next().await {
            let (name, began) = done?;
            created.insert(name, began);
        }
        let mut batch = Batch::default();
        let mut seen: HashMap<String, Instant> = HashMap::new();
        let deadline = tokio::time::Instant::now() + BATCH_TIMEOUT;
        while seen.len() < n {
            match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
                Ok(Some((name, at))) => {
                    seen.entry(name).or_insert(at);
                }
                Ok(None) => bail!("the watch ended: {:?}", watch.await),
                Err(_) => bail!("only {} of {n} pods turned Ready in time", seen.len()),
            }
        }
        batch.runtime_cpu_s = cgroup_cpu_seconds(&self.runtime)? - runtime;
        batch.agent_cpu_s = cpu_seconds(self.agent_pid)? - agent;
        watch.abort();
        for (name, ready) in &seen {
            let began = created
                .get(name)
                .context("a Ready pod this batch did not create")?;
            batch
                .latencies_ms
                .push(ready.duration_since(*began).as_secs_f64() * 1e3);
        }
        Ok(batch)
    }

    async fn delete_batch(&self) -> anyhow::Result<()> {
        let lp = ListParams::default().labels("bench-batch");
        self.pods
            .delete_collection(&DeleteParams::default().grace_period(0), &lp)
            .await?;
        // Gone from the API and from containerd (the kubelet may delete the API object before
        // its sandbox is removed): the next batch must not pay for this one's teardown.
        let deadline = Instant::now() + BATCH_TIMEOUT;
        loop {
            let left = self.pods.list(&lp).await?.items.len();
            let sandboxes = self.cri.list_pod_sandbox(None).await?.len();
            if left == 0 && sandboxes == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{left} pods and {sandboxes} sandboxes still there after deletion");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the pods benchmark needs root (containerd, cgroups, network namespaces)");
    }
    let single: usize = env_or("SKIFF_BENCH_SINGLE", 10)?;
    let sizes: Vec<usize> = std::env::var("SKIFF_BENCH_SIZES")
        .unwrap_or_else(|_| "1,30,100".into())
        .split(',')
        .map(|s| s.trim().parse().context("SKIFF_BENCH_SIZES"))
        .collect::<anyhow::Result<_>>()?;
    let rate: f64 = env_or("SKIFF_BENCH_RATE", 5.0)?;
    if sizes.iter().any(|&n| n == 0 || n > 200) {
        bail!("SKIFF_BENCH_SIZES: each size must be 1..=200 (one /24 of pod addresses)");
    }

    let pid = std::process::id();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tempfile::Builder::new()
        .prefix("bench-pods-")
        .tempdir_in(tmp)?;
    let subnet = Ipv4Addr::new(10, 209, (pid % 250) as u8, 0);
    let (config, _bridge) =
        ContainerdConfig::on_bridge(dir.path(), &format!("skbp-{pid}"), subnet)?;
    // Declared before containerd, so it is removed after containerd's guard ended everything
    // in it.
    let runtime_cgroup = skiff_netlab::Cgroup::create("bench-pods-runtime")?;
    let ContainerRuntime { cri, containerd } =
        ContainerRuntime::start(&config, &tmp.join("images")).await?;
    // Before the first pod: the shims, runc and CNI plugins it starts land in the cgroup too.
    runtime_cgroup.add(containerd.pid())?;
    cri.ensure_image(images::BUSYBOX).await?;
    cri.ensure_image(images::PAUSE).await?;

    let control = ControlPlane::start(dir.path(), None).await;
    let client = kube::Client::try_from(kube::Config::new(control.url.parse()?))?;
    let cgroup = skiff_netlab::Cgroup::create("bench-pods")?;
    let pins = PathBuf::from(format!("/sys/fs/bpf/skiff-bench-pods-{pid}"));
    let agent_log = std::fs::File::create(dir.path().join("agent.log"))?;
    let child = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["agent", "--pod-network=false", "--hostname-override", NODE])
        .arg("--kubeconfig")
        .arg(&control.kubeconfig)
        .arg("--cgroup-root")
        .arg(cgroup.path())
        .arg("--bpf-pin-dir")
        .arg(&pins)
        .args([
            "--healthz-bind-address",
            &SocketAddr::from(([127, 0, 0, 1], free_port()?)).to_string(),
            "--metrics-bind-address",
            "127.0.0.1:0",
            "--node-ip",
            "127.0.0.1",
            "--kubelet-bind-address",
            "127.0.0.1:0",
        ])
        .arg("--container-runtime-endpoint")
        .arg(containerd.socket())
        .arg("--pod-log-root")
        .arg(dir.path().join("pod-logs"))
        .arg("--root-dir")
        .arg(dir.path().join("kubelet"))
        .args(["--cgroup-parent", containerd.cgroup_parent()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(agent_log)
        .spawn()
        .context("starting skiff agent")?;
    let agent = Agent { child, pins };
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while nodes.get_opt(NODE).await?.is_none() {
        if Instant::now() > deadline {
            bail!(
                "the agent never registered its Node (log: {})",
                dir.path().join("agent.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut lab = Lab {
        dir: dir.path().to_owned(),
        cri,
        containerd,
        pods: Api::namespaced(client.clone(), "default"),
        agent_pid: agent.child.id(),
        runtime: runtime_cgroup.path().to_owned(),
        serial: 0,
    };
    println!(
        "pods: kernel {}, containerd {}; {} CPUs; busybox pods on the reference bridge CNI",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")?.trim(),
        lab.cri.version().await?.runtime_version,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Warm-up (first sandbox of a containerd pays for loading its CNI config, snapshots...).
    lab.raw(1, None).await?;
    lab.agent(1, None).await?;
    lab.delete_batch().await?;

    // Each size at once, and (beyond one pod) created at `rate` pods/s, the way Kubernetes'
    // density tests pace their pods.
    let pace = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
    let cases: Vec<(usize, Option<Duration>)> = sizes
        .iter()
        .flat_map(|&n| {
            std::iter::once((n, None)).chain((n > 1 && pace.is_some()).then_some((n, pace)))
        })
        .collect();
    let mut results: Vec<(String, usize, Batch, Batch)> = Vec::new();
    let mut steady: Option<(f64, f64, f64)> = None;
    for &(n, pace) in &cases {
        let repeats = if n == 1 { single.max(1) } else { 1 };
        let what = match (n, pace) {
            (1, _) => format!("1 pod, {repeats} times"),
            (_, None) => format!("{n} pods at once"),
            (_, Some(_)) => format!("{n} pods at {rate} pods/s"),
        };
        let (mut raw, mut ours) = (Batch::default(), Batch::default());
        for _ in 0..repeats {
            eprintln!("{what}: raw CRI");
            let r = lab.raw(n, pace).await?;
            eprintln!("{what}: skiff agent");
            let a = lab.agent(n, pace).await?;
            if n == *sizes.iter().max().unwrap_or(&n) && steady.is_none() {
                // With the largest batch running: the agent's memory, and its CPU while idle.
                let before = cpu_seconds(lab.agent_pid)?;
                let window = Duration::from_secs(10);
                tokio::time::sleep(window).await;
                let idle = (cpu_seconds(lab.agent_pid)? - before) / window.as_secs_f64();
                steady = Some((
                    status_kib(lab.agent_pid, "VmRSS:")? / 1024.0,
                    status_kib(lab.agent_pid, "VmHWM:")? / 1024.0,
                    idle * 100.0,
                ));
            }
            lab.delete_batch().await?;
            for (into, from) in [(&mut raw, r), (&mut ours, a)] {
                into.latencies_ms.extend(from.latencies_ms);
                into.runtime_cpu_s += from.runtime_cpu_s;
                into.agent_cpu_s += from.agent_cpu_s;
            }
        }
        raw.latencies_ms.sort_by(f64::total_cmp);
        ours.latencies_ms.sort_by(f64::total_cmp);
        results.push((what, n, raw, ours));
    }
    drop(agent);

    // The table and the shared JSON.
    let mut metrics: Vec<Value> = Vec::new();
    let mut metric = |name: String, ours: f64, anchor: Option<(f64, &str)>, unit: &str, better| {
        match anchor {
            Some((value, anchor_name)) => {
                println!("{name:<58} {ours:>10.1} {value:>10.1} {unit:<6} (anchor: {anchor_name})")
            }
            None => println!("{name:<58} {ours:>10.1} {:>10} {unit}", "-"),
        }
        metrics.push(json!({
            "name": name, "ours": ours,
            "anchor": anchor.map(|a| a.0), "anchor_name": anchor.map(|a| a.1),
            "unit": unit, "better": better,
        }));
    };
    println!("{:<58} {:>10} {:>10}", "metric", "skiff agent", "raw CRI");
    let mut goal = Vec::new();
    for (what, n, raw, ours) in &results {
        for (stat, p) in [("p50", 0.50), ("p99", 0.99)] {
            let (a, r) = (
                percentile(&ours.latencies_ms, p),
                percentile(&raw.latencies_ms, p),
            );
            metric(
                format!("startup latency {stat}, {what}"),
                a,
                Some((r, "raw CRI RunPodSandbox -> container running")),
                "ms",
                "lower",
            );
            if *n == 30 && stat == "p99" {
                goal.push(format!(
                    "p99 {what} {a:.0} ms (goal < 1000; SLO 5000; raw CRI {r:.0})"
                ));
            }
            if stat == "p50" {
                goal.push(format!(
                    "{what}: agent latency over raw CRI {:+.0}% at p50",
                    (a / r - 1.0) * 100.0
                ));
            }
        }
        let pods = ours.latencies_ms.len() as f64;
        let raw_runtime = raw.runtime_cpu_s / raw.latencies_ms.len() as f64 * 1e3;
        let agent_cpu = ours.agent_cpu_s / pods * 1e3;
        metric(
            format!("agent CPU per pod started, {what}"),
            agent_cpu,
            Some((raw_runtime, "runtime CPU per pod in the raw CRI run")),
            "ms",
            "lower",
        );
        metric(
            format!("runtime CPU per pod started, {what}"),
            ours.runtime_cpu_s / pods * 1e3,
            Some((raw_runtime, "the same in the raw CRI run")),
            "ms",
            "lower",
        );
        goal.push(format!(
            "{what}: agent CPU {:.0}% of the runtime's",
            agent_cpu / raw_runtime * 100.0
        ));
    }
    if let Some((rss, hwm, idle)) = steady {
        let n = sizes.iter().max().copied().unwrap_or(0);
        metric(
            format!("agent memory (RSS), {n} pods running"),
            rss,
            None,
            "MiB",
            "lower",
        );
        metric(
            format!("agent memory (peak RSS), {n} pods"),
            hwm,
            None,
            "MiB",
            "lower",
        );
        metric(
            format!("agent CPU while idle, {n} pods running"),
            idle,
            None,
            "% core",
            "lower",
        );
    }
    println!("skiff agent: {}", goal.join("; "));
    println!(
        "Kubernetes' SLO: p99 startup <= 5 s (image present). Runtime CPU: containerd, its \
         shims, runc and the CNI plugins (their cgroup); agent CPU: the skiff agent process."
    );
    let out = std::env::var("SKIFF_BENCH_OUT").unwrap_or_else(|_| "target/bench/pods.json".into());
    if let Some(parent) = Path::new(&out).parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&json!({"area": "pods", "metrics": metrics}))?,
    )?;
    println!("wrote {out}");
    Ok(())
}
