//! `cargo xtask bench AREA`: runs one benchmark, which measures its anchor in the same run,
//! prints a summary and writes `target/bench/AREA.json` in the shared format:
//! `{"area", "metrics": [{"name", "ours", "anchor", "anchor_name", "unit", "better"}]}`.

use anyhow::bail;

use crate::util::{cargo, run_command, target_dir};

pub fn run(area: &str) -> anyhow::Result<()> {
    crate::setup::run()?;
    let out = target_dir().join("bench").join(format!("{area}.json"));
    match area {
        "store" => {
            // The anchor: a real etcd on this machine's disk, like the embedded store's data.
            let etcd = skiff_testenv::Etcd::start(&target_dir().join("xtask/etcd-bench"))?;
            run_command(
                cargo()
                    .args(["bench", "-p", "skiff-store", "--bench", "store"])
                    .env("SKIFF_TEST_ETCD", etcd.endpoint())
                    .env("SKIFF_BENCH_OUT", &out),
            )
        }
        other => bail!("unknown benchmark area {other:?}; known: store"),
    }
}
