//! `cargo xtask test [AREA...]`: runs setup, then the named test areas (all when none is named),
//! starting the services each area needs and stopping them afterwards; prints how long each
//! took and writes it to `target/test-times.json`.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::util::{cargo, run_command, target_dir};

struct Area {
    name: &'static str,
    about: &'static str,
    run: fn() -> anyhow::Result<()>,
    /// Runs before `setup` (it checks what a machine without the setup packages can do).
    before_setup: bool,
}

/// Every test area, in the order a full run takes them.
const AREAS: &[Area] = &[
    Area {
        name: "bootstrap",
        about: "xtask builds from a clean target dir with every setup package's tools, headers and libraries hidden (root)",
        run: crate::bootstrap::run,
        before_setup: true,
    },
    Area {
        name: "lint",
        about: "cargo fmt --check and cargo clippy --all-targets -D warnings",
        run: lint,
        before_setup: false,
    },
    Area {
        name: "unit",
        about: "unit tests of every crate (no services, no privileges)",
        run: unit,
        before_setup: false,
    },
    Area {
        name: "apiserver",
        about: "the Kubernetes API driven by the real kubectl, on the embedded store and real etcd",
        run: apiserver,
        before_setup: false,
    },
    Area {
        name: "ebpf",
        about: "eBPF dataplane (root): golden packets, socket-LB with real connect(), `skiff agent` against the API across SIGKILL, its pod network, and a pod it runs on containerd",
        run: ebpf,
        before_setup: false,
    },
    Area {
        name: "cni",
        about: "CNI plugin (root): the real skiff-cni binary against throwaway namespaces, IPAM across processes, netlink against the kernel",
        run: cni,
        before_setup: false,
    },
    Area {
        name: "node",
        about: "node agent (root): CRI, images from a loopback registry and the kubelet against a real containerd",
        run: node,
        before_setup: false,
    },
    Area {
        name: "store",
        about: "store conformance on the embedded store and real etcd, recovery, SIGKILL crash safety",
        run: store,
        before_setup: false,
    },
];

pub fn run(names: &[String], list: bool) -> anyhow::Result<()> {
    if list {
        for area in AREAS {
            println!("{:<8} {}", area.name, area.about);
        }
        return Ok(());
    }
    let mut selected = Vec::new();
    for name in names {
        match AREAS.iter().find(|a| a.name == name) {
            Some(area) => selected.push(area),
            None => {
                let known: Vec<_> = AREAS.iter().map(|a| a.name).collect();
                bail!("unknown test area {name:?}; known: {}", known.join(", "));
            }
        }
    }
    if selected.is_empty() {
        selected = AREAS.iter().collect();
    }
    let (early, late): (Vec<&Area>, Vec<&Area>) =
        selected.into_iter().partition(|a| a.before_setup);
    let mut times = Times::default();
    for area in early {
        times.run(area)?;
    }
    let started = Instant::now();
    crate::setup::run()?;
    times.record("setup", started.elapsed(), true)?;
    for area in late {
        times.run(area)?;
    }
    eprintln!("== all selected test areas passed");
    for (name, seconds, _) in &times.areas {
        eprintln!("   {name:<9} {seconds:>7.1} s");
    }
    Ok(())
}

/// How long each area took, written to `target/test-times.json` after every area (a failed
/// run keeps what it measured), so that slow areas are visible.
#[derive(Default)]
struct Times {
    areas: Vec<(&'static str, f64, bool)>,
}

impl Times {
    fn run(&mut self, area: &Area) -> anyhow::Result<()> {
        eprintln!("== test area: {} ({})", area.name, area.about);
        let started = Instant::now();
        let result = (area.run)();
        let elapsed = started.elapsed();
        self.record(area.name, elapsed, result.is_ok())?;
        eprintln!(
            "== test area {} {} in {:.1} s",
            area.name,
            if result.is_ok() { "passed" } else { "FAILED" },
            elapsed.as_secs_f64()
        );
        result
    }

    fn record(&mut self, name: &'static str, took: Duration, passed: bool) -> anyhow::Result<()> {
        self.areas.push((name, took.as_secs_f64(), passed));
        let areas: Vec<serde_json::Value> = self
            .areas
            .iter()
            .map(|(name, seconds, passed)| {
                serde_json::json!({"name": name, "seconds": (seconds * 10.0).round() / 10.0, "passed": passed})
            })
            .collect();
        let path = target_dir().join("test-times.json");
        std::fs::create_dir_all(target_dir())?;
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&serde_json::json!({ "areas": areas }))? + "\n",
        )?;
        Ok(())
    }
}

fn lint() -> anyhow::Result<()> {
    run_command(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run_command(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

fn unit() -> anyhow::Result<()> {
    run_command(cargo().args(["test", "--workspace", "--lib", "--bins"]))?;
    // Crates whose integration tests need no services.
    run_command(cargo().args(["test", "-p", "skiff-protobuf", "--tests"]))
}

/// A real etcd for the duration of one test area.
fn etcd(area: &str) -> anyhow::Result<skiff_testenv::Etcd> {
    Ok(skiff_testenv::Etcd::start(
        &target_dir().join(format!("xtask/etcd-{area}")),
    )?)
}

fn apiserver() -> anyhow::Result<()> {
    let etcd = etcd("apiserver")?;
    run_command(
        cargo()
            .args(["test", "-p", "skiff-apiserver", "--test", "*"])
            .env("SKIFF_TEST_ETCD", etcd.endpoint())
            .env("SKIFF_KUBECTL", crate::setup::venv().join("bin/kubectl")),
    )
}

fn store() -> anyhow::Result<()> {
    let etcd = etcd("store")?;
    run_command(
        cargo()
            .args(["test", "-p", "skiff-store", "--test", "*"])
            .env("SKIFF_TEST_ETCD", etcd.endpoint()),
    )
}

fn ebpf() -> anyhow::Result<()> {
    run_command(cargo().args(["test", "-p", "skiff-ebpf", "--tests"]))?;
    run_command(cargo().args(["test", "-p", "skiff-proxy", "--tests"]))?;
    // The agent installs the CNI plugin from beside its own binary.
    run_command(cargo().args(["build", "-p", "skiff-cni"]))?;
    run_command(cargo().args(["test", "-p", "skiff", "--test", "agent"]))?;
    run_command(cargo().args(["test", "-p", "skiff-netlab", "--tests"]))
}

fn cni() -> anyhow::Result<()> {
    run_command(cargo().args(["test", "-p", "skiff-cni"]))?;
    run_command(cargo().args(["test", "-p", "skiff-netlink"]))
}

fn node() -> anyhow::Result<()> {
    // Each test starts its own containerd (testenv), with images built under the target dir.
    run_command(cargo().args(["test", "-p", "skiff-cri", "--tests"]))?;
    // The event tests read `kubectl describe` from the real kubectl.
    run_command(
        cargo()
            .args(["test", "-p", "skiff-kubelet", "--tests"])
            .env("SKIFF_KUBECTL", crate::setup::venv().join("bin/kubectl")),
    )
}
