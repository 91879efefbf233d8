//! Resource usage for the kubelet's Summary API (`/stats/summary`): the node from `/proc`,
//! pods and containers from their cgroups.
//!
//! A container's cgroup is the `linux.cgroupsPath` of its runtime spec (containerd's verbose
//! ContainerStatus); a pod's is the parent of its sandbox's (the cgroup parent the kubelet
//! gave the sandbox), which holds every container of the pod. Both cgroup v2 (`cpu.stat`
//! `usage_usec`, `memory.current`, `memory.stat` `anon`/`inactive_file`) and v1 with
//! `cpuacct` and `memory` hierarchies (`cpuacct.usage`, `memory.usage_in_bytes`,
//! `memory.stat` `total_rss`/`total_inactive_file`) are read. `usageNanoCores` is the CPU time
//! used between two samples: the previous one is kept per cgroup, and a first request samples
//! twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skiff_cri::{Cri, v1};

use crate::runtime::{CONTAINER_NAME, MANAGED_BY, POD_NAME, POD_NAMESPACE, POD_UID};

/// A previous sample older than this is not used for a rate (sample again instead).
const SAMPLE_MAX_AGE: Duration = Duration::from_secs(60);
/// Two samples closer than this give no useful rate.
const SAMPLE_MIN_GAP: Duration = Duration::from_millis(100);
/// How long a first request waits between its two samples.
const SAMPLE_GAP: Duration = Duration::from_millis(250);

/// Where the cgroup controllers the stats need are mounted.
#[derive(Clone, Debug, PartialEq)]
pub enum Cgroups {
    /// The unified hierarchy (with the cpu and memory controllers) at this mount.
    V2(PathBuf),
    /// v1 hierarchies: `cpuacct` and `memory`.
    V1 {
        /// The hierarchy with the cpuacct controller.
        cpuacct: PathBuf,
        /// The hierarchy with the memory controller.
        memory: PathBuf,
    },
}

impl Cgroups {
    /// Finds the mounts in `/proc/self/mountinfo`.
    pub fn detect() -> Option<Cgroups> {
        Self::from_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").ok()?)
    }

    /// Finds the mounts in a mountinfo text: a v2 mount whose `cgroup.controllers` lists
    /// memory wins, else the v1 cpuacct and memory hierarchies.
    pub fn from_mountinfo(mountinfo: &str) -> Option<Cgroups> {
        let (mut cpuacct, mut memory, mut unified) = (None, None, Vec::new());
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(dash) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (Some(root), Some(point)) = (fields.get(3), fields.get(4)) else {
                continue;
            };
            if *root != "/" {
                continue;
            }
            let fs = fields.get(dash + 1).copied().unwrap_or_default();
            let options = fields.get(dash + 3).copied().unwrap_or_default();
            match fs {
                "cgroup2" => unified.push(PathBuf::from(point)),
                "cgroup" => {
                    let options: Vec<&str> = options.split(',').collect();
                    if options.contains(&"cpuacct") {
                        cpuacct = Some(PathBuf::from(point));
                    }
                    if options.contains(&"memory") {
                        memory = Some(PathBuf::from(point));
                    }
                }
                _ => {}
            }
        }
        for mount in unified {
            let controllers =
                std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "memory") {
                return Some(Cgroups::V2(mount));
            }
        }
        Some(Cgroups::V1 {
            cpuacct: cpuacct?,
            memory: memory?,
        })
    }

    /// Total CPU time used by cgroup `path` (relative to the hierarchies' roots), in ns.
    pub fn cpu_usage(&self, path: &str) -> Option<u64> {
        let path = path.trim_start_matches('/');
        match self {
            Cgroups::V2(root) => {
                let stat = std::fs::read_to_string(root.join(path).join("cpu.stat")).ok()?;
                Some(stat_value(&stat, "usage_usec")? * 1000)
            }
            Cgroups::V1 { cpuacct, .. } => read_number(&cpuacct.join(path).join("cpuacct.usage")),
        }
    }

    /// Memory of cgroup `path`: (usage, working set, rss) in bytes.
    pub fn memory(&self, path: &str) -> Option<Memory> {
        let path = path.trim_start_matches('/');
        let (usage, stat, rss_key, inactive_key) = match self {
            Cgroups::V2(root) => {
                let dir = root.join(path);
                (
                    read_number(&dir.join("memory.current"))?,
                    std::fs::read_to_string(dir.join("memory.stat")).ok()?,
                    "anon",
                    "inactive_file",
                )
            }
            Cgroups::V1 { memory, .. } => {
                let dir = memory.join(path);
                (
                    read_number(&dir.join("memory.usage_in_bytes"))?,
                    std::fs::read_to_string(dir.join("memory.stat")).ok()?,
                    "total_rss",
                    "total_inactive_file",
                )
            }
        };
        let inactive = stat_value(&stat, inactive_key).unwrap_or(0);
        Some(Memory {
            usage,
            working_set: usage.saturating_sub(inactive),
            rss: stat_value(&stat, rss_key).unwrap_or(0),
        })
    }
}

