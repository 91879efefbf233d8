//! `cargo xtask`: build, test, benchmark and run skiff. One file per task; see `--help`.

mod bench;
mod bootstrap;
mod fresh;
mod namespace;
mod setup;
mod test;
mod up;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "skiff's build, test and run tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the system packages and tools the build and tests need (idempotent).
    Setup,
    /// Run the tests of the named areas (all when none is named), starting the services they need.
    Test {
        /// Areas: see `cargo xtask test --list`.
        areas: Vec<String>,
        /// List the areas and exit.
        #[arg(long)]
        list: bool,
    },
    /// Run a benchmark against its anchor; writes target/bench/AREA.json.
    Bench {
        /// The benchmark area, e.g. `store`.
        area: String,
    },
    /// Start a one-node skiff on this machine.
    Up,
    /// Run the test suite (or the named areas) on a fresh Debian 12 root made with debootstrap
    /// (root only; slow: run it before resolving an issue that adds a package or a service).
    Fresh {
        /// Areas to test; all when none is named.
        areas: Vec<String>,
        /// Make the debootstrapped base system again instead of reusing target/fresh's.
        #[arg(long)]
        rebuild_base: bool,
        /// Keep the root after a passing run (a failing one is always kept).
        #[arg(long)]
        keep: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::run(),
        Task::Test { areas, list } => test::run(&areas, list),
        Task::Bench { area } => bench::run(&area),
        Task::Up => up::run(),
        Task::Fresh {
            areas,
            rebuild_base,
            keep,
        } => fresh::run(&areas, rebuild_base, keep),
    }
}
