//! `cargo xtask up`: installs what is missing, builds skiff and starts a one-node cluster in the
//! foreground until SIGINT/SIGTERM. Today that is the control plane's store and apiserver (it
//! prints `export KUBECONFIG=...` once the API answers); the scheduler, controllers and node
//! agent join it as their issues land.

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::util::{cargo, run_command, target_dir};

pub fn run() -> anyhow::Result<()> {
    crate::setup::run()?;
    run_command(cargo().args(["build", "-p", "skiff"]))?;
    let data = target_dir().join("skiff/up");
    let err = Command::new(target_dir().join("debug/skiff"))
        .arg("up")
        .arg("--data-dir")
        .arg(&data)
        .exec();
    Err(err.into())
}
