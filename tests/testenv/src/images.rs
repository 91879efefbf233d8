//! Container images built locally from Debian packages (no public registry is reachable from
//! tests): a pause image, `busybox:latest`, an `alpine:latest` stand-in (busybox, labelled as a
//! stand-in) and `nginx:latest` holding Debian's real nginx. Each is one uncompressed layer
//! packed as a docker-archive, which `ctr images import` accepts and `skopeo` pushes to a
//! registry ([`crate::Registry`]).
//!
//! The archives are cached in a directory the caller chooses (inside the target directory);
//! a file name carries the format version and a hash of the versions of the Debian packages the
//! image is made from, so an upgraded package or a changed builder means a rebuild.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pause image's name; containerd's `sandbox_image` must match it exactly.
pub const PAUSE: &str = "registry.k8s.io/pause:3.10";
/// The busybox image's name.
pub const BUSYBOX: &str = "docker.io/library/busybox:latest";
/// The alpine stand-in's name (busybox inside; its config's labels say so).
pub const ALPINE: &str = "docker.io/library/alpine:latest";
/// The nginx image's name: Debian's nginx, serving "Welcome to nginx!" on port 80 when run
/// without a command override.
pub const NGINX: &str = "docker.io/library/nginx:latest";

/// The label on the alpine stand-in's config that says what it really is.
pub const STAND_IN_LABEL: &str = "dev.skiff.stand-in";

/// One of the images built here, to ask for by value (e.g. which images a
/// [`crate::ContainerRuntime`] imports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    /// [`PAUSE`], the sandbox image.
    Pause,
    /// [`BUSYBOX`].
    Busybox,
    /// [`ALPINE`], the busybox stand-in.
    Alpine,
    /// [`NGINX`].
    Nginx,
}

impl Image {
    /// The image's full name.
    pub fn name(self) -> &'static str {
        match self {
            Image::Pause => PAUSE,
            Image::Busybox => BUSYBOX,
            Image::Alpine => ALPINE,
            Image::Nginx => NGINX,
        }
    }

    /// Builds (or reuses) the image's archive under `cache_dir`.
    pub fn archive(self, cache_dir: &Path) -> io::Result<PathBuf> {
        match self {
            Image::Pause => pause_archive(cache_dir),
            Image::Busybox => busybox_archive(cache_dir),
            Image::Alpine => alpine_archive(cache_dir),
            Image::Nginx => nginx_archive(cache_dir),
        }
    }
}

/// Bump when the archives' content changes, so stale caches are not reused.
const FORMAT: u32 = 2;

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

const BUSYBOX_BIN: &str = "/bin/busybox";
const NGINX_BIN: &str = "/usr/sbin/nginx";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Builds (or reuses) the pause image's archive under `cache_dir`.
pub fn pause_archive(cache_dir: &Path) -> io::Result<PathBuf> {
    cached(
        cache_dir,
        "pause",
        &["gcc", "libc6-dev"],
        &[],
        |work, rootfs| {
            let source = work.join("pause.c");
            std::fs::write(&source, PAUSE_C)?;
            run(Command::new("gcc")
                .args(["-static", "-O2", "-o"])
                .arg(rootfs.join("pause"))
                .arg(&source))?;
            Ok((PAUSE, ImageConfig::entrypoint(&["/pause"])))
        },
    )
}

/// Builds (or reuses) the busybox image's archive under `cache_dir`: Debian's static
/// `/bin/busybox` plus a symlink per applet at the path busybox itself lists.
pub fn busybox_archive(cache_dir: &Path) -> io::Result<PathBuf> {
    cached(cache_dir, "busybox", &[], &[BUSYBOX_BIN], |_, rootfs| {
        busybox_rootfs(rootfs)?;
        Ok((BUSYBOX, ImageConfig::cmd(&["sh"])))
    })
}

