//! Container images built locally (no registry is reachable from tests): a pause image and a
//! busybox image, each one uncompressed layer packed as a docker-archive that
//! `ctr images import` accepts. The archives are cached in a directory the caller chooses
//! (inside the target directory) and rebuilt only when missing.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pause image's name; containerd's `sandbox_image` must match it exactly.
pub const PAUSE: &str = "registry.k8s.io/pause:3.10";
/// The busybox image's name.
pub const BUSYBOX: &str = "docker.io/library/busybox:latest";

/// Bump when the archives' content changes, so stale caches are not reused.
const FORMAT: u32 = 1;

/// The sandbox's init: sleeps until SIGTERM/SIGINT and reaps the children it inherits
/// (it is PID 1 of the pod's PID namespace when that is shared).
const PAUSE_C: &str = r#"
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(void) {
    struct sigaction term = { .sa_handler = stop };
    struct sigaction chld = { .sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART };
    sigaction(SIGTERM, &term, NULL);
    sigaction(SIGINT, &term, NULL);
    sigaction(SIGCHLD, &chld, NULL);
    for (;;) pause();
}
"#;

/// Builds (or reuses) the pause image's archive under `cache_dir`.
pub fn pause_archive(cache_dir: &Path) -> io::Result<PathBuf> {
    let out = cache_dir.join(format!("pause-v{FORMAT}.tar"));
    let _build = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if out.exists() {
        return Ok(out);
    }
    let work = scratch(cache_dir, "pause")?;
    let source = work.join("pause.c");
    std::fs::write(&source, PAUSE_C)?;
    let rootfs = work.join("rootfs");
    std::fs::create_dir_all(&rootfs)?;
    run(Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(rootfs.join("pause"))
        .arg(&source))?;
    let config = image_config(&["/pause"], &[]);
    pack(&work, &rootfs, PAUSE, &config, &out)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(out)
}

/// Builds (or reuses) the busybox image's archive under `cache_dir`: Debian's static
/// `/bin/busybox` plus a symlink per applet at the path busybox itself lists.
pub fn busybox_archive(cache_dir: &Path) -> io::Result<PathBuf> {
    let out = cache_dir.join(format!("busybox-v{FORMAT}.tar"));
    let _build = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if out.exists() {
        return Ok(out);
    }
    let busybox = Path::new("/bin/busybox");
    let work = scratch(cache_dir, "busybox")?;
    let rootfs = work.join("rootfs");
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "var/www",
    ] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::copy(busybox, rootfs.join("bin/busybox"))?;
    let list = Command::new(busybox).arg("--list-full").output()?;
    if !list.status.success() {
        return Err(io::Error::other(
            "`busybox --list-full` failed; `cargo xtask setup` installs busybox-static",
        ));
    }
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = rootfs.join(applet);
        if applet.is_empty() || link.exists() {
            continue;
        }
        std::os::unix::fs::symlink("/bin/busybox", link)?;
    }
    let config = image_config(&["sh"], &["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]);
    pack(&work, &rootfs, BUSYBOX, &config, &out)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(out)
}

/// Serializes builds within a process (tests run in parallel threads); other processes use
/// other work directories, and the finished archive is renamed into place atomically.
static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A fresh per-process work directory, so parallel builders never share files.
fn scratch(cache_dir: &Path, name: &str) -> io::Result<PathBuf> {
    let work = cache_dir.join(format!("build-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    Ok(work)
}

/// An image config (the parts containerd reads) with `cmd` as entrypoint (pause) or command.
fn image_config(cmd: &[&str], env: &[&str]) -> String {
    let list = |items: &[&str]| {
        let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", quoted.join(","))
    };
    let key = if cmd == ["/pause"] {
        "Entrypoint"
    } else {
        "Cmd"
    };
    format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"{key}":{},"Env":{}}},"rootfs":{{"type":"layers","diff_ids":["sha256:LAYER"]}}}}"#,
        list(cmd),
        list(env)
    )
}

/// Packs `rootfs` as one uncompressed, reproducible layer (uid 0, mtime 0, sorted) and wraps
/// it in a docker-archive named `name`, written atomically to `out`.
fn pack(work: &Path, rootfs: &Path, name: &str, config: &str, out: &Path) -> io::Result<()> {
    let archive = work.join("archive");
    std::fs::create_dir_all(&archive)?;
    let layer = work.join("layer.tar");
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
        ])
        .arg("-cf")
        .arg(&layer)
        .arg("-C")
        .arg(rootfs)
        .arg("."))?;
    let layer_sha = sha256(&layer)?;
    std::fs::create_dir_all(archive.join(&layer_sha))?;
    std::fs::rename(&layer, archive.join(&layer_sha).join("layer.tar"))?;
    let config = config.replace("LAYER", &layer_sha);
    let config_path = work.join("config.json");
    std::fs::write(&config_path, &config)?;
    let config_sha = sha256(&config_path)?;
    std::fs::rename(&config_path, archive.join(format!("{config_sha}.json")))?;
    std::fs::write(
        archive.join("manifest.json"),
        format!(
            r#"[{{"Config":"{config_sha}.json","RepoTags":["{name}"],"Layers":["{layer_sha}/layer.tar"]}}]"#
        ),
    )?;
    let tmp = work.join("image.tar");
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
        ])
        .arg("-cf")
        .arg(&tmp)
        .arg("-C")
        .arg(&archive)
        .arg("."))?;
    std::fs::rename(&tmp, out)
}

fn sha256(path: &Path) -> io::Result<String> {
    let output = Command::new("sha256sum").arg(path).output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!("sha256sum {}", path.display())));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned())
}

pub(crate) fn run(command: &mut Command) -> io::Result<()> {
    let output = command
        .output()
        .map_err(|err| io::Error::new(err.kind(), format!("{command:?}: {err}")))?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}
