//! `cargo xtask bench AREA`: runs one benchmark, which measures its anchor in the same run,
//! prints a summary and writes `target/bench/AREA.json` in the shared format:
//! `{"area", "metrics": [{"name", "ours", "anchor", "anchor_name", "unit", "better"}]}`.

use anyhow::bail;

use crate::util::{cargo, run_command, target_dir};

pub fn run(area: &str) -> anyhow::Result<()> {
    crate::setup::run()?;
    let out = target_dir().join("bench").join(format!("{area}.json"));
    // The anchors need a real etcd on this machine's disk, like the embedded store's data.
    let etcd = skiff_testenv::Etcd::start(&target_dir().join(format!("xtask/etcd-bench-{area}")))?;
    let package = match area {
        "store" => "skiff-store",
        "apiserver" => "skiff-apiserver",
        other => bail!("unknown benchmark area {other:?}; known: store, apiserver"),
    };
    run_command(
        cargo()
            .args(["bench", "-p", package, "--bench", area])
            .env("SKIFF_TEST_ETCD", etcd.endpoint())
            .env("SKIFF_BENCH_OUT", &out),
    )
}