/// Memory figures of one cgroup (or the node), in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Memory {
    /// Everything charged (page cache included).
    pub usage: u64,
    /// Usage minus inactive file pages: what the kubelet evicts on.
    pub working_set: u64,
    /// Anonymous memory.
    pub rss: u64,
}

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed cgroup file (`key value` per line).
fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// The node's CPU time (all CPUs, not idle or iowait) from `/proc/stat`, in ns.
fn node_cpu_usage() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …; USER_HZ is 100 on Linux.
    let busy: u64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, t)| t)
        .sum();
    Some(busy * 10_000_000)
}

/// The node's memory from `/proc/meminfo`, and the available bytes.
fn node_memory() -> Option<(Memory, u64)> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |key: &str| -> Option<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|v| v * 1024)
    };
    let total = kib("MemTotal")?;
    let usage = total.saturating_sub(kib("MemFree")?);
    let inactive = kib("Inactive(file)").unwrap_or(0);
    Some((
        Memory {
            usage,
            working_set: usage.saturating_sub(inactive),
            rss: kib("AnonPages").unwrap_or(0),
        },
        kib("MemAvailable").unwrap_or(0),
    ))
}

/// One CPU reading.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    usage: u64,
}

/// Builds Summary API answers; keeps the previous CPU sample of every cgroup.
pub struct Collector {
    cri: Cri,
    node_name: String,
    cgroups: Option<Cgroups>,
    started: String,
    previous: Mutex<HashMap<String, Sample>>,
    /// Container (and sandbox) id → cgroup path; a container's never changes.
    paths: Mutex<HashMap<String, String>>,
}

/// What one summary reads: the node and every cgroup, keyed `node` or by cgroup path.
type Readings = HashMap<String, u64>;

/// One pod as the summary reports it.
struct PodEntry {
    name: String,
    namespace: String,
    uid: String,
    start: String,
    cgroup: Option<String>,
    containers: Vec<(String, String, Option<String>)>,
}

impl Collector {
    /// A collector for `node_name`'s pods through `cri`.
    pub fn new(cri: Cri, node_name: &str) -> Collector {
        Collector {
            cri,
            node_name: node_name.to_owned(),
            cgroups: Cgroups::detect(),
            started: crate::node::now_time(),
            previous: Mutex::new(HashMap::new()),
            paths: Mutex::new(HashMap::new()),
        }
    }

