//! `cargo xtask bench AREA`: runs one benchmark, which measures its anchor in the same run,
//! prints a summary and writes `target/bench/AREA.json` in the shared format:
//! `{"area", "metrics": [{"name", "ours", "anchor", "anchor_name", "unit", "better"}]}`.

use anyhow::bail;

use crate::util::{cargo, run_command, target_dir};

pub fn run(area: &str) -> anyhow::Result<()> {
    crate::setup::run()?;
    let out = target_dir().join("bench").join(format!("{area}.json"));
    let package = match area {
        "store" => "skiff-store",
        "apiserver" => "skiff-apiserver",
        // Root only: network namespaces, a cgroup and BPF programs of its own.
        "dataplane" | "podnet" => "skiff-netlab",
        // Root only: containerd and `skiff agent` (its kubelet) as processes.
        "pods" => "skiff",
        other => {
            bail!(
                "unknown benchmark area {other:?}; known: store, apiserver, dataplane, podnet, pods"
            )
        }
    };
    let mut command = cargo();
    command
        .args(["bench", "-p", package, "--bench", area])
        .env("SKIFF_BENCH_OUT", &out);
    if area == "podnet" {
        // The pod network benchmark runs the real plugin binary, as containerd would.
        run_command(cargo().args([
            "build",
            "--release",
            "-p",
            "skiff-cni",
            "--bin",
            "skiff-cni",
        ]))?;
        command.env(
            "SKIFF_CNI_BIN",
            target_dir().join("release").join("skiff-cni"),
        );
    }
    // The store and API anchors need a real etcd on this machine's disk, like the embedded
    // store's data.
    let _etcd = if matches!(area, "dataplane" | "podnet" | "pods") {
        None
    } else {
        let etcd =
            skiff_testenv::Etcd::start(&target_dir().join(format!("xtask/etcd-bench-{area}")))?;
        command.env("SKIFF_TEST_ETCD", etcd.endpoint());
        Some(etcd)
    };
    run_command(&mut command)
}
