//! containerd (Debian's 1.6 with runc) as a private test service: its own config, root, state
//! and socket under a directory the caller chooses, the CNI directories the caller gives.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::bridge::{self, Bridge};
use crate::die_with_parent;
use crate::images::{self, Image, run};

/// What a [`Containerd`] is started with.
pub struct ContainerdConfig {
    /// Everything containerd writes goes here (emptied first): config, root, state, socket, log.
    pub dir: PathBuf,
    /// Where containerd finds CNI plugins (the `loopback` plugin too), e.g. `/usr/lib/cni`.
    pub cni_bin_dir: PathBuf,
    /// Where containerd reads CNI network configs (reloaded live).
    pub cni_conf_dir: PathBuf,
    /// The pod sandbox image (must already be imported before the first RunPodSandbox).
    pub sandbox_image: String,
    /// A plain-HTTP registry (`127.0.0.1:<port>`, e.g. [`crate::Registry::address`]) that
    /// serves docker.io: `nginx:latest` pulls `library/nginx:latest` from it. `None`: docker.io
    /// is the real one (unreachable here).
    pub docker_io_mirror: Option<String>,
}

impl ContainerdConfig {
    /// A config with containerd's files in `dir`, the given CNI directories and the local
    /// pause image ([`images::PAUSE`]).
    pub fn new(dir: &Path, cni_bin_dir: &Path, cni_conf_dir: &Path) -> ContainerdConfig {
        ContainerdConfig {
            dir: dir.to_owned(),
            cni_bin_dir: cni_bin_dir.to_owned(),
            cni_conf_dir: cni_conf_dir.to_owned(),
            sandbox_image: images::PAUSE.to_owned(),
            docker_io_mirror: None,
        }
    }

    /// A config with containerd's files in `dir/containerd` and its pods on a network of
    /// Debian's reference plugins ([`bridge`]): bridge `bridge_name`, addresses from
    /// `subnet`/24, the conflist in `dir/cni`, host-local's leases in `dir/ipam`. The guard
    /// deletes the bridge; drop it after containerd.
    pub fn on_bridge(
        dir: &Path,
        bridge_name: &str,
        subnet: std::net::Ipv4Addr,
    ) -> io::Result<(ContainerdConfig, Bridge)> {
        let guard = Bridge(bridge_name.to_owned());
        let conf_dir = dir.join("cni");
        bridge::write_conflist(&conf_dir, &dir.join("ipam"), bridge_name, subnet)?;
        let config = ContainerdConfig::new(
            &dir.join("containerd"),
            Path::new("/usr/lib/cni"),
            &conf_dir,
        );
        Ok((config, guard))
    }
}

/// A running containerd; on drop its pods are removed, it is stopped by PID, and the shims,
/// mounts, cgroups and files it leaves are cleaned up.
pub struct Containerd {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
    cgroup_parent: String,
}

static STARTED: AtomicU32 = AtomicU32::new(0);

/// Settings verified on this kind of machine (see MACHINE-NOTES): cgroupfs, and
/// `restrict_oom_score_adj` because root lacks CAP_SYS_RESOURCE (runc fails otherwise).
fn config_toml(config: &ContainerdConfig, socket: &Path) -> String {
    let dir = config.dir.display();
    let cri = r#"plugins."io.containerd.grpc.v1.cri""#;
    // Only `config_path` (hosts.toml): adding the deprecated `registry.mirrors` table as well
    // silently disables the whole CRI plugin.
    let registry = match &config.docker_io_mirror {
        Some(_) => format!(
            "\n[{cri}.registry]\n  config_path = \"{}\"\n",
            config.dir.join("certs.d").display()
        ),
        None => String::new(),
    };
    format!(
        r#"version = 2
root = "{dir}/root"
state = "{dir}/state"

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{dir}/opt"

[{cri}]
  sandbox_image = "{sandbox}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  systemd_cgroup = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{bin}"
  conf_dir = "{conf}"
{registry}"#,
        socket = socket.display(),
        sandbox = config.sandbox_image,
        bin = config.cni_bin_dir.display(),
        conf = config.cni_conf_dir.display(),
    )
}

/// `certs.d/docker.io/hosts.toml`: docker.io is served by `mirror` (plain HTTP) only. The
/// registry is both the one host (pull + resolve, no push) and the `server`, so nothing falls
/// back to the real registry-1.docker.io: a missing image fails at once with NotFound instead
/// of waiting on an unreachable host (or, on a machine with internet, silently pulling the
/// real image).
fn write_hosts_toml(certs_d: &Path, mirror: &str) -> io::Result<()> {
    let dir = certs_d.join("docker.io");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("hosts.toml"),
        format!(
            r#"server = "http://{mirror}"

[host."http://{mirror}"]
  capabilities = ["pull", "resolve"]
"#
        ),
    )
}