    /// The Summary API document (`/stats/summary`).
    pub async fn summary(&self) -> anyhow::Result<Value> {
        let pods = self.pods().await?;
        let cgroups: Vec<String> = pods
            .iter()
            .flat_map(|p| {
                p.cgroup
                    .iter()
                    .chain(p.containers.iter().filter_map(|(_, _, c)| c.as_ref()))
            })
            .cloned()
            .collect();
        let read = |cgroups: &[String]| -> Readings {
            let mut readings = Readings::new();
            if let Some(usage) = node_cpu_usage() {
                readings.insert("node".into(), usage);
            }
            for path in cgroups {
                if let Some(usage) = self.cgroups.as_ref().and_then(|c| c.cpu_usage(path)) {
                    readings.insert(path.clone(), usage);
                }
            }
            readings
        };
        let now = Instant::now();
        let usable = |previous: &HashMap<String, Sample>, key: &str| {
            previous.get(key).is_some_and(|s| {
                let age = now.duration_since(s.at);
                (SAMPLE_MIN_GAP..SAMPLE_MAX_AGE).contains(&age)
            })
        };
        let need_first = {
            let previous = self.previous.lock().expect("sample lock");
            !usable(&previous, "node") || cgroups.iter().any(|c| !usable(&previous, c))
        };
        if need_first {
            self.remember(&read(&cgroups), Instant::now());
            tokio::time::sleep(SAMPLE_GAP).await;
        }
        let at = Instant::now();
        let readings = read(&cgroups);
        let rates = self.remember(&readings, at);
        let time = crate::node::now_time();
        let cpu = |key: &str| -> Value {
            let mut cpu = json!({"time": time});
            if let Some(usage) = readings.get(key) {
                cpu["usageCoreNanoSeconds"] = json!(usage);
            }
            if let Some(rate) = rates.get(key) {
                cpu["usageNanoCores"] = json!(rate);
            }
            cpu
        };
        let memory = |path: &str| -> Value {
            match self.cgroups.as_ref().and_then(|c| c.memory(path)) {
                Some(m) => json!({
                    "time": time, "usageBytes": m.usage,
                    "workingSetBytes": m.working_set, "rssBytes": m.rss,
                }),
                None => json!({"time": time}),
            }
        };
        let mut node_memory_json = json!({"time": time});
        if let Some((m, available)) = node_memory() {
            node_memory_json = json!({
                "time": time, "availableBytes": available, "usageBytes": m.usage,
                "workingSetBytes": m.working_set, "rssBytes": m.rss,
            });
        }
        let pods: Vec<Value> = pods
            .iter()
            .map(|pod| {
                let containers: Vec<Value> = pod
                    .containers
                    .iter()
                    .map(|(name, start, cgroup)| {
                        let mut c = json!({"name": name, "startTime": start});
                        if let Some(cgroup) = cgroup {
                            c["cpu"] = cpu(cgroup);
                            c["memory"] = memory(cgroup);
                        }
                        c
                    })
                    .collect();
                let mut entry = json!({
                    "podRef": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                    "startTime": pod.start,
                    "containers": containers,
                });
                if let Some(cgroup) = &pod.cgroup {
                    entry["cpu"] = cpu(cgroup);
                    entry["memory"] = memory(cgroup);
                }
                entry
            })
            .collect();
        Ok(json!({
            "node": {
                "nodeName": self.node_name,
                "startTime": self.started,
                "cpu": cpu("node"),
                "memory": node_memory_json,
            },
            "pods": pods,
        }))
    }

    /// Stores `readings` as the previous samples; returns the rates (ns of CPU per second,
    /// i.e. nanocores) against the samples they replace.
    fn remember(&self, readings: &Readings, at: Instant) -> HashMap<String, u64> {
        let mut previous = self.previous.lock().expect("sample lock");
        let mut rates = HashMap::new();
        for (key, &usage) in readings {
            if let Some(before) = previous.get(key) {
                let elapsed = at.duration_since(before.at).as_secs_f64();
                if elapsed > 0.0 && usage >= before.usage {
                    rates.insert(
                        key.clone(),
                        ((usage - before.usage) as f64 / elapsed) as u64,
                    );
                }
            }
            previous.insert(key.clone(), Sample { at, usage });
        }
        // Cgroups that are gone.
        previous.retain(|key, _| readings.contains_key(key));
        rates
    }