/// Builds (or reuses) the `alpine:latest` stand-in under `cache_dir`: the busybox image with
/// an `/etc/os-release` and config labels that say it is not Alpine Linux.
pub fn alpine_archive(cache_dir: &Path) -> io::Result<PathBuf> {
    cached(cache_dir, "alpine", &[], &[BUSYBOX_BIN], |_, rootfs| {
        busybox_rootfs(rootfs)?;
        users(rootfs)?;
        std::fs::write(
            rootfs.join("etc/os-release"),
            "NAME=\"skiff alpine stand-in\"\nID=skiff-alpine-stand-in\n\
             PRETTY_NAME=\"busybox-static from Debian, standing in for alpine:latest\"\n",
        )?;
        let mut config = ImageConfig::cmd(&["/bin/sh"]);
        config.labels = vec![
            (
                STAND_IN_LABEL.into(),
                "alpine:latest stand-in: Debian's busybox-static, not Alpine Linux (no apk)".into(),
            ),
            (
                "org.opencontainers.image.description".into(),
                "A stand-in for alpine:latest built by skiff-testenv from busybox-static".into(),
            ),
        ];
        Ok((ALPINE, config))
    })
}

/// Builds (or reuses) `nginx:latest` under `cache_dir`: Debian's nginx binary with the shared
/// libraries `ldd` lists (at the same paths, the dynamic loader included), `mime.types` and
/// Debian's "Welcome to nginx!" page, a default site on port 80, the users nginx needs, and
/// busybox for a shell. Its command is `nginx -g 'daemon off;'`, logs go to stdout/stderr.
pub fn nginx_archive(cache_dir: &Path) -> io::Result<PathBuf> {
    let mut sources = vec![
        NGINX_BIN.to_owned(),
        "/etc/nginx/mime.types".to_owned(),
        "/usr/share/nginx/html/index.html".to_owned(),
        BUSYBOX_BIN.to_owned(),
    ];
    sources.extend(shared_libraries(Path::new(NGINX_BIN))?);
    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    cached(cache_dir, "nginx", &[], &sources, |_, rootfs| {
        busybox_rootfs(rootfs)?;
        users(rootfs)?;
        for source in &sources {
            if *source != BUSYBOX_BIN {
                copy_host_file(rootfs, source)?;
            }
        }
        for dir in [
            "etc/nginx/conf.d",
            "var/log/nginx",
            "var/lib/nginx",
            "var/cache/nginx",
            "run",
        ] {
            std::fs::create_dir_all(rootfs.join(dir))?;
        }
        std::os::unix::fs::symlink("/dev/stdout", rootfs.join("var/log/nginx/access.log"))?;
        std::os::unix::fs::symlink("/dev/stderr", rootfs.join("var/log/nginx/error.log"))?;
        std::fs::write(rootfs.join("etc/nginx/nginx.conf"), NGINX_CONF)?;
        std::fs::write(rootfs.join("etc/nginx/conf.d/default.conf"), NGINX_SITE)?;
        let index = std::fs::read_to_string(rootfs.join("usr/share/nginx/html/index.html"))?;
        if !index.contains("Welcome to nginx!") {
            return Err(io::Error::other(
                "Debian's /usr/share/nginx/html/index.html lacks \"Welcome to nginx!\"",
            ));
        }
        let mut config = ImageConfig::cmd(&["nginx", "-g", "daemon off;"]);
        config.exposed_ports = vec!["80/tcp".into()];
        config.stop_signal = Some("SIGQUIT".into());
        Ok((NGINX, config))
    })
}

