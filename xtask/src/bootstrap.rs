//! The bootstrap check (test area `bootstrap`, first in a full run): xtask must build with
//! nothing but the Rust toolchain, because `cargo xtask` compiles it before `setup` can install
//! anything. It builds xtask from a clean target directory in a mount namespace where every
//! program, header, library and pkg-config file of the packages setup installs is hidden
//! (protoc, clang-19, pkg-config, bpftool, etcd, ...), and where the environment names none of
//! them. A build script that needs one of them fails the check.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::namespace::{self, Mount};
use crate::setup;
use crate::util::{cargo, root, run_command, target_dir};

/// Programs hidden wherever they are on PATH, whichever package brought them.
const TOOLS: &[&str] = &[
    "protoc",
    "clang",
    "clang-19",
    "llc",
    "llc-19",
    "llvm-strip",
    "llvm-strip-19",
    "pkg-config",
    "pkgconf",
    "x86_64-linux-gnu-pkg-config",
    "bpftool",
    "etcd",
    "etcdctl",
];

/// Directories hidden whole (the LLVM installation behind clang-19).
const DIRS: &[&str] = &["/usr/lib/llvm-19"];

/// Environment variables through which a build script could find a hidden tool anyway.
const ENV: &[&str] = &[
    "PROTOC",
    "PROTOC_INCLUDE",
    "CLANG",
    "LIBCLANG_PATH",
    "LLVM_CONFIG_PATH",
    "PKG_CONFIG",
    "PKG_CONFIG_PATH",
    "PKG_CONFIG_LIBDIR",
    "PKG_CONFIG_SYSROOT_DIR",
    "BPFTOOL",
    "BPF_CLANG",
];

/// What a package provides that a build could use: programs, headers, libraries to link,
/// pkg-config files.
fn provides_build_input(path: &str) -> bool {
    let in_bin = Path::new(path)
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|dir| dir == "bin" || dir == "sbin");
    in_bin
        || path.starts_with("/usr/include/")
        || path.ends_with(".pc")
        || path.ends_with(".so")
        || path.ends_with(".a")
}

/// Every file to hide: what the setup packages (less the toolchain's own) provide, and the
/// named tools on PATH.
fn masked_files() -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for package in setup::packages() {
        if setup::TOOLCHAIN_PACKAGES.contains(package) || !setup::installed(package) {
            continue;
        }
        let out = Command::new("dpkg")
            .args(["-L", package])
            .output()
            .context("cannot run dpkg -L")?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if provides_build_input(line) {
                files.push(PathBuf::from(line));
            }
        }
    }
    // A mount over a symlink lands on its target, which may belong to a package a fresh
    // machine has (libz.so -> libz.so.1): only the packages' own regular files are hidden.
    files.retain(|f| std::fs::symlink_metadata(f).is_ok_and(|m| m.is_file()));
    // The named tools wherever PATH finds them, through their links (pkg-config -> pkgconf).
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for tool in TOOLS {
            if let Ok(real) = std::fs::canonicalize(dir.join(tool)) {
                files.push(real);
            }
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

pub fn run() -> anyhow::Result<()> {
    if !setup::is_root() {
        eprintln!("bootstrap: skipped (hiding the setup packages takes a mount namespace: root)");
        return Ok(());
    }
    let files = masked_files()?;
    let mut mounts: Vec<Mount> = files.iter().cloned().map(Mount::Mask).collect();
    mounts.extend(
        DIRS.iter()
            .filter(|d| Path::new(d).is_dir())
            .map(|d| Mount::MaskDir(d.into())),
    );
    let target = target_dir().join("bootstrap");
    let _ = std::fs::remove_dir_all(&target);
    eprintln!(
        "bootstrap: building xtask from a clean {} with {} files of the setup packages hidden",
        target.display(),
        files.len()
    );
    let mut command = cargo();
    command
        .args(["build", "--quiet", "--package", "xtask", "--target-dir"])
        .arg(&target);
    for var in ENV {
        command.env_remove(var);
    }
    namespace::isolate(&mut command, &mounts, None, &root())?;
    let built = run_command(&mut command);
    let _ = std::fs::remove_dir_all(&target);
    if let Err(err) = built {
        bail!(
            "{err:#}\nxtask no longer builds with only the Rust toolchain: something in its \
             dependency closure (`cargo tree -p xtask -e normal,build`) needs a system package. \
             Keep such crates out of xtask (behind a feature, as skiff-testenv's `containerd`) \
             so that `cargo xtask setup` can install the package first."
        );
    }
    eprintln!("bootstrap: xtask builds with only the Rust toolchain");
    Ok(())
}