impl Containerd {
    /// Starts containerd and waits until its CRI service answers `Version`.
    ///
    /// containerd dies with the thread that calls this (`PR_SET_PDEATHSIG`): call it from a
    /// thread that outlives the guard (a test's own thread, not a short-lived helper thread).
    /// Pods should use [`Containerd::cgroup_parent`] so their cgroups are found on drop.
    pub fn start(config: &ContainerdConfig) -> io::Result<Containerd> {
        let dir = &config.dir;
        unmount_under(dir);
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        std::fs::create_dir_all(&config.cni_conf_dir)?;
        // A unix socket path must fit in 108 bytes; the target dir can be deep.
        let socket = dir.join("c.sock");
        if socket.as_os_str().len() > 100 {
            return Err(io::Error::other(format!(
                "socket path too long for a unix socket: {}",
                socket.display()
            )));
        }
        if let Some(mirror) = &config.docker_io_mirror {
            write_hosts_toml(&dir.join("certs.d"), mirror)?;
        }
        let config_path = dir.join("config.toml");
        std::fs::write(&config_path, config_toml(config, &socket))?;
        let log = std::fs::File::create(dir.join("containerd.log"))?;
        let mut command = Command::new("containerd");
        command
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        die_with_parent(&mut command);
        let started = Instant::now();
        let child = command.spawn().map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot start containerd ({err}); `cargo xtask setup` installs it"),
            )
        })?;
        let seq = STARTED.fetch_add(1, Ordering::Relaxed);
        let mut containerd = Containerd {
            child,
            dir: dir.clone(),
            socket,
            cgroup_parent: format!("/skiff-test-{}-{seq}", std::process::id()),
        };
        containerd.wait_ready(started + Duration::from_secs(30))?;
        Ok(containerd)
    }

    /// containerd's gRPC socket (CRI and containerd's own API).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// containerd's PID (e.g. for a test that simulates a crash).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// containerd's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// A cgroup parent for this containerd's pods (`LinuxPodSandboxConfig.cgroup_parent`),
    /// whose cgroups are removed on drop.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// `ctr` against this containerd, in the CRI's namespace `k8s.io`.
    pub fn ctr(&self) -> Command {
        let mut command = Command::new("ctr");
        command.arg("-a").arg(&self.socket).args(["-n", "k8s.io"]);
        command
    }

    /// Imports a docker-archive or OCI-layout tar (named images keep their names).
    pub fn import(&self, archive: &Path) -> io::Result<()> {
        run(self.ctr().args(["images", "import"]).arg(archive))
    }

    /// Builds (or reuses from `cache_dir`) and imports `images`.
    pub fn import_images(&self, cache_dir: &Path, images: &[Image]) -> io::Result<()> {
        std::fs::create_dir_all(cache_dir)?;
        for image in images {
            self.import(&image.archive(cache_dir)?)?;
        }
        Ok(())
    }

    fn wait_ready(&mut self, deadline: Instant) -> io::Result<()> {
        while !self.socket.exists() {
            self.check_running()?;
            if Instant::now() > deadline {
                return Err(io::Error::other(
                    "containerd's socket did not appear in 30 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut last = String::new();
        while Instant::now() < deadline {
            self.check_running()?;
            // The CRI plugin starts after the socket is up, and a bad CRI setting only
            // disables the plugin (a warning in the log): Version is the real readiness test.
            match with_cri(&self.socket, |cri| async move { cri.version().await }) {
                Ok(_) => return Ok(()),
                Err(err) => last = err.to_string(),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other(format!(
            "containerd's CRI did not answer Version in 30 s ({last}); see {}",
            self.log().display()
        )))
    }

    fn check_running(&mut self) -> io::Result<()> {
        match self.child.try_wait()? {
            Some(status) => Err(io::Error::other(format!(
                "containerd exited with {status}; see {}",
                self.log().display()
            ))),
            None => Ok(()),
        }
    }

    /// Stops and removes every pod through CRI, so CNI DEL runs and shims exit cleanly.
    fn remove_pods(&self) {
        let _ = with_cri(&self.socket, |cri| async move {
            for pod in cri.list_pod_sandbox(None).await? {
                let _ = cri.stop_pod_sandbox(&pod.id).await;
                let _ = cri.remove_pod_sandbox(&pod.id).await;
            }
            Ok(())
        });
    }
}

/// Runs `f` with a CRI client on a thread of its own with its own runtime (callers may be
/// inside a tokio runtime, where blocking on another one panics).
fn with_cri<T, F, Fut>(socket: &Path, f: F) -> Result<T, skiff_cri::Error>
where
    T: Send,
    F: FnOnce(skiff_cri::Cri) -> Fut + Send,
    Fut: Future<Output = Result<T, skiff_cri::Error>>,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                runtime.block_on(async {
                    let cri = skiff_cri::Cri::connect(socket).await?;
                    // Bounded: a wedged containerd must not hang a drop.
                    match tokio::time::timeout(Duration::from_secs(60), f(cri)).await {
                        Ok(result) => result,
                        Err(_) => Err(skiff_cri::Error::Call {
                            call: "cleanup",
                            status: tonic::Status::deadline_exceeded("60 s"),
                        }),
                    }
                })
            })
            .join()
            .expect("the CRI thread panicked")
    })
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.remove_pods();
        }
        // Tasks still running now are ones CRI could not clean up (containerd died):
        // their ids name the runc and CNI state they leave outside our dir.
        let orphans = task_ids(&self.dir.join("state"));
        stop_child(&mut self.child);
        // Shims outlive containerd by design (they reparent to init); ours are the ones
        // told to report to our socket.
        for shim in processes_with_arg(self.socket.as_os_str().as_bytes()) {
            // A killed shim cannot remove its own socket (outside our dir, in /run).
            let sockets = shim_sockets(shim);
            for pid in descendants(shim) {
                kill(pid);
            }
            kill(shim);
            for socket in sockets {
                let _ = std::fs::remove_file(socket);
            }
        }
        unmount_under(&self.dir);
        remove_task_leftovers(&orphans);
        remove_cgroups(&self.cgroup_parent);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The ids of the tasks (sandboxes and containers) containerd's state dir holds.