    /// The running pods this kubelet made, with their containers and cgroups.
    async fn pods(&self) -> anyhow::Result<Vec<PodEntry>> {
        let managed: HashMap<String, String> =
            [(MANAGED_BY.to_owned(), "skiff-kubelet".to_owned())].into();
        let sandboxes = self
            .cri
            .list_pod_sandbox(Some(v1::PodSandboxFilter {
                label_selector: managed.clone(),
                state: Some(v1::PodSandboxStateValue {
                    state: v1::PodSandboxState::SandboxReady.into(),
                }),
                ..Default::default()
            }))
            .await?;
        let containers = self
            .cri
            .list_containers(Some(v1::ContainerFilter {
                label_selector: managed,
                state: Some(v1::ContainerStateValue {
                    state: v1::ContainerState::ContainerRunning.into(),
                }),
                ..Default::default()
            }))
            .await?;
        let mut pods = Vec::new();
        for sandbox in &sandboxes {
            let label = |key: &str| sandbox.labels.get(key).cloned().unwrap_or_default();
            // The pod's cgroup: the parent of the sandbox's own.
            let cgroup = self.cgroup_of(&sandbox.id, true).await.and_then(|path| {
                Path::new(&path)
                    .parent()
                    .map(|p| p.to_string_lossy().into_owned())
            });
            let mut entry = PodEntry {
                name: label(POD_NAME),
                namespace: label(POD_NAMESPACE),
                uid: label(POD_UID),
                start: time_of(sandbox.created_at),
                cgroup,
                containers: Vec::new(),
            };
            for container in containers.iter().filter(|c| c.pod_sandbox_id == sandbox.id) {
                let name = container
                    .labels
                    .get(CONTAINER_NAME)
                    .cloned()
                    .unwrap_or_default();
                let cgroup = self.cgroup_of(&container.id, false).await;
                entry
                    .containers
                    .push((name, time_of(container.created_at), cgroup));
            }
            pods.push(entry);
        }
        // Forget the paths of containers that are gone.
        let live: std::collections::HashSet<&str> = sandboxes
            .iter()
            .map(|s| s.id.as_str())
            .chain(containers.iter().map(|c| c.id.as_str()))
            .collect();
        self.paths
            .lock()
            .expect("path lock")
            .retain(|id, _| live.contains(id.as_str()));
        Ok(pods)
    }

    /// The cgroup path of container (or sandbox) `id` from its runtime spec.
    async fn cgroup_of(&self, id: &str, sandbox: bool) -> Option<String> {
        if let Some(path) = self.paths.lock().expect("path lock").get(id) {
            return Some(path.clone());
        }
        let info = if sandbox {
            self.cri.pod_sandbox_status(id, true).await.ok()?.info
        } else {
            self.cri.container_status(id, true).await.ok()?.info
        };
        let info: Value = serde_json::from_str(info.get("info")?).ok()?;
        let path = info["runtimeSpec"]["linux"]["cgroupsPath"]
            .as_str()?
            .to_owned();
        // Only cgroupfs paths are filesystem paths (systemd's are `slice:prefix:name`).
        if !path.starts_with('/') {
            return None;
        }
        self.paths
            .lock()
            .expect("path lock")
            .insert(id.to_owned(), path.clone());
        Some(path)
    }
}

/// A CRI timestamp (ns since the epoch) as an API time.
fn time_of(nanos: i64) -> String {
    jiff::Timestamp::from_second(nanos.max(0) / 1_000_000_000)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_v1_hierarchies() {
        let mountinfo = "\
30 1 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw
31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
32 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
33 30 0:30 / /nonexistent-unified rw - cgroup2 cgroup2 rw";
        assert_eq!(
            Cgroups::from_mountinfo(mountinfo),
            Some(Cgroups::V1 {
                cpuacct: "/sys/fs/cgroup/cpu,cpuacct".into(),
                memory: "/sys/fs/cgroup/memory".into(),
            })
        );
        assert_eq!(Cgroups::from_mountinfo("garbage"), None);
    }

    #[test]
    fn reads_v2_files() {
        let dir = tempfile::tempdir().unwrap();
        let pod = dir.path().join("kubepods/podU");
        std::fs::create_dir_all(&pod).unwrap();
        std::fs::write(
            pod.join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        )
        .unwrap();
        std::fs::write(pod.join("memory.current"), "10000\n").unwrap();
        std::fs::write(
            pod.join("memory.stat"),
            "anon 6000\nfile 4000\ninactive_anon 0\ninactive_file 3000\n",
        )
        .unwrap();
        let cgroups = Cgroups::V2(dir.path().to_owned());
        assert_eq!(cgroups.cpu_usage("/kubepods/podU"), Some(1_500_000));
        assert_eq!(
            cgroups.memory("/kubepods/podU"),
            Some(Memory {
                usage: 10000,
                working_set: 7000,
                rss: 6000
            })
        );
        assert_eq!(cgroups.cpu_usage("/kubepods/other"), None);
    }

    #[test]
    fn node_usage_is_read() {
        assert!(node_cpu_usage().unwrap() > 0);
        let (memory, available) = node_memory().unwrap();
        assert!(memory.usage > 0 && memory.working_set <= memory.usage && available > 0);
    }
}
