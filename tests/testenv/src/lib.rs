//! Services that skiff's tests, benchmarks and `cargo xtask` start for real: etcd (Debian's
//! `etcd-server`) on loopback ports only, containerd (with runc) on a private socket with
//! locally built images ([`images`]), and an image registry on loopback ([`Registry`], Debian's
//! `docker-registry`) that containerd can use as its docker.io mirror; their files live under a directory the caller chooses
//! (inside the target directory).
//!
//! A started process is stopped by its PID when its guard drops, and also killed by the kernel
//! if the thread that started it ends first (`PR_SET_PDEATHSIG`), so an aborted run leaves no
//! process behind.
#![deny(missing_docs)]

pub mod bridge;
mod checks;
#[cfg(feature = "containerd")]
mod containerd;
pub mod images;
mod registry;
#[cfg(feature = "containerd")]
mod runtime;
#[cfg(feature = "containerd")]
pub mod wait;

pub use checks::Checks;
#[cfg(feature = "containerd")]
pub use containerd::{Containerd, ContainerdConfig, sandbox_config, wait_ready};
pub use registry::Registry;
#[cfg(feature = "containerd")]
pub use runtime::{ContainerRuntime, Ready};

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running single-member etcd on loopback; stopped (and its data deleted) when dropped.
pub struct Etcd {
    child: Child,
    endpoint: String,
    dir: PathBuf,
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Makes `command`'s process die with the thread that spawns it.
fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl Etcd {
    /// Starts etcd with its data in `data_dir` (emptied first) and waits until it is healthy.
    pub fn start(data_dir: &Path) -> io::Result<Etcd> {
        let _ = std::fs::remove_dir_all(data_dir);
        std::fs::create_dir_all(data_dir)?;
        let client = free_port()?;
        let peer = free_port()?;
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(data_dir.join("etcd.log"))?;
        let mut command = Command::new("etcd");
        command
            .args(["--name", "skiff", "--data-dir"])
            .arg(data_dir.join("data"))
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .arg(format!("--initial-cluster=skiff={peer_url}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        die_with_parent(&mut command);
        let child = command.spawn().map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot start etcd ({err}); `cargo xtask setup` installs it"),
            )
        })?;
        let mut etcd = Etcd {
            child,
            endpoint,
            dir: data_dir.to_owned(),
        };
        etcd.wait_healthy(client)?;
        Ok(etcd)
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn wait_healthy(&mut self, port: u16) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "etcd exited with {status}; see {}",
                    self.dir.join("etcd.log").display()
                )));
            }
            if health(port).is_ok_and(|body| body.contains("\"health\":\"true\"")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other("etcd did not become healthy within 30 s"))
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // Child::kill signals this child's own PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET /health` over a plain socket: etcd answers HTTP/1.1 on its client port.
fn health(port: u16) -> io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

/// The etcd a test process shares: the one named by `SKIFF_TEST_ETCD` (`cargo xtask test`
/// starts it), or else one started on first use, with its data under `data_root`, that lives
/// until the process exits.
pub fn shared_etcd(data_root: &Path) -> String {
    use std::sync::OnceLock;
    if let Ok(endpoint) = std::env::var("SKIFF_TEST_ETCD") {
        return endpoint;
    }
    static SPAWNED: OnceLock<String> = OnceLock::new();
    SPAWNED
        .get_or_init(|| {
            remove_stale_data_dirs(data_root);
            let dir = data_root.join(format!("etcd-{}", std::process::id()));
            let (tx, rx) = std::sync::mpsc::channel();
            // The thread that starts etcd must outlive every test (PR_SET_PDEATHSIG fires when
            // it ends), so it parks for the rest of the process.
            std::thread::spawn(move || match Etcd::start(&dir) {
                Ok(etcd) => {
                    tx.send(Ok(etcd.endpoint().to_owned())).unwrap();
                    loop {
                        std::thread::park();
                    }
                }
                Err(err) => tx.send(Err(err)).unwrap(),
            });
            rx.recv().unwrap().expect("start etcd for the tests")
        })
        .clone()
}

/// Deletes `etcd-<pid>` data directories left by test processes that have exited (their etcd
/// died with them, but a static guard never runs its drop).
fn remove_stale_data_dirs(data_root: &Path) {
    let Ok(entries) = std::fs::read_dir(data_root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix("etcd-"));
        if pid.is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// One plain `GET /` over HTTP/1.0 to `addr` (a pod's server, say): the whole answer, headers
/// included. Connecting and reading each time out after 2 s.
pub fn http_get(addr: std::net::SocketAddr) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// The real kubectl the tests drive: `SKIFF_KUBECTL`, else the one `cargo xtask setup`
/// installs under the target directory.
pub fn kubectl_path() -> PathBuf {
    if let Ok(path) = std::env::var("SKIFF_KUBECTL") {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/venv/bin/kubectl");
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask setup`",
        path.display()
    );
    path
}