fn task_ids(state: &Path) -> Vec<String> {
    let tasks = state.join("io.containerd.runtime.v2.task/k8s.io");
    let Ok(entries) = std::fs::read_dir(tasks) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// runc's state (`/run/containerd/runc/k8s.io/ID`) and the CNI result cache
/// (`/var/lib/cni/results/NET-ID-IFNAME`) of tasks that were never deleted.
fn remove_task_leftovers(ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    for id in ids {
        let _ = std::fs::remove_dir_all(Path::new("/run/containerd/runc/k8s.io").join(id));
    }
    let Ok(results) = std::fs::read_dir("/var/lib/cni/results") else {
        return;
    };
    for entry in results.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ids.iter().any(|id| name.contains(&format!("-{id}-"))) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// SIGTERM, up to 10 s to exit, then SIGKILL; always by the child's own PID.
fn stop_child(child: &mut Child) {
    // SAFETY: kill(2) on our own child's PID, which is not reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn kill(pid: u32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Processes one of whose arguments is exactly `arg`.
fn processes_with_arg(arg: &[u8]) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).any(|a| a == arg))
        })
        .collect()
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields restart after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// All descendants of `root`, deepest last.
fn descendants(root: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = pids()
        .into_iter()
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

/// The paths of the unix sockets `pid` listens on under containerd's shim socket dir.
fn shim_sockets(pid: u32) -> Vec<PathBuf> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: Vec<String> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let link = link.to_str()?;
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return Vec::new();
    };
    // Columns: Num RefCount Protocol Flags Type St Inode Path.
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            let (inode, path) = (columns.get(6)?, columns.get(7)?);
            let wanted =
                inodes.iter().any(|i| i == inode) && path.starts_with("/run/containerd/s/");
            wanted.then(|| PathBuf::from(path))
        })
        .collect()
}

/// Lazily unmounts every mount point under `dir` (snapshots, netns, shm), deepest first.
fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for point in points {
        let Ok(c) = std::ffi::CString::new(point.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mount_path(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        if let (b'\\', Some(v)) = (bytes[i], octal) {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// Removes the (by now empty) cgroups under `parent` in every cgroup v1 hierarchy and the
/// unified one, children first.
fn remove_cgroups(parent: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut roots: Vec<PathBuf> = hierarchies.flatten().map(|e| e.path()).collect();
    roots.push(PathBuf::from("/sys/fs/cgroup"));
    // Killed processes leave their cgroups a moment later (once reaped): retry briefly.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut left = false;
        for root in &roots {
            let dir = root.join(parent.trim_start_matches('/'));
            remove_cgroup_tree(&dir);
            left |= dir.exists();
        }
        if !left || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// A pod sandbox config as the kubelet would send it for pod `name`: its own network
/// namespace, logs under `logs`, cgroups under `cgroup_parent` (pass
/// [`Containerd::cgroup_parent`], so the guard finds and removes them).
pub fn sandbox_config(
    name: &str,
    uid: &str,
    logs: &Path,
    cgroup_parent: &str,
) -> skiff_cri::v1::PodSandboxConfig {
    use skiff_cri::v1;
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: logs.display().to_string(),
        labels: [("app".to_string(), name.to_string())].into(),
        linux: Some(v1::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.into(),
            security_context: Some(v1::LinuxSandboxSecurityContext {
                namespace_options: Some(v1::NamespaceOption {
                    network: v1::NamespaceMode::Pod.into(),
                    pid: v1::NamespaceMode::Container.into(),
                    ipc: v1::NamespaceMode::Pod.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Waits until CRI reports the runtime and the network ready (containerd loads the CNI config
/// asynchronously; NetworkReady turns true once it has one).
pub async fn wait_ready(cri: &skiff_cri::Cri, timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = cri.status(false).await.map_err(io::Error::other)?;
        let ready = |kind| skiff_cri::condition(&status, kind).is_some_and(|c| c.status);
        if ready("RuntimeReady") && ready("NetworkReady") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("runtime not ready: {status:?}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