const NGINX_CONF: &str = "user www-data;
worker_processes auto;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log notice;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /var/log/nginx/access.log;
    sendfile on;
    keepalive_timeout 65;
    include /etc/nginx/conf.d/*.conf;
}
";

const NGINX_SITE: &str = "server {
    listen 80 default_server;
    server_name _;
    location / {
        root /usr/share/nginx/html;
        index index.html;
    }
}
";

/// `busybox` and its applet links, and the usual top-level directories.
fn busybox_rootfs(rootfs: &Path) -> io::Result<()> {
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "var/www",
    ] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    std::fs::copy(BUSYBOX_BIN, rootfs.join("bin/busybox"))?;
    let list = Command::new(BUSYBOX_BIN).arg("--list-full").output()?;
    if !list.status.success() {
        return Err(io::Error::other(
            "`busybox --list-full` failed; `cargo xtask setup` installs busybox-static",
        ));
    }
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = rootfs.join(applet);
        if applet.is_empty() || link.symlink_metadata().is_ok() {
            continue;
        }
        std::os::unix::fs::symlink("/bin/busybox", link)?;
    }
    Ok(())
}

/// `/etc/passwd`, `/etc/group` (root, www-data, nobody) and a files-only `nsswitch.conf`.
fn users(rootfs: &Path) -> io::Result<()> {
    let etc = rootfs.join("etc");
    std::fs::create_dir_all(&etc)?;
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         www-data:x:33:33:www-data:/var/www:/sbin/nologin\n\
         nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
    )?;
    std::fs::write(
        etc.join("group"),
        "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\nnobody:x:65534:\n",
    )?;
    std::fs::write(
        etc.join("nsswitch.conf"),
        "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
    )
}

/// The shared libraries (and dynamic loader) `ldd` resolves for `binary`, as absolute paths.
fn shared_libraries(binary: &Path) -> io::Result<Vec<String>> {
    let output = Command::new("ldd").arg(binary).output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "ldd {} failed ({}); `cargo xtask setup` installs nginx-light",
            binary.display(),
            output.status
        )));
    }
    // Lines look like `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`,
    // `/lib64/ld-linux-x86-64.so.2 (0x...)` or `linux-vdso.so.1 (0x...)` (no file).
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let path = line.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| path.to_owned())
        })
        .collect())
}

/// Copies the host's `path` (following symlinks, keeping its mode) to the same path in
/// `rootfs`.
fn copy_host_file(rootfs: &Path, path: &str) -> io::Result<()> {
    let target = rootfs.join(path.trim_start_matches('/'));
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(path, &target)
        .map(drop)
        .map_err(|err| io::Error::new(err.kind(), format!("copy {path}: {err}")))
}

/// The archive `name` in `cache_dir`, built by `build` (which fills the rootfs it is given
/// and returns the image's name and config) unless a build with the same cache key exists.
/// The key: [`FORMAT`] and the versions of `packages` and of the packages owning `sources`.
fn cached(
    cache_dir: &Path,
    name: &str,
    packages: &[&str],
    sources: &[&str],
    build: impl FnOnce(&Path, &Path) -> io::Result<(&'static str, ImageConfig)>,
) -> io::Result<PathBuf> {
    std::fs::create_dir_all(cache_dir)?;
    let key = cache_key(packages, sources)?;
    let out = cache_dir.join(format!("{name}-v{FORMAT}-{:016x}.tar", fnv1a(&key)));
    let _build = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if out.exists() {
        return Ok(out);
    }
    let work = scratch(cache_dir, name)?;
    let rootfs = work.join("rootfs");
    std::fs::create_dir_all(&rootfs)?;
    let result = build(&work, &rootfs).and_then(|(image, config)| {
        pack(&work, &rootfs, image, &config, &out)?;
        std::fs::write(out.with_extension("key"), &key)
    });
    let _ = std::fs::remove_dir_all(&work);
    result.map(|()| out)
}

/// `package=version` lines for `packages` and the packages owning `sources` (a file no package
/// owns contributes its size and mtime instead).
fn cache_key(packages: &[&str], sources: &[&str]) -> io::Result<String> {
    let mut names: Vec<String> = packages.iter().map(|p| p.to_string()).collect();
    let mut key = String::new();
    if !sources.is_empty() {
        // `dpkg -S` prints `pkg[:arch][, pkg]: path` per owned path (and fails for any it does
        // not know). With merged /usr a file may be registered under /usr/lib while ldd names
        // /lib, or the reverse: ask for both spellings.
        let spellings = |source: &str| -> Vec<String> {
            let mut all = vec![source.to_owned()];
            match source.strip_prefix("/usr") {
                Some(short) => all.push(short.to_owned()),
                None => all.push(format!("/usr{source}")),
            }
            all
        };
        let queries: Vec<String> = sources.iter().flat_map(|s| spellings(s)).collect();
        let owners = Command::new("dpkg").arg("-S").args(&queries).output()?;
        let text = String::from_utf8_lossy(&owners.stdout);
        for source in sources {
            let names_of_source = spellings(source);
            let line = text.lines().find(|l| {
                l.rsplit_once(": ")
                    .is_some_and(|(_, p)| names_of_source.iter().any(|n| n == p))
            });
            match line {
                Some(line) => {
                    let (pkgs, _) = line.rsplit_once(": ").unwrap_or_default();
                    names.extend(pkgs.split(", ").map(str::to_owned));
                }
                None => {
                    let meta = std::fs::metadata(source)
                        .map_err(|err| io::Error::new(err.kind(), format!("{source}: {err}")))?;
                    use std::os::unix::fs::MetadataExt;
                    key.push_str(&format!("{source} {} {}\n", meta.len(), meta.mtime()));
                }
            }
        }
    }
    names.sort();
    names.dedup();
    if !names.is_empty() {
        let versions = Command::new("dpkg-query")
            .args(["-W", "-f=${Package}:${Architecture}=${Version}\n"])
            .args(&names)
            .output()?;
        if !versions.status.success() {
            return Err(io::Error::other(format!(
                "dpkg-query {}: {}; `cargo xtask setup` installs them",
                names.join(" "),
                String::from_utf8_lossy(&versions.stderr).trim()
            )));
        }
        key.push_str(&String::from_utf8_lossy(&versions.stdout));
    }
    Ok(key)
}

/// 64-bit FNV-1a: a stable hash for cache file names.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
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

/// The parts of an image config containerd reads.
#[derive(Default)]
struct ImageConfig {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    labels: Vec<(String, String)>,
    exposed_ports: Vec<String>,
    stop_signal: Option<String>,
}

impl ImageConfig {
    fn entrypoint(entrypoint: &[&str]) -> ImageConfig {
        ImageConfig {
            entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
            env: vec![PATH_ENV.into()],
            ..Default::default()
        }
    }

    fn cmd(cmd: &[&str]) -> ImageConfig {
        ImageConfig {
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            env: vec![PATH_ENV.into()],
            ..Default::default()
        }
    }

    /// The config JSON with `diff_id` (`sha256:...`) as its one layer.
    fn to_json(&self, diff_id: &str) -> String {
        let list = |items: &[String]| {
            let quoted: Vec<String> = items.iter().map(|s| json_string(s)).collect();
            format!("[{}]", quoted.join(","))
        };
        let mut fields = Vec::new();
        if !self.entrypoint.is_empty() {
            fields.push(format!(r#""Entrypoint":{}"#, list(&self.entrypoint)));
        }
        if !self.cmd.is_empty() {
            fields.push(format!(r#""Cmd":{}"#, list(&self.cmd)));
        }
        fields.push(format!(r#""Env":{}"#, list(&self.env)));
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
                .collect();
            fields.push(format!(r#""Labels":{{{}}}"#, labels.join(",")));
        }
        if !self.exposed_ports.is_empty() {
            let ports: Vec<String> = self
                .exposed_ports
                .iter()
                .map(|p| format!("{}:{{}}", json_string(p)))
                .collect();
            fields.push(format!(r#""ExposedPorts":{{{}}}"#, ports.join(",")));
        }
        if let Some(signal) = &self.stop_signal {
            fields.push(format!(r#""StopSignal":{}"#, json_string(signal)));
        }
        format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{{}}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#,
            fields.join(",")
        )
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Packs `rootfs` as one uncompressed, reproducible layer (uid 0, mtime 0, sorted) and wraps
/// it in a docker-archive named `name`, written atomically to `out`.
fn pack(
    work: &Path,
    rootfs: &Path,
    name: &str,
    config: &ImageConfig,
    out: &Path,
) -> io::Result<()> {
    let archive = work.join("archive");
    std::fs::create_dir_all(&archive)?;
    let layer = work.join("layer.tar");
    run(reproducible_tar()
        .arg("-cf")
        .arg(&layer)
        .arg("-C")
        .arg(rootfs)
        .arg("."))?;
    let layer_sha = sha256(&layer)?;
    std::fs::create_dir_all(archive.join(&layer_sha))?;
    std::fs::rename(&layer, archive.join(&layer_sha).join("layer.tar"))?;
    let config_path = work.join("config.json");
    std::fs::write(&config_path, config.to_json(&format!("sha256:{layer_sha}")))?;
    let config_sha = sha256(&config_path)?;
    std::fs::rename(&config_path, archive.join(format!("{config_sha}.json")))?;
    std::fs::write(
        archive.join("manifest.json"),
        format!(
            r#"[{{"Config":"{config_sha}.json","RepoTags":["{name}"],"Layers":["{layer_sha}/layer.tar"]}}]"#
        ),
    )?;
    let tmp = work.join("image.tar");
    run(reproducible_tar()
        .arg("-cf")
        .arg(&tmp)
        .arg("-C")
        .arg(&archive)
        .arg("."))?;
    std::fs::rename(&tmp, out)
}

fn reproducible_tar() -> Command {
    let mut command = Command::new("tar");
    command.args([
        "--sort=name",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "--mtime=@0",
    ]);
    command
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
